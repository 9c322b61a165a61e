import Foundation

// Canonical encodings of a RecordEnvelope; an envelope's encoding is its Merkle leaf. Notation as
// in LedgerRecord+Encoding.swift (u8/u32 big-endian, i64 two's-complement big-endian, str and
// blob are a u32 length + the bytes, raw[n] is exactly n bytes). The decoder reads both versions
// and accepts only canonical bytes; nothing may follow the ciphertext.
//
// Version 2 ("VLE2"), the one `seal` writes. No field names a recipient, and ciphertext sizes
// show only a size bucket, so public envelopes cannot be grouped by account.
//
//   header:
//     magic                  4 bytes "VLE2" (0x56 0x4C 0x45 0x32)
//     recordID               str
//     timestampMilliseconds  i64
//     nodeID                 str
//     keyCommitment          raw[32]
//   recipients:
//     count                  u8, 1...16
//     count × (encapsulatedKey raw[32], sealedKey blob (exactly 48 bytes))
//   payload:
//     nonce                  raw[12]
//     ciphertext             blob (the padded plaintext encrypted, then the 16-byte GCM tag)
//
//   keyCommitment = SHA-256(C ‖ data key), where C is the 32 bytes of the ASCII text
//     "verity ledger v2 key commitment" followed by one 0x00 byte, and the data key is the 32
//     raw bytes of the AES-256 key: a 64-byte SHA-256 input.
//   padded plaintext (what AES-GCM encrypts), B bytes in all:
//     length                 u32, n = the byte count of the record's canonical encoding ("VLR1"/"VLR2")
//     record                 raw[n]
//     padding                B − 4 − n zero bytes
//   B, the bucket, is the smallest power of two ≥ max(1024, 4 + n), at most 2^31; so the
//   ciphertext blob is B + 16 bytes long.
//
//   Wrapped keys are anonymous: a recipient finds its own by trying each with its private key
//   (trial decryption). HPKE info is "verity ledger v2 data key"; each wrapped key's HPKE
//   associated data is the header (which holds the key commitment). The payload's AES-GCM
//   associated data is header ‖ recipients. After unwrapping, a recipient checks the data key
//   against keyCommitment before decrypting: AES-GCM alone is not key-committing, so without it
//   a dishonest sealer could give two recipients two keys that open one ciphertext differently.
//
// Version 1 ("VLE1"), read only (ledgers written before version 2):
//
//   header:
//     magic                  4 bytes "VLE1" (0x56 0x4C 0x45 0x31)
//     recordID               str
//     timestampMilliseconds  i64
//     nodeID                 str
//   recipients:
//     count                  u8, 1...16
//     count × (keyID raw[8], encapsulatedKey raw[32], sealedKey blob (48 bytes))
//   payload:
//     nonce                  raw[12]
//     ciphertext             blob (canonical record bytes encrypted, then the 16-byte GCM tag)
//
//   keyID is RecipientKey.keyID, SHA-256(X25519 public key)[0..<8], in clear. HPKE info is
//   "verity ledger v1 data key"; the header is the HPKE associated data of every wrapped key;
//   header ‖ recipients is the AES-GCM associated data of the payload.

extension RecordEnvelope {
    static let magicV1 = Data("VLE1".utf8)
    static let magicV2 = Data("VLE2".utf8)
    static let maxRecipients = 16
    /// A version-2 sealed key: the 32-byte data key and HPKE's 16-byte tag.
    static let sealedKeySize = 48
    /// The smallest and largest version-2 padding buckets.
    static let minimumBucket = 1024
    static let maximumBucket = 1 << 31

    /// The header bytes: magic, record id, time, node id (and, in version 2, the key commitment).
    /// - Throws: ``LedgerError/Code/invalidValue`` for an unknown version or a commitment that
    ///   does not fit it.
    func headerBytes() throws -> Data {
        var w = ByteWriter()
        switch version {
        case 1: w.raw(Self.magicV1)
        case 2: w.raw(Self.magicV2)
        default: throw LedgerError(.invalidValue, "cannot encode envelope version \(version)")
        }
        try w.string(recordID, field: "recordID")
        w.i64(timestampMilliseconds)
        try w.string(nodeID, field: "nodeID")
        if version == 1 {
            guard keyCommitment == nil else { throw LedgerError(.invalidValue, "a version-1 envelope has no key commitment") }
        } else {
            guard let keyCommitment, keyCommitment.count == 32 else {
                throw LedgerError(.invalidValue, "a version-2 envelope needs a 32-byte key commitment")
            }
            w.raw(keyCommitment)
        }
        return w.bytes
    }

    /// The recipients section.
    func recipientBytes() throws -> Data {
        guard (1...Self.maxRecipients).contains(recipients.count) else {
            throw LedgerError(.invalidValue, "an envelope needs 1 to \(Self.maxRecipients) recipients, not \(recipients.count)")
        }
        var w = ByteWriter()
        w.u8(UInt8(recipients.count))
        for r in recipients {
            guard r.encapsulatedKey.count == 32 else { throw LedgerError(.invalidValue, "a wrapped key needs a 32-byte encapsulated key") }
            if version == 1 {
                guard let keyID = r.keyID, keyID.count == 8 else {
                    throw LedgerError(.invalidValue, "a version-1 wrapped key needs an 8-byte key id")
                }
                w.raw(keyID)
            } else {
                guard r.keyID == nil else { throw LedgerError(.invalidValue, "a version-2 wrapped key names no recipient") }
                guard r.sealedKey.count == Self.sealedKeySize else {
                    throw LedgerError(.invalidValue, "a version-2 sealed key is \(Self.sealedKeySize) bytes, not \(r.sealedKey.count)")
                }
            }
            w.raw(r.encapsulatedKey)
            try w.blob(r.sealedKey, field: "sealedKey")
        }
        return w.bytes
    }

    /// The envelope's canonical bytes (format "VLE1" or "VLE2" by ``version``, described at the
    /// top of this file): the bytes the Merkle leaf hashes.
    /// - Throws: ``LedgerError/Code/invalidValue`` if a field has the wrong size for the version.
    public func canonicalBytes() throws -> Data {
        guard nonce.count == 12 else { throw LedgerError(.invalidValue, "the nonce must be 12 bytes") }
        var w = ByteWriter()
        w.raw(try headerBytes())
        w.raw(try recipientBytes())
        w.raw(nonce)
        try w.blob(ciphertext, field: "ciphertext")
        return w.bytes
    }

    /// Decodes an envelope, version 1 or 2, from its canonical bytes.
    /// - Throws: ``LedgerError/Code/malformed`` for anything but a canonical "VLE1" or "VLE2" encoding.
    public init(canonicalBytes bytes: Data) throws {
        var r = ByteReader(bytes, what: "envelope")
        let version: UInt8
        switch try r.raw(4) {
        case Self.magicV1: version = 1
        case Self.magicV2: version = 2
        default: throw r.fail("not a VLE1 or VLE2 envelope")
        }
        let recordID = try r.string(field: "recordID")
        let timestamp = try r.i64()
        let nodeID = try r.string(field: "nodeID")
        let commitment = version == 2 ? try r.raw(32) : nil
        let count = Int(try r.u8())
        guard (1...Self.maxRecipients).contains(count) else { throw r.fail("\(count) recipients") }
        var recipients: [WrappedKey] = []
        for _ in 0..<count {
            let keyID = version == 1 ? try r.raw(8) : nil
            let encapsulatedKey = try r.raw(32)
            let sealedKey = try r.blob()
            if version == 2, sealedKey.count != Self.sealedKeySize { throw r.fail("a \(sealedKey.count)-byte sealed key") }
            recipients.append(WrappedKey(keyID: keyID, encapsulatedKey: encapsulatedKey, sealedKey: sealedKey))
        }
        let nonce = try r.raw(12)
        let ciphertext = try r.blob()
        try r.expectEnd()
        self.init(
            version: version, recordID: recordID, timestampMilliseconds: timestamp, nodeID: nodeID,
            keyCommitment: commitment, recipients: recipients, nonce: nonce, ciphertext: ciphertext
        )
    }

    // MARK: - Version 2 padding

    /// Whether `size` is a padding bucket: a power of two from 1024 to 2^31.
    static func isBucket(_ size: Int) -> Bool {
        size >= minimumBucket && size <= maximumBucket && size & (size - 1) == 0
    }

    /// The padded plaintext of a record's canonical bytes: `u32 n ‖ bytes ‖ zeros` up to its bucket.
    /// - Throws: ``LedgerError/Code/invalidValue`` if the record does not fit the largest bucket.
    static func pad(_ record: Data) throws -> Data {
        guard record.count <= maximumBucket - 4 else {
            throw LedgerError(.invalidValue, "a \(record.count)-byte record is too large to seal")
        }
        var bucket = minimumBucket
        while bucket < 4 + record.count { bucket <<= 1 }
        var w = ByteWriter()
        w.u32(UInt32(record.count))
        w.raw(record)
        w.raw(Data(count: bucket - 4 - record.count))
        return w.bytes
    }

    /// The record bytes inside a padded plaintext.
    /// - Throws: ``LedgerError/Code/malformed`` if the size is not a bucket, the length does not
    ///   fit, or a padding byte is not zero.
    static func unpad(_ padded: Data) throws -> Data {
        guard isBucket(padded.count) else { throw LedgerError(.malformed, "the padded plaintext is \(padded.count) bytes, not a bucket size") }
        var r = ByteReader(padded, what: "padded plaintext")
        let length = Int(try r.u32())
        guard length <= padded.count - 4 else { throw LedgerError(.malformed, "the padded plaintext claims \(length) record bytes in \(padded.count)") }
        let record = try r.raw(length)
        guard padded.dropFirst(4 + length).allSatisfy({ $0 == 0 }) else {
            throw LedgerError(.malformed, "the padded plaintext's padding is not all zero")
        }
        return record
    }
}
