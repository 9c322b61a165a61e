import Foundation

/// An append-only RFC 6962 Merkle tree over leaf hashes, held in memory.
///
/// The tree keeps every complete (perfect) subtree hash, level by level, so appending is
/// O(log n), and the root of any earlier size, an inclusion proof (RFC 6962 §2.1.1 `PATH`) or a
/// consistency proof (§2.1.2 `PROOF`) costs O(log n) hash operations.
public struct MerkleTree: Sendable {
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

    /// The root hash of the tree as it was at `treeSize` leaves (RFC 6962 `MTH`).
    /// - Parameter treeSize: Any size from 0 to ``size``; defaults to the current size.
    /// - Throws: ``LedgerError/Code/notFound`` if `treeSize` exceeds the current size.
    public func rootHash(size treeSize: UInt64? = nil) throws -> Data {
        let n = treeSize ?? size
        guard n <= size else {
            throw LedgerError(.notFound, "tree size \(n) exceeds the log's size \(size)")
        }
        if n == 0 { return RFC6962.emptyRoot }
        return subtreeHash(start: 0, end: n)
    }

    /// The inclusion proof (audit path) for leaf `index` in the tree of `treeSize` leaves:
    /// RFC 6962 §2.1.1 `PATH(m, D[n])`, ordered from the leaf's sibling up to the root.
    /// - Throws: ``LedgerError/Code/notFound`` unless `index < treeSize <= size`.
    public func inclusionProof(index: UInt64, size treeSize: UInt64) throws -> [Data] {
        guard treeSize <= size, index < treeSize else {
            throw LedgerError(.notFound, "no leaf \(index) in a tree of size \(treeSize) (log size \(size))")
        }
        var proof: [Data] = []
        path(index: index, start: 0, end: treeSize, into: &proof)
        return proof
    }

    /// The consistency proof between the trees of `oldSize` and `newSize` leaves:
    /// RFC 6962 §2.1.2 `PROOF(m, D[n])`. Empty when `oldSize` is 0 or equal to `newSize`.
    /// - Throws: ``LedgerError/Code/notFound`` unless `oldSize <= newSize <= size`.
    public func consistencyProof(from oldSize: UInt64, to newSize: UInt64) throws -> [Data] {
        guard oldSize <= newSize, newSize <= size else {
            throw LedgerError(.notFound, "no consistency proof from size \(oldSize) to \(newSize) (log size \(size))")
        }
        var proof: [Data] = []
        if oldSize > 0 && oldSize < newSize {
            subproof(m: oldSize, start: 0, end: newSize, complete: true, into: &proof)
        }
        return proof
    }

    // MARK: - RFC 6962 recursions over D[start:end]

    /// `MTH(D[start:end])`. Every range the recursions visit starts at a multiple of the largest
    /// power of two below its length, so the left half is always a stored perfect subtree.
    private func subtreeHash(start: UInt64, end: UInt64) -> Data {
        let n = end - start
        if n & (n - 1) == 0 {
            let level = n.trailingZeroBitCount
            return levels[level][Int(start >> UInt64(level))]
        }
        let k = Self.largestPowerOfTwo(below: n)
        return RFC6962.nodeHash(subtreeHash(start: start, end: start + k), subtreeHash(start: start + k, end: end))
    }

    private func path(index: UInt64, start: UInt64, end: UInt64, into proof: inout [Data]) {
        let n = end - start
        if n <= 1 { return }
        let k = Self.largestPowerOfTwo(below: n)
        if index - start < k {
            path(index: index, start: start, end: start + k, into: &proof)
            proof.append(subtreeHash(start: start + k, end: end))
        } else {
            path(index: index, start: start + k, end: end, into: &proof)
            proof.append(subtreeHash(start: start, end: start + k))
        }
    }

    /// `SUBPROOF(m, D[start:end], b)` with `m` counted from `start`.
    private func subproof(m: UInt64, start: UInt64, end: UInt64, complete: Bool, into proof: inout [Data]) {
        let n = end - start
        if m == n {
            if !complete { proof.append(subtreeHash(start: start, end: end)) }
            return
        }
        let k = Self.largestPowerOfTwo(below: n)
        if m <= k {
            subproof(m: m, start: start, end: start + k, complete: complete, into: &proof)
            proof.append(subtreeHash(start: start + k, end: end))
        } else {
            subproof(m: m - k, start: start + k, end: end, complete: false, into: &proof)
            proof.append(subtreeHash(start: start, end: start + k))
        }
    }

    /// The largest power of two strictly less than `n` (n ≥ 2).
    static func largestPowerOfTwo(below n: UInt64) -> UInt64 {
        UInt64(1) << UInt64(63 - (n - 1).leadingZeroBitCount)
    }
}
