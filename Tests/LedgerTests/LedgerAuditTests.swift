import Foundation
import Testing
@testable import Ledger

/// Tampering with stored rows behind the node's back is found by `verifyAll()` / ``LedgerAudit``
/// and the culprit is named.
@Suite("Ledger audit: tamper detection")
struct LedgerAuditTests {
    let alice = Account()

    /// A store with 6 records in two blocks (sizes 4 and 6).
    func populated() async throws -> (InMemoryLedgerStore, NoteSigner) {
        let store = InMemoryLedgerStore()
        let signer = try NoteSigner(name: "verity.test/ledger")
        let node = try LedgerNode(store: store, signer: signer)
        for i in 0..<6 {
            _ = try await node.append(try RecordEnvelope.seal(Fixtures.record("rec-\(i)", sender: alice), to: [alice.recipientKey], nodeID: "n"),
                                      owner: alice.recipientKey.keyID)
            if i == 3 { try await node.seal() }
        }
        try await node.seal()
        return (store, signer)
    }

    func audit(_ store: InMemoryLedgerStore, _ signer: NoteSigner) throws -> LedgerAudit {
        try LedgerAudit.run(store: store, verifier: signer.verifier)
    }

    @Test func anUntouchedLedgerVerifies() async throws {
        let (store, signer) = try await populated()
        let report = try audit(store, signer)
        #expect(report.isValid)
        #expect(report.leafCount == 6 && report.blockCount == 2 && report.unsealedLeafCount == 0)
    }

    /// Altering any single stored byte of an envelope names that record.
    @Test func alteringAnyByteOfARecordNamesIt() async throws {
        let (store, signer) = try await populated()
        let original = try store.leaves()[2].envelope
        for i in stride(from: 0, to: original.count, by: 7) {
            store.tamper { leaves, _ in leaves[2].envelope = original.flipping(i) }
            let report = try audit(store, signer)
            #expect(report.problems.contains { $0.subject == .record(index: 2, recordID: "rec-2") }, "byte \(i)")
        }
        // A restart checks only the right edge against the latest block (it must not read the
        // whole log); a record inside the tree is the audit's to find, as above.
        _ = try LedgerNode(store: store, signer: signer)
    }

    @Test func alteringARecordAndItsLeafHashNamesTheBlockRange() async throws {
        let (store, signer) = try await populated()
        var forged = try RecordEnvelope(canonicalBytes: try store.leaves()[1].envelope)
        forged.ciphertext = forged.ciphertext.flipping(0)
        let bytes = try forged.canonicalBytes()
        store.tamper { leaves, _ in
            leaves[1].envelope = bytes
            leaves[1].leafHash = RFC6962.leafHash(bytes)
        }
        let report = try audit(store, signer)
        #expect(report.problems.contains { $0.subject == .records(from: 0, to: 4) })
        #expect(!report.isValid)
    }

    @Test func deletingARowNamesTheGap() async throws {
        let (store, signer) = try await populated()
        store.tamper { leaves, _ in leaves.remove(at: 3) }
        let report = try audit(store, signer)
        #expect(report.problems.contains { $0.subject == .record(index: 3, recordID: "rec-4") })
        // Deleting the last sealed row is caught by the block that sealed it.
        let (store2, signer2) = try await populated()
        store2.tamper { leaves, _ in leaves.removeLast() }
        #expect(try audit(store2, signer2).problems.contains { $0.subject == .block(height: 1) })
    }

    @Test func reorderingRowsIsFound() async throws {
        let (store, signer) = try await populated()
        store.tamper { leaves, _ in leaves.swapAt(1, 2) }
        let report = try audit(store, signer)
        #expect(report.problems.contains { $0.subject == .record(index: 1, recordID: "rec-2") })
        #expect(report.problems.contains { $0.subject == .record(index: 2, recordID: "rec-1") })

        // Swapping contents but keeping the indices in order: the signed root catches it.
        let (store2, signer2) = try await populated()
        store2.tamper { leaves, _ in
            let (a, b) = (leaves[4], leaves[5])
            leaves[4] = StoredLeaf(index: 4, recordID: b.recordID, envelope: b.envelope, leafHash: b.leafHash)
            leaves[5] = StoredLeaf(index: 5, recordID: a.recordID, envelope: a.envelope, leafHash: a.leafHash)
        }
        #expect(try audit(store2, signer2).problems.contains { $0.subject == .records(from: 4, to: 6) })
    }

    @Test func alteringOrDroppingABlockNamesIt() async throws {
        let (store, signer) = try await populated()
        let note = Data(try store.blocks()[0].note.utf8)
        store.tamper { _, blocks in blocks[0].note = String(decoding: note.flipping(5), as: UTF8.self) }
        let report = try audit(store, signer)
        #expect(report.problems.contains { $0.subject == .block(height: 0) })

        let (store2, signer2) = try await populated()
        store2.tamper { _, blocks in blocks.removeFirst() }
        #expect(try audit(store2, signer2).problems.contains { $0.subject == .block(height: 0) })
    }

    @Test func unsealedRecordsAreCounted() async throws {
        let (store, signer) = try await populated()
        let node = try LedgerNode(store: store, signer: signer)
        _ = try await node.append(try RecordEnvelope.seal(Fixtures.record("late", sender: alice), to: [alice.recipientKey], nodeID: "n"), owner: nil)
        let report = try await node.verifyAll()
        #expect(report.isValid && report.unsealedLeafCount == 1)
    }
}
