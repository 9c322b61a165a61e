import Engine
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOSSL
import Node
import ServiceLifecycle

/// `verity serve`: the OpenAI-compatible HTTP server, its web chat, and its ledger.
public enum OpenAIServer {
    /// Serves until SIGINT or SIGTERM, then ends open generations (their streams finish cleanly),
    /// seals the ledger's last block and returns. Throws when the ledger cannot be opened or does
    /// not verify, a model fails to load, or the socket can't be bound.
    public static func run(_ configuration: ServerConfiguration, logger: Logger) async throws {
        let ledger = try LedgerAppender(configuration: configuration.ledger, logger: logger)
        try await ledger.prepare()
        let host = ModelHost(specs: ModelHost.specs(configuration), configuration: configuration.scheduler,
                             maxAdapters: configuration.maxResidentAdapters, logger: logger)
        let exports = try ExportJobs(configuration: configuration.exports, threads: configuration.exports.threads ?? configuration.scheduler.threads,
                                     ledger: ledger, logger: logger)
        let app = try buildApplication(configuration, host: host, ledger: ledger, exports: exports, logger: logger)
        // Graceful shutdown runs in reverse order: exports first (the running one cancelled, the
        // queued ones failed), the model host (ending generations, so streams close), then the
        // HTTP server (waiting for those responses, and their records, to finish), then the
        // ledger (sealing the last block).
        let group = ServiceGroup(services: [LedgerService(appender: ledger), app, host, exports],
                                 gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }

    /// The HTTP application over `host` and `ledger`.
    static func buildApplication(_ configuration: ServerConfiguration, host: ModelHost, ledger: LedgerAppender, exports: ExportJobs? = nil,
                                 logger: Logger) throws -> some ApplicationProtocol {
        let metrics = ServerMetrics()
        let services = APIServices(host: host, metrics: metrics, limits: configuration.limits, ledger: ledger, limiter: RateLimiter(),
                                   logger: logger)
        let web = WebChatController.announced(logger: logger)
        return try application(configuration, metrics: metrics, logger: logger, what: "web chat at /, API at /v1/") { connections in
            buildRouter(services: services, ledger: ledger, apiKeys: configuration.apiKeys, rateLimits: configuration.rateLimits, web: web,
                        loopback: OriginMiddleware.isLoopback(configuration.host), adminKeys: configuration.adminKeys, exports: exports,
                        cors: configuration.cors, connections: connections)
        }
    }

    /// An HTTP/1 application on the configured address with the connection guard (as many
    /// connections as the descriptors allow, less a reserve, up to the configured cap; header and
    /// keep-alive timeouts) over the router that `router` builds, given the open connections' count.
    /// `bound` hears the port once the socket is bound. With `tls`, the connections are TLS.
    static func application(_ configuration: ServerConfiguration, metrics: ServerMetrics, logger: Logger, what: String,
                            tls: TLSConfiguration? = nil, bound: @escaping @Sendable (Int) -> Void = { _ in },
                            router: (_ connections: @escaping @Sendable () -> Int?) -> Router<VerityRequestContext>) throws -> some ApplicationProtocol {
        let descriptors = DescriptorLimit.raise()
        let budget = (descriptors?.soft ?? 1024) - ConnectionLimits.reservedDescriptors
        let limits = configuration.connections
        let cap = max(16, min(limits.maxConnections, budget - 32))
        logger.info("descriptors: limit \(descriptors.map { "\($0.soft) (hard \($0.hard))" } ?? "unknown"); up to \(cap) connections")
        let guardian = ConnectionGuard(limit: cap, headerTimeout: .init(limits.headerTimeout), keepAliveTimeout: .init(limits.keepAliveTimeout),
                                       logger: logger, metrics: metrics)
        let http1 = HTTPServerBuilder.http1(configuration: .init(additionalChannelHandlers: [ClientClosureHandler(), guardian.handler()]))
        let server = try tls.map { try HTTPServerBuilder.tls(http1, tlsConfiguration: $0) } ?? http1
        // A deep accept backlog: a burst of connections waits in the kernel rather than retrying SYNs.
        var application = ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "verity",
                                                   backlog: 4096)
        // Accepting pauses only when every connection up to the budget is busy with a request.
        application.availableConnectionsDelegate = MaximumAvailableConnections(max(cap, budget), logger: logger)
        return Application(router: router({ guardian.count }), server: server, configuration: application,
                           onServerRunning: { channel in
                               let port = channel.localAddress?.port ?? configuration.port
                               bound(port)
                               logger.info("listening on \(tls == nil ? "http" : "https")://\(configuration.host):\(port) (\(what))")
                           },
                           logger: logger)
    }

    /// Every route, each declaring whether it needs a key: the `/v1` group behind
    /// ``AuthMiddleware`` (models, completions, tokenizing, one's own records), the admin API, the
    /// exports (`exports`: admin or account keys, see ``ExportsController``), and the public
    /// rest (health, metrics, the transparency log's reads, the web chat's files).
    /// `loopback`: the server listens on a loopback address (so, without keys, it answers only
    /// requests addressed to one: see ``OriginMiddleware``).
    static func buildRouter(services: APIServices, ledger: LedgerAppender, apiKeys: Set<String>, rateLimits: RateLimits = RateLimits(),
                            web: WebChatController, loopback: Bool = true, adminKeys: Set<String> = [], exports: ExportJobs? = nil,
                            cors: CORSPolicy = CORSPolicy(), connections: @escaping @Sendable () -> Int? = { nil }) -> Router<VerityRequestContext> {
        let authenticator = Authenticator(staticKeys: apiKeys, registry: ledger.registry, defaultLimits: rateLimits)
        let router = Router(context: VerityRequestContext.self)
        router.add(middleware: RequestLogMiddleware(metrics: services.metrics, logger: services.logger))
        // Outside the error middleware, so that error answers carry CORS headers too.
        router.add(middleware: CORSMiddleware(policy: cors))
        router.add(middleware: ErrorMiddleware(logger: services.logger))
        router.add(middleware: OriginMiddleware(loopbackOnly: { loopback && !((try? authenticator.required()) ?? true) }, cors: cors))

        let keyed = router.group("v1").add(middleware: AuthMiddleware(authenticator: authenticator, limiter: services.limiter))
        ModelsController(host: services.host).addRoutes(to: keyed)
        let chat = ChatCompletionsController(services: services)
        chat.addRoutes(to: keyed)
        // The Responses and Messages APIs answer through chat (see ChatBridge).
        let answer: ChatAnswerer = { body, context, id, api in try await chat.answer(body: body, context: context, id: id, api: api) }
        ResponsesController(answer: answer, store: ResponseStore(), maxBodyBytes: services.limits.maxBodyBytes).addRoutes(to: keyed)
        MessagesController(answer: answer, maxBodyBytes: services.limits.maxBodyBytes,
                           countTokens: { body in try await chat.prepare(body: body).5.count }).addRoutes(to: keyed)
        CompletionsController(services: services).addRoutes(to: keyed)
        TokenizeController(services: services).addRoutes(to: keyed)
        LedgerController(ledger: ledger, maxPageBytes: services.limits.maxLedgerPageBytes).addRoutes(open: router.group("v1/ledger"), keyed: keyed)
        let admin = router.group("v1").add(middleware: AdminAuthMiddleware(adminKeys: adminKeys, authenticator: authenticator))
        AdaptersController(host: services.host, maxBodyBytes: services.limits.maxBodyBytes).addRoutes(to: admin)
        if let exports {
            // The admin key or any key the keyed routes take: the controller tells them apart.
            ExportsController(jobs: exports, host: services.host, adminKeys: adminKeys, authenticator: authenticator, limiter: services.limiter)
                .addRoutes(to: router.group("v1"))
        }

        OperationsController(host: services.host, ledger: services.ledger, metrics: services.metrics, connections: connections).addRoutes(to: router)
        web.addRoutes(to: router)
        return router
    }
}

/// The ledger as a service of the server's group: seals blocks on the interval, and once more
/// at graceful shutdown. It is the group's first service, so it shuts down last: by then the HTTP
/// server has written every response, so every record is in the final block.
struct LedgerService: Service {
    let appender: LedgerAppender

    func run() async throws {
        await cancelWhenGracefulShutdown { await appender.sealPeriodically() }
        await appender.finalSeal()
    }
}
