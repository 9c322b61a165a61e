import Foundation
import Ledger
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// One connection to a PostgreSQL database, used synchronously, one caller at a time: the
/// ledger's and the account registry's storage APIs are synchronous (their callers run on
/// threads of their own or hold no cooperative thread long), and postgres-nio answers on its own
/// event loop, so a caller can block on it.
///
/// A failure other than the server refusing a statement drops the connection; the next call
/// reconnects and bumps ``generation``, so that a session-scoped state (an advisory lock) taken
/// on the lost connection is known to be gone.
public final class SynchronousPostgres: Sendable {
    public let location: PostgresLocation
    public let logger: Logger
    private let state = Mutex<(connection: PostgresConnection?, generation: Int)>((nil, 0))
    private let serial = NSLock()
    private static let nextConnectionID = Atomic<Int>(1)
    /// Run on every new connection before its first use (to take a session lock); a throw
    /// closes it and fails the call.
    private let onConnect: (@Sendable (PostgresConnection) throws -> Void)?

    /// - Throws: ``LedgerError/Code/invalidValue`` for a bad URL (it connects on first use).
    public init(url: String, logger: Logger, onConnect: (@Sendable (PostgresConnection) throws -> Void)? = nil) throws {
        location = try PostgresLocation(url: url)
        self.logger = logger
        self.onConnect = onConnect
    }

    deinit {
        if let connection = state.withLock({ $0.connection }) { _ = try? connection.close().wait() }
    }

    /// Runs `body` with the connection (connecting first if needed) and its generation.
    /// - Throws: ``LedgerError/Code/storage`` naming `what` and the server's message, or what
    ///   `body` throws if it is a ``LedgerError``.
    public func run<T>(_ what: String, _ body: (PostgresConnection, Int) throws -> T) throws -> T {
        serial.lock()
        defer { serial.unlock() }
        var (current, generation) = state.withLock { ($0.connection, $0.generation) }
        if current == nil || current!.isClosed {
            do {
                current = try PostgresConnection.connect(
                    on: MultiThreadedEventLoopGroup.singleton.next(), configuration: try location.configuration,
                    id: Self.nextConnectionID.wrappingAdd(1, ordering: .relaxed).oldValue, logger: logger
                ).wait()
            } catch let error as LedgerError {
                throw error
            } catch {
                throw LedgerError(.storage, "cannot connect to PostgreSQL at \(location.redacted): \(Self.describe(error))")
            }
            if let onConnect, let connection = current {
                do { try onConnect(connection) } catch {
                    _ = try? connection.close().wait()
                    if let error = error as? LedgerError { throw error }
                    throw LedgerError(.storage, "PostgreSQL: cannot set up the connection: \(Self.describe(error))")
                }
            }
            generation = state.withLock { s in
                s.connection = current
                s.generation += 1
                return s.generation
            }
        }
        let connection = current!
        do {
            return try body(connection, generation)
        } catch let error as LedgerError {
            throw error
        } catch {
            if (error as? PSQLError)?.code != .server {
                state.withLock { if $0.connection === connection { $0.connection = nil } }
                _ = try? connection.close().wait()
            }
            throw LedgerError(.storage, "PostgreSQL: cannot \(what): \(Self.describe(error))")
        }
    }

    /// Runs `body` in a transaction: committed if it returns, rolled back if it throws.
    public func transaction<T>(_ what: String, _ body: (PostgresConnection) throws -> T) throws -> T {
        try run(what) { connection, _ in
            _ = try connection.query("BEGIN", logger: logger).wait()
            do {
                let result = try body(connection)
                _ = try connection.query("COMMIT", logger: logger).wait()
                return result
            } catch {
                _ = try? connection.query("ROLLBACK", logger: logger).wait()
                throw error
            }
        }
    }

    /// The rows of a query.
    public func rows(_ query: PostgresQuery, on connection: PostgresConnection) throws -> [PostgresRow] {
        Array(try connection.query(query, logger: logger).wait().rows)
    }

    /// Runs schema statements in one transaction, under an advisory lock, so that processes
    /// starting together do not race to create the same tables.
    public func createSchema(_ statements: [String], what: String) throws {
        try transaction("create \(what)") { connection in
            _ = try connection.query("SELECT pg_advisory_xact_lock(\(PostgresLedgerStore.schemaLockKey))", logger: logger).wait()
            for statement in statements {
                _ = try connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).wait()
            }
        }
    }

    /// What went wrong, from a PostgreSQL error: the server's message and SQLSTATE, not
    /// postgres-nio's generic description.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let info = error.serverInfo, let message = info[.message] {
            return message + (info[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
        }
        if let underlying = error.underlying { return "\(error.code): \(underlying)" }
        return "\(error.code)"
    }
}
