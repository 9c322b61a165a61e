import Foundation
import Ledger

extension LedgerAppender {
    /// Seals a block over everything appended so far, then wakes receipt waiters. A failure is
    /// logged (the records stay durable and the next seal covers them).
    /// - Returns: Whether sealing succeeded (or there was nothing to seal).
    @discardableResult
    public func seal() async -> Bool {
        var failed = false
        do {
            // A shared log: catch up with the other gateways, and lead if none does.
            let leads = try await node.synchronize()
            let wasLeader = state.withLock { s in
                defer { s.leading = leads }
                return s.leading
            }
            if leads != wasLeader {
                logger.info(leads ? "ledger: this gateway now leads the shared log (integrates and seals)"
                                  : "ledger: another gateway leads the shared log")
            }
            let adopted = try await node.adoptOrphans()
            if adopted > 0 {
                logger.warning("ledger: recovered \(adopted) interrupted records of gateways that stopped without finishing their answers")
                try await node.synchronize()
            }
            if let block = try await node.seal() {
                logger.debug("ledger: sealed block \(block.height) at size \(block.treeSize)")
            }
        } catch {
            noteFailure(error, what: "sealing failed")
            failed = true
        }
        // Witnesses answer over the network, in tasks of their own: one that is down must not
        // hold up sealing. Receipt waiters wake when the block is published.
        await collectCosignatures()
        await wakeReceiptWaiters(failed: failed)
        return !failed
    }

    /// Wakes the receipt waiters whose record is in the published block (all of them after a
    /// failed seal: they answer "not sealed yet" rather than hang).
    func wakeReceiptWaiters(failed: Bool = false) async {
        let sealed = await node.publishedBlock?.treeSize ?? 0
        let ready = state.withLock { s in
            s.sealedSize = max(s.sealedSize, sealed)
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

    /// Every ``LedgerConfiguration/sealInterval`` until the task is cancelled: retries spooled
    /// records, checks that storage takes writes again after a failure, then seals a block.
    public func sealPeriodically() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.sealInterval)
            await retrySpool()
            await probeStorage()
            await seal()
        }
    }

    /// The last seal at shutdown, once nothing more will be recorded: tries the spool once more,
    /// seals, and says what was sealed only once it is.
    public func finalSeal() async {
        let left = await retrySpool()
        if left > 0 {
            logger.error("ledger: \(left) completed records could not be written; their write-ahead records will be recovered as interrupted at the next start")
        }
        let sealed = await seal()
        await collectCosignatures(waiting: true)
        let size = await node.size
        let blockSize = await node.latestBlock?.treeSize ?? 0
        if sealed {
            logger.info("ledger: sealed through size \(blockSize)")
        } else {
            logger.error("ledger: the last seal failed; \(size - blockSize) records are durable but not yet sealed (the next start seals them)")
        }
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
