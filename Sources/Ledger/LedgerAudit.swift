import Foundation

/// The result of re-deriving a ledger from storage (`verity ledger verify`, `verity ledger fsck`).
///
/// ``run(store:verifier:envelopes:)`` reads every stored leaf once, in storage order, holding only
/// the tree's right edge in memory: it re-hashes every envelope, checks (unless told not to: fsck)
/// that it parses and names its record (and, for version 2, that its ciphertext is a padding
/// bucket plus the 16-byte tag), rebuilds the hash tiles and compares each with the stored one,
/// and checks every block's signature, chain link, height, size and root, and the consistency
/// proof between each block and the one before as the stored tiles give it. Owners
/// (``StoredLeaf/owner``) are not part of the log and are not checked. Every problem names the
/// record (index and id), tile or block (height) at fault.
///
/// What it can name: an altered envelope whose stored leaf hash was left alone is named exactly;
/// a deleted or re-ordered row is named by the index that is out of place; an altered tile by its
/// level and index. If an attacker also rewrote the stored leaf hash, the altered record is named
/// as lying between two block sizes (the first block whose root no longer matches). Records after
/// the last block are not yet covered by a signature; they are counted in ``unsealedLeafCount``.
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
            /// A stored hash tile.
            case tile(level: Int, index: UInt64)
        }

        /// What the problem is about.
        public var subject: Subject
        /// What is wrong.
        public var message: String

        public init(subject: Subject, message: String) {
            self.subject = subject
            self.message = message
        }

        public var description: String {
            switch subject {
            case let .record(index, id): "record \(id) (leaf \(index)): \(message)"
            case let .records(from, to): "a record in leaves \(from)..<\(to): \(message)"
            case let .block(height): "block \(height): \(message)"
            case let .pending(id): "written-ahead record \(id): \(message)"
            case let .tile(level, index): "\(TileKey(level: level, index: index)): \(message)"
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
    /// Hash tiles compared with the re-derived tree (0 for a store without tiles).
    public var tileCount: Int
    /// Everything found wrong, records and tiles first, then blocks, in storage order.
    public var problems: [Problem]

    /// Whether the ledger verified completely.
    public var isValid: Bool { problems.isEmpty }

    /// Re-derives the ledger in `store` and checks it against the node key.
    /// - Parameters:
    ///   - store: The storage to audit.
    ///   - verifier: The node's verifier key.
    ///   - envelopes: Whether to parse every envelope (`verify`); without, only their hashes are
    ///     checked (`fsck`).
    /// - Throws: Only if the store cannot be read; findings are in ``problems``.
    public static func run(store: any LedgerStore, verifier: NoteVerifier, envelopes: Bool = true) throws -> LedgerAudit {
        // Blocks first: a store being appended to meanwhile (a running server) then holds at
        // least every leaf the blocks read cover.
        let storedBlocks = try store.blocks()
        let blocks: [Result<Block, any Error>] = storedBlocks.map { stored in Result { try Block(text: stored.note, verifier: verifier) } }
        let rootSizes = Set(blocks.compactMap { try? $0.get().treeSize })
        var roots: [UInt64: Data] = [0: RFC6962.emptyRoot]
        let hasTiles = try store.hasTiles()
        var problems: [Problem] = []
        var edge = TreeEdge()
        var tileCount = 0
        var tileProblems = false
        // Record ids by a 64-bit hash: bounded memory; a hit is confirmed against the store.
        var seenIDs: Set<Int> = []

        func checkTile(_ key: TileKey, _ expected: Data) throws {
            tileCount += 1
            let stored = try store.tile(key)
            guard stored != expected else { return }
            tileProblems = true
            problems.append(Problem(subject: .tile(level: key.level, index: key.index), message: stored == nil
                ? "is missing"
                : "does not match the tree re-derived from the records (stored \(stored!.count / 32) hashes, expected \(expected.count / 32))"))
        }

        var position: UInt64 = 0
        try store.forEachLeaf { leaf in
            func problem(_ message: String) {
                problems.append(Problem(subject: .record(index: position, recordID: leaf.recordID), message: message))
            }
            if leaf.index != position {
                problem("stored as leaf \(leaf.index) at position \(position): a record was deleted or reordered")
            }
            if !seenIDs.insert(leaf.recordID.hashValue).inserted, let first = try store.leaf(recordID: leaf.recordID), first.index != leaf.index {
                problem("record id appears twice")
            }
            let hash = RFC6962.leafHash(leaf.envelope)
            if hash != leaf.leafHash { problem("envelope bytes do not match the stored leaf hash: altered") }
            if envelopes {
                do {
                    let envelope = try RecordEnvelope(canonicalBytes: leaf.envelope)
                    if envelope.recordID != leaf.recordID { problem("envelope names record \(envelope.recordID)") }
                    if envelope.version == 2, envelope.ciphertext.count < 16 || !RecordEnvelope.isBucket(envelope.ciphertext.count - 16) {
                        problem("version-2 ciphertext is \(envelope.ciphertext.count) bytes, not a padding bucket plus the 16-byte tag")
                    }
                } catch {
                    problem("envelope does not parse: \(error)")
                }
            }
            for (key, bytes) in edge.append(leafHashes: CollectionOfOne(hash)) where hasTiles && bytes.count == TileAddress.width * 32 {
                try checkTile(key, bytes)
            }
            if rootSizes.contains(edge.size) { roots[edge.size] = try edge.rootHash() }
            position += 1
        }
        if hasTiles {
            var level = 0
            while edge.size >> UInt64(8 * level) > 0 {
                if let (key, hashes) = edge.partialTile(level: level) { try checkTile(key, TileCodec.bytes(hashes)) }
                level += 1
            }
        }

        var previous: Block?
        var sealedSize: UInt64 = 0
        let tiled = hasTiles && !tileProblems ? TileReader(store: store, capacity: 256).tree(size: edge.size, edge: edge) : nil
        for (position, (stored, parsed)) in zip(storedBlocks, blocks).enumerated() {
            let position = UInt64(position)
            func problem(_ message: String) { problems.append(Problem(subject: .block(height: position), message: message)) }
            let block: Block
            switch parsed {
            case .success(let b): block = b
            case .failure(let error):
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
            if block.treeSize > edge.size {
                problem("seals \(block.treeSize) leaves but only \(edge.size) are stored: records were deleted")
            } else if let root = roots[block.treeSize], root != block.rootHash {
                let from = previous.map { min($0.treeSize, block.treeSize) } ?? 0
                problems.append(Problem(
                    subject: .records(from: from, to: block.treeSize),
                    message: "block \(block.height)'s signed root does not match the stored records: one was altered"
                ))
            } else if let previous, previous.treeSize <= block.treeSize, let tiled {
                // Both roots match the re-derived tree; check the proof a client would be given.
                do {
                    try MerkleProof.verifyConsistency(
                        oldSize: previous.treeSize, newSize: block.treeSize, oldRoot: previous.rootHash, newRoot: block.rootHash,
                        proof: try tiled.consistencyProof(from: previous.treeSize, to: block.treeSize)
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
            if envelopes {
                do {
                    let envelope = try RecordEnvelope(canonicalBytes: record.envelope)
                    if envelope.recordID != record.recordID {
                        problems.append(Problem(subject: .pending(recordID: record.recordID), message: "envelope names record \(envelope.recordID)"))
                    }
                } catch {
                    problems.append(Problem(subject: .pending(recordID: record.recordID), message: "envelope does not parse: \(error)"))
                }
            }
            if seenIDs.contains(record.recordID.hashValue), try store.leaf(recordID: record.recordID) != nil {
                problems.append(Problem(subject: .pending(recordID: record.recordID),
                                        message: "is written ahead but already in the log: a pending record must be deleted when its record is appended"))
            }
        }

        return LedgerAudit(
            leafCount: edge.size, blockCount: UInt64(storedBlocks.count),
            unsealedLeafCount: edge.size > sealedSize ? edge.size - sealedSize : 0, pendingRecordCount: pending.count,
            tileCount: tileCount, problems: problems
        )
    }
}
