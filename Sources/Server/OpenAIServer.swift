import Engine
import Foundation
import HTTPTypes
import Hummingbird
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
    public init() {}
}

/// The OpenAI-compatible HTTP server: Hummingbird routes over one ``BatchScheduler`` per model.
public enum OpenAIServer {
    /// Serves until SIGINT or SIGTERM, then ends open generations (their streams finish cleanly)
    /// and returns. Throws when a model fails to load or the socket can't be bound.
    public static func run(_ configuration: ServerConfiguration, logger: Logger) async throws {
        let host = ModelHost(specs: configuration.modelPaths.map { .init(path: $0, contextLength: configuration.contextLength) },
                             configuration: configuration.scheduler, logger: logger)
        let metrics = ServerMetrics()
        let api = API(host: host, metrics: metrics, maxBodyBytes: configuration.maxBodyBytes)
        let router = Router()
        router.add(middleware: FrontMiddleware(keys: configuration.apiKeys, metrics: metrics, logger: logger))
        api.register(on: router)
        let app = Application(router: router, configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                                                    serverName: "verity"),
                              onServerRunning: { channel in
                                  logger.info("listening on http://\(configuration.host):\(channel.localAddress?.port ?? configuration.port)")
                              },
                              logger: logger)
        // Graceful shutdown runs in reverse order: the model host first (ending generations, so
        // streams close), then the HTTP server (waiting for those responses to finish).
        let group = ServiceGroup(services: [app, host], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

/// Outermost middleware: authentication on /v1/*, errors rendered in OpenAI's shape, one log line
/// and one metrics count per request (for a stream, when it ends).
struct FrontMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: Set<String>
    let metrics: ServerMetrics
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let path = request.uri.path
        var response: Response
        do {
            if !keys.isEmpty, path.hasPrefix("/v1/") { try authorize(request) }
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

    private func authorize(_ request: Request) throws(APIError) {
        guard let header = request.headers[.authorization] else {
            throw APIError.unauthorized("You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.")
        }
        let token = header.hasPrefix("Bearer ") ? String(header.dropFirst(7)) : header
        // Compare against every key in full, so timing says nothing about how much matched.
        var found = false
        for key in keys where Self.constantTimeEqual(Array(key.utf8), Array(token.utf8)) { found = true }
        guard found else { throw APIError.unauthorized("Incorrect API key provided.") }
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) { diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0) }
        return diff == 0
    }

    /// The metrics label of a path: the route, not the model id in it.
    static func endpoint(_ path: String) -> String {
        let known = ["/v1/chat/completions", "/v1/completions", "/v1/models", "/v1/tokenize", "/v1/detokenize",
                     "/v1/chat/template", "/health", "/metrics"]
        if known.contains(path) { return path }
        if path.hasPrefix("/v1/models/") { return "/v1/models/:id" }
        return "other"
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> String {
        let d = ContinuousClock.now - start
        return String(format: "%.1f", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }
}
