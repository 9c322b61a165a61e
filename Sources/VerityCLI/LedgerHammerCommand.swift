import ArgumentParser
import Foundation
import Ledger
import LedgerPostgres
import Node

/// `verity ledger hammer`: the ledger's load tester, in process (benchmarks/ledger-scale drives it).
struct LedgerHammerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hammer",
        abstract: "Load-test a ledger in process: append synthetic records in group commits, then time a restart and proofs.",
        discussion: """
            Appends --records records to the ledger of --data-dir (a scratch directory: the records are synthetic copies of \\
            one sealed envelope under new ids, which no key decrypts), --batch per durable commit, sealing a block every \\
            --seal-every records; reports the append rate and the process's resident memory as the log grows. Then opens the \\
            ledger again as a restart does and times it, and times --proofs receipts (inclusion proofs from the tiles) of \\
            random records. With --records 0 it only measures the restart and proofs of the ledger that is there. It stops \\
            by itself; one JSON object per line with --json.
            """)

    @OptionGroup var data: DataDirectoryOptions
    @Option(help: "Records to append.") var records = 1_000_000
    @Option(help: "Records per group commit (one transaction, one fsync).") var batch = 256
    @Option(name: .customLong("seal-every"), help: "Seal a block every this many records.") var sealEvery = 100_000
    @Option(name: .customLong("report-every"), help: "Print progress every this many records.") var reportEvery = 1_000_000
    @Option(help: "Receipts to time after the restart.") var proofs = 1000
    @Flag(help: "One JSON object per line.") var json = false

    func validate() throws {
        guard records >= 0, batch > 0, sealEvery > 0, reportEvery > 0, proofs >= 0 else {
            throw ValidationError("counts must be positive (--records and --proofs may be 0)")
        }
    }

    func run() async throws {
        let directory = data.directory
        try ledgerCall { try directory.create(); try directory.lock() }
        let signer = try ledgerCall { try directory.nodeSigner(create: !directory.hasLedger) }
        let clock = ContinuousClock()
        // SQLite in the data directory, or the PostgreSQL ledger several gateways share.
        let openStore: () throws -> any LedgerStore = {
            guard let url = directory.database else { return try SQLiteLedgerStore(path: directory.ledgerPath) }
            let store = try PostgresLedgerStore(url: url, gateway: "hammer-\(UUID().uuidString.prefix(8))")
            let owner = try store.claim("node_key", value: signer.verifier.verifierKey)
            guard owner == signer.verifier.verifierKey else {
                throw LedgerError(.tampered, "the ledger in \(store.location.redacted) is signed by \(owner), not by \(directory.nodeKeyPath)")
            }
            return store
        }

        var opened = clock.now
        var node = try ledgerCall { try LedgerNode(store: try openStore(), signer: signer) }
        _ = try await ledgerCall { try await node.synchronize() }
        let firstOpen = clock.now - opened
        let start = await node.size
        emit(["phase": "open", "records": Int(start), "seconds": firstOpen.seconds, "rss_mb": Memory.residentMB, "peak_rss_mb": Memory.peakMB],
             "opened a ledger of \(start) records in \(firstOpen.seconds.formatted3) s")

        if records > 0 {
            let template = try RecordEnvelope.seal(Self.templateRecord(), to: [Account().recipientKey], nodeID: signer.name)
            let owners = (0..<1000).map { _ in Data((0..<8).map { _ in UInt8.random(in: 0...255) }) }
            let run = UUID().uuidString.prefix(8)
            let began = clock.now
            var last = began, lastCount = 0, appended = 0
            while appended < records {
                let n = min(batch, records - appended)
                let writes: [LedgerNode.Write] = (0..<n).map { i in
                    var envelope = template
                    envelope.recordID = "hammer-\(run)-\(appended + i)"
                    envelope.timestampMilliseconds = Int64(Date().timeIntervalSince1970 * 1000)
                    return .leaf(envelope, owner: owners[(appended + i) % owners.count])
                }
                for result in await node.commit(writes) { _ = try result.get() }
                appended += n
                if appended % sealEvery < n || appended == records {
                    // A shared store integrates (the leader's step) before sealing.
                    try await node.synchronize()
                    _ = try await node.seal()
                }
                if appended % reportEvery < n || appended == records {
                    let now = clock.now
                    let rate = Double(appended - lastCount) / (now - last).seconds
                    emit(["phase": "append", "records": Int(start) + appended, "rate": rate, "rss_mb": Memory.residentMB, "peak_rss_mb": Memory.peakMB],
                         "\(Int(start) + appended) records: \(Int(rate)) records/s over the last \(appended - lastCount), RSS \(Memory.residentMB) MB (peak \(Memory.peakMB) MB)")
                    last = now
                    lastCount = appended
                }
            }
            let total = (clock.now - began).seconds
            emit(["phase": "appended", "records": appended, "seconds": total, "rate": Double(appended) / total, "id_prefix": "hammer-\(run)-"],
                 "appended \(appended) records in \(total.formatted3) s: \(Int(Double(appended) / total)) records/s with \(batch) per commit")
            // A restart: the node's only state is its store.
            opened = clock.now
            node = try ledgerCall { try LedgerNode(store: try openStore(), signer: signer) }
            _ = try await ledgerCall { try await node.synchronize() }
            let reopen = clock.now - opened
            emit(["phase": "restart", "records": Int(await node.size), "seconds": reopen.seconds, "rss_mb": Memory.residentMB],
                 "restart: opened \(await node.size) records in \(reopen.seconds.formatted3) s")
        }

        let size = await node.latestBlock?.treeSize ?? 0
        guard proofs > 0, size > 0 else { return }
        var latencies: [Double] = []
        for _ in 0..<proofs {
            let index = UInt64.random(in: 0..<size)
            let began = clock.now
            guard let leaf = try await node.leaves(from: index, limit: 1).first else { continue }
            let receipt = try await node.receipt(recordID: leaf.recordID)
            latencies.append((clock.now - began).seconds * 1000)
            try ledgerCall { _ = try receipt.verify(verifier: signer.verifier) }
        }
        latencies.sort()
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        emit(["phase": "proofs", "count": latencies.count, "p50_ms": percentile(0.5), "p99_ms": percentile(0.99), "max_ms": latencies.last ?? 0,
              "rss_mb": Memory.residentMB, "peak_rss_mb": Memory.peakMB],
             "receipts of \(latencies.count) random records (each verified): p50 \(percentile(0.5).formatted3) ms, p99 \(percentile(0.99).formatted3) ms; RSS \(Memory.residentMB) MB, peak \(Memory.peakMB) MB")
    }

    private func emit(_ object: [String: Any], _ text: String) {
        // Unbuffered, so a reader sees each line as the run goes.
        if json, let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        } else {
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
        }
    }

    /// A record of a typical size: a short chat, its answer and the parameters.
    static func templateRecord() -> LedgerRecord {
        LedgerRecord(
            recordID: "hammer-template", timestampMilliseconds: Int64(Date().timeIntervalSince1970 * 1000), gpu: "none", gpuProvider: "none",
            gpuPricePerHourMicros: 0, modelID: "SmolLM2-135M-Instruct.Q4_1", modelDigest: String(repeating: "0", count: 64),
            parameters: ModelParameters(), systemPrompt: "You are a helpful assistant.",
            prompt: String(repeating: "What is the capital of France? ", count: 8), response: String(repeating: "Paris is the capital of France. ", count: 12),
            senderAddress: "anonymous", promptTokens: 64, completionTokens: 96, finishReason: "stop"
        )
    }
}

/// This process's resident memory, from /proc/self/status.
enum Memory {
    static var residentMB: Int { read("VmRSS:") }
    static var peakMB: Int { read("VmHWM:") }

    private static func read(_ field: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
              let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return 0 }
        return kb / 1024
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension Double {
    var formatted3: String { String(format: "%.3f", self) }
}
