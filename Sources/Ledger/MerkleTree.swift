import Foundation

/// An append-only RFC 6962 Merkle tree over leaf hashes, held in memory.
///
/// The tree keeps every complete (perfect) subtree hash, level by level, so appending is
/// O(log n), and the root of any earlier size, an inclusion proof (RFC 6962 §2.1.1 `PATH`) or a
/// consistency proof (§2.1.2 `PROOF`) costs O(log n) hash operations (``MerkleHashes``). It holds
/// two hashes per leaf: for tests and small trees; a running log reads its tiles instead.
public struct MerkleTree: MerkleHashes, Sendable {
    /// `levels[h][i]` is the hash of the perfect subtree of `2^h` leaves starting at leaf `i·2^h`.
    private var levels: [[Data]] = [[]]

    /// Creates an empty tree.
    public init() {}

    /// Creates a tree over the given leaf hashes, in order.
    /// - Parameter leafHashes: RFC 6962 leaf hashes (``RFC6962/leafHash(_:)``).
    public init<S: Sequence>(leafHashes: S) where S.Element == Data {
        for hash in leafHashes { append(leafHash: hash) }
    }

    /// The number of leaves.
    public var size: UInt64 { UInt64(levels[0].count) }

    /// Appends a leaf by its hash.
    /// - Parameter leafHash: The RFC 6962 leaf hash of the new leaf.
    /// - Precondition: `leafHash` is 32 bytes (a programming error otherwise).
    /// - Returns: The new leaf's index.
    @discardableResult
    public mutating func append(leafHash: Data) -> UInt64 {
        precondition(leafHash.count == RFC6962.hashSize, "leaf hash must be 32 bytes")
        let index = levels[0].count
        levels[0].append(leafHash)
        var level = 0
        var position = index
        while position & 1 == 1 {
            let hash = RFC6962.nodeHash(levels[level][position - 1], levels[level][position])
            level += 1
            if levels.count == level { levels.append([]) }
            levels[level].append(hash)
            position >>= 1
        }
        return UInt64(index)
    }

    /// Appends a leaf by its bytes, hashing them as RFC 6962 specifies.
    /// - Parameter leaf: The leaf's canonical bytes.
    /// - Returns: The new leaf's index.
    @discardableResult
    public mutating func append(leaf: Data) -> UInt64 {
        append(leafHash: RFC6962.leafHash(leaf))
    }

    /// The hash of leaf `index`.
    /// - Throws: ``LedgerError/Code/notFound`` if there is no such leaf.
    public func leafHash(at index: UInt64) throws -> Data {
        guard index < size else {
            throw LedgerError(.notFound, "leaf \(index) does not exist in a tree of size \(size)")
        }
        return levels[0][Int(index)]
    }

    /// The hash of the perfect subtree of `2^height` leaves starting at leaf `index·2^height`.
    public func perfectHash(height: Int, index: UInt64) throws -> Data {
        guard height < levels.count, index < UInt64(levels[height].count) else {
            throw LedgerError(.notFound, "no perfect subtree of height \(height) at \(index) in a tree of size \(size)")
        }
        return levels[height][Int(index)]
    }

    /// The largest power of two strictly less than `n` (n ≥ 2).
    static func largestPowerOfTwo(below n: UInt64) -> UInt64 { MerkleMath.largestPowerOfTwo(below: n) }
}
