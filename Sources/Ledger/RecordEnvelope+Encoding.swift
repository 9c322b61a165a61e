import Foundation

// Canonical encoding of a RecordEnvelope, version 1 ("VLE1"); it is the Merkle leaf.
// Notation as in LedgerRecord+Encoding.swift (u8/u32 big-endian, str and blob are u32 length +
// bytes, raw[n] is exactly n bytes).
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
// The header is the HPKE associated data of every wrapped key; header ‖ recipients is the
// AES-GCM associated data of the payload. Nothing may follow the ciphertext.

extension RecordEnvelope {
    static let magic = Data("VLE1".utf8)
    static let maxRecipients = 16

    /// The header bytes: magic, record id, time, node id.
    func headerBytes() throws -> Data {
        var w = ByteWriter()
        w.raw(Self.magic)
        try w.string(recordID, field: "recordID")
        w.i64(timestampMilliseconds)
        try w.string(nodeID, field: "nodeID")
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
            guard r.keyID.count == 8, r.encapsulatedKey.count == 32 else {
                throw LedgerError(.invalidValue, "a wrapped key needs an 8-byte key id and a 32-byte encapsulated key")
            }
            w.raw(r.keyID)
            w.raw(r.encapsulatedKey)
            try w.blob(r.sealedKey, field: "sealedKey")
        }
        return w.bytes
    }

    /// The envelope's canonical bytes (format "VLE1", described at the top of this file): the
    /// bytes the Merkle leaf hashes.
    /// - Throws: ``LedgerError/Code/invalidValue`` if a field has the wrong size.
    public func canonicalBytes() throws -> Data {
        guard version == 1 else { throw LedgerError(.invalidValue, "cannot encode envelope version \(version)") }
        guard nonce.count == 12 else { throw LedgerError(.invalidValue, "the nonce must be 12 bytes") }
        var w = ByteWriter()
        w.raw(try headerBytes())
        w.raw(try recipientBytes())
        w.raw(nonce)
        try w.blob(ciphertext, field: "ciphertext")
        return w.bytes
    }

    /// Decodes an envelope from its canonical bytes.
    /// - Throws: ``LedgerError/Code/malformed`` for anything but a canonical "VLE1" encoding.
    public init(canonicalBytes bytes: Data) throws {
        var r = ByteReader(bytes, what: "envelope")
        guard try r.raw(4) == Self.magic else { throw r.fail("not a VLE1 envelope") }
        let recordID = try r.string(field: "recordID")
        let timestamp = try r.i64()
        let nodeID = try r.string(field: "nodeID")
        let count = Int(try r.u8())
        guard (1...Self.maxRecipients).contains(count) else { throw r.fail("\(count) recipients") }
        var recipients: [WrappedKey] = []
        for _ in 0..<count {
            recipients.append(WrappedKey(keyID: try r.raw(8), encapsulatedKey: try r.raw(32), sealedKey: try r.blob()))
        }
        let nonce = try r.raw(12)
        let ciphertext = try r.blob()
        try r.expectEnd()
        self.init(
            version: 1, recordID: recordID, timestampMilliseconds: timestamp, nodeID: nodeID,
            recipients: recipients, nonce: nonce, ciphertext: ciphertext
        )
    }
}
