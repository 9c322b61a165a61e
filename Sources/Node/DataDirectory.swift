import Crypto
import Foundation
import Ledger
import LedgerPostgres
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The directory where `verity serve` keeps its state, and the files in it:
///
/// | file | what | who reads it |
/// |---|---|---|
/// | `ledger.sqlite` (+ `-wal`, `-shm`) | the ledger: encrypted records and signed blocks | server, `verity ledger …` |
/// | `accounts.sqlite` | registered accounts' public keys, API keys as SHA-256 hashes, admitted worker keys and join tokens | server, `verity keys …`, `verity workers …` |
/// | `node.key` (0600) | the node's Ed25519 signing key (C2SP note signer key) | server, `verity ledger verify` |
/// | `worker.key` (0600) | a worker's Ed25519 key, whose public half is its ``WorkerID`` (`WorkerKey.swift`) | `verity worker` |
/// | `operator.json` (0600) | the operator's account bundle: records of requests without an account are sealed to it | `verity ledger decrypt` |
/// | `admin.key` (0600) | the operator's bearer key for the admin API (`/v1/adapters`), unless `--admin-key` gives one | the operator |
/// | `serve.lock` | held by the running server so two servers never append to one ledger | server |
/// | `gateway.id` | with `--ledger-db`: this gateway's name for its write-ahead records in the shared database | server |
///
/// The default is `$VERITY_DATA_DIR`, else `$XDG_DATA_HOME/verity`, else `~/.local/share/verity`.
///
/// With a PostgreSQL database (``database``: `--ledger-db`, or `$VERITY_LEDGER_DB`), the ledger
/// and the account registry live there instead of in `ledger.sqlite` and `accounts.sqlite`, shared
/// by every gateway of the log; the keys and `gateway.id` stay in the directory.
public struct DataDirectory: Sendable {
    public let path: String
    /// The PostgreSQL database (`postgres://…`) that holds the ledger and the accounts, if any.
    public var database: String?

    public init(path: String, database: String? = DataDirectory.defaultDatabase) {
        self.path = path
        self.database = database
    }

    /// `$VERITY_LEDGER_DB`, if set.
    public static var defaultDatabase: String? {
        ProcessInfo.processInfo.environment["VERITY_LEDGER_DB"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `$VERITY_DATA_DIR`, else `$XDG_DATA_HOME/verity`, else `~/.local/share/verity`.
    public static var defaultPath: String {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["VERITY_DATA_DIR"], !dir.isEmpty { return dir }
        if let xdg = env["XDG_DATA_HOME"], !xdg.isEmpty { return xdg + "/verity" }
        return NSHomeDirectory() + "/.local/share/verity"
    }

    public var ledgerPath: String { path + "/ledger.sqlite" }
    public var registryPath: String { path + "/accounts.sqlite" }
    public var nodeKeyPath: String { path + "/node.key" }
    public var operatorPath: String { path + "/operator.json" }
    public var lockPath: String { path + "/serve.lock" }

    /// Creates the directory (owner-only) if it is missing.
    /// - Throws: ``LedgerError/Code/storage`` if it cannot be created.
    public func create() throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw LedgerError(.storage, "cannot create the data directory \(path)", cause: error)
        }
    }

    /// Whether the directory holds a ledger.
    public var hasLedger: Bool { FileManager.default.fileExists(atPath: ledgerPath) }

    /// The account registry, created if missing: in ``database`` if set, else `accounts.sqlite`.
    public func registry() throws -> AccountRegistry {
        if let database { return AccountRegistry(database: try PostgresRegistryDatabase(url: database)) }
        try create()
        return try AccountRegistry(path: registryPath)
    }

    /// The ledger's storage for a reader (`verity ledger …` beside a running server): the
    /// PostgreSQL ledger in ``database`` if set, else `ledger.sqlite` opened read-only.
    public func ledgerStoreForReading() throws -> any LedgerStore {
        if let database { return try PostgresLedgerStore(url: database, gateway: nil) }
        return try SQLiteLedgerStore(readingAt: ledgerPath)
    }

    /// The node's signing key. A missing key is created (owner-only) when `create` is true: a
    /// new node gets a fresh key whose name, the log's origin, is `verity/<host>/<8 hex>`.
    /// - Throws: ``LedgerError/Code/notFound`` if it is missing and `create` is false;
    ///   ``LedgerError/Code/malformed`` if the file is not a signer key.
    public func nodeSigner(create: Bool) throws -> NoteSigner {
        if let text = try? String(contentsOfFile: nodeKeyPath, encoding: .utf8) {
            do { return try NoteSigner(signerKey: text.trimmingCharacters(in: .whitespacesAndNewlines)) } catch {
                throw LedgerError(.malformed, "\(nodeKeyPath) is not a node signing key", cause: error)
            }
        }
        guard create else {
            throw LedgerError(.notFound, "no node key at \(nodeKeyPath): is \(path) a verity data directory?")
        }
        let host = ProcessInfo.processInfo.hostName.unicodeScalars
            .filter { CharacterSet.alphanumerics.contains($0) || $0 == "." || $0 == "-" }
        let suffix = (0..<4).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let signer = try NoteSigner(name: "verity/\(host.isEmpty ? "node" : String(String.UnicodeScalarView(host)))/\(suffix)")
        try Self.writeSecret(Data((signer.signerKey + "\n").utf8), to: nodeKeyPath)
        return signer
    }

    /// The operator's admin key file: the bearer key of the admin API (adapters), created (owner-only) on first start.
    public var adminKeyPath: String { path + "/admin.key" }

    /// The operator's admin key (`vka_` and Base58 of 256 random bits), created if missing.
    public func adminKey() throws -> String {
        if let data = FileManager.default.contents(atPath: adminKeyPath) {
            let key = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard key.count >= 16 else { throw LedgerError(.storage, "\(adminKeyPath) holds no key (at least 16 characters); delete it to make a new one") }
            return key
        }
        var random = SystemRandomNumberGenerator()
        let key = "vka_" + Base58.encode((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &random) })
        try Self.writeSecret(Data((key + "\n").utf8), to: adminKeyPath)
        return key
    }

    /// This data directory's gateway id (`gateway.id`, created on first use): the name under
    /// which a gateway sharing a PostgreSQL ledger keeps its write-ahead records, so that it
    /// recovers its own after a crash and never another gateway's.
    public func gatewayID() throws -> String {
        let path = self.path + "/gateway.id"
        if let data = FileManager.default.contents(atPath: path) {
            let id = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !id.isEmpty else { throw LedgerError(.storage, "\(path) is empty; delete it to make a new gateway id") }
            return id
        }
        let id = "gw_" + (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        try Self.writeSecret(Data((id + "\n").utf8), to: path)
        return id
    }

    /// The operator account, created (owner-only) if missing and `create` is true.
    public func operatorAccount(create: Bool) throws -> Account {
        if let data = FileManager.default.contents(atPath: operatorPath) {
            return try Account(bundleData: data)
        }
        guard create else { throw LedgerError(.notFound, "no operator account at \(operatorPath)") }
        let account = Account()
        try Self.writeSecret(try account.bundleData(), to: operatorPath)
        return account
    }

    /// Takes the directory's lock for this process's lifetime, so a second server on the same
    /// directory fails at start instead of forking the ledger.
    /// - Throws: ``LedgerError/Code/storage`` if another process holds it.
    public func lock() throws {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LedgerError(.storage, "cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw LedgerError(.storage, "the data directory \(path) is in use by another verity serve; give this one its own --data-dir")
        }
        // The descriptor stays open (and the lock held) until the process exits.
    }

    /// Writes a new file readable and writable only by its owner; refuses to replace a file.
    /// - Throws: ``LedgerError/Code/storage`` if the file exists or cannot be written.
    public static func writeSecret(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let reason = errno == EEXIST ? "it already exists" : String(cString: strerror(errno))
            throw LedgerError(.storage, "cannot create \(path): \(reason)")
        }
        defer { close(fd) }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == data.count, fsync(fd) == 0 else {
            throw LedgerError(.storage, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
