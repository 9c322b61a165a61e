import Foundation
import Synchronization

/// What a gateway knows about its workers, and how it picks one for a request. Pure logic over
/// values and the admission table; the HTTP side feeds it documents and asks it for candidates.
///
/// - Adverts: ``ingest(advert:joinToken:now:)`` verifies a signed advert and keeps the newest per
///   worker, with each model checked against the model catalog (``pinnedDigest(_:)``).
/// - Liveness: ``heartbeat(_:now:)``; a worker is routable while its advert stands and it was
///   heard from (advert or heartbeat) within ``FleetConfiguration/silenceTimeout``.
/// - Routing: ``candidates(model:adapter:constraints:policy:affinityKey:now:)`` looks only at the
///   workers serving the model (a per-model index), so a decision costs O(those workers).
/// - Failures: a circuit breaker per worker (``beginAttempt(_:now:)``, ``recordSuccess(_:affinityKey:now:)``,
///   ``recordFailure(_:now:)``, ``recordAbandoned(_:now:)``).
/// - ``listing(now:)`` for `GET /v1/workers`.
///
/// Times are milliseconds since the Unix epoch, passed in (``now()`` reads the clock), so that
/// tests can run the clock. State is in memory: a restarted gateway waits for the workers'
/// next adverts (workers re-advertise when a heartbeat is answered with ``FleetError/Code/unknownAdvert``).
/// Digests pinned by a first advert are forgotten on restart; pin in the configuration to keep them.
public final class WorkerFleet: Sendable {
    /// What ``ingest(advert:joinToken:now:)`` accepted.
    public struct Acceptance: Sendable {
        /// The worker.
        public var worker: WorkerID
        /// The advert's hash (heartbeats and usage statements must name it).
        public var advertHash: Data
        /// The models it will be routed for.
        public var accepted: [String]
        /// Its models that conflict with a pinned digest: not routed to, for this worker.
        public var skipped: [FleetError.DigestConflict]
        /// Whether it replaced an earlier advert from the same worker.
        public var replaced: Bool
        /// Whether a join token admitted the worker with this advert.
        public var admittedByJoinToken: Bool
    }

    public let configuration: FleetConfiguration
    let registry: AccountRegistry
    let state: Mutex<FleetState>

    /// A fleet that admits the worker keys in `registry`'s `workers` table.
    /// - Parameters:
    ///   - registry: The gateway's account registry (admissions and join tokens).
    ///   - configuration: Timeouts, pins and routing settings.
    public init(registry: AccountRegistry, configuration: FleetConfiguration = FleetConfiguration()) {
        self.registry = registry
        self.configuration = configuration
        self.state = Mutex(FleetState(affinityCapacity: configuration.affinityCapacity))
    }

    /// The clock, in milliseconds since the Unix epoch.
    public static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// The digest the catalog pins for a model id: the configuration's, else the first accepted
    /// advert's; nil if none has been pinned.
    public func pinnedDigest(_ model: String) -> String? {
        configuration.pinnedDigests[model] ?? state.withLock { $0.learnedPins[model] }
    }

    /// Every pinned model id and its digest.
    public func catalog() -> [String: String] {
        state.withLock { $0.learnedPins }.merging(configuration.pinnedDigests) { _, configured in configured }
    }

    /// How many workers the fleet holds (routable or not).
    public var count: Int { state.withLock { $0.count } }

    /// Forgets workers whose advert expired more than ``FleetConfiguration/forgetAfter`` ago (a
    /// server calls this every minute or so).
    /// - Returns: The workers forgotten.
    @discardableResult
    public func prune(now: Int64) -> [WorkerID] {
        let cutoff = now - configuration.forgetAfter.milliseconds
        return state.withLock { state in
            let gone = state.occupied.filter { state.vitals[$0].expires <= cutoff }.map { state.entry($0).worker }
            for worker in gone { state.remove(worker) }
            return gone.sorted()
        }
    }
}
