import Crypto
import Foundation
import GRDB
import Testing
@testable import Ledger

/// Ledgers written before version 2 stay readable and verifiable: the fixture in
/// Fixtures/envelope-v1.vle was sealed by the version-1 sealer (commit 472c643, since replaced),
/// to the two accounts whose key bundles lie beside it.
@Suite("Record envelopes, version 1: still read, opened and audited")
struct EnvelopeV1CompatibilityTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    let bytes: Data
    let sender: Account
    let auditor: Account

    init() throws {
        bytes = try Data(contentsOf: Self.directory.appendingPathComponent("envelope-v1.vle"))
        sender = try Account(bundleData: try Data(contentsOf: Self.directory.appendingPathComponent("envelope-v1-sender.json")))
        auditor = try Account(bundleData: try Data(contentsOf: Self.directory.appendingPathComponent("envelope-v1-auditor.json")))
    }

    @Test func theFixtureDecodesAndBothRecipientsOpenIt() throws {
        #expect(bytes.prefix(4) == Data("VLE1".utf8))
        let envelope = try RecordEnvelope(canonicalBytes: bytes)
        #expect(envelope.version == 1 && envelope.keyCommitment == nil)
        #expect(envelope.recordID == Fixtures.fullRecord.recordID && envelope.nodeID == "node-1")
        #expect(envelope.recipients.map(\.keyID) == [sender.recipientKey.keyID, auditor.recipientKey.keyID])
        #expect(try envelope.canonicalBytes() == bytes, "re-encoding a version-1 envelope must give its bytes back")
        #expect(try sender.open(envelope) == Fixtures.fullRecord)
        #expect(try auditor.open(envelope) == Fixtures.fullRecord)
        let error = try #require(throws: LedgerError.self) { try Account().open(envelope) }
        #expect(error.code == .notARecipient)
    }

    @Test func aKeyPosingAsAVersion1RecipientCannotDecrypt() throws {
        // Forge a stranger's key id into the envelope: HPKE must still refuse.
        let stranger = Account()
        var envelope = try RecordEnvelope(canonicalBytes: bytes)
        envelope.recipients[0].keyID = stranger.recipientKey.keyID
        let error = try #require(throws: LedgerError.self) { try stranger.open(envelope) }
        #expect(error.code == .decryptionFailed)
    }

    @Test func everyByteFlipOfTheFixtureIsDetected() throws {
        for i in 0..<bytes.count {
            #expect(throws: LedgerError.self, "flip of byte \(i) went unnoticed") {
                try sender.open(try RecordEnvelope(canonicalBytes: bytes.flipping(i)))
            }
        }
    }

    /// A log holding a version-1 leaf (as an old data directory does) and a version-2 leaf
    /// verifies; so do both receipts, with each header's facts.
    @Test func aLedgerOfBothVersionsVerifies() async throws {
        let store = InMemoryLedgerStore()
        let signer = try NoteSigner(name: "verity.test/ledger")
        let node = try LedgerNode(store: store, signer: signer)
        var newer = Fixtures.minimalRecord
        newer.recordID = "v2-record"
        _ = try await node.append(try RecordEnvelope(canonicalBytes: bytes), owner: nil)
        _ = try await node.append(try RecordEnvelope.seal(newer, to: [sender.recipientKey], nodeID: "node-2"), owner: sender.recipientKey.keyID)
        try await node.seal()
        #expect(try store.leaves()[0].envelope == bytes)
        let report = try await node.verifyAll()
        #expect(report.isValid, "\(report.problems)")
        let v1 = try await node.receipt(recordID: Fixtures.fullRecord.recordID).verify(verifier: signer.verifier)
        #expect(v1.nodeID == "node-1" && v1.timestampMilliseconds == Fixtures.fullRecord.timestampMilliseconds)
        let v2 = try await node.receipt(recordID: "v2-record").verify(verifier: signer.verifier)
        #expect(v2.nodeID == "node-2" && v2.block.treeSize == 2)
        #expect(try sender.open(try await node.envelope(recordID: "v2-record")) == newer)

        // Each version's altered envelope is still named.
        let good = try store.leaves()
        for index in [0, 1] {
            store.tamper { leaves, _ in
                leaves = good
                leaves[index].envelope = good[index].envelope.flipping(good[index].envelope.count / 2)
            }
            #expect(try LedgerAudit.run(store: store, verifier: signer.verifier).problems
                .contains { $0.subject == .record(index: UInt64(index), recordID: good[index].recordID) })
        }
    }

    /// A version-2 ciphertext that is not a bucket plus the tag is named by the audit.
    @Test func theAuditChecksVersion2Buckets() async throws {
        let store = InMemoryLedgerStore()
        let signer = try NoteSigner(name: "verity.test/ledger")
        let node = try LedgerNode(store: store, signer: signer)
        var odd = try RecordEnvelope.seal(Fixtures.minimalRecord, to: [sender.recipientKey], nodeID: "n")
        odd.ciphertext = odd.ciphertext.dropLast(100)
        _ = try await node.append(odd, owner: nil)
        let report = try await node.verifyAll()
        #expect(report.problems.map(\.subject) == [.record(index: 0, recordID: "r")])
        #expect(report.problems.first?.message.contains("bucket") == true)
    }

    /// An SQLite ledger written before migration `v2` (no owners table) is read as it is, and
    /// opening it for writing adds the owners table and the tiles and goes on with version-2 records.
    @Test func anOldSQLiteLedgerMigratesAndGoesOn() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("v1-ledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("ledger.sqlite").path
        let signer = try NoteSigner(name: "verity.test/ledger")

        // The old schema, with the fixture as leaf 0 and a block over it.
        var tree = MerkleTree()
        tree.append(leaf: bytes)
        let block = try Block(height: 0, size: 1, rootHash: try tree.rootHash(), previousHash: Block.genesisPreviousHash, signer: signer)
        do {
            let queue = try DatabaseQueue(path: path)
            try SQLiteLedgerStore.migrator.migrate(queue, upTo: "v1")
            try await queue.write { db in
                try db.execute(sql: "INSERT INTO leaves (idx, record_id, envelope, leaf_hash) VALUES (0, ?, ?, ?)",
                               arguments: [Fixtures.fullRecord.recordID, bytes, RFC6962.leafHash(bytes)])
                try db.execute(sql: "INSERT INTO blocks (height, note) VALUES (0, ?)", arguments: [block.note.formatted])
            }
        }
        let reader = try SQLiteLedgerStore(readingAt: path)
        #expect(try reader.leaves().map(\.owner) == [nil])
        #expect(try reader.leaves(owner: sender.recipientKey.keyID).isEmpty)
        #expect(try LedgerAudit.run(store: reader, verifier: signer.verifier).isValid)

        let node = try LedgerNode(store: try SQLiteLedgerStore(path: path), signer: signer)
        var newer = Fixtures.minimalRecord
        newer.recordID = "v2-record"
        _ = try await node.append(try RecordEnvelope.seal(newer, to: [sender.recipientKey], nodeID: "n"), owner: sender.recipientKey.keyID)
        try await node.seal()
        #expect(try await node.verifyAll().isValid)
        // Migration v4 gave the version-1 leaf the owner its envelope names (its sender), and built
        // the tiles the node's root came from.
        #expect(try await node.leaves(owner: sender.recipientKey.keyID).map(\.recordID) == [Fixtures.fullRecord.recordID, "v2-record"])
        let reread = try SQLiteLedgerStore(readingAt: path)
        #expect(try reread.leaves().map(\.owner) == [sender.recipientKey.keyID, sender.recipientKey.keyID])
        #expect(try sender.open(try RecordEnvelope(canonicalBytes: try #require(try reread.leaf(recordID: Fixtures.fullRecord.recordID)).envelope))
                == Fixtures.fullRecord)
    }
}
