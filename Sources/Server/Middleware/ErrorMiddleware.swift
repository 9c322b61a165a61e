import Hummingbird
import Logging

/// Renders every error in OpenAI's shape. An ``APIError`` is answered as it is; Hummingbird's own
/// (no route, a body too large) become the matching ``APIError``; anything else is a bug or a
/// failure the handler did not expect: it is logged with the request id, and the client gets a
/// generic 500 that names the request id, never Swift's error text.
struct ErrorMiddleware: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: VerityRequestContext,
                next: (Request, VerityRequestContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response()
        } catch let error as any HTTPResponseError {
            switch error.status {
            case .notFound: return APIError.notFound(request.uri.path).response()
            case .contentTooLarge: return APIError.tooLarge(limit: nil).response()
            case .methodNotAllowed:
                return APIError(status: .methodNotAllowed, message: "\(request.method) is not allowed on \(request.uri.path).",
                                type: "invalid_request_error", code: "method_not_allowed").response()
            default:
                return APIError(status: error.status, message: error.status.reasonPhrase, type: "invalid_request_error").response()
            }
        } catch {
            logger.error("\(context.id) \(request.method) \(request.uri.path): internal error: \(error)")
            return APIError.unexpected(requestID: context.id).response()
        }
    }
}
