/// How candidates are ranked. Every policy breaks ties by load, then price, then worker id, so
/// a decision is deterministic.
public enum RoutingPolicy: String, Sendable, Hashable, CaseIterable, Codable {
    /// Lowest price per hour over expected tokens per second (the heartbeat's recent tokens/s; a
    /// worker that reported none counts as the median of those that did, so idle workers compete
    /// on price alone): the lowest cost per token.
    case cheapest
    /// Highest expected tokens per second per sequence: recent tokens/s (unknown counts as the
    /// median of the known) ÷ the sequences outstanding (active + queued, at least one).
    case fastest
    /// Lowest load: (active + queued) / capacity, counting the gateway's own requests in flight
    /// when they are more than the last heartbeat's.
    case leastLoaded = "least-loaded"
}

/// A request's limits on where it may run (the `verity` extension object of a request, or an
/// account's defaults). Unset fields do not constrain.
///
/// Decodes from the extension object's JSON: `{"max_price_per_hour": 1.5, "providers": ["lambda"],
/// "gpus": ["H100"], "regions": ["us-east"]}`, every field optional, the price in currency units
/// (a finite number, 0 to 10⁶, rounded to the nearest millionth); other keys are ignored.
public struct RoutingConstraints: Sendable, Hashable, Decodable {
    /// The highest price per hour, in millionths of the worker's currency (prices are compared as
    /// numbers: a fleet is assumed to quote one currency).
    public var maxPricePerHourMicros: Int64?
    /// Providers allowed (exact names, case-insensitive).
    public var providers: [String]?
    /// GPUs allowed: a worker qualifies if its GPU name contains one of these (case-insensitive),
    /// so "H100" admits "NVIDIA H100 80GB HBM3".
    public var gpus: [String]?
    /// Regions allowed (exact names, case-insensitive).
    public var regions: [String]?

    public init(maxPricePerHourMicros: Int64? = nil, providers: [String]? = nil, gpus: [String]? = nil, regions: [String]? = nil) {
        self.maxPricePerHourMicros = maxPricePerHourMicros
        self.providers = providers
        self.gpus = gpus
        self.regions = regions
    }

    enum CodingKeys: String, CodingKey {
        case providers, gpus, regions
        case maxPricePerHour = "max_price_per_hour"
    }

    /// Decodes the extension object (see the type's description).
    /// - Throws: `DecodingError` naming the field: a price that is not a finite number from 0 to
    ///   10⁶, or a list that is not an array of strings.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let price = try c.decodeIfPresent(Double.self, forKey: .maxPricePerHour) {
            guard price.isFinite, (0...1_000_000).contains(price) else {
                throw DecodingError.dataCorruptedError(forKey: .maxPricePerHour, in: c,
                                                       debugDescription: "max_price_per_hour must be a number from 0 to 1000000")
            }
            maxPricePerHourMicros = Int64((price * 1_000_000).rounded())
        }
        providers = try c.decodeIfPresent([String].self, forKey: .providers)
        gpus = try c.decodeIfPresent([String].self, forKey: .gpus)
        regions = try c.decodeIfPresent([String].self, forKey: .regions)
    }

    /// Whether no field constrains.
    public var isEmpty: Bool { maxPricePerHourMicros == nil && providers == nil && gpus == nil && regions == nil }

    /// The constraints as the extension object's JSON (unset fields left out); decodes back to
    /// equal constraints.
    public var json: JSON {
        var pairs: [(String, JSON)] = []
        if let maxPricePerHourMicros { pairs.append(("max_price_per_hour", .double(Double(maxPricePerHourMicros) / 1_000_000))) }
        if let providers { pairs.append(("providers", .array(providers.map(JSON.string)))) }
        if let gpus { pairs.append(("gpus", .array(gpus.map(JSON.string)))) }
        if let regions { pairs.append(("regions", .array(regions.map(JSON.string)))) }
        return .object(pairs)
    }

    /// These constraints, with `defaults` (an account's) where these set none.
    public func over(_ defaults: RoutingConstraints) -> RoutingConstraints {
        RoutingConstraints(maxPricePerHourMicros: maxPricePerHourMicros ?? defaults.maxPricePerHourMicros,
                           providers: providers ?? defaults.providers, gpus: gpus ?? defaults.gpus,
                           regions: regions ?? defaults.regions)
    }

    /// Lowercased once per decision, not once per worker.
    struct Prepared {
        var maxPrice: Int64?
        var providers: Set<String>?
        var gpus: [String]?
        var regions: Set<String>?

        init(_ c: RoutingConstraints) {
            maxPrice = c.maxPricePerHourMicros
            providers = c.providers.map { Set($0.map { $0.lowercased() }) }
            gpus = c.gpus.map { $0.map { $0.lowercased() } }
            regions = c.regions.map { Set($0.map { $0.lowercased() }) }
        }

        /// Whether a constraint names providers, GPUs or regions (and so needs the worker's entry).
        var constrainsNames: Bool { providers != nil || gpus != nil || regions != nil }

        /// Which name constraint excludes the worker, or nil if none does (the price is checked
        /// on its own, from the worker's vitals).
        func exclusion(_ entry: FleetState.Entry) -> Exclusion? {
            let advert = entry.advert.payload
            if let providers, !providers.contains(entry.lowercasedProvider) { return .provider(advert.provider) }
            if let gpus, !gpus.contains(where: { entry.lowercasedGPU.contains($0) }) { return .gpu(advert.hardware.gpu) }
            if let regions, !regions.contains(entry.lowercasedRegion) { return .region(advert.region) }
            return nil
        }
    }
}
