import ArgumentParser
import Foundation
import Ledger
import Node

/// `verity ledger`: audit the ledger, verify receipts, decrypt one's own records.
struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger", abstract: "Verify the ledger and receipts; decrypt your records.",
        discussion: """
            What verification proves: that each record existed, unaltered, in the node's append-only log when the \
            block covering it was signed. It does not prove that the model computed the response correctly.
            """,
        subcommands: [LedgerVerifyCommand.self, LedgerFsckCommand.self, LedgerVerifyReceiptCommand.self, LedgerDecryptCommand.self, LedgerNodeKeyCommand.self,
                      LedgerProvenanceCommand.self, LedgerHammerCommand.self])
}

/// Where a ledger is read from: the data directory, or a server's public API.
struct LedgerSourceOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"),
            help: "Read the ledger from this data directory (default: $VERITY_DATA_DIR, else $XDG_DATA_HOME/verity, else ~/.local/share/verity).")
    var dataDir: String?
    @Option(help: "Read the ledger from a running server instead (e.g. http://127.0.0.1:8080).") var url: String?

    @Option(name: .customLong("ledger-db"),
            help: "Read the ledger from this PostgreSQL database (postgres://…), which several gateways share (default: $VERITY_LEDGER_DB).")
    var ledgerDatabase: String?

    func validate() throws {
        if dataDir != nil && url != nil { throw ValidationError("use --data-dir or --url, not both") }
        if ledgerDatabase != nil && url != nil { throw ValidationError("use --ledger-db or --url, not both") }
    }

    var directory: DataDirectory {
        var directory = DataDirectory(path: dataDir ?? DataDirectory.defaultPath)
        if let ledgerDatabase { directory.database = ledgerDatabase }
        return directory
    }

    /// A client for `url`, if given.
    var server: LedgerClient? { url.map(LedgerClient.init) }
}

/// A witness policy a verifier enforces: the witnesses it trusts and how many must have cosigned.
struct WitnessPolicyOptions: ParsableArguments {
    @Option(name: .customLong("witness"), help: "A witness's verifier key (text, or a file holding it) that the policy trusts; repeatable.")
    var witnesses: [String] = []
    @Option(name: .customLong("witness-threshold"), help: "How many of the --witness keys must have cosigned (default: all of them).")
    var witnessThreshold: Int?

    func validate() throws {
        if witnessThreshold != nil && witnesses.isEmpty { throw ValidationError("--witness-threshold needs --witness keys") }
    }

    /// The policy, if any witness is given.
    func policy() throws -> WitnessPolicy? {
        guard !witnesses.isEmpty else { return nil }
        return try ledgerCall {
            try WitnessPolicy(witnesses: try witnesses.map { try CosignatureVerifier(verifierKey: readKeyText($0)) },
                              threshold: witnessThreshold ?? witnesses.count)
        }
    }

    /// Checks `note` against the policy: nil if met (or no policy), else why not.
    func unmet(_ note: SignedNote, _ policy: WitnessPolicy?) -> String? {
        guard let policy else { return nil }
        let cosigners = policy.cosigners(of: note)
        guard cosigners.count < policy.threshold else { return nil }
        return "meets no witness policy: \(cosigners.count) of the \(policy.witnesses.count) trusted witnesses cosigned it, \(policy.threshold) needed"
            + (cosigners.isEmpty ? "" : " (cosigned by \(cosigners.map(\.name).joined(separator: ", ")))")
    }
}

/// `verity ledger verify`.
struct LedgerVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-derive the whole tree from storage; check every record, hash tile, block signature, chain link and consistency proof.",
        discussion: """
            With --url, reads the log as any auditor can, with HTTP GETs of its C2SP tlog-tiles (the checkpoint, every \
            entry bundle and hash tile) and its blocks, and checks the served tiles against the entries too. \
            Exits 1 and names the first bad record, tile or block if anything is wrong.
            """)

    @OptionGroup var source: LedgerSourceOptions
    @Option(name: .customLong("node-key"),
            help: "The node's verifier key (text, or a file holding it). Default: node.key of --data-dir, or what --url publishes (which then proves only that the server's log is self-consistent).")
    var nodeKey: String?
    @OptionGroup var witnessPolicy: WitnessPolicyOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await LedgerAuditRun(source: source, nodeKey: nodeKey, witnesses: witnessPolicy, json: json, envelopes: true).run()
    }
}

/// `verity ledger fsck`.
struct LedgerFsckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract: "A fast integrity check: every entry against its leaf hash and the hash tiles, every tile against the tree, every block against its root.",
        discussion: "Like verify, without parsing each record's envelope. Exits 1 and names the first bad record, tile or block.")

    @OptionGroup var source: LedgerSourceOptions
    @Option(name: .customLong("node-key"), help: "The node's verifier key (text, or a file holding it); as for verify.")
    var nodeKey: String?
    @OptionGroup var witnessPolicy: WitnessPolicyOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        try await LedgerAuditRun(source: source, nodeKey: nodeKey, witnesses: witnessPolicy, json: json, envelopes: false).run()
    }
}

/// The audit behind `verify` and `fsck`.
struct LedgerAuditRun {
    var source: LedgerSourceOptions
    var nodeKey: String?
    var witnesses: WitnessPolicyOptions
    var json: Bool
    var envelopes: Bool

    func run() async throws {
        let store: any LedgerStore
        let verifier: NoteVerifier
        let policy = try witnesses.policy()
        var unmet: String?
        if let server = source.server {
            if let nodeKey { verifier = try readVerifier(nodeKey) } else { verifier = try await server.nodeKey() }
            let snapshot = try await server.snapshot(verifier: verifier)
            store = snapshot.store
            unmet = witnesses.unmet(snapshot.checkpoint.note, policy).map { "the checkpoint (block \(snapshot.checkpoint.height)) \($0)" }
        } else {
            guard policy == nil else { throw ValidationError("--witness checks the checkpoint a server publishes: use it with --url") }
            let directory = source.directory
            verifier = try nodeKey.map(readVerifier) ?? (try ledgerCall { try directory.nodeSigner(create: false).verifier })
            store = try ledgerCall { try directory.ledgerStoreForReading() }
        }
        // On a thread of its own: a remote store blocks on its requests, which must not hold
        // one of the few cooperative threads the requests themselves run on.
        let envelopes = envelopes
        var audit = try await onOwnThread { try ledgerCall { try LedgerAudit.run(store: store, verifier: verifier, envelopes: envelopes) } }
        if let unmet, let height = try? store.blockCount(), height > 0 {
            audit.problems.append(LedgerAudit.Problem(subject: .block(height: height - 1), message: unmet))
        }
        if json {
            print(JSON.object([
                ("valid", .bool(audit.isValid)), ("records", .int(Int(audit.leafCount))), ("blocks", .int(Int(audit.blockCount))),
                ("tiles", .int(audit.tileCount)), ("unsealed", .int(Int(audit.unsealedLeafCount))), ("pending", .int(audit.pendingRecordCount)),
                ("problems", .array(audit.problems.map { .string($0.description) })),
            ]).serialized())
        } else if audit.isValid {
            print("ok: \(audit.leafCount) records, \(audit.blockCount) blocks, \(audit.tileCount) hash tiles, \(audit.unsealedLeafCount) records not yet sealed; signed by \(verifier.name)"
                  + (audit.pendingRecordCount > 0 ? "; \(audit.pendingRecordCount) written ahead of answers not yet recorded (a server recovers them as interrupted)" : ""))
        } else {
            print("FAILED: \(audit.problems[0])")
            for problem in audit.problems.dropFirst() { print("  also: \(problem)") }
        }
        if !audit.isValid { throw ExitCode.failure }
    }
}

/// `verity ledger verify-receipt`.
struct LedgerVerifyReceiptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-receipt",
        abstract: "Verify a saved receipt (from /v1/ledger/records/{id}/receipt) offline against the node's key.",
        discussion: "Prints the record's time and node as proven by the receipt's envelope.")

    @Argument(help: "The receipt JSON file.") var file: String
    @Option(name: .customLong("node-key"), help: "The node's verifier key (text, or a file holding it), from /v1/ledger/node-key or `verity ledger node-key`.")
    var nodeKey: String
    @OptionGroup var witnessPolicy: WitnessPolicyOptions

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read receipt file \(file)") }
        let receipt: Receipt
        do { receipt = try JSONDecoder().decode(Receipt.self, from: data) } catch {
            throw CLIError("\(file) is not a ledger receipt: \(error)")
        }
        let verifier = try readVerifier(nodeKey)
        let policy = try witnessPolicy.policy()
        let verified = try ledgerCall { try receipt.verify(verifier: verifier) }
        var witnessed = ""
        if let policy {
            let note = try ledgerCall { try SignedNote(parsing: receipt.block) }
            if let unmet = witnessPolicy.unmet(note, policy) {
                print("FAILED: record \(verified.recordID) is in block \(verified.block.height), signed by \(verifier.name), but the block \(unmet)")
                throw ExitCode.failure
            }
            let cosigners = policy.cosigners(of: note)
            witnessed = "; cosigned by \(cosigners.count) of \(policy.witnesses.count) witnesses (\(cosigners.map(\.name).joined(separator: ", ")))"
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        print("ok: record \(verified.recordID) is leaf \(receipt.leafIndex) of block \(verified.block.height) "
              + "(tree size \(verified.block.treeSize)), signed by \(verifier.name); "
              + "recorded at \(formatter.string(from: verified.date)) by node \(verified.nodeID)" + witnessed)
    }
}

/// `verity ledger decrypt`.
struct LedgerDecryptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decrypt", abstract: "Decrypt one of your records with your account key and print it as JSON.")

    @Argument(help: "The record id (the completion's id, e.g. chatcmpl-…).") var id: String
    @Option(help: "Your account key bundle (for records of requests without an account: the data directory's operator.json).")
    var account: String
    @OptionGroup var source: LedgerSourceOptions

    func run() async throws {
        let key = try readAccount(account)
        let envelope: RecordEnvelope
        if let server = source.server {
            envelope = try await server.envelope(id)
        } else {
            let store = try ledgerCall { try source.directory.ledgerStoreForReading() }
            guard let leaf = try ledgerCall({ try store.leaf(recordID: id) }) else { throw CLIError("no record \(id) in \(source.directory.path)") }
            envelope = try ledgerCall { try RecordEnvelope(canonicalBytes: leaf.envelope) }
        }
        let record = try ledgerCall { try key.open(envelope) }
        print(record.json.serialized())
    }
}

/// `verity ledger node-key`.
struct LedgerNodeKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "node-key", abstract: "Print the node's public verifier key (for verify-receipt).")

    @OptionGroup var data: DataDirectoryOptions

    func run() throws {
        print(try ledgerCall { try data.directory.nodeSigner(create: false).verifier.verifierKey })
    }
}

/// A verifier key given as text or as a file holding it.
func readVerifier(_ value: String) throws -> NoteVerifier {
    try ledgerCall { try NoteVerifier(verifierKey: readKeyText(value)) }
}

/// A key given as text or as a file holding it.
func readKeyText(_ value: String) -> String {
    let text = FileManager.default.fileExists(atPath: value) ? (try? String(contentsOfFile: value, encoding: .utf8)) ?? value : value
    return text.trimmingCharacters(in: .whitespacesAndNewlines)
}

extension LedgerRecord {
    /// The record as `verity ledger decrypt` prints it: snake_case keys, the time also as ISO 8601,
    /// the price and cost in currency units, parameters with their wire names, and who served it:
    /// `worker` (the worker id, or null for an answer of `verity serve`'s own engine),
    /// `advert_sha256` (base64), `cost` and `cost_micros`, and `usage_statement` ({`payload`: the
    /// statement's JSON text, `signature`: base64, `verified`: whether it verifies offline against
    /// `worker` and names this record, `error`: why not, or null}, or null).
    var json: JSON {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        func optional(_ s: String?) -> JSON { s.map(JSON.string) ?? .null }
        var params: [(String, JSON)] = [
            ("temperature", parameters.temperature.map(JSON.double) ?? .null), ("top_p", parameters.topP.map(JSON.double) ?? .null),
            ("top_k", parameters.topK.map { .int(Int($0)) } ?? .null), ("max_tokens", parameters.maxTokens.map { .int(Int($0)) } ?? .null),
            ("seed", parameters.seed.map { .string(String($0)) } ?? .null),
        ]
        params += parameters.extra.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }
        var pairs: [(String, JSON)] = [
            ("record_id", .string(recordID)), ("datetime", .string(formatter.string(from: date))),
            ("timestamp_ms", .int(Int(timestampMilliseconds))), ("sender_address", .string(senderAddress)),
            ("gpu", .string(gpu)), ("gpu_provider", .string(gpuProvider)),
            ("gpu_price_per_hour", .double(Double(gpuPricePerHourMicros) / 1_000_000)), ("currency", .string(currency)),
            ("model", .string(modelID)), ("model_digest", .string(modelDigest)), ("chat_template_hash", optional(chatTemplateHash)),
            ("parameters", .object(params)), ("system_prompt", optional(systemPrompt)), ("prompt", .string(prompt)),
            ("response", .string(response)), ("prompt_tokens", promptTokens.map { .int(Int($0)) } ?? .null),
            ("completion_tokens", completionTokens.map { .int(Int($0)) } ?? .null), ("finish_reason", .string(finishReason)),
        ]
        let cost: JSON = costMicros.map { .double(Double($0) / 1_000_000) } ?? .null
        let costMicros: JSON = costMicros.map { .int(Int($0)) } ?? .null
        pairs += [
            ("worker", optional(workerID)), ("advert_sha256", optional(advertHash?.base64EncodedString())),
            ("cost", cost), ("cost_micros", costMicros), ("usage_statement", usageJSON),
        ]
        return .object(pairs)
    }

    /// The usage statement and whether it verifies, or null when the record has none.
    private var usageJSON: JSON {
        guard let usageStatement, let usageSignature else { return .null }
        var failure: String?
        do { _ = try verifyUsageStatement() } catch { failure = error.message }
        return .object([
            ("payload", .string(String(decoding: usageStatement, as: UTF8.self))),
            ("signature", .string(usageSignature.base64EncodedString())),
            ("verified", .bool(failure == nil)), ("error", .optional(failure)),
        ])
    }
}

/// Runs blocking work on a new thread and returns its result.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}
