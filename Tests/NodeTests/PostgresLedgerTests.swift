import Foundation
import Synchronization
import Testing
import Ledger
import LedgerPostgres
import TestSupport
@testable import Node

/// Runs `body`, expecting a ``LedgerError`` that `matches`.
private func expectLedgerError(_ body: () throws -> Void, _ matches: (LedgerError) -> Bool, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected a LedgerError", sourceLocation: sourceLocation)
    } catch let error as LedgerError {
        #expect(matches(error), "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a LedgerError, got \(error)", sourceLocation: sourceLocation)
    }
}

/// The ledger and the account registry on PostgreSQL (a throwaway cluster of Debian's server,
/// `PostgresCluster`): sequencing from several connections at once, leader election, a follower's
/// view, gateways' own pending records, and the registry's SQL on PostgreSQL.
@Suite("PostgreSQL: the shared ledger and registry", .serialized)
struct PostgresLedgerTests {
    static func leaf(_ id: String) -> StoredLeaf {
        let bytes = Data("envelope of \(id)".utf8)
        return StoredLeaf(index: 0, recordID: id, envelope: bytes, leafHash: RFC6962.leafHash(bytes), owner: Data(repeating: 7, count: 8))
    }

    @Test func urlsParseOrSayWhatIsWrong() throws {
        let full = try PostgresLocation(url: "postgres://me:p%40ss@db.example:6543/ledger?sslmode=require")
        #expect(full.host == "db.example" && full.port == 6543 && full.user == "me" && full.password == "p@ss")
        #expect(full.database == "ledger" && full.tls && !full.redacted.contains("p@ss"))
        let socket = try PostgresLocation(url: "postgresql:///verity?host=/run/postgresql")
        #expect(socket.socketDirectory == "/run/postgresql" && socket.database == "verity")
        for (bad, words) in [("mysql://h/db", "postgres://"), ("postgres://h/", "name the database"),
                             ("postgres://h/db?sslmode=allow", "sslmode"), ("postgres://h/db?colour=red", "unknown parameter"),
                             ("postgres://h:0/db", "port")] {
            expectLedgerError({ _ = try PostgresLocation(url: bad) }, { $0.message.contains(words) })
        }
    }

    @Test func concurrentSequencingFromTwoGatewaysIsContiguous() throws {
        let url = try PostgresCluster.shared().makeDatabase()
        let stores = try (0..<2).map { try PostgresLedgerStore(url: url, gateway: "gw\($0)") }
        let taken = Mutex<[(first: UInt64, ids: [String])]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            let store = stores[worker % 2]
            var random = SplitMix64(seed: UInt64(worker))
            for round in 0..<25 {
                let ids = (0..<Int(random.next() % 12 + 1)).map { "w\(worker)-r\(round)-\($0)" }
                // One connection per store: its calls take turns, the two stores race.
                let first = try! store.sequence(pending: [], discarding: [], leaves: ids.map(Self.leaf))
                taken.withLock { $0.append((first, ids)) }
            }
        }
        let batches = taken.withLock { $0 }.sorted { $0.first < $1.first }
        var next: UInt64 = 0
        for batch in batches {
            #expect(batch.first == next)
            next += UInt64(batch.ids.count)
        }
        #expect(try stores[0].sequencedCount() == next)
        // Nothing is in the tree until the leader integrates; then all of it, in index order.
        #expect(try stores[1].leafCount() == 0)
        #expect(try stores[0].tryLead() && !(try stores[1].tryLead()))
        var edge = try stores[0].integrate(limit: 100)
        #expect(edge.size == 100)
        edge = try stores[0].integrate(limit: 100_000)
        #expect(edge.size == next)
        let stored = try stores[1].leaves(from: 0, limit: Int(next))
        #expect(stored.map(\.index) == Array(0..<next))
        #expect(stored.map(\.recordID) == batches.flatMap(\.ids))
        var expected = TreeEdge()
        expected.append(leafHashes: stored.map(\.leafHash))
        #expect(try stores[1].treeEdge().rootHash() == expected.rootHash())
        // A record id is unique across gateways.
        expectLedgerError({ _ = try stores[1].sequence(pending: [], discarding: [], leaves: [Self.leaf(batches[0].ids[0])]) },
                          { $0.code == .duplicateRecord })
        #expect(try stores[0].sequencedCount() == next)
    }

    @Test func aLeaderThatGoesAwayIsReplaced() throws {
        let url = try PostgresCluster.shared().makeDatabase()
        var first: PostgresLedgerStore? = try PostgresLedgerStore(url: url, gateway: "a")
        let second = try PostgresLedgerStore(url: url, gateway: "b")
        #expect(try first!.tryLead())
        #expect(try first!.tryLead())
        #expect(try !second.tryLead())
        first = nil  // its session ends, and with it the advisory lock
        var leads = false
        for _ in 0..<50 where !leads {
            leads = try second.tryLead()
            if !leads { Thread.sleep(forTimeInterval: 0.1) }
        }
        #expect(leads)
    }

    @Test func followersServeWhatTheLeaderSeals() async throws {
        let url = try PostgresCluster.shared().makeDatabase()
        let signer = try NoteSigner(name: "verity/test/shared")
        let leader = try LedgerNode(store: try PostgresLedgerStore(url: url, gateway: "a"), signer: signer)
        let follower = try LedgerNode(store: try PostgresLedgerStore(url: url, gateway: "b"), signer: signer)
        #expect(try await leader.synchronize())
        #expect(try await !follower.synchronize())
        let key = Account().recipientKey
        var appended: [LedgerNode.Appended] = []
        for (i, node) in [leader, follower, follower, leader].enumerated() {
            let record = LedgerRecord(recordID: "rec-\(i)", timestampMilliseconds: 1_700_000_000_000 + Int64(i), gpu: "none",
                                      gpuProvider: "none", gpuPricePerHourMicros: 0, modelID: "m", modelDigest: String(repeating: "0", count: 64),
                                      parameters: ModelParameters(), prompt: "p\(i)", response: "r\(i)", senderAddress: "anonymous",
                                      finishReason: "stop")
            let envelope = try RecordEnvelope.seal(record, to: [key], nodeID: signer.name)
            appended.append(try await node.commit([.leaf(envelope, owner: key.keyID)])[0].get()!)
        }
        #expect(appended.map(\.leafIndex) == [0, 1, 2, 3])
        #expect(try await follower.seal() == nil)  // only the leader seals
        try await leader.synchronize()
        let block = try #require(try await leader.seal())
        #expect(block.treeSize == 4)
        try await follower.synchronize()
        #expect(await follower.publishedBlock == block)
        let receipt = try await follower.receipt(recordID: "rec-1")
        #expect(try receipt.verify(verifier: signer.verifier).block.height == 0)
        // Another key cannot open this log: its latest block does not verify under it.
        expectLedgerError({
            _ = try LedgerNode(store: try PostgresLedgerStore(url: url, gateway: "c"), signer: try NoteSigner(name: "verity/test/other"))
        }, { $0.code == .tampered })
    }

    @Test func eachGatewayRecoversOnlyItsOwnPendingRecordsAndTheLeaderThoseOfGatewaysThatAreGone() throws {
        let url = try PostgresCluster.shared().makeDatabase()
        let a = try PostgresLedgerStore(url: url, gateway: "a")
        var b: PostgresLedgerStore! = try PostgresLedgerStore(url: url, gateway: "b")
        // A second process under a running gateway's name (a copied data directory) is refused.
        expectLedgerError({ _ = try PostgresLedgerStore(url: url, gateway: "b") }, { $0.message.contains("gateway.id") })
        _ = try a.sequence(pending: [PendingRecord(recordID: "x", envelope: Data([1])), PendingRecord(recordID: "x", envelope: Data([2]))],
                           discarding: [], leaves: [])
        _ = try b.sequence(pending: [PendingRecord(recordID: "y", envelope: Data([3]))], discarding: [], leaves: [])
        #expect(try a.pendingRecords() == [PendingRecord(recordID: "x", envelope: Data([2]))])
        #expect(try b.pendingRecords().map(\.recordID) == ["y"])
        // The leaf replaces its pending record in the same transaction.
        var leaf = Self.leaf("x")
        leaf.owner = nil
        _ = try a.sequence(pending: [], discarding: [], leaves: [leaf])
        #expect(try a.pendingRecords().isEmpty)
        #expect(try b.pendingRecords().map(\.recordID) == ["y"])
        // While b runs, the leader leaves its records alone; once it is gone, appends them.
        _ = try a.sequence(pending: [PendingRecord(recordID: "z", envelope: Data([4]))], discarding: [], leaves: [])
        #expect(try a.adoptOrphans(limit: 100) == 0)
        b = nil
        #expect(try a.adoptOrphans(limit: 100) == 1)
        #expect(try a.leaf(recordID: "y")?.envelope == Data([3]))
        #expect(try a.pendingRecords().map(\.recordID) == ["z"])
        #expect(try a.adoptOrphans(limit: 100) == 0)
        // Its name is free again: it can restart, with nothing left to recover.
        #expect(try PostgresLedgerStore(url: url, gateway: "b").pendingRecords().isEmpty)
    }

    @Test func theRegistrysSQLRunsOnPostgreSQL() throws {
        let url = try PostgresCluster.shared().makeDatabase()
        let one = AccountRegistry(database: try PostgresRegistryDatabase(url: url))
        let other = AccountRegistry(database: try PostgresRegistryDatabase(url: url))
        let alice = Account()
        try one.register(address: alice.address, recipientKey: alice.recipientKey)
        try other.register(address: alice.address, recipientKey: alice.recipientKey)
        expectLedgerError({ try other.register(address: alice.address, recipientKey: Account().recipientKey) }, { $0.code == .invalidValue })
        let issued = try one.issueKey(for: alice.address, limits: RateLimits(requestsPerMinute: 5))
        let (account, info) = try #require(try other.key(issued.secret))
        #expect(account.address == alice.address && account.recipientKey == alice.recipientKey)
        #expect(info.limits.requestsPerMinute == 5 && info.limits.tokensPerMinute == nil)
        #expect(try other.hasActiveKeys() && other.keys().map(\.keyID) == [issued.info.keyID])
        try other.revoke(keyID: issued.info.keyID)
        #expect(try one.key(issued.secret) == nil && !one.hasActiveKeys())
        expectLedgerError({ try one.revoke(keyID: issued.info.keyID) }, { $0.code == .notFound })
        // Workers and join tokens: a token admits one worker, once.
        let token = try one.issueJoinToken(note: "box 1")
        let worker = WorkerKey().id, late = WorkerKey().id
        try other.redeemJoinToken(token.secret, for: worker)
        expectLedgerError({ try one.redeemJoinToken(token.secret, for: late) }, { $0.code == .notFound })
        #expect(try one.isAdmitted(worker) && !one.isAdmitted(late))
        #expect(try one.admittedWorkers().first?.note == "box 1 (join token \(token.tokenID))")
        try one.revokeWorker(worker)
        try other.admitWorker(worker, note: "again")
        #expect(try one.admittedWorkers().map(\.note) == ["again"])
        try one.setRouting(nil, for: alice.address)
        #expect(try other.account(alice.address)?.routing == nil)
    }
}
