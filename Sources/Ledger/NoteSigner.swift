import Crypto
import Foundation

/// An Ed25519 signer of C2SP signed notes (`c2sp.org/signed-note`), such as the node key that
/// signs checkpoints.
///
/// The key id is `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[0..<4]`, read big-endian. Keys are
/// written in the formats of Go's `golang.org/x/mod/sumdb/note`, which witnesses and other
/// tlog tools read:
/// - verifier key: `<name>+<key id, 8 hex digits>+<base64(0x01 ‖ 32-byte public key)>`
/// - signer key: `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ 32-byte private seed)>`
// swift-crypto 3.x does not mark its immutable key types Sendable (4.x does); the stored keys
// are never mutated, so sharing them across tasks is safe.
public struct NoteSigner: @unchecked Sendable {
    /// The key name, also the log's origin line (for example `verity.example/ledger`).
    public let name: String
    /// The Ed25519 private key.
    public let privateKey: Curve25519.Signing.PrivateKey

    /// Creates a signer.
    /// - Parameters:
    ///   - name: The key name: non-empty, no Unicode spaces, no `+`.
    ///   - privateKey: The Ed25519 key; a fresh one by default.
    /// - Throws: ``LedgerError/Code/invalidValue`` for an invalid name.
    public init(name: String, privateKey: Curve25519.Signing.PrivateKey = .init()) throws {
        try NoteVerifier.checkName(name)
        self.name = name
        self.privateKey = privateKey
    }

    /// Parses a signer key (`PRIVATE+KEY+name+hash+base64`).
    /// - Throws: ``LedgerError/Code/malformed`` for a bad format, algorithm or key id.
    public init(signerKey: String) throws {
        let parsed = try Self.parse(signerKey, algorithm: 0x01, what: "an Ed25519 note signer key")
        try self.init(name: parsed.name, privateKey: parsed.key)
        guard self.keyID == parsed.keyID else { throw LedgerError(.malformed, "signer key id does not match its key") }
    }

    /// The parts of a signer key text `PRIVATE+KEY+<name>+<8 hex key id>+base64(algorithm ‖ 32-byte seed)`.
    static func parse(_ text: String, algorithm: UInt8, what: String) throws -> (name: String, keyID: UInt32, key: Curve25519.Signing.PrivateKey) {
        let parts = text.split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY",
              let keyID = UInt32(parts[3], radix: 16), parts[3].count == 8,
              let raw = Data(base64Encoded: String(parts[4])), raw.count == 33, raw.first == algorithm
        else { throw LedgerError(.malformed, "not \(what)") }
        do { return (String(parts[2]), keyID, try .init(rawRepresentation: raw.dropFirst())) } catch {
            throw LedgerError(.malformed, "not \(what)", cause: error)
        }
    }

    /// The matching verifier.
    public var verifier: NoteVerifier {
        // The name was checked when this signer was made.
        NoteVerifier(checkedName: name, publicKey: privateKey.publicKey)
    }

    /// The 32-bit key id.
    public var keyID: UInt32 { verifier.keyID }

    /// The signer key text (`PRIVATE+KEY+name+hash+base64(0x01 ‖ seed)`); keep it secret.
    public var signerKey: String {
        "PRIVATE+KEY+\(name)+\(verifier.keyIDHex)+\((Data([0x01]) + privateKey.rawRepresentation).base64EncodedString())"
    }

    /// Signs a note text and returns the complete signed note.
    /// - Parameter text: The note text; it must end in a newline (see ``SignedNote``).
    /// - Throws: ``LedgerError/Code/invalidValue`` for an invalid text; ``LedgerError/Code/crypto``
    ///   if signing fails.
    public func sign(_ text: String) throws -> SignedNote {
        try SignedNote.checkText(text)
        let signature: Data
        do { signature = try privateKey.signature(for: Data(text.utf8)) } catch {
            throw LedgerError(.crypto, "Ed25519 signing failed", cause: error)
        }
        return SignedNote(text: text, signatures: [.init(name: name, keyID: keyID, signature: Data(signature))])
    }
}
