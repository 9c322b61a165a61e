import Foundation
import GRDB
import Synchronization

/// A ``LedgerStore`` in an SQLite database file, through GRDB.
///
/// Durability: the database runs in WAL mode with `synchronous = FULL`, so every append is
/// fsynced to the WAL before `append` returns: nothing acknowledged is lost on a crash or power
/// failure. Writes go through one serial `DatabaseQueue`.
///
/// Schema (migrations `v1` to `v4`):
/// ```
/// leaves(idx INTEGER PRIMARY KEY, record_id TEXT NOT NULL UNIQUE, envelope BLOB NOT NULL,
///        leaf_hash BLOB NOT NULL)
/// blocks(height INTEGER PRIMARY KEY, note TEXT NOT NULL)
/// record_owners(record_id TEXT PRIMARY KEY, owner BLOB NOT NULL)   -- v2, indexed by owner
/// pending_records(record_id TEXT PRIMARY KEY, envelope, owner, written)   -- v3
/// tiles(level INTEGER, idx INTEGER, hashes BLOB, PRIMARY KEY (level, idx))   -- v4
/// ```
/// `record_owners` holds ``StoredLeaf/owner``, written in the leaf's transaction; a leaf without
/// an owner has no row. It is outside the Merkle leaf, so ``LedgerAudit`` does not read it.
/// `tiles` holds the tree as C2SP hash tiles (``TreeEdge``), written in the leaves' transaction:
/// a full tile once, the rightmost tile of each level replaced as it grows. Migration `v4` builds
/// them for a ledger written before, and gives its version-1 leaves without an owner row the
/// owner their envelope names (its first recipient, the sender), so listings need no scan.
/// Triggers refuse `UPDATE` and `DELETE` on the log's tables, and any tile update that does not
/// extend the tile. They stop mistakes, not an attacker with the file; ``LedgerAudit`` is what
/// finds tampering.
public final class SQLiteLedgerStore: LedgerStore {
    private let queue: DatabaseQueue
    /// Whether the database has `record_owners`: a read-only store on a ledger last written
    /// before migration `v2` has not, and reads no owners.
    private let hasOwners: Bool
    /// The stored tree's right edge, extended with every commit; nil for a read-only store, which
    /// reads it afresh (a server may be writing). Held across each write transaction, so it always
    /// matches what is committed.
    private let edge: Mutex<TreeEdge?>
    /// Whether the database has `tiles`: a read-only store on a ledger last written before
    /// migration `v4` has not.
    private let hasTilesTable: Bool
    /// Whether the database has `cosignatures` (migration `v5`).
    private let hasCosignatures: Bool

    /// Opens (creating if needed) the ledger database at `path` and migrates it.
    /// - Throws: ``LedgerError/Code/storage`` if the file cannot be opened or migrated.
    public init(path: String) throws {
        do {
            queue = try Self.openDurable(path: path, busyTimeout: nil)
            try Self.migrator.migrate(queue)
            hasOwners = true
            hasTilesTable = true
            hasCosignatures = true
            edge = Mutex(try queue.read { try Self.readEdge($0) })
        } catch let error as LedgerError {
            throw error
        } catch {
            throw LedgerError(.storage, "cannot open the ledger database at \(path)", cause: error)
        }
    }

    /// A database queue in WAL mode with full sync: a committed transaction is on disk.
    public static func openDurable(path: String, busyTimeout: TimeInterval?) throws -> DatabaseQueue {
        var configuration = Configuration()
        if let busyTimeout { configuration.busyMode = .timeout(busyTimeout) }
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.writeWithoutTransaction { db in
            // DatabaseQueue defaults to a rollback journal; the ledger wants WAL.
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
        }
        return queue
    }

    /// Opens an existing ledger database for reading only, without migrating it: for auditing
    /// and reading a ledger that a running server may be writing to.
    /// - Throws: ``LedgerError/Code/storage`` if the file cannot be opened or holds no ledger.
    public init(readingAt path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw LedgerError(.storage, "no ledger database at \(path)")
        }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
            let tables = try queue.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
            guard tables.contains("leaves"), tables.contains("blocks") else {
                throw LedgerError(.storage, "\(path) is not a ledger database (no leaves and blocks tables)")
            }
            hasOwners = tables.contains("record_owners")
            hasTilesTable = tables.contains("tiles")
            hasCosignatures = tables.contains("cosignatures")
            edge = Mutex(nil)
        } catch let error as LedgerError {
            throw error
        } catch {
            throw LedgerError(.storage, "cannot open the ledger database at \(path)", cause: error)
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE leaves (
                    idx INTEGER PRIMARY KEY,
                    record_id TEXT NOT NULL UNIQUE,
                    envelope BLOB NOT NULL,
                    leaf_hash BLOB NOT NULL
                );
                CREATE TABLE blocks (
                    height INTEGER PRIMARY KEY,
                    note TEXT NOT NULL
                );
                CREATE TRIGGER leaves_no_update BEFORE UPDATE ON leaves BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
                CREATE TRIGGER leaves_no_delete BEFORE DELETE ON leaves BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
                CREATE TRIGGER blocks_no_update BEFORE UPDATE ON blocks BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
                CREATE TRIGGER blocks_no_delete BEFORE DELETE ON blocks BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
                """)
        }
        migrator.registerMigration("v2") { db in
            try db.execute(sql: """
                CREATE TABLE record_owners (
                    record_id TEXT PRIMARY KEY,
                    owner BLOB NOT NULL
                );
                CREATE INDEX record_owners_by_owner ON record_owners(owner);
                CREATE TRIGGER record_owners_no_update BEFORE UPDATE ON record_owners BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
                CREATE TRIGGER record_owners_no_delete BEFORE DELETE ON record_owners BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
                """)
        }
        migrator.registerMigration("v3") { db in
            // Records written ahead of their answers; not part of the log (see PendingRecord).
            try db.execute(sql: """
                CREATE TABLE pending_records (
                    record_id TEXT PRIMARY KEY,
                    envelope BLOB NOT NULL,
                    owner BLOB,
                    written INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v4") { db in
            try db.execute(sql: """
                CREATE TABLE tiles (
                    level INTEGER NOT NULL,
                    idx INTEGER NOT NULL,
                    hashes BLOB NOT NULL,
                    PRIMARY KEY (level, idx)
                );
                CREATE TRIGGER tiles_only_grow BEFORE UPDATE ON tiles
                WHEN NOT (NEW.level = OLD.level AND NEW.idx = OLD.idx AND length(NEW.hashes) > length(OLD.hashes)
                          AND substr(NEW.hashes, 1, length(OLD.hashes)) = OLD.hashes)
                BEGIN SELECT RAISE(ABORT, 'a tile only grows'); END;
                CREATE TRIGGER tiles_no_delete BEFORE DELETE ON tiles BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
                """)
            // The tiles of the leaves already stored, a page at a time.
            var edge = TreeEdge()
            var changed: [TileKey: Data] = [:]
            let leaves = try Row.fetchCursor(db, sql: "SELECT idx, record_id, envelope, leaf_hash FROM leaves ORDER BY idx")
            var expected: Int64 = 0
            while let row = try leaves.next() {
                let index: Int64 = row["idx"]
                guard index == expected else {
                    throw LedgerError(.tampered, "cannot build tiles: leaf \(expected) is missing (found \(index)); run verity ledger verify")
                }
                expected += 1
                changed.merge(edge.append(leafHashes: [row["leaf_hash"] as Data])) { _, new in new }
                if changed.count >= 1024 {
                    try Self.write(tiles: changed, db)
                    changed = [:]
                }
                // Version-1 leaves from before owners were stored: their envelope names the sender.
                let recordID: String = row["record_id"]
                if try Bool.fetchOne(db, sql: "SELECT 1 FROM record_owners WHERE record_id = ?", arguments: [recordID]) == nil,
                   let envelope = try? RecordEnvelope(canonicalBytes: row["envelope"] as Data), envelope.version == 1,
                   let owner = envelope.recipients.first?.keyID {
                    try db.execute(sql: "INSERT INTO record_owners (record_id, owner) VALUES (?, ?)", arguments: [recordID, owner])
                }
            }
            try Self.write(tiles: changed, db)
        }
        migrator.registerMigration("v5") { db in
            // Witness cosignatures of blocks (C2SP tlog-cosignature lines), kept beside the
            // blocks: a block's note and hash never change; its cosignatures arrive after it.
            try db.execute(sql: """
                CREATE TABLE cosignatures (
                    height INTEGER NOT NULL REFERENCES blocks(height),
                    witness TEXT NOT NULL,
                    line TEXT NOT NULL,
                    PRIMARY KEY (height, witness)
                );
                CREATE INDEX cosignatures_by_witness ON cosignatures(witness, height);
                """)
        }
        return migrator
    }

    /// Inserts tiles, or extends stored ones.
    private static func write(tiles: [TileKey: Data], _ db: Database) throws {
        for (key, hashes) in tiles.sorted(by: { $0.key < $1.key }) {
            try db.execute(sql: """
                INSERT INTO tiles (level, idx, hashes) VALUES (?, ?, ?)
                ON CONFLICT(level, idx) DO UPDATE SET hashes = excluded.hashes
                """, arguments: [key.level, Int64(bitPattern: key.index), hashes])
        }
    }

    /// The right edge of the stored tree: the leaf count and one tile per level.
    private static func readEdge(_ db: Database) throws -> TreeEdge {
        let size = UInt64(bitPattern: try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves") ?? 0)
        return try TreeEdge(size: size) { key in
            try Data.fetchOne(db, sql: "SELECT hashes FROM tiles WHERE level = ? AND idx = ?",
                              arguments: [key.level, Int64(bitPattern: key.index)])
        }
    }

    /// The journal mode in effect (`wal` once opened).
    public func journalMode() throws -> String {
        try wrap("read the journal mode") { try queue.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") ?? "" } }
    }

    public func append(_ leaf: StoredLeaf) throws {
        try append(contentsOf: [leaf])
    }

    /// Appends the leaves, and their owners, in one transaction: one WAL sync for all of them
    /// (group commit).
    public func append(contentsOf leaves: [StoredLeaf]) throws {
        try commit(pending: [], discarding: [], leaves: leaves)
    }

    /// One transaction, one WAL sync, for the pending records and the leaves of a group commit.
    public func commit(pending: [PendingRecord], discarding: [String], leaves: [StoredLeaf]) throws {
        guard !pending.isEmpty || !discarding.isEmpty || !leaves.isEmpty else { return }
        let what = leaves.first.map { "append leaves \($0.index)..<\($0.index + UInt64(leaves.count))" } ?? "write \(pending.count) pending records"
        try wrap(what) {
            try edge.withLock { edge in
                guard var next = edge else { throw LedgerError(.storage, "this ledger is open read-only") }
                try queue.write { db in
                    for record in pending {
                        try db.execute(sql: """
                            INSERT INTO pending_records (record_id, envelope, owner, written)
                            VALUES (?, ?, ?, (SELECT COALESCE(MAX(written) + 1, 0) FROM pending_records))
                            ON CONFLICT(record_id) DO UPDATE SET envelope = excluded.envelope
                            """, arguments: [record.recordID, record.envelope, record.owner])
                    }
                    for id in discarding {
                        try db.execute(sql: "DELETE FROM pending_records WHERE record_id = ?", arguments: [id])
                    }
                    // MAX on the rowid is a b-tree lookup; COUNT(*) would scan the table on every append.
                    var index = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves") ?? 0
                    guard UInt64(bitPattern: index) == next.size else {
                        throw LedgerError(.storage, "the tiles cover \(next.size) leaves but \(index) are stored")
                    }
                    for leaf in leaves {
                        guard Int64(bitPattern: leaf.index) == index else {
                            throw LedgerError(.storage, "leaf index \(leaf.index) is not the next index \(index)")
                        }
                        if try Bool.fetchOne(db, sql: "SELECT 1 FROM leaves WHERE record_id = ?", arguments: [leaf.recordID]) != nil {
                            throw LedgerError(.duplicateRecord, "record \(leaf.recordID) is already in the log")
                        }
                        try db.execute(
                            sql: "INSERT INTO leaves (idx, record_id, envelope, leaf_hash) VALUES (?, ?, ?, ?)",
                            arguments: [Int64(bitPattern: leaf.index), leaf.recordID, leaf.envelope, leaf.leafHash]
                        )
                        if let owner = leaf.owner {
                            try db.execute(sql: "INSERT INTO record_owners (record_id, owner) VALUES (?, ?)", arguments: [leaf.recordID, owner])
                        }
                        try db.execute(sql: "DELETE FROM pending_records WHERE record_id = ?", arguments: [leaf.recordID])
                        index += 1
                    }
                    if !leaves.isEmpty { try Self.write(tiles: next.append(leafHashes: leaves.map(\.leafHash)), db) }
                }
                edge = next
            }
        }
    }

    public func appendBlock(_ block: StoredBlock) throws {
        try wrap("append block \(block.height)") {
            try queue.write { db in
                let next = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(height) + 1, 0) FROM blocks") ?? 0
                guard Int64(bitPattern: block.height) == next else {
                    throw LedgerError(.storage, "block height \(block.height) is not the next height \(next)")
                }
                try db.execute(sql: "INSERT INTO blocks (height, note) VALUES (?, ?)", arguments: [Int64(bitPattern: block.height), block.note])
            }
        }
    }

    public func leafCount() throws -> UInt64 {
        try wrap("count leaves") {
            UInt64(bitPattern: try queue.read { try Int64.fetchOne($0, sql: "SELECT COALESCE(MAX(idx) + 1, 0) FROM leaves") ?? 0 })
        }
    }

    public func treeEdge() throws -> TreeEdge {
        if let edge = edge.withLock({ $0 }) { return edge }
        guard hasTilesTable else {
            throw LedgerError(.storage, "this ledger has no tiles yet: it was last written by an older Verity; start the server once to migrate it")
        }
        return try wrap("read the tree's right edge") { try queue.read { try Self.readEdge($0) } }
    }

    public func hasTiles() throws -> Bool { hasTilesTable }

    public func tile(_ key: TileKey) throws -> Data? {
        guard try hasTiles() else { return nil }
        return try wrap("read \(key)") {
            try queue.read {
                try Data.fetchOne($0, sql: "SELECT hashes FROM tiles WHERE level = ? AND idx = ?", arguments: [key.level, Int64(bitPattern: key.index)])
            }
        }
    }

    public func addCosignature(height: UInt64, witness: String, line: String) throws {
        try wrap("store a cosignature of block \(height)") {
            try queue.write { db in
                try db.execute(sql: """
                    INSERT INTO cosignatures (height, witness, line) VALUES (?, ?, ?)
                    ON CONFLICT(height, witness) DO UPDATE SET line = excluded.line
                    """, arguments: [Int64(clamping: height), witness, line])
            }
        }
    }

    public func cosignatures(height: UInt64) throws -> [String: String] {
        guard hasCosignatures else { return [:] }
        return try wrap("read the cosignatures of block \(height)") {
            try queue.read { db in
                Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT witness, line FROM cosignatures WHERE height = ?",
                                                                  arguments: [Int64(clamping: height)]).map { ($0["witness"], $0["line"]) })
            }
        }
    }

    public func lastCosignedHeights() throws -> [String: UInt64] {
        guard hasCosignatures else { return [:] }
        return try wrap("read the witnesses' last cosigned blocks") {
            try queue.read { db in
                Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT witness, MAX(height) AS h FROM cosignatures GROUP BY witness")
                    .map { ($0["witness"], UInt64(bitPattern: $0["h"])) })
            }
        }
    }

    public func latestHeight(cosignedBy witnesses: [String], threshold: Int) throws -> UInt64? {
        guard hasCosignatures, !witnesses.isEmpty else { return nil }
        return try wrap("read the latest cosigned block") {
            try queue.read { db in
                let marks = Array(repeating: "?", count: witnesses.count).joined(separator: ", ")
                return try Int64.fetchOne(db, sql: """
                    SELECT height FROM cosignatures WHERE witness IN (\(marks))
                    GROUP BY height HAVING COUNT(*) >= ? ORDER BY height DESC LIMIT 1
                    """, arguments: StatementArguments(witnesses) + StatementArguments([threshold])).map { UInt64(bitPattern: $0) }
            }
        }
    }

    public func blockCount() throws -> UInt64 {
        try wrap("count blocks") {
            UInt64(bitPattern: try queue.read { try Int64.fetchOne($0, sql: "SELECT COALESCE(MAX(height) + 1, 0) FROM blocks") ?? 0 })
        }
    }

    public func block(height: UInt64) throws -> StoredBlock? {
        try wrap("read block \(height)") {
            try queue.read { db in
                try Row.fetchOne(db, sql: "SELECT height, note FROM blocks WHERE height = ?", arguments: [Int64(clamping: height)]).map {
                    StoredBlock(height: UInt64(bitPattern: $0["height"]), note: $0["note"])
                }
            }
        }
    }

    /// Every leaf in storage order, a page of 512 at a time (no read is held while `body` runs,
    /// so it may read the store itself).
    public func forEachLeaf(_ body: (StoredLeaf) throws -> Void) throws {
        // Keyset pagination on the rowid: each page is a range seek (an OR in the condition
        // would make SQLite scan from the start for every page).
        var from = Int64.min, inclusive = true
        while true {
            let page = try wrap("read leaves") {
                try queue.read { db in
                    try Row.fetchAll(db, sql: "\(selectLeaves) WHERE l.idx \(inclusive ? ">=" : ">") ? ORDER BY l.idx LIMIT 512", arguments: [from])
                        .map { row -> (Int64, StoredLeaf) in (row["idx"], Self.leaf(row)) }
                }
            }
            guard let last = page.last else { return }
            for (_, leaf) in page { try body(leaf) }
            from = last.0
            inclusive = false
        }
    }

    public func leaves() throws -> [StoredLeaf] {
        try wrap("read leaves") {
            try queue.read { db in
                try Row.fetchAll(db, sql: "\(selectLeaves) ORDER BY l.idx").map(Self.leaf)
            }
        }
    }

    public func leaves(from start: UInt64, limit: Int) throws -> [StoredLeaf] {
        try wrap("read leaves from \(start)") {
            try queue.read { db in
                try Row.fetchAll(db, sql: "\(selectLeaves) WHERE l.idx >= ? ORDER BY l.idx LIMIT ?",
                                 arguments: [Int64(clamping: start), limit]).map(Self.leaf)
            }
        }
    }

    public func blocks() throws -> [StoredBlock] {
        try wrap("read blocks") {
            try queue.read { db in
                try Row.fetchAll(db, sql: "SELECT height, note FROM blocks ORDER BY height").map {
                    StoredBlock(height: UInt64(bitPattern: $0["height"]), note: $0["note"])
                }
            }
        }
    }

    public func leaf(recordID: String) throws -> StoredLeaf? {
        try wrap("read record \(recordID)") {
            try queue.read { db in
                try Row.fetchOne(db, sql: "\(selectLeaves) WHERE l.record_id = ?", arguments: [recordID])
                    .map(Self.leaf)
            }
        }
    }

    /// The leaves of one owner, in index order, through the owner index.
    public func leaves(owner: Data) throws -> [StoredLeaf] {
        guard hasOwners else { return [] }
        return try wrap("read the records of an owner") {
            try queue.read { db in
                try Row.fetchAll(db, sql: "\(selectLeaves) WHERE o.owner = ? ORDER BY l.idx", arguments: [owner]).map(Self.leaf)
            }
        }
    }

    /// The leaf columns, with the owner where the database has owners; `l` is `leaves`, `o` is
    /// `record_owners`.
    private var selectLeaves: String {
        hasOwners
            ? "SELECT l.idx, l.record_id, l.envelope, l.leaf_hash, o.owner FROM leaves l LEFT JOIN record_owners o ON o.record_id = l.record_id"
            : "SELECT l.idx, l.record_id, l.envelope, l.leaf_hash, NULL AS owner FROM leaves l"
    }

    public func pendingRecords() throws -> [PendingRecord] {
        try wrap("read pending records") {
            try queue.read { db in
                // A ledger opened read-only may predate the table.
                guard try db.tableExists("pending_records") else { return [] }
                return try Row.fetchAll(db, sql: "SELECT record_id, envelope, owner FROM pending_records ORDER BY written").map {
                    PendingRecord(recordID: $0["record_id"], envelope: $0["envelope"], owner: $0["owner"])
                }
            }
        }
    }

    private static func leaf(_ row: Row) -> StoredLeaf {
        StoredLeaf(index: UInt64(bitPattern: row["idx"]), recordID: row["record_id"], envelope: row["envelope"], leafHash: row["leaf_hash"],
                   owner: row["owner"])
    }

    private func wrap<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as LedgerError {
            throw error
        } catch {
            throw LedgerError(.storage, "cannot \(what)", cause: error)
        }
    }
}
