import Foundation
import Ledger
import Synchronization

/// A witness the node asks to cosign its checkpoints (C2SP tlog-witness), over whatever transport
/// (the server's HTTP client; a function in tests).
public protocol CheckpointWitness: Sendable {
    /// The witness's public key; its cosignatures are checked against it.
    var verifier: CosignatureVerifier { get }
    /// Sends an add-checkpoint request.
    /// - Throws: If the witness could not be reached or answered something unreadable.
    func addCheckpoint(_ request: AddCheckpointRequest) async throws -> WitnessAnswer
}

/// What a witness answered.
public enum WitnessAnswer: Sendable, Hashable {
    /// 200: its cosignature lines.
    case cosigned([SignedNote.Signature])
    /// 409: the size of the checkpoint it last cosigned for this log.
    case conflict(latestSize: UInt64)
    /// Any other status, with its message.
    case refused(status: Int, message: String)
}

/// Counters of the cosigning, for /metrics.
public struct WitnessStatistics: Sendable {
    /// Requests that failed or were refused, by witness name.
    public var failures: [String: Int] = [:]
    /// Seconds from sealing a block to publishing it (its policy met), of the last one published.
    public var lastPublishDelay: Double?
    /// Blocks published.
    public var published = 0
}

extension LedgerAppender {
    /// Asks every witness that has not cosigned the latest block to cosign it, each in a task of
    /// its own; a block is published as soon as the policy is met (receipt waiters wake then). A
    /// witness that is slow, down or refusing is logged and counted; it holds up neither
    /// appending, nor sealing, nor the other witnesses, and the next seal asks it again, from the
    /// size it last cosigned. At most one request per witness is in flight.
    /// - Parameter waiting: Return only once this round's requests have ended (at shutdown).
    func collectCosignatures(waiting: Bool = false) async {
        // In a shared log only the leader asks: it signed the block.
        guard node.witnessPolicy != nil, await node.isLeader, let block = await node.latestBlock else { return }
        var pending: [any CheckpointWitness] = []
        for witness in configuration.witnesses where await node.cosignedSize(by: witness.verifier) < block.treeSize {
            pending.append(witness)
        }
        let (asking, started) = witnessState.withLock { s in
            if s.sealedAt?.height != block.height { s.sealedAt = (block.height, ContinuousClock.now) }
            let asking = pending.filter { s.inFlight.insert($0.verifier.verifierKey).inserted }
            return (asking, s.sealedAt!.instant)
        }
        let tasks = asking.map { witness in
            Task {
                await self.ask(witness, toCosign: block, started: started)
                _ = witnessState.withLock { $0.inFlight.remove(witness.verifier.verifierKey) }
            }
        }
        if waiting { for task in tasks { await task.value } }
    }

    private func ask(_ witness: any CheckpointWitness, toCosign block: Block, started: ContinuousClock.Instant) async {
        let name = witness.verifier.name
        var oldSize = await node.cosignedSize(by: witness.verifier)
        for attempt in 0..<2 {
            do {
                guard oldSize <= block.treeSize else {
                    throw LedgerError(.inconsistentCheckpoint, "it has cosigned size \(oldSize), beyond this block: this log was forked or restored from an old copy")
                }
                let proof = oldSize == 0 || oldSize == block.treeSize ? [] : try await node.consistencyProof(from: oldSize, to: block.treeSize)
                let answer = try await witness.addCheckpoint(AddCheckpointRequest(oldSize: oldSize, proof: proof, checkpoint: block.note))
                switch answer {
                case .cosigned(let lines):
                    guard lines.contains(where: { $0.name == name }) else {
                        throw LedgerError(.malformed, "200 without a cosignature line by \(name)")
                    }
                    var published = false
                    for line in lines where line.name == name {
                        published = try await node.addCosignature(line, by: witness.verifier, height: block.height) || published
                    }
                    if published { await publish(block, started: started) }
                    return
                case .conflict(let size) where attempt == 0 && size != oldSize:
                    oldSize = size
                    continue
                case .conflict(let size):
                    throw LedgerError(.inconsistentCheckpoint, "409: it last cosigned size \(size)")
                case .refused(let status, let message):
                    throw LedgerError(.proofInvalid, "\(status): \(message)")
                }
            } catch {
                let first = witnessState.withLock { s in
                    s.statistics.failures[name, default: 0] += 1
                    return s.failedHeights.updateValue(block.height, forKey: name) != block.height
                }
                // Once per block and witness at warning level: a witness that is down is retried every seal.
                logger.log(level: first ? .warning : .debug, "ledger: witness \(name) did not cosign block \(block.height) (size \(block.treeSize)): \(error)")
                return
            }
        }
    }

    private func publish(_ block: Block, started: ContinuousClock.Instant) async {
        let delay = ContinuousClock.now - started
        witnessState.withLock { s in
            s.statistics.published += 1
            s.statistics.lastPublishDelay = Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
        }
        logger.debug("ledger: block \(block.height) published with its witnesses' cosignatures")
        await wakeReceiptWaiters()
    }

    /// The cosigning counters.
    public var witnessStatistics: WitnessStatistics { witnessState.withLock { $0.statistics } }
}

/// The appender's cosigning state.
struct WitnessState {
    /// The witnesses with a request in flight, by verifier key.
    var inFlight: Set<String> = []
    /// When the block being cosigned was first asked for (for the publication delay).
    var sealedAt: (height: UInt64, instant: ContinuousClock.Instant)?
    /// The block each witness last failed to cosign, by name (to log each failure once).
    var failedHeights: [String: UInt64] = [:]
    var statistics = WitnessStatistics()
}
