import Foundation
import GRDB
import Testing
@testable import Ledger

@Suite("SQLite ledger store")
struct SQLiteLedgerStoreTests {
    let alice = Account()

    func withDatabase(_ body: (String) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try await body(dir.appendingPathComponent("ledger.sqlite").path)
    }

    func fill(_ path: String, signer: NoteSigner, prompts: [String]) async throws {
        let node = try LedgerNode(store: try SQLiteLedgerStore(path: path), signer: signer)
        for (i, prompt) in prompts.enumerated() {
            let record = Fixtures.record("rec-\(i)", prompt: prompt, sender: alice)
            _ = try await node.append(try RecordEnvelope.seal(record, to: [alice.recipientKey], nodeID: "n"), owner: alice.recipientKey.keyID)
        }
        try await node.seal()
    }

    /// Rewrites the database as an attacker with the file could: drop the triggers, run `sql`.
    func tamper(_ path: String, _ sql: String, _ arguments: StatementArguments = []) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            for name in ["leaves_no_update", "leaves_no_delete", "blocks_no_update", "blocks_no_delete",
                         "record_owners_no_update", "record_owners_no_delete"] {
                try db.execute(sql: "DROP TRIGGER IF EXISTS \(name)")
            }
            try db.execute(sql: sql, arguments: arguments)
        }
    }

    @Test func recordsSurviveReopeningAndTheChainContinues() async throws {
        try await withDatabase { path in
            let signer = try NoteSigner(name: "verity.test/ledger")
            try await fill(path, signer: signer, prompts: ["one", "two", "three"])
            let store = try SQLiteLedgerStore(path: path)
            #expect(try store.journalMode() == "wal")
            let node = try LedgerNode(store: store, signer: signer)
            #expect(await node.size == 3)
            let receipt = try await node.receipt(recordID: "rec-1")
            try receipt.verify(verifier: signer.verifier)
            #expect(try alice.open(try await node.envelope(recordID: "rec-2")).prompt == "three")
            _ = try await node.append(try RecordEnvelope.seal(Fixtures.record("rec-3", sender: alice), to: [alice.recipientKey], nodeID: "n"),
                                      owner: alice.recipientKey.keyID)
            let block = try #require(try await node.seal())
            #expect(block.height == 1)
            #expect(try await node.verifyAll().isValid)
        }
    }

    @Test func updatesAndDeletesAreRefused() async throws {
        try await withDatabase { path in
            try await fill(path, signer: try NoteSigner(name: "verity.test/ledger"), prompts: ["a"])
            let queue = try DatabaseQueue(path: path)
            #expect(throws: (any Error).self) { try queue.write { try $0.execute(sql: "DELETE FROM leaves") } }
            #expect(throws: (any Error).self) { try queue.write { try $0.execute(sql: "UPDATE blocks SET note = 'x'") } }
            let store = try SQLiteLedgerStore(path: path)
            let leaf = try #require(try store.leaves().first)
            let error = try #require(throws: LedgerError.self) { try store.append(leaf) }
            #expect(error.code == .storage)
        }
    }

    @Test func alteringOneStoredByteNamesTheRecord() async throws {
        try await withDatabase { path in
            let signer = try NoteSigner(name: "verity.test/ledger")
            try await fill(path, signer: signer, prompts: ["a", "b", "c", "d"])
            var envelope = try #require(try SQLiteLedgerStore(path: path).leaf(recordID: "rec-2")).envelope
            envelope[envelope.count - 1] ^= 0x01
            try tamper(path, "UPDATE leaves SET envelope = ? WHERE idx = 2", [envelope])
            let report = try LedgerAudit.run(store: try SQLiteLedgerStore(path: path), verifier: signer.verifier)
            #expect(report.problems.contains { $0.subject == .record(index: 2, recordID: "rec-2") })
            // A restart reads only the right edge, so it does not see a record altered inside the
            // tree (the audit does, above); it does see leaves that no longer match the tiles.
            _ = try LedgerNode(store: try SQLiteLedgerStore(path: path), signer: signer)
            try tamper(path, "DELETE FROM leaves WHERE idx = 3")
            #expect(throws: LedgerError.self) { try LedgerNode(store: try SQLiteLedgerStore(path: path), signer: signer) }
        }
    }

    @Test func deletingOrReorderingRowsIsFound() async throws {
        try await withDatabase { path in
            let signer = try NoteSigner(name: "verity.test/ledger")
            try await fill(path, signer: signer, prompts: ["a", "b", "c", "d"])
            try tamper(path, "DELETE FROM leaves WHERE idx = 1")
            let report = try LedgerAudit.run(store: try SQLiteLedgerStore(path: path), verifier: signer.verifier)
            #expect(report.problems.contains { $0.subject == .record(index: 1, recordID: "rec-2") })
        }
        try await withDatabase { path in
            let signer = try NoteSigner(name: "verity.test/ledger")
            try await fill(path, signer: signer, prompts: ["a", "b", "c", "d"])
            // Swap the rows' positions: rec-0 becomes leaf 3 and rec-3 leaf 0.
            try tamper(path, "UPDATE leaves SET idx = -1 WHERE idx = 0; UPDATE leaves SET idx = 0 WHERE idx = 3; UPDATE leaves SET idx = 3 WHERE idx = -1")
            let report = try LedgerAudit.run(store: try SQLiteLedgerStore(path: path), verifier: signer.verifier)
            #expect(report.problems.contains { $0.subject == .records(from: 0, to: 4) })
            #expect(!report.isValid)
        }
    }

    /// A reader (`verity ledger verify` beside a running server) sees what the writer stored,
    /// cannot write, and refuses a file that is not a ledger.
    @Test func aReadOnlyStoreSeesTheLedgerAndPagesThroughIt() async throws {
        try await withDatabase { path in
            let signer = try NoteSigner(name: "verity.test/ledger")
            try await fill(path, signer: signer, prompts: ["a", "b", "c", "d", "e"])
            let reader = try SQLiteLedgerStore(readingAt: path)
            let all = try reader.leaves()
            #expect(all.map(\.recordID) == ["rec-0", "rec-1", "rec-2", "rec-3", "rec-4"])
            #expect(try reader.leaves(from: 1, limit: 2) == Array(all[1...2]))
            #expect(try reader.leaves(from: 4, limit: 10) == [all[4]])
            #expect(try reader.leaves(from: 5, limit: 10).isEmpty)
            #expect(try LedgerAudit.run(store: reader, verifier: signer.verifier).isValid)
            #expect(throws: LedgerError.self) {
                try reader.append(StoredLeaf(index: 5, recordID: "x", envelope: Data([1]), leafHash: RFC6962.leafHash(Data([1]))))
            }
            let other = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("other.sqlite").path
            _ = try DatabaseQueue(path: other)
            #expect(throws: LedgerError.self) { try SQLiteLedgerStore(readingAt: other) }
            #expect(throws: LedgerError.self) { try SQLiteLedgerStore(readingAt: other + ".missing") }
        }
    }

    /// Owners are stored beside their leaves, returned with them, listed by owner, survive
    /// reopening, and can be neither changed nor deleted; a refused batch stores none.
    @Test func ownersAreStoredWithTheirLeaves() async throws {
        try await withDatabase { path in
            let signer = try NoteSigner(name: "verity.test/ledger")
            let bob = Account()
            let node = try LedgerNode(store: try SQLiteLedgerStore(path: path), signer: signer)
            for (i, owner) in [alice, bob, alice].enumerated() {
                let envelope = try RecordEnvelope.seal(Fixtures.record("rec-\(i)", sender: owner), to: [owner.recipientKey], nodeID: "n")
                _ = try await node.append(envelope, owner: owner.recipientKey.keyID)
            }
            _ = try await node.append(try RecordEnvelope.seal(Fixtures.record("no-owner", sender: alice), to: [alice.recipientKey], nodeID: "n"),
                                      owner: nil)
            let results = await node.append(contentsOf: [
                (try RecordEnvelope.seal(Fixtures.record("in-batch", sender: bob), to: [bob.recipientKey], nodeID: "n"), bob.recipientKey.keyID),
                (try RecordEnvelope.seal(Fixtures.record("rec-0", sender: bob), to: [bob.recipientKey], nodeID: "n"), bob.recipientKey.keyID),
            ])
            #expect(results.count == 2)

            for store in [try SQLiteLedgerStore(path: path), try SQLiteLedgerStore(readingAt: path)] {
                let leaves = try store.leaves()
                #expect(leaves.map(\.owner) == [alice.recipientKey.keyID, bob.recipientKey.keyID, alice.recipientKey.keyID, nil,
                                                  bob.recipientKey.keyID])
                #expect(try store.leaves(owner: alice.recipientKey.keyID).map(\.recordID) == ["rec-0", "rec-2"])
                #expect(try store.leaves(owner: bob.recipientKey.keyID).map(\.recordID) == ["rec-1", "in-batch"])
                #expect(try store.leaves(owner: Account().recipientKey.keyID).isEmpty)
                #expect(try store.leaf(recordID: "rec-1")?.owner == bob.recipientKey.keyID)
                #expect(try store.leaves(from: 3, limit: 1).first?.owner == nil)
            }
            // The owner is not part of the leaf: the audit does not read it.
            #expect(try LedgerAudit.run(store: try SQLiteLedgerStore(readingAt: path), verifier: signer.verifier).isValid)

            let queue = try DatabaseQueue(path: path)
            #expect(throws: (any Error).self) { try queue.write { try $0.execute(sql: "UPDATE record_owners SET owner = x'00'") } }
            #expect(throws: (any Error).self) { try queue.write { try $0.execute(sql: "DELETE FROM record_owners") } }
            #expect(try await queue.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM record_owners") } == 4)

            // A batch the store refuses (an index already taken) stores no owner either.
            let store = try SQLiteLedgerStore(path: path)
            let intruder = StoredLeaf(index: 5, recordID: "x", envelope: Data([1]), leafHash: RFC6962.leafHash(Data([1])), owner: Data(count: 8))
            let taken = StoredLeaf(index: 4, recordID: "y", envelope: Data([2]), leafHash: RFC6962.leafHash(Data([2])), owner: Data(count: 8))
            #expect(throws: LedgerError.self) { try store.append(contentsOf: [intruder, taken]) }
            #expect(try store.leaves(owner: Data(count: 8)).isEmpty)
        }
    }

    /// The in-memory store keeps owners the same way.
    @Test func theInMemoryStoreKeepsOwners() throws {
        let store = InMemoryLedgerStore()
        let leaf = { (i: UInt64, owner: Data?) in
            StoredLeaf(index: i, recordID: "r\(i)", envelope: Data([UInt8(i)]), leafHash: RFC6962.leafHash(Data([UInt8(i)])), owner: owner)
        }
        try store.append(contentsOf: [leaf(0, alice.recipientKey.keyID), leaf(1, nil), leaf(2, alice.recipientKey.keyID)])
        #expect(try store.leaves(owner: alice.recipientKey.keyID).map(\.index) == [0, 2])
        #expect(try store.leaf(recordID: "r2")?.owner == alice.recipientKey.keyID)
        #expect(try store.leaves().map(\.owner) == [alice.recipientKey.keyID, nil, alice.recipientKey.keyID])
    }

    /// A unique marker sent in a prompt appears in none of the database's files.
    @Test func noPlaintextReachesTheDisk() async throws {
        try await withDatabase { path in
            let marker = "MARKER-\(UUID().uuidString)"
            try await fill(path, signer: try NoteSigner(name: "verity.test/ledger"), prompts: [marker, "x \(marker) y"])
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
            let files = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            #expect(!files.isEmpty)
            for file in files {
                let bytes = try Data(contentsOf: file)
                #expect(bytes.range(of: Data(marker.utf8)) == nil, "\(file.lastPathComponent) holds the prompt")
            }
        }
    }
}
