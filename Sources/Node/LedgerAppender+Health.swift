import Foundation
import Ledger

extension LedgerAppender {
    /// Whether the ledger can record: a load balancer (or a gateway routing to this node) should
    /// send nothing here while it is not ``isHealthy``.
    public struct Health: Sendable {
        /// The last write succeeded (or none failed yet).
        public var writable: Bool
        /// Completed records waiting in memory for storage to take them.
        public var spooled: Int
        /// Free bytes on the data directory's file system, where known.
        public var freeBytes: Int64?
        /// Writes that failed since start.
        public var writeFailures: Int
        /// The last failure, for the operator.
        public var lastFailure: String?
        /// Writable, nothing spooled, and enough free space.
        public var isHealthy: Bool
        /// Records appended but not yet in a published block (sealed and, with witnesses, cosigned).
        public var unpublished: UInt64 = 0
        /// The witnesses' counters (nil without witnesses).
        public var witnesses: WitnessStatistics?
    }

    /// The ledger's health now.
    public var health: Health {
        let free = directory.freeBytes()
        if let free, free >= configuration.minFreeBytes { state.withLock { $0.refusing = false } }
        let witnesses = configuration.witnesses.isEmpty ? nil : witnessStatistics
        return state.withLock { s in
            Health(writable: s.writable, spooled: s.spool.count, freeBytes: free, writeFailures: s.writeFailures,
                   lastFailure: s.lastFailure,
                   isHealthy: s.writable && s.spool.isEmpty && (free.map { $0 >= configuration.minFreeBytes } ?? true),
                   unpublished: s.appendedSize > s.sealedSize ? s.appendedSize - s.sealedSize : 0, witnesses: witnesses)
        }
    }

    /// Logs a failed write at error level, with its cause, and counts it.
    func noteFailure(_ error: any Error, what: String) {
        let text = "ledger: \(what): \(error)"
        state.withLock { s in
            s.writeFailures += 1
            s.lastFailure = text
            s.writable = false
        }
        logger.error("\(text)")
    }

    /// Logs and counts an interaction refused because the disk is short of space (the free space
    /// itself is what ``health`` reports).
    func noteRefusal(_ error: LedgerError) {
        let first = state.withLock { s in
            s.writeFailures += 1
            s.lastFailure = "ledger: refused a new interaction: \(error.message)"
            defer { s.refusing = true }
            return !s.refusing
        }
        // One error line when refusals start; the counter has each of them.
        if first { logger.error("ledger: refusing new interactions: \(error.message)") }
    }

    /// After a failed write, whether storage takes writes again: a small transaction that writes
    /// a row and deletes it. Health follows its outcome, so a node that
    /// nobody sends work to while it is degraded still comes back.
    func probeStorage() async {
        let (unwritable, spooled) = state.withLock { ($0.writable == false, !$0.spool.isEmpty) }
        guard unwritable, !spooled else { return }
        _ = try? await enqueue(.probe, waiting: true)
    }

    /// Keeps a completed record that storage refused, to retry.
    func spool(_ envelope: RecordEnvelope, owner: Data, timestamp: Int64) {
        let dropped = state.withLock { s -> String? in
            s.spool.append((envelope, owner, timestamp))
            guard s.spool.count > configuration.spoolLimit else { return nil }
            return s.spool.removeFirst().envelope.recordID
        }
        if let dropped {
            logger.error("ledger: the spool is full; dropped the completed record of \(dropped) (its write-ahead record remains)")
        }
    }

    /// Retries the spooled records; returns how many are left.
    @discardableResult
    func retrySpool() async -> Int {
        let batch = state.withLock { s in
            defer { s.spool = [] }
            return s.spool
        }
        guard !batch.isEmpty else { return 0 }
        let results = await node.commit(batch.map { .leaf($0.envelope, owner: $0.owner) })
        var failed: [(envelope: RecordEnvelope, owner: Data, timestamp: Int64)] = []
        for (item, result) in zip(batch, results) {
            switch result {
            case .success(.some): break
            case .failure(let error as LedgerError) where error.code == .duplicateRecord: break
            default: failed.append(item)
            }
        }
        let left = state.withLock { s in
            s.spool.insert(contentsOf: failed, at: 0)
            if failed.count < batch.count { s.writable = true }
            return s.spool.count
        }
        if failed.count < batch.count {
            logger.info("ledger: wrote \(batch.count - failed.count) spooled records; \(left) still spooled")
        }
        return left
    }
}

extension DataDirectory {
    /// Bytes available to this process on the directory's file system, or nil if unknown.
    public func freeBytes() -> Int64? {
        guard let attributes = try? FileManager.default.attributesOfFileSystem(forPath: path),
              let free = attributes[.systemFreeSize] as? NSNumber else { return nil }
        return free.int64Value
    }
}
