import Hummingbird
import Node

/// Authentication and request rate limits for the routes that need a key: the router runs it
/// only for those routes, once it has matched one, so the check applies however the path was
/// spelled (`//v1/models`, `/v1/models/`) and public routes never see it.
struct AuthMiddleware: RouterMiddleware {
    let authenticator: Authenticator
    let limiter: RateLimiter

    func handle(_ request: Request, context: VerityRequestContext,
                next: (Request, VerityRequestContext) async throws -> Response) async throws -> Response {
        var context = context
        (context.caller, context.quota) = try authenticator.authenticate(request)
        do { try limiter.admitRequest(context.quota) } catch { throw APIError.rateLimited(error) }
        return try await next(request, context)
    }
}
