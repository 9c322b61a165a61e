import Crypto
import Foundation
import Ledger

/// A worker's identity: its Ed25519 public key in Base58Check.
///
/// Format: `Base58(0x6A ‖ public key (32 bytes) ‖ SHA-256(SHA-256(0x6A ‖ public key))[0..<4])`,
/// the same construction as an account's ``AccountAddress`` with its own version byte, `0x6A`,
/// so that a worker id is never taken for an account address (version `0x56`) or the reverse.
/// Worker ids are always 51 characters and start with `4` (account addresses start with `3`).
///
/// Worker ids order by their text, which is how the fleet breaks ties deterministically.
// swift-crypto 3.x does not mark its immutable key types Sendable (4.x does); the stored key is
// never mutated, so sharing it across tasks is safe.
public struct WorkerID: @unchecked Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The version byte of a worker id.
    public static let version: UInt8 = 0x6A

    /// The public key, to verify the worker's signatures.
    public let signingPublicKey: Curve25519.Signing.PublicKey
    /// The id's text, computed once (ids are compared and hashed on every routing decision).
    public let description: String

    /// The Ed25519 public key, 32 bytes.
    public var publicKey: Data { signingPublicKey.rawRepresentation }

    /// The id of an Ed25519 public key.
    public init(publicKey: Curve25519.Signing.PublicKey) {
        self.signingPublicKey = publicKey
        self.description = Base58.encodeCheck([Self.version] + publicKey.rawRepresentation)
    }

    /// Parses a worker id, checking its characters, length, version and checksum.
    /// - Parameter string: The id's text (surrounding whitespace is not allowed).
    /// - Throws: ``FleetError/Code/malformed`` for anything but a valid version-0x6A id; an account
    ///   address is refused with a message that says so.
    public init(_ string: String) throws(FleetError) {
        let payload: Data
        do { payload = try Base58.decodeCheck(string) } catch {
            throw FleetError(.malformed, "\"\(string)\" is not a worker id", cause: error)
        }
        guard payload.count == 33, payload.first == Self.version else {
            let hint = payload.first == AccountAddress.version ? " (it is an account address)" : ""
            throw FleetError(.malformed, "\"\(string)\" is not a version-0x6A worker id\(hint)")
        }
        do {
            self.init(publicKey: try Curve25519.Signing.PublicKey(rawRepresentation: payload.dropFirst()))
        } catch {
            throw FleetError(.malformed, "\"\(string)\" does not hold an Ed25519 public key", cause: error)
        }
    }

    /// Whether `signature` is this worker's Ed25519 signature of `data`.
    public func isValidSignature(_ signature: Data, for data: Data) -> Bool {
        signingPublicKey.isValidSignature(signature, for: data)
    }

    public static func == (a: WorkerID, b: WorkerID) -> Bool { a.description == b.description }

    public static func < (a: WorkerID, b: WorkerID) -> Bool { a.description < b.description }

    public func hash(into hasher: inout Hasher) { hasher.combine(description) }

    public init(from decoder: any Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
