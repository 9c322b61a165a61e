import Crypto
import Foundation

extension RecordEnvelope {
    /// The HPKE suite wrapping data keys: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM
    /// (RFC 9180 ids 0x0020, 0x0001, 0x0002).
    public static var ciphersuite: HPKE.Ciphersuite { HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: .HKDF_SHA256, aead: .AES_GCM_256) }

    /// The HPKE `info` string for wrapping a record's data key.
    static let hpkeInfo = Data("verity ledger v1 data key".utf8)

    /// Encrypts a record for its recipients.
    ///
    /// A fresh 256-bit data key encrypts the record's canonical bytes with AES-256-GCM (random
    /// 96-bit nonce). The data key is wrapped with HPKE for each recipient, with the envelope
    /// header (magic, record id, time, node id) as associated data; the payload's associated
    /// data is the header followed by the recipients section, so no public field can be changed
    /// or recipient removed without decryption failing.
    /// - Parameters:
    ///   - record: The record to seal.
    ///   - recipients: Who may read it, normally the sender's account key then an auditor's key.
    ///   - nodeID: The recording node's id, public.
    /// - Throws: ``LedgerError/Code/invalidValue`` for no recipients, a duplicate recipient, or a
    ///   record that cannot be encoded; ``LedgerError/Code/crypto`` if sealing fails.
    public static func seal(_ record: LedgerRecord, to recipients: [RecipientKey], nodeID: String) throws -> RecordEnvelope {
        guard Set(recipients).count == recipients.count else {
            throw LedgerError(.invalidValue, "a recipient is listed twice")
        }
        let plaintext = try record.canonicalBytes()
        var envelope = RecordEnvelope(
            recordID: record.recordID, timestampMilliseconds: record.timestampMilliseconds, nodeID: nodeID,
            recipients: [], nonce: Data(), ciphertext: Data()
        )
        let header = try envelope.headerBytes()
        let dataKey = SymmetricKey(size: .bits256)
        let dataKeyBytes = dataKey.withUnsafeBytes { Data($0) }
        do {
            for recipient in recipients {
                var sender = try HPKE.Sender(recipientKey: recipient.publicKey, ciphersuite: ciphersuite, info: hpkeInfo)
                let sealedKey = try sender.seal(dataKeyBytes, authenticating: header)
                envelope.recipients.append(WrappedKey(keyID: recipient.keyID, encapsulatedKey: sender.encapsulatedKey, sealedKey: sealedKey))
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

    /// Decrypts the envelope with one recipient's private key.
    /// - Parameter key: An X25519 private key whose public key is one of the recipients.
    /// - Returns: The record, checked to carry the same id and time as the public envelope.
    /// - Throws: ``LedgerError/Code/notARecipient`` if the key is not a recipient;
    ///   ``LedgerError/Code/decryptionFailed`` if the wrapped key or payload does not
    ///   authenticate (wrong key or altered bytes); ``LedgerError/Code/tampered`` if the record
    ///   inside names another id or time.
    public func open(with key: Curve25519.KeyAgreement.PrivateKey) throws -> LedgerRecord {
        let keyID = RecipientKey.keyID(for: key.publicKey)
        guard let wrapped = recipients.first(where: { $0.keyID == keyID }) else {
            throw LedgerError(.notARecipient, "record \(recordID) is not encrypted to key \(keyID.hexString)")
        }
        let header = try headerBytes()
        let plaintext: Data
        do {
            var recipient = try HPKE.Recipient(
                privateKey: key, ciphersuite: Self.ciphersuite, info: Self.hpkeInfo, encapsulatedKey: wrapped.encapsulatedKey
            )
            let dataKey = SymmetricKey(data: try recipient.open(wrapped.sealedKey, authenticating: header))
            guard ciphertext.count >= 16 else { throw LedgerError(.malformed, "ciphertext shorter than its tag") }
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: nonce), ciphertext: ciphertext.dropLast(16), tag: ciphertext.suffix(16)
            )
            plaintext = try AES.GCM.open(box, using: dataKey, authenticating: header + (try recipientBytes()))
        } catch {
            throw LedgerError(.decryptionFailed, "record \(recordID) does not decrypt with key \(keyID.hexString): wrong key or altered envelope", cause: error)
        }
        let record = try LedgerRecord(canonicalBytes: plaintext)
        guard record.recordID == recordID, record.timestampMilliseconds == timestampMilliseconds else {
            throw LedgerError(.tampered, "record \(recordID): the sealed record names id \(record.recordID) at \(record.timestampMilliseconds)")
        }
        return record
    }
}

extension Data {
    /// Lowercase hexadecimal.
    var hexString: String { map { String(format: "%02x", $0) }.joined() }
}
