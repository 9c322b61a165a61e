import Foundation
import Ledger
@testable import Node

/// Workers, adverts and a gateway's fleet for the fleet tests; the clock starts at `t0`.
struct FleetHarness {
    static let t0: Int64 = 1_767_225_600_000
    static let digestA = "sha256:" + String(repeating: "a1", count: 32)
    static let digestB = "sha256:" + String(repeating: "b2", count: 32)

    let directory: URL
    let registry: AccountRegistry
    let fleet: WorkerFleet

    /// A fleet over a fresh registry in a temporary directory (removed by ``close()``).
    init(configuration: FleetConfiguration = FleetConfiguration()) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        registry = try AccountRegistry(path: directory.appendingPathComponent("accounts.sqlite").path)
        fleet = WorkerFleet(registry: registry, configuration: configuration)
    }

    func close() { try? FileManager.default.removeItem(at: directory) }

    /// A new worker key, admitted unless `admit` is false.
    func worker(admit: Bool = true) throws -> WorkerKey {
        let key = WorkerKey()
        if admit { try registry.admitWorker(key.id, now: Self.t0) }
        return key
    }

    /// An advert from `key` serving `models` (id → digest), issued at `issued`, standing five minutes.
    static func advert(_ key: WorkerKey, models: [String: String?] = ["m": digestA], price: Int64 = 2_000_000,
                       provider: String = "lambda", gpu: String = "NVIDIA H100 80GB HBM3", region: String = "us-east",
                       capacity: Int = 8, issued: Int64 = t0, lifetime: Int64 = 300_000, adapters: [String] = []) -> Advert {
        Advert(worker: key.id, endpoint: "https://\(key.id.description.prefix(8).lowercased()).example:8443",
               models: models.sorted { $0.key < $1.key }.map { id, digest in
                   Advert.Model(id: id, source: digest == nil ? "upstream:\(id)" : "hf:org/\(id)@main", digest: digest,
                                contextLength: 8192, adapters: adapters)
               },
               hardware: Advert.Hardware(gpu: gpu, gpuCount: 1, gpuMemoryMiB: 81_559, cpu: "AMD EPYC 9654"),
               provider: provider, pricePerHourMicros: price, currency: "USD", region: region, capacity: capacity,
               version: "verity test", issuedMilliseconds: issued, expiresMilliseconds: issued + lifetime)
    }

    /// Signs and ingests an advert.
    @discardableResult
    func ingest(_ advert: Advert, _ key: WorkerKey, now: Int64 = t0, joinToken: String? = nil) throws -> WorkerFleet.Acceptance {
        try fleet.ingest(advert: try advert.sign(with: key), joinToken: joinToken, now: now)
    }

    /// Signs and sends a heartbeat for the worker's current advert.
    func heartbeat(_ key: WorkerKey, advert: Advert, sent: Int64, active: Int = 0, queued: Int = 0, tokensPerSecond: Double = 0,
                   now: Int64? = nil) throws {
        let hash = try advert.sign(with: key).hash
        let beat = Heartbeat(worker: key.id, sentMilliseconds: sent, active: active, queued: queued,
                             tokensPerSecond: tokensPerSecond, advertHash: hash)
        try fleet.heartbeat(try beat.sign(with: key), now: now ?? sent)
    }

    /// The worker ids of a successful routing decision, in order.
    func route(_ model: String = "m", adapter: String? = nil, constraints: RoutingConstraints = RoutingConstraints(),
               policy: RoutingPolicy = .cheapest, affinityKey: String? = nil, now: Int64 = t0) throws -> [WorkerID] {
        try fleet.candidates(model: model, adapter: adapter, constraints: constraints, policy: policy,
                             affinityKey: affinityKey, now: now).get().map(\.worker)
    }
}
