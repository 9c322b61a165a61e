import Foundation

/// A ledger node: appends sealed records to the Merkle log, seals blocks, and hands out receipts
/// and proofs. One node owns one store; it is an actor, so appends are serialised and every
/// record gets its own leaf.
///
/// Flow: ``append(_:owner:)`` stores the envelope durably and returns its leaf; ``seal()`` signs a
/// block over everything appended (the server calls it on a timer or every N records); then
/// ``receipt(recordID:)`` returns the offline-verifiable receipt.
///
/// The node runs on a thread of its own (``SerialThreadExecutor``): its store calls block on
/// disk syncs, which must not hold up Swift's cooperative threads.
///
/// Memory and start-up do not grow with the log: the node holds the tree's right edge
/// (``TreeEdge``, at most 255 hashes per tile level), the latest block and a bounded cache of full
/// tiles. Proofs are computed from the stored tiles (``TiledHashes``). Opening a ledger checks what
/// a restart can check in O(log n): the latest block's signature and that its root is the stored
/// tiles' root at its size; the full re-derivation is ``verifyAll()`` (`verity ledger verify`).
public actor LedgerNode {
    /// Where a record landed.
    public struct Appended: Sendable, Hashable {
        /// The record id.
        public var recordID: String
        /// The leaf index.
        public var leafIndex: UInt64
        /// The RFC 6962 leaf hash of the envelope.
        public var leafHash: Data
    }

    private let store: any LedgerStore
    private var edge: TreeEdge
    private let tiles: TileReader
    private var blockSigner: BlockSigner
    private let signer: NoteSigner
    private var latest: Block?
    /// Whether this node led the shared log at its last ``synchronize()`` (always true for a
    /// store that is not shared).
    public private(set) var isLeader: Bool
    /// The witnesses whose cosignatures publish a block, and how many are needed (nil: every
    /// block is published as it is signed).
    public nonisolated let witnessPolicy: WitnessPolicy?
    /// The latest published block, and its note with the cosignatures that published it.
    private var published: (block: Block, note: SignedNote)?
    /// The size of the last block each witness cosigned, by verifier key text.
    private var cosignedSizes: [String: UInt64] = [:]

    /// The node key's verifier, to publish.
    public nonisolated let verifier: NoteVerifier

    private nonisolated let executor = SerialThreadExecutor(name: "verity-ledger")

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    deinit { executor.shutdown() }

    /// Opens the ledger in `store`, checking its right edge against its latest block.
    /// - Parameters:
    ///   - store: The storage; empty for a new ledger.
    ///   - signer: The node key; its name is the log's origin.
    ///   - tileCache: Full tiles kept in memory for proofs (8 KiB each).
    ///   - witnessPolicy: With witnesses, a block is published (served as the checkpoint, used by
    ///     receipts) only once that many of them cosigned it (``addCosignature(_:by:height:)``).
    /// - Throws: ``LedgerError/Code/tampered`` naming the problem if the latest block does not
    ///   verify under this key or does not match the stored tree: the node will not extend a log
    ///   it cannot vouch for.
    public init(store: any LedgerStore, signer: NoteSigner, tileCache: Int = 2048, witnessPolicy: WitnessPolicy? = nil) throws {
        self.store = store
        self.verifier = signer.verifier
        let edge = try store.treeEdge()
        let tiles = TileReader(store: store, capacity: tileCache)
        let leafCount = try store.leafCount()
        guard leafCount == edge.size else {
            throw LedgerError(.tampered, "the stored ledger does not verify: its tiles cover \(edge.size) leaves but \(leafCount) are stored")
        }
        var latest: Block?
        let count = try store.blockCount()
        if count > 0 {
            guard let stored = try store.block(height: count - 1) else {
                throw LedgerError(.tampered, "the stored ledger does not verify: block \(count - 1) is missing")
            }
            let block: Block
            do { block = try Block(text: stored.note, verifier: signer.verifier) } catch {
                throw LedgerError(.tampered, "the stored ledger does not verify: block \(count - 1): \(error)")
            }
            guard block.height == count - 1 else {
                throw LedgerError(.tampered, "the stored ledger does not verify: block \(count - 1) is signed as height \(block.height)")
            }
            guard block.treeSize <= edge.size else {
                throw LedgerError(.tampered, "the stored ledger does not verify: block \(block.height) seals \(block.treeSize) leaves but only \(edge.size) are stored")
            }
            let root: Data
            do { root = try tiles.tree(size: block.treeSize, edge: edge).rootHash() } catch {
                throw LedgerError(.tampered, "the stored ledger does not verify: cannot read its tree at block \(block.height)", cause: error)
            }
            guard root == block.rootHash else {
                throw LedgerError(.tampered, "the stored ledger does not verify: block \(block.height)'s signed root is not the stored tree's")
            }
            latest = block
        }
        self.edge = edge
        self.tiles = tiles
        self.latest = latest
        self.blockSigner = BlockSigner(signer: signer, lastBlock: latest)
        self.signer = signer
        self.isLeader = !store.isShared
        self.witnessPolicy = witnessPolicy
        if let witnessPolicy {
            let keys = witnessPolicy.witnesses.map(\.verifierKey)
            for (witness, height) in try store.lastCosignedHeights() where keys.contains(witness) {
                guard let stored = try store.block(height: height) else { continue }
                cosignedSizes[witness] = try Block(text: stored.note, verifier: signer.verifier).treeSize
            }
            if let height = try store.latestHeight(cosignedBy: keys, threshold: witnessPolicy.threshold),
               let stored = try store.block(height: height) {
                let block = try Block(text: stored.note, verifier: signer.verifier)
                published = (block, try Self.note(of: block, cosignatures: try store.cosignatures(height: height), policy: witnessPolicy))
            }
        } else if let latest {
            published = (latest, latest.note)
        }
    }

    /// A block's note with the valid cosignatures of the policy's witnesses appended.
    private static func note(of block: Block, cosignatures: [String: String], policy: WitnessPolicy) throws -> SignedNote {
        var note = block.note
        for witness in policy.witnesses {
            guard let line = cosignatures[witness.verifierKey],
                  let signature = try? SignedNote(parsing: "x\n\n" + line + "\n").signatures.first else { continue }
            var candidate = block.note
            candidate.signatures = [signature]
            if (try? witness.cosignatureTime(on: candidate)) != nil { note.signatures.append(signature) }
        }
        return note
    }

    /// The latest published block: the latest signed one, or with witnesses the latest that
    /// enough of them cosigned.
    public var publishedBlock: Block? { published?.block }

    /// The latest published block's note, with its cosignatures: the log's checkpoint.
    public var checkpoint: SignedNote? { published?.note }

    /// The size of the last block `witness` cosigned (0 if none): the old size of the next
    /// add-checkpoint request to it.
    public func cosignedSize(by witness: CosignatureVerifier) -> UInt64 { cosignedSizes[witness.verifierKey] ?? 0 }

    /// Records a witness's cosignature of the block at `height`, after checking it; publishes
    /// the block if that meets the policy.
    /// - Returns: Whether the block is now published.
    /// - Throws: ``LedgerError/Code/signatureInvalid`` if the line is not a valid cosignature of
    ///   that block by `witness`; ``LedgerError/Code/invalidValue`` for a witness outside the
    ///   policy; ``LedgerError/Code/storage``.
    @discardableResult
    public func addCosignature(_ signature: SignedNote.Signature, by witness: CosignatureVerifier, height: UInt64) throws -> Bool {
        guard let policy = witnessPolicy, policy.witnesses.contains(witness) else {
            throw LedgerError(.invalidValue, "\(witness.name) is not one of the node's witnesses")
        }
        let block = try block(height: height)
        var candidate = block.note
        candidate.signatures = [signature]
        guard try witness.cosignatureTime(on: candidate) != nil else {
            throw LedgerError(.signatureInvalid, "the answer of \(witness.name) holds no cosignature by its key")
        }
        let line = String(SignedNote(text: "", signatures: [signature]).formatted.dropFirst().dropLast())
        try store.addCosignature(height: height, witness: witness.verifierKey, line: line)
        cosignedSizes[witness.verifierKey] = max(cosignedSizes[witness.verifierKey] ?? 0, block.treeSize)
        let note = try Self.note(of: block, cosignatures: try store.cosignatures(height: height), policy: policy)
        guard policy.cosigners(of: note).count >= policy.threshold else { return false }
        if (published?.block.height ?? 0) <= height || published == nil { published = (block, note) }
        return true
    }

    /// The number of leaves.
    public var size: UInt64 { edge.size }

    /// The latest block, if any.
    public var latestBlock: Block? { latest }

    /// The number of blocks.
    public var blockCount: UInt64 { latest.map { $0.height + 1 } ?? 0 }

    /// Appends a sealed record. Returns once the store holds it durably.
    /// - Parameters:
    ///   - envelope: The sealed record.
    ///   - owner: Whose record it is, stored privately beside the leaf (``StoredLeaf/owner``):
    ///     the sender's ``RecipientKey/keyID``, or nil.
    /// - Throws: ``LedgerError/Code/duplicateRecord`` if the id is already in the log;
    ///   ``LedgerError/Code/invalidValue`` for an owner that is not 8 bytes;
    ///   ``LedgerError/Code/storage`` if the store fails (nothing is appended then).
    public func append(_ envelope: RecordEnvelope, owner: Data?) throws -> Appended {
        try append(contentsOf: [(envelope, owner)])[0].get()
    }

    /// Appends several sealed records durably in one storage transaction: one fsync for all of
    /// them (group commit), which is what lets a busy server record every request without
    /// queueing behind one disk sync per record.
    /// - Parameter entries: The sealed records, each with its owner as in ``append(_:owner:)``.
    /// - Returns: Per envelope, in order, where it landed, or why it was refused: a duplicate id
    ///   (in the log or earlier in the batch) or a bad owner refuses only that envelope; a
    ///   storage failure refuses all of them, and nothing is appended then.
    public func append(contentsOf entries: [(envelope: RecordEnvelope, owner: Data?)]) -> [Result<Appended, any Error>] {
        commit(entries.map { .leaf($0.envelope, owner: $0.owner) }).map { $0.map { $0! } }
    }

    /// One write of a group commit.
    public enum Write: Sendable {
        /// Append a sealed record as a leaf (deleting its pending record, if any).
        case leaf(RecordEnvelope, owner: Data?)
        /// Write or replace a record ahead of its answer (see ``PendingRecord``).
        case pending(RecordEnvelope, owner: Data?)
        /// Forget a pending record whose request was refused before it started.
        case discard(recordID: String)
        /// Write a row and delete it in the same transaction: whether storage takes writes.
        case probe
    }

    /// Commits writes durably in one storage transaction.
    /// - Returns: Per write, in order: where a leaf landed (nil for the other writes), or why it
    ///   was refused. A duplicate or malformed write refuses only itself (a pending record whose
    ///   id is already a leaf is a duplicate); a storage failure refuses all of them.
    public func commit(_ writes: [Write]) -> [Result<Appended?, any Error>] {
        var results: [Result<Appended?, any Error>] = []
        var leaves: [StoredLeaf] = [], pending: [PendingRecord] = [], discarding: [String] = []
        var ids: Set<String> = []
        for write in writes {
            do {
                switch write {
                case .leaf(let envelope, let owner), .pending(let envelope, let owner):
                    if let owner, owner.count != 8 {
                        throw LedgerError(.invalidValue, "record \(envelope.recordID): an owner is an 8-byte key id, not \(owner.count) bytes")
                    }
                    let bytes = try envelope.canonicalBytes()
                    guard !ids.contains(envelope.recordID), try store.leaf(recordID: envelope.recordID) == nil else {
                        throw LedgerError(.duplicateRecord, "record \(envelope.recordID) is already in the log")
                    }
                    if case .pending = write {
                        pending.append(PendingRecord(recordID: envelope.recordID, envelope: bytes, owner: owner))
                        results.append(.success(nil))
                        continue
                    }
                    ids.insert(envelope.recordID)
                    let leaf = StoredLeaf(index: edge.size + UInt64(leaves.count), recordID: envelope.recordID, envelope: bytes,
                                          leafHash: RFC6962.leafHash(bytes), owner: owner)
                    leaves.append(leaf)
                    results.append(.success(Appended(recordID: leaf.recordID, leafIndex: leaf.index, leafHash: leaf.leafHash)))
                case .discard(let recordID):
                    discarding.append(recordID)
                    results.append(.success(nil))
                case .probe:
                    // Written, then deleted by the same commit (writes go before deletions).
                    pending.append(PendingRecord(recordID: Self.probeID, envelope: Data([0])))
                    discarding.append(Self.probeID)
                    results.append(.success(nil))
                }
            } catch {
                results.append(.failure(error))
            }
        }
        // A pending write that lost the race with its own leaf in this group must not return.
        pending.removeAll { ids.contains($0.recordID) }
        if store.isShared {
            // The database assigns the indices; the leader integrates them later.
            let first: UInt64
            do { first = try store.sequence(pending: pending, discarding: discarding, leaves: leaves) } catch {
                return writes.map { _ in .failure(error) }
            }
            let offset = Int64(bitPattern: first) - Int64(bitPattern: edge.size)
            return results.map { result in
                result.map { appended in
                    appended.map { Appended(recordID: $0.recordID, leafIndex: UInt64(Int64(bitPattern: $0.leafIndex) + offset), leafHash: $0.leafHash) }
                }
            }
        }
        do {
            try store.commit(pending: pending, discarding: discarding, leaves: leaves)
        } catch {
            return writes.map { _ in .failure(error) }
        }
        if !leaves.isEmpty {
            do { edge = try store.treeEdge() } catch {
                // Committed, so the edge extends by exactly these leaves.
                edge.append(leafHashes: leaves.map(\.leafHash))
            }
        }
        return results
    }

    /// The record id of ``Write/probe``'s row, which never outlives its transaction.
    static let probeID = "verity-storage-probe"

    /// The records written ahead of answers that have not ended (after a crash: that never
    /// will), oldest first.
    /// - Throws: ``LedgerError/Code/storage`` if the store fails.
    public func pendingRecords() throws -> [PendingRecord] {
        try store.pendingRecords()
    }

    /// Seals a block over every leaf appended so far.
    /// - Returns: The new block, or nil if nothing was appended since the last one.
    /// - Throws: ``LedgerError/Code/inconsistentCheckpoint`` if the tree no longer extends the
    ///   last signed block (nothing is signed); ``LedgerError/Code/storage`` if storing fails.
    @discardableResult
    public func seal() throws -> Block? {
        guard isLeader else { return nil }
        let lastSize = latest?.treeSize ?? 0
        guard edge.size > lastSize else { return nil }
        let tree = tiles.tree(size: edge.size, edge: edge)
        var candidate = blockSigner
        let block = try candidate.signNext(
            size: edge.size, rootHash: try edge.rootHash(),
            consistencyProof: try tree.consistencyProof(from: lastSize, to: edge.size)
        )
        try store.appendBlock(StoredBlock(height: block.height, note: block.note.formatted))
        blockSigner = candidate
        latest = block
        if witnessPolicy == nil { published = (block, block.note) }
        return block
    }

    /// For a shared store (several gateways, one log): catches up with what the other processes
    /// did, and leads if it can. The leader integrates every sequenced leaf into the tiles (then
    /// ``seal()`` signs them); the others re-read the tree's edge. Both re-read the latest block
    /// and the published one. Does nothing for a store that is not shared.
    /// - Returns: Whether this node leads.
    /// - Throws: ``LedgerError/Code/tampered`` if a stored block does not verify under the node
    ///   key (another key signs this log); ``LedgerError/Code/storage``.
    @discardableResult
    public func synchronize() throws -> Bool {
        guard store.isShared else { return true }
        isLeader = false
        let leads = try store.tryLead()
        if leads {
            var next = try store.integrate(limit: 8192)
            while true {
                let more = try store.integrate(limit: 8192)
                if more.size == next.size { break }
                next = more
            }
            edge = next
        } else {
            edge = try store.treeEdge()
        }
        let count = try store.blockCount()
        if count > 0, latest?.height != count - 1 {
            guard let stored = try store.block(height: count - 1) else {
                throw LedgerError(.tampered, "the stored ledger does not verify: block \(count - 1) is missing")
            }
            let block: Block
            do { block = try Block(text: stored.note, verifier: verifier) } catch {
                throw LedgerError(.tampered, "the shared ledger's block \(count - 1) does not verify under this node's key: "
                                  + "every gateway of one log needs the same node key", cause: error)
            }
            latest = block
            blockSigner = BlockSigner(signer: signer, lastBlock: block)
        }
        if let witnessPolicy {
            let keys = witnessPolicy.witnesses.map(\.verifierKey)
            if let height = try store.latestHeight(cosignedBy: keys, threshold: witnessPolicy.threshold),
               height != published?.block.height, let stored = try store.block(height: height) {
                let block = try Block(text: stored.note, verifier: verifier)
                published = (block, try Self.note(of: block, cosignatures: try store.cosignatures(height: height), policy: witnessPolicy))
            }
            if leads {
                for (witness, height) in try store.lastCosignedHeights() where keys.contains(witness) {
                    guard let stored = try store.block(height: height) else { continue }
                    cosignedSizes[witness] = max(cosignedSizes[witness] ?? 0, try Block(text: stored.note, verifier: verifier).treeSize)
                }
            }
        } else if let latest {
            published = (latest, latest.note)
        }
        isLeader = leads
        return leads
    }

    /// The leader's recovery in a shared store: appends the write-ahead records of gateways that
    /// stopped without finishing them (a gateway recovers its own when it restarts; this covers
    /// one that never does). They are integrated and sealed at the next ``synchronize()``.
    /// - Returns: How many records were recovered (0 unless this node leads a shared store).
    public func adoptOrphans() throws -> Int {
        guard store.isShared, isLeader else { return 0 }
        return try store.adoptOrphans(limit: 4096)
    }

    /// The block at `height`.
    /// - Throws: ``LedgerError/Code/notFound``.
    public func block(height: UInt64) throws -> Block {
        if let latest, latest.height == height { return latest }
        guard height < blockCount, let stored = try store.block(height: height) else { throw LedgerError(.notFound, "no block \(height)") }
        return try Block(text: stored.note, verifier: verifier)
    }

    /// The note of the block at `height` with the valid cosignatures of the node's witnesses
    /// stored for it (just the node's signature without witnesses).
    /// - Throws: ``LedgerError/Code/notFound``.
    public func cosignedNote(height: UInt64) throws -> SignedNote {
        let block = try block(height: height)
        guard let witnessPolicy else { return block.note }
        return try Self.note(of: block, cosignatures: try store.cosignatures(height: height), policy: witnessPolicy)
    }

    /// The first `address.width` hashes of a hash tile of the current tree (C2SP tlog-tiles).
    /// - Throws: ``LedgerError/Code/notFound`` if the tree has fewer hashes there.
    public func tileHashes(_ address: TileAddress) throws -> [Data] {
        try tiles.hashes(address, edge: edge)
    }

    /// The leaves of an entry bundle of the current tree (C2SP tlog-tiles): `address.width` leaves
    /// from `address.index · 256`.
    /// - Throws: ``LedgerError/Code/notFound`` if the tree has fewer leaves there.
    public func bundle(_ address: TileAddress) throws -> [StoredLeaf] {
        let start = address.index * UInt64(TileAddress.width)
        guard address.level == nil, start + UInt64(address.width) <= edge.size else {
            throw LedgerError(.notFound, "\(address) is beyond the log's \(edge.size) leaves")
        }
        let leaves = try store.leaves(from: start, limit: address.width)
        guard leaves.count == address.width, leaves.first?.index == start else {
            throw LedgerError(.storage, "the store returned \(leaves.count) leaves for \(address)")
        }
        return leaves
    }

    /// Up to `limit` stored leaves from index `start`, for serving the log to auditors.
    /// - Throws: ``LedgerError/Code/storage`` if the store fails.
    public func leaves(from start: UInt64, limit: Int) throws -> [StoredLeaf] {
        try store.leaves(from: start, limit: limit)
    }

    /// The stored leaves of one owner (``StoredLeaf/owner``), in index order.
    /// - Throws: ``LedgerError/Code/storage`` if the store fails.
    public func leaves(owner: Data) throws -> [StoredLeaf] {
        try store.leaves(owner: owner)
    }

    /// The stored leaf of a record.
    /// - Throws: ``LedgerError/Code/notFound``.
    public func leaf(recordID: String) throws -> StoredLeaf {
        guard let leaf = try store.leaf(recordID: recordID) else { throw LedgerError(.notFound, "no record \(recordID)") }
        return leaf
    }

    /// The stored envelope of a record.
    /// - Throws: ``LedgerError/Code/notFound``.
    public func envelope(recordID: String) throws -> RecordEnvelope {
        guard let leaf = try store.leaf(recordID: recordID) else { throw LedgerError(.notFound, "no record \(recordID)") }
        return try RecordEnvelope(canonicalBytes: leaf.envelope)
    }

    /// The receipt of a record against the latest block; it carries the record's envelope.
    /// - Throws: ``LedgerError/Code/notFound`` for an unknown record;
    ///   ``LedgerError/Code/notYetSealed`` if no block covers it yet.
    public func receipt(recordID: String) throws -> Receipt {
        guard let leaf = try store.leaf(recordID: recordID) else { throw LedgerError(.notFound, "no record \(recordID)") }
        guard let (block, note) = published, leaf.index < block.treeSize else {
            throw LedgerError(.notYetSealed, "record \(recordID) (leaf \(leaf.index)) is not in a "
                              + (witnessPolicy == nil ? "sealed" : "sealed and witnessed") + " block yet")
        }
        return Receipt(
            recordID: recordID, leafIndex: leaf.index, leafHash: leaf.leafHash,
            inclusionProof: try tiles.tree(size: block.treeSize, edge: edge).inclusionProof(index: leaf.index, size: block.treeSize),
            block: note.formatted, envelope: leaf.envelope
        )
    }

    /// The consistency proof between two tree sizes (for `/v1/ledger/consistency`).
    /// - Throws: ``LedgerError/Code/notFound`` unless `from <= to <= size`.
    public func consistencyProof(from: UInt64, to: UInt64) throws -> [Data] {
        try tiles.tree(size: edge.size, edge: edge).consistencyProof(from: from, to: to)
    }

    /// Re-derives the whole ledger from storage and checks every signature, link and tile.
    public func verifyAll() throws -> LedgerAudit {
        try LedgerAudit.run(store: store, verifier: verifier)
    }
}
