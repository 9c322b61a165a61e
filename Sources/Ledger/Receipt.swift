import Foundation

/// Proof that a record is in the ledger: its envelope and leaf, an inclusion proof, and the
/// signed block the proof leads to. A client verifies it offline with the node's verifier key.
///
/// What it proves: the envelope it carries (so the record id, time and node id in its public
/// header) was in the node's append-only log when the block was signed, unaltered since. It
/// proves nothing about how the response was computed.
///
/// Codable as JSON: `{"recordID", "leafIndex", "leafHash", "inclusionProof", "block", "envelope"}`,
/// hashes and the envelope's canonical bytes in base64, the block as its signed-note text. A
/// receipt without `envelope` (as written before it was added) decodes, but does not verify.
public struct Receipt: Sendable, Hashable, Codable {
    /// What a verified receipt proves: the block, and the public header facts of the record's
    /// envelope, which the leaf hash binds.
    public struct Verified: Sendable, Hashable {
        /// The signed block the record is included in.
        public var block: Block
        /// The record id, from the envelope's header (equal to the receipt's ``Receipt/recordID``).
        public var recordID: String
        /// The record's time in milliseconds since the Unix epoch, from the envelope's header.
        public var timestampMilliseconds: Int64
        /// The id of the node that recorded it, from the envelope's header.
        public var nodeID: String

        /// The record's time as a `Date`.
        public var date: Date { Date(timeIntervalSince1970: Double(timestampMilliseconds) / 1000) }
    }

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
    /// The record's envelope, canonical bytes (``RecordEnvelope/canonicalBytes()``): the leaf.
    /// Nil only in a receipt written before receipts carried it; such a receipt does not verify.
    public var envelope: Data?

    /// Creates a receipt from its parts.
    public init(recordID: String, leafIndex: UInt64, leafHash: Data, inclusionProof: [Data], block: String, envelope: Data?) {
        self.recordID = recordID
        self.leafIndex = leafIndex
        self.leafHash = leafHash
        self.inclusionProof = inclusionProof
        self.block = block
        self.envelope = envelope
    }

    /// Verifies the receipt offline: the envelope is the leaf (`RFC6962.leafHash(envelope) ==
    /// leafHash`), it parses and its header names ``recordID``, the node signed the block, and the
    /// proof leads from the leaf at ``leafIndex`` to the block's root.
    /// - Parameter verifier: The node's verifier key.
    /// - Returns: The verified block and the envelope header's record id, time and node id.
    /// - Throws: ``LedgerError/Code/proofInvalid`` if the receipt carries no envelope, or the
    ///   envelope is not the leaf or names another record, or the leaf is not in the signed tree;
    ///   ``LedgerError/Code/signatureInvalid`` if the node did not sign the block;
    ///   ``LedgerError/Code/malformed`` for a malformed envelope or block.
    @discardableResult
    public func verify(verifier: NoteVerifier) throws -> Verified {
        guard let envelope else {
            throw LedgerError(.proofInvalid, "receipt \(recordID) carries no envelope, so its record id is unproven")
        }
        guard RFC6962.leafHash(envelope) == leafHash else {
            throw LedgerError(.proofInvalid, "receipt \(recordID): its envelope does not hash to its leaf hash")
        }
        let parsed: RecordEnvelope
        do { parsed = try RecordEnvelope(canonicalBytes: envelope) } catch {
            throw LedgerError(.malformed, "receipt \(recordID): its envelope does not parse", cause: error)
        }
        guard parsed.recordID == recordID else {
            throw LedgerError(.proofInvalid, "receipt \(recordID): its envelope is the leaf of record \(parsed.recordID)")
        }
        let block = try Block(text: block, verifier: verifier)
        try MerkleProof.verifyInclusion(
            index: leafIndex, treeSize: block.treeSize, leafHash: leafHash, proof: inclusionProof, rootHash: block.rootHash
        )
        return Verified(block: block, recordID: parsed.recordID, timestampMilliseconds: parsed.timestampMilliseconds, nodeID: parsed.nodeID)
    }

    /// Verifies the receipt offline with the node's verifier key text (`name+hash+base64`).
    /// - Throws: As ``verify(verifier:)``, or ``LedgerError/Code/malformed`` for a bad key.
    @discardableResult
    public func verify(nodeKey: String) throws -> Verified {
        try verify(verifier: try NoteVerifier(verifierKey: nodeKey))
    }

    /// Verifies the receipt and that it is the receipt of `envelope`.
    /// - Throws: As ``verify(verifier:)``, or ``LedgerError/Code/proofInvalid`` if `envelope`
    ///   is not the one the receipt carries.
    @discardableResult
    public func verify(envelope: RecordEnvelope, verifier: NoteVerifier) throws -> Verified {
        guard try envelope.canonicalBytes() == self.envelope else {
            throw LedgerError(.proofInvalid, "envelope \(envelope.recordID) is not the leaf of receipt \(recordID)")
        }
        return try verify(verifier: verifier)
    }
}
