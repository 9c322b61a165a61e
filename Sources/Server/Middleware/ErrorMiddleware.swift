import Hummingbird
import Logging

/// Renders every error in OpenAI's shape (Anthropic's on `/v1/messages`, whose clients read that). An ``APIError`` is answered as it is; Hummingbird's own
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
            return render(error, request)
        } catch let error as any HTTPResponseError {
            switch error.status {
            case .notFound: return render(APIError.notFound(request.uri.path), request)
            case .contentTooLarge: return render(APIError.tooLarge(limit: nil), request)
            case .methodNotAllowed:
                return render(APIError(status: .methodNotAllowed, message: "\(request.method) is not allowed on \(request.uri.path).",
                                       type: "invalid_request_error", code: "method_not_allowed"), request)
            default:
                return render(APIError(status: error.status, message: error.status.reasonPhrase, type: "invalid_request_error"), request)
            }
        } catch {
            logger.error("\(context.id) \(request.method) \(request.uri.path): internal error: \(error)")
            return render(APIError.unexpected(requestID: context.id), request)
        }
    }

    private func render(_ error: APIError, _ request: Request) -> Response {
        guard MessagesController.paths.contains(request.uri.path) else { return error.response() }
        var fields = error.headers
        fields[.contentType] = "application/json"
        return Response(status: error.status, headers: fields,
                        body: ResponseBody(byteBuffer: ByteBuffer(string: MessagesErrors.body(error).serialized())))
    }
}
