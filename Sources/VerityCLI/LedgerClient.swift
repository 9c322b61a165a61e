import Foundation
import Ledger
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Reads a ledger through a server's public `/v1/ledger/` API.
struct LedgerClient {
    let base: String

    init(_ url: String) { base = url.hasSuffix("/") ? String(url.dropLast()) : url }

    func nodeKey() async throws -> NoteVerifier {
        let body = try await get("/v1/ledger/node-key")
        guard let key = body["verifier_key"] as? String else { throw CLIError("\(base) sent no verifier_key") }
        return try ledgerCall { try NoteVerifier(verifierKey: key) }
    }

    func envelope(_ id: String) async throws -> RecordEnvelope {
        let body = try await get("/v1/ledger/records/\(id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? id)")
        guard let text = body["envelope"] as? String, let bytes = Data(base64Encoded: text) else {
            throw CLIError("\(base) sent no envelope for \(id)")
        }
        return try ledgerCall { try RecordEnvelope(canonicalBytes: bytes) }
    }

    /// The log as the server publishes it in C2SP tlog-tiles form (`/v1/ledger/log/`), as a store
    /// to audit (``RemoteLedgerStore``): its checkpoint, then, as the audit reads them, every entry
    /// bundle and hash tile of the checkpoint's tree and the blocks up to the checkpoint's (by
    /// `/v1/ledger/blocks/{height}`). Nothing but GETs, and memory bounded by a page of entries
    /// and a few tiles, whatever the log's size; the audit re-derives the tree from the entries
    /// and compares it with the served tiles and the signed blocks.
    func snapshot(verifier: NoteVerifier) async throws -> (store: RemoteLedgerStore, checkpoint: Block) {
        let (text, status) = try await fetch("/v1/ledger/log/checkpoint")
        guard status == 200 else { throw CLIError("\(base)/v1/ledger/log/checkpoint: HTTP \(status): \(String(decoding: text.prefix(200), as: UTF8.self))") }
        let checkpoint = try ledgerCall { try Block(note: try SignedNote(parsing: text), verifier: verifier) }
        var blocks: [StoredBlock] = []
        for h in 0...checkpoint.height {
            guard let note = try await get("/v1/ledger/blocks/\(h)")["note"] as? String else { throw CLIError("\(base) sent no block \(h)") }
            blocks.append(StoredBlock(height: h, note: note))
        }
        return (RemoteLedgerStore(client: self, size: checkpoint.treeSize, blocks: blocks), checkpoint)
    }

    /// The envelopes of the entry bundle at `bundle` of a tree of `size` leaves. A bundle holding
    /// an entry over the 65,535 bytes a bundle's length prefix allows is read from
    /// `/v1/ledger/entries` instead.
    func bundle(_ bundle: UInt64, size: UInt64) async throws -> [Data] {
        let width = Int(min(256, size - bundle * 256))
        let address = TileAddress.entries(index: bundle, width: width)
        let (data, status) = try await fetch("/v1/ledger/log/" + address.path)
        var envelopes: [Data] = []
        if status == 200 {
            var at = data.startIndex
            while at < data.endIndex {
                guard data.endIndex - at >= 2 else { throw CLIError("\(address.path): truncated entry length") }
                let length = Int(data[at]) << 8 | Int(data[at + 1])
                guard data.endIndex - at - 2 >= length else { throw CLIError("\(address.path): truncated entry") }
                envelopes.append(Data(data[(at + 2)..<(at + 2 + length)]))
                at += 2 + length
            }
        } else if status == 404, String(decoding: data, as: UTF8.self).contains("entry_too_large") {
            let page = try await get("/v1/ledger/entries?start=\(bundle * 256)&limit=\(width)")
            for entry in page["entries"] as? [[String: Any]] ?? [] {
                guard let envelope = (entry["envelope"] as? String).flatMap({ Data(base64Encoded: $0) }) else { break }
                envelopes.append(envelope)
            }
        } else {
            throw CLIError("\(base)/v1/ledger/log/\(address.path): HTTP \(status): \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
        guard envelopes.count == width else { throw CLIError("\(address.path) holds \(envelopes.count) entries, not \(width)") }
        return envelopes
    }

    /// The served bytes of a hash tile of a tree of `size` leaves (full, or partial at the width
    /// that size gives it); nil if the tree has no hash there or the server has none.
    func tile(_ key: TileKey, size: UInt64) async throws -> Data? {
        let nodes = size >> UInt64(8 * key.level)
        guard key.index * 256 < nodes else { return nil }
        let address = TileAddress.hashes(level: key.level, index: key.index, width: Int(min(256, nodes - key.index * 256)))
        let (data, status) = try await fetch("/v1/ledger/log/" + address.path)
        if status == 404 { return nil }
        guard status == 200 else { throw CLIError("\(base)/v1/ledger/log/\(address.path): HTTP \(status)") }
        return data
    }

    /// The leaf index the server gives a record id, if it knows the record.
    func leafIndex(of id: String) async throws -> UInt64? {
        let (data, status) = try await fetch("/v1/ledger/records/\(id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? id)")
        guard status == 200 else { return nil }
        return ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["leaf_index"] as? UInt64
    }

    /// A GET's body and status.
    func fetch(_ path: String) async throws -> (Data, Int) {
        guard let url = URL(string: base + path) else { throw CLIError("bad URL \(base + path)") }
        return try await withCheckedThrowingContinuation { continuation in
            URLSession.shared.dataTask(with: url) { data, response, error in
                if let error { continuation.resume(throwing: CLIError("cannot reach \(url): \(error.localizedDescription)")); return }
                continuation.resume(returning: (data ?? Data(), (response as? HTTPURLResponse)?.statusCode ?? 0))
            }.resume()
        }
    }

    private func get(_ path: String) async throws -> [String: Any] {
        let url = base + path
        let (data, status) = try await fetch(path)
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        guard status == 200, let object else {
            let message = ((object?["error"] as? [String: Any])?["message"] as? String) ?? String(decoding: data.prefix(200), as: UTF8.self)
            throw CLIError("\(url): HTTP \(status): \(message)")
        }
        return object
    }
}

/// A server's published log as a read-only ``LedgerStore`` for ``LedgerAudit``, read on demand
/// with GETs: entry bundles a page at a time as the audit streams the leaves, tiles as it
/// compares them (a few cached, for the proofs it recomputes). The store's calls are synchronous,
/// like every store's: each waits for its request, which runs on URLSession's own threads.
final class RemoteLedgerStore: LedgerStore, @unchecked Sendable {
    let client: LedgerClient
    let size: UInt64
    let storedBlocks: [StoredBlock]
    private let cache = NSCache<NSString, NSData>()

    init(client: LedgerClient, size: UInt64, blocks: [StoredBlock]) {
        self.client = client
        self.size = size
        self.storedBlocks = blocks
        cache.countLimit = 512
    }

    /// Runs an async request to the end, from synchronous code off the cooperative pool's
    /// critical path (the audit runs on the caller's thread; URLSession answers on its own).
    private func wait<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let box = ResultBox<T>(), done = DispatchSemaphore(value: 0)
        Task.detached {
            do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
            done.signal()
        }
        done.wait()
        return try box.result!.get()
    }

    func leafCount() throws -> UInt64 { size }
    func treeEdge() throws -> TreeEdge { try TreeEdge(size: size) { try tile($0) } }
    func hasTiles() throws -> Bool { true }
    func blockCount() throws -> UInt64 { UInt64(storedBlocks.count) }
    func block(height: UInt64) throws -> StoredBlock? { height < UInt64(storedBlocks.count) ? storedBlocks[Int(height)] : nil }
    func blocks() throws -> [StoredBlock] { storedBlocks }
    func pendingRecords() throws -> [PendingRecord] { [] }

    func tile(_ key: TileKey) throws -> Data? {
        let name = "\(key.level)/\(key.index)" as NSString
        if let cached = cache.object(forKey: name) { return cached as Data }
        let client = client, size = size
        let data = try wait { try await client.tile(key, size: size) }
        if let data { cache.setObject(data as NSData, forKey: name) }
        return data
    }

    func forEachLeaf(_ body: (StoredLeaf) throws -> Void) throws {
        var bundle: UInt64 = 0, index: UInt64 = 0
        let client = client, size = size
        while bundle * 256 < size {
            let number = bundle
            for envelope in try wait({ try await client.bundle(number, size: size) }) {
                let id = (try? RecordEnvelope(canonicalBytes: envelope).recordID) ?? "(leaf \(index): unreadable)"
                try body(StoredLeaf(index: index, recordID: id, envelope: envelope, leafHash: RFC6962.leafHash(envelope)))
                index += 1
            }
            bundle += 1
        }
    }

    func leaves() throws -> [StoredLeaf] {
        var all: [StoredLeaf] = []
        try forEachLeaf { all.append($0) }
        return all
    }

    func leaves(from start: UInt64, limit: Int) throws -> [StoredLeaf] {
        guard start < size, limit > 0 else { return [] }
        let client = client, size = size, first = start / 256
        var out: [StoredLeaf] = []
        var bundle = first
        while out.count < limit, bundle * 256 < size {
            let number = bundle
            for (offset, envelope) in try wait({ try await client.bundle(number, size: size) }).enumerated() {
                let index = number * 256 + UInt64(offset)
                guard index >= start, out.count < limit else { continue }
                let id = (try? RecordEnvelope(canonicalBytes: envelope).recordID) ?? "(leaf \(index): unreadable)"
                out.append(StoredLeaf(index: index, recordID: id, envelope: envelope, leafHash: RFC6962.leafHash(envelope)))
            }
            bundle += 1
        }
        return out
    }

    /// Asked only when two ids share a 64-bit hash: the server says where the id is.
    func leaf(recordID: String) throws -> StoredLeaf? {
        let client = client
        guard let index = try wait({ try await client.leafIndex(of: recordID) }) else { return nil }
        return try leaves(from: index, limit: 1).first
    }

    private func readOnly() -> LedgerError { LedgerError(.storage, "a remote log is read-only") }
    func append(_ leaf: StoredLeaf) throws { throw readOnly() }
    func append(contentsOf leaves: [StoredLeaf]) throws { throw readOnly() }
    func commit(pending: [PendingRecord], discarding: [String], leaves: [StoredLeaf]) throws { throw readOnly() }
    func appendBlock(_ block: StoredBlock) throws { throw readOnly() }
}

/// A result handed from a task to a thread that waits on a semaphore for it.
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}
