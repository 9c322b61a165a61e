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

    /// Every leaf and block the server publishes, as a store to audit. Blocks are read first, so
    /// leaves appended meanwhile are only extra, unsealed ones.
    func snapshot() async throws -> InMemoryLedgerStore {
        let store = InMemoryLedgerStore()
        let head = try await get("/v1/ledger/head")
        let height = ((head["block"] as? [String: Any])?["height"] as? Int).map { $0 + 1 } ?? 0
        for h in 0..<height {
            guard let note = try await get("/v1/ledger/blocks/\(h)")["note"] as? String else { throw CLIError("\(base) sent no block \(h)") }
            try ledgerCall { try store.appendBlock(StoredBlock(height: UInt64(h), note: note)) }
        }
        var start = 0
        while true {
            let page = try await get("/v1/ledger/entries?start=\(start)&limit=1000")
            guard let entries = page["entries"] as? [[String: Any]] else { throw CLIError("\(base) sent no entries") }
            if entries.isEmpty { break }
            for entry in entries {
                guard let index = entry["leaf_index"] as? Int, let id = entry["record_id"] as? String,
                      let envelope = (entry["envelope"] as? String).flatMap({ Data(base64Encoded: $0) }),
                      let hash = (entry["leaf_hash"] as? String).flatMap({ Data(base64Encoded: $0) })
                else { throw CLIError("\(base) sent a malformed entry after leaf \(start)") }
                try ledgerCall { try store.append(StoredLeaf(index: UInt64(index), recordID: id, envelope: envelope, leafHash: hash)) }
            }
            start += entries.count
        }
        return store
    }

    private func get(_ path: String) async throws -> [String: Any] {
        guard let url = URL(string: base + path) else { throw CLIError("bad URL \(base + path)") }
        let (data, status): (Data, Int) = try await withCheckedThrowingContinuation { continuation in
            URLSession.shared.dataTask(with: url) { data, response, error in
                if let error { continuation.resume(throwing: CLIError("cannot reach \(url): \(error.localizedDescription)")); return }
                continuation.resume(returning: (data ?? Data(), (response as? HTTPURLResponse)?.statusCode ?? 0))
            }.resume()
        }
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        guard status == 200, let object else {
            let message = ((object?["error"] as? [String: Any])?["message"] as? String) ?? String(decoding: data.prefix(200), as: UTF8.self)
            throw CLIError("\(url): HTTP \(status): \(message)")
        }
        return object
    }
}
