import Foundation

/// Proof that a record is in the ledger: its leaf, an inclusion proof, and the signed block the
/// proof leads to. A client verifies it offline with the node's verifier key.
///
/// What it proves: the envelope with this leaf hash was in the node's append-only log when the
/// block was signed, unaltered since. It proves nothing about how the response was computed.
/// Codable as JSON (hashes in base64, the block as its signed-note text).
public struct Receipt: Sendable, Hashable, Codable {
    /// The record id.
    public var recordID: String
    /// The leaf's index in the log.
    public var leafIndex: UInt64
    /// The RFC 6962 hash of the record's envelope.
    public var leafHash: Data
    /// The inclusion proof from the leaf to the block's root.
    public var inclusionProof: [Data]
    /// The block, as its signed note text.
    public var block: String

    /// Creates a receipt from its parts.
    public init(recordID: String, leafIndex: UInt64, leafHash: Data, inclusionProof: [Data], block: String) {
        self.recordID = recordID
        self.leafIndex = leafIndex
        self.leafHash = leafHash
        self.inclusionProof = inclusionProof
        self.block = block
    }

    /// Verifies the receipt offline.
    /// - Parameter verifier: The node's verifier key.
    /// - Returns: The verified block.
    /// - Throws: ``LedgerError/Code/signatureInvalid`` if the node did not sign the block;
    ///   ``LedgerError/Code/proofInvalid`` if the leaf is not in the signed tree;
    ///   ``LedgerError/Code/malformed`` for a malformed block.
    @discardableResult
    public func verify(verifier: NoteVerifier) throws -> Block {
        let block = try Block(text: block, verifier: verifier)
        try MerkleProof.verifyInclusion(
            index: leafIndex, treeSize: block.treeSize, leafHash: leafHash, proof: inclusionProof, rootHash: block.rootHash
        )
        return block
    }

    /// Verifies the receipt offline with the node's verifier key text (`name+hash+base64`).
    /// - Throws: As ``verify(verifier:)``, or ``LedgerError/Code/malformed`` for a bad key.
    @discardableResult
    public func verify(nodeKey: String) throws -> Block {
        try verify(verifier: try NoteVerifier(verifierKey: nodeKey))
    }

    /// Verifies the receipt and that it is the receipt of `envelope`.
    /// - Throws: As ``verify(verifier:)``, or ``LedgerError/Code/proofInvalid`` if the envelope's
    ///   id or leaf hash differs from the receipt's.
    @discardableResult
    public func verify(envelope: RecordEnvelope, verifier: NoteVerifier) throws -> Block {
        guard envelope.recordID == recordID, try envelope.leafHash() == leafHash else {
            throw LedgerError(.proofInvalid, "envelope \(envelope.recordID) is not the leaf of receipt \(recordID)")
        }
        return try verify(verifier: verifier)
    }
}
