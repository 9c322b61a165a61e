import Crypto
import Foundation
import Ledger

/// A worker's Ed25519 private key: it signs the worker's adverts, heartbeats and usage
/// statements, and its public half is the worker's ``WorkerID``.
///
/// The key lives in the worker's data directory as `worker.key` (``DataDirectory/workerKey(create:)``),
/// readable only by its owner, as one JSON object:
/// `{"format": "verity-worker-key-v1", "private_key": "<base64 of the 32-byte seed>", "worker": "<WorkerID>"}`.
/// The `worker` field is checked against the key when the file is read, so a file edited by hand
/// cannot name a worker it cannot sign for.
// swift-crypto 3.x does not mark its immutable key types Sendable (4.x does); the stored key is
// never mutated, so sharing it across tasks is safe.
public struct WorkerKey: @unchecked Sendable {
    /// The Ed25519 private key.
    public let privateKey: Curve25519.Signing.PrivateKey
    /// The worker's id (its public key).
    public let id: WorkerID

    /// A fresh random key.
    public init() { self.init(privateKey: .init()) }

    /// A worker key from an existing Ed25519 private key.
    public init(privateKey: Curve25519.Signing.PrivateKey) {
        self.privateKey = privateKey
        self.id = WorkerID(publicKey: privateKey.publicKey)
    }

    /// The Ed25519 signature of `data` (64 bytes).
    /// - Throws: ``FleetError/Code/storage`` if the crypto library fails (it does not for valid keys).
    public func signature(for data: Data) throws(FleetError) -> Data {
        do { return try privateKey.signature(for: data) } catch {
            throw FleetError(.storage, "cannot sign with worker key \(id)", cause: error)
        }
    }

    static let fileFormat = "verity-worker-key-v1"

    private struct File: Codable {
        var format: String
        var privateKey: Data
        var worker: String

        enum CodingKeys: String, CodingKey {
            case format, worker
            case privateKey = "private_key"
        }
    }

    /// The key file's bytes (see the type's description).
    public func fileData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // Encoding three strings cannot fail.
        let data = try? encoder.encode(File(format: Self.fileFormat, privateKey: privateKey.rawRepresentation, worker: id.description))
        return (data ?? Data()) + Data("\n".utf8)
    }

    /// Reads a key file written by ``fileData()``.
    /// - Throws: ``FleetError/Code/malformed`` for a file that does not parse, has another format,
    ///   or names a worker other than its key's.
    public init(fileData: Data) throws(FleetError) {
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: fileData) } catch {
            throw FleetError(.malformed, "not a worker key file", cause: error)
        }
        guard file.format == Self.fileFormat else {
            throw FleetError(.malformed, "worker key format is \"\(file.format)\", not \(Self.fileFormat)")
        }
        do { self.init(privateKey: try .init(rawRepresentation: file.privateKey)) } catch {
            throw FleetError(.malformed, "the worker key file holds no Ed25519 key", cause: error)
        }
        guard id.description == file.worker else {
            throw FleetError(.malformed, "the worker key file names \(file.worker) but holds the key of \(id)")
        }
    }
}

extension DataDirectory {
    /// Where a worker keeps its key.
    public var workerKeyPath: String { path + "/worker.key" }

    /// The worker's key. A missing key is created (owner-only) when `create` is true, which a
    /// worker does on its first start; the operator then admits its id on each gateway.
    /// - Throws: ``FleetError/Code/notFound`` if it is missing and `create` is false;
    ///   ``FleetError/Code/malformed`` if the file is not a worker key; ``FleetError/Code/storage``
    ///   if the directory or the file cannot be written.
    public func workerKey(create: Bool) throws(FleetError) -> WorkerKey {
        if let data = FileManager.default.contents(atPath: workerKeyPath) {
            do { return try WorkerKey(fileData: data) } catch {
                throw FleetError(.malformed, "\(workerKeyPath) is not a worker key: \(error.message)", cause: error)
            }
        }
        guard create else { throw FleetError(.notFound, "no worker key at \(workerKeyPath)") }
        let key = WorkerKey()
        do {
            try self.create()
            try Self.writeSecret(key.fileData(), to: workerKeyPath)
        } catch {
            // Another process may have created it first: use that one.
            if let data = FileManager.default.contents(atPath: workerKeyPath), let existing = try? WorkerKey(fileData: data) {
                return existing
            }
            throw FleetError(.storage, "cannot create the worker key at \(workerKeyPath)", cause: error)
        }
        return key
    }
}
