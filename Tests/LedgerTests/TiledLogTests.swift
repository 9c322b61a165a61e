import Foundation
import GRDB
import Synchronization
import Testing
@testable import Ledger

/// C2SP tlog-tiles: the spec's encodings, byte for byte, and the tiled tree against the tree held
/// whole in memory.
@Suite("Tiled log: tile paths, tiles, proofs from tiles, restart from the right edge")
struct TiledLogTests {
    // MARK: The spec's worked encodings

    @Test func tilePathsAreTheSpecsSpelling() throws {
        #expect(TileAddress.hashes(level: 0, index: 1_234_067).path == "tile/0/x001/x234/067")
        #expect(TileAddress.hashes(level: 0, index: 1_234_067, width: 8).path == "tile/0/x001/x234/067.p/8")
        #expect(TileAddress.hashes(level: 3, index: 0).path == "tile/3/000")
        #expect(TileAddress.hashes(level: 1, index: 5, width: 17).path == "tile/1/005.p/17")
        #expect(TileAddress.entries(index: 1000).path == "tile/entries/x001/000")
        #expect(TileAddress.entries(index: 273, width: 112).path == "tile/entries/273.p/112")
        #expect(TileAddress.encode(index: UInt64.max) == "x018/x446/x744/x073/x709/x551/615")
        for path in ["tile/0/x001/x234/067", "tile/0/x001/x234/067.p/8", "tile/63/000", "tile/entries/000.p/255",
                     "tile/entries/x018/x446/x744/x073/x709/x551/615", "tile/2/999.p/1"] {
            #expect(try TileAddress(path: path).path == path)
        }
        let parsed = try TileAddress(path: "tile/0/x001/x234/067.p/8")
        #expect(parsed.level == 0 && parsed.index == 1_234_067 && parsed.width == 8 && !parsed.isFull)
        #expect(try TileAddress(path: "tile/entries/x001/000").level == nil)
    }

    @Test(arguments: [
        "tile/00/000", "tile/64/000", "tile/-1/000", "tile/0/1234067", "tile/0/x001/234/067", "tile/0/001/x234/067",
        "tile/0/x000/067", "tile/0/67", "tile/0/0067", "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/08",
        "tile/0/000.p", "tile/0/000.p/", "tile/0/", "tile/0", "tile/entries", "tile/entries/", "tile/0/000/", "/tile/0/000",
        "tile//000", "tile/0/x018/x446/x744/x073/x709/x551/616", "tile/0/x001/x002/x003/x004/x005/x006/x007/008",
        "tile/0/+12", "tile/0/１２３", "tile/0/000.q/5", "tile/1/000.p/1/extra", "tiles/0/000", "tile/entries/000.p/+5",
    ])
    func nonCanonicalTilePathsAreRefused(path: String) {
        #expect(throws: LedgerError.self, "\(path)") { try TileAddress(path: path) }
    }

    /// The spec's example: a tree of 70,000 leaves is 273 full level-0 tiles, a partial level-0
    /// tile of width 112, one full level-1 tile, a partial level-1 tile of width 17 and a partial
    /// level-2 tile of width 1; a tree of 256 is a full level-0 tile and a level-1 tile of width 1.
    @Test func theSpecsTileCountsFor70000And256Leaves() throws {
        func tiles(_ size: UInt64) -> [TileKey: Int] {
            var edge = TreeEdge()
            let changed = edge.append(leafHashes: (0..<size).lazy.map { RFC6962.leafHash(Data("\($0)".utf8)) })
            return changed.mapValues { $0.count / 32 }
        }
        let t = tiles(70_000)
        #expect(t.filter { $0.key.level == 0 && $0.value == 256 }.count == 273)
        #expect(t[TileKey(level: 0, index: 273)] == 112)
        #expect(t.filter { $0.key.level == 1 && $0.value == 256 }.count == 1)
        #expect(t[TileKey(level: 1, index: 1)] == 17)
        #expect(t[TileKey(level: 2, index: 0)] == 1)
        #expect(t.count == 273 + 1 + 1 + 1 + 1)
        #expect(tiles(256) == [TileKey(level: 0, index: 0): 256, TileKey(level: 1, index: 0): 1])
    }

    // MARK: The tiled tree is the tree

    static func leafHashes(_ n: Int) -> [Data] { (0..<n).map { RFC6962.leafHash(Data("leaf \($0)".utf8)) } }

    /// Tiles are the RFC 6962 hashes at heights 0, 8, 16…; roots and proofs read from them equal
    /// the in-memory tree's, at every size near the tile boundaries.
    @Test(arguments: [1, 2, 3, 255, 256, 257, 511, 512, 513, 1000, 65535, 65536, 65537, 70000])
    func tilesRootsAndProofsMatchTheWholeTree(size: Int) throws {
        let hashes = Self.leafHashes(size)
        let tree = MerkleTree(leafHashes: hashes)
        var edge = TreeEdge()
        var stored: [TileKey: Data] = [:]
        // Appended in uneven groups, as group commits do.
        var at = 0, group = 1
        while at < size {
            let end = min(size, at + group)
            stored.merge(edge.append(leafHashes: hashes[at..<end])) { _, new in new }
            at = end
            group = group * 3 % 1000 + 1
        }
        #expect(edge.size == UInt64(size))
        for (key, bytes) in stored {
            let expected = try (0..<(bytes.count / 32)).map { try tree.perfectHash(height: 8 * key.level, index: key.index * 256 + UInt64($0)) }
            #expect(bytes == TileCodec.bytes(expected), "\(key)")
        }
        #expect(try edge.rootHash() == (try tree.rootHash()))
        // Reloaded from the stored tiles: the same edge.
        #expect(try TreeEdge(size: UInt64(size)) { stored[$0] } == edge)

        let tiled = TiledHashes(size: UInt64(size)) { address in
            Array(try TileCodec.hashes(stored[TileKey(level: address.level!, index: address.index)]!).prefix(address.width))
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<40 {
            let n = UInt64.random(in: 1...UInt64(size), using: &rng), m = UInt64.random(in: 0...n, using: &rng)
            let i = UInt64.random(in: 0..<n, using: &rng)
            #expect(try tiled.rootHash(size: n) == (try tree.rootHash(size: n)))
            #expect(try tiled.inclusionProof(index: i, size: n) == (try tree.inclusionProof(index: i, size: n)))
            #expect(try tiled.consistencyProof(from: m, to: n) == (try tree.consistencyProof(from: m, to: n)))
        }
    }

    // MARK: A node over stored tiles

    let alice = Account()

    func envelope(_ id: String) throws -> RecordEnvelope {
        try RecordEnvelope.seal(Fixtures.record(id, sender: alice), to: [alice.recipientKey], nodeID: "n")
    }

    /// A store that counts full reads of the log, to show a restart makes none.
    final class CountingStore: LedgerStore {
        let inner: any LedgerStore
        let scans = Mutex(0)
        init(_ inner: any LedgerStore) { self.inner = inner }
        func append(_ leaf: StoredLeaf) throws { try inner.append(leaf) }
        func append(contentsOf leaves: [StoredLeaf]) throws { try inner.append(contentsOf: leaves) }
        func commit(pending: [PendingRecord], discarding: [String], leaves: [StoredLeaf]) throws {
            try inner.commit(pending: pending, discarding: discarding, leaves: leaves)
        }
        func pendingRecords() throws -> [PendingRecord] { try inner.pendingRecords() }
        func appendBlock(_ block: StoredBlock) throws { try inner.appendBlock(block) }
        func leafCount() throws -> UInt64 { try inner.leafCount() }
        func treeEdge() throws -> TreeEdge { try inner.treeEdge() }
        func tile(_ key: TileKey) throws -> Data? { try inner.tile(key) }
        func blockCount() throws -> UInt64 { try inner.blockCount() }
        func block(height: UInt64) throws -> StoredBlock? { try inner.block(height: height) }
        func leaves() throws -> [StoredLeaf] { scans.withLock { $0 += 1 }; return try inner.leaves() }
        func forEachLeaf(_ body: (StoredLeaf) throws -> Void) throws { scans.withLock { $0 += 1 }; try inner.forEachLeaf(body) }
        func blocks() throws -> [StoredBlock] { scans.withLock { $0 += 1 }; return try inner.blocks() }
        func leaf(recordID: String) throws -> StoredLeaf? { try inner.leaf(recordID: recordID) }
        func leaves(from start: UInt64, limit: Int) throws -> [StoredLeaf] { try inner.leaves(from: start, limit: limit) }
        func leaves(owner: Data) throws -> [StoredLeaf] { try inner.leaves(owner: owner) }
    }

    func temporaryDatabase() throws -> (URL, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tiles-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return (dir, dir.appendingPathComponent("ledger.sqlite").path)
    }

    /// A restart reads the right edge and the latest block, never the log; receipts and
    /// consistency proofs after it verify, and the stored tiles are the tree's.
    @Test func aRestartReadsTheEdgeNotTheLog() async throws {
        let (dir, path) = try temporaryDatabase()
        defer { try? FileManager.default.removeItem(at: dir) }
        let signer = try NoteSigner(name: "verity.test/ledger")
        var firstBlock: Block?
        do {
            let node = try LedgerNode(store: try SQLiteLedgerStore(path: path), signer: signer)
            for batch in 0..<7 {
                _ = await node.append(contentsOf: try (0..<100).map { (try envelope("r\(batch * 100 + $0)"), alice.recipientKey.keyID) })
                let block = try await node.seal()
                if firstBlock == nil { firstBlock = block }
            }
        }
        let counting = CountingStore(try SQLiteLedgerStore(path: path))
        let node = try LedgerNode(store: counting, signer: signer)
        #expect(await node.size == 700)
        #expect(await node.latestBlock?.height == 6)
        _ = try await node.append(try envelope("after"), owner: nil)
        let block = try #require(try await node.seal())
        let receipt = try await node.receipt(recordID: "r523")
        #expect(try receipt.verify(verifier: signer.verifier).block == block)
        let first = try #require(firstBlock)
        try MerkleProof.verifyConsistency(oldSize: first.treeSize, newSize: block.treeSize, oldRoot: first.rootHash, newRoot: block.rootHash,
                                          proof: try await node.consistencyProof(from: first.treeSize, to: block.treeSize))
        #expect(try await node.block(height: 0) == first)
        #expect(counting.scans.withLock { $0 } == 0)
        // The full audit does read everything, and checks every tile.
        let audit = try await node.verifyAll()
        #expect(audit.isValid, "\(audit.problems)")
        #expect(audit.tileCount == 3 + 1)
    }

    /// A ledger written before tiles existed (migration v3) gets its tiles at its next start,
    /// and goes on with the same roots.
    @Test func anOldLedgerGetsItsTilesInPlace() async throws {
        let (dir, path) = try temporaryDatabase()
        defer { try? FileManager.default.removeItem(at: dir) }
        let signer = try NoteSigner(name: "verity.test/ledger")
        var tree = MerkleTree()
        let old = try (0..<300).map { try envelope("old\($0)").canonicalBytes() }
        for bytes in old { tree.append(leaf: bytes) }
        let block = try Block(height: 0, size: 300, rootHash: try tree.rootHash(), previousHash: Block.genesisPreviousHash, signer: signer)
        do {
            let queue = try DatabaseQueue(path: path)
            try SQLiteLedgerStore.migrator.migrate(queue, upTo: "v3")
            try await queue.write { db in
                for (i, bytes) in old.enumerated() {
                    try db.execute(sql: "INSERT INTO leaves (idx, record_id, envelope, leaf_hash) VALUES (?, ?, ?, ?)",
                                   arguments: [i, "old\(i)", bytes, RFC6962.leafHash(bytes)])
                }
                try db.execute(sql: "INSERT INTO blocks (height, note) VALUES (0, ?)", arguments: [block.note.formatted])
            }
        }
        // Read-only, before the migration: verifiable, with no tiles to check.
        let before = try LedgerAudit.run(store: try SQLiteLedgerStore(readingAt: path), verifier: signer.verifier)
        #expect(before.isValid && before.tileCount == 0)
        let node = try LedgerNode(store: try SQLiteLedgerStore(path: path), signer: signer)
        #expect(await node.size == 300)
        _ = try await node.append(try envelope("new"), owner: nil)
        let sealed = try #require(try await node.seal())
        #expect(sealed.treeSize == 301)
        let audit = try await node.verifyAll()
        #expect(audit.isValid, "\(audit.problems)")
        #expect(audit.tileCount == 3)
    }

    /// An altered tile: a restart that needs it refuses the ledger, and the audit names it.
    @Test func anAlteredTileIsNamed() async throws {
        let store = InMemoryLedgerStore()
        let signer = try NoteSigner(name: "verity.test/ledger")
        let node = try LedgerNode(store: store, signer: signer)
        _ = await node.append(contentsOf: try (0..<600).map { (try envelope("r\($0)"), nil) })
        try await node.seal()
        store.tamperTiles { tiles in
            var bytes = tiles[TileKey(level: 0, index: 1)]!
            bytes[40] ^= 1
            tiles[TileKey(level: 0, index: 1)] = bytes
        }
        let audit = try LedgerAudit.run(store: store, verifier: signer.verifier, envelopes: false)
        #expect(audit.problems.map(\.subject) == [.tile(level: 0, index: 1)])
        store.tamperTiles { tiles in
            var bytes = tiles[TileKey(level: 0, index: 2)]!
            bytes[0] ^= 1
            tiles[TileKey(level: 0, index: 2)] = bytes
        }
        // Tile 0/2 is on the right edge: the root a restart computes no longer matches the block.
        #expect(throws: LedgerError.self) { try LedgerNode(store: store, signer: signer) }
    }
}
