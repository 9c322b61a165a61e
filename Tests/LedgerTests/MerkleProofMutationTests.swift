import Foundation
import Testing
@testable import Ledger

/// Every corruption of a valid proof must fail: each bit flip of each proof hash, the leaf hash
/// and the roots, wrong indices and sizes, and proofs with hashes added, removed or swapped
/// (the probe set of transparency-dev/merkle `corruptInclusionProof` / `corruptConsistencyProof`).
@Suite("Merkle proof mutations")
struct MerkleProofMutationTests {
    static let someHash = Data(hex: "abacaba000000000000000000000000000000000000000000060061e00123456")

    @Test(arguments: RFC6962Vectors.inclusion)
    func everyCorruptedInclusionProofFails(_ v: RFC6962Vectors.Inclusion) throws {
        let leaf = RFC6962.leafHash(RFC6962Vectors.leaves[Int(v.index)])
        let root = RFC6962Vectors.roots[Int(v.size) - 1]
        try MerkleProof.verifyInclusion(index: v.index, treeSize: v.size, leafHash: leaf, proof: v.proof, rootHash: root)

        func fails(_ index: UInt64, _ size: UInt64, _ leaf: Data, _ proof: [Data], _ root: Data, _ what: String) {
            #expect(throws: LedgerError.self, "\(what) verified") {
                try MerkleProof.verifyInclusion(index: index, treeSize: size, leafHash: leaf, proof: proof, rootHash: root)
            }
        }
        for bit in 0..<256 {
            fails(v.index, v.size, leaf.flipping(bit / 8, mask: 1 << UInt8(bit % 8)), v.proof, root, "leaf bit \(bit)")
            fails(v.index, v.size, leaf, v.proof, root.flipping(bit / 8, mask: 1 << UInt8(bit % 8)), "root bit \(bit)")
            for p in v.proof.indices {
                var proof = v.proof
                proof[p] = proof[p].flipping(bit / 8, mask: 1 << UInt8(bit % 8))
                fails(v.index, v.size, leaf, proof, root, "proof[\(p)] bit \(bit)")
            }
        }
        if v.index > 0 { fails(v.index - 1, v.size, leaf, v.proof, root, "index - 1") }
        fails(v.index + 1, v.size, leaf, v.proof, root, "index + 1")
        fails(v.index ^ 2, v.size, leaf, v.proof, root, "index ^ 2")
        fails(v.index, v.size * 2, leaf, v.proof, root, "size * 2")
        fails(v.index, v.size / 2, leaf, v.proof, root, "size / 2")
        fails(v.index, v.size, leaf, v.proof + [Data()], root, "trailing garbage")
        fails(v.index, v.size, leaf, v.proof + [root], root, "trailing root")
        fails(v.index, v.size, leaf, [Data()] + v.proof, root, "preceding garbage")
        fails(v.index, v.size, leaf, [root] + v.proof, root, "preceding root")
        fails(v.index, v.size, leaf, Array(v.proof.dropLast()), root, "removed component")
        fails(v.index, v.size, leaf, [v.proof[0], Self.someHash] + v.proof.dropFirst(), root, "inserted component")
        fails(v.index, v.size, leaf, v.proof, RFC6962.emptyRoot, "empty root")
        fails(v.index, v.size, Data("WrongLeaf".utf8), v.proof, root, "short leaf")
    }

    @Test(arguments: RFC6962Vectors.consistency)
    func everyCorruptedConsistencyProofFails(_ v: RFC6962Vectors.Consistency) throws {
        let root1 = RFC6962Vectors.roots[Int(v.from) - 1]
        let root2 = RFC6962Vectors.roots[Int(v.to) - 1]
        func fails(_ size1: UInt64, _ size2: UInt64, _ root1: Data, _ root2: Data, _ proof: [Data], _ what: String) {
            #expect(throws: LedgerError.self, "\(what) verified") {
                try MerkleProof.verifyConsistency(oldSize: size1, newSize: size2, oldRoot: root1, newRoot: root2, proof: proof)
            }
        }
        for bit in 0..<256 {
            let flip = { (d: Data) in d.flipping(bit / 8, mask: 1 << UInt8(bit % 8)) }
            fails(v.from, v.to, flip(root1), root2, v.proof, "root1 bit \(bit)")
            fails(v.from, v.to, root1, flip(root2), v.proof, "root2 bit \(bit)")
            for p in v.proof.indices {
                var proof = v.proof
                proof[p] = flip(proof[p])
                fails(v.from, v.to, root1, root2, proof, "proof[\(p)] bit \(bit)")
            }
        }
        fails(v.from - 1, v.to, root1, root2, v.proof, "size1 - 1")
        fails(v.from + 1, v.to, root1, root2, v.proof, "size1 + 1")
        fails(v.from ^ 2, v.to, root1, root2, v.proof, "size1 ^ 2")
        fails(v.from, v.to * 2, root1, root2, v.proof, "size2 * 2")
        fails(v.from, v.to / 2, root1, root2, v.proof, "size2 / 2")
        fails(v.from, v.to, root2, root1, v.proof, "swapped roots")
        fails(v.from, v.to, root1, root2, [], "empty proof")
        fails(v.from, v.to, root1, root2, v.proof + [Data()], "trailing garbage")
        fails(v.from, v.to, root1, root2, v.proof + [root1], "trailing root1")
        fails(v.from, v.to, root1, root2, v.proof + [root2], "trailing root2")
        fails(v.from, v.to, root1, root2, [Data()] + v.proof, "preceding garbage")
        fails(v.from, v.to, root1, root2, [root1] + v.proof, "preceding root1")
        fails(v.from, v.to, root1, root2, [root2] + v.proof, "preceding root2")
        fails(v.from, v.to, root1, root2, [v.proof[0]] + v.proof, "preceding proof[0]")
        fails(v.from, v.to, root1, root2, Array(v.proof.dropLast()), "truncated proof")
    }

    @Test func trivialConsistencyCases() throws {
        let r1 = RFC6962Vectors.roots[0], r2 = RFC6962Vectors.roots[1]
        try MerkleProof.verifyConsistency(oldSize: 0, newSize: 0, oldRoot: r1, newRoot: r1, proof: [])
        try MerkleProof.verifyConsistency(oldSize: 0, newSize: 1, oldRoot: r1, newRoot: r2, proof: [])
        try MerkleProof.verifyConsistency(oldSize: 1, newSize: 1, oldRoot: r2, newRoot: r2, proof: [])
        #expect(throws: LedgerError.self) { try MerkleProof.verifyConsistency(oldSize: 1, newSize: 1, oldRoot: r1, newRoot: r2, proof: []) }
        #expect(throws: LedgerError.self) { try MerkleProof.verifyConsistency(oldSize: 1, newSize: 0, oldRoot: r1, newRoot: r2, proof: []) }
        #expect(throws: LedgerError.self) { try MerkleProof.verifyConsistency(oldSize: 1, newSize: 2, oldRoot: r1, newRoot: r2, proof: []) }
        #expect(throws: LedgerError.self) {
            try MerkleProof.verifyConsistency(oldSize: 1, newSize: 1, oldRoot: r1, newRoot: r1, proof: [RFC6962.emptyRoot])
        }
        #expect(throws: LedgerError.self) {
            try MerkleProof.verifyConsistency(oldSize: 0, newSize: 1, oldRoot: r1, newRoot: r1, proof: [RFC6962.emptyRoot])
        }
    }

    @Test func singleLeafTree() throws {
        let hash = RFC6962.leafHash(Data("data".utf8))
        try MerkleProof.verifyInclusion(index: 0, treeSize: 1, leafHash: hash, proof: [], rootHash: hash)
        #expect(throws: LedgerError.self) { try MerkleProof.verifyInclusion(index: 0, treeSize: 1, leafHash: hash, proof: [], rootHash: Data()) }
        #expect(throws: LedgerError.self) { try MerkleProof.verifyInclusion(index: 0, treeSize: 1, leafHash: Data(), proof: [], rootHash: hash) }
        #expect(throws: LedgerError.self) { try MerkleProof.verifyInclusion(index: 0, treeSize: 0, leafHash: hash, proof: [], rootHash: hash) }
        #expect(throws: LedgerError.self) { try MerkleProof.verifyInclusion(index: 1, treeSize: 1, leafHash: hash, proof: [], rootHash: hash) }
    }
}
