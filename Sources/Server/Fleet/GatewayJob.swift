import Foundation
import Logging
import Node

/// What a gateway's completion endpoints share: the fleet, the client that signs jobs, the
/// ledger, the limits and the routing settings.
struct GatewayServices: Sendable {
    let fleet: WorkerFleet
    let jobs: JobClient
    let ledger: LedgerAppender
    let metrics: ServerMetrics
    let limits: RequestLimits
    let limiter: RateLimiter
    let routing: GatewayRouting
    /// TLS pinned to each worker's advertised certificate.
    let tls: PinnedWorkerTLS
    let logger: Logger
}

/// How a gateway routes and retries.
public struct GatewayRouting: Sendable {
    /// How candidates are ranked.
    public var policy = RoutingPolicy.cheapest
    /// Workers tried for one request before it fails (a refused, failed or timed-out worker
    /// before the answer's first byte is retried on the next candidate).
    public var maxAttempts = 3
    /// How long a worker may take to start a streamed answer's response.
    public var headTimeout: Duration = .seconds(15)
    /// How long one job may take in all (a non-streamed answer's head comes with its end).
    public var jobTimeout: Duration = .seconds(600)
    /// Constraints for requests that set none (before any account's).
    public var defaults = RoutingConstraints()
    public init() {}
}

/// One request as the gateway sends it to workers.
struct GatewayJob: Sendable {
    /// The worker's path (`/v1/chat/completions`, `/v1/completions`).
    var path: String
    var model: String
    var streaming: Bool
    /// The body the workers get: the client's, less the routing members of the `verity` extension
    /// object.
    var body: Data
    /// The request's own constraints (the `verity` object).
    var constraints: RoutingConstraints
    /// The conversation's prefix key, so that its next turn goes where its cache is warm.
    var affinityKey: String?

    /// Members of the `verity` object that the worker reads (structured output on completions).
    static let workerMembers: Set<String> = ["grammar", "json_schema"]

    private struct Extension: Decodable {
        var verity: RoutingConstraints?
    }

    /// Reads the request's `verity` object (refusing a malformed one, naming its field) and takes
    /// it out of the body the workers get; the body passes byte for byte when it has none.
    init(path: String, model: String, streaming: Bool, body: Data, affinitySeed: String?) throws(APIError) {
        self.path = path
        self.model = model
        self.streaming = streaming
        let ext = try RequestBody.decode(Extension.self, from: body)
        constraints = ext.verity ?? RoutingConstraints()
        if ext.verity != nil, let parsed = try? JSON.parse(body) {
            // The routing members are the gateway's; the generation ones (a grammar) are the worker's.
            var kept: JSON? = nil
            if case .object(let members)? = parsed["verity"] {
                let generation = members.filter { Self.workerMembers.contains($0.0) }
                if !generation.isEmpty { kept = .object(generation) }
            }
            self.body = Data(parsed.setting("verity", kept).serialized().utf8)
        } else {
            self.body = body
        }
        affinityKey = affinitySeed.map { Interaction.textDigest(model + "\u{0}" + $0) }
    }
}
