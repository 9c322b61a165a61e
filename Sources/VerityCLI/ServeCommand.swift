import ArgumentParser
import Engine
import Foundation
import Ledger
import Logging
import Node
import Server

/// `verity serve`: the OpenAI-compatible API over continuous batching.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve models over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, …).",
        discussion: """
            Logs one line per request to stderr. SIGINT or SIGTERM ends open generations, lets their streams finish, seals the \
            ledger's last block, and exits.

            Every completion is recorded, encrypted, in the ledger in --data-dir (see `verity ledger --help`). A request made \
            with a key from `verity keys create` is recorded under its account's address and sealed to the account's key; \
            one made with --api-key, or to a server without keys, is recorded with sender "anonymous" and sealed to the data \
            directory's operator.json account. The auditor, if given, can read every record.
            """)

    /// The configuration's defaults, which the flags below show and start from.
    static let defaults = ServerConfiguration()

    @OptionGroup var data: DataDirectoryOptions
    @OptionGroup var engine: EngineOptions
    @Option(help: "Address to listen on.") var host = Self.defaults.host
    @Option(help: "Port to listen on (0: any free port).") var port = Self.defaults.port
    @OptionGroup var front: FrontOptions
    @OptionGroup var machine: MachineOptions
    @Option(name: .customLong("exportable"),
            help: "A model id or adapter name that account keys may export through POST /v1/exports (repeatable; 'all': every served model and adapter). The admin key may export anything served.")
    var exportable: [String] = []
    @Option(name: .customLong("max-queued-exports"), help: "Exports that may wait while one runs; beyond, POST /v1/exports answers 429.")
    var maxQueuedExports = Self.defaults.exports.maxQueued

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard maxQueuedExports >= 0 else { throw ValidationError("--max-queued-exports must not be negative") }
        if let empty = exportable.first(where: { $0.isEmpty }) { throw ValidationError("--exportable takes a model id or adapter name, not '\(empty)'") }
    }

    func run() async throws {
        var config = Self.defaults
        config.host = host
        config.port = port
        try await engine.apply(to: &config)
        try front.apply(to: &config)
        config.ledger.dataDirectory = data.directory
        if let key = front.adminKey {
            config.adminKeys = [key]
        } else {
            try data.directory.create()
            config.adminKeys = [try data.directory.adminKey()]
        }
        config.ledger.worker = machine.workerInfo
        config.exports.exportable = Set(exportable)
        config.exports.maxQueued = maxQueuedExports
        let logger = CLILogging.logger()
        do {
            try await OpenAIServer.run(config, logger: logger)
        } catch let error as EngineError {
            throw CLIError(error.message)
        } catch let error as LedgerError {
            throw CLIError("ledger: " + error.message + (error.cause.map { " (\($0))" } ?? ""))
        }
    }
}

/// The flags of a server that runs Verity's engine (`serve`, `worker`): the models and how they
/// are scheduled.
struct EngineOptions: ParsableArguments {
    static var defaults: ServerConfiguration { ServeCommand.defaults }

    @Option(name: .shortAndLong, help: "A model to serve (repeatable; default: the provisioned SmolLM2-135M-Instruct): a GGUF file (id: its name without .gguf), a Hugging Face folder (id: its name) or hf:ORG/NAME[:QUANT] (id: ORG/NAME[:QUANT]), pulled from the hub or its cache.")
    var model: [String] = []
    @OptionGroup var loading: LoadOptions
    @OptionGroup var adapters: AdapterOptions
    @Option(name: .customLong("max-adapters"), help: "LoRA adapters held in memory per model; beyond, the least recently used is dropped and read again when next used (default: no cap).")
    var maxAdapters: Int?
    @Option(name: .customLong("max-sequences"), help: "Sequences generated at once per model (continuous batching).")
    var maxSequences = Self.defaults.scheduler.maxSequences
    @Option(name: .customLong("ctx"), help: "Context positions per sequence, prompt plus completion (default: the model's trained context, at most 4096).")
    var contextLength: Int?
    @Option(help: "Compute threads per model (default: all cores).") var threads: Int?
    @Option(name: .customLong("max-queue"), help: "Requests that may wait for a free sequence; beyond that, 429 with Retry-After.")
    var maxQueue = Self.defaults.scheduler.maxQueue
    @Option(name: .customLong("step-tokens"), help: "Tokens per batched step: one per generating sequence, the rest prompt chunks.")
    var stepTokens = Self.defaults.scheduler.stepTokens
    @Option(name: .customLong("prefill-while-decoding"),
            help: "While other sequences generate, a heavy prompt (see --heavy-prompt-tokens) is read this many tokens per step (fewer: smoother streams beside it).")
    var prefillWhileDecoding = Self.defaults.scheduler.prefillTokensWhileDecoding
    @Option(name: .customLong("heavy-prompt-tokens"),
            help: "A request whose prompt is longer than this is heavy: while lighter requests run, it advances one step in --heavy-step-share.")
    var heavyPromptTokens = Self.defaults.scheduler.heavyPromptTokens
    @Option(name: .customLong("heavy-step-share"), help: "Heavy requests take part in one batched step of this many while lighter ones run (1: every step).")
    var heavyStepShare = Self.defaults.scheduler.heavyStepShare
    @Option(name: .customLong("max-body-bytes"), help: "Largest request body accepted (413 beyond).")
    var maxBodyBytes = Self.defaults.limits.maxBodyBytes

    func validate() throws {
        guard maxSequences >= 1 && maxSequences <= 256 else { throw ValidationError("--max-sequences must be between 1 and 256") }
        if let contextLength, contextLength < 2 { throw ValidationError("--ctx must be at least 2") }
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be between 1 and 256") }
        guard maxQueue >= 0 else { throw ValidationError("--max-queue must not be negative") }
        guard stepTokens >= 1 else { throw ValidationError("--step-tokens must be positive") }
        guard prefillWhileDecoding >= 1 else { throw ValidationError("--prefill-while-decoding must be positive") }
        guard heavyPromptTokens >= 1, heavyStepShare >= 1 else { throw ValidationError("--heavy-prompt-tokens and --heavy-step-share must be positive") }
        guard maxBodyBytes >= 1024 else { throw ValidationError("--max-body-bytes must be at least 1024") }
        if let maxAdapters, maxAdapters < 1 { throw ValidationError("--max-adapters must be at least 1") }
    }

    /// The models (checked to exist) and the scheduler's settings.
    func apply(to config: inout ServerConfiguration) async throws {
        config.modelPaths = []
        for spec in model.isEmpty ? [ModelCache.defaultModelPath] : model {
            // hf: models are pulled (or found in the cache) now, before the socket opens.
            let resolved = try await ModelResolver.resolve(spec, revision: loading.revision)
            guard FileManager.default.fileExists(atPath: resolved.path) else {
                throw CLIError(model.isEmpty ? "default model not found at \(resolved.path); run scripts/fetch-models or pass --model PATH"
                                             : "model not found: \(resolved.path)")
            }
            config.modelPaths.append(resolved.path)
            config.modelLoadOptions[resolved.path] = try loading.options(source: resolved.source)
        }
        config.adapters = []
        for var spec in try adapters.specs() {
            // hf: adapters are pulled (or found in the cache) now, like models.
            let resolved = try await ModelResolver.resolve(spec.path)
            guard FileManager.default.fileExists(atPath: resolved.path) else { throw CLIError("adapter not found: \(resolved.path)") }
            spec.path = resolved.path
            config.adapters.append(spec)
        }
        config.maxResidentAdapters = maxAdapters
        config.contextLength = contextLength
        config.scheduler.maxSequences = maxSequences
        if let threads { config.scheduler.threads = threads }
        config.scheduler.maxQueue = maxQueue
        config.scheduler.stepTokens = stepTokens
        config.scheduler.prefillTokensWhileDecoding = prefillWhileDecoding
        config.scheduler.heavyPromptTokens = heavyPromptTokens
        config.scheduler.heavyStepShare = heavyStepShare
        config.limits.maxBodyBytes = maxBodyBytes
    }
}

/// The flags of a server that users talk to and that keeps the ledger (`serve`, `gateway`): API
/// keys, rate limits and the ledger's settings.
struct FrontOptions: ParsableArguments {
    static var defaults: ServerConfiguration { ServeCommand.defaults }

    @Option(name: .customLong("api-key"), help: "Require this bearer key on /v1/* requests.") var apiKey: String?
    @Option(name: .customLong("admin-key"), help: "The operator's bearer key for the admin API (/v1/adapters) (default: the data directory's admin.key, made on first start).")
    var adminKey: String?
    @Option(name: .customLong("api-keys-file"), help: "Require one of the keys in this file (one per line; # comments) on /v1/* requests.")
    var apiKeysFile: String?
    @Option(name: .customLong("rate-limit-rpm"),
            help: "Requests per minute allowed to each API key that sets no limit of its own (and to keyless requests together); default: none.")
    var rateLimitRPM: Int?
    @Option(name: .customLong("rate-limit-tpm"),
            help: "Tokens (prompt plus completion) per minute allowed to each API key that sets no limit of its own; default: none.")
    var rateLimitTPM: Int?
    @Option(name: .customLong("ledger-min-free"),
            help: "Refuse new interactions (503, and /health degraded) while the data directory's disk has less free space than this (bytes, or with K, M or G).")
    var ledgerMinFree = ByteSize(Self.defaults.ledger.minFreeBytes)
    @Option(name: .customLong("auditor-key"),
            help: "Also seal every record to this auditor: an X25519 public key in base64 (`verity account show FILE`), or an account bundle file.")
    var auditorKey: String?
    @Option(name: .customLong("seal-interval"), help: "Seconds between ledger blocks (when records arrived).")
    var sealInterval = Self.defaults.ledger.sealInterval.seconds
    @Option(name: .customLong("seal-records"), help: "Also seal a block as soon as this many records are unsealed.") var sealRecords: Int?
    @Option(name: .customLong("witness"),
            help: "A witness that cosigns the ledger's blocks, as URL,VERIFIER_KEY (its submission prefix and `verity witness key`); repeatable.")
    var witnesses: [String] = []
    @Option(name: .customLong("witness-threshold"),
            help: "Cosignatures a block needs before it is published, served as the checkpoint and used in receipts (default: all witnesses).")
    var witnessThreshold: Int?

    @Option(name: .customLong("cors-origin"),
            help: "Let pages on this origin (scheme://host[:port], or * for any) call the API from a browser; repeatable. Admin routes never allow it.")
    var corsOrigins: [String] = []
    @Option(name: .customLong("ledger-db"),
            help: ArgumentHelp("Keep the ledger in this PostgreSQL database (postgres://user:password@host:5432/db) instead of the data directory's SQLite file, so that several gateways share one log; default: $VERITY_LEDGER_DB.",
                               discussion: "Every gateway of one log needs the same node.key: copy it from the first gateway's data directory."))
    var ledgerDatabase: String? = ProcessInfo.processInfo.environment["VERITY_LEDGER_DB"].flatMap { $0.isEmpty ? nil : $0 }

    func validate() throws {
        if let ledgerDatabase, !(ledgerDatabase.hasPrefix("postgres://") || ledgerDatabase.hasPrefix("postgresql://")) {
            throw ValidationError("--ledger-db takes a postgres:// URL (postgres://user:password@host:5432/database)")
        }
        if witnessThreshold != nil && witnesses.isEmpty { throw ValidationError("--witness-threshold needs --witness") }
        if let bad = corsOrigins.first(where: { CORSPolicy.normalize($0) == nil }) {
            throw ValidationError("--cors-origin takes * or an origin such as https://app.example:8443 (scheme, host, port; no path), not '\(bad)'")
        }
        if let witnessThreshold, witnessThreshold < 1 || witnessThreshold > witnesses.count {
            throw ValidationError("--witness-threshold must be between 1 and the number of --witness (\(witnesses.count))")
        }
        if let adminKey, adminKey.count < 16 { throw ValidationError("--admin-key must be at least 16 characters") }
        if apiKey != nil && apiKeysFile != nil { throw ValidationError("use --api-key or --api-keys-file, not both") }
        guard sealInterval.isFinite, sealInterval >= 0.01, sealInterval <= 86400 else {
            throw ValidationError("--seal-interval must be between 0.01 and 86400 seconds")
        }
        if let sealRecords, sealRecords < 1 { throw ValidationError("--seal-records must be positive") }
        if let rateLimitRPM, rateLimitRPM < 1 { throw ValidationError("--rate-limit-rpm must be positive") }
        if let rateLimitTPM, rateLimitTPM < 1 { throw ValidationError("--rate-limit-tpm must be positive") }
    }

    func apply(to config: inout ServerConfiguration) throws {
        config.apiKeys = try keys()
        config.cors = CORSPolicy(origins: corsOrigins.compactMap(CORSPolicy.normalize))
        config.rateLimits = RateLimits(requestsPerMinute: rateLimitRPM, tokensPerMinute: rateLimitTPM)
        config.ledger.auditorKey = try auditorKey.map(Self.auditor)
        config.ledger.sealInterval = .milliseconds(Int64((sealInterval * 1000).rounded()))
        config.ledger.sealRecords = sealRecords
        config.ledger.minFreeBytes = ledgerMinFree.bytes
        if let ledgerDatabase { config.ledger.dataDirectory.database = ledgerDatabase }
        config.ledger.witnesses = try witnesses.map { value in
            let parts = value.split(separator: ",", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let url = URL(string: parts[0]), ["http", "https"].contains(url.scheme ?? "") else {
                throw CLIError("--witness must be URL,VERIFIER_KEY (e.g. http://127.0.0.1:8090,witness.example/w1+…); got '\(value)'")
            }
            return HTTPWitness(url: parts[0], verifier: try ledgerCall { try CosignatureVerifier(verifierKey: parts[1]) })
        }
        config.ledger.witnessThreshold = witnessThreshold ?? witnesses.count
    }

    /// An auditor key: base64 of a 32-byte X25519 public key, or an account bundle file.
    private static func auditor(_ value: String) throws -> RecipientKey {
        if FileManager.default.fileExists(atPath: value) { return try readAccount(value).recipientKey }
        guard let raw = Data(base64Encoded: value), raw.count == 32, let key = try? RecipientKey(rawRepresentation: raw) else {
            throw CLIError("--auditor-key must be a base64 X25519 public key (32 bytes) or an account bundle file; got '\(value)'")
        }
        return key
    }

    private func keys() throws -> Set<String> {
        if let apiKey {
            guard !apiKey.isEmpty else { throw CLIError("--api-key must not be empty") }
            return [apiKey]
        }
        guard let apiKeysFile else { return [] }
        guard let text = try? String(contentsOfFile: apiKeysFile, encoding: .utf8) else {
            throw CLIError("cannot read API keys file \(apiKeysFile)")
        }
        let keys = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !keys.isEmpty else { throw CLIError("API keys file \(apiKeysFile) holds no keys") }
        return Set(keys)
    }
}

/// The machine an answer is computed on, as records and adverts name it (`serve`, `worker`).
struct MachineOptions: ParsableArguments {
    @Option(help: "GPU recorded with each interaction (default: detected with nvidia-smi, else the CPU model).") var gpu: String?
    @Option(help: "Who rents out the GPU, recorded with each interaction.") var provider = "none"
    @Option(name: .customLong("price-per-hour"), help: "The GPU's price per hour in --currency, recorded with each interaction.")
    var pricePerHour: Double = 0
    @Option(help: "ISO 4217 currency of --price-per-hour.") var currency = "USD"

    func validate() throws {
        guard pricePerHour.isFinite, pricePerHour >= 0, pricePerHour < 1e9 else { throw ValidationError("--price-per-hour must be between 0 and 1e9") }
        guard currency.count == 3, currency.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
            throw ValidationError("--currency must be an ISO 4217 code such as USD")
        }
        guard !provider.isEmpty else { throw ValidationError("--provider must not be empty") }
    }

    var pricePerHourMicros: Int64 { Int64((pricePerHour * 1_000_000).rounded()) }

    var workerInfo: WorkerInfo {
        WorkerInfo(gpu: gpu ?? WorkerInfo.detectGPU(), provider: provider, pricePerHourMicros: pricePerHourMicros, currency: currency)
    }
}

/// Servers log to stderr at info.
enum CLILogging {
    static func logger() -> Logger {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "verity")
        logger.logLevel = .info
        return logger
    }
}

/// A byte count on the command line: `1048576`, `512K`, `64M`, `2G` (binary units).
struct ByteSize: ExpressibleByArgument, CustomStringConvertible {
    let bytes: Int64

    init(_ bytes: Int64) { self.bytes = bytes }

    init?(argument: String) {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var text = argument.uppercased()
        var unit: Int64 = 1
        if let last = text.last, let scale = units[last] {
            unit = scale
            text.removeLast()
        }
        guard let value = Int64(text), value >= 0 else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: unit)
        guard !overflow else { return nil }
        bytes = product
    }

    var description: String {
        for (suffix, scale) in [("G", Int64(1) << 30), ("M", 1 << 20), ("K", 1 << 10)] where bytes >= scale && bytes % scale == 0 {
            return "\(bytes / scale)\(suffix)"
        }
        return String(bytes)
    }
}
