/// How a gateway's ``WorkerFleet`` admits, times out and routes workers. Every field has a default.
public struct FleetConfiguration: Sendable {
    /// A worker not heard from (advert or heartbeat) for this long is not routable.
    public var silenceTimeout: Duration = .seconds(15)
    /// How far in the future a worker's clock may run (adverts' `issued_ms`, heartbeats' `sent_ms`).
    public var maxClockSkew: Duration = .seconds(60)
    /// The longest an advert may stand (`expires_ms − issued_ms`); longer ones are refused.
    public var maxAdvertLifetime: Duration = .seconds(86_400)
    /// Failures in a row that open a worker's circuit breaker…
    public var breakerThreshold = 3
    /// …and how long it stays open before a probe is let through.
    public var breakerOpenDuration: Duration = .seconds(30)
    /// Model digests the operator pins, by model id (`sha256:<hex>`). A model id not pinned here
    /// is pinned by the first accepted advert that gives it a digest.
    public var pinnedDigests: [String: String] = [:]
    /// How many conversation prefixes the affinity map remembers.
    public var affinityCapacity = 100_000
    /// The affine worker goes first only while its load ((active + queued) / capacity) is below this.
    public var affinityMaxLoad = 1.0
    /// How many candidates a routing decision returns at most (the first and its failovers).
    public var maxCandidates = 8
    /// A worker whose advert expired this long ago is forgotten by ``WorkerFleet/prune(now:)``.
    public var forgetAfter: Duration = .seconds(600)
    /// A further check of each verified advert before it is accepted (the gateway checks that a
    /// TLS pin is its certificate's key); throwing refuses the advert.
    public var advertCheck: (@Sendable (Advert) throws(FleetError) -> Void)?

    public init() {}
}
