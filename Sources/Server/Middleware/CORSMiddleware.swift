import HTTPTypes
import Hummingbird

/// Which other origins may call the API from a browser (`--cors-origin`, repeatable; `*` for any).
/// Off by default: then the ``OriginMiddleware`` refuses every cross-origin write.
///
/// Only the API's own routes get CORS: chat and text completions, responses and messages, models, tokenize, and the
/// ledger's reads (and its `verify-receipt`, which computes and stores nothing). The admin routes
/// (`/v1/adapters`, `/v1/exports`), the fleet's and everything else never do, whatever the list
/// says. Credentials (cookies) are never allowed: the API takes bearer keys, which a page sends
/// itself in `Authorization`.
public struct CORSPolicy: Sendable, Equatable {
    /// Allowed origins, as `scheme://host[:port]`, or `*`.
    public var origins: [String]

    public init(origins: [String] = []) { self.origins = origins }

    public var isEnabled: Bool { !origins.isEmpty }

    /// Paths under which CORS is answered.
    static let eligiblePrefixes = ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages", "/v1/models", "/v1/tokenize", "/v1/detokenize", "/v1/ledger/"]

    /// Whether a browser page on `origin` may call `path`.
    func allows(_ origin: String, path: String) -> Bool {
        guard isEnabled, Self.eligiblePrefixes.contains(where: { path == $0 || path.hasPrefix($0 + "/") || ($0.hasSuffix("/") && path.hasPrefix($0)) })
        else { return false }
        return origins.contains("*") || origins.contains(origin.lowercased())
    }

    /// Checks one `--cors-origin` value: `*`, or `http(s)://host[:port]` with no path.
    /// - Returns: The origin, lower-cased as browsers send it.
    public static func normalize(_ value: String) -> String? {
        if value == "*" { return value }
        let lowered = value.lowercased()
        guard let schemeEnd = lowered.range(of: "://") else { return nil }
        let scheme = lowered[..<schemeEnd.lowerBound], rest = lowered[schemeEnd.upperBound...]
        guard scheme == "http" || scheme == "https", !rest.isEmpty,
              !rest.contains(where: { "/?#@ ".contains($0) }) else { return nil }
        return lowered
    }
}

/// Answers CORS preflights on the API's routes for the allowed origins, and adds
/// `Access-Control-Allow-Origin` to their answers (error answers included, so a page can read
/// why). A preflight from an origin that is not allowed, or for a route that never gets CORS, is
/// a 403 without CORS headers: the browser then refuses the request.
struct CORSMiddleware: RouterMiddleware {
    let policy: CORSPolicy

    static let allowMethods = "GET, POST, DELETE, OPTIONS"
    static let allowHeaders = "Authorization, Content-Type, X-Api-Key, Anthropic-Version"
    static let exposeHeaders = "X-Verity-Record, X-Request-Id, Retry-After"

    func handle(_ request: Request, context: VerityRequestContext,
                next: (Request, VerityRequestContext) async throws -> Response) async throws -> Response {
        guard policy.isEnabled, let origin = request.headers[HTTPField.Name("Origin")!] else {
            return try await next(request, context)
        }
        let path = request.uri.path
        let allowed = policy.allows(origin, path: path)
        if request.method == .options, request.headers[HTTPField.Name("Access-Control-Request-Method")!] != nil {
            let method = request.headers[HTTPField.Name("Access-Control-Request-Method")!] ?? ""
            guard allowed, ["GET", "POST", "DELETE"].contains(method.uppercased()) else {
                return Response(status: .forbidden, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(string:
                    #"{"error":{"message":"Cross-origin requests from this origin to this route are not allowed.","type":"invalid_request_error","param":null,"code":"cors_refused"}}"#)))
            }
            var headers = headers(for: origin)
            headers[HTTPField.Name("Access-Control-Allow-Methods")!] = Self.allowMethods
            headers[HTTPField.Name("Access-Control-Allow-Headers")!] = Self.allowHeaders
            headers[HTTPField.Name("Access-Control-Max-Age")!] = "600"
            return Response(status: .noContent, headers: headers)
        }
        var response = try await next(request, context)
        if allowed {
            for field in headers(for: origin) { response.headers[field.name] = field.value }
            response.headers[HTTPField.Name("Access-Control-Expose-Headers")!] = Self.exposeHeaders
        }
        return response
    }

    private func headers(for origin: String) -> HTTPFields {
        var headers = HTTPFields()
        headers[HTTPField.Name("Access-Control-Allow-Origin")!] = policy.origins.contains("*") ? "*" : origin
        headers[HTTPField.Name("Vary")!] = "Origin"
        return headers
    }
}
