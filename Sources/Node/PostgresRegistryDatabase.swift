import Foundation
import Ledger
import LedgerPostgres
import Logging
import PostgresNIO

/// The account registry in PostgreSQL: the database of a shared ledger (`--ledger-db`), so that
/// every gateway of one log knows the same accounts, API keys, workers and join tokens, and a key
/// revoked on one stops working on all of them at its next request.
///
/// The tables are the SQLite registry's (``AccountRegistry``), in PostgreSQL's types; they are
/// created on first use. Its own connection, apart from the ledger's.
public struct PostgresRegistryDatabase: RegistryDatabase {
    let client: SynchronousPostgres

    /// Connects (on first use) and creates the registry's tables if missing.
    /// - Throws: ``LedgerError``: a bad URL, an unreachable database.
    public init(url: String, logger: Logger = Logger(label: "verity.accounts.postgres")) throws {
        client = try SynchronousPostgres(url: url, logger: logger)
        try client.createSchema(Self.schema, what: "the account registry")
    }

    static let schema = [
        "CREATE TABLE IF NOT EXISTS accounts (address TEXT PRIMARY KEY, encryption_key BYTEA NOT NULL, created_ms BIGINT NOT NULL)",
        """
        CREATE TABLE IF NOT EXISTS api_keys (
            key_hash BYTEA PRIMARY KEY, key_id TEXT NOT NULL UNIQUE, address TEXT NOT NULL REFERENCES accounts (address),
            created_ms BIGINT NOT NULL, revoked_ms BIGINT, requests_per_minute BIGINT, tokens_per_minute BIGINT)
        """,
        "CREATE TABLE IF NOT EXISTS workers (worker_id TEXT PRIMARY KEY, admitted_ms BIGINT NOT NULL, revoked_ms BIGINT, note TEXT)",
        """
        CREATE TABLE IF NOT EXISTS join_tokens (
            token_hash BYTEA PRIMARY KEY, token_id TEXT NOT NULL UNIQUE, created_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL,
            used_ms BIGINT, worker_id TEXT, note TEXT)
        """,
        """
        CREATE TABLE IF NOT EXISTS account_routing (
            address TEXT PRIMARY KEY REFERENCES accounts (address), constraints TEXT NOT NULL, updated_ms BIGINT NOT NULL)
        """,
    ]

    public func read<T>(_ body: (any RegistrySession) throws -> T) throws -> T {
        try client.transaction("read the account registry") { connection in try body(Session(client: client, connection: connection)) }
    }

    public func write<T>(_ body: (any RegistrySession) throws -> T) throws -> T {
        try client.transaction("write the account registry") { connection in try body(Session(client: client, connection: connection)) }
    }

    struct Session: RegistrySession {
        let client: SynchronousPostgres
        let connection: PostgresConnection

        /// The statement with `?` placeholders numbered `$1`, `$2`, … (the registry's SQL holds
        /// no `?` in literals), and its bindings.
        static func query(_ sql: String, _ arguments: [SQLValue]) throws -> PostgresQuery {
            var text = "", number = 0
            for character in sql {
                if character == "?" {
                    number += 1
                    text += "$\(number)"
                } else {
                    text.append(character)
                }
            }
            guard number == arguments.count else {
                throw LedgerError(.storage, "the registry's statement has \(number) placeholders for \(arguments.count) values")
            }
            var binds = PostgresBindings(capacity: arguments.count)
            for value in arguments {
                switch value {
                case .null: binds.appendNull()
                case .integer(let int): binds.append(int)
                case .text(let string): binds.append(string)
                case .blob(let data): try binds.append(data)
                }
            }
            return PostgresQuery(unsafeSQL: text, binds: binds)
        }

        func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
            try connection.query(try Self.query(sql, arguments), logger: client.logger).wait().metadata.rows ?? 0
        }

        func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
            try client.rows(try Self.query(sql, arguments), on: connection).map { row in
                var values: [String: SQLValue] = [:]
                for cell in row {
                    guard cell.bytes != nil else {
                        values[cell.columnName] = .null
                        continue
                    }
                    switch cell.dataType {
                    case .int2, .int4, .int8: values[cell.columnName] = .integer(try cell.decode(Int64.self))
                    case .bool: values[cell.columnName] = .integer(try cell.decode(Bool.self) ? 1 : 0)
                    case .bytea: values[cell.columnName] = .blob(try cell.decode(Data.self))
                    default: values[cell.columnName] = .text(try cell.decode(String.self))
                    }
                }
                return SQLRow(values: values)
            }
        }
    }
}
