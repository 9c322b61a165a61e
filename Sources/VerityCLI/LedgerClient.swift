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
    /// to audit: its checkpoint, every entry bundle and every hash tile of the checkpoint's tree,
    /// and the blocks up to the checkpoint's (by `/v1/ledger/blocks/{height}`). Nothing but GETs;
    /// the audit then re-derives the tree from the entries and compares it with the served tiles
    /// and the signed blocks. A bundle holding an entry over the 65,535 bytes a bundle's length
    /// prefix allows is read from `/v1/ledger/entries` instead.
    func snapshot(verifier: NoteVerifier) async throws -> (store: InMemoryLedgerStore, checkpoint: Block) {
        let (text, status) = try await fetch("/v1/ledger/log/checkpoint")
        guard status == 200 else { throw CLIError("\(base)/v1/ledger/log/checkpoint: HTTP \(status): \(String(decoding: text.prefix(200), as: UTF8.self))") }
        let checkpoint = try ledgerCall { try Block(note: try SignedNote(parsing: text), verifier: verifier) }
        let size = checkpoint.treeSize
        var blocks: [StoredBlock] = []
        for h in 0...checkpoint.height {
            guard let note = try await get("/v1/ledger/blocks/\(h)")["note"] as? String else { throw CLIError("\(base) sent no block \(h)") }
            blocks.append(StoredBlock(height: h, note: note))
        }
        var leaves: [StoredLeaf] = []
        leaves.reserveCapacity(Int(size))
        var bundle: UInt64 = 0
        while bundle * 256 < size {
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
            for envelope in envelopes {
                let index = UInt64(leaves.count)
                let id = (try? RecordEnvelope(canonicalBytes: envelope).recordID) ?? "(leaf \(index): unreadable)"
                leaves.append(StoredLeaf(index: index, recordID: id, envelope: envelope, leafHash: RFC6962.leafHash(envelope)))
            }
            bundle += 1
        }
        var tiles: [TileKey: Data] = [:]
        var level = 0
        while size >> UInt64(8 * level) > 0 {
            let nodes = size >> UInt64(8 * level)
            var index: UInt64 = 0
            while index * 256 < nodes {
                let address = TileAddress.hashes(level: level, index: index, width: Int(min(256, nodes - index * 256)))
                let (data, status) = try await fetch("/v1/ledger/log/" + address.path)
                guard status == 200 else { throw CLIError("\(base)/v1/ledger/log/\(address.path): HTTP \(status)") }
                tiles[TileKey(level: level, index: index)] = data
                index += 1
            }
            level += 1
        }
        return (InMemoryLedgerStore(leaves: leaves, blocks: blocks, tiles: tiles), checkpoint)
    }

    /// A GET's body and status.
    private func fetch(_ path: String) async throws -> (Data, Int) {
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
