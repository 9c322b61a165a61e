/// Why a worker that serves the requested model was not a candidate.
public enum Exclusion: Sendable, Hashable, CustomStringConvertible {
    /// It does not serve the requested adapter.
    case adapter(String)
    /// Its advert expired at this time.
    case expired(atMilliseconds: Int64)
    /// No advert or heartbeat since this time, longer ago than the silence timeout.
    case silent(sinceMilliseconds: Int64)
    /// Its circuit breaker is open until this time.
    case breakerOpen(untilMilliseconds: Int64)
    /// Its breaker is half-open and another request is its probe.
    case probeInFlight
    /// Its price is above the request's `max_price_per_hour`.
    case maxPricePerHour(limitMicros: Int64, priceMicros: Int64, currency: String)
    /// Its provider is not among the request's `providers`.
    case provider(String)
    /// Its GPU matches none of the request's `gpus`.
    case gpu(String)
    /// Its region is not among the request's `regions`.
    case region(String)

    /// The request constraint that excluded it (`max_price_per_hour`, `providers`, `gpus`,
    /// `regions`), or nil when the worker itself was not available.
    public var constraint: String? {
        switch self {
        case .maxPricePerHour: "max_price_per_hour"
        case .provider: "providers"
        case .gpu: "gpus"
        case .region: "regions"
        case .adapter, .expired, .silent, .breakerOpen, .probeInFlight: nil
        }
    }

    public var description: String {
        switch self {
        case .adapter(let adapter): "does not serve adapter \(adapter)"
        case .expired(let at): "its advert expired (at \(at) ms)"
        case .silent(let since): "silent since \(since) ms"
        case .breakerOpen(let until): "circuit breaker open until \(until) ms"
        case .probeInFlight: "circuit breaker half-open, probe in flight"
        case .maxPricePerHour(_, let price, let currency): "\(Self.units(price))/h \(currency)"
        case .provider(let provider): "provider \(provider)"
        case .gpu(let gpu): "gpu \(gpu)"
        case .region(let region): "region \(region)"
        }
    }

    /// Millionths as currency units, without trailing zeros: 1_500_000 → "1.5".
    static func units(_ micros: Int64) -> String {
        let sign = micros < 0 ? "-" : "", magnitude = micros.magnitude
        var fraction = String(magnitude % 1_000_000)
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return sign + String(magnitude / 1_000_000) + (fraction.isEmpty ? "" : "." + fraction)
    }
}
