import Crypto
import Foundation

/// An account's public address: its Ed25519 public key in Base58Check.
///
/// Format: `Base58(0x56 ‖ public key (32 bytes) ‖ SHA-256(SHA-256(0x56 ‖ public key))[0..<4])`,
/// Bitcoin's Base58Check with version byte `0x56` ("V"). It is Solana's Base58 form of an
/// Ed25519 key plus a version byte and Bitcoin's 4-byte checksum, so a mistyped address is
/// rejected instead of naming another account. Addresses are always 51 characters and start with `3`.
// swift-crypto 3.x does not mark its immutable key types Sendable (4.x does); the stored keys
// are never mutated, so sharing them across tasks is safe.
public struct AccountAddress: @unchecked Sendable, Hashable, Codable, CustomStringConvertible {
    /// The version byte of an Ed25519 account address.
    public static let version: UInt8 = 0x56

    /// The public key as a swift-crypto key, to verify the account's signatures.
    public let signingPublicKey: Curve25519.Signing.PublicKey

    /// The Ed25519 public key, 32 bytes.
    public var publicKey: Data { signingPublicKey.rawRepresentation }

    /// The address of an Ed25519 public key.
    public init(publicKey: Curve25519.Signing.PublicKey) {
        self.signingPublicKey = publicKey
    }

    /// Parses an address, checking its characters, length, version and checksum.
    /// - Throws: ``LedgerError/Code/invalidAddress`` (or ``LedgerError/Code/malformed`` for a
    ///   character outside the Base58 alphabet).
    public init(_ string: String) throws {
        let payload = try Base58.decodeCheck(string)
        guard payload.count == 33, payload.first == Self.version else {
            throw LedgerError(.invalidAddress, "\"\(string)\" is not a version-0x56 Ed25519 account address")
        }
        do {
            self.signingPublicKey = try Curve25519.Signing.PublicKey(rawRepresentation: payload.dropFirst())
        } catch {
            throw LedgerError(.invalidAddress, "\"\(string)\" does not hold an Ed25519 public key", cause: error)
        }
    }

    /// The address text.
    public var description: String { Base58.encodeCheck([Self.version] + publicKey) }

    public static func == (a: AccountAddress, b: AccountAddress) -> Bool { a.publicKey == b.publicKey }

    public func hash(into hasher: inout Hasher) { hasher.combine(publicKey) }

    public init(from decoder: any Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
