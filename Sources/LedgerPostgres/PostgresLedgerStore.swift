import Foundation
import Ledger
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// A ``LedgerStore`` in PostgreSQL, which several gateway processes share: each appends to the
/// one log, the database assigns the indices, and one of them at a time (the leader, elected by an
/// advisory lock) integrates the new leaves into the hash tiles and seals blocks.
///
/// **Sequencing.** ``sequence(pending:discarding:leaves:)`` runs one transaction that takes
/// `n` indices from the single row of `verity_ledger_sequence` (`UPDATE … RETURNING`: the row lock
/// makes concurrent transactions take turns) and inserts the leaves at them. The row update and
/// the leaves commit together or not at all, so indices never collide and never leave a gap, and
/// a transaction that takes indices only does so after every earlier one committed. A leaf is
/// acknowledged once that transaction commits (PostgreSQL's `synchronous_commit` makes it
/// durable).
///
/// **Integration.** The leader (``tryLead()``: `pg_try_advisory_lock` on this store's session,
/// released by PostgreSQL when the session ends, so a leader killed with `kill -9` is replaced as
/// soon as its connection drops) reads the leaf hashes past `verity_ledger_integrated.size` and
/// writes the tiles they change, moving the size forward in the same transaction, under the row
/// lock of `verity_ledger_integrated`: even two processes that both believe they lead cannot
/// interleave. Blocks take their height as primary key, so a stale leader cannot store a second
/// block at a height.
///
/// **Pending records** carry the gateway that wrote them (``gateway``): a gateway recovers its
/// own at start, never another one's that is still answering. Each gateway holds a session
/// advisory lock on its name while it runs, so a second process with the same name (a data
/// directory copied with its `gateway.id`) is refused, and the leader can tell a gateway that is
/// gone: ``adoptOrphans(limit:)`` appends the pending records of gateways whose lock is free.
///
/// Schema (all tables prefixed `verity_ledger_`): `leaves(idx, record_id UNIQUE, envelope,
/// leaf_hash, owner)`, `pending(record_id, envelope, owner, gateway, written)`, `tiles(level,
/// idx, hashes)`, `blocks(height, note)`, `cosignatures(height, witness, line)`, `sequence(next)`,
/// `integrated(size)`, `meta(key, value)`. Triggers refuse updates and deletes of leaves and
/// blocks, and tile updates that do not extend the tile.
///
/// The store is synchronous, like every ``LedgerStore``: it blocks its caller (the ledger node's
/// own thread) on one connection, reconnecting after a failure.
public final class PostgresLedgerStore: LedgerStore, @unchecked Sendable {
    /// The connection to the database.
    public let client: SynchronousPostgres
    /// Where the database is.
    public var location: PostgresLocation { client.location }
    /// This process's name in `pending.gateway`; nil for a reader (`verity ledger …`), which
    /// writes none and sees every gateway's.
    public let gateway: String?
    private var logger: Logger { client.logger }
    /// The connection generation on which this process took the leader lock, if it did.
    private let leaderGeneration = Mutex<Int?>(nil)
    private static let leaderLockKey: Int64 = 0x7665_7269_7479_4c31 // "verityL1"
    /// The class of the gateways' locks (two-key advisory locks: this, and `hashtext(name)`).
    private static let gatewayLockClass: Int32 = 0x7665_7247 // "verG"

    /// Takes a gateway's session lock on a new connection, waiting up to 3 s for a leader
    /// that is adopting its records (it holds the lock for one transaction).
    private static func lockGateway(_ name: String, on connection: PostgresConnection, logger: Logger) throws {
        for attempt in 0..<30 {
            let rows = try connection.query("SELECT pg_try_advisory_lock(\(gatewayLockClass), hashtext(\(name)))", logger: logger).wait().rows
            if try rows.first(where: { _ in true })?.decode(Bool.self) == true { return }
            if attempt < 29 { Thread.sleep(forTimeInterval: 0.1) }
        }
        throw LedgerError(.storage, "the gateway id \(name) is in use by another running gateway of this ledger: a data directory "
                          + "copied from another gateway must not keep its gateway.id (delete it in the copy; a new one is made)")
    }
    static let schemaLockKey: Int64 = 0x7665_7269_7479_5331 // "verityS1"

    /// Connects, and creates the schema if the database has none.
    /// - Parameters:
    ///   - url: `postgres://[user[:password]@][host][:port]/database[?sslmode=disable|require][&host=/socket/dir]`.
    ///   - gateway: This process's stable name (for its pending records), held locked while it
    ///     runs; nil for a reader.
    /// - Throws: ``LedgerError/Code/invalidValue`` for a bad URL; ``LedgerError/Code/storage`` if
    ///   the database cannot be reached or its schema created, or another running process holds
    ///   the gateway's name.
    public init(url: String, gateway: String?, logger: Logger = Logger(label: "verity.ledger.postgres")) throws {
        var onConnect: (@Sendable (PostgresConnection) throws -> Void)?
        if let gateway {
            onConnect = { connection in try PostgresLedgerStore.lockGateway(gateway, on: connection, logger: logger) }
        }
        self.client = try SynchronousPostgres(url: url, logger: logger, onConnect: onConnect)
        self.gateway = gateway
        try client.createSchema(Self.schema, what: "the ledger schema")
    }

    static let schema: [String] = [
        """
        CREATE TABLE IF NOT EXISTS verity_ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS verity_ledger_leaves (
            idx BIGINT PRIMARY KEY CHECK (idx >= 0), record_id TEXT NOT NULL UNIQUE,
            envelope BYTEA NOT NULL, leaf_hash BYTEA NOT NULL CHECK (length(leaf_hash) = 32),
            owner BYTEA CHECK (owner IS NULL OR length(owner) = 8))
        """,
        "CREATE INDEX IF NOT EXISTS verity_ledger_leaves_owner ON verity_ledger_leaves (owner, idx) WHERE owner IS NOT NULL",
        """
        CREATE TABLE IF NOT EXISTS verity_ledger_pending (
            record_id TEXT PRIMARY KEY, envelope BYTEA NOT NULL, owner BYTEA, gateway TEXT NOT NULL,
            written BIGSERIAL)
        """,
        "CREATE INDEX IF NOT EXISTS verity_ledger_pending_gateway ON verity_ledger_pending (gateway, written)",
        """
        CREATE TABLE IF NOT EXISTS verity_ledger_tiles (
            level INTEGER NOT NULL CHECK (level >= 0), idx BIGINT NOT NULL CHECK (idx >= 0),
            hashes BYTEA NOT NULL, PRIMARY KEY (level, idx))
        """,
        "CREATE TABLE IF NOT EXISTS verity_ledger_blocks (height BIGINT PRIMARY KEY CHECK (height >= 0), note TEXT NOT NULL)",
        """
        CREATE TABLE IF NOT EXISTS verity_ledger_cosignatures (
            height BIGINT NOT NULL REFERENCES verity_ledger_blocks (height), witness TEXT NOT NULL,
            line TEXT NOT NULL, PRIMARY KEY (height, witness))
        """,
        "CREATE INDEX IF NOT EXISTS verity_ledger_cosignatures_witness ON verity_ledger_cosignatures (witness, height)",
        "CREATE TABLE IF NOT EXISTS verity_ledger_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), next BIGINT NOT NULL)",
        "INSERT INTO verity_ledger_sequence VALUES (1, 0) ON CONFLICT DO NOTHING",
        "CREATE TABLE IF NOT EXISTS verity_ledger_integrated (id INTEGER PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL)",
        "INSERT INTO verity_ledger_integrated VALUES (1, 0) ON CONFLICT DO NOTHING",
        """
        CREATE OR REPLACE FUNCTION verity_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the ledger''s % are append-only', TG_TABLE_NAME; END $$
        """,
        """
        CREATE OR REPLACE FUNCTION verity_ledger_tile_grows() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF length(NEW.hashes) <= length(OLD.hashes) OR substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) <> OLD.hashes THEN
                RAISE EXCEPTION 'a hash tile only grows';
            END IF;
            RETURN NEW;
        END $$
        """,
        "DROP TRIGGER IF EXISTS verity_ledger_leaves_frozen ON verity_ledger_leaves",
        "CREATE TRIGGER verity_ledger_leaves_frozen BEFORE UPDATE OR DELETE ON verity_ledger_leaves FOR EACH ROW EXECUTE FUNCTION verity_ledger_append_only()",
        "DROP TRIGGER IF EXISTS verity_ledger_blocks_frozen ON verity_ledger_blocks",
        "CREATE TRIGGER verity_ledger_blocks_frozen BEFORE UPDATE OR DELETE ON verity_ledger_blocks FOR EACH ROW EXECUTE FUNCTION verity_ledger_append_only()",
        "DROP TRIGGER IF EXISTS verity_ledger_tiles_grow ON verity_ledger_tiles",
        "CREATE TRIGGER verity_ledger_tiles_grow BEFORE UPDATE ON verity_ledger_tiles FOR EACH ROW EXECUTE FUNCTION verity_ledger_tile_grows()",
        "DROP TRIGGER IF EXISTS verity_ledger_tiles_kept ON verity_ledger_tiles",
        "CREATE TRIGGER verity_ledger_tiles_kept BEFORE DELETE ON verity_ledger_tiles FOR EACH ROW EXECUTE FUNCTION verity_ledger_append_only()",
    ]

    private func run<T>(_ what: String, _ body: (PostgresConnection) throws -> T) throws -> T {
        try client.run(what) { connection, _ in try body(connection) }
    }

    private func transaction<T>(_ what: String, _ body: (PostgresConnection) throws -> T) throws -> T {
        try client.transaction(what, body)
    }

    private func rows(_ query: PostgresQuery, on connection: PostgresConnection) throws -> [PostgresRow] {
        try client.rows(query, on: connection)
    }

    private func select(_ what: String, _ query: PostgresQuery) throws -> [PostgresRow] {
        try run(what) { try rows(query, on: $0) }
    }

    // MARK: Meta

    /// The value stored under `key`, if any.
    public func meta(_ key: String) throws -> String? {
        try select("read the ledger's \(key)", "SELECT value FROM verity_ledger_meta WHERE key = \(key)").first?.decode(String.self)
    }

    /// The value stored under `key`, setting it to `value` first if there is none: the first
    /// process to start a log fixes its identity (the node key) for every later one.
    public func claim(_ key: String, value: String) throws -> String {
        try transaction("read the ledger's \(key)") { connection in
            _ = try connection.query(
                "INSERT INTO verity_ledger_meta (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO NOTHING",
                logger: logger).wait()
            let rows = try rows("SELECT value FROM verity_ledger_meta WHERE key = \(key)", on: connection)
            guard let row = rows.first else { throw LedgerError(.storage, "the ledger's \(key) is missing") }
            return try row.decode(String.self)
        }
    }

    // MARK: Writing

    public var isShared: Bool { true }

    public func append(_ leaf: StoredLeaf) throws {
        try append(contentsOf: [leaf])
    }

    /// Appends leaves at the indices they name, which must be the next ones, and integrates them
    /// at once (for imports and tests; gateways use ``sequence(pending:discarding:leaves:)``).
    public func append(contentsOf leaves: [StoredLeaf]) throws {
        try commit(pending: [], discarding: [], leaves: leaves)
    }

    /// Commits as ``sequence(pending:discarding:leaves:)`` does, then checks that the leaves got
    /// the indices they name, and integrates them: a single-writer use of the store.
    public func commit(pending: [PendingRecord], discarding: [String], leaves: [StoredLeaf]) throws {
        if let first = leaves.first {
            let next = try sequencedCount()
            guard first.index == next else {
                throw LedgerError(.storage, "leaf index \(first.index) is not the next index \(next)")
            }
        }
        _ = try sequence(pending: pending, discarding: discarding, leaves: leaves)
        var edge = try treeEdge()
        while edge.size < (try sequencedCount()) {
            let before = edge.size
            edge = try integrate(limit: 4096)
            if edge.size == before { break }
        }
    }

    public func sequence(pending: [PendingRecord], discarding: [String], leaves: [StoredLeaf]) throws -> UInt64 {
        try transaction("append to the ledger") { connection in
            // One statement for the pending records, the last write of each id winning (a
            // statement may not upsert one row twice).
            guard pending.isEmpty || gateway != nil else { throw LedgerError(.storage, "a ledger reader writes no pending records") }
            var latest: [String: PendingRecord] = [:], order: [String] = []
            for record in pending {
                if latest.updateValue(record, forKey: record.recordID) == nil { order.append(record.recordID) }
            }
            for chunk in stride(from: 0, to: order.count, by: 1000) {
                var binds = PostgresBindings(capacity: 4 * min(1000, order.count - chunk))
                var values: [String] = []
                for (offset, id) in order[chunk..<min(chunk + 1000, order.count)].enumerated() {
                    let record = latest[id]!, p = offset * 4
                    values.append("($\(p + 1), $\(p + 2), $\(p + 3), $\(p + 4))")
                    binds.append(record.recordID)
                    try binds.append(record.envelope)
                    try binds.append(record.owner)
                    binds.append(gateway)
                }
                _ = try connection.query(PostgresQuery(unsafeSQL: """
                    INSERT INTO verity_ledger_pending (record_id, envelope, owner, gateway) VALUES \(values.joined(separator: ", "))
                    ON CONFLICT (record_id) DO UPDATE SET envelope = EXCLUDED.envelope, owner = EXCLUDED.owner
                    """, binds: binds), logger: logger).wait()
            }
            if !discarding.isEmpty {
                _ = try connection.query("DELETE FROM verity_ledger_pending WHERE record_id = ANY(\(discarding))", logger: logger).wait()
            }
            return try insertLeaves(leaves, on: connection)
        }
    }

    /// Takes the next indices for `leaves` and inserts them there, deleting their pending
    /// records; inside the caller's transaction.
    /// - Returns: The first index taken.
    private func insertLeaves(_ leaves: [StoredLeaf], on connection: PostgresConnection) throws -> UInt64 {
        guard !leaves.isEmpty else {
            // No index to take: leave the sequence row unlocked for those who do.
            return UInt64(try rows("SELECT next FROM verity_ledger_sequence WHERE id = 1", on: connection).first?.decode(Int64.self) ?? 0)
        }
        let count = Int64(leaves.count)
        let taken = try rows("UPDATE verity_ledger_sequence SET next = next + \(count) WHERE id = 1 RETURNING next - \(count)",
                             on: connection)
        guard let first = try taken.first?.decode(Int64.self) else {
            throw LedgerError(.storage, "the ledger's sequence row is missing")
        }
        // One statement for the batch: rows of five parameters each.
        for chunk in stride(from: 0, to: leaves.count, by: 1000) {
            let part = leaves[chunk..<min(chunk + 1000, leaves.count)]
            var binds = PostgresBindings(capacity: part.count * 5)
            var values: [String] = []
            for (offset, leaf) in part.enumerated() {
                let p = offset * 5
                values.append("($\(p + 1), $\(p + 2), $\(p + 3), $\(p + 4), $\(p + 5))")
                binds.append(first + Int64(chunk + offset))
                binds.append(leaf.recordID)
                try binds.append(leaf.envelope)
                try binds.append(leaf.leafHash)
                try binds.append(leaf.owner)
            }
            do {
                _ = try connection.query(PostgresQuery(
                    unsafeSQL: "INSERT INTO verity_ledger_leaves (idx, record_id, envelope, leaf_hash, owner) VALUES "
                        + values.joined(separator: ", "), binds: binds), logger: logger).wait()
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                throw LedgerError(.duplicateRecord, "a record of this batch is already in the log: \(SynchronousPostgres.describe(error))")
            }
        }
        _ = try connection.query("DELETE FROM verity_ledger_pending WHERE record_id = ANY(\(leaves.map(\.recordID)))",
                                 logger: logger).wait()
        return UInt64(first)
    }

    /// The leader's recovery of gateways that are gone: in one transaction, appends as leaves
    /// up to `limit` pending records of every other gateway whose session lock is free (it is
    /// not running; the lock is held for the transaction, so it cannot start meanwhile), oldest
    /// first, and deletes them. The records were written ahead as interrupted; they are appended
    /// as they are, like a gateway's own at its restart.
    /// - Returns: The number of records adopted.
    public func adoptOrphans(limit: Int) throws -> Int {
        guard let gateway else { return 0 }
        return try transaction("recover the records of stopped gateways") { connection in
            // A pending record whose leaf exists (a race of two writers) is just stale.
            _ = try connection.query("""
                DELETE FROM verity_ledger_pending p USING verity_ledger_leaves l WHERE p.record_id = l.record_id
                """, logger: logger).wait()
            let others = try rows("SELECT DISTINCT gateway FROM verity_ledger_pending WHERE gateway <> \(gateway)", on: connection)
                .map { try $0.decode(String.self) }
            var leaves: [StoredLeaf] = []
            for other in others where leaves.count < limit {
                let free = try rows("SELECT pg_try_advisory_xact_lock(\(Self.gatewayLockClass), hashtext(\(other)))", on: connection)
                guard try free.first?.decode(Bool.self) == true else { continue }
                for row in try rows("""
                    SELECT record_id, envelope, owner FROM verity_ledger_pending WHERE gateway = \(other)
                    ORDER BY written LIMIT \(Int64(limit - leaves.count))
                    """, on: connection) {
                    let (id, envelope, owner) = try row.decode((String, Data, Data?).self)
                    leaves.append(StoredLeaf(index: 0, recordID: id, envelope: envelope, leafHash: RFC6962.leafHash(envelope), owner: owner))
                }
            }
            guard !leaves.isEmpty else { return 0 }
            _ = try insertLeaves(leaves, on: connection)
            return leaves.count
        }
    }

    public func tryLead() throws -> Bool {
        try client.run("take the leader lock") { connection, generation in
            if leaderGeneration.withLock({ $0 }) == generation { return true }
            let leads = try rows("SELECT pg_try_advisory_lock(\(Self.leaderLockKey))", on: connection).first?.decode(Bool.self) ?? false
            if leads { leaderGeneration.withLock { $0 = generation } }
            return leads
        }
    }

    public func integrate(limit: Int) throws -> TreeEdge {
        try transaction("integrate the ledger") { connection in
            let sizeRows = try rows("SELECT size FROM verity_ledger_integrated WHERE id = 1 FOR UPDATE", on: connection)
            guard let size = try sizeRows.first?.decode(Int64.self) else {
                throw LedgerError(.storage, "the ledger's integrated size row is missing")
            }
            var edge = try TreeEdge(size: UInt64(size)) { try tile($0, on: connection) }
            let hashes = try rows("""
                SELECT idx, leaf_hash FROM verity_ledger_leaves WHERE idx >= \(size) ORDER BY idx LIMIT \(Int64(limit))
                """, on: connection)
            var leafHashes: [Data] = []
            for row in hashes {
                let (index, hash) = try row.decode((Int64, Data).self)
                // Sequencing commits in index order, so a gap is a transaction not committed yet.
                guard index == size + Int64(leafHashes.count) else { break }
                leafHashes.append(hash)
            }
            guard !leafHashes.isEmpty else { return edge }
            let changed = edge.append(leafHashes: leafHashes)
            for (key, bytes) in changed.sorted(by: { $0.key < $1.key }) {
                _ = try connection.query("""
                    INSERT INTO verity_ledger_tiles (level, idx, hashes) VALUES (\(Int32(key.level)), \(Int64(key.index)), \(bytes))
                    ON CONFLICT (level, idx) DO UPDATE SET hashes = EXCLUDED.hashes
                    """, logger: logger).wait()
            }
            _ = try connection.query("UPDATE verity_ledger_integrated SET size = \(Int64(edge.size)) WHERE id = 1", logger: logger).wait()
            return edge
        }
    }

    public func appendBlock(_ block: StoredBlock) throws {
        try transaction("store block \(block.height)") { connection in
            let count = try rows("SELECT count(*) FROM verity_ledger_blocks", on: connection).first?.decode(Int64.self) ?? 0
            guard block.height == UInt64(count) else {
                throw LedgerError(.storage, "block height \(block.height) is not the next height \(count)")
            }
            _ = try connection.query("INSERT INTO verity_ledger_blocks (height, note) VALUES (\(Int64(block.height)), \(block.note))",
                                     logger: logger).wait()
        }
    }

    public func addCosignature(height: UInt64, witness: String, line: String) throws {
        _ = try select("store a cosignature", """
            INSERT INTO verity_ledger_cosignatures (height, witness, line) VALUES (\(Int64(height)), \(witness), \(line))
            ON CONFLICT (height, witness) DO UPDATE SET line = EXCLUDED.line
            """)
    }

    // MARK: Reading

    public func pendingRecords() throws -> [PendingRecord] {
        let query: PostgresQuery = if let gateway {
            "SELECT record_id, envelope, owner FROM verity_ledger_pending WHERE gateway = \(gateway) ORDER BY written"
        } else {
            "SELECT record_id, envelope, owner FROM verity_ledger_pending ORDER BY written"
        }
        return try select("read pending records", query).map { row in
            let (id, envelope, owner) = try row.decode((String, Data, Data?).self)
            return PendingRecord(recordID: id, envelope: envelope, owner: owner)
        }
    }

    private func integratedSize(on connection: PostgresConnection) throws -> UInt64 {
        UInt64(try rows("SELECT size FROM verity_ledger_integrated WHERE id = 1", on: connection).first?.decode(Int64.self) ?? 0)
    }

    public func leafCount() throws -> UInt64 {
        try run("read the ledger's size") { try integratedSize(on: $0) }
    }

    public func sequencedCount() throws -> UInt64 {
        UInt64(try select("read the ledger's sequence", "SELECT next FROM verity_ledger_sequence WHERE id = 1").first?.decode(Int64.self) ?? 0)
    }

    public func treeEdge() throws -> TreeEdge {
        try run("read the tree's edge") { connection in
            // One snapshot: the size and its tiles as of the same moment.
            _ = try connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger).wait()
            defer { _ = try? connection.query("COMMIT", logger: logger).wait() }
            let size = try integratedSize(on: connection)
            return try TreeEdge(size: size) { try tile($0, on: connection) }
        }
    }

    private func tile(_ key: TileKey, on connection: PostgresConnection) throws -> Data? {
        try rows("SELECT hashes FROM verity_ledger_tiles WHERE level = \(Int32(key.level)) AND idx = \(Int64(key.index))",
                 on: connection).first?.decode(Data.self)
    }

    public func tile(_ key: TileKey) throws -> Data? {
        try run("read \(key)") { try tile(key, on: $0) }
    }

    public func blockCount() throws -> UInt64 {
        UInt64(try select("count blocks", "SELECT count(*) FROM verity_ledger_blocks").first?.decode(Int64.self) ?? 0)
    }

    public func block(height: UInt64) throws -> StoredBlock? {
        try select("read block \(height)", "SELECT note FROM verity_ledger_blocks WHERE height = \(Int64(height))").first.map {
            StoredBlock(height: height, note: try $0.decode(String.self))
        }
    }

    public func blocks() throws -> [StoredBlock] {
        try select("read blocks", "SELECT height, note FROM verity_ledger_blocks ORDER BY height").map { row in
            let (height, note) = try row.decode((Int64, String).self)
            return StoredBlock(height: UInt64(height), note: note)
        }
    }

    private static func leaf(_ row: PostgresRow) throws -> StoredLeaf {
        let (index, id, envelope, hash, owner) = try row.decode((Int64, String, Data, Data, Data?).self)
        return StoredLeaf(index: UInt64(index), recordID: id, envelope: envelope, leafHash: hash, owner: owner)
    }

    public func leaves() throws -> [StoredLeaf] {
        var all: [StoredLeaf] = []
        try forEachLeaf { all.append($0) }
        return all
    }

    /// The integrated leaves, a page at a time.
    public func forEachLeaf(_ body: (StoredLeaf) throws -> Void) throws {
        let size = try leafCount()
        var next: UInt64 = 0
        while next < size {
            let page = try leaves(from: next, limit: Int(min(4096, size - next)))
            guard let last = page.last else { return }
            for leaf in page { try body(leaf) }
            next = last.index + 1
        }
    }

    /// Up to `limit` integrated leaves from `start`.
    public func leaves(from start: UInt64, limit: Int) throws -> [StoredLeaf] {
        try run("read leaves") { connection in
            let size = try integratedSize(on: connection)
            return try rows("""
                SELECT idx, record_id, envelope, leaf_hash, owner FROM verity_ledger_leaves
                WHERE idx >= \(Int64(start)) AND idx < \(Int64(size)) ORDER BY idx LIMIT \(Int64(limit))
                """, on: connection).map(Self.leaf)
        }
    }

    /// The leaf of a record, integrated or only sequenced.
    public func leaf(recordID: String) throws -> StoredLeaf? {
        try select("read record \(recordID)", """
            SELECT idx, record_id, envelope, leaf_hash, owner FROM verity_ledger_leaves WHERE record_id = \(recordID)
            """).first.map(Self.leaf)
    }

    public func leaves(owner: Data) throws -> [StoredLeaf] {
        try select("list an owner's records", """
            SELECT idx, record_id, envelope, leaf_hash, owner FROM verity_ledger_leaves WHERE owner = \(owner) ORDER BY idx
            """).map(Self.leaf)
    }

    public func cosignatures(height: UInt64) throws -> [String: String] {
        var lines: [String: String] = [:]
        for row in try select("read cosignatures", "SELECT witness, line FROM verity_ledger_cosignatures WHERE height = \(Int64(height))") {
            let (witness, line) = try row.decode((String, String).self)
            lines[witness] = line
        }
        return lines
    }

    public func lastCosignedHeights() throws -> [String: UInt64] {
        var last: [String: UInt64] = [:]
        for row in try select("read cosignatures", "SELECT witness, max(height) FROM verity_ledger_cosignatures GROUP BY witness") {
            let (witness, height) = try row.decode((String, Int64).self)
            last[witness] = UInt64(height)
        }
        return last
    }

    public func latestHeight(cosignedBy witnesses: [String], threshold: Int) throws -> UInt64? {
        guard !witnesses.isEmpty else { return nil }
        return try select("read cosignatures", """
            SELECT height FROM verity_ledger_cosignatures WHERE witness = ANY(\(witnesses))
            GROUP BY height HAVING count(*) >= \(Int64(threshold)) ORDER BY height DESC LIMIT 1
            """).first.map { UInt64(try $0.decode(Int64.self)) }
    }
}

/// A PostgreSQL server and database, from a `postgres://` (or `postgresql://`) URL.
public struct PostgresLocation: Sendable {
    public var host: String
    public var port: Int
    /// A directory holding the server's Unix socket (`?host=/run/postgresql`), instead of TCP.
    public var socketDirectory: String?
    public var user: String
    public var password: String?
    public var database: String
    /// `disable` (the default) or `require` (TLS, with the server's certificate verified).
    public var tls: Bool

    /// Parses a URL.
    /// - Throws: ``LedgerError/Code/invalidValue`` naming what is wrong.
    public init(url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql" else {
            throw LedgerError(.invalidValue, "a ledger database is a postgres:// URL (postgres://user:password@host:5432/database)")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        let known: Set = ["sslmode", "host", "port", "user", "password"]
        if let unknown = query.keys.first(where: { !known.contains($0) }) {
            throw LedgerError(.invalidValue, "postgres:// URL: unknown parameter \(unknown) (known: \(known.sorted().joined(separator: ", ")))")
        }
        host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
        port = components.port ?? query["port"].flatMap(Int.init) ?? 5432
        guard (1...65535).contains(port) else { throw LedgerError(.invalidValue, "postgres:// URL: port \(port) is out of range") }
        if let dir = query["host"], dir.hasPrefix("/") { socketDirectory = dir }
        user = components.user.flatMap { $0.removingPercentEncoding } ?? query["user"]
            ?? ProcessInfo.processInfo.environment["PGUSER"] ?? "postgres"
        password = components.password.flatMap { $0.removingPercentEncoding } ?? query["password"]
            ?? ProcessInfo.processInfo.environment["PGPASSWORD"]
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.isEmpty, !path.contains("/") else {
            throw LedgerError(.invalidValue, "postgres:// URL: name the database (postgres://host/DATABASE)")
        }
        database = path.removingPercentEncoding ?? path
        switch query["sslmode"] ?? "disable" {
        case "disable": tls = false
        case "require", "verify-full": tls = true
        case let other: throw LedgerError(.invalidValue, "postgres:// URL: sslmode \(other) is not supported (disable, require)")
        }
    }

    /// The URL without its password, for messages.
    public var redacted: String {
        "postgres://\(user)@" + (socketDirectory.map { "[\($0)]" } ?? "\(host):\(port)") + "/\(database)"
    }

    var configuration: PostgresConnection.Configuration {
        get throws {
            if let socketDirectory {
                return .init(unixSocketPath: socketDirectory + "/.s.PGSQL.\(port)", username: user, password: password, database: database)
            }
            let tlsMode: PostgresConnection.Configuration.TLS
            if tls {
                do { tlsMode = .require(try NIOSSLContext(configuration: .makeClientConfiguration())) } catch {
                    throw LedgerError(.storage, "cannot set up TLS for PostgreSQL", cause: error)
                }
            } else {
                tlsMode = .disable
            }
            return .init(host: host, port: port, username: user, password: password, database: database, tls: tlsMode)
        }
    }
}
