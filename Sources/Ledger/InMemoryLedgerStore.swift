import Foundation
import Synchronization

/// A ``LedgerStore`` in process memory, for tests and ephemeral nodes. Durable only as long as
/// the process lives. Owners are kept in the leaves; listing one owner's leaves scans them. Hash
/// tiles are written as leaves are appended, as in every store; a snapshot of a remote log
/// (``init(leaves:blocks:tiles:)``) holds the tiles it was served instead, for an audit to check.
public final class InMemoryLedgerStore: LedgerStore {
    struct State {
        var leaves: [StoredLeaf] = []
        var blocks: [StoredBlock] = []
        var indexByRecordID: [String: Int] = [:]
        var pending: [PendingRecord] = []
        var tiles: [TileKey: Data] = [:]
        var edge = TreeEdge()
        /// Cosignature lines by block height, then witness.
        var cosignatures: [UInt64: [String: String]] = [:]
    }

    private let state = Mutex(State())

    /// Creates an empty store.
    public init() {}

    /// A store holding given rows as they are, tiles included: a copy of a log read from
    /// elsewhere, whose tiles an audit compares with its leaves. Appending to it extends the tiles
    /// from their right edge (or, if the given tiles have none, from the leaves').
    public init(leaves: [StoredLeaf], blocks: [StoredBlock], tiles: [TileKey: Data]) {
        var derived = TreeEdge()
        let edge = (try? TreeEdge(size: UInt64(leaves.count)) { tiles[$0] })
            ?? { derived.append(leafHashes: leaves.map(\.leafHash)); return derived }()
        state.withLock { s in
            s.leaves = leaves
            s.blocks = blocks
            s.tiles = tiles
            s.edge = edge
            s.indexByRecordID = Dictionary(leaves.enumerated().map { ($1.recordID, $0) }, uniquingKeysWith: { a, _ in a })
        }
    }

    public func append(_ leaf: StoredLeaf) throws {
        try append(contentsOf: [leaf])
    }

    public func append(contentsOf leaves: [StoredLeaf]) throws {
        try commit(pending: [], discarding: [], leaves: leaves)
    }

    public func commit(pending: [PendingRecord], discarding: [String], leaves: [StoredLeaf]) throws {
        try state.withLock { s in
            // Check everything first, so a refused batch leaves nothing behind.
            var ids: Set<String> = []
            for (offset, leaf) in leaves.enumerated() {
                guard leaf.index == UInt64(s.leaves.count + offset) else {
                    throw LedgerError(.storage, "leaf index \(leaf.index) is not the next index \(s.leaves.count + offset)")
                }
                guard s.indexByRecordID[leaf.recordID] == nil, ids.insert(leaf.recordID).inserted else {
                    throw LedgerError(.duplicateRecord, "record \(leaf.recordID) is already in the log")
                }
            }
            for record in pending {
                if let i = s.pending.firstIndex(where: { $0.recordID == record.recordID }) { s.pending[i] = record } else { s.pending.append(record) }
            }
            let done = Set(discarding).union(leaves.map(\.recordID))
            s.pending.removeAll { done.contains($0.recordID) }
            for leaf in leaves {
                s.indexByRecordID[leaf.recordID] = s.leaves.count
                s.leaves.append(leaf)
            }
            s.tiles.merge(s.edge.append(leafHashes: leaves.map(\.leafHash))) { _, new in new }
        }
    }

    public func leafCount() throws -> UInt64 { state.withLock { UInt64($0.leaves.count) } }

    /// Read from the stored tiles, as a database store reads it at start.
    public func treeEdge() throws -> TreeEdge {
        try state.withLock { s in try TreeEdge(size: UInt64(s.leaves.count)) { s.tiles[$0] } }
    }

    public func tile(_ key: TileKey) throws -> Data? { state.withLock { $0.tiles[key] } }

    public func addCosignature(height: UInt64, witness: String, line: String) throws {
        try state.withLock { s in
            guard height < UInt64(s.blocks.count) else { throw LedgerError(.storage, "no block \(height) to cosign") }
            s.cosignatures[height, default: [:]][witness] = line
        }
    }

    public func cosignatures(height: UInt64) throws -> [String: String] { state.withLock { $0.cosignatures[height] ?? [:] } }

    public func lastCosignedHeights() throws -> [String: UInt64] {
        state.withLock { s in
            var last: [String: UInt64] = [:]
            for (height, lines) in s.cosignatures { for witness in lines.keys { last[witness] = max(last[witness] ?? 0, height) } }
            return last
        }
    }

    public func latestHeight(cosignedBy witnesses: [String], threshold: Int) throws -> UInt64? {
        let trusted = Set(witnesses)
        return state.withLock { s in
            s.cosignatures.filter { $0.value.keys.filter(trusted.contains).count >= threshold }.keys.max()
        }
    }

    public func blockCount() throws -> UInt64 { state.withLock { UInt64($0.blocks.count) } }

    public func block(height: UInt64) throws -> StoredBlock? {
        state.withLock { height < UInt64($0.blocks.count) ? $0.blocks[Int(height)] : nil }
    }

    public func pendingRecords() throws -> [PendingRecord] { state.withLock { $0.pending } }

    public func appendBlock(_ block: StoredBlock) throws {
        try state.withLock { s in
            guard block.height == UInt64(s.blocks.count) else {
                throw LedgerError(.storage, "block height \(block.height) is not the next height \(s.blocks.count)")
            }
            s.blocks.append(block)
        }
    }

    public func leaves() throws -> [StoredLeaf] { state.withLock { $0.leaves } }

    public func blocks() throws -> [StoredBlock] { state.withLock { $0.blocks } }

    public func leaf(recordID: String) throws -> StoredLeaf? {
        state.withLock { s in s.indexByRecordID[recordID].flatMap { $0 < s.leaves.count ? s.leaves[$0] : nil } }
    }

    /// Edits the stored rows behind the log's back, as an attacker with disk access could; for
    /// tamper tests only.
    func tamper(_ body: (inout [StoredLeaf], inout [StoredBlock]) -> Void) {
        state.withLock { s in
            body(&s.leaves, &s.blocks)
            s.indexByRecordID = Dictionary(s.leaves.enumerated().map { ($1.recordID, $0) }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// Edits the stored tiles behind the log's back; for tamper tests only.
    func tamperTiles(_ body: (inout [TileKey: Data]) -> Void) {
        state.withLock { s in
            body(&s.tiles)
        }
    }
}
