import Foundation
import Ledger
import Testing
@testable import Node

@Suite("Worker admission: the workers table and join tokens")
struct WorkerAdmissionTests {
    @Test func admittedWorkersAreListedUntilRevokedAndCanComeBack() throws {
        let h = try FleetHarness()
        defer { h.close() }
        let a = WorkerKey().id, b = WorkerKey().id
        #expect(try !h.registry.isAdmitted(a))
        try h.registry.admitWorker(a, note: "box 1", now: 1_000)
        try h.registry.admitWorkers([b], now: 2_000)
        #expect(try h.registry.isAdmitted(a) && h.registry.isAdmitted(b))
        try h.registry.revokeWorker(a, now: 3_000)
        #expect(try !h.registry.isAdmitted(a))
        #expect(try #require(throws: LedgerError.self) { try h.registry.revokeWorker(a) }.code == .notFound)
        var listed = try h.registry.admittedWorkers()
        #expect(listed.map(\.worker) == [a, b])
        #expect(listed[0] == AccountRegistry.AdmittedWorker(worker: a, admittedMilliseconds: 1_000, revokedMilliseconds: 3_000, note: "box 1"))
        // Admitting again clears the revocation, takes the new time, keeps the note.
        try h.registry.admitWorker(a, now: 4_000)
        listed = try h.registry.admittedWorkers()
        #expect(listed.first { $0.worker == a } == AccountRegistry.AdmittedWorker(worker: a, admittedMilliseconds: 4_000, note: "box 1"))
        // Admitting an admitted worker keeps its admission time.
        try h.registry.admitWorker(b, note: "box 2", now: 5_000)
        #expect(try h.registry.admittedWorkers().first { $0.worker == b }?.admittedMilliseconds == 2_000)
    }

    @Test func admissionsSurviveReopening() throws {
        let h = try FleetHarness()
        defer { h.close() }
        let a = WorkerKey().id
        try h.registry.admitWorker(a)
        let reopened = try AccountRegistry(path: h.directory.appendingPathComponent("accounts.sqlite").path)
        #expect(try reopened.isAdmitted(a))
    }

    @Test func aJoinTokenAdmitsOneWorkerOnce() throws {
        let h = try FleetHarness()
        defer { h.close() }
        let token = try h.registry.issueJoinToken(note: "lambda", lifetime: .seconds(60), now: 10_000)
        #expect(token.secret.hasPrefix("vj_") && token.tokenID.hasPrefix("jt_"))
        #expect(token.expiresMilliseconds == 70_000)
        let a = WorkerKey().id, b = WorkerKey().id
        try h.registry.redeemJoinToken(token.secret, for: a, now: 20_000)
        #expect(try h.registry.isAdmitted(a))
        #expect(try h.registry.admittedWorkers().first?.note == "lambda (join token \(token.tokenID))")
        let spent = try #require(throws: LedgerError.self) { try h.registry.redeemJoinToken(token.secret, for: b, now: 20_001) }
        #expect(spent.code == .notFound)
        #expect(try !h.registry.isAdmitted(b))
    }

    @Test func anExpiredOrUnknownJoinTokenAdmitsNobody() throws {
        let h = try FleetHarness()
        defer { h.close() }
        let token = try h.registry.issueJoinToken(lifetime: .seconds(60), now: 10_000)
        let a = WorkerKey().id
        #expect(throws: LedgerError.self) { try h.registry.redeemJoinToken(token.secret, for: a, now: 70_000) }
        #expect(throws: LedgerError.self) { try h.registry.redeemJoinToken(token.secret + "x", for: a, now: 10_001) }
        #expect(try !h.registry.isAdmitted(a))
    }

    @Test func onlyTheTokensHashIsStored() throws {
        let h = try FleetHarness()
        defer { h.close() }
        let token = try h.registry.issueJoinToken()
        for file in try FileManager.default.contentsOfDirectory(at: h.directory, includingPropertiesForKeys: nil) {
            #expect(try Data(contentsOf: file).range(of: Data(token.secret.dropFirst(3).utf8)) == nil, "\(file.lastPathComponent)")
        }
    }
}
