import ArgumentParser
import Engine
import Foundation
import Ledger
import Node
import Server
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `verity worker`: computes answers for gateways, with Verity's engine or an external one.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Serve a fleet's gateways: advertise this machine's models, GPU and price, and answer the jobs they send.",
        discussion: """
            A worker has its own Ed25519 key (worker.key in --data-dir, created on first start); its id is printed at start \
            and by `verity workers id`. A gateway routes to it once its operator admitted that id (`verity workers admit ID`) \
            or the worker presented a join token (--join-token, from `verity workers join-token`).

            The worker answers only jobs signed by its gateways' keys (each gateway's /v1/workers/gateway-key, fetched from \
            the --gateway URLs given, or pinned with --gateway-key). Each answer ends with a usage statement signed by the \
            worker: the request's and the response's SHA-256, the token counts, the times, and the GPU, provider and price \
            it advertised; the gateway checks it and seals it in its ledger.

            What a worker sees: the full request (system prompt, messages, parameters) and the answer it computes; it must, \
            to compute it. It sees no API key and no sender address, and keeps nothing (no ledger). Run workers you would \
            trust with the prompts routed to them.

            With --upstream, the worker fronts an external OpenAI-compatible engine (vLLM, SGLang, TGI, llama-server, Ollama) \
            instead of loading models: jobs go to the engine, which must be reachable only by the worker.
            """)

    @OptionGroup var data: DataDirectoryOptions
    @Option(name: .customLong("gateway"), help: "A gateway's URL, e.g. http://gateway:8080 (repeatable).") var gateways: [String] = []
    @Option(name: .customLong("gateway-key"),
            help: "Admit jobs signed by this gateway key (base64, from `verity gateway` or /v1/workers/gateway-key) instead of fetching each gateway's (repeatable).")
    var gatewayKeys: [String] = []
    @Option(name: .customLong("join-token"), help: "A join token from the gateway's operator, for a worker key not yet admitted.")
    var joinToken: String?
    @Option(help: "Address to listen on for jobs.") var host = "127.0.0.1"
    @Option(help: "Port to listen on for jobs (0: any free port).") var port = 8081
    @Option(name: .customLong("advertise-url"), help: "The URL gateways call this worker at (default: http://HOST:PORT).")
    var advertiseURL: String?
    @Option(help: "The region advertised (for requests' `regions` constraint).") var region = "unknown"
    @OptionGroup var machine: MachineOptions
    @OptionGroup var engine: EngineOptions
    @Option(help: "Front this OpenAI-compatible engine instead of loading models: its API's base URL, e.g. http://127.0.0.1:8000/v1.")
    var upstream: String?
    @Option(name: .customLong("upstream-model"), help: "The model name the engine serves (with --upstream).") var upstreamModel: String?
    @Option(name: .customLong("served-model-name"), help: "The model id to advertise for the engine's model (default: --upstream-model).")
    var servedModelName: String?
    @Option(name: .customLong("upstream-api-key"), help: "The bearer key the engine wants, if any.") var upstreamAPIKey: String?
    @Option(name: .customLong("upstream-ctx"), help: "The engine's context length, advertised.") var upstreamContext = 4096
    @Option(name: .customLong("upstream-capacity"), help: "Requests the engine takes at once, advertised as capacity.") var upstreamCapacity = 16
    @Option(name: .customLong("heartbeat-interval"), help: "Seconds between heartbeats (a gateway drops a worker silent for 15 s).")
    var heartbeatInterval = 5.0
    @Flag(help: "Serve jobs over TLS with a self-signed certificate kept in --data-dir (worker-tls.pem); adverts carry it, and gateways trust it for this worker alone.")
    var tls = false

    func validate() throws {
        if tls, let advertiseURL, !advertiseURL.lowercased().hasPrefix("https://") {
            throw ValidationError("with --tls, --advertise-url must be an https:// URL")
        }
        guard !gateways.isEmpty else { throw ValidationError("give at least one --gateway URL") }
        for url in gateways + [upstream, advertiseURL].compactMap({ $0 }) {
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw ValidationError("'\(url)' is not an http:// or https:// URL")
            }
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        if upstream != nil, upstreamModel == nil { throw ValidationError("--upstream needs --upstream-model NAME") }
        if upstream == nil, upstreamModel != nil { throw ValidationError("--upstream-model needs --upstream URL") }
        if upstream != nil, !engine.model.isEmpty { throw ValidationError("use --model or --upstream, not both") }
        guard upstreamContext >= 2, upstreamCapacity >= 1 else { throw ValidationError("--upstream-ctx and --upstream-capacity must be positive") }
        guard heartbeatInterval >= 0.1, heartbeatInterval <= 10 else { throw ValidationError("--heartbeat-interval must be between 0.1 and 10 seconds") }
        guard !region.isEmpty else { throw ValidationError("--region must not be empty") }
    }

    func run() async throws {
        var config = WorkerConfiguration()
        config.server.host = host
        config.server.port = port
        config.server.ledger.dataDirectory = data.directory
        if let upstream, let upstreamModel {
            config.upstream = UpstreamEngine(url: upstream, model: upstreamModel, servedName: servedModelName, apiKey: upstreamAPIKey,
                                             contextLength: upstreamContext, capacity: upstreamCapacity)
            config.server.limits.maxBodyBytes = engine.maxBodyBytes
        } else {
            try await engine.apply(to: &config.server)
        }
        config.gateways = gateways
        config.gatewayKeys = try gatewayKeys.map { text in
            guard let key = Data(base64Encoded: text), key.count == 32 else { throw CLIError("--gateway-key '\(text)' is not a base64 Ed25519 key") }
            return key
        }
        config.joinToken = joinToken
        config.advertisedEndpoint = advertiseURL
        config.provider = machine.provider
        config.pricePerHourMicros = machine.pricePerHourMicros
        config.currency = machine.currency
        config.region = region
        config.gpu = machine.gpu
        config.heartbeatInterval = .milliseconds(Int64((heartbeatInterval * 1000).rounded()))
        config.tls = tls
        let logger = CLILogging.logger()
        do {
            try await FleetWorker.run(config, logger: logger)
        } catch let error as EngineError {
            throw CLIError(error.message)
        } catch let error as FleetError {
            throw CLIError(error.message)
        }
    }
}

/// `verity gateway`: the user-facing server of a fleet.
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Serve the OpenAI-compatible API and the web chat on a fleet of workers, routing each request and recording it in the ledger.",
        discussion: """
            The gateway loads no model. Workers (`verity worker --gateway URL`) send it signed adverts of their models, GPU and \
            price; it admits only the worker ids its operator allowed (`verity workers admit ID`, or a join token), checks every \
            advert's signature and expiry, and routes each request to the best worker that serves its model with the catalog's \
            digest, by --policy, keeping a conversation on the worker that holds its cache. A request may constrain where it \
            runs with a `verity` object: {"max_price_per_hour": 1.5, "providers": [...], "gpus": [...], "regions": [...]}.

            A worker that fails before the first byte is retried on the next (at most --max-attempts); one that fails again and \
            again is left out for a while (a circuit breaker) and tried again with a probe. Every answer is recorded in the \
            ledger with the worker's signed usage statement: who served it, on which GPU, at what price, and what it cost.
            """)

    @OptionGroup var data: DataDirectoryOptions
    @Option(help: "Address to listen on.") var host = ServeCommand.defaults.host
    @Option(help: "Port to listen on (0: any free port).") var port = ServeCommand.defaults.port
    @OptionGroup var front: FrontOptions
    @Option(help: "How to rank the workers that qualify: cheapest (price per expected token), fastest, least-loaded.")
    var policy: RoutingPolicy = .cheapest
    @Option(name: .customLong("max-attempts"), help: "Workers tried for one request before it fails with 503.") var maxAttempts = 3
    @Option(name: .customLong("head-timeout"), help: "Seconds a worker may take to start a streamed answer before the next is tried.")
    var headTimeout = 15.0
    @Option(name: .customLong("job-timeout"), help: "Seconds one job may take in all.") var jobTimeout = 600.0
    @Option(name: .customLong("max-price-per-hour"), help: "The highest price per hour for requests that set none.") var maxPricePerHour: Double?
    @Option(name: .customLong("pin"), help: "Pin a model's digest, MODEL=sha256:HEX (repeatable); else the first advert of a model pins it.")
    var pins: [String] = []
    @Option(name: .customLong("max-body-bytes"), help: "Largest request body accepted (413 beyond).")
    var maxBodyBytes = ServeCommand.defaults.limits.maxBodyBytes
    @Option(name: .customLong("worker-silence-timeout"),
            help: "Seconds after a worker's last advert or heartbeat before it is no longer routed to.")
    var silenceTimeout = 15.0

    func validate() throws {
        guard silenceTimeout >= 1, silenceTimeout <= 86_400 else { throw ValidationError("--worker-silence-timeout must be between 1 and 86400 seconds") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard (1...16).contains(maxAttempts) else { throw ValidationError("--max-attempts must be between 1 and 16") }
        guard headTimeout > 0, jobTimeout >= headTimeout else { throw ValidationError("--head-timeout must be positive and at most --job-timeout") }
        if let maxPricePerHour, !(maxPricePerHour.isFinite && maxPricePerHour >= 0) { throw ValidationError("--max-price-per-hour must not be negative") }
        for pin in pins where !pin.contains("=sha256:") { throw ValidationError("--pin takes MODEL=sha256:HEX, not '\(pin)'") }
    }

    func run() async throws {
        var config = GatewayConfiguration()
        config.server.host = host
        config.server.port = port
        config.server.limits.maxBodyBytes = maxBodyBytes
        try front.apply(to: &config.server)
        config.server.ledger.dataDirectory = data.directory
        config.server.ledger.worker = WorkerInfo(gpu: "none", provider: "none")
        config.routing.policy = policy
        config.routing.maxAttempts = maxAttempts
        config.routing.headTimeout = .milliseconds(Int64((headTimeout * 1000).rounded()))
        config.routing.jobTimeout = .milliseconds(Int64((jobTimeout * 1000).rounded()))
        config.fleet.silenceTimeout = .milliseconds(Int64((silenceTimeout * 1000).rounded()))
        config.routing.defaults.maxPricePerHourMicros = maxPricePerHour.map { Int64(($0 * 1_000_000).rounded()) }
        for pin in pins {
            let parts = pin.split(separator: "=", maxSplits: 1).map(String.init)
            config.fleet.pinnedDigests[parts[0]] = parts[1]
        }
        let logger = CLILogging.logger()
        do {
            try await FleetGateway.run(config, logger: logger)
        } catch let error as LedgerError {
            throw CLIError("ledger: " + error.message + (error.cause.map { " (\($0))" } ?? ""))
        } catch let error as FleetError {
            throw CLIError(error.message)
        }
    }
}

extension RoutingPolicy: ExpressibleByArgument {}

/// `verity workers`: the operator's control of which workers a gateway admits.
struct WorkersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workers", abstract: "Admit, list and revoke a gateway's workers; issue join tokens; show this machine's worker id.",
        subcommands: [WorkersAdmitCommand.self, WorkersRevokeCommand.self, WorkersListCommand.self, WorkersJoinTokenCommand.self,
                      WorkersIDCommand.self])
}

struct WorkersAdmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admit", abstract: "Admit worker ids (from `verity workers id` on the worker, or its start-up log) to this gateway.",
        discussion: "A running gateway sees the admission at the worker's next advert.")
    @OptionGroup var data: DataDirectoryOptions
    @Argument(help: "Worker ids (Base58Check, 51 characters starting with 4).") var workers: [String]
    @Option(help: "A note kept with the admission (who runs it, where).") var note: String?

    func run() throws {
        let ids = try workers.map { text in
            do throws(FleetError) { return try WorkerID(text) } catch { throw CLIError(error.message) }
        }
        let registry = try ledgerCall { try data.directory.registry() }
        try ledgerCall { try registry.admitWorkers(ids, note: note) }
        for id in ids { print("admitted \(id)") }
    }
}

struct WorkersRevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke a worker's admission; a running gateway drops it within seconds.")
    @OptionGroup var data: DataDirectoryOptions
    @Argument(help: "The worker id.") var worker: String

    func run() throws {
        let id: WorkerID
        do { id = try WorkerID(worker) } catch { throw CLIError(error.message) }
        let registry = try ledgerCall { try data.directory.registry() }
        try ledgerCall { try registry.revokeWorker(id) }
        print("revoked \(id)")
    }
}

struct WorkersListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List a running gateway's fleet (GET /v1/workers), or with --admitted the worker ids this data directory admits.")
    @OptionGroup var dataDirectory: DataDirectoryOptions
    @Option(help: "The running gateway.") var url = "http://127.0.0.1:8080"
    @Option(name: .customLong("api-key"), help: "An API key of the gateway, if it needs one.") var apiKey: String?
    @Flag(help: "List the admitted worker ids from --data-dir instead of asking the gateway.") var admitted = false
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        if admitted {
            let registry = try ledgerCall { try dataDirectory.directory.registry() }
            let rows = try ledgerCall { try registry.admittedWorkers() }
            for row in rows {
                let state = row.revokedMilliseconds == nil ? "admitted" : "revoked"
                print("\(row.worker)  \(state)  \(Self.date(row.admittedMilliseconds))\(row.note.map { "  \($0)" } ?? "")")
            }
            return
        }
        guard let endpoint = URL(string: url.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/v1/workers") else {
            throw CLIError("bad URL \(url)")
        }
        var request = URLRequest(url: endpoint)
        if let apiKey { request.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization") }
        let (data, status): (Data, Int) = try await withCheckedThrowingContinuation { continuation in
            URLSession.shared.dataTask(with: request) { data, response, error in
                if let error { continuation.resume(throwing: CLIError("cannot reach \(endpoint): \(error.localizedDescription)")); return }
                continuation.resume(returning: (data ?? Data(), (response as? HTTPURLResponse)?.statusCode ?? 0))
            }.resume()
        }
        guard status == 200, let body = try? JSON.parse(data), let workers = body["data"]?.arrayValue else {
            throw CLIError("\(endpoint): HTTP \(status): \(String(decoding: data.prefix(300), as: UTF8.self))")
        }
        if json {
            print(body.serialized())
            return
        }
        if workers.isEmpty { print("no workers") }
        for w in workers {
            let models = (w["models"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }.joined(separator: ",")
            let price = w["price_per_hour"].map { $0.serialized() } ?? "?"
            let beat = w["last_heartbeat"]
            let load = beat.map { "\($0["active"]?.serialized() ?? "?")+\($0["queued"]?.serialized() ?? "?")/\(w["capacity"]?.serialized() ?? "?")" } ?? "-"
            let state = w["routable"] == .bool(true) ? "routable" : "out: \(w["not_routable_because"]?.stringValue ?? "?")"
            print([w["worker"]?.stringValue ?? "?", w["provider"]?.stringValue ?? "?", w["hardware"]?["gpu"]?.stringValue ?? "?",
                   "\(price)/h \(w["currency"]?.stringValue ?? "")", "load \(load)", models, w["endpoint"]?.stringValue ?? "?", state]
                .joined(separator: "  "))
        }
    }

    static func date(_ ms: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}

struct WorkersJoinTokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "join-token",
        abstract: "Issue a single-use join token: a worker started with --join-token admits its own key with it.",
        discussion: "The token is printed once on stdout; only its SHA-256 is kept.")
    @OptionGroup var data: DataDirectoryOptions
    @Option(help: "Hours until the token expires.") var hours = 24.0
    @Option(help: "A note kept with the token.") var note: String?

    func validate() throws {
        guard hours > 0, hours <= 24 * 365 else { throw ValidationError("--hours must be between 0 and 8760") }
    }

    func run() throws {
        let registry = try ledgerCall { try data.directory.registry() }
        let token = try ledgerCall { try registry.issueJoinToken(note: note, lifetime: .milliseconds(Int64(hours * 3_600_000))) }
        print(token.secret)
        Diagnostics.print("join token \(token.tokenID), single use, expires \(WorkersListCommand.date(token.expiresMilliseconds))")
    }
}

struct WorkersIDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "id", abstract: "Print this data directory's worker id (creating the worker key if there is none), to admit on a gateway.")
    @OptionGroup var data: DataDirectoryOptions

    func run() throws {
        do {
            print(try data.directory.workerKey(create: true).id)
        } catch {
            throw CLIError(error.message)
        }
    }
}
