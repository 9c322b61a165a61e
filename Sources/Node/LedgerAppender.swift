import Foundation
import Ledger
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
    public init() {}
}

/// The node's side of the ledger: turns finished interactions into sealed records appended to
/// the log (group commit: one fsync for all the records that arrive while the previous commit
/// syncs), seals blocks (``sealPeriodically(every:)`` and ``seal()``), answers receipt waits, and
/// lists each account's records. The server runs it as a service; the CLI's ledger commands read
/// the data directory without it.
public final class LedgerAppender: Sendable {
    /// A record in an account's listing.
    public struct Listed: Sendable {
        public var recordID: String
        public var leafIndex: UInt64
        public var leafHash: Data
        public var timestampMilliseconds: Int64
    }

    private struct State {
        /// Records by their sender's key id (the account's, or the operator's): a version-1
        /// envelope's first recipient, else the owner stored beside the leaf.
        var bySender: [Data: [Listed]] = [:]
        var sealedSize: UInt64 = 0
        var waiters: [(index: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
        /// Envelopes waiting for the next group commit, and whether a commit loop is running.
        var pending: [(envelope: RecordEnvelope, owner: Data, continuation: CheckedContinuation<LedgerNode.Appended, any Error>)] = []
        var committing = false
    }

    public let node: LedgerNode
    public let registry: AccountRegistry
    public let worker: WorkerInfo
    public let nodeID: String
    private let operatorKey: RecipientKey
    private let auditorKey: RecipientKey?
    private let sealInterval: Duration
    private let sealRecords: Int?
    public let logger: Logger
    private let state = Mutex(State())

    /// Opens the ledger in the data directory, creating what is missing (directory, node key,
    /// operator account, databases), and re-verifies it.
    /// - Throws: ``LedgerError`` if the directory is in use, unreadable, or the stored ledger does
    ///   not verify under the node key.
    public init(configuration: LedgerConfiguration, logger: Logger) throws {
        let directory = configuration.dataDirectory
        try directory.create()
        try directory.lock()
        // A new key only for a new ledger: an existing one without its key must not be re-keyed.
        let signer = try directory.nodeSigner(create: !directory.hasLedger)
        registry = try directory.registry()
        operatorKey = try directory.operatorAccount(create: true).recipientKey
        auditorKey = configuration.auditorKey
        node = try LedgerNode(store: try SQLiteLedgerStore(path: directory.ledgerPath), signer: signer)
        nodeID = signer.name
        worker = configuration.worker ?? WorkerInfo(gpu: WorkerInfo.detectGPU())
        sealInterval = configuration.sealInterval
        sealRecords = configuration.sealRecords
        self.logger = logger
    }

    /// Loads the account index and the sealed size; called once before serving.
    public func prepare() async throws {
        var bySender: [Data: [Listed]] = [:]
        var start: UInt64 = 0
        while true {
            let page = try await node.leaves(from: start, limit: 4096)
            for leaf in page {
                let envelope = try RecordEnvelope(canonicalBytes: leaf.envelope)
                guard let sender = envelope.recipients.first?.keyID ?? leaf.owner else { continue }
                bySender[sender, default: []].append(Listed(recordID: leaf.recordID, leafIndex: leaf.index, leafHash: leaf.leafHash,
                                                            timestampMilliseconds: envelope.timestampMilliseconds))
            }
            guard let last = page.last else { break }
            start = last.index + 1
        }
        let sealed = await node.latestBlock?.treeSize ?? 0
        let size = await node.size
        state.withLock {
            $0.bySender = bySender
            $0.sealedSize = sealed
        }
        logger.info("ledger: \(size) records, \(sealed) sealed, node key \(node.verifier.verifierKey)")
    }

    /// Seals and appends one interaction's record; returns once it is durable.
    /// - Throws: ``LedgerError`` if sealing or storing fails (the response must then fail too:
    ///   nothing is acknowledged that is not recorded).
    public func record(_ record: LedgerRecord, sender: Caller) async throws -> LedgerNode.Appended {
        var recipients: [RecipientKey]
        switch sender {
        case .account(let account): recipients = [account.recipientKey]
        case .anonymous: recipients = [operatorKey]
        }
        if let auditorKey, !recipients.contains(auditorKey) { recipients.append(auditorKey) }
        let envelope = try RecordEnvelope.seal(record, to: recipients, nodeID: nodeID)
        let appended = try await append(envelope, owner: recipients[0].keyID)
        let unsealed = state.withLock { s in
            s.bySender[recipients[0].keyID, default: []].append(Listed(
                recordID: appended.recordID, leafIndex: appended.leafIndex, leafHash: appended.leafHash,
                timestampMilliseconds: record.timestampMilliseconds))
            return appended.leafIndex < s.sealedSize ? 0 : appended.leafIndex + 1 - s.sealedSize
        }
        if let sealRecords, unsealed >= UInt64(sealRecords) { await seal() }
        return appended
    }

    /// Appends an envelope durably, together with whatever other requests' envelopes arrive
    /// while the previous commit syncs: one transaction and one fsync per group, so concurrent
    /// requests do not queue behind one disk sync each.
    private func append(_ envelope: RecordEnvelope, owner: Data) async throws -> LedgerNode.Appended {
        try await withCheckedThrowingContinuation { continuation in
            let start = state.withLock { s in
                s.pending.append((envelope, owner, continuation))
                guard !s.committing else { return false }
                s.committing = true
                return true
            }
            if start { Task { await commitPending() } }
        }
    }

    /// Commits pending envelopes group by group until none are left.
    private func commitPending() async {
        while true {
            let group = state.withLock { s in
                let group = s.pending
                s.pending = []
                if group.isEmpty { s.committing = false }
                return group
            }
            guard !group.isEmpty else { return }
            let results = await node.append(contentsOf: group.map { ($0.envelope, $0.owner) })
            for (item, result) in zip(group, results) { item.continuation.resume(with: result) }
        }
    }

    /// Seals a block over everything appended so far, then wakes receipt waiters. A failure is
    /// logged (the records stay durable and the next seal covers them).
    public func seal() async {
        var failed = false
        do {
            if let block = try await node.seal() {
                logger.debug("ledger: sealed block \(block.height) at size \(block.treeSize)")
            }
        } catch {
            logger.error("ledger: sealing failed: \(error)")
            failed = true
        }
        let sealed = await node.latestBlock?.treeSize ?? 0
        let ready = state.withLock { s in
            s.sealedSize = max(s.sealedSize, sealed)
            // After a failed seal, wake everyone: they answer "not sealed yet" rather than hang.
            let (ready, waiting) = s.waiters.partitioned { failed || $0.index < sealed }
            s.waiters = waiting
            return ready
        }
        for waiter in ready { waiter.continuation.resume() }
    }

    /// The receipt of a record; with `wait`, waits for the block that covers it.
    /// - Throws: ``LedgerError/Code/notFound``, or ``LedgerError/Code/notYetSealed`` without
    ///   `wait` (or when sealing failed).
    public func receipt(recordID: String, wait: Bool) async throws -> Receipt {
        let leaf = try await node.leaf(recordID: recordID)
        if wait {
            await withCheckedContinuation { continuation in
                let sealed = state.withLock { s in
                    if leaf.index < s.sealedSize { return true }
                    s.waiters.append((leaf.index, continuation))
                    return false
                }
                if sealed { continuation.resume() }
            }
        }
        return try await node.receipt(recordID: recordID)
    }

    /// The records sealed to an account as their sender, oldest first.
    public func records(of account: AccountRegistry.RegisteredAccount) -> [Listed] {
        state.withLock { $0.bySender[account.recipientKey.keyID] ?? [] }
    }

    /// Seals a block every ``LedgerConfiguration/sealInterval`` until the task is cancelled.
    public func sealPeriodically() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: sealInterval)
            await seal()
        }
    }

    /// The last seal at shutdown, once nothing more will be recorded; logs what it covers.
    public func finalSeal() async {
        await seal()
        let size = await node.size
        logger.info("ledger: sealed through size \(size)")
    }
}

extension Array {
    /// The elements that match and those that don't, each in order.
    fileprivate func partitioned(_ belongs: (Element) -> Bool) -> ([Element], [Element]) {
        var yes: [Element] = [], no: [Element] = []
        for element in self { if belongs(element) { yes.append(element) } else { no.append(element) } }
        return (yes, no)
    }
}
