import Hummingbird
import Node

/// `GET /health` and `GET /metrics`: for load balancers and Prometheus, public.
struct OperationsController {
    let host: ModelHost
    /// The ledger, where this server keeps one.
    let ledger: LedgerAppender?
    let metrics: ServerMetrics
    /// The open connections, where the server counts them.
    let connections: @Sendable () -> Int?

    func addRoutes(to router: Router<VerityRequestContext>) {
        router.get("health", use: health)
        router.get("metrics", use: render)
    }

    /// 200 `{"status": "ok"}`; 503 `{"status": "loading"}` until the models are loaded; 503
    /// `{"status": "degraded", "reason"}` while the ledger cannot record (a failed write, records
    /// spooled, or too little free space), so that a load balancer routes elsewhere.
    @Sendable func health(_ request: Request, context: VerityRequestContext) async throws -> Response {
        guard host.models != nil else { return .json(["status": "loading"], status: .serviceUnavailable) }
        if let appender = ledger, case let health = appender.health, !health.isHealthy {
            var reason: [String] = []
            if !health.writable { reason.append("the last ledger write failed") }
            if health.spooled > 0 { reason.append("\(health.spooled) records wait in memory for storage") }
            if let free = health.freeBytes, free < appender.configuration.minFreeBytes { reason.append("\(free) bytes free on the ledger's disk") }
            return .json(["status": "degraded", "reason": .string(reason.joined(separator: "; "))], status: .serviceUnavailable)
        }
        return .json(["status": "ok"])
    }

    @Sendable func render(_ request: Request, context: VerityRequestContext) async throws -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.render(models: host.models ?? [], connections: connections(), ledger: ledger?.health))))
    }
}
