import Foundation
import Testing
@testable import Node

@Suite("Worker fleet: circuit breaker and listing")
struct WorkerFleetBreakerTests {
    typealias H = FleetHarness

    /// Failures in a row, open for 30 s, one probe, closed by its success.
    @Test func threeFailuresOpenTheBreakerAndAProbeClosesIt() throws {
        let h = try H()
        defer { h.close() }
        let flaky = try h.worker(), steady = try h.worker()
        try h.ingest(H.advert(flaky, price: 1_000_000, lifetime: 3_600_000), flaky)
        try h.ingest(H.advert(steady, price: 2_000_000, lifetime: 3_600_000), steady)
        let t = H.t0 + 1_000
        for i in 0..<2 {
            #expect(h.fleet.beginAttempt(flaky.id, now: t))
            h.fleet.recordFailure(flaky.id, now: t)
            #expect(h.fleet.breakerState(flaky.id, now: t) == .closed(failures: i + 1))
        }
        // A success in between resets the count.
        #expect(h.fleet.beginAttempt(flaky.id, now: t))
        h.fleet.recordSuccess(flaky.id, now: t)
        for _ in 0..<3 {
            #expect(h.fleet.beginAttempt(flaky.id, now: t))
            h.fleet.recordFailure(flaky.id, now: t)
        }
        #expect(h.fleet.breakerState(flaky.id, now: t) == .open(untilMilliseconds: t + 30_000))
        #expect(!h.fleet.beginAttempt(flaky.id, now: t + 29_999))
        #expect(try h.route(now: t + 1) == [steady.id])
        // Heartbeats keep both alive while time passes.
        let silenceFree = { (at: Int64) throws in
            try h.heartbeat(flaky, advert: H.advert(flaky, price: 1_000_000, lifetime: 3_600_000), sent: at)
            try h.heartbeat(steady, advert: H.advert(steady, price: 2_000_000, lifetime: 3_600_000), sent: at)
        }
        try silenceFree(t + 14_000)
        #expect(try h.route(now: t + 14_000) == [steady.id])
        try silenceFree(t + 28_000)
        // Half-open: it is a candidate again, marked as a probe, and only one request gets it.
        let probe = try h.fleet.candidates(model: "m", now: t + 30_000).get()
        #expect(probe.map(\.worker) == [flaky.id, steady.id])
        #expect(probe.map(\.isProbe) == [true, false])
        #expect(h.fleet.beginAttempt(flaky.id, now: t + 30_000))
        #expect(!h.fleet.beginAttempt(flaky.id, now: t + 30_001))
        #expect(h.fleet.breakerState(flaky.id, now: t + 30_001) == .halfOpen(probing: true))
        #expect(try h.route(now: t + 30_001) == [steady.id])
        h.fleet.recordSuccess(flaky.id, now: t + 30_500)
        #expect(h.fleet.breakerState(flaky.id, now: t + 30_500) == .closed(failures: 0))
        #expect(try h.route(now: t + 30_500) == [flaky.id, steady.id])
    }

    @Test func aFailedProbeReopensAndALostProbeIsGivenUp() {
        var breaker = CircuitBreaker(threshold: 3, openFor: 30_000)
        func begin(_ now: Int64) -> Bool { breaker.begin(now: now) }
        for _ in 0..<3 { breaker.failure(now: 0) }
        #expect(begin(30_000))
        breaker.failure(now: 31_000)
        #expect(breaker.state(now: 31_000) == .open(untilMilliseconds: 61_000))
        #expect(begin(61_000))
        // Never reported: after another open period the probe is handed out again.
        #expect(!begin(90_999))
        #expect(begin(91_000))
        // An abandoned probe frees the slot at once.
        breaker.abandoned()
        #expect(begin(91_001))
    }

    @Test func theListingSaysWhoIsRoutableAndWhyNot() throws {
        let h = try H()
        defer { h.close() }
        let a = try h.worker(), b = try h.worker()
        let advert = H.advert(a, lifetime: 3_600_000)
        try h.ingest(advert, a)
        try h.ingest(H.advert(b, lifetime: 3_600_000), b)
        try h.heartbeat(a, advert: advert, sent: H.t0 + 500, active: 2, queued: 1, tokensPerSecond: 123.5)
        for _ in 0..<3 {
            _ = h.fleet.beginAttempt(b.id, now: H.t0 + 600)
            h.fleet.recordFailure(b.id, now: H.t0 + 600)
        }
        let listing = h.fleet.listing(now: H.t0 + 1_000)
        #expect(listing.map(\.worker) == [a.id, b.id].sorted())
        let la = try #require(listing.first { $0.worker == a.id }), lb = try #require(listing.first { $0.worker == b.id })
        #expect(la.routable && !lb.routable)
        #expect(lb.unavailable == .breakerOpen(untilMilliseconds: H.t0 + 30_600))
        #expect(la.lastHeartbeat?.active == 2 && la.lastContactMilliseconds == H.t0 + 500)
        let json = la.json.serialized()
        for fragment in ["\"worker\":\"\(a.id)\"", "\"price_per_hour\":2", "\"routable\":true", "\"not_routable_because\":null",
                         "\"tokens_per_second\":123.5", "\"breaker\":{\"state\":\"closed\",\"consecutive_failures\":0}",
                         "\"matched_by_id_only\":false", "\"digest\":\"\(H.digestA)\""] {
            #expect(json.contains(fragment), "\(fragment) in \(json)")
        }
        #expect(lb.json.serialized().contains("\"not_routable_because\":\"circuit breaker open until \(H.t0 + 30_600) ms\""))
    }
}
