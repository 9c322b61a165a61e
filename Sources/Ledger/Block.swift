import Crypto
import Foundation

/// A sealed block of the ledger: a checkpoint signed by the node, chained to the block before.
///
/// The block is one C2SP signed note whose text is a tlog checkpoint with one extension line:
///
/// ```
/// <origin>
/// <tree size>
/// <base64 root hash>
/// block <height> <base64 of the previous block's hash>
/// ```
/// A block's hash is `SHA-256(note text)`; the first block (height 0) names 32 zero bytes as
/// its previous hash. The signature covers the height and the link, so the chain cannot be
/// re-ordered or spliced without the node key.
public struct Block: Sendable, Hashable {
    /// The block's position in the chain, from 0.
    public let height: UInt64
    /// The checkpoint: origin, tree size and root hash (plus the block line as its extension).
    public let checkpoint: Checkpoint
    /// The hash of the previous block (zeros for height 0).
    public let previousHash: Data
    /// The signed note, as published.
    public let note: SignedNote

    /// The previous-hash of the first block.
    public static let genesisPreviousHash = Data(repeating: 0, count: 32)

    /// The block's hash, `SHA-256(note text)`, which the next block names.
    public var hash: Data { Data(SHA256.hash(data: Data(note.text.utf8))) }

    /// The tree size the block seals.
    public var treeSize: UInt64 { checkpoint.size }

    /// The root hash the block seals.
    public var rootHash: Data { checkpoint.rootHash }

    /// Signs a new block.
    /// - Parameters:
    ///   - height: The block's height.
    ///   - size: The tree size.
    ///   - rootHash: The root hash at that size.
    ///   - previousHash: The previous block's ``hash``, or ``genesisPreviousHash``.
    ///   - signer: The node key; its name is the origin.
    public init(height: UInt64, size: UInt64, rootHash: Data, previousHash: Data, signer: NoteSigner) throws {
        guard previousHash.count == 32 else { throw LedgerError(.invalidValue, "previous block hash must be 32 bytes") }
        let checkpoint = Checkpoint(
            origin: signer.name, size: size, rootHash: rootHash,
            extensions: ["block \(height) \(previousHash.base64EncodedString())"]
        )
        self.height = height
        self.checkpoint = checkpoint
        self.previousHash = previousHash
        self.note = try signer.sign(try checkpoint.text())
    }

    /// Reads and verifies a block from its signed note.
    /// - Parameters:
    ///   - note: The signed note.
    ///   - verifier: The node's verifier key; its name must be the checkpoint's origin.
    /// - Throws: ``LedgerError/Code/signatureInvalid`` if the node did not sign it;
    ///   ``LedgerError/Code/malformed`` if it is not a block checkpoint of this log.
    public init(note: SignedNote, verifier: NoteVerifier) throws {
        let checkpoint = try Checkpoint(text: try verifier.verify(note))
        guard checkpoint.origin == verifier.name else {
            throw LedgerError(.malformed, "checkpoint origin \"\(checkpoint.origin)\" is not the node key's name \"\(verifier.name)\"")
        }
        guard checkpoint.extensions.count == 1 else {
            throw LedgerError(.malformed, "a block checkpoint has exactly one extension line")
        }
        let fields = checkpoint.extensions[0].split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 3, fields[0] == "block",
              let height = UInt64(fields[1]), String(height) == fields[1],
              let previous = Data(base64Encoded: String(fields[2])), previous.base64EncodedString() == fields[2],
              previous.count == 32
        else { throw LedgerError(.malformed, "bad block line \"\(checkpoint.extensions[0])\"") }
        self.height = height
        self.checkpoint = checkpoint
        self.previousHash = previous
        self.note = note
    }

    /// Reads and verifies a block from its published text.
    /// - Throws: As ``init(note:verifier:)``, or ``LedgerError/Code/malformed`` for a bad note.
    public init(text: String, verifier: NoteVerifier) throws {
        try self.init(note: try SignedNote(parsing: text), verifier: verifier)
    }
}
