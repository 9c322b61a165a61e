import Crypto
import Foundation
import GRDB
import Ledger

/// The gateway's accounts and their API keys, in an SQLite database file, or in the PostgreSQL
/// database of a shared ledger (``PostgresRegistryDatabase``).
///
/// An account is registered by its public keys only (the Ed25519 key behind its address and the
/// X25519 key its records are sealed to); private keys never reach the gateway. API keys are
/// random 256-bit secrets shown once when issued; the database keeps only their SHA-256, so a
/// copy of it does not let anyone call the API.
///
/// A gateway also keeps here the fleet's admitted worker keys and its join tokens
/// (`AccountRegistry+Workers.swift`).
///
/// Schema (migrations `v1` to `v4`):
/// ```
/// accounts(address TEXT PRIMARY KEY, encryption_key BLOB NOT NULL, created_ms INTEGER NOT NULL)
/// api_keys(key_hash BLOB PRIMARY KEY, key_id TEXT NOT NULL UNIQUE,
///          address TEXT NOT NULL REFERENCES accounts, created_ms INTEGER NOT NULL,
///          revoked_ms INTEGER,
///          requests_per_minute INTEGER, tokens_per_minute INTEGER)   -- v2: the key's rate limits
/// workers(worker_id TEXT PRIMARY KEY, admitted_ms INTEGER NOT NULL, revoked_ms INTEGER, note TEXT)  -- v3
/// join_tokens(token_hash BLOB PRIMARY KEY, token_id TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL,
///             expires_ms INTEGER NOT NULL, used_ms INTEGER, worker_id TEXT, note TEXT)     -- v3
/// account_routing(address TEXT PRIMARY KEY REFERENCES accounts, constraints TEXT NOT NULL,
///                 updated_ms INTEGER NOT NULL)   -- v4: the `verity` object an account's requests default to
/// ```
public final class AccountRegistry: Sendable {
    /// A registered account: its address and the key its records are sealed to.
    public struct RegisteredAccount: Sendable, Hashable {
        /// The account's address.
        public var address: AccountAddress
        /// The account's X25519 public key.
        public var recipientKey: RecipientKey
        /// Where its requests may run on a fleet when they say nothing (`verity account routing`).
        public var routing: RoutingConstraints?

        public init(address: AccountAddress, recipientKey: RecipientKey, routing: RoutingConstraints? = nil) {
            self.address = address
            self.recipientKey = recipientKey
            self.routing = routing
        }
    }

    /// An issued API key as listed: never the key itself.
    public struct KeyInfo: Sendable, Hashable {
        /// The key's public id (`key_` and the first 12 hex digits of its SHA-256).
        public var keyID: String
        /// The account the key acts for.
        public var address: String
        /// When it was issued, in milliseconds since the Unix epoch.
        public var createdMilliseconds: Int64
        /// When it was revoked, if it was.
        public var revokedMilliseconds: Int64?
        /// The key's own rate limits (unset ones take the server's defaults).
        public var limits = RateLimits()
    }

    /// A freshly issued key: the secret (shown once) and its listing.
    public struct IssuedKey: Sendable {
        /// The bearer token: `vk_` and 43 Base58 characters of 256 random bits.
        public var secret: String
        /// Its listing entry.
        public var info: KeyInfo
    }

    let database: any RegistryDatabase

    /// Opens (creating if needed) the registry at `path` and migrates it.
    /// - Throws: ``LedgerError/Code/storage`` if the file cannot be opened or migrated.
    public init(path: String) throws {
        do {
            let queue = try SQLiteLedgerStore.openDurable(path: path, busyTimeout: 5)
            try Self.migrator.migrate(queue)
            database = SQLiteRegistryDatabase(queue: queue)
        } catch {
            throw LedgerError(.storage, "cannot open the account registry at \(path)", cause: error)
        }
    }

    /// The registry in another database (PostgreSQL, shared by several gateways).
    public init(database: any RegistryDatabase) {
        self.database = database
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE accounts (
                    address TEXT PRIMARY KEY,
                    encryption_key BLOB NOT NULL,
                    created_ms INTEGER NOT NULL
                );
                CREATE TABLE api_keys (
                    key_hash BLOB PRIMARY KEY,
                    key_id TEXT NOT NULL UNIQUE,
                    address TEXT NOT NULL REFERENCES accounts(address),
                    created_ms INTEGER NOT NULL,
                    revoked_ms INTEGER
                );
                """)
        }
        migrator.registerMigration("v2") { db in
            try db.execute(sql: """
                ALTER TABLE api_keys ADD COLUMN requests_per_minute INTEGER;
                ALTER TABLE api_keys ADD COLUMN tokens_per_minute INTEGER;
                """)
        }
        migrator.registerMigration("v3") { db in
            try db.execute(sql: """
                CREATE TABLE workers (
                    worker_id TEXT PRIMARY KEY,
                    admitted_ms INTEGER NOT NULL,
                    revoked_ms INTEGER,
                    note TEXT
                );
                CREATE TABLE join_tokens (
                    token_hash BLOB PRIMARY KEY,
                    token_id TEXT NOT NULL UNIQUE,
                    created_ms INTEGER NOT NULL,
                    expires_ms INTEGER NOT NULL,
                    used_ms INTEGER,
                    worker_id TEXT,
                    note TEXT
                );
                """)
        }
        migrator.registerMigration("v4") { db in
            try db.execute(sql: """
                CREATE TABLE account_routing (
                    address TEXT PRIMARY KEY REFERENCES accounts(address),
                    constraints TEXT NOT NULL,
                    updated_ms INTEGER NOT NULL
                );
                """)
        }
        return migrator
    }

    /// Sets (or with nil, clears) the routing constraints an account's requests default to on a
    /// fleet; a request's own `verity` object overrides them field by field.
    /// - Throws: ``LedgerError/Code/notFound`` if the account is not registered.
    public func setRouting(_ constraints: RoutingConstraints?, for address: AccountAddress) throws {
        try wrap("set the routing of \(address)") {
            try database.write { db in
                guard try db.exists("SELECT 1 FROM accounts WHERE address = ?", [.text(address.description)]) else {
                    throw LedgerError(.notFound, "account \(address) is not registered")
                }
                if let constraints {
                    try db.execute("""
                        INSERT INTO account_routing (address, constraints, updated_ms) VALUES (?, ?, ?)
                        ON CONFLICT(address) DO UPDATE SET constraints = excluded.constraints, updated_ms = excluded.updated_ms
                        """, [.text(address.description), .text(constraints.json.serialized()), .integer(Self.now())])
                } else {
                    try db.execute("DELETE FROM account_routing WHERE address = ?", [.text(address.description)])
                }
            }
        }
    }

    /// An account's routing defaults (the `verity` object's JSON as stored), if set.
    static func routing(_ text: String?, address: String) throws -> RoutingConstraints? {
        guard let text else { return nil }
        do { return try JSONDecoder().decode(RoutingConstraints.self, from: Data(text.utf8)) } catch {
            throw LedgerError(.malformed, "account \(address) has malformed routing defaults in the registry", cause: error)
        }
    }

    /// Registers an account's public keys; registering the same keys again is a no-op.
    /// - Throws: ``LedgerError/Code/invalidValue`` if the address is registered with another
    ///   encryption key; ``LedgerError/Code/storage`` if the database fails.
    public func register(address: AccountAddress, recipientKey: RecipientKey) throws {
        let raw = recipientKey.rawRepresentation
        try wrap("register account \(address)") {
            try database.write { db in
                if let existing = try db.row("SELECT encryption_key FROM accounts WHERE address = ?", [.text(address.description)]) {
                    guard try existing.blob("encryption_key") == raw else {
                        throw LedgerError(.invalidValue, "account \(address) is already registered with another encryption key")
                    }
                    return
                }
                try db.execute("INSERT INTO accounts (address, encryption_key, created_ms) VALUES (?, ?, ?)",
                               [.text(address.description), .blob(raw), .integer(Self.now())])
            }
        }
    }

    /// The registered account with this address, if any.
    public func account(_ address: AccountAddress) throws -> RegisteredAccount? {
        try wrap("read account \(address)") {
            try database.read { db in
                try db.row("""
                    SELECT a.encryption_key, r.constraints FROM accounts a LEFT JOIN account_routing r ON r.address = a.address
                    WHERE a.address = ?
                    """, [.text(address.description)])
                    .map { row in
                        RegisteredAccount(address: address, recipientKey: try Self.recipientKey(try row.blob("encryption_key"), address: address),
                                          routing: try Self.routing(try row.optionalText("constraints"), address: address.description))
                    }
            }
        }
    }

    /// Issues a new API key for a registered account, with its own rate limits.
    /// - Throws: ``LedgerError/Code/notFound`` if the account is not registered.
    public func issueKey(for address: AccountAddress, limits: RateLimits = RateLimits()) throws -> IssuedKey {
        var random = SystemRandomNumberGenerator()
        let secret = "vk_" + Base58.encode((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &random) })
        let hash = Self.hash(secret)
        let info = KeyInfo(keyID: Self.keyID(hash), address: address.description, createdMilliseconds: Self.now(), limits: limits)
        try wrap("issue a key for \(address)") {
            try database.write { db in
                guard try db.exists("SELECT 1 FROM accounts WHERE address = ?", [.text(address.description)]) else {
                    throw LedgerError(.notFound, "account \(address) is not registered")
                }
                try db.execute("""
                    INSERT INTO api_keys (key_hash, key_id, address, created_ms, requests_per_minute, tokens_per_minute)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """, [.blob(hash), .text(info.keyID), .text(info.address), .integer(info.createdMilliseconds),
                          .integer(limits.requestsPerMinute.map { Int64($0) }), .integer(limits.tokensPerMinute.map { Int64($0) })])
            }
        }
        return IssuedKey(secret: secret, info: info)
    }

    /// Every issued key, oldest first.
    public func keys() throws -> [KeyInfo] {
        try wrap("list keys") {
            try database.read { db in
                try db.rows("""
                    SELECT key_id, address, created_ms, revoked_ms, requests_per_minute, tokens_per_minute FROM api_keys
                    ORDER BY created_ms, key_id
                    """, []).map(Self.keyInfo)
            }
        }
    }

    /// Revokes a key by its id; it stops working at once, also for a running server.
    /// - Throws: ``LedgerError/Code/notFound`` for an unknown or already revoked key.
    public func revoke(keyID: String) throws {
        try wrap("revoke key \(keyID)") {
            try database.write { db in
                let changed = try db.execute("UPDATE api_keys SET revoked_ms = ? WHERE key_id = ? AND revoked_ms IS NULL",
                                             [.integer(Self.now()), .text(keyID)])
                guard changed == 1 else { throw LedgerError(.notFound, "no active API key \(keyID)") }
            }
        }
    }

    /// Whether any key is active (a server with active keys requires one on every request).
    public func hasActiveKeys() throws -> Bool {
        try wrap("read keys") {
            try database.read { try $0.exists("SELECT 1 FROM api_keys WHERE revoked_ms IS NULL LIMIT 1", []) }
        }
    }

    /// The account an active API key acts for, or nil for an unknown or revoked key.
    public func account(forKey secret: String) throws -> RegisteredAccount? {
        try key(secret)?.account
    }

    /// An active API key's account and listing, or nil for an unknown or revoked key.
    ///
    /// The lookup is by the key's SHA-256, so its timing depends on the hash, not on how much of
    /// a guessed key matches.
    public func key(_ secret: String) throws -> (account: RegisteredAccount, info: KeyInfo)? {
        let hash = Self.hash(secret)
        return try wrap("look up a key") {
            try database.read { db in
                guard let row = try db.row("""
                    SELECT a.address, a.encryption_key, k.key_id, k.created_ms, k.revoked_ms, k.requests_per_minute, k.tokens_per_minute,
                           r.constraints
                    FROM api_keys k JOIN accounts a ON a.address = k.address LEFT JOIN account_routing r ON r.address = a.address
                    WHERE k.key_hash = ? AND k.revoked_ms IS NULL
                    """, [.blob(hash)]) else { return nil }
                let address = try AccountAddress(try row.text("address"))
                return (RegisteredAccount(address: address, recipientKey: try Self.recipientKey(try row.blob("encryption_key"), address: address),
                                          routing: try Self.routing(try row.optionalText("constraints"), address: address.description)),
                        try Self.keyInfo(row))
            }
        }
    }

    private static func keyInfo(_ row: SQLRow) throws -> KeyInfo {
        KeyInfo(keyID: try row.text("key_id"), address: try row.text("address"), createdMilliseconds: try row.integer("created_ms"),
                revokedMilliseconds: try row.optionalInteger("revoked_ms"),
                limits: RateLimits(requestsPerMinute: try row.optionalInteger("requests_per_minute").map(Int.init),
                                   tokensPerMinute: try row.optionalInteger("tokens_per_minute").map(Int.init)))
    }

    private static func recipientKey(_ raw: Data, address: AccountAddress) throws -> RecipientKey {
        do { return try RecipientKey(rawRepresentation: raw) } catch {
            throw LedgerError(.malformed, "account \(address) has a malformed encryption key in the registry", cause: error)
        }
    }

    static func hash(_ secret: String) -> Data { Data(SHA256.hash(data: Data(secret.utf8))) }

    static func keyID(_ hash: Data) -> String { "key_" + hash.prefix(6).map { String(format: "%02x", $0) }.joined() }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    func wrap<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as LedgerError {
            throw error
        } catch {
            throw LedgerError(.storage, "cannot \(what)", cause: error)
        }
    }
}
