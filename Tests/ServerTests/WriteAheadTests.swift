import Foundation
import Hummingbird
import HummingbirdTesting
import Ledger
import Synchronization
import Testing
@testable import Node
@testable import Server

/// A ledger store whose writes fail while `failing` is set: a full disk, behind the real
/// store's interface (the integration suite fills a real tmpfs too).
final class FaultyStore: LedgerStore {
    let inner = InMemoryLedgerStore()
    /// Every write fails.
    let failing = Mutex(false)
    /// Appending a leaf fails (write-ahead records still go in): storage that fills mid-answer.
    let failingLeaves = Mutex(false)

    private func check(leaves: Bool = true) throws {
        if failing.withLock({ $0 }) || (leaves && failingLeaves.withLock({ $0 })) {
            throw LedgerError(.storage, "injected: no space left on device")
        }
    }

    func append(_ leaf: StoredLeaf) throws { try check(); try inner.append(leaf) }
    func append(contentsOf leaves: [StoredLeaf]) throws { try check(); try inner.append(contentsOf: leaves) }
    func commit(pending: [PendingRecord], discarding: [String], leaves: [StoredLeaf]) throws {
        try check(leaves: !leaves.isEmpty)
        try inner.commit(pending: pending, discarding: discarding, leaves: leaves)
    }
    func appendBlock(_ block: StoredBlock) throws { try check(); try inner.appendBlock(block) }
    func leaves() throws -> [StoredLeaf] { try inner.leaves() }
    func blocks() throws -> [StoredBlock] { try inner.blocks() }
    func leaf(recordID: String) throws -> StoredLeaf? { try inner.leaf(recordID: recordID) }
    func pendingRecords() throws -> [PendingRecord] { try inner.pendingRecords() }
    func leafCount() throws -> UInt64 { try inner.leafCount() }
    func treeEdge() throws -> TreeEdge { try inner.treeEdge() }
    func tile(_ key: TileKey) throws -> Data? { try inner.tile(key) }
    func blockCount() throws -> UInt64 { try inner.blockCount() }
    func block(height: UInt64) throws -> StoredBlock? { try inner.block(height: height) }
}

@Suite("Write-ahead records and storage failures, in process")
struct WriteAheadTests {
    static let chat = #"{"model": "SmolLM2-135M-Instruct.Q4_1", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "temperature": 0}"#

    @Test("with storage refusing writes, a completion is refused with 503 before it starts, and /health is degraded")
    func refusedBeforeStart() async throws {
        let store = FaultyStore()
        try await TestServer.withApp(store: store) { server, client in
            store.failing.withLock { $0 = true }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: TestServer.authorized,
                                     body: ByteBuffer(string: Self.chat)) { response in
                #expect(response.status == .serviceUnavailable)
                #expect((try? ErrorBody(response.body))?.code == "ledger_unavailable")
                #expect(response.headers[.retryAfter] != nil)
            }
            #expect(server.host.models?.first?.scheduler.load.active == 0)
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("degraded"))
            }
            store.failing.withLock { $0 = false }
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: TestServer.authorized,
                                     body: ByteBuffer(string: Self.chat)) { #expect($0.status == .ok) }
            try await client.execute(uri: "/health", method: .get) { #expect($0.status == .ok) }
        }
    }

    @Test("a completion storage refuses at the end gets no answer; it is spooled and written once storage is back")
    func spooledThenWritten() async throws {
        let store = FaultyStore()
        try await TestServer.withApp(store: store) { server, client in
            // The write-ahead record goes in; the completed record does not.
            let body = Self.chat.replacingOccurrences(of: #""max_tokens": 3"#, with: #""max_tokens": 8, "stream": true"#)
            store.failingLeaves.withLock { $0 = true }
            // The stream's body ends in an error (after an error event), never in [DONE].
            await #expect(throws: LedgerWriteFailure.self) {
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: TestServer.authorized,
                                         body: ByteBuffer(string: body)) { _ in }
            }
            #expect(server.ledger.health.spooled == 1)
            #expect(!server.ledger.health.isHealthy)
            #expect(try store.inner.leaves().isEmpty)
            #expect(try store.inner.pendingRecords().count == 1)
            store.failingLeaves.withLock { $0 = false }
            #expect(await server.ledger.retrySpool() == 0)
            let leaves = try store.inner.leaves()
            #expect(leaves.count == 1)
            #expect(try store.inner.pendingRecords().isEmpty)
            #expect(server.ledger.health.isHealthy)
        }
    }

    @Test("write-ahead records a dead process left are recorded as interrupted at the next start")
    func recovery() async throws {
        let store = FaultyStore()
        let account = Account()
        var record = LedgerRecord(recordID: "chatcmpl-orphan", timestampMilliseconds: 1, gpu: "cpu", gpuProvider: "none",
                                  gpuPricePerHourMicros: 0, modelID: "m", modelDigest: "sha256:00", parameters: ModelParameters(),
                                  prompt: "a question", response: "half an ans", senderAddress: "anonymous", finishReason: "interrupted")
        record.completionTokens = 3
        let envelope = try RecordEnvelope.seal(record, to: [account.recipientKey], nodeID: "n")
        try store.inner.commit(pending: [PendingRecord(recordID: record.recordID, envelope: try envelope.canonicalBytes())],
                               discarding: [], leaves: [])
        try await TestServer.withApp(store: store) { server, _ in
            let leaf = try await server.ledger.node.leaf(recordID: "chatcmpl-orphan")
            let recovered = try account.open(try RecordEnvelope(canonicalBytes: leaf.envelope))
            #expect(recovered.finishReason == "interrupted")
            #expect(recovered.prompt == "a question")
            #expect(recovered.response == "half an ans")
            #expect(try store.inner.pendingRecords().isEmpty)
        }
    }
}
