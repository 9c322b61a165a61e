import Crypto
import Foundation

extension RecordEnvelope {
    /// The HPKE suite wrapping data keys: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM
    /// (RFC 9180 ids 0x0020, 0x0001, 0x0002).
    public static var ciphersuite: HPKE.Ciphersuite { HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: .HKDF_SHA256, aead: .AES_GCM_256) }

    /// The HPKE `info` string for wrapping a version-1 record's data key.
    static let hpkeInfoV1 = Data("verity ledger v1 data key".utf8)
    /// The HPKE `info` string for wrapping a version-2 record's data key.
    static let hpkeInfoV2 = Data("verity ledger v2 data key".utf8)
    /// What precedes the data key in the key commitment's hash input: the ASCII text
    /// "verity ledger v2 key commitment" and a 0x00 byte.
    static let keyCommitmentPrefix = Data("verity ledger v2 key commitment".utf8) + [0x00]

    /// The version-2 key commitment of a data key: `SHA-256("verity ledger v2 key commitment" ‖
    /// 0x00 ‖ data key)`.
    static func keyCommitment(dataKey: Data) -> Data {
        var hasher = SHA256()
        hasher.update(data: keyCommitmentPrefix)
        hasher.update(data: dataKey)
        return Data(hasher.finalize())
    }

    /// Encrypts a record for its recipients, as a version-2 envelope.
    ///
    /// A fresh 256-bit data key encrypts the padded record (its canonical bytes, length-prefixed
    /// and zero-padded to a power-of-two bucket of at least 1024 bytes) with AES-256-GCM (random
    /// 96-bit nonce). The header carries a commitment to the data key. The data key is wrapped
    /// with HPKE for each recipient, anonymously, with the header (magic, record id, time, node
    /// id, key commitment) as associated data; the payload's associated data is the header
    /// followed by the recipients section, so no public field can be changed or recipient
    /// removed without decryption failing.
    /// - Parameters:
    ///   - record: The record to seal.
    ///   - recipients: Who may read it, normally the sender's account key then an auditor's key.
    ///   - nodeID: The recording node's id, public.
    /// - Throws: ``LedgerError/Code/invalidValue`` for no or too many recipients, a duplicate
    ///   recipient, or a record that cannot be encoded; ``LedgerError/Code/crypto`` if sealing fails.
    public static func seal(_ record: LedgerRecord, to recipients: [RecipientKey], nodeID: String) throws -> RecordEnvelope {
        guard Set(recipients).count == recipients.count else {
            throw LedgerError(.invalidValue, "a recipient is listed twice")
        }
        guard (1...maxRecipients).contains(recipients.count) else {
            throw LedgerError(.invalidValue, "an envelope needs 1 to \(maxRecipients) recipients, not \(recipients.count)")
        }
        let plaintext = try pad(try record.canonicalBytes())
        let dataKey = SymmetricKey(size: .bits256)
        let dataKeyBytes = dataKey.withUnsafeBytes { Data($0) }
        var envelope = RecordEnvelope(
            version: 2, recordID: record.recordID, timestampMilliseconds: record.timestampMilliseconds, nodeID: nodeID,
            keyCommitment: keyCommitment(dataKey: dataKeyBytes), recipients: [], nonce: Data(), ciphertext: Data()
        )
        let header = try envelope.headerBytes()
        do {
            for recipient in recipients {
                var sender = try HPKE.Sender(recipientKey: recipient.publicKey, ciphersuite: ciphersuite, info: hpkeInfoV2)
                let sealedKey = try sender.seal(dataKeyBytes, authenticating: header)
                envelope.recipients.append(WrappedKey(encapsulatedKey: sender.encapsulatedKey, sealedKey: sealedKey))
            }
            let aad = header + (try envelope.recipientBytes())
            let box = try AES.GCM.seal(plaintext, using: dataKey, nonce: AES.GCM.Nonce(), authenticating: aad)
            envelope.nonce = Data(box.nonce)
            envelope.ciphertext = box.ciphertext + box.tag
        } catch let error as LedgerError {
            throw error
        } catch {
            throw LedgerError(.crypto, "sealing record \(record.recordID) failed", cause: error)
        }
        return envelope
    }

    /// Decrypts the envelope (version 1 or 2) with one recipient's private key.
    ///
    /// Version 2: the key is tried on each wrapped key in turn; the data key it unwraps must
    /// match the header's key commitment before the payload is decrypted, and the padding must
    /// be well formed.
    /// - Parameter key: An X25519 private key whose public key is one of the recipients.
    /// - Returns: The record, checked to carry the same id and time as the public envelope.
    /// - Throws: ``LedgerError/Code/notARecipient`` if the key is not a recipient (version 2: no
    ///   wrapped key opens with it, which is also what an altered header or wrapped key looks
    ///   like); ``LedgerError/Code/keyCommitmentMismatch`` if the unwrapped data key is not the
    ///   committed one; ``LedgerError/Code/decryptionFailed`` if the wrapped key (version 1) or
    ///   payload does not authenticate (wrong key or altered bytes); ``LedgerError/Code/malformed``
    ///   for bad padding or record bytes; ``LedgerError/Code/tampered`` if the record inside
    ///   names another id or time.
    public func open(with key: Curve25519.KeyAgreement.PrivateKey) throws -> LedgerRecord {
        let keyID = RecipientKey.keyID(for: key.publicKey)
        let plaintext: Data
        switch version {
        case 1: plaintext = try openV1(with: key, keyID: keyID)
        case 2: plaintext = try Self.unpad(try openV2(with: key, keyID: keyID))
        default: throw LedgerError(.malformed, "record \(recordID): unknown envelope version \(version)")
        }
        let record = try LedgerRecord(canonicalBytes: plaintext)
        guard record.recordID == recordID, record.timestampMilliseconds == timestampMilliseconds else {
            throw LedgerError(.tampered, "record \(recordID): the sealed record names id \(record.recordID) at \(record.timestampMilliseconds)")
        }
        return record
    }

    /// Version 1: the wrapped key named by the key's id, then the payload.
    private func openV1(with key: Curve25519.KeyAgreement.PrivateKey, keyID: Data) throws -> Data {
        guard let wrapped = recipients.first(where: { $0.keyID == keyID }) else {
            throw LedgerError(.notARecipient, "record \(recordID) is not encrypted to key \(keyID.hexString)")
        }
        do {
            let header = try headerBytes()
            var recipient = try HPKE.Recipient(
                privateKey: key, ciphersuite: Self.ciphersuite, info: Self.hpkeInfoV1, encapsulatedKey: wrapped.encapsulatedKey
            )
            let dataKey = SymmetricKey(data: try recipient.open(wrapped.sealedKey, authenticating: header))
            return try decryptPayload(with: dataKey, header: header)
        } catch {
            throw LedgerError(.decryptionFailed, "record \(recordID) does not decrypt with key \(keyID.hexString): wrong key or altered envelope", cause: error)
        }
    }

    /// Version 2: trial decryption of the wrapped keys, the key commitment, then the payload.
    private func openV2(with key: Curve25519.KeyAgreement.PrivateKey, keyID: Data) throws -> Data {
        let header = try headerBytes()
        var unwrapped: Data?
        for wrapped in recipients {
            guard var recipient = try? HPKE.Recipient(
                privateKey: key, ciphersuite: Self.ciphersuite, info: Self.hpkeInfoV2, encapsulatedKey: wrapped.encapsulatedKey
            ), let dataKey = try? recipient.open(wrapped.sealedKey, authenticating: header) else { continue }
            unwrapped = dataKey
            break
        }
        guard let dataKey = unwrapped else {
            throw LedgerError(.notARecipient, "record \(recordID) is not encrypted to key \(keyID.hexString) (no wrapped key opens with it, or the envelope was altered)")
        }
        guard let keyCommitment, dataKey.count == 32, Self.constantTimeEqual(Self.keyCommitment(dataKey: dataKey), keyCommitment) else {
            throw LedgerError(.keyCommitmentMismatch, "record \(recordID): the data key wrapped for key \(keyID.hexString) is not the one the envelope commits to; its recipients were given different keys")
        }
        do {
            return try decryptPayload(with: SymmetricKey(data: dataKey), header: header)
        } catch {
            throw LedgerError(.decryptionFailed, "record \(recordID) does not decrypt with key \(keyID.hexString): altered envelope", cause: error)
        }
    }

    /// Opens the AES-GCM payload; its associated data is header ‖ recipients.
    private func decryptPayload(with dataKey: SymmetricKey, header: Data) throws -> Data {
        guard ciphertext.count >= 16 else { throw LedgerError(.malformed, "ciphertext shorter than its tag") }
        let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: ciphertext.dropLast(16), tag: ciphertext.suffix(16))
        return try AES.GCM.open(box, using: dataKey, authenticating: header + (try recipientBytes()))
    }

    static func constantTimeEqual(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

extension Data {
    /// Lowercase hexadecimal.
    var hexString: String { map { String(format: "%02x", $0) }.joined() }
}
