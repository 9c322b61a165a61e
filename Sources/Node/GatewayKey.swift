import Crypto
import Foundation

/// A gateway's Ed25519 key: it signs every job the gateway sends a worker (``JobSignature``), and
/// workers answer only jobs signed by the gateway keys they admit. It lives in `gateway.key` in
/// the data directory, owner-only:
///
///     {"format": "verity-gateway-key-v1", "private_key": "<base64, 32 bytes>", "public_key": "<base64, 32 bytes>"}
// swift-crypto 3.x does not mark its immutable key types Sendable (4.x does).
public struct GatewayKey: @unchecked Sendable {
    public let privateKey: Curve25519.Signing.PrivateKey

    /// The public key workers admit, 32 bytes.
    public var publicKey: Data { privateKey.publicKey.rawRepresentation }

    public init() { privateKey = .init() }

    static let fileFormat = "verity-gateway-key-v1"

    private struct File: Codable {
        var format: String
        var privateKey: Data
        var publicKey: Data

        enum CodingKeys: String, CodingKey {
            case format
            case privateKey = "private_key"
            case publicKey = "public_key"
        }
    }

    /// The key file's bytes.
    public func fileData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try? encoder.encode(File(format: Self.fileFormat, privateKey: privateKey.rawRepresentation, publicKey: publicKey))
        return (data ?? Data()) + Data("\n".utf8)
    }

    /// Reads a key file written by ``fileData()``.
    /// - Throws: ``FleetError/Code/malformed`` for anything else, or a public key that is not the
    ///   private key's.
    public init(fileData: Data) throws(FleetError) {
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: fileData) } catch {
            throw FleetError(.malformed, "not a gateway key file", cause: error)
        }
        guard file.format == Self.fileFormat else {
            throw FleetError(.malformed, "gateway key format is \"\(file.format)\", not \(Self.fileFormat)")
        }
        do { privateKey = try .init(rawRepresentation: file.privateKey) } catch {
            throw FleetError(.malformed, "the gateway key file holds no Ed25519 key", cause: error)
        }
        guard publicKey == file.publicKey else { throw FleetError(.malformed, "the gateway key file's public key is not its private key's") }
    }
}

extension DataDirectory {
    /// Where a gateway keeps its key.
    public var gatewayKeyPath: String { path + "/gateway.key" }

    /// The gateway's key, created (owner-only) on its first start.
    /// - Throws: ``FleetError/Code/malformed`` if the file is not a gateway key;
    ///   ``FleetError/Code/storage`` if it cannot be written.
    public func gatewayKey() throws(FleetError) -> GatewayKey {
        if let data = FileManager.default.contents(atPath: gatewayKeyPath) {
            do { return try GatewayKey(fileData: data) } catch {
                throw FleetError(.malformed, "\(gatewayKeyPath) is not a gateway key: \(error.message)", cause: error)
            }
        }
        let key = GatewayKey()
        do {
            try create()
            try Self.writeSecret(key.fileData(), to: gatewayKeyPath)
        } catch {
            if let data = FileManager.default.contents(atPath: gatewayKeyPath), let existing = try? GatewayKey(fileData: data) {
                return existing
            }
            throw FleetError(.storage, "cannot create the gateway key at \(gatewayKeyPath)", cause: error)
        }
        return key
    }
}
