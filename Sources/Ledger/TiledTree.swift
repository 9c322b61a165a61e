import Foundation
import Synchronization

/// A stored hash tile's key: its level and index (its width follows from the tree's size).
public struct TileKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var level: Int
    public var index: UInt64

    public init(level: Int, index: UInt64) {
        self.level = level
        self.index = index
    }

    public static func < (a: TileKey, b: TileKey) -> Bool { (a.level, a.index) < (b.level, b.index) }
    public var description: String { "tile \(level)/\(TileAddress.encode(index: index))" }
}

/// Hash tiles as bytes: 32-byte hashes concatenated, at most 256 of them.
public enum TileCodec {
    /// A tile's bytes.
    public static func bytes<C: Collection>(_ hashes: C) -> Data where C.Element == Data {
        var out = Data(capacity: hashes.count * RFC6962.hashSize)
        for hash in hashes { out.append(hash) }
        return out
    }

    /// A tile's hashes.
    /// - Throws: ``LedgerError/Code/malformed`` unless `bytes` is 1–256 whole hashes.
    public static func hashes(_ bytes: Data) throws -> [Data] {
        let size = RFC6962.hashSize
        guard !bytes.isEmpty, bytes.count % size == 0, bytes.count <= TileAddress.width * size else {
            throw LedgerError(.malformed, "a hash tile is 1 to 256 hashes of 32 bytes, not \(bytes.count) bytes")
        }
        let start = bytes.startIndex
        return stride(from: 0, to: bytes.count, by: size).map { Data(bytes[(start + $0)..<(start + $0 + size)]) }
    }
}

/// The right edge of a tiled tree: its size and, at each tile level, the rightmost tile that is not
/// full yet. That is all a log needs in memory to append, and to compute the root of its current
/// size: every perfect subtree on the right edge lies inside one of these partial tiles. It holds
/// at most 255 hashes per level, so O(log n) memory for n leaves.
public struct TreeEdge: Sendable, Hashable {
    /// The number of leaves.
    public private(set) var size: UInt64 = 0
    /// `partials[L]`: the hashes of the rightmost non-full tile at level `L`,
    /// `(size >> 8L) % 256` of them.
    private var partials: [[Data]] = []

    /// The edge of the empty tree.
    public init() {}

    /// Reads the edge of a tree of `size` leaves from its stored tiles: at most one tile per level.
    /// - Parameter readTile: The stored bytes of a tile (full, or partial as it now is), nil if none.
    /// - Throws: ``LedgerError/Code/tampered`` if a tile the edge needs is missing or does not hold
    ///   the hashes a tree of this size has; what `readTile` throws.
    public init(size: UInt64, readTile: (TileKey) throws -> Data?) throws {
        self.size = size
        var level = 0
        while size >> UInt64(8 * level) > 0 {
            let nodes = size >> UInt64(8 * level)
            let key = TileKey(level: level, index: nodes / 256)
            let width = Int(nodes % 256)
            var hashes: [Data] = []
            if width > 0 {
                guard let bytes = try readTile(key) else {
                    throw LedgerError(.tampered, "\(key) is missing: a tree of \(size) leaves has \(width) hashes there")
                }
                do { hashes = try TileCodec.hashes(bytes) } catch {
                    throw LedgerError(.tampered, "\(key) is not a hash tile", cause: error)
                }
                guard hashes.count == width else {
                    throw LedgerError(.tampered, "\(key) holds \(hashes.count) hashes; a tree of \(size) leaves has \(width) there")
                }
            }
            partials.append(hashes)
            level += 1
        }
    }

    /// Appends leaves by their hashes.
    /// - Returns: Every tile the leaves changed, as it now is: the tiles they filled (8,192 bytes)
    ///   and the rightmost partial tile of each level they reached.
    @discardableResult
    public mutating func append<S: Sequence>(leafHashes: S) -> [TileKey: Data] where S.Element == Data {
        var changed: [TileKey: Data] = [:]
        var reached = 0
        for leafHash in leafHashes {
            precondition(leafHash.count == RFC6962.hashSize, "leaf hash must be 32 bytes")
            size += 1
            var hash = leafHash
            var level = 0
            while true {
                if partials.count == level { partials.append([]) }
                partials[level].append(hash)
                reached = max(reached, level)
                guard partials[level].count == TileAddress.width else { break }
                let index = (size >> UInt64(8 * level)) / 256 - 1
                changed[TileKey(level: level, index: index)] = TileCodec.bytes(partials[level])
                hash = MerkleMath.perfectRoot(partials[level])
                partials[level] = []
                level += 1
            }
        }
        for level in 0...reached where level < partials.count && !partials[level].isEmpty {
            if let (key, hashes) = partialTile(level: level) { changed[key] = TileCodec.bytes(hashes) }
        }
        return changed
    }

    /// The rightmost partial tile at `level`, if the tree has one there.
    public func partialTile(level: Int) -> (key: TileKey, hashes: [Data])? {
        guard level < partials.count, !partials[level].isEmpty else { return nil }
        return (TileKey(level: level, index: (size >> UInt64(8 * level)) / 256), partials[level])
    }

    /// The tree's root hash at its current size.
    public func rootHash() throws -> Data {
        try TiledHashes(size: size) { address in
            guard let level = address.level, let (key, hashes) = partialTile(level: level), key.index == address.index,
                  hashes.count >= address.width
            else { throw LedgerError(.notFound, "\(address) is not on the tree's right edge") }
            return Array(hashes.prefix(address.width))
        }.rootHash()
    }
}

/// A tree read from its hash tiles (C2SP tlog-tiles): any perfect subtree of height `8·L + r` is
/// `2^r` consecutive hashes of one tile at level `L`, hashed up `r` levels. Roots and proofs
/// follow (``MerkleHashes``), reading O(log n) tiles.
public struct TiledHashes: MerkleHashes {
    public let size: UInt64
    /// The hashes of a tile of the tree of ``size`` leaves: exactly `address.width` of them.
    let read: (TileAddress) throws -> [Data]

    /// A tree of `size` leaves whose tiles `read` returns (exactly as many hashes as the address's
    /// width: a tile partial in this tree is read as such even if the log has grown past it).
    public init(size: UInt64, read: @escaping (TileAddress) throws -> [Data]) {
        self.size = size
        self.read = read
    }

    /// The tile (with its width in a tree of `size` leaves) that holds node `index` at height `8·level`.
    public static func address(level: Int, node index: UInt64, size: UInt64) -> TileAddress {
        let nodes = size >> UInt64(8 * level)
        let tile = index / 256
        return .hashes(level: level, index: tile, width: Int(min(256, nodes - tile * 256)))
    }

    public func perfectHash(height: Int, index: UInt64) throws -> Data {
        let level = height / 8, r = height % 8
        let first = index << UInt64(r), count = UInt64(1) << UInt64(r)
        guard first + count <= size >> UInt64(8 * level) else {
            throw LedgerError(.notFound, "no perfect subtree of height \(height) at \(index) in a tree of size \(size)")
        }
        let address = Self.address(level: level, node: first, size: size)
        let hashes = try read(address)
        guard hashes.count == address.width else {
            throw LedgerError(.tampered, "\(address) holds \(hashes.count) hashes, not \(address.width)")
        }
        let offset = Int(first % 256)
        return MerkleMath.perfectRoot(hashes[offset..<(offset + Int(count))])
    }
}

/// Reads a stored log's tiles for proofs: the right edge's partial tiles from memory, full tiles
/// from the store through a bounded cache (full tiles never change).
public final class TileReader: Sendable {
    private let store: any LedgerStore
    private let capacity: Int
    private struct Cache {
        var tiles: [TileKey: (hashes: [Data], used: UInt64)] = [:]
        var clock: UInt64 = 0
    }
    private let cache = Mutex(Cache())

    /// - Parameter capacity: Full tiles kept in memory (8 KiB of hashes each).
    public init(store: any LedgerStore, capacity: Int = 2048) {
        self.store = store
        self.capacity = max(capacity, 16)
    }

    /// The tree of `size` leaves (at most `edge.size`) of a log whose right edge is `edge`.
    public func tree(size: UInt64, edge: TreeEdge) -> TiledHashes {
        TiledHashes(size: size) { [self] address in try hashes(address, edge: edge) }
    }

    /// The first `address.width` hashes of a tile of the log whose right edge is `edge`.
    /// - Throws: ``LedgerError/Code/notFound`` if the log has not that many hashes there;
    ///   ``LedgerError/Code/tampered`` if the stored tile is missing or malformed.
    public func hashes(_ address: TileAddress, edge: TreeEdge) throws -> [Data] {
        guard let level = address.level else { throw LedgerError(.invalidValue, "\(address) is an entry bundle, not a hash tile") }
        let key = TileKey(level: level, index: address.index)
        if let (edgeKey, hashes) = edge.partialTile(level: level), edgeKey == key {
            guard hashes.count >= address.width else { throw LedgerError(.notFound, "\(address) is beyond the log's \(edge.size) leaves") }
            return Array(hashes.prefix(address.width))
        }
        guard (edge.size >> UInt64(8 * level)) / 256 > address.index else {
            throw LedgerError(.notFound, "\(address) is beyond the log's \(edge.size) leaves")
        }
        return Array(try fullTile(key).prefix(address.width))
    }

    private func fullTile(_ key: TileKey) throws -> [Data] {
        let cached: [Data]? = cache.withLock { c in
            c.clock += 1
            guard let hit = c.tiles[key] else { return nil }
            c.tiles[key] = (hit.hashes, c.clock)
            return hit.hashes
        }
        if let cached { return cached }
        guard let bytes = try store.tile(key) else { throw LedgerError(.tampered, "\(key) is missing from storage") }
        let hashes: [Data]
        do { hashes = try TileCodec.hashes(bytes) } catch { throw LedgerError(.tampered, "\(key) is not a hash tile", cause: error) }
        guard hashes.count == TileAddress.width else {
            throw LedgerError(.tampered, "\(key) should be full but holds \(hashes.count) hashes")
        }
        cache.withLock { c in
            if c.tiles.count >= capacity {
                // Drop the least recently used half: amortized O(log n) per miss.
                let keep = c.tiles.sorted { $0.value.used > $1.value.used }.prefix(capacity / 2)
                c.tiles = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
            }
            c.tiles[key] = (hashes, c.clock)
        }
        return hashes
    }
}
