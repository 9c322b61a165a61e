import Foundation
import Testing
@testable import Node

/// 10,000 registered adverts: a routing decision looks only at the workers serving the model.
/// Timings are printed, not asserted (they depend on the machine and the build); the results are
/// checked against a brute-force ranking.
@Suite("Worker fleet at 10,000 adverts")
struct WorkerFleetScaleTests {
    typealias H = FleetHarness

    @Test func tenThousandAdvertsIngestAndRouteFromThePerModelIndex() throws {
        var configuration = FleetConfiguration()
        configuration.maxCandidates = 4
        let h = try H(configuration: configuration)
        defer { h.close() }
        let count = 10_000, models = 100
        let keys = (0..<count).map { _ in WorkerKey() }
        try h.registry.admitWorkers(keys.map(\.id), now: H.t0)
        // Worker i serves "common" and "m<i mod 100>", at a price that varies with i.
        let documents = try keys.enumerated().map { i, key in
            try H.advert(key, models: ["common": H.digestA, "m\(i % models)": H.digestB],
                         price: Int64(1_000_000 + (i * 7_919) % 5_000_000)).sign(with: key)
        }
        let clock = ContinuousClock()
        let ingest = try clock.measure {
            for document in documents { try h.fleet.ingest(advert: document, now: H.t0) }
        }
        #expect(h.fleet.count == count)

        // Brute force: the cheapest four serving m7 (no rates known, so by price, then id).
        let expected = keys.enumerated().filter { $0.offset % models == 7 }
            .map { (price: Int64(1_000_000 + ($0.offset * 7_919) % 5_000_000), id: $0.element.id) }
            .sorted { ($0.price, $0.id.description) < ($1.price, $1.id.description) }.prefix(4).map(\.id)
        var routed: [WorkerID] = []
        let rounds = 1_000
        let perModel = clock.measure {
            for _ in 0..<rounds { routed = (try? h.fleet.candidates(model: "m7", now: H.t0 + 1).get().map(\.worker)) ?? [] }
        }
        #expect(routed == expected)

        var constrained: [WorkerID] = []
        let shared = clock.measure {
            for _ in 0..<10 {
                constrained = (try? h.fleet.candidates(model: "common", constraints: .init(maxPricePerHourMicros: 1_100_000),
                                                       policy: .leastLoaded, now: H.t0 + 1).get().map(\.worker)) ?? []
            }
        }
        #expect(constrained.count == 4)
        var everyone: [Candidate] = []
        let unconstrained = clock.measure {
            for _ in 0..<10 { everyone = (try? h.fleet.candidates(model: "common", now: H.t0 + 1).get()) ?? [] }
        }
        #expect(everyone.map(\.advert.pricePerHourMicros) == [1_000_000, 1_000_283, 1_000_566, 1_000_849])
        let listing = clock.measure { #expect(h.fleet.listing(now: H.t0 + 1).count == count) }

        func ms(_ d: Duration, _ n: Int = 1) -> String { String(format: "%.4f ms", d.seconds * 1000 / Double(n)) }
        print("fleet scale (\(count) adverts, \(models) models × \(count / models) workers + one model on all): "
              + "ingest \(ms(ingest, count)) per advert (\(ms(ingest)) in all); "
              + "routing a model served by \(count / models) workers \(ms(perModel, rounds)); "
              + "routing the model served by all \(count): with a price limit \(ms(shared, 10)), unconstrained \(ms(unconstrained, 10)); "
              + "listing \(ms(listing))")
    }
}
