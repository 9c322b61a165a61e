import Foundation

/// One stored leaf: a record's envelope at its index in the log, and the gateway's private note
/// of whose record it is.
public struct StoredLeaf: Sendable, Hashable {
    /// The leaf index; leaves are stored at 0, 1, 2, … without gaps.
    public var index: UInt64
    /// The record id (unique in the log).
    public var recordID: String
    /// The envelope's canonical bytes (``RecordEnvelope/canonicalBytes()``).
    public var envelope: Data
    /// `RFC6962.leafHash(envelope)`, stored so readers need not re-hash.
    public var leafHash: Data
    /// Whose record this is: the ``RecipientKey/keyID`` (8 bytes) of the sender's recipient key,
    /// so the gateway can list an account's records, which version-2 envelopes do not reveal.
    /// Nil when unknown (leaves stored before owners were, leaves read from a public copy).
    ///
    /// The owner is private and not part of the leaf: it is not hashed, signed or audited, and
    /// must never be published with the log (it would link records to accounts again). Changing
    /// it changes only whose listing a record appears in.
    public var owner: Data?

    /// Creates a stored leaf.
    public init(index: UInt64, recordID: String, envelope: Data, leafHash: Data, owner: Data? = nil) {
        self.index = index
        self.recordID = recordID
        self.envelope = envelope
        self.leafHash = leafHash
        self.owner = owner
    }
}

/// One stored block: its height and signed note text.
public struct StoredBlock: Sendable, Hashable {
    /// The block height; blocks are stored at 0, 1, 2, … without gaps.
    public var height: UInt64
    /// The signed note text (``SignedNote/formatted``).
    public var note: String

    /// Creates a stored block.
    public init(height: UInt64, note: String) {
        self.height = height
        self.note = note
    }
}

/// A record written ahead of its answer, outside the log: sealed as the interaction would be
/// recorded if it ended now (finish reason `interrupted`, the response so far). It is replaced as
/// the answer grows, deleted in the transaction that appends the completed record's leaf, and
/// appended itself, as it is, by the node that finds it at start (the process died mid-answer).
/// A pending record is not in the tree, so nothing can prove it, and no receipt names it.
public struct PendingRecord: Sendable, Hashable {
    /// The record id (the completion's id).
    public var recordID: String
    /// The envelope's canonical bytes.
    public var envelope: Data
    /// The owner the leaf will have (see ``StoredLeaf/owner``).
    public var owner: Data?

    /// Creates a pending record.
    public init(recordID: String, envelope: Data, owner: Data? = nil) {
        self.recordID = recordID
        self.envelope = envelope
        self.owner = owner
    }
}

/// Append-only storage for the ledger's leaves, hash tiles and blocks, plus the records written
/// ahead of their answers.
///
/// Contract for implementations:
/// - `commit` and `appendBlock` return only once the rows are durable (for a database: committed
///   and synced), so nothing acknowledged is lost;
/// - a leaf's ``StoredLeaf/owner``, if any, is stored in the same transaction as the leaf and
///   returned with it by every reader;
/// - the hash tiles (C2SP tlog-tiles: ``TileKey``, ``TreeEdge``) cover exactly the stored leaves:
///   a commit that appends leaves writes the tiles they change in the same transaction, so the
///   tree never has to be rebuilt from the leaves;
/// - they reject a leaf whose index is not the current leaf count, a duplicate record id, and a
///   block whose height is not the current block count (``LedgerError/Code/storage`` or
///   ``LedgerError/Code/duplicateRecord``);
/// - leaves and blocks are never updated or deleted; a tile only grows, from partial to full;
///   pending records are replaced and deleted, and appending a leaf deletes the pending record of
///   the same id in the same transaction;
/// - readers return rows in storage order, which ``LedgerAudit`` checks against the indices.
public protocol LedgerStore: Sendable {
    /// Appends a leaf durably.
    func append(_ leaf: StoredLeaf) throws
    /// Appends consecutive leaves durably and atomically: all of them or none.
    func append(contentsOf leaves: [StoredLeaf]) throws
    /// In one durable transaction: writes (or replaces) the pending records, deletes those
    /// named in `discarding`, then appends the leaves as ``append(contentsOf:)`` does, deleting
    /// each leaf's pending record, and writes the tiles they change. All of it or none.
    func commit(pending: [PendingRecord], discarding: [String], leaves: [StoredLeaf]) throws
    /// The pending records, oldest write first.
    func pendingRecords() throws -> [PendingRecord]
    /// Appends a block durably.
    func appendBlock(_ block: StoredBlock) throws
    /// The number of leaves, without reading them.
    func leafCount() throws -> UInt64
    /// The right edge of the stored tree (its size is ``leafCount()``), without reading the leaves.
    func treeEdge() throws -> TreeEdge
    /// The stored bytes of a hash tile: full, or the rightmost partial tile as it now is; nil if
    /// there is none.
    func tile(_ key: TileKey) throws -> Data?
    /// Whether the store keeps hash tiles (a ledger opened read-only before its first start with
    /// a tiling version has none).
    func hasTiles() throws -> Bool
    /// The number of blocks.
    func blockCount() throws -> UInt64
    /// The block at `height`, if any.
    func block(height: UInt64) throws -> StoredBlock?
    /// All leaves, in storage order.
    func leaves() throws -> [StoredLeaf]
    /// Calls `body` with every leaf in storage order, holding only one page in memory.
    func forEachLeaf(_ body: (StoredLeaf) throws -> Void) throws
    /// All blocks, in storage order.
    func blocks() throws -> [StoredBlock]
    /// The leaf with this record id, if any.
    func leaf(recordID: String) throws -> StoredLeaf?
    /// Up to `limit` leaves with index `start` or more, in index order (a page of the log).
    func leaves(from start: UInt64, limit: Int) throws -> [StoredLeaf]
    /// The leaves whose ``StoredLeaf/owner`` is `owner`, in index order.
    func leaves(owner: Data) throws -> [StoredLeaf]
    /// Stores, durably, a witness's cosignature line (``SignedNote/Signature``, formatted) on the
    /// block at `height`; `witness` is its verifier key text. Replaces an earlier one by the same
    /// witness on the same block.
    func addCosignature(height: UInt64, witness: String, line: String) throws
    /// The cosignature lines stored for the block at `height`, by witness verifier key.
    func cosignatures(height: UInt64) throws -> [String: String]
    /// The highest block height each witness cosigned, by witness verifier key.
    func lastCosignedHeights() throws -> [String: UInt64]
    /// The highest block cosigned by at least `threshold` of `witnesses` (verifier keys), if any.
    func latestHeight(cosignedBy witnesses: [String], threshold: Int) throws -> UInt64?

    // MARK: Shared stores (several processes append to one log)

    /// Whether other processes append to this log too (a database several gateways share). Then
    /// the store, not the node, assigns leaf indices (``sequence(pending:discarding:leaves:)``),
    /// and the tree covers the sequenced leaves only once the leader integrates them
    /// (``integrate(limit:)``): ``leafCount()`` and ``treeEdge()`` are the integrated size, and
    /// readers of whole leaves (``forEachLeaf(_:)``, ``leaves(from:limit:)``) stop there.
    var isShared: Bool { get }
    /// Commits as ``commit(pending:discarding:leaves:)`` does, but in a shared store assigns the
    /// leaves' indices itself, contiguously, in the same transaction (the `index` of each given
    /// leaf is ignored). The tiles are not written: the leader integrates the leaves later.
    /// - Returns: The index given to the first leaf (the next index if there are none).
    func sequence(pending: [PendingRecord], discarding: [String], leaves: [StoredLeaf]) throws -> UInt64
    /// Whether this process leads the shared log: only the leader integrates and seals. A leader
    /// stays one until its connection to the store is lost. Always true for a store that is not
    /// shared.
    func tryLead() throws -> Bool
    /// The leader's step: extends the tiles over up to `limit` sequenced leaves that the tree does
    /// not cover yet, in one transaction.
    /// - Returns: The edge of the tree now stored.
    func integrate(limit: Int) throws -> TreeEdge
    /// The number of leaves sequenced, integrated or not.
    func sequencedCount() throws -> UInt64
    /// The leader's step in a shared store: appends (sequences) up to `limit` pending records of
    /// processes that are no longer running, as they are, and deletes them.
    /// - Returns: How many it appended.
    func adoptOrphans(limit: Int) throws -> Int
}

extension LedgerStore {
    /// A page of ``leaves()``; stores that can seek override it.
    public func leaves(from start: UInt64, limit: Int) throws -> [StoredLeaf] {
        Array(try leaves().lazy.filter { $0.index >= start }.prefix(limit))
    }

    /// The leaves of one owner, by a scan of ``leaves()``; stores with an index override it.
    public func leaves(owner: Data) throws -> [StoredLeaf] {
        try leaves().filter { $0.owner == owner }
    }

    /// Every leaf through ``leaves()``; stores that can page override it.
    public func forEachLeaf(_ body: (StoredLeaf) throws -> Void) throws {
        for leaf in try leaves() { try body(leaf) }
    }

    public func hasTiles() throws -> Bool { true }

    public func addCosignature(height: UInt64, witness: String, line: String) throws {
        throw LedgerError(.storage, "this store keeps no cosignatures")
    }

    public func cosignatures(height: UInt64) throws -> [String: String] { [:] }

    public func lastCosignedHeights() throws -> [String: UInt64] { [:] }

    public func latestHeight(cosignedBy witnesses: [String], threshold: Int) throws -> UInt64? { nil }

    public var isShared: Bool { false }

    public func sequence(pending: [PendingRecord], discarding: [String], leaves: [StoredLeaf]) throws -> UInt64 {
        let first = try leafCount()
        try commit(pending: pending, discarding: discarding, leaves: leaves)
        return first
    }

    public func tryLead() throws -> Bool { true }

    public func integrate(limit: Int) throws -> TreeEdge { try treeEdge() }

    public func sequencedCount() throws -> UInt64 { try leafCount() }

    public func adoptOrphans(limit: Int) throws -> Int { 0 }
}
