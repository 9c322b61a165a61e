import Foundation
import Testing
@testable import Node

@Suite("Worker fleet: adverts, heartbeats, the catalog")
struct WorkerFleetIngestTests {
    typealias H = FleetHarness

    @Test func anAdmittedWorkersAdvertIsAcceptedAndRoutable() throws {
        let h = try H()
        defer { h.close() }
        let key = try h.worker()
        let acceptance = try h.ingest(H.advert(key), key)
        #expect(acceptance.accepted == ["m"] && acceptance.skipped.isEmpty && !acceptance.replaced)
        #expect(acceptance.advertHash == (try H.advert(key).sign(with: key).hash))
        #expect(try h.route() == [key.id])
        #expect(h.fleet.pinnedDigest("m") == H.digestA)
    }

    /// Each refusal the issue names, with the code a server logs.
    @Test func refusalsSayWhy() throws {
        let h = try H()
        defer { h.close() }
        let stranger = try h.worker(admit: false), key = try h.worker()
        func code(_ body: () throws -> Void) throws -> FleetError.Code { try #require(throws: FleetError.self, performing: body).code }
        #expect(try code { try h.ingest(H.advert(stranger), stranger) } == .notAdmitted)
        #expect(try code { try h.ingest(H.advert(key, issued: H.t0 - 300_000), key) } == .expired)
        #expect(try code { try h.ingest(H.advert(key, issued: H.t0 + 60_001), key) } == .notYetValid)
        #expect(try code { try h.ingest(H.advert(key, lifetime: 86_400_001), key) } == .malformed)
        let document = try H.advert(key).sign(with: key)
        var payload = document.payload
        payload[payload.count / 2] ^= 0x20
        let forged = SignedDocument(payload: payload, signature: document.signature, worker: key.id)
        #expect(try code { try h.fleet.ingest(advert: forged, now: H.t0) } == .badSignature)
        #expect(h.fleet.count == 0)
    }

    @Test func aConfiguredPinRefusesAnotherDigest() throws {
        var configuration = FleetConfiguration()
        configuration.pinnedDigests = ["m": H.digestB]
        let h = try H(configuration: configuration)
        defer { h.close() }
        let key = try h.worker()
        let error = try #require(throws: FleetError.self) { try h.ingest(H.advert(key), key) }
        #expect(error.code == .digestConflict)
        #expect(error.conflict == FleetError.DigestConflict(model: "m", expected: H.digestB, got: H.digestA))
        #expect(h.fleet.count == 0)
    }

    /// The first advert pins a model's digest; a later worker with another digest keeps its other
    /// models, and the conflicting one is skipped for it with the reason.
    @Test func theFirstAdvertPinsAndALaterConflictIsSkippedForThatModelOnly() throws {
        let h = try H()
        defer { h.close() }
        let first = try h.worker(), second = try h.worker()
        try h.ingest(H.advert(first, models: ["m": H.digestA]), first)
        let acceptance = try h.ingest(H.advert(second, models: ["m": H.digestB, "n": H.digestB]), second)
        #expect(acceptance.accepted == ["n"])
        #expect(acceptance.skipped == [FleetError.DigestConflict(model: "m", expected: H.digestA, got: H.digestB)])
        #expect(try h.route("m") == [first.id])
        #expect(try h.route("n") == [second.id])
        #expect(h.fleet.catalog() == ["m": H.digestA, "n": H.digestB])
        let listed = try #require(h.fleet.listing(now: H.t0).first { $0.worker == second.id })
        #expect(listed.skipped.map(\.model) == ["m"])
    }

    @Test func anUpstreamModelIsMatchedByIDAloneAndPinsNothing() throws {
        let h = try H()
        defer { h.close() }
        let verity = try h.worker(), upstream = try h.worker()
        try h.ingest(H.advert(upstream, models: ["m": nil]), upstream)
        #expect(h.fleet.pinnedDigest("m") == nil)
        try h.ingest(H.advert(verity, models: ["m": H.digestA], price: 1_000_000), verity)
        let candidates = try h.fleet.candidates(model: "m", now: H.t0).get()
        #expect(candidates.map(\.worker) == [verity.id, upstream.id])
        #expect(candidates.map(\.matchedByIDOnly) == [false, true])
    }

    @Test func aNewerAdvertReplacesAnOlderOneNeverTheReverse() throws {
        let h = try H()
        defer { h.close() }
        let key = try h.worker()
        try h.ingest(H.advert(key, models: ["m": H.digestA]), key)
        let newer = H.advert(key, models: ["n": H.digestA], issued: H.t0 + 1_000)
        #expect(try h.ingest(newer, key, now: H.t0 + 1_000).replaced)
        #expect(try h.route("n", now: H.t0 + 1_000) == [key.id])
        #expect(h.fleet.candidates(model: "m", now: H.t0 + 1_000).isFailure)
        let replay = try #require(throws: FleetError.self) { try h.ingest(H.advert(key, models: ["m": H.digestA]), key, now: H.t0 + 2_000) }
        #expect(replay.code == .stale)
        // The same advert again changes nothing.
        #expect(try !h.ingest(newer, key, now: H.t0 + 2_000).replaced)
    }

    @Test func aJoinTokenSentWithTheFirstAdvertAdmitsTheWorker() throws {
        let h = try H()
        defer { h.close() }
        let key = try h.worker(admit: false), other = try h.worker(admit: false)
        let token = try h.registry.issueJoinToken(now: H.t0)
        #expect(try h.ingest(H.advert(key), key, joinToken: token.secret).admittedByJoinToken)
        #expect(try h.registry.isAdmitted(key.id))
        let spent = try #require(throws: FleetError.self) { try h.ingest(H.advert(other), other, joinToken: token.secret) }
        #expect(spent.code == .invalidJoinToken)
        // A forged advert does not spend a token.
        let fresh = try h.registry.issueJoinToken(now: H.t0)
        let document = try H.advert(other).sign(with: other)
        let forged = SignedDocument(payload: document.payload, signature: Data(repeating: 0, count: 64), worker: other.id)
        #expect(throws: FleetError.self) { try h.fleet.ingest(advert: forged, joinToken: fresh.secret, now: H.t0) }
        #expect(try h.ingest(H.advert(other), other, joinToken: fresh.secret).admittedByJoinToken)
    }

    @Test func heartbeatsKeepAWorkerRoutableAndSilenceRemovesIt() throws {
        let h = try H()
        defer { h.close() }
        let key = try h.worker()
        let advert = H.advert(key)
        try h.ingest(advert, key)
        #expect(try h.route(now: H.t0 + 15_000) == [key.id])
        #expect(h.fleet.candidates(model: "m", now: H.t0 + 15_001).isFailure)
        try h.heartbeat(key, advert: advert, sent: H.t0 + 14_000, now: H.t0 + 15_001)
        #expect(try h.route(now: H.t0 + 30_001) == [key.id])
        let silent = try #require(h.fleet.listing(now: H.t0 + 30_002).first)
        #expect(!silent.routable)
        #expect(silent.unavailable == .silent(sinceMilliseconds: H.t0 + 15_001))
    }

    @Test func heartbeatRefusals() throws {
        let h = try H()
        defer { h.close() }
        let key = try h.worker()
        let advert = H.advert(key)
        func code(_ body: () throws -> Void) throws -> FleetError.Code { try #require(throws: FleetError.self, performing: body).code }
        #expect(try code { try h.heartbeat(key, advert: advert, sent: H.t0) } == .unknownAdvert)
        try h.ingest(advert, key)
        #expect(try code { try h.heartbeat(key, advert: H.advert(key, price: 1), sent: H.t0) } == .unknownAdvert)
        try h.heartbeat(key, advert: advert, sent: H.t0 + 5_000)
        #expect(try code { try h.heartbeat(key, advert: advert, sent: H.t0 + 5_000) } == .stale)
        #expect(try code { try h.heartbeat(key, advert: advert, sent: H.t0 + 5_000, now: H.t0 + 20_001) } == .expired)
    }

    @Test func revokedWorkersLeaveTheFleet() throws {
        let h = try H()
        defer { h.close() }
        let a = try h.worker(), b = try h.worker()
        try h.ingest(H.advert(a), a)
        try h.ingest(H.advert(b), b)
        try h.fleet.revoke(a.id, now: H.t0)
        #expect(try h.route() == [b.id])
        try h.registry.revokeWorker(b.id)
        #expect(try h.fleet.reconcileAdmissions() == [b.id])
        #expect(h.fleet.count == 0)
        #expect(try #require(throws: FleetError.self) { try h.ingest(H.advert(a, issued: H.t0 + 1), a) }.code == .notAdmitted)
    }

    @Test func expiredWorkersAreForgottenAfterTheGracePeriod() throws {
        let h = try H()
        defer { h.close() }
        let key = try h.worker()
        try h.ingest(H.advert(key), key)
        let expiry = H.t0 + 300_000
        #expect(h.fleet.listing(now: expiry).first?.unavailable == .expired(atMilliseconds: expiry))
        #expect(h.fleet.prune(now: expiry + 599_999).isEmpty)
        #expect(h.fleet.prune(now: expiry + 600_000) == [key.id])
        #expect(h.fleet.count == 0)
    }
}

extension Result {
    var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}
