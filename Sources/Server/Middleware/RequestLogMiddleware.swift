import Hummingbird
import HTTPTypes
import Logging

/// Outermost middleware: the request id header, one log line and one metrics count per request,
/// with the status the client really got (for a stream: when it ends, 499 when the client left).
struct RequestLogMiddleware: RouterMiddleware {
    let metrics: ServerMetrics
    let logger: Logger

    func handle(_ request: Request, context: VerityRequestContext,
                next: (Request, VerityRequestContext) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var response = try await next(request, context)
        let id = context.id
        response.headers[HTTPField.Name("x-request-id")!] = id
        let endpoint = Self.endpoint(context.endpointPath)
        let status = response.status.code
        let line = "\(id) \(request.method) \(request.uri.path) \(status)"
        guard response.headers[.contentType] == "text/event-stream" else {
            // A fleet's heartbeats (every few seconds per worker) are logged only when refused.
            if status == 200 && endpoint == "/v1/workers/heartbeats" {
                logger.debug("\(line) \(Self.milliseconds(since: start)) ms")
            } else {
                logger.info("\(line) \(Self.milliseconds(since: start)) ms")
            }
            metrics.request(endpoint: endpoint, status: status)
            return response
        }
        let body = response.body
        let logger = self.logger, metrics = self.metrics
        response.body = ResponseBody { writer in
            do {
                try await body.write(writer)
            } catch is LedgerWriteFailure {
                logger.error("\(id) \(request.method) \(request.uri.path) 500 stream ended with an error: its record could not be stored \(Self.milliseconds(since: start)) ms")
                metrics.request(endpoint: endpoint, status: 500)
                throw LedgerWriteFailure()
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

    /// The metrics label of a request: the route it matched (`/v1/models/:id`), not its path.
    static func endpoint(_ route: String?) -> String {
        guard let route, route != "NotFound" else { return "other" }
        if route == "/" || route == "/index.html" || route.hasPrefix("/assets/") { return "/ (web chat)" }
        if route.hasPrefix("/v1/ledger/") { return "/v1/ledger" }
        // Hummingbird spells a parameter `{id}`; the label keeps the `:id` spelling it always had.
        return route.replacingOccurrences(of: "{", with: ":").replacingOccurrences(of: "}", with: "")
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> String {
        let d = ContinuousClock.now - start
        return String(format: "%.1f", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }
}
