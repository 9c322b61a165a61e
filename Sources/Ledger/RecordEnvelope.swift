import Crypto
import Foundation

/// An encrypted ``LedgerRecord`` plus the minimal public facts about it: the log's leaf.
///
/// The payload is sealed with AES-256-GCM under a fresh random 256-bit data key. The data key
/// is wrapped for each recipient with HPKE (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256),
/// HKDF-SHA256, AES-256-GCM). Only ``recordID``, ``timestampMilliseconds``, ``nodeID`` and the
/// recipients' key ids are in clear. See `RecordEnvelope+Encoding.swift` for the byte format and
/// `RecordEnvelope+Seal.swift` for what is bound to what.
public struct RecordEnvelope: Sendable, Hashable {
    /// One recipient's copy of the data key.
    public struct WrappedKey: Sendable, Hashable {
        /// ``RecipientKey/keyID`` of the recipient: the first 8 bytes of SHA-256 of its X25519 key.
        public var keyID: Data
        /// The HPKE encapsulated key (the ephemeral X25519 public key, 32 bytes).
        public var encapsulatedKey: Data
        /// The data key sealed by HPKE (32 bytes + 16-byte tag).
        public var sealedKey: Data

        /// Creates a wrapped key from its parts.
        public init(keyID: Data, encapsulatedKey: Data, sealedKey: Data) {
            self.keyID = keyID
            self.encapsulatedKey = encapsulatedKey
            self.sealedKey = sealedKey
        }
    }

    /// The format version; this module writes and reads version 1.
    public var version: UInt8
    /// The record id, equal to the sealed record's ``LedgerRecord/recordID``.
    public var recordID: String
    /// The record's time in milliseconds since the Unix epoch, equal to the sealed record's.
    public var timestampMilliseconds: Int64
    /// The id of the node (worker or gateway) that recorded the interaction.
    public var nodeID: String
    /// The data key wrapped for each recipient, sender first.
    public var recipients: [WrappedKey]
    /// The AES-GCM nonce (12 bytes).
    public var nonce: Data
    /// The AES-GCM ciphertext of the record's canonical bytes, followed by the 16-byte tag.
    public var ciphertext: Data

    /// Creates an envelope from its parts (used by decoding; use ``seal(_:to:nodeID:)`` to make one).
    public init(
        version: UInt8 = 1, recordID: String, timestampMilliseconds: Int64, nodeID: String,
        recipients: [WrappedKey], nonce: Data, ciphertext: Data
    ) {
        self.version = version
        self.recordID = recordID
        self.timestampMilliseconds = timestampMilliseconds
        self.nodeID = nodeID
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
    /// The first 8 bytes of SHA-256 of the 32-byte public key: how envelopes name recipients.
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
