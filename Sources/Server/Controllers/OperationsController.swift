import Hummingbird

/// `GET /health` and `GET /metrics`: for load balancers and Prometheus, public.
struct OperationsController {
    let host: ModelHost
    let metrics: ServerMetrics

    func addRoutes(to router: Router<VerityRequestContext>) {
        router.get("health", use: health)
        router.get("metrics", use: render)
    }

    @Sendable func health(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let ready = host.models != nil
        return .json(ready ? ["status": "ok"] : ["status": "loading"], status: ready ? .ok : .serviceUnavailable)
    }

    @Sendable func render(_ request: Request, context: VerityRequestContext) async throws -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.render(models: host.models ?? []))))
    }
}
