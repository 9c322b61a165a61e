import Foundation
import TestSupport
import Testing
@testable import Node

@Suite("Worker fleet: routing, constraints, affinity")
struct WorkerFleetRoutingTests {
    typealias H = FleetHarness

    /// Three workers: cheap (1.00/h, lambda, A100, eu), mid (2.00/h, runpod, H100, us), dear (3.00/h, lambda, H100, us).
    struct Three {
        let h: H
        let cheap: WorkerKey, mid: WorkerKey, dear: WorkerKey
        let adverts: [WorkerID: Advert]

        init(configuration: FleetConfiguration = FleetConfiguration()) throws {
            h = try H(configuration: configuration)
            cheap = try h.worker()
            mid = try h.worker()
            dear = try h.worker()
            let list = [
                (cheap, H.advert(cheap, price: 1_000_000, provider: "lambda", gpu: "NVIDIA A100-SXM4-80GB", region: "eu-west")),
                (mid, H.advert(mid, price: 2_000_000, provider: "runpod", gpu: "NVIDIA H100 80GB HBM3", region: "us-east")),
                (dear, H.advert(dear, price: 3_000_000, provider: "Lambda", gpu: "NVIDIA H100 PCIe", region: "us-east")),
            ]
            for (key, advert) in list { try h.ingest(advert, key) }
            adverts = Dictionary(uniqueKeysWithValues: list.map { ($0.0.id, $0.1) })
        }

        func beat(_ key: WorkerKey, active: Int = 0, queued: Int = 0, tokensPerSecond: Double = 0, at: Int64 = H.t0 + 1) throws {
            try h.heartbeat(key, advert: adverts[key.id]!, sent: at, active: active, queued: queued, tokensPerSecond: tokensPerSecond)
        }
    }

    @Test func cheapestRanksByPriceWhenNothingIsKnownOfSpeed() throws {
        let f = try Three()
        defer { f.h.close() }
        #expect(try f.h.route(policy: .cheapest) == [f.cheap.id, f.mid.id, f.dear.id])
    }

    /// Price ÷ rate: cheap 1.00/h ÷ 50 tokens/s, dear 3.00/h ÷ 300; mid reports no rate and counts
    /// as the median of the known rates [50, 300] (the upper one, 300), so 2.00/h ÷ 300 ranks first.
    @Test func cheapestDividesThePriceByTheExpectedRate() throws {
        let f = try Three()
        defer { f.h.close() }
        try f.beat(f.cheap, tokensPerSecond: 50)
        try f.beat(f.dear, tokensPerSecond: 300)
        let candidates = try f.h.fleet.candidates(model: "m", policy: .cheapest, now: H.t0 + 1).get()
        #expect(candidates.map(\.worker) == [f.mid.id, f.dear.id, f.cheap.id])
        #expect(candidates[0].expectedTokensPerSecond == 300)
    }

    @Test func fastestAndLeastLoaded() throws {
        let f = try Three()
        defer { f.h.close() }
        try f.beat(f.cheap, active: 1, tokensPerSecond: 40)
        try f.beat(f.mid, active: 4, queued: 4, tokensPerSecond: 400)
        try f.beat(f.dear, active: 2, tokensPerSecond: 160)
        // Per sequence: cheap 40, mid 50, dear 80.
        #expect(try f.h.route(policy: .fastest, now: H.t0 + 1) == [f.dear.id, f.mid.id, f.cheap.id])
        // Load: cheap 1/8, dear 2/8, mid 8/8.
        #expect(try f.h.route(policy: .leastLoaded, now: H.t0 + 1) == [f.cheap.id, f.dear.id, f.mid.id])
    }

    @Test func tiesAreBrokenByLoadThenPriceThenWorkerID() throws {
        let h = try H()
        defer { h.close() }
        let keys = try (0..<5).map { _ in try h.worker() }
        for key in keys { try h.ingest(H.advert(key, price: 1_000_000), key) }
        let byID = keys.map(\.id).sorted()
        for policy in RoutingPolicy.allCases { #expect(try h.route(policy: policy) == byID, "\(policy)") }
    }

    @Test func constraintsFilterAndTheGatewaysOwnRequestsCountAsLoad() throws {
        let f = try Three()
        defer { f.h.close() }
        #expect(try f.h.route(constraints: .init(maxPricePerHourMicros: 2_000_000)) == [f.cheap.id, f.mid.id])
        #expect(try f.h.route(constraints: .init(providers: ["LAMBDA"])) == [f.cheap.id, f.dear.id])
        #expect(try f.h.route(constraints: .init(gpus: ["h100"])) == [f.mid.id, f.dear.id])
        #expect(try f.h.route(constraints: .init(gpus: ["pcie", "a100"])) == [f.cheap.id, f.dear.id])
        #expect(try f.h.route(constraints: .init(regions: ["US-EAST"])) == [f.mid.id, f.dear.id])
        #expect(try f.h.route(constraints: .init(maxPricePerHourMicros: 3_000_000, providers: ["lambda"], gpus: ["H100"])) == [f.dear.id])
        // Two requests in flight to the cheap worker make it the most loaded (2/8 > 0).
        #expect(f.h.fleet.beginAttempt(f.cheap.id, now: H.t0) && f.h.fleet.beginAttempt(f.cheap.id, now: H.t0))
        #expect(try f.h.route(policy: .leastLoaded).first == f.mid.id)
        f.h.fleet.recordSuccess(f.cheap.id, now: H.t0)
        f.h.fleet.recordAbandoned(f.cheap.id, now: H.t0)
        #expect(try f.h.route(policy: .leastLoaded).first == f.cheap.id)
    }

    @Test func noWorkerNamesTheConstraintAndTheWorkersItExcluded() throws {
        let f = try Three()
        defer { f.h.close() }
        let result = f.h.fleet.candidates(model: "m", constraints: .init(maxPricePerHourMicros: 1_500_000, providers: ["runpod"]), now: H.t0)
        guard case .failure(let none) = result else { Issue.record("expected no worker"); return }
        #expect(none.serving == 3)
        #expect(none.constraints == ["max_price_per_hour", "providers"])
        #expect(Dictionary(uniqueKeysWithValues: none.excluded.map { ($0.worker, $0.reason) }) == [
            f.mid.id: .maxPricePerHour(limitMicros: 1_500_000, priceMicros: 2_000_000, currency: "USD"),
            f.dear.id: .maxPricePerHour(limitMicros: 1_500_000, priceMicros: 3_000_000, currency: "USD"),
            f.cheap.id: .provider("lambda"),
        ])
        #expect(none.message.hasPrefix("3 workers serve m; "))
        #expect(none.message.contains("max_price_per_hour 1.5 excluded workers "))
        #expect(none.message.contains("\(f.dear.id) (3/h USD)"))
        #expect(none.message.contains("providers runpod excluded worker \(f.cheap.id) (provider lambda)"))
        guard case .failure(let unknown) = f.h.fleet.candidates(model: "other", now: H.t0) else { Issue.record("routed"); return }
        #expect(unknown.message == "No worker serves model other.")
    }

    @Test func adaptersMustBeServed() throws {
        let h = try H()
        defer { h.close() }
        let with = try h.worker(), without = try h.worker()
        try h.ingest(H.advert(with, price: 5_000_000, adapters: ["sql"]), with)
        try h.ingest(H.advert(without, price: 1_000_000), without)
        #expect(try h.route(adapter: "sql") == [with.id])
        guard case .failure(let none) = h.fleet.candidates(model: "m", adapter: "chat", now: H.t0) else { Issue.record("routed"); return }
        #expect(none.excluded.count == 2 && none.constraints.isEmpty)
    }

    @Test func theAffineWorkerGoesFirstUnlessItIsFull() throws {
        let f = try Three()
        defer { f.h.close() }
        #expect(try f.h.route(affinityKey: "conversation-1").first == f.cheap.id)
        #expect(f.h.fleet.beginAttempt(f.dear.id, now: H.t0))
        f.h.fleet.recordSuccess(f.dear.id, affinityKey: "conversation-1", now: H.t0)
        let candidates = try f.h.fleet.candidates(model: "m", affinityKey: "conversation-1", now: H.t0 + 1).get()
        #expect(candidates.map(\.worker) == [f.dear.id, f.cheap.id, f.mid.id])
        #expect(candidates.map(\.isAffine) == [true, false, false])
        // Not if a constraint excludes it…
        #expect(try f.h.route(constraints: .init(regions: ["eu-west"]), affinityKey: "conversation-1") == [f.cheap.id])
        // …nor once it is full (and then it is not marked affine where it ranks).
        try f.beat(f.dear, active: 8)
        let full = try f.h.fleet.candidates(model: "m", policy: .fastest, affinityKey: "conversation-1", now: H.t0 + 1).get()
        #expect(full.first?.worker == f.cheap.id)
        #expect(full.allSatisfy { !$0.isAffine })
    }

    @Test func theAffinityMapIsBounded() {
        var map = AffinityMap(capacity: 4)
        let a = WorkerKey().id, b = WorkerKey().id
        map.set("k1", a)
        map.set("k2", b)
        #expect(map.worker(for: "k1") == a)
        for i in 0..<10 { map.set("x\(i)", b) }
        #expect(map.count <= 4)
        #expect(map.worker(for: "k1") == nil)
        #expect(map.worker(for: "x9") == b)
    }

    @Test func atMostMaxCandidatesAreReturnedAndTheyAreTheBest() throws {
        var configuration = FleetConfiguration()
        configuration.maxCandidates = 3
        let h = try H(configuration: configuration)
        defer { h.close() }
        let keys = try (0..<12).map { _ in try h.worker() }
        for (i, key) in keys.enumerated() { try h.ingest(H.advert(key, price: Int64(12 - i) * 100_000), key) }
        #expect(try h.route() == [keys[11].id, keys[10].id, keys[9].id])
    }

    /// The neutral rate is the (upper) median, found by quickselect; it must equal sorting's.
    @Test(arguments: [1, 2, 3, 10, 101, 1_000])
    func theMedianMatchesSorting(count: Int) {
        var random = SplitMix64(seed: UInt64(count))
        for round in 0..<20 {
            // Few distinct values in odd rounds, to exercise duplicates.
            var values = (0..<count).map { _ in Double(Int.random(in: 0..<(round % 2 == 0 ? 1_000_000 : 4), using: &random)) }
            let expected = values.sorted()[count / 2]
            #expect(WorkerFleet.median(&values) == expected, "count \(count), round \(round)")
        }
    }

    @Test func constraintsDecodeFromTheExtensionObject() throws {
        let json = #"{"max_price_per_hour": 1.5, "providers": ["lambda"], "gpus": ["H100"], "regions": ["us-east"], "other": 1}"#
        let decoded = try JSONDecoder().decode(RoutingConstraints.self, from: Data(json.utf8))
        #expect(decoded == RoutingConstraints(maxPricePerHourMicros: 1_500_000, providers: ["lambda"], gpus: ["H100"], regions: ["us-east"]))
        #expect(try JSONDecoder().decode(RoutingConstraints.self, from: Data("{}".utf8)) == RoutingConstraints())
        for bad in [#"{"max_price_per_hour": -1}"#, #"{"max_price_per_hour": "1"}"#, #"{"providers": "lambda"}"#, #"{"max_price_per_hour": 1e300}"#] {
            #expect(throws: DecodingError.self, "\(bad)") { try JSONDecoder().decode(RoutingConstraints.self, from: Data(bad.utf8)) }
        }
        // A request's own fields win over the account's defaults.
        let merged = RoutingConstraints(providers: ["runpod"]).over(decoded)
        #expect(merged.providers == ["runpod"] && merged.maxPricePerHourMicros == 1_500_000)
    }
}
