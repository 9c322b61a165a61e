import Foundation
import Testing
@testable import Ledger

@Suite("Group commit: several records in one durable append")
struct GroupCommitTests {
    let alice = Account()

    func envelope(_ id: String) throws -> RecordEnvelope {
        try RecordEnvelope.seal(Fixtures.record(id, sender: alice), to: [alice.recipientKey], nodeID: "n")
    }

    /// The same log as appending one by one; a duplicate refuses only itself.
    @Test(arguments: [false, true])
    func aGroupIsTheSameLogAsOneByOne(sqlite: Bool) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("group-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func store(_ name: String) throws -> any LedgerStore {
            sqlite ? try SQLiteLedgerStore(path: dir.appendingPathComponent(name).path) : InMemoryLedgerStore()
        }
        let signer = try NoteSigner(name: "verity.test/ledger")
        let grouped = try LedgerNode(store: try store("a.sqlite"), signer: signer)
        let single = try LedgerNode(store: try store("b.sqlite"), signer: signer)
        let envelopes = try ["r0", "r1", "r2", "r3"].map(envelope)
        let owner = alice.recipientKey.keyID
        _ = try await grouped.append(envelopes[0], owner: owner)
        let results = await grouped.append(contentsOf: [envelopes[1], envelopes[0], envelopes[2], envelopes[2], envelopes[3]].map { ($0, owner) })
        #expect(try results[0].get().leafIndex == 1)
        #expect(throws: LedgerError.self) { try results[1].get() }
        #expect(try results[2].get().leafIndex == 2)
        #expect(throws: LedgerError.self) { try results[3].get() }
        #expect(try results[4].get().leafIndex == 3)
        for e in envelopes { _ = try await single.append(e, owner: owner) }
        #expect(await grouped.size == 4)
        let a = try #require(try await grouped.seal()), b = try #require(try await single.seal())
        #expect(a.rootHash == b.rootHash)
        #expect(try await grouped.verifyAll().isValid)
        // Each record's owner landed with it, in the same transaction.
        #expect(try await grouped.leaves(owner: owner).map(\.recordID) == ["r0", "r1", "r2", "r3"])
    }

    /// A store failure refuses the whole group and leaves the log as it was.
    @Test func aFailedGroupAppendsNothing() async throws {
        let store = InMemoryLedgerStore()
        let node = try LedgerNode(store: store, signer: try NoteSigner(name: "verity.test/ledger"))
        _ = try await node.append(try envelope("r0"), owner: nil)
        // A row written behind the node's back: the node's next index is now taken.
        try store.append(StoredLeaf(index: 1, recordID: "intruder", envelope: Data([1]), leafHash: RFC6962.leafHash(Data([1]))))
        let results = await node.append(contentsOf: [(try envelope("r1"), nil), (try envelope("r2"), nil)])
        for result in results { #expect(throws: LedgerError.self) { try result.get() } }
        #expect(await node.size == 1)
        #expect(try store.leaves().map(\.recordID) == ["r0", "intruder"])
    }
}
