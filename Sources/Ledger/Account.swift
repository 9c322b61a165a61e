import Crypto
import Foundation

/// An account's key bundle: an Ed25519 key that identifies it (its ``address``) and signs for
/// it, and an X25519 key to which its ledger records are encrypted.
///
/// The private bundle serialises to JSON (``bundleData()``); whoever writes it to disk must make
/// the file readable only by its owner.
// swift-crypto 3.x does not mark its immutable key types Sendable (4.x does); the stored keys
// are never mutated, so sharing them across tasks is safe.
public struct Account: @unchecked Sendable {
    /// The Ed25519 signing key.
    public let signingKey: Curve25519.Signing.PrivateKey
    /// The X25519 key that records are encrypted to.
    public let encryptionKey: Curve25519.KeyAgreement.PrivateKey

    /// Creates a new account with fresh random keys.
    public init() {
        self.init(signingKey: .init(), encryptionKey: .init())
    }

    /// Creates an account from existing keys.
    public init(signingKey: Curve25519.Signing.PrivateKey, encryptionKey: Curve25519.KeyAgreement.PrivateKey) {
        self.signingKey = signingKey
        self.encryptionKey = encryptionKey
    }

    /// The account's address (Base58Check of the Ed25519 public key).
    public var address: AccountAddress { AccountAddress(publicKey: signingKey.publicKey) }

    /// The key records for this account are sealed to.
    public var recipientKey: RecipientKey { RecipientKey(encryptionKey.publicKey) }

    /// Decrypts a record sealed to this account.
    /// - Throws: As ``RecordEnvelope/open(with:)``.
    public func open(_ envelope: RecordEnvelope) throws -> LedgerRecord {
        try envelope.open(with: encryptionKey)
    }

    /// The key bundle file's JSON shape.
    struct Bundle: Codable {
        var format: String
        var address: String
        var signingKey: Data
        var encryptionKey: Data
    }

    static let bundleFormat = "verity-account-v1"

    /// The private key bundle as JSON: `{"address", "encryptionKey", "format":
    /// "verity-account-v1", "signingKey"}` with the 32-byte private keys in base64.
    public func bundleData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(Bundle(
            format: Self.bundleFormat, address: address.description,
            signingKey: signingKey.rawRepresentation, encryptionKey: encryptionKey.rawRepresentation
        ))
    }

    /// Reads a key bundle written by ``bundleData()``.
    /// - Throws: ``LedgerError/Code/malformed`` for a bundle that does not parse, has another
    ///   format, or whose address does not match its signing key.
    public init(bundleData data: Data) throws {
        let bundle: Bundle
        do {
            bundle = try JSONDecoder().decode(Bundle.self, from: data)
            guard bundle.format == Self.bundleFormat else {
                throw LedgerError(.malformed, "account bundle format is \"\(bundle.format)\", not \(Self.bundleFormat)")
            }
            self.init(
                signingKey: try .init(rawRepresentation: bundle.signingKey),
                encryptionKey: try .init(rawRepresentation: bundle.encryptionKey)
            )
        } catch let error as LedgerError {
            throw error
        } catch {
            throw LedgerError(.malformed, "not an account key bundle", cause: error)
        }
        guard address.description == bundle.address else {
            throw LedgerError(.malformed, "account bundle address \(bundle.address) does not match its signing key (\(address))")
        }
    }
}
