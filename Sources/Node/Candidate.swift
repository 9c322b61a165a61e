import Foundation

/// A worker a request may go to, as a routing decision ranks it: what to call, what it
/// advertised, and why it is where it is in the list.
///
/// Before sending the request, call ``WorkerFleet/beginAttempt(_:now:)``; it may say no (the
/// breaker opened, or another request took the half-open probe), and then the next candidate is
/// tried. After it, call exactly one of ``WorkerFleet/recordSuccess(_:affinityKey:now:)``,
/// ``WorkerFleet/recordFailure(_:now:)`` or ``WorkerFleet/recordAbandoned(_:now:)``.
public struct Candidate: Sendable {
    /// The worker.
    public var worker: WorkerID
    /// Its advert (endpoint, TLS pin, provider, price, hardware…).
    public var advert: Advert
    /// The advert's hash, which the worker's usage statement must name.
    public var advertHash: Data
    /// The model entry the request will use (its digest is what the record will name).
    public var model: Advert.Model
    /// The load the ranking used: (active + queued) / capacity.
    public var load: Double
    /// The tokens per second the ranking used (the heartbeat's, or the neutral value).
    public var expectedTokensPerSecond: Double
    /// The policy's score (lower ranks first): price per token for `cheapest`, the negated
    /// per-sequence rate for `fastest`, the load for `least-loaded`.
    public var score: Double
    /// Whether it goes first because it last served this conversation's prefix.
    public var isAffine: Bool
    /// Whether its breaker is half-open: this request would be its probe.
    public var isProbe: Bool

    /// Whether the model carries no digest (an external engine's): it was matched by id alone,
    /// and the record can name no weights digest.
    public var matchedByIDOnly: Bool { model.digest == nil }
}

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
