import Foundation

/// The result of re-deriving a ledger from storage (`verity ledger verify`).
///
/// ``run(store:verifier:)`` re-hashes every stored envelope (version 1 or 2), checks that it
/// parses and names its record (and, for version 2, that its ciphertext is a padding bucket plus
/// the 16-byte tag), rebuilds the Merkle tree, and checks every block's signature, chain link,
/// height, size and root, and the consistency of each block with the one before. Owners
/// (``StoredLeaf/owner``) are not part of the log and are not checked. Every problem names the
/// record (index and id) or block (height) at fault.
///
/// What it can name: an altered envelope whose stored leaf hash was left alone is named exactly;
/// a deleted or re-ordered row is named by the index that is out of place. If an attacker also
/// rewrote the stored leaf hash, the altered record is named as lying between two block sizes
/// (the first block whose root no longer matches). Records after the last block are not yet
/// covered by a signature; they are counted in ``unsealedLeafCount``.
public struct LedgerAudit: Sendable {
    /// One thing found wrong.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        /// What the problem is about.
        public enum Subject: Sendable, Hashable {
            /// The stored leaf at this storage position, with the record id stored there.
            case record(index: UInt64, recordID: String)
            /// One of the leaves in `[from, to)`; which one cannot be told from the data.
            case records(from: UInt64, to: UInt64)
            /// The stored block at this storage position.
            case block(height: UInt64)
            /// A record written ahead of its answer.
            case pending(recordID: String)
        }

        /// What the problem is about.
        public var subject: Subject
        /// What is wrong.
        public var message: String

        public var description: String {
            switch subject {
            case let .record(index, id): "record \(id) (leaf \(index)): \(message)"
            case let .records(from, to): "a record in leaves \(from)..<\(to): \(message)"
            case let .block(height): "block \(height): \(message)"
            case let .pending(id): "written-ahead record \(id): \(message)"
            }
        }
    }

    /// Leaves found in storage.
    public var leafCount: UInt64
    /// Blocks found in storage.
    public var blockCount: UInt64
    /// Leaves after the last block's tree size.
    public var unsealedLeafCount: UInt64
    /// Records written ahead of answers not yet recorded (``PendingRecord``): answers in progress
    /// on a running server, or those of a process that died, which its next start records as
    /// interrupted. They are not in the tree; each must parse and name no record in the log.
    public var pendingRecordCount: Int
    /// Everything found wrong, records first, then blocks, in storage order.
    public var problems: [Problem]

    /// Whether the ledger verified completely.
    public var isValid: Bool { problems.isEmpty }

    /// Re-derives the ledger in `store` and checks it against the node key.
    /// - Parameters:
    ///   - store: The storage to audit.
    ///   - verifier: The node's verifier key.
    /// - Throws: Only if the store cannot be read; findings are in ``problems``.
    public static func run(store: any LedgerStore, verifier: NoteVerifier) throws -> LedgerAudit {
        // Blocks first: a store being appended to meanwhile (a running server) then holds at
        // least every leaf the blocks read cover.
        let storedBlocks = try store.blocks()
        var problems: [Problem] = []
        var tree = MerkleTree()
        var seenIDs: Set<String> = []

        for (position, leaf) in try store.leaves().enumerated() {
            let position = UInt64(position)
            func problem(_ message: String) {
                problems.append(Problem(subject: .record(index: position, recordID: leaf.recordID), message: message))
            }
            if leaf.index != position {
                problem("stored as leaf \(leaf.index) at position \(position): a record was deleted or reordered")
            }
            if !seenIDs.insert(leaf.recordID).inserted { problem("record id appears twice") }
            let hash = RFC6962.leafHash(leaf.envelope)
            if hash != leaf.leafHash { problem("envelope bytes do not match the stored leaf hash: altered") }
            do {
                let envelope = try RecordEnvelope(canonicalBytes: leaf.envelope)
                if envelope.recordID != leaf.recordID { problem("envelope names record \(envelope.recordID)") }
                if envelope.version == 2, envelope.ciphertext.count < 16 || !RecordEnvelope.isBucket(envelope.ciphertext.count - 16) {
                    problem("version-2 ciphertext is \(envelope.ciphertext.count) bytes, not a padding bucket plus the 16-byte tag")
                }
            } catch {
                problem("envelope does not parse: \(error)")
            }
            tree.append(leafHash: hash)
        }

        var previous: Block?
        var sealedSize: UInt64 = 0
        for (position, stored) in storedBlocks.enumerated() {
            let position = UInt64(position)
            func problem(_ message: String) { problems.append(Problem(subject: .block(height: position), message: message)) }
            let block: Block
            do {
                block = try Block(text: stored.note, verifier: verifier)
            } catch {
                problem("does not verify: \(error)")
                previous = nil
                continue
            }
            if block.height != position || stored.height != position {
                problem("signed as height \(block.height), stored as \(stored.height), at position \(position)")
            }
            let expectedPrevious = position == 0 ? Block.genesisPreviousHash : previous?.hash
            if let expectedPrevious, block.previousHash != expectedPrevious {
                problem("does not name the previous block's hash: the chain is broken")
            }
            if let previous, block.treeSize < previous.treeSize {
                problem("tree size \(block.treeSize) is smaller than block \(previous.height)'s \(previous.treeSize)")
            }
            if block.treeSize > tree.size {
                problem("seals \(block.treeSize) leaves but only \(tree.size) are stored: records were deleted")
            } else if let root = try? tree.rootHash(size: block.treeSize), root != block.rootHash {
                let from = previous.map { min($0.treeSize, block.treeSize) } ?? 0
                problems.append(Problem(
                    subject: .records(from: from, to: block.treeSize),
                    message: "block \(block.height)'s signed root does not match the stored records: one was altered"
                ))
            } else if let previous, previous.treeSize <= block.treeSize {
                // Both roots match the rebuilt tree; check the proof a client would be given.
                do {
                    try MerkleProof.verifyConsistency(
                        oldSize: previous.treeSize, newSize: block.treeSize, oldRoot: previous.rootHash, newRoot: block.rootHash,
                        proof: try tree.consistencyProof(from: previous.treeSize, to: block.treeSize)
                    )
                } catch {
                    problem("is not consistent with block \(previous.height): \(error)")
                }
            }
            sealedSize = max(sealedSize, block.treeSize)
            previous = block
        }

        let pending = try store.pendingRecords()
        for record in pending {
            do {
                let envelope = try RecordEnvelope(canonicalBytes: record.envelope)
                if envelope.recordID != record.recordID {
                    problems.append(Problem(subject: .pending(recordID: record.recordID), message: "envelope names record \(envelope.recordID)"))
                }
            } catch {
                problems.append(Problem(subject: .pending(recordID: record.recordID), message: "envelope does not parse: \(error)"))
            }
            if seenIDs.contains(record.recordID) {
                problems.append(Problem(subject: .pending(recordID: record.recordID),
                                        message: "is written ahead but already in the log: a pending record must be deleted when its record is appended"))
            }
        }

        return LedgerAudit(
            leafCount: tree.size, blockCount: UInt64(storedBlocks.count),
            unsealedLeafCount: tree.size > sealedSize ? tree.size - sealedSize : 0, pendingRecordCount: pending.count, problems: problems
        )
    }
}
