import Foundation
import Ledger
import LedgerPostgres
import Logging
import Synchronization

/// How a node keeps its ledger.
public struct LedgerConfiguration: Sendable {
    /// Where the ledger, the account registry and the node key live.
    public var dataDirectory = DataDirectory(path: DataDirectory.defaultPath)
    /// GPU, provider and price recorded with every interaction (nil: detect the GPU, provider
    /// "none", price 0).
    public var worker: WorkerInfo?
    /// An auditor's X25519 public key: every record is also sealed to it.
    public var auditorKey: RecipientKey?
    /// A block is sealed this often (when records arrived since the last one)…
    public var sealInterval: Duration = .seconds(1)
    /// …and as soon as this many records are unsealed (nil: only on the interval).
    public var sealRecords: Int?
    /// Below this many free bytes on the data directory's file system, new interactions are
    /// refused before they start (their records might not fit).
    public var minFreeBytes: Int64 = 64 << 20
    /// How often an answer being made has its write-ahead record brought up to date (so that,
    /// after a crash, about this much of an answer a client saw is lost at most).
    public var partialFlushInterval: Duration = .seconds(1)
    /// Completed records kept in memory when storage refuses them, retried every seal interval;
    /// beyond this many, the oldest is dropped (its write-ahead record remains, and is recovered
    /// as interrupted).
    public var spoolLimit = 4096
    /// Witnesses asked to cosign every block (C2SP tlog-witness), and how many of them must
    /// cosign one before it is published (0: no witnesses, every block is published as signed).
    public var witnesses: [any CheckpointWitness] = []
    public var witnessThreshold = 0
    public init() {}
}

/// The node's side of the ledger. Every interaction is recorded in two steps:
///
/// 1. ``begin(_:sender:)``, before the answer's first token: a *write-ahead* record, sealed as the
///    interaction would be recorded if it ended now (finish reason `interrupted`), is made durable
///    outside the log (``PendingRecord``). ``update(_:_:)`` replaces it as the answer grows.
/// 2. ``complete(_:_:)``: the finished record is appended as a leaf, and the write-ahead record
///    deleted, in one transaction.
///
/// A process that dies between the two leaves the write-ahead record, which ``prepare()`` appends
/// at the next start. A completed record that storage refuses is spooled in memory and retried;
/// ``health`` says so. Writes are group-committed: one transaction and one fsync for everything
/// that arrives while the previous commit syncs. The appender also seals blocks, answers receipt
/// waits, and lists each account's records; the server runs it as a service, the CLI's ledger
/// commands read the data directory without it.
public final class LedgerAppender: Sendable {
    /// A record in an account's listing.
    public struct Listed: Sendable {
        public var recordID: String
        public var leafIndex: UInt64
        public var leafHash: Data
        public var timestampMilliseconds: Int64
    }

    /// An interaction being recorded: who its records are sealed to, and whose they are.
    public struct Entry: Sendable {
        public let recordID: String
        let recipients: [RecipientKey]
        /// The sender's recipient key id (the owner stored beside the leaf).
        let owner: Data
    }

    struct Queued {
        var write: LedgerNode.Write
        var continuation: CheckedContinuation<LedgerNode.Appended?, any Error>?
    }

    struct State {
        var sealedSize: UInt64 = 0
        /// The log's size as far as this appender has appended (for the unpublished count).
        var appendedSize: UInt64 = 0
        var waiters: [(index: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
        /// Writes waiting for the next group commit, and whether a commit loop is running.
        var queue: [Queued] = []
        var committing = false
        /// Completed records storage refused, oldest first, with their owners and times.
        var spool: [(envelope: RecordEnvelope, owner: Data, timestamp: Int64)] = []
        var writeFailures = 0
        var lastFailure: String?
        /// False from a failed write until the next one that succeeds.
        var writable = true
        /// Refusing new interactions for lack of space (logged once when it starts).
        var refusing = false
        /// Whether this gateway led the shared log at the last seal.
        var leading = true
    }

    public let node: LedgerNode
    public let registry: AccountRegistry
    public let worker: WorkerInfo
    public let nodeID: String
    public let logger: Logger
    let directory: DataDirectory
    public let configuration: LedgerConfiguration
    private let operatorKey: RecipientKey
    let state = Mutex(State())
    let witnessState = Mutex(WitnessState())

    /// Opens the ledger in the data directory, creating what is missing (directory, node key,
    /// operator account, databases), and re-verifies it. `store` replaces the directory's
    /// SQLite ledger (for tests that inject storage faults).
    /// - Throws: ``LedgerError`` if the directory is in use, unreadable, or the stored ledger does
    ///   not verify under the node key.
    public init(configuration: LedgerConfiguration, logger: Logger, store: (any LedgerStore)? = nil) throws {
        let directory = configuration.dataDirectory
        try directory.create()
        try directory.lock()
        // A new key only for a new ledger: an existing one without its key must not be re-keyed.
        let signer: NoteSigner
        let ledgerStore: any LedgerStore
        if let store {
            signer = try directory.nodeSigner(create: !directory.hasLedger)
            ledgerStore = store
        } else if let url = directory.database {
            // PostgreSQL, shared by several gateways (``PostgresLedgerStore``). Every gateway of
            // one log needs the same node key (`node.key`).
            let shared = try PostgresLedgerStore(url: url, gateway: try directory.gatewayID(), logger: logger)
            let claimed = try shared.meta("node_key")
            if let claimed, !FileManager.default.fileExists(atPath: directory.nodeKeyPath) {
                throw LedgerError(.notFound, "the ledger in \(shared.location.redacted) is signed by \(claimed); this gateway has no node key: "
                                  + "copy node.key from the first gateway's data directory into \(directory.path)")
            }
            signer = try directory.nodeSigner(create: claimed == nil)
            // The first gateway fixes the log's key; every other one must hold the same.
            let owner = try shared.claim("node_key", value: signer.verifier.verifierKey)
            guard owner == signer.verifier.verifierKey else {
                throw LedgerError(.tampered, "the ledger in \(shared.location.redacted) is signed by \(owner), not by this gateway's node key "
                                  + "\(signer.verifier.verifierKey): every gateway of one log needs the same node.key "
                                  + "(copy it from the first gateway's data directory into \(directory.path))")
            }
            ledgerStore = shared
        } else {
            signer = try directory.nodeSigner(create: !directory.hasLedger)
            ledgerStore = try SQLiteLedgerStore(path: directory.ledgerPath)
        }
        registry = try directory.registry()
        operatorKey = try directory.operatorAccount(create: true).recipientKey
        let policy = configuration.witnesses.isEmpty ? nil
            : try WitnessPolicy(witnesses: configuration.witnesses.map(\.verifier), threshold: configuration.witnessThreshold)
        node = try LedgerNode(store: ledgerStore, signer: signer, witnessPolicy: policy)
        nodeID = signer.name
        worker = configuration.worker ?? WorkerInfo(gpu: WorkerInfo.detectGPU())
        self.directory = directory
        self.configuration = configuration
        self.logger = logger
        // A gateway of a shared log leads only once it has taken the lock (and says so then).
        state.withLock { $0.leading = !ledgerStore.isShared }
    }

    /// Appends the write-ahead records a previous process left (answers it never finished) as
    /// interrupted records, then reads the sealed size; called once before serving. Nothing here
    /// reads the whole log: start-up takes the same time at any size.
    public func prepare() async throws {
        let orphans = try await node.pendingRecords()
        if !orphans.isEmpty {
            let envelopes = try orphans.map { (try RecordEnvelope(canonicalBytes: $0.envelope), $0.owner) }
            for result in await node.append(contentsOf: envelopes) { _ = try result.get() }
            logger.warning("ledger: recovered \(orphans.count) interrupted records (answers a previous process did not finish)")
        }
        let sealed = await node.publishedBlock?.treeSize ?? 0
        let size = await node.size
        state.withLock {
            $0.sealedSize = sealed
            $0.appendedSize = size
        }
        logger.info("ledger: \(size) records, \(sealed) sealed, node key \(node.verifier.verifierKey)")
    }

    // MARK: Recording

    /// Writes an interaction's record ahead of its answer and returns once it is durable.
    /// `record` is what to keep if the answer never ends: finish reason `interrupted`, the
    /// response empty.
    /// - Throws: ``LedgerError/Code/storage`` if storage is short of space (see
    ///   ``LedgerConfiguration/minFreeBytes``) or refuses the write; nothing may be answered then.
    public func begin(_ record: LedgerRecord, sender: Caller) async throws -> Entry {
        if let free = directory.freeBytes(), free < configuration.minFreeBytes {
            let error = LedgerError(.storage, "only \(free) bytes are free on the data directory's file system; "
                                    + "\(configuration.minFreeBytes) are needed to start an interaction")
            // A refusal, not a failed write: storage itself is fine, and health recovers as soon
            // as space does.
            noteRefusal(error)
            throw error
        }
        var recipients: [RecipientKey]
        switch sender {
        case .account(let account): recipients = [account.recipientKey]
        case .anonymous: recipients = [operatorKey]
        }
        if let auditorKey = configuration.auditorKey, !recipients.contains(auditorKey) { recipients.append(auditorKey) }
        let entry = Entry(recordID: record.recordID, recipients: recipients, owner: recipients[0].keyID)
        let envelope = try RecordEnvelope.seal(record, to: recipients, nodeID: nodeID)
        do {
            _ = try await enqueue(.pending(envelope, owner: entry.owner), waiting: true)
        } catch {
            noteFailure(error, what: "could not write ahead \(record.recordID)")
            throw error
        }
        return entry
    }

    /// Replaces an interaction's write-ahead record with `record` (the answer so far, still
    /// `interrupted`), with the next group commit; does not wait. A failure is logged and
    /// counted: the previous write-ahead record stays.
    public func update(_ entry: Entry, _ record: LedgerRecord) {
        do {
            let envelope = try RecordEnvelope.seal(record, to: entry.recipients, nodeID: nodeID)
            Task { [self] in
                do { _ = try await enqueue(.pending(envelope, owner: entry.owner), waiting: true) } catch let error as LedgerError
                    where error.code == .duplicateRecord {
                    // The completed record got there first: nothing left to write ahead.
                } catch {
                    noteFailure(error, what: "could not update the write-ahead record of \(entry.recordID)")
                }
            }
        } catch {
            noteFailure(error, what: "could not seal \(entry.recordID)")
        }
    }

    /// Forgets an interaction's write-ahead record: it was refused before it started.
    public func discard(_ entry: Entry) {
        Task { [self] in _ = try? await enqueue(.discard(recordID: entry.recordID), waiting: true) }
    }

    /// Appends an interaction's completed record (deleting its write-ahead record) and returns
    /// once it is durable.
    /// - Throws: ``LedgerError`` if sealing or storing fails. The record is then spooled and
    ///   retried; the caller must not acknowledge the answer as recorded.
    public func complete(_ entry: Entry, _ record: LedgerRecord) async throws -> LedgerNode.Appended {
        let envelope = try RecordEnvelope.seal(record, to: entry.recipients, nodeID: nodeID)
        let appended: LedgerNode.Appended
        do {
            appended = try await enqueue(.leaf(envelope, owner: entry.owner), waiting: true)!
        } catch let error as LedgerError where error.code == .duplicateRecord {
            throw error
        } catch {
            spool(envelope, owner: entry.owner, timestamp: record.timestampMilliseconds)
            noteFailure(error, what: "could not record \(entry.recordID); spooled, to retry")
            throw error
        }
        let unsealed = unsealedCount(after: appended)
        if let limit = configuration.sealRecords, unsealed >= UInt64(limit) { _ = await seal() }
        return appended
    }

    /// How many records are unsealed, now that `appended` is in the log.
    func unsealedCount(after appended: LedgerNode.Appended) -> UInt64 {
        state.withLock { s in
            s.appendedSize = max(s.appendedSize, appended.leafIndex + 1)
            return appended.leafIndex < s.sealedSize ? 0 : appended.leafIndex + 1 - s.sealedSize
        }
    }

    // MARK: Group commit

    /// Queues a write for the next group commit: one transaction and one fsync for every write
    /// that arrives while the previous commit syncs, so concurrent requests do not queue behind
    /// one disk sync each. With `waiting`, returns once it is durable.
    func enqueue(_ write: LedgerNode.Write, waiting: Bool) async throws -> LedgerNode.Appended? {
        try await withCheckedThrowingContinuation { continuation in
            let start = state.withLock { s in
                s.queue.append(Queued(write: write, continuation: continuation))
                guard !s.committing else { return false }
                s.committing = true
                return true
            }
            if start { Task { await commitQueued() } }
        }
    }

    /// Commits queued writes group by group until none are left.
    private func commitQueued() async {
        while true {
            let group = state.withLock { s in
                let group = s.queue
                s.queue = []
                if group.isEmpty { s.committing = false }
                return group
            }
            guard !group.isEmpty else { return }
            let results = await node.commit(group.map(\.write))
            if results.contains(where: { if case .success = $0 { true } else { false } }) {
                state.withLock { $0.writable = true }
            }
            for (item, result) in zip(group, results) { item.continuation?.resume(with: result) }
        }
    }

    /// The records sealed to an account as their sender, oldest first: the leaves whose stored
    /// owner is its recipient key id (through the store's owner index, not a scan).
    /// - Throws: ``LedgerError`` if storage cannot be read.
    public func records(of account: AccountRegistry.RegisteredAccount) async throws -> [Listed] {
        try await node.leaves(owner: account.recipientKey.keyID).map { leaf in
            Listed(recordID: leaf.recordID, leafIndex: leaf.index, leafHash: leaf.leafHash,
                   timestampMilliseconds: try RecordEnvelope(canonicalBytes: leaf.envelope).timestampMilliseconds)
        }
    }
}
