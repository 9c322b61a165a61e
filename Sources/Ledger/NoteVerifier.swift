import Crypto
import Foundation

/// An Ed25519 verifier of C2SP signed notes: a key name, a key id and a public key.
///
/// Its text form, the verifier key `<name>+<8 hex key id>+<base64(0x01 ‖ public key)>`, is what
/// a node publishes and what clients configure to verify receipts offline.
// swift-crypto 3.x does not mark its immutable key types Sendable (4.x does); the stored keys
// are never mutated, so sharing them across tasks is safe.
public struct NoteVerifier: @unchecked Sendable, Hashable, CustomStringConvertible {
    /// The key name.
    public let name: String
    /// The Ed25519 public key.
    public let publicKey: Curve25519.Signing.PublicKey

    /// Creates a verifier.
    /// - Throws: ``LedgerError/Code/invalidValue`` for an invalid key name.
    public init(name: String, publicKey: Curve25519.Signing.PublicKey) throws {
        try Self.checkName(name)
        self.init(checkedName: name, publicKey: publicKey)
    }

    init(checkedName: String, publicKey: Curve25519.Signing.PublicKey) {
        self.name = checkedName
        self.publicKey = publicKey
    }

    /// Parses a verifier key (`name+hash+base64(0x01 ‖ public key)`).
    /// - Throws: ``LedgerError/Code/malformed`` for a bad format, algorithm or key id.
    public init(verifierKey: String) throws {
        let parts = verifierKey.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].count == 8, let keyID = UInt32(parts[1], radix: 16),
              parts[1] == parts[1].lowercased(),
              let raw = Data(base64Encoded: String(parts[2])), raw.base64EncodedString() == parts[2],
              raw.count == 33, raw.first == 0x01
        else { throw LedgerError(.malformed, "\"\(verifierKey)\" is not an Ed25519 note verifier key") }
        let key: Curve25519.Signing.PublicKey
        do { key = try .init(rawRepresentation: raw.dropFirst()) } catch {
            throw LedgerError(.malformed, "\"\(verifierKey)\" is not an Ed25519 note verifier key", cause: error)
        }
        try self.init(name: String(parts[0]), publicKey: key)
        guard self.keyID == keyID else {
            throw LedgerError(.malformed, "\"\(verifierKey)\": key id does not match the key")
        }
    }

    /// The key id: `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[0..<4]`, big-endian.
    public var keyID: UInt32 {
        var hasher = SHA256()
        hasher.update(data: Data(name.utf8) + [0x0A, 0x01] + publicKey.rawRepresentation)
        return hasher.finalize().prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    var keyIDHex: String {
        let hex = String(keyID, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// The verifier key text.
    public var verifierKey: String {
        "\(name)+\(keyIDHex)+\((Data([0x01]) + publicKey.rawRepresentation).base64EncodedString())"
    }

    public var description: String { verifierKey }

    /// Verifies a signed note with this key.
    ///
    /// As the spec requires, signatures by other keys are ignored; a signature by this key
    /// (same name and id) that does not verify rejects the note.
    /// - Returns: The note text, now trusted.
    /// - Throws: ``LedgerError/Code/signatureInvalid`` if no signature by this key verifies.
    public func verify(_ note: SignedNote) throws -> String {
        let mine = note.signatures.filter { $0.name == name && $0.keyID == keyID }
        guard !mine.isEmpty else {
            throw LedgerError(.signatureInvalid, "the note has no signature by \(name)+\(keyIDHex)")
        }
        for signature in mine where !publicKey.isValidSignature(signature.signature, for: Data(note.text.utf8)) {
            throw LedgerError(.signatureInvalid, "the signature by \(name) does not verify")
        }
        return note.text
    }

    static func checkName(_ name: String) throws {
        guard !name.isEmpty, !name.contains("+"),
              !name.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 })
        else { throw LedgerError(.invalidValue, "\"\(name)\" is not a valid note key name") }
    }

    public static func == (a: NoteVerifier, b: NoteVerifier) -> Bool {
        a.name == b.name && a.publicKey.rawRepresentation == b.publicKey.rawRepresentation
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(publicKey.rawRepresentation)
    }
}
