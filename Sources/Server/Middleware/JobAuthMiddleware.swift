import Foundation
import HTTPTypes
import Hummingbird
import Node
import Synchronization

/// A worker's door: it answers only jobs signed by a gateway its operator admitted
/// (``JobSignature``), each signature once. The job's request id becomes the answer's id.
struct JobAuthMiddleware: RouterMiddleware {
    /// The admitted gateways' Ed25519 public keys.
    let gateways: AdmittedGateways
    let maxBodyBytes: Int
    private let seen = ReplayCache()
    /// The header in which a gateway names the advert it routed a job by (base64 SHA-256).
    static let advertHeader = "Verity-Advert"

    func handle(_ request: Request, context: VerityRequestContext,
                next: (Request, VerityRequestContext) async throws -> Response) async throws -> Response {
        var request = request
        let body = try await RequestBody.read(request, limit: maxBodyBytes)
        request.body = RequestBody.replay(body)
        let value = request.headers[HTTPField.Name(JobSignature.header)!]
        let requestID = request.headers[HTTPField.Name(JobSignature.requestIDHeader)!]
        let now = Int64((Date().timeIntervalSince1970 * 1000).rounded())
        do {
            _ = try JobSignature.verify(value, method: request.method.rawValue, path: request.uri.description, requestID: requestID,
                                        body: body, now: now, admitted: gateways.contains)
            guard seen.insert(value ?? "", now: now) else { throw FleetSignatureError.replayed }
        } catch {
            throw APIError(status: .unauthorized, message: "This worker answers only jobs from its gateways: \(error).",
                           type: "invalid_request_error", code: "invalid_job_signature")
        }
        var context = context
        context.jobRequestID = requestID
        context.jobAdvertHash = request.headers[HTTPField.Name(Self.advertHeader)!].flatMap { Data(base64Encoded: $0) }
        return try await next(request, context)
    }
}

/// The gateway keys a worker admits; learned at start (from each gateway's
/// `/v1/workers/gateway-key`, or given with `--gateway-key`).
final class AdmittedGateways: Sendable {
    private let keys = Mutex<Set<Data>>([])

    func admit(_ key: Data) { keys.withLock { _ = $0.insert(key) } }
    func contains(_ key: Data) -> Bool { keys.withLock { $0.contains(key) } }
    var isEmpty: Bool { keys.withLock { $0.isEmpty } }
}

/// Signatures seen within the skew window; a second use of one is a replay.
private final class ReplayCache: Sendable {
    private let seen = Mutex<[String: Int64]>([:])

    /// Whether `signature` is new (and remembers it).
    func insert(_ signature: String, now: Int64) -> Bool {
        seen.withLock { seen in
            if seen.count > 10_000 { seen = seen.filter { now - $0.value <= 2 * JobSignature.maxSkew } }
            guard seen[signature] == nil else { return false }
            seen[signature] = now
            return true
        }
    }
}
