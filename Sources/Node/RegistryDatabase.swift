import Foundation
import GRDB
import Ledger

/// A value bound to, or read from, the account registry's SQL.
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case text(String)
    case blob(Data)

    /// An optional integer: NULL when nil.
    static func integer(_ value: Int64?) -> SQLValue { value.map { .integer($0) } ?? .null }
    /// An optional text: NULL when nil.
    static func text(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }
}

/// One result row, by column name.
public struct SQLRow: Sendable {
    public var values: [String: SQLValue]

    public init(values: [String: SQLValue]) { self.values = values }

    private func value(_ column: String) throws -> SQLValue {
        guard let value = values[column] else { throw LedgerError(.storage, "the registry's query returned no column \(column)") }
        return value
    }

    func text(_ column: String) throws -> String {
        guard case .text(let text) = try value(column) else { throw LedgerError(.malformed, "the registry's \(column) is not text") }
        return text
    }

    func optionalText(_ column: String) throws -> String? {
        if case .null = try value(column) { return nil }
        return try text(column)
    }

    func integer(_ column: String) throws -> Int64 {
        guard case .integer(let value) = try value(column) else { throw LedgerError(.malformed, "the registry's \(column) is not an integer") }
        return value
    }

    func optionalInteger(_ column: String) throws -> Int64? {
        if case .null = try value(column) { return nil }
        return try integer(column)
    }

    func blob(_ column: String) throws -> Data {
        guard case .blob(let data) = try value(column) else { throw LedgerError(.malformed, "the registry's \(column) is not a blob") }
        return data
    }
}

/// A transaction on the registry's database. SQL is written once for both engines: `?`
/// placeholders, and only what SQLite and PostgreSQL both read the same way.
public protocol RegistrySession {
    /// Runs a statement; returns how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int
    /// Runs a query; returns its rows.
    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow]
}

extension RegistrySession {
    /// The first row of a query, if any.
    func row(_ sql: String, _ arguments: [SQLValue]) throws -> SQLRow? { try rows(sql, arguments).first }
    /// Whether a query returns a row.
    func exists(_ sql: String, _ arguments: [SQLValue]) throws -> Bool { try !rows(sql, arguments).isEmpty }
}

/// Where the account registry lives: the data directory's SQLite file, or the PostgreSQL
/// database of a shared ledger (``PostgresRegistryDatabase``), so every gateway of it knows the
/// same accounts and keys.
public protocol RegistryDatabase: Sendable {
    /// Runs `body` in a read transaction.
    func read<T>(_ body: (any RegistrySession) throws -> T) throws -> T
    /// Runs `body` in a write transaction: committed if it returns, rolled back if it throws.
    func write<T>(_ body: (any RegistrySession) throws -> T) throws -> T
}

/// The registry in an SQLite file, through GRDB.
struct SQLiteRegistryDatabase: RegistryDatabase {
    let queue: DatabaseQueue

    func read<T>(_ body: (any RegistrySession) throws -> T) throws -> T {
        try queue.read { db in try body(Session(db: db)) }
    }

    func write<T>(_ body: (any RegistrySession) throws -> T) throws -> T {
        try queue.write { db in try body(Session(db: db)) }
    }

    struct Session: RegistrySession {
        let db: Database

        static func arguments(_ values: [SQLValue]) -> StatementArguments {
            StatementArguments(values.map { value -> DatabaseValue in
                switch value {
                case .null: .null
                case .integer(let int): int.databaseValue
                case .text(let text): text.databaseValue
                case .blob(let data): data.databaseValue
                }
            })
        }

        func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
            try db.execute(sql: sql, arguments: Self.arguments(arguments))
            return db.changesCount
        }

        func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
            try Row.fetchAll(db, sql: sql, arguments: Self.arguments(arguments)).map { row in
                var values: [String: SQLValue] = [:]
                for (column, value) in zip(row.columnNames, row.databaseValues) {
                    switch value.storage {
                    case .null: values[column] = .null
                    case .int64(let int): values[column] = .integer(int)
                    case .double(let double): values[column] = .integer(Int64(double))
                    case .string(let text): values[column] = .text(text)
                    case .blob(let data): values[column] = .blob(data)
                    }
                }
                return SQLRow(values: values)
            }
        }
    }
}
