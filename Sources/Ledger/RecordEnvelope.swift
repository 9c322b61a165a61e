import Crypto
import Foundation

/// An encrypted ``LedgerRecord`` plus the minimal public facts about it: the log's leaf.
///
/// The payload is sealed with AES-256-GCM under a fresh random 256-bit data key. The data key
/// is wrapped for each recipient with HPKE (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256),
/// HKDF-SHA256, AES-256-GCM). Only ``recordID``, ``timestampMilliseconds`` and ``nodeID`` are in
/// clear (plus, in version 2, a commitment to the data key; in version 1, the recipients' key
/// ids). See `RecordEnvelope+Encoding.swift` for the byte formats and `RecordEnvelope+Seal.swift`
/// for what is bound to what.
public struct RecordEnvelope: Sendable, Hashable {
    /// One recipient's copy of the data key.
    public struct WrappedKey: Sendable, Hashable {
        /// Version 1 only: ``RecipientKey/keyID`` of the recipient, the first 8 bytes of SHA-256
        /// of its X25519 key. Nil in version 2, whose recipients are anonymous.
        public var keyID: Data?
        /// The HPKE encapsulated key (the ephemeral X25519 public key, 32 bytes).
        public var encapsulatedKey: Data
        /// The data key sealed by HPKE (32 bytes + 16-byte tag).
        public var sealedKey: Data

        /// Creates a wrapped key from its parts; `keyID` is nil for version 2.
        public init(keyID: Data? = nil, encapsulatedKey: Data, sealedKey: Data) {
            self.keyID = keyID
            self.encapsulatedKey = encapsulatedKey
            self.sealedKey = sealedKey
        }
    }

    /// The version ``seal(_:to:nodeID:)`` writes.
    public static let currentVersion: UInt8 = 2

    /// The format version: 1 ("VLE1", read only) or 2 ("VLE2", written by ``seal(_:to:nodeID:)``).
    public var version: UInt8
    /// The record id, equal to the sealed record's ``LedgerRecord/recordID``.
    public var recordID: String
    /// The record's time in milliseconds since the Unix epoch, equal to the sealed record's.
    public var timestampMilliseconds: Int64
    /// The id of the node (worker or gateway) that recorded the interaction.
    public var nodeID: String
    /// Version 2 only: `SHA-256("verity ledger v2 key commitment" ‖ 0x00 ‖ data key)`, 32 bytes,
    /// which every recipient checks before decrypting (see ``keyCommitment(for:)``). Nil in version 1.
    public var keyCommitment: Data?
    /// The data key wrapped for each recipient (version 1: sender first).
    public var recipients: [WrappedKey]
    /// The AES-GCM nonce (12 bytes).
    public var nonce: Data
    /// The AES-GCM ciphertext followed by the 16-byte tag. Version 1 encrypts the record's
    /// canonical bytes; version 2 the padded plaintext (see `RecordEnvelope+Encoding.swift`).
    public var ciphertext: Data

    /// Creates an envelope from its parts (used by decoding; use ``seal(_:to:nodeID:)`` to make one).
    public init(
        version: UInt8 = RecordEnvelope.currentVersion, recordID: String, timestampMilliseconds: Int64, nodeID: String,
        keyCommitment: Data? = nil, recipients: [WrappedKey], nonce: Data, ciphertext: Data
    ) {
        self.version = version
        self.recordID = recordID
        self.timestampMilliseconds = timestampMilliseconds
        self.nodeID = nodeID
        self.keyCommitment = keyCommitment
        self.recipients = recipients
        self.nonce = nonce
        self.ciphertext = ciphertext
    }

    /// The RFC 6962 leaf hash of this envelope's canonical bytes.
    public func leafHash() throws -> Data { RFC6962.leafHash(try canonicalBytes()) }
}

/// The public half of a recipient's X25519 key, as the sealer needs it.
// swift-crypto 3.x does not mark its immutable key types Sendable (4.x does); the stored keys
// are never mutated, so sharing them across tasks is safe.
public struct RecipientKey: @unchecked Sendable, Hashable {
    /// The X25519 public key.
    public var publicKey: Curve25519.KeyAgreement.PublicKey
    /// The first 8 bytes of SHA-256 of the 32-byte public key: how version-1 envelopes name
    /// recipients, and the private owner tag the gateway stores beside a leaf (``StoredLeaf/owner``).
    public var keyID: Data { Self.keyID(for: publicKey) }

    /// Wraps a public key.
    public init(_ publicKey: Curve25519.KeyAgreement.PublicKey) { self.publicKey = publicKey }

    /// Parses the 32 raw bytes of an X25519 public key.
    /// - Throws: ``LedgerError/Code/malformed`` if they are not one.
    public init(rawRepresentation raw: Data) throws {
        do { publicKey = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw) } catch {
            throw LedgerError(.malformed, "not an X25519 public key (\(raw.count) bytes)", cause: error)
        }
    }

    /// The 32 raw bytes of the public key.
    public var rawRepresentation: Data { publicKey.rawRepresentation }

    /// The key id of an X25519 public key: `SHA-256(public key)[0..<8]`.
    public static func keyID(for key: Curve25519.KeyAgreement.PublicKey) -> Data {
        Data(SHA256.hash(data: key.rawRepresentation).prefix(8))
    }

    public static func == (a: RecipientKey, b: RecipientKey) -> Bool {
        a.publicKey.rawRepresentation == b.publicKey.rawRepresentation
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(publicKey.rawRepresentation) }
}
