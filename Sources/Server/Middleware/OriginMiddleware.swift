import HTTPTypes
import Hummingbird

/// Refuses cross-site requests that change something: a browser sends `Origin` with every
/// cross-origin request, and a page on another site may make a "simple" POST (say `text/plain`)
/// without a preflight, so without this check any page a user visits could spend their server.
/// Requests without `Origin` (curl, SDKs, servers) and same-origin ones (the web chat) pass.
///
/// A server with no keys and bound to loopback is also the target of DNS rebinding (a page whose
/// name resolves to 127.0.0.1 is "same origin" with it), so such a server answers only requests
/// addressed to a loopback name or address in `Host`.
struct OriginMiddleware: RouterMiddleware {
    /// Whether to check `Host` too, asked per request (keys may be issued while serving): the
    /// server is bound to loopback and needs no key.
    let loopbackOnly: @Sendable () -> Bool
    /// Origins allowed to call the API's routes across origins (``CORSPolicy``).
    var cors = CORSPolicy()

    func handle(_ request: Request, context: VerityRequestContext,
                next: (Request, VerityRequestContext) async throws -> Response) async throws -> Response {
        let host = request.head.authority
        if let host, !Self.isLoopback(host), loopbackOnly() {
            throw APIError(status: .forbidden, message: "This server answers only requests to a loopback address (Host: \(host) is not).",
                           type: "invalid_request_error", code: "forbidden_host")
        }
        if request.method != .get, request.method != .head, request.method != .options,
           let origin = request.headers[HTTPField.Name("Origin")!], !Self.sameOrigin(origin, host: host),
           !cors.allows(origin, path: request.uri.path) {
            throw APIError(status: .forbidden, message: "Cross-origin requests are not allowed (Origin: \(origin)).",
                           type: "invalid_request_error", code: "cross_origin_refused")
        }
        return try await next(request, context)
    }

    /// `http(s)://<host>` where `<host>` is the request's own host and port.
    static func sameOrigin(_ origin: String, host: String?) -> Bool {
        guard let host else { return false }
        let lowered = origin.lowercased(), expected = host.lowercased()
        return lowered == "http://" + expected || lowered == "https://" + expected
    }

    /// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
    static func isLoopback(_ host: String) -> Bool {
        var name = host.lowercased()
        if name.hasPrefix("[") {
            guard let end = name.firstIndex(of: "]") else { return false }
            return name[name.index(after: name.startIndex)..<end] == "::1"
        }
        if let colon = name.lastIndex(of: ":") { name = String(name[..<colon]) }
        if name == "localhost" || name.hasSuffix(".localhost") { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }
}
