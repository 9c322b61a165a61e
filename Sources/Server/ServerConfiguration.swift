import Engine
import Node

/// What `verity serve` serves and how. Every default and limit is stated here once: the CLI's
/// flags map onto these fields and show these values as their defaults.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Models to serve (GGUF files, Hugging Face folders, hub snapshots); see ``ModelHost/id(for:source:)`` for their ids.
    public var modelPaths: [String] = []
    /// How each path in ``modelPaths`` is loaded (a hub source name, load-time quantization).
    public var modelLoadOptions: [String: ModelLoadOptions] = [:]
    /// LoRA adapters loaded at start on the first model (paths resolved).
    public var adapters: [AdapterSpec] = []
    /// Adapters held in memory per base model; beyond, the least recently used is dropped and
    /// read again when next used (nil: no cap).
    public var maxResidentAdapters: Int?
    /// Bearer keys of the admin API (`/v1/adapters`): the operator's, never an account's.
    /// Empty: the admin API refuses everyone.
    public var adminKeys: Set<String> = []
    /// Positions per sequence (nil: the model's trained context, at most 4096).
    public var contextLength: Int?
    /// Accepted bearer tokens on the routes that need a key; empty (and no account keys): no
    /// authentication.
    public var apiKeys: Set<String> = []
    /// Origins whose pages may call the API from a browser (`--cors-origin`); none by default.
    public var cors = CORSPolicy()
    /// Rate limits of every key that sets none of its own (`verity keys create --rpm --tpm`),
    /// of the `--api-key` keys, and of keyless requests; none by default.
    public var rateLimits = RateLimits()
    public var scheduler = BatchScheduler.Configuration()
    public var limits = RequestLimits()
    public var connections = ConnectionLimits()
    /// Where and how every interaction is recorded.
    public var ledger = LedgerConfiguration()
    /// Model exports through the API (`/v1/exports`).
    public var exports = ExportConfiguration()
    public init() {}
}

/// Who may export what through `POST /v1/exports`, and how many exports wait.
public struct ExportConfiguration: Sendable {
    /// Model ids and adapter names that account keys (and `--api-key` keys) may export; `all`:
    /// every served model and adapter. The admin key may export anything served.
    public var exportable: Set<String> = []
    /// Exports that may wait while one runs; beyond, 429 with Retry-After.
    public var maxQueued = 4
    /// Threads an export quantizes with (nil: the scheduler's, ``BatchScheduler/Configuration/threads``).
    public var threads: Int?
    public init() {}

    /// Whether an account may export `id` (a model id or an adapter name).
    public func isExportable(_ id: String) -> Bool { exportable.contains("all") || exportable.contains(id) }
}

/// What one request may ask for. Each limit is checked before any expensive work, and a request
/// beyond one gets a 400 (413 for the body) that names it.
public struct RequestLimits: Sendable {
    /// Largest request body read, in bytes (413 beyond).
    public var maxBodyBytes = 8 << 20
    /// `max_tokens` for a request that does not set one (never more than its context leaves).
    public var defaultMaxTokens = 1024
    /// Messages in one chat request.
    public var maxMessages = 2048
    /// UTF-8 bytes of text in one request (its messages' contents, or its prompt); a prompt is
    /// also refused as soon as it is known not to fit the context, which is usually far less.
    public var maxTextBytes = 4 << 20
    /// Bytes of envelopes in one `/v1/ledger/entries` page (the page ends early beyond them).
    public var maxLedgerPageBytes = 4 << 20
    public init() {}
}

/// How many connections the server holds, and for how long an idle one.
public struct ConnectionLimits: Sendable {
    /// Open connections beyond which the oldest idle ones are closed to make room (never more
    /// than the descriptor limit allows, less a reserve for the databases and model files).
    public var maxConnections = 2048
    /// Seconds a new connection may take to send its first request's head (slowloris).
    public var headerTimeout: Duration = .seconds(10)
    /// Seconds a connection may stay open with no request in progress.
    public var keepAliveTimeout: Duration = .seconds(120)
    /// Descriptors kept free for the ledger, the account registry and the model files.
    public static let reservedDescriptors = 64
    public init() {}
}
