import Foundation

/// Offline verification of RFC 6962 Merkle proofs, following the algorithms of
/// RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) step by step.
///
/// Every hash given (leaf, roots, proof entries) must be exactly 32 bytes; proofs with missing,
/// extra or altered entries fail.
public enum MerkleProof {
    /// Verifies that the leaf with hash `leafHash` is at `index` in the tree of `treeSize` leaves
    /// whose root is `rootHash` (RFC 9162 §2.1.3.2).
    /// - Parameters:
    ///   - index: The leaf's index.
    ///   - treeSize: The size of the tree the proof was made for.
    ///   - leafHash: The leaf's RFC 6962 hash.
    ///   - proof: The inclusion path, from the leaf's sibling upward.
    ///   - rootHash: The tree's trusted root hash.
    /// - Throws: ``LedgerError/Code/proofInvalid`` naming what did not match.
    public static func verifyInclusion(
        index: UInt64, treeSize: UInt64, leafHash: Data, proof: [Data], rootHash: Data
    ) throws {
        let computed = try rootFromInclusion(index: index, treeSize: treeSize, leafHash: leafHash, proof: proof)
        guard computed == rootHash else {
            throw LedgerError(.proofInvalid, "inclusion proof for leaf \(index) of \(treeSize) does not lead to the root hash")
        }
    }

    /// Computes the root hash that an inclusion proof implies (RFC 9162 §2.1.3.2, steps 1–4).
    /// - Throws: ``LedgerError/Code/proofInvalid`` if the proof has the wrong shape.
    public static func rootFromInclusion(index: UInt64, treeSize: UInt64, leafHash: Data, proof: [Data]) throws -> Data {
        guard index < treeSize else {
            throw LedgerError(.proofInvalid, "leaf index \(index) is not below tree size \(treeSize)")
        }
        try checkHashes([leafHash] + proof, what: "inclusion proof")
        var fn = index
        var sn = treeSize - 1
        var r = leafHash
        for p in proof {
            guard sn != 0 else {
                throw LedgerError(.proofInvalid, "inclusion proof for leaf \(index) of \(treeSize) is too long")
            }
            if fn & 1 == 1 || fn == sn {
                r = RFC6962.nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = RFC6962.nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else {
            throw LedgerError(.proofInvalid, "inclusion proof for leaf \(index) of \(treeSize) is too short")
        }
        return r
    }

    /// Verifies that the tree of `newSize` leaves with root `newRoot` extends the tree of
    /// `oldSize` leaves with root `oldRoot` (RFC 9162 §2.1.4.2).
    ///
    /// When the sizes are equal the roots must be equal and the proof empty; from size 0 any tree
    /// is consistent and the proof must be empty.
    /// - Throws: ``LedgerError/Code/proofInvalid`` naming what did not match.
    public static func verifyConsistency(
        oldSize: UInt64, newSize: UInt64, oldRoot: Data, newRoot: Data, proof: [Data]
    ) throws {
        guard oldSize <= newSize else {
            throw LedgerError(.proofInvalid, "tree size went backwards, from \(oldSize) to \(newSize)")
        }
        try checkHashes([oldRoot, newRoot] + proof, what: "consistency proof")
        if oldSize == newSize {
            guard proof.isEmpty, oldRoot == newRoot else {
                throw LedgerError(.proofInvalid, "two trees of size \(oldSize) with different roots or a non-empty proof")
            }
            return
        }
        if oldSize == 0 {
            guard proof.isEmpty else {
                throw LedgerError(.proofInvalid, "a consistency proof from the empty tree must be empty")
            }
            return
        }
        // Step 1.
        guard !proof.isEmpty else {
            throw LedgerError(.proofInvalid, "empty consistency proof from size \(oldSize) to \(newSize)")
        }
        // Step 2: if `first` is an exact power of two, prepend `first_hash`.
        var path = proof
        if oldSize & (oldSize - 1) == 0 { path.insert(oldRoot, at: 0) }
        // Steps 3–4.
        var fn = oldSize - 1
        var sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        // Step 5.
        var fr = path[0]
        var sr = path[0]
        // Step 6.
        for c in path.dropFirst() {
            guard sn != 0 else {
                throw LedgerError(.proofInvalid, "consistency proof from \(oldSize) to \(newSize) is too long")
            }
            if fn & 1 == 1 || fn == sn {
                fr = RFC6962.nodeHash(c, fr)
                sr = RFC6962.nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = RFC6962.nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        // Step 7.
        guard sn == 0 else {
            throw LedgerError(.proofInvalid, "consistency proof from \(oldSize) to \(newSize) is too short")
        }
        guard fr == oldRoot else {
            throw LedgerError(.proofInvalid, "consistency proof does not lead to the old root (size \(oldSize))")
        }
        guard sr == newRoot else {
            throw LedgerError(.proofInvalid, "consistency proof does not lead to the new root (size \(newSize))")
        }
    }

    private static func checkHashes(_ hashes: [Data], what: String) throws {
        for (i, h) in hashes.enumerated() where h.count != RFC6962.hashSize {
            throw LedgerError(.proofInvalid, "\(what): hash \(i) is \(h.count) bytes, not \(RFC6962.hashSize)")
        }
    }
}
