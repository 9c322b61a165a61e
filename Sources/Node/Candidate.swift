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
