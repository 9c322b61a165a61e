/// The one error type of the `Ledger` module.
///
/// Shaped like swift-nio's `FileSystemError`: an extensible ``Code`` for programs to switch on,
/// a human-readable ``message`` that names the record, block or field at fault, and an optional
/// underlying ``cause`` (a swift-crypto error, for example).
public struct LedgerError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added; switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        public var description: String { raw }

        /// Bytes that do not parse as the format they claim to be (record, envelope, note, key…).
        public static let malformed = Code("malformed")
        /// A value that cannot be encoded canonically (NaN, unsorted keys, too long…).
        public static let invalidValue = Code("invalidValue")
        /// A Merkle inclusion or consistency proof that does not verify.
        public static let proofInvalid = Code("proofInvalid")
        /// A signature that does not verify, or a note with no signature by the expected key.
        public static let signatureInvalid = Code("signatureInvalid")
        /// A key given to decrypt an envelope is not one of its recipients.
        public static let notARecipient = Code("notARecipient")
        /// Decryption failed: the key is wrong or the ciphertext was altered.
        public static let decryptionFailed = Code("decryptionFailed")
        /// The data key a recipient unwrapped is not the one the envelope commits to: the sealer
        /// gave its recipients different keys, so they could read different plaintexts.
        public static let keyCommitmentMismatch = Code("keyCommitmentMismatch")
        /// An address whose checksum, version or length is wrong.
        public static let invalidAddress = Code("invalidAddress")
        /// The node was asked to sign a checkpoint inconsistent with one it signed before.
        public static let inconsistentCheckpoint = Code("inconsistentCheckpoint")
        /// Stored data does not re-derive to what was signed: a record or block was altered,
        /// removed or reordered.
        public static let tampered = Code("tampered")
        /// A record, leaf or block that does not exist (yet).
        public static let notFound = Code("notFound")
        /// A record with this id is already in the log.
        public static let duplicateRecord = Code("duplicateRecord")
        /// The record is in the log but no block covers it yet; seal and ask again.
        public static let notYetSealed = Code("notYetSealed")
        /// A storage back end failed.
        public static let storage = Code("storage")
        /// A cryptographic primitive failed unexpectedly (for example, key generation).
        public static let crypto = Code("crypto")
    }

    /// What kind of failure this is.
    public var code: Code
    /// A human-readable explanation naming what failed.
    public var message: String
    /// The underlying error, if any.
    public var cause: (any Error)?

    /// Creates an error.
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: What failed, naming the record, block or field.
    ///   - cause: The underlying error, if any.
    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(code): \(message) (cause: \(cause))" }
        return "\(code): \(message)"
    }
}
