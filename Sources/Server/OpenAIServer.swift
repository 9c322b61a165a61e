import Engine
import Foundation
import HTTPTypes
import Hummingbird
import Ledger
import Logging
import ServiceLifecycle

/// What `verity serve` serves and how.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// GGUF files to serve; each is a model whose id is its file name without `.gguf`.
    public var modelPaths: [String] = []
    /// Positions per sequence (nil: the model's trained context, at most 4096).
    public var contextLength: Int?
    /// Accepted bearer tokens on /v1/*; empty: no authentication.
    public var apiKeys: Set<String> = []
    public var scheduler = BatchScheduler.Configuration()
    /// Largest request body read, in bytes (413 beyond).
    public var maxBodyBytes = 8 << 20
    /// Where and how every interaction is recorded.
    public var ledger = LedgerConfiguration()
    public init() {}
}

/// The OpenAI-compatible HTTP server: Hummingbird routes over one ``BatchScheduler`` per model.
public enum OpenAIServer {
    /// Serves until SIGINT or SIGTERM, then ends open generations (their streams finish cleanly),
    /// seals the ledger's last block and returns. Throws when the ledger cannot be opened or does
    /// not verify, a model fails to load, or the socket can't be bound.
    public static func run(_ configuration: ServerConfiguration, logger: Logger) async throws {
        let ledger = try LedgerGateway(configuration: configuration.ledger, logger: logger)
        try await ledger.prepare()
        let host = ModelHost(specs: configuration.modelPaths.map { .init(path: $0, contextLength: configuration.contextLength) },
                             configuration: configuration.scheduler, logger: logger)
        let metrics = ServerMetrics()
        let api = API(host: host, metrics: metrics, maxBodyBytes: configuration.maxBodyBytes, ledger: ledger)
        let router = Router(context: VerityRequestContext.self)
        let authenticator = Authenticator(staticKeys: configuration.apiKeys, registry: ledger.registry)
        router.add(middleware: FrontMiddleware(authenticator: authenticator, metrics: metrics, logger: logger))
        api.register(on: router)
        LedgerAPI(ledger: ledger).register(on: router)
        let web = WebChat()
        web.register(on: router)
        if web.isAvailable {
            logger.info("web chat: \(web.files.count) files from \(web.origin)")
        } else {
            logger.warning("web chat unavailable: \(web.origin); the API under /v1/ is served")
        }
        let app = Application(router: router, configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                                                    serverName: "verity"),
                              onServerRunning: { channel in
                                  let port = channel.localAddress?.port ?? configuration.port
                                  logger.info("listening on http://\(configuration.host):\(port) (web chat at /, API at /v1/)")
                              },
                              logger: logger)
        // Graceful shutdown runs in reverse order: the model host first (ending generations, so
        // streams close), then the HTTP server (waiting for those responses, and their records,
        // to finish), then the ledger (sealing the last block).
        let group = ServiceGroup(services: [ledger, app, host], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

/// Outermost middleware: authentication on /v1/* (except the public ledger reads), errors
/// rendered in OpenAI's shape, one log line and one metrics count per request (for a stream,
/// when it ends).
struct FrontMiddleware: RouterMiddleware {
    let authenticator: Authenticator
    let metrics: ServerMetrics
    let logger: Logger

    func handle(_ request: Request, context: VerityRequestContext,
                next: (Request, VerityRequestContext) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let path = request.uri.path
        var response: Response
        var context = context
        do {
            if path.hasPrefix("/v1/"), !LedgerAPI.isPublic(request) { context.caller = try authenticator.authenticate(request) }
            response = try await next(request, context)
        } catch let error as APIError {
            response = error.response()
        } catch let error as any HTTPResponseError {
            response = error.status == .notFound ? APIError.notFound(path).response()
                : APIError(status: error.status, message: error.status.reasonPhrase, type: "invalid_request_error").response()
        } catch {
            response = APIError.server("Internal error: \(error)").response()
        }
        let id = context.id
        response.headers[HTTPField.Name("x-request-id")!] = id
        let endpoint = Self.endpoint(path)
        let status = response.status.code
        let line = "\(id) \(request.method) \(path) \(status)"
        guard response.headers[.contentType] == "text/event-stream" else {
            logger.info("\(line) \(Self.milliseconds(since: start)) ms")
            metrics.request(endpoint: endpoint, status: status)
            return response
        }
        let body = response.body
        let logger = self.logger, metrics = self.metrics
        response.body = ResponseBody { writer in
            do {
                try await body.write(writer)
            } catch {
                logger.info("\(line) stream ended early (\(error)) \(Self.milliseconds(since: start)) ms")
                metrics.request(endpoint: endpoint, status: 499)
                throw error
            }
            logger.info("\(line) stream \(Self.milliseconds(since: start)) ms")
            metrics.request(endpoint: endpoint, status: status)
        }
        return response
    }

    /// The metrics label of a path: the route, not the model id in it.
    static func endpoint(_ path: String) -> String {
        let known = ["/v1/chat/completions", "/v1/completions", "/v1/models", "/v1/tokenize", "/v1/detokenize",
                     "/v1/chat/template", "/health", "/metrics"]
        if known.contains(path) { return path }
        if path.hasPrefix("/v1/models/") { return "/v1/models/:id" }
        if path.hasPrefix("/v1/ledger/") { return "/v1/ledger" }
        if path == "/" || path == "/index.html" || path.hasPrefix("/assets/") { return "/ (web chat)" }
        return "other"
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> String {
        let d = ContinuousClock.now - start
        return String(format: "%.1f", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }
}
