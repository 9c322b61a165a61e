import Foundation
import Node
import Synchronization

/// The Responses API's stored responses (`store`, the default): what `previous_response_id`
/// continues and `GET /v1/responses/{id}` returns.
///
/// Each is kept with the conversation that led to it, as chat messages, and the caller that made
/// it: only the same caller (the same account, or the same static key) can read or continue it.
/// They live in the server's memory, the newest first, up to a count and a total size; the oldest
/// are forgotten beyond that, and all of them at a restart. The ledger's record (encrypted for the
/// caller) is the durable copy of every answer.
final class ResponseStore: Sendable {
    struct Stored: Sendable {
        let owner: String
        /// The response object as it was answered.
        let response: JSON
        /// The conversation up to and including this response's output, as chat messages (the
        /// request's `instructions` excluded: they don't carry over).
        let conversation: [JSON]
        let bytes: Int
    }

    let maxResponses: Int
    let maxBytes: Int
    private let state = Mutex(State())

    private struct State {
        var entries: [String: Stored] = [:]
        /// Ids, oldest first.
        var order: [String] = []
        var bytes = 0
    }

    init(maxResponses: Int = 10_000, maxBytes: Int = 256 << 20) {
        self.maxResponses = maxResponses
        self.maxBytes = maxBytes
    }

    /// Who owns what a request stores: its account, or the key (or keylessness) it came with.
    static func owner(_ context: VerityRequestContext) -> String {
        switch context.caller {
        case .account(let account): return "account:" + account.address.description
        case .anonymous: return context.quota.key
        }
    }

    func put(id: String, owner: String, response: JSON, conversation: [JSON]) {
        let bytes = response.serialized().utf8.count + conversation.reduce(0) { $0 + $1.serialized().utf8.count }
        guard bytes <= maxBytes else { return }
        state.withLock { s in
            if let old = s.entries.removeValue(forKey: id) {
                s.bytes -= old.bytes
                s.order.removeAll { $0 == id }
            }
            s.entries[id] = Stored(owner: owner, response: response, conversation: conversation, bytes: bytes)
            s.order.append(id)
            s.bytes += bytes
            var drop = 0
            while s.order.count - drop > maxResponses || s.bytes > maxBytes, drop < s.order.count {
                if let gone = s.entries.removeValue(forKey: s.order[drop]) { s.bytes -= gone.bytes }
                drop += 1
            }
            if drop > 0 { s.order.removeFirst(drop) }
        }
    }

    /// The stored response `id`, if `owner` made it.
    func get(_ id: String, owner: String) -> Stored? {
        state.withLock { s in s.entries[id].flatMap { $0.owner == owner ? $0 : nil } }
    }

    /// Forgets `id`; false when `owner` has no such response.
    func delete(_ id: String, owner: String) -> Bool {
        state.withLock { s in
            guard let entry = s.entries[id], entry.owner == owner else { return false }
            s.entries[id] = nil
            s.order.removeAll { $0 == id }
            s.bytes -= entry.bytes
            return true
        }
    }
}
