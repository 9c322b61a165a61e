import AsyncHTTPClient
import Engine
import Foundation
import Hummingbird
import Logging
import Node
import ServiceLifecycle
import Synchronization

/// What `verity worker` runs: a server for its gateways' jobs (with Verity's engine, or in front
/// of an external one), and its adverts and heartbeats to them.
public struct WorkerConfiguration: Sendable {
    /// The address, models, scheduler, limits and data directory (for `worker.key`), as `serve`'s.
    public var server = ServerConfiguration()
    /// The gateways' base URLs (`http://gateway:8080`).
    public var gateways: [String] = []
    /// Gateway keys to admit (base64 Ed25519, 32 bytes); when empty, each gateway's
    /// `/v1/workers/gateway-key` is admitted (trust on first use of the URL the operator gave).
    public var gatewayKeys: [Data] = []
    /// A join token from `verity workers join-token`, for a key the gateway has not admitted.
    public var joinToken: String?
    /// The URL gateways call (default: `http://HOST:PORT` of the listening socket).
    public var advertisedEndpoint: String?
    public var provider = "none"
    public var pricePerHourMicros: Int64 = 0
    public var currency = "USD"
    public var region = "unknown"
    /// The GPU named in adverts and statements (default: detected with nvidia-smi, else the CPU model).
    public var gpu: String?
    /// The external engine to front, instead of Verity's own.
    public var upstream: UpstreamEngine?
    public var heartbeatInterval: Duration = .seconds(5)
    public var advertLifetime: Duration = .seconds(3600)
    /// Serve jobs over TLS with the worker's self-signed certificate (`worker-tls.pem` in the data
    /// directory), which its adverts carry for gateways to pin.
    public var tls = false
    public init() {}
}

/// `verity worker`.
public enum FleetWorker {
    /// Serves jobs and advertises until SIGINT or SIGTERM.
    /// - Throws: When the worker key cannot be read or created, a model fails to load, or the
    ///   socket can't be bound.
    public static func run(_ configuration: WorkerConfiguration, logger: Logger) async throws {
        let key = try configuration.server.ledger.dataDirectory.workerKey(create: true)
        logger.info("worker id \(key.id) (admit it on the gateway with `verity workers admit \(key.id)`)")
        var hardware = WorkerInfo.detectHardware()
        if let gpu = configuration.gpu { hardware.gpu = gpu } else if hardware.gpuCount == 0 { hardware.gpu = hardware.cpu }
        let server = configuration.server
        let host = ModelHost(specs: configuration.upstream == nil ? ModelHost.specs(server) : [], configuration: server.scheduler,
                             maxAdapters: server.maxResidentAdapters, logger: logger)
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: Self.clientConfiguration())
        let meter = TokenMeter()
        let adverts = AdvertBook()
        let admitted = AdmittedGateways()
        let signer = UsageStatementSigner(key: key, adverts: adverts, gpu: hardware.gpu, provider: configuration.provider,
                                          pricePerHourMicros: configuration.pricePerHourMicros, currency: configuration.currency, meter: meter)
        let metrics = ServerMetrics()
        let inFlight = UpstreamController.InFlight()
        let port = Mutex<Int?>(nil)
        let identity = try configuration.tls ? Self.tlsIdentity(configuration, key: key, logger: logger) : nil
        let app = try OpenAIServer.application(server, metrics: metrics, logger: logger,
                                               what: "jobs from \(configuration.gateways.joined(separator: ", "))",
                                               tls: try identity?.serverConfiguration(), bound: { bound in port.withLock { $0 = bound } }) { connections in
            let router = Router(context: VerityRequestContext.self)
            router.add(middleware: RequestLogMiddleware(metrics: metrics, logger: logger))
            router.add(middleware: ErrorMiddleware(logger: logger))
            let jobs = router.group("v1").add(middleware: JobAuthMiddleware(gateways: admitted, maxBodyBytes: server.limits.maxBodyBytes))
            if let upstream = configuration.upstream {
                var headers: [(String, String)] = []
                if let apiKey = upstream.apiKey { headers.append(("Authorization", "Bearer \(apiKey)")) }
                UpstreamController(engine: upstream, client: JobClient(http: http, key: nil, headers: headers), signer: signer,
                                   limits: server.limits, logger: logger, inFlight: inFlight).addRoutes(to: jobs)
            } else {
                let services = APIServices(host: host, metrics: metrics, limits: server.limits, ledger: nil, limiter: RateLimiter(), logger: logger,
                                           recorder: signer)
                ModelsController(host: host).addRoutes(to: jobs)
                ChatCompletionsController(services: services).addRoutes(to: jobs)
                CompletionsController(services: services).addRoutes(to: jobs)
                TokenizeController(services: services).addRoutes(to: jobs)
            }
            OperationsController(host: host, ledger: nil, metrics: metrics, connections: connections).addRoutes(to: router)
            router.get("worker") { _, _ in Response.json(["worker": .string(key.id.description)]) }
            return router
        }
        let listenHost = server.host
        let source = WorkerAdvertiser.Source(
            models: {
                if let upstream = configuration.upstream { return [upstream.advertised] }
                return host.models?.map { served in
                    Advert.Model(id: served.id, source: "file:" + served.id, digest: served.digest, contextLength: served.contextLength)
                }
            },
            load: {
                if configuration.upstream != nil { return (inFlight.value, 0) }
                return (host.models ?? []).reduce((0, 0)) { sum, served in
                    let load = served.scheduler.load
                    return (sum.0 + load.active, sum.1 + load.queued)
                }
            },
            endpoint: {
                configuration.advertisedEndpoint ?? port.withLock { $0 }.map { "\(identity == nil ? "http" : "https")://\(Self.urlHost(listenHost)):\($0)" }
            })
        let capacity = configuration.upstream?.capacity ?? server.scheduler.maxSequences
        let advertiser = WorkerAdvertiser(
            configuration: .init(gateways: configuration.gateways, gatewayKeys: configuration.gatewayKeys, joinToken: configuration.joinToken,
                                 provider: configuration.provider, pricePerHourMicros: configuration.pricePerHourMicros,
                                 currency: configuration.currency, region: configuration.region, hardware: hardware, capacity: capacity,
                                 heartbeatInterval: configuration.heartbeatInterval, advertLifetime: configuration.advertLifetime,
                                 tlsCertificate: identity.map { Data($0.certificateDER) }, tlsSPKISHA256: identity?.spkiSHA256),
            key: key, source: source, meter: meter, adverts: adverts, admitted: admitted, http: http, logger: logger)
        // Shutdown runs in reverse: adverts stop, then generations end, then the HTTP server.
        let group = ServiceGroup(services: [app, host, advertiser], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        do { try await group.run() } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    /// The worker's TLS certificate and key, made on first use.
    static func tlsIdentity(_ configuration: WorkerConfiguration, key: WorkerKey, logger: Logger) throws -> WorkerTLSIdentity {
        let directory = configuration.server.ledger.dataDirectory
        let hosts = [configuration.server.host] + (configuration.advertisedEndpoint.flatMap { URL(string: $0)?.host }.map { [$0] } ?? [])
        let identity = try WorkerTLSIdentity.loadOrCreate(in: directory, workerID: key.id, hosts: hosts)
        logger.info("TLS certificate in \(directory.path)/\(WorkerTLSIdentity.fileName), key pin sha256/\(identity.spkiSHA256.base64EncodedString())")
        return identity
    }

    /// A host as it goes in a URL (an IPv6 address in brackets).
    static func urlHost(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

    /// Connections to gateways or an engine: many at once, kept alive, no redirects.
    static func clientConfiguration() -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        configuration.timeout = .init(connect: .seconds(5))
        return configuration
    }
}

/// What `verity gateway` runs.
public struct GatewayConfiguration: Sendable {
    /// The address, keys, limits and ledger, as `serve`'s (no models: the fleet serves them).
    public var server = ServerConfiguration()
    public var routing = GatewayRouting()
    public var fleet = FleetConfiguration()
    public init() {}
}

/// `verity gateway`: user-facing auth, the `/v1` API and the web chat, routing to the fleet, and
/// the ledger. It serves no model itself.
public enum FleetGateway {
    /// Serves until SIGINT or SIGTERM, then lets open answers finish and seals the ledger.
    /// - Throws: When the ledger cannot be opened or does not verify, the gateway key cannot be
    ///   read or created, or the socket can't be bound.
    public static func run(_ configuration: GatewayConfiguration, logger: Logger) async throws {
        let ledger = try LedgerAppender(configuration: configuration.server.ledger, logger: logger)
        try await ledger.prepare()
        let key = try configuration.server.ledger.dataDirectory.gatewayKey()
        var fleetConfiguration = configuration.fleet
        fleetConfiguration.advertCheck = { advert throws(FleetError) in try PinnedWorkerTLS.check(advert) }
        let fleet = WorkerFleet(registry: ledger.registry, configuration: fleetConfiguration)
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: FleetWorker.clientConfiguration())
        logger.info("gateway key \(key.publicKey.base64EncodedString()); routing policy \(configuration.routing.policy.rawValue)")
        let app = try application(configuration, ledger: ledger, fleet: fleet, key: key, http: http, logger: logger)
        let group = ServiceGroup(services: [LedgerService(appender: ledger), app, FleetMaintenance(fleet: fleet, logger: logger)],
                                 gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        do { try await group.run() } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    static func application(_ configuration: GatewayConfiguration, ledger: LedgerAppender, fleet: WorkerFleet, key: GatewayKey, http: HTTPClient,
                            logger: Logger) throws -> some ApplicationProtocol {
        let server = configuration.server
        let metrics = ServerMetrics()
        let services = GatewayServices(fleet: fleet, jobs: JobClient(http: http, key: key.privateKey), ledger: ledger, metrics: metrics,
                                       limits: server.limits, limiter: RateLimiter(), routing: configuration.routing, tls: PinnedWorkerTLS(),
                                       logger: logger)
        let web = WebChatController.announced(logger: logger)
        // No model loads here: /health is "ok" as soon as the ledger is.
        let host = ModelHost(specs: [], configuration: server.scheduler, logger: logger)
        try? host.load()
        return try OpenAIServer.application(server, metrics: metrics, logger: logger, what: "web chat at /, API at /v1/, workers at /v1/workers/") { connections in
            let loopback = OriginMiddleware.isLoopback(server.host)
            let authenticator = Authenticator(staticKeys: server.apiKeys, registry: ledger.registry, defaultLimits: server.rateLimits)
            let router = Router(context: VerityRequestContext.self)
            router.add(middleware: RequestLogMiddleware(metrics: metrics, logger: logger))
            router.add(middleware: CORSMiddleware(policy: server.cors))
            router.add(middleware: ErrorMiddleware(logger: logger))
            router.add(middleware: OriginMiddleware(loopbackOnly: { loopback && !((try? authenticator.required()) ?? true) }, cors: server.cors))
            let keyed = router.group("v1").add(middleware: AuthMiddleware(authenticator: authenticator, limiter: services.limiter))
            let controllers = GatewayControllers(services: services)
            controllers.addRoutes(to: keyed)
            // The Responses and Messages APIs answer through the fleet's chat (see ChatBridge).
            let answer: ChatAnswerer = { body, context, id, api in try await controllers.chat(body: body, context: context, id: id, api: api) }
            ResponsesController(answer: answer, store: ResponseStore(), maxBodyBytes: server.limits.maxBodyBytes).addRoutes(to: keyed)
            MessagesController(answer: answer, maxBodyBytes: server.limits.maxBodyBytes).addRoutes(to: keyed)
            FleetController(fleet: fleet, gatewayKey: key, logger: logger).addRoutes(open: router.group("v1/workers"), keyed: keyed)
            LedgerController(ledger: ledger, maxPageBytes: server.limits.maxLedgerPageBytes).addRoutes(open: router.group("v1/ledger"), keyed: keyed)
            OperationsController(host: host, ledger: ledger, metrics: metrics, connections: connections).addRoutes(to: router)
            web.addRoutes(to: router)
            return router
        }
    }
}

/// Forgets workers whose adverts expired long ago (every minute), and drops workers whose
/// admission `verity workers revoke` withdrew (every few seconds).
struct FleetMaintenance: Service {
    let fleet: WorkerFleet
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var tick = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(5))
                do {
                    for worker in try fleet.reconcileAdmissions() { logger.warning("worker \(worker) was revoked: dropped from the fleet") }
                } catch {
                    logger.error("cannot read the admitted workers: \(error)")
                }
                tick += 1
                if tick % 12 == 0 {
                    for worker in fleet.prune(now: WorkerFleet.now()) { logger.info("worker \(worker) forgotten: its advert expired") }
                }
            }
        }
    }
}
