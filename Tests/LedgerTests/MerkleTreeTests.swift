import Foundation
import Testing
@testable import Ledger

/// Known answers from the RFC 6962 test corpus as used by transparency-dev/merkle
/// (`proof/verify_test.go`) and google/certificate-transparency: eight leaves, the root of every
/// prefix, and sample inclusion and consistency proofs.
enum RFC6962Vectors {
    static let leaves: [Data] = [
        "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
    ].map { Data(hex: $0) }

    /// roots[n - 1] is the root of the tree of the first n leaves.
    static let roots: [Data] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ].map { Data(hex: $0) }

    struct Inclusion: Sendable, CustomTestStringConvertible {
        var index: UInt64, size: UInt64, proof: [Data]
        var testDescription: String { "leaf \(index) of \(size)" }
    }

    static let inclusion: [Inclusion] = [
        .init(index: 0, size: 8, proof: [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"].map { Data(hex: $0) }),
        .init(index: 5, size: 8, proof: [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"].map { Data(hex: $0) }),
        .init(index: 2, size: 3, proof: [
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"].map { Data(hex: $0) }),
        .init(index: 1, size: 5, proof: [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"].map { Data(hex: $0) }),
    ]

    struct Consistency: Sendable, CustomTestStringConvertible {
        var from: UInt64, to: UInt64, proof: [Data]
        var testDescription: String { "\(from) → \(to)" }
    }

    static let consistency: [Consistency] = [
        .init(from: 1, to: 8, proof: [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"].map { Data(hex: $0) }),
        .init(from: 6, to: 8, proof: [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"].map { Data(hex: $0) }),
        .init(from: 2, to: 5, proof: [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"].map { Data(hex: $0) }),
        .init(from: 6, to: 7, proof: [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"].map { Data(hex: $0) }),
    ]

    static var tree: MerkleTree {
        var tree = MerkleTree()
        for leaf in leaves { tree.append(leaf: leaf) }
        return tree
    }
}

@Suite("RFC 6962 Merkle tree")
struct MerkleTreeTests {
    @Test func emptyTreeRootIsSHA256OfNothing() throws {
        #expect(RFC6962.emptyRoot.hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(try MerkleTree().rootHash() == RFC6962.emptyRoot)
    }

    @Test func rootOfEveryPrefixMatchesTheCorpus() throws {
        var tree = MerkleTree()
        for (n, leaf) in RFC6962Vectors.leaves.enumerated() {
            tree.append(leaf: leaf)
            #expect(try tree.rootHash() == RFC6962Vectors.roots[n], "size \(n + 1)")
        }
        // Earlier sizes stay answerable after later appends.
        for n in 1...8 {
            #expect(try tree.rootHash(size: UInt64(n)) == RFC6962Vectors.roots[n - 1])
        }
    }

    @Test(arguments: RFC6962Vectors.inclusion)
    func inclusionProofMatchesTheCorpus(_ v: RFC6962Vectors.Inclusion) throws {
        let tree = RFC6962Vectors.tree
        #expect(try tree.inclusionProof(index: v.index, size: v.size) == v.proof)
        try MerkleProof.verifyInclusion(
            index: v.index, treeSize: v.size, leafHash: RFC6962.leafHash(RFC6962Vectors.leaves[Int(v.index)]),
            proof: v.proof, rootHash: RFC6962Vectors.roots[Int(v.size) - 1]
        )
    }

    @Test(arguments: RFC6962Vectors.consistency)
    func consistencyProofMatchesTheCorpus(_ v: RFC6962Vectors.Consistency) throws {
        let tree = RFC6962Vectors.tree
        #expect(try tree.consistencyProof(from: v.from, to: v.to) == v.proof)
        try MerkleProof.verifyConsistency(
            oldSize: v.from, newSize: v.to, oldRoot: RFC6962Vectors.roots[Int(v.from) - 1],
            newRoot: RFC6962Vectors.roots[Int(v.to) - 1], proof: v.proof
        )
    }

    /// RFC 6962 §2.1.3: the seven-leaf example tree, its audit paths and consistency proofs,
    /// named as in the RFC's figure.
    @Test func rfc6962WorkedExampleWithSevenLeaves() throws {
        let d = RFC6962Vectors.leaves.prefix(7).map { RFC6962.leafHash($0) }
        let (a, b, c, dd, e, f, j) = (d[0], d[1], d[2], d[3], d[4], d[5], d[6])
        let g = RFC6962.nodeHash(a, b), h = RFC6962.nodeHash(c, dd), i = RFC6962.nodeHash(e, f)
        let k = RFC6962.nodeHash(g, h), l = RFC6962.nodeHash(i, j)
        let root = RFC6962.nodeHash(k, l)
        var tree = MerkleTree()
        for leaf in RFC6962Vectors.leaves.prefix(7) { tree.append(leaf: leaf) }
        #expect(try tree.rootHash() == root)
        #expect(root == RFC6962Vectors.roots[6])

        // "The audit path for d0 is [b, h, l]. … d3 is [c, g, l]. … d4 is [f, j, k]. … d6 is [i, k]."
        #expect(try tree.inclusionProof(index: 0, size: 7) == [b, h, l])
        #expect(try tree.inclusionProof(index: 3, size: 7) == [c, g, l])
        #expect(try tree.inclusionProof(index: 4, size: 7) == [f, j, k])
        #expect(try tree.inclusionProof(index: 6, size: 7) == [i, k])
        for (index, proof) in [(0, [b, h, l]), (3, [c, g, l]), (4, [f, j, k]), (6, [i, k])] {
            try MerkleProof.verifyInclusion(index: UInt64(index), treeSize: 7, leafHash: d[index], proof: proof, rootHash: root)
        }

        // "PROOF(3, D[7]) = [c, d, g, l]", "PROOF(4, D[7]) = [l]", "PROOF(6, D[7]) = [i, j, k]".
        #expect(try tree.consistencyProof(from: 3, to: 7) == [c, dd, g, l])
        #expect(try tree.consistencyProof(from: 4, to: 7) == [l])
        #expect(try tree.consistencyProof(from: 6, to: 7) == [i, j, k])
        try MerkleProof.verifyConsistency(oldSize: 3, newSize: 7, oldRoot: RFC6962.nodeHash(g, c), newRoot: root, proof: [c, dd, g, l])
        try MerkleProof.verifyConsistency(oldSize: 4, newSize: 7, oldRoot: k, newRoot: root, proof: [l])
        try MerkleProof.verifyConsistency(oldSize: 6, newSize: 7, oldRoot: RFC6962.nodeHash(k, i), newRoot: root, proof: [i, j, k])
    }

    /// Every proof for every leaf and pair of sizes up to 33 is generated and verifies, and the
    /// tree's roots agree with a direct recursive MTH.
    @Test func allProofsUpTo33LeavesVerify() throws {
        let leaves = (0..<33).map { Data("leaf \($0)".utf8) }
        var tree = MerkleTree()
        for leaf in leaves { tree.append(leaf: leaf) }
        func mth(_ range: ArraySlice<Data>) -> Data {
            if range.isEmpty { return RFC6962.emptyRoot }
            if range.count == 1 { return RFC6962.leafHash(range.first!) }
            let k = Int(MerkleTree.largestPowerOfTwo(below: UInt64(range.count)))
            return RFC6962.nodeHash(mth(range.prefix(k)), mth(range.dropFirst(k)))
        }
        for n in 0...UInt64(33) {
            let root = try tree.rootHash(size: n)
            #expect(root == mth(leaves.prefix(Int(n))[...]))
            for index in 0..<n {
                let proof = try tree.inclusionProof(index: index, size: n)
                try MerkleProof.verifyInclusion(index: index, treeSize: n, leafHash: RFC6962.leafHash(leaves[Int(index)]), proof: proof, rootHash: root)
            }
            for m in 0...n {
                let proof = try tree.consistencyProof(from: m, to: n)
                try MerkleProof.verifyConsistency(oldSize: m, newSize: n, oldRoot: try tree.rootHash(size: m), newRoot: root, proof: proof)
            }
        }
    }

    @Test func proofsForMissingLeavesOrSizesAreRefused() {
        let tree = RFC6962Vectors.tree
        #expect(throws: LedgerError.self) { try tree.inclusionProof(index: 8, size: 8) }
        #expect(throws: LedgerError.self) { try tree.inclusionProof(index: 0, size: 9) }
        #expect(throws: LedgerError.self) { try tree.consistencyProof(from: 5, to: 4) }
        #expect(throws: LedgerError.self) { try tree.rootHash(size: 9) }
    }
}
