import Foundation

/// The node's signing authority for blocks. It remembers the last block it signed and refuses
/// to sign a checkpoint that is not provably consistent with it (C2SP tlog-checkpoint: "a log
/// MUST NOT sign any checkpoint which is inconsistent with any checkpoint it previously
/// signed"). Consistency with the last block implies consistency with every earlier one,
/// because each was checked the same way.
public struct BlockSigner: Sendable {
    /// The node key.
    public let signer: NoteSigner
    /// The last block signed, the one the next must extend.
    public private(set) var lastBlock: Block?

    /// Creates a signer that continues after `lastBlock` (nil for a new log).
    public init(signer: NoteSigner, lastBlock: Block?) {
        self.signer = signer
        self.lastBlock = lastBlock
    }

    /// Signs the next block.
    /// - Parameters:
    ///   - size: The new tree size, at least the last block's.
    ///   - rootHash: The root hash at `size`.
    ///   - consistencyProof: An RFC 6962 consistency proof from the last block's tree to this one.
    /// - Returns: The new block, now the last.
    /// - Throws: ``LedgerError/Code/inconsistentCheckpoint`` if the proof does not show the new
    ///   tree extends the last signed one; nothing is signed then.
    public mutating func signNext(size: UInt64, rootHash: Data, consistencyProof: [Data]) throws -> Block {
        let height: UInt64
        let previous: Data
        if let last = lastBlock {
            do {
                try MerkleProof.verifyConsistency(
                    oldSize: last.treeSize, newSize: size, oldRoot: last.rootHash, newRoot: rootHash, proof: consistencyProof
                )
            } catch {
                throw LedgerError(
                    .inconsistentCheckpoint,
                    "refusing to sign size \(size): not consistent with block \(last.height) (size \(last.treeSize))",
                    cause: error
                )
            }
            height = last.height + 1
            previous = last.hash
        } else {
            height = 0
            previous = Block.genesisPreviousHash
        }
        let block = try Block(height: height, size: size, rootHash: rootHash, previousHash: previous, signer: signer)
        lastBlock = block
        return block
    }
}
