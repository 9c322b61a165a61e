import Crypto
import Foundation

/// Timestamped Ed25519 witness cosignatures (C2SP `tlog-cosignature` v1, signature type 0x04).
///
/// A cosigner signs, with its own key, the message
/// ```
/// cosignature/v1
/// time <POSIX seconds, decimal>
/// <the checkpoint's note text>
/// ```
/// and appends to the checkpoint the note signature line
/// `— <name> base64(key id ‖ 8-byte big-endian time ‖ 64-byte signature)`, where the key id is
/// `SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[0..<4]`. A cosignature says: at that time the
/// cosigner had verified the checkpoint and that it is consistent with every earlier checkpoint
/// of the log it saw.
public enum Cosignature {
    /// The signature type byte of timestamped Ed25519 cosignatures.
    public static let algorithm: UInt8 = 0x04

    /// The signed message: the header line, the time line, then the checkpoint text.
    public static func message(checkpoint text: String, time: UInt64) -> Data {
        Data("cosignature/v1\ntime \(time)\n\(text)".utf8)
    }

    /// The 4-byte key id of a cosigner key.
    static func keyID(name: String, publicKey: Curve25519.Signing.PublicKey) -> UInt32 {
        var hasher = SHA256()
        hasher.update(data: Data(name.utf8) + [0x0A, algorithm] + publicKey.rawRepresentation)
        return hasher.finalize().prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func hex(_ id: UInt32) -> String {
        let hex = String(id, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}

/// A witness's signing key for cosignatures. Its text form (kept secret, in an owner-only file) is
/// `PRIVATE+KEY+<name>+<key id>+base64(0x04 ‖ 32-byte seed)`, as signed-note keys are written.
// swift-crypto 3.x does not mark its immutable key types Sendable (4.x does); the stored keys
// are never mutated, so sharing them across tasks is safe.
public struct CosignatureSigner: @unchecked Sendable {
    /// The witness's name (a schema-less URL, by convention).
    public let name: String
    let privateKey: Curve25519.Signing.PrivateKey

    /// A fresh key.
    /// - Throws: ``LedgerError/Code/invalidValue`` for an invalid key name.
    public init(name: String, privateKey: Curve25519.Signing.PrivateKey = .init()) throws {
        try NoteVerifier.checkName(name)
        self.name = name
        self.privateKey = privateKey
    }

    /// Parses a signer key (`PRIVATE+KEY+name+keyid+base64(0x04 ‖ seed)`).
    /// - Throws: ``LedgerError/Code/malformed`` for any other text.
    public init(signerKey: String) throws {
        let parsed = try NoteSigner.parse(signerKey, algorithm: Cosignature.algorithm, what: "a cosignature (0x04) signer key")
        try self.init(name: parsed.name, privateKey: parsed.key)
        guard verifier.keyID == parsed.keyID else { throw LedgerError(.malformed, "cosignature signer key: the key id does not match the key") }
    }

    /// The signer key text; keep it secret.
    public var signerKey: String {
        "PRIVATE+KEY+\(name)+\(Cosignature.hex(verifier.keyID))+\((Data([Cosignature.algorithm]) + privateKey.rawRepresentation).base64EncodedString())"
    }

    /// The matching verifier.
    public var verifier: CosignatureVerifier { CosignatureVerifier(checkedName: name, publicKey: privateKey.publicKey) }

    /// Cosigns a checkpoint at `time`: the note signature line to append to it.
    /// - Throws: ``LedgerError/Code/crypto`` if signing fails.
    public func cosign(checkpoint text: String, time: UInt64) throws -> SignedNote.Signature {
        let signature: Data
        do { signature = try privateKey.signature(for: Cosignature.message(checkpoint: text, time: time)) } catch {
            throw LedgerError(.crypto, "Ed25519 signing failed", cause: error)
        }
        var blob = Data()
        withUnsafeBytes(of: time.bigEndian) { blob.append(contentsOf: $0) }
        blob.append(signature)
        return SignedNote.Signature(name: name, keyID: verifier.keyID, signature: blob)
    }
}

/// A witness's public key, as a log and its verifiers configure it: the verifier key text
/// `<name>+<8 hex key id>+base64(0x04 ‖ 32-byte public key)`.
public struct CosignatureVerifier: @unchecked Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let publicKey: Curve25519.Signing.PublicKey

    init(checkedName: String, publicKey: Curve25519.Signing.PublicKey) {
        self.name = checkedName
        self.publicKey = publicKey
    }

    /// Parses a verifier key.
    /// - Throws: ``LedgerError/Code/malformed`` for anything but a canonical 0x04 verifier key.
    public init(verifierKey: String) throws {
        let parts = verifierKey.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].count == 8, parts[1] == parts[1].lowercased(), let id = UInt32(parts[1], radix: 16),
              let raw = Data(base64Encoded: String(parts[2])), raw.base64EncodedString() == parts[2], raw.count == 33,
              raw.first == Cosignature.algorithm, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw.dropFirst())
        else { throw LedgerError(.malformed, "\"\(verifierKey.prefix(200))\" is not a cosignature (0x04) verifier key") }
        do { try NoteVerifier.checkName(String(parts[0])) } catch {
            throw LedgerError(.malformed, "\"\(verifierKey.prefix(200))\" has an invalid key name", cause: error)
        }
        self.init(checkedName: String(parts[0]), publicKey: key)
        guard keyID == id else { throw LedgerError(.malformed, "\"\(verifierKey.prefix(200))\": the key id does not match the key") }
    }

    /// `SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[0..<4]`, big-endian.
    public var keyID: UInt32 { Cosignature.keyID(name: name, publicKey: publicKey) }

    /// The verifier key text.
    public var verifierKey: String {
        "\(name)+\(Cosignature.hex(keyID))+\((Data([Cosignature.algorithm]) + publicKey.rawRepresentation).base64EncodedString())"
    }

    public var description: String { verifierKey }

    /// The time of this key's valid cosignature on `note`, or nil if it has none.
    /// - Throws: ``LedgerError/Code/signatureInvalid`` if the note carries a signature line with
    ///   this key's name and id that does not verify (signed-note: such a note is malformed).
    public func cosignatureTime(on note: SignedNote) throws -> UInt64? {
        var time: UInt64?
        for line in note.signatures where line.name == name && line.keyID == keyID {
            guard line.signature.count == 72 else {
                throw LedgerError(.signatureInvalid, "the cosignature by \(name) is \(line.signature.count) bytes, not 72")
            }
            let t = line.signature.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard t <= UInt64(Int64.max),
                  publicKey.isValidSignature(line.signature.dropFirst(8), for: Cosignature.message(checkpoint: note.text, time: t))
            else { throw LedgerError(.signatureInvalid, "the cosignature by \(name) does not verify") }
            time = t
        }
        return time
    }

    public static func == (a: CosignatureVerifier, b: CosignatureVerifier) -> Bool {
        a.name == b.name && a.publicKey.rawRepresentation == b.publicKey.rawRepresentation
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(publicKey.rawRepresentation)
    }
}

/// Which witnesses a verifier trusts, and how many of them must have cosigned a checkpoint.
public struct WitnessPolicy: Sendable, Hashable {
    public var witnesses: [CosignatureVerifier]
    public var threshold: Int

    /// A `threshold`-of-`witnesses.count` policy.
    /// - Throws: ``LedgerError/Code/invalidValue`` unless 1 ≤ threshold ≤ the number of distinct witnesses.
    public init(witnesses: [CosignatureVerifier], threshold: Int) throws {
        let distinct = Set(witnesses)
        guard distinct.count == witnesses.count else { throw LedgerError(.invalidValue, "a witness is named twice in the policy") }
        guard threshold >= 1, threshold <= witnesses.count else {
            throw LedgerError(.invalidValue, "a witness policy needs 1 to \(witnesses.count) cosignatures, not \(threshold)")
        }
        self.witnesses = witnesses
        self.threshold = threshold
    }

    /// The witnesses of the policy with a valid cosignature on `note` (a bad one counts as none).
    public func cosigners(of note: SignedNote) -> [CosignatureVerifier] {
        witnesses.filter { (try? $0.cosignatureTime(on: note)) != nil }
    }

    /// Checks that at least ``threshold`` of the policy's witnesses cosigned `note`.
    /// - Throws: ``LedgerError/Code/signatureInvalid`` naming how many did.
    public func check(_ note: SignedNote) throws {
        let count = cosigners(of: note).count
        guard count >= threshold else {
            throw LedgerError(.signatureInvalid, "the checkpoint has \(count) valid cosignatures of the \(witnesses.count) trusted witnesses; the policy needs \(threshold)")
        }
    }
}
