import Foundation

/// An RFC 6962 Merkle tree seen through its perfect subtrees: whatever holds them (the whole tree
/// in memory, ``MerkleTree``; the stored hash tiles of a tiled log, ``TiledHashes``) gets the
/// tree's roots and proofs from the RFC's recursions here.
///
/// Every range the recursions visit starts at a multiple of the largest power of two below its
/// length, so its left half is always a perfect subtree: the root of any size and every proof
/// cost O(log n) perfect-subtree hashes.
public protocol MerkleHashes {
    /// The number of leaves.
    var size: UInt64 { get }
    /// `MTH(D[index·2^height ..< (index+1)·2^height])`, the hash of a perfect subtree of the tree;
    /// callers ask only for subtrees inside ``size``.
    /// - Throws: ``LedgerError`` if the hash cannot be read (a missing or malformed tile).
    func perfectHash(height: Int, index: UInt64) throws -> Data
}

extension MerkleHashes {
    /// The root hash of the tree as it was at `treeSize` leaves (RFC 6962 `MTH`).
    /// - Parameter treeSize: Any size from 0 to ``size``; defaults to the current size.
    /// - Throws: ``LedgerError/Code/notFound`` if `treeSize` exceeds the current size.
    public func rootHash(size treeSize: UInt64? = nil) throws -> Data {
        let n = treeSize ?? size
        guard n <= size else {
            throw LedgerError(.notFound, "tree size \(n) exceeds the log's size \(size)")
        }
        if n == 0 { return RFC6962.emptyRoot }
        return try subtreeHash(start: 0, end: n)
    }

    /// The inclusion proof (audit path) for leaf `index` in the tree of `treeSize` leaves:
    /// RFC 6962 §2.1.1 `PATH(m, D[n])`, ordered from the leaf's sibling up to the root.
    /// - Throws: ``LedgerError/Code/notFound`` unless `index < treeSize <= size`.
    public func inclusionProof(index: UInt64, size treeSize: UInt64) throws -> [Data] {
        guard treeSize <= size, index < treeSize else {
            throw LedgerError(.notFound, "no leaf \(index) in a tree of size \(treeSize) (log size \(size))")
        }
        var proof: [Data] = []
        try path(index: index, start: 0, end: treeSize, into: &proof)
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
            try subproof(m: oldSize, start: 0, end: newSize, complete: true, into: &proof)
        }
        return proof
    }

    // MARK: - RFC 6962 recursions over D[start:end]

    /// `MTH(D[start:end])`.
    func subtreeHash(start: UInt64, end: UInt64) throws -> Data {
        let n = end - start
        if n & (n - 1) == 0 {
            let height = n.trailingZeroBitCount
            return try perfectHash(height: height, index: start >> UInt64(height))
        }
        let k = MerkleMath.largestPowerOfTwo(below: n)
        return RFC6962.nodeHash(try subtreeHash(start: start, end: start + k), try subtreeHash(start: start + k, end: end))
    }

    private func path(index: UInt64, start: UInt64, end: UInt64, into proof: inout [Data]) throws {
        let n = end - start
        if n <= 1 { return }
        let k = MerkleMath.largestPowerOfTwo(below: n)
        if index - start < k {
            try path(index: index, start: start, end: start + k, into: &proof)
            proof.append(try subtreeHash(start: start + k, end: end))
        } else {
            try path(index: index, start: start + k, end: end, into: &proof)
            proof.append(try subtreeHash(start: start, end: start + k))
        }
    }

    /// `SUBPROOF(m, D[start:end], b)` with `m` counted from `start`.
    private func subproof(m: UInt64, start: UInt64, end: UInt64, complete: Bool, into proof: inout [Data]) throws {
        let n = end - start
        if m == n {
            if !complete { proof.append(try subtreeHash(start: start, end: end)) }
            return
        }
        let k = MerkleMath.largestPowerOfTwo(below: n)
        if m <= k {
            try subproof(m: m, start: start, end: start + k, complete: complete, into: &proof)
            proof.append(try subtreeHash(start: start + k, end: end))
        } else {
            try subproof(m: m - k, start: start + k, end: end, complete: false, into: &proof)
            proof.append(try subtreeHash(start: start, end: start + k))
        }
    }
}

/// Arithmetic the tree types share.
public enum MerkleMath {
    /// The largest power of two strictly less than `n` (n ≥ 2).
    public static func largestPowerOfTwo(below n: UInt64) -> UInt64 {
        UInt64(1) << UInt64(63 - (n - 1).leadingZeroBitCount)
    }

    /// The root of a perfect subtree from its `2^k` bottom hashes, in order (k ≥ 0).
    public static func perfectRoot<C: Collection>(_ hashes: C) -> Data where C.Element == Data {
        precondition(!hashes.isEmpty && hashes.count & (hashes.count - 1) == 0, "a perfect subtree has 2^k hashes")
        var level = Array(hashes)
        while level.count > 1 {
            level = stride(from: 0, to: level.count, by: 2).map { RFC6962.nodeHash(level[$0], level[$0 + 1]) }
        }
        return level[0]
    }
}
