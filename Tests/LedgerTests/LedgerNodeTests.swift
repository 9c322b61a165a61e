import Crypto
import Foundation
import Testing
@testable import Ledger

@Suite("Ledger node: blocks, receipts, consistency")
struct LedgerNodeTests {
    let alice = Account()
    let auditor = Account()

    func makeNode(_ store: InMemoryLedgerStore = InMemoryLedgerStore(), signer: NoteSigner? = nil) throws -> (LedgerNode, NoteSigner) {
        let signer = try signer ?? NoteSigner(name: "verity.test/ledger")
        return (try LedgerNode(store: store, signer: signer), signer)
    }

    func envelope(_ id: String, prompt: String = "hello") throws -> RecordEnvelope {
        try RecordEnvelope.seal(Fixtures.record(id, prompt: prompt, sender: alice), to: [alice.recipientKey, auditor.recipientKey], nodeID: "node-1")
    }

    @Test func appendSealAndVerifyAReceiptOffline() async throws {
        let (node, signer) = try makeNode()
        let e0 = try envelope("r0"), e1 = try envelope("r1"), e2 = try envelope("r2")
        let a0 = try await node.append(e0, owner: alice.recipientKey.keyID)
        _ = try await node.append(e1, owner: alice.recipientKey.keyID)
        let a2 = try await node.append(e2, owner: alice.recipientKey.keyID)
        #expect(a0.leafIndex == 0 && a2.leafIndex == 2)
        #expect(a2.leafHash == (try e2.leafHash()))

        await #expect(throws: LedgerError.self) { try await node.receipt(recordID: "r1") }
        let block = try #require(try await node.seal())
        #expect(block.height == 0 && block.treeSize == 3)
        #expect(block.previousHash == Block.genesisPreviousHash)

        let receipt = try await node.receipt(recordID: "r1")
        // Offline: only the receipt, the envelope and the published key text.
        let published = signer.verifier.verifierKey
        let verified = try receipt.verify(nodeKey: published)
        #expect(verified.block.treeSize == 3)
        #expect(verified.recordID == "r1" && verified.nodeID == "node-1")
        #expect(verified.timestampMilliseconds == e1.timestampMilliseconds)
        #expect(receipt.envelope == (try e1.canonicalBytes()))
        try receipt.verify(envelope: e1, verifier: signer.verifier)
        #expect(throws: LedgerError.self) { try receipt.verify(envelope: e0, verifier: signer.verifier) }
        // The receipt survives JSON.
        let json = try JSONEncoder().encode(receipt)
        try JSONDecoder().decode(Receipt.self, from: json).verify(nodeKey: published)
        // The stored envelope decrypts for the sender.
        #expect(try alice.open(try await node.envelope(recordID: "r1")).prompt == "hello")
    }

    /// Any change to any byte of a receipt's block, proof or leaf hash fails verification.
    @Test func everyByteFlipOfAReceiptFails() async throws {
        let (node, signer) = try makeNode()
        for i in 0..<5 { _ = try await node.append(try envelope("r\(i)"), owner: alice.recipientKey.keyID) }
        try await node.seal()
        let receipt = try await node.receipt(recordID: "r3")
        try receipt.verify(verifier: signer.verifier)

        let block = Data(receipt.block.utf8)
        for i in 0..<block.count {
            for mask: UInt8 in [0x01, 0x40] {
                var r = receipt
                r.block = String(decoding: block.flipping(i, mask: mask), as: UTF8.self)
                #expect(throws: LedgerError.self, "block byte \(i) ^ \(mask)") { try r.verify(verifier: signer.verifier) }
            }
        }
        for bit in 0..<256 {
            var r = receipt
            r.leafHash = r.leafHash.flipping(bit / 8, mask: 1 << UInt8(bit % 8))
            #expect(throws: LedgerError.self) { try r.verify(verifier: signer.verifier) }
            for p in receipt.inclusionProof.indices {
                var r = receipt
                r.inclusionProof[p] = r.inclusionProof[p].flipping(bit / 8, mask: 1 << UInt8(bit % 8))
                #expect(throws: LedgerError.self) { try r.verify(verifier: signer.verifier) }
            }
        }
        for index in [UInt64(0), 1, 2, 4, 5] {
            var r = receipt
            r.leafIndex = index
            #expect(throws: LedgerError.self, "index \(index)") { try r.verify(verifier: signer.verifier) }
        }
        // Another node's key does not verify it.
        #expect(throws: LedgerError.self) { try receipt.verify(verifier: try NoteSigner(name: "verity.test/ledger").verifier) }
    }

    /// The receipt binds its record: the id, the envelope (so the proven time and node), and the
    /// leaf are each checked, and a receipt without its envelope proves no record id.
    @Test func aReceiptBindsItsRecordAndEnvelope() async throws {
        let (node, signer) = try makeNode()
        for i in 0..<5 { _ = try await node.append(try envelope("r\(i)"), owner: alice.recipientKey.keyID) }
        try await node.seal()
        let receipt = try await node.receipt(recordID: "r3")
        let other = try await node.receipt(recordID: "r1")
        #expect(try receipt.verify(verifier: signer.verifier).recordID == "r3")

        func rejected(_ what: Comment, _ mutate: (inout Receipt) -> Void) {
            var r = receipt
            mutate(&r)
            #expect(r != receipt, what)
            #expect(throws: LedgerError.self, what) { try r.verify(verifier: signer.verifier) }
        }
        // Another id: a real one of the same log, and any other.
        for id in ["r1", "r4", "r3 ", "R3", "", "chatcmpl-x"] { rejected("recordID \(id)") { $0.recordID = id } }
        // Another record's envelope, alone or with its leaf hash.
        rejected("r1's envelope") { $0.envelope = other.envelope }
        rejected("r1's envelope and leaf hash") { $0.envelope = other.envelope; $0.leafHash = other.leafHash }
        rejected("r1's envelope, leaf hash and id") { $0.envelope = other.envelope; $0.leafHash = other.leafHash; $0.recordID = "r1" }
        // Any bit of the envelope.
        let bytes = try #require(receipt.envelope)
        for i in 0..<bytes.count {
            for mask: UInt8 in [0x01, 0x80] { rejected("envelope byte \(i) ^ \(mask)") { $0.envelope = bytes.flipping(i, mask: mask) } }
        }
        rejected("an envelope with a byte more") { $0.envelope = bytes + [0] }
        rejected("a truncated envelope") { $0.envelope = bytes.dropLast() }
        rejected("a leaf hash bit") { $0.leafHash = $0.leafHash.flipping(31, mask: 0x80) }
        rejected("the leaf index") { $0.leafIndex = 2 }
        rejected("a proof byte") { $0.inclusionProof[0] = $0.inclusionProof[0].flipping(0) }
        rejected("the block") { $0.block = $0.block.replacingOccurrences(of: "\n5\n", with: "\n6\n") }

        // Without an envelope (a receipt as written before they carried one): unproven.
        var bare = receipt
        bare.envelope = nil
        let error = try #require(throws: LedgerError.self) { try bare.verify(verifier: signer.verifier) }
        #expect(error.message.contains("no envelope"))
        // …also after a JSON round trip, where the field is simply absent.
        let json = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(bare)) as? [String: Any]
        #expect(json?["envelope"] == nil && json?["recordID"] as? String == "r3")
        #expect(throws: LedgerError.self) { try JSONDecoder().decode(Receipt.self, from: try JSONEncoder().encode(bare)).verify(verifier: signer.verifier) }
        // The JSON names every field as documented, the envelope in base64.
        let full = try #require(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(receipt)) as? [String: Any])
        #expect(Set(full.keys) == ["recordID", "leafIndex", "leafHash", "inclusionProof", "block", "envelope"])
        #expect(full["envelope"] as? String == bytes.base64EncodedString())
    }

    @Test func anOwnerIsEightBytes() async throws {
        let (node, _) = try makeNode()
        let error = await #expect(throws: LedgerError.self) { try await node.append(try envelope("x"), owner: Data([1, 2, 3])) }
        #expect(error?.code == .invalidValue)
        #expect(await node.size == 0)
    }

    @Test func blocksChainAndAreConsistent() async throws {
        let (node, signer) = try makeNode()
        var blocks: [Block] = []
        for round in 0..<4 {
            for i in 0...round { _ = try await node.append(try envelope("b\(round)-\(i)"), owner: nil) }
            blocks.append(try #require(try await node.seal()))
        }
        #expect(try await node.seal() == nil)  // nothing new
        for (h, block) in blocks.enumerated() {
            #expect(block.height == UInt64(h))
            #expect(try Block(text: block.note.formatted, verifier: signer.verifier) == block)
            #expect(try await node.block(height: UInt64(h)) == block)
            if h > 0 {
                let previous = blocks[h - 1]
                #expect(block.previousHash == previous.hash)
                try MerkleProof.verifyConsistency(
                    oldSize: previous.treeSize, newSize: block.treeSize, oldRoot: previous.rootHash, newRoot: block.rootHash,
                    proof: try await node.consistencyProof(from: previous.treeSize, to: block.treeSize)
                )
            }
        }
        // Receipts refer to the latest block, for old and new records alike.
        try await node.receipt(recordID: "b0-0").verify(verifier: signer.verifier)
        #expect(try await node.verifyAll().isValid)
    }

    @Test func theSignerRefusesAnInconsistentCheckpoint() throws {
        let signer = try NoteSigner(name: "verity.test/ledger")
        var tree = MerkleTree()
        for i in 0..<4 { tree.append(leaf: Data("x\(i)".utf8)) }
        var blockSigner = BlockSigner(signer: signer, lastBlock: nil)
        _ = try blockSigner.signNext(size: 4, rootHash: try tree.rootHash(), consistencyProof: [])

        // A fork: same first three leaves, a different fourth, then more.
        var fork = MerkleTree()
        for i in 0..<3 { fork.append(leaf: Data("x\(i)".utf8)) }
        for i in 0..<3 { fork.append(leaf: Data("forged\(i)".utf8)) }
        let error = try #require(throws: LedgerError.self) {
            try blockSigner.signNext(size: 6, rootHash: try fork.rootHash(), consistencyProof: try fork.consistencyProof(from: 4, to: 6))
        }
        #expect(error.code == .inconsistentCheckpoint)
        #expect(blockSigner.lastBlock?.height == 0)
        // Shrinking is refused too.
        #expect(throws: LedgerError.self) { try blockSigner.signNext(size: 3, rootHash: try tree.rootHash(size: 3), consistencyProof: []) }
        // The honest extension is signed, as height 1.
        tree.append(leaf: Data("x4".utf8))
        let next = try blockSigner.signNext(size: 5, rootHash: try tree.rootHash(), consistencyProof: try tree.consistencyProof(from: 4, to: 5))
        #expect(next.height == 1)
    }

    @Test func duplicateRecordIDsAreRefused() async throws {
        let (node, _) = try makeNode()
        _ = try await node.append(try envelope("same"), owner: nil)
        let error = await #expect(throws: LedgerError.self) { try await node.append(try envelope("same"), owner: nil) }
        #expect(error?.code == .duplicateRecord)
        #expect(await node.size == 1)
    }

    @Test func twoHundredConcurrentAppendsGetDistinctLeavesInOneTree() async throws {
        let (node, signer) = try makeNode()
        let envelopes = try (0..<200).map { try envelope("c\($0)") }
        let appended = try await withThrowingTaskGroup(of: LedgerNode.Appended.self) { group in
            for e in envelopes { group.addTask { try await node.append(e, owner: nil) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(appended.map(\.leafIndex)) == Set(0..<200))
        #expect(Set(appended.map(\.recordID)).count == 200)
        try await node.seal()
        for a in appended.prefix(20) {
            try await node.receipt(recordID: a.recordID).verify(verifier: signer.verifier)
        }
        #expect(try await node.verifyAll().isValid)
    }

    @Test func reopeningAStoreContinuesTheChain() async throws {
        let store = InMemoryLedgerStore()
        let (node, signer) = try makeNode(store)
        _ = try await node.append(try envelope("a"), owner: nil)
        let first = try #require(try await node.seal())
        let (reopened, _) = try makeNode(store, signer: signer)
        #expect(await reopened.size == 1)
        _ = try await reopened.append(try envelope("b"), owner: nil)
        let second = try #require(try await reopened.seal())
        #expect(second.height == 1 && second.previousHash == first.hash)
        // Opening with another key fails: the stored blocks are not its own.
        #expect(throws: LedgerError.self) { try makeNode(store) }
    }
}
