import Engine
import HTTPTypes
import Hummingbird
import Node

/// An error answered in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`, with
/// its HTTP status and any headers it needs (`Retry-After`).
struct APIError: HTTPResponseError, Sendable {
    var status: HTTPResponse.Status
    var message: String
    var type: String
    var param: String? = nil
    var code: String? = nil
    var headers: HTTPFields = [:]

    var body: JSON {
        ["error": ["message": .string(message), "type": .string(type), "param": .optional(param), "code": .optional(code)]]
    }

    func response() -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: body.serialized())))
    }

    func response(from request: Request, context: some RequestContext) throws -> Response { response() }

    /// A parameter the engine refused, as a 400 naming it.
    static func invalidParameter(_ error: EngineError) -> APIError {
        invalidRequest(error.message, param: error.parameter)
    }

    static func invalidRequest(_ message: String, param: String? = nil, code: String? = "invalid_value") -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    static func invalidJSON(_ detail: String) -> APIError {
        invalidRequest("The request body is not valid JSON: \(detail)", code: "invalid_json")
    }

    static func missing(_ param: String) -> APIError {
        invalidRequest("Missing required parameter: '\(param)'.", param: param, code: "missing_required_parameter")
    }

    static func invalidType(_ param: String, _ detail: String) -> APIError {
        invalidRequest("Invalid type for '\(param)': \(detail)", param: param, code: "invalid_type")
    }

    static func unsupported(_ param: String, _ message: String) -> APIError {
        invalidRequest(message, param: param, code: "unsupported_parameter")
    }

    static func modelNotFound(_ id: String) -> APIError {
        APIError(status: .notFound, message: "The model '\(id)' does not exist or is not served here; GET /v1/models lists the served models.",
                 type: "invalid_request_error", param: "model", code: "model_not_found")
    }

    static func unauthorized(_ message: String) -> APIError {
        APIError(status: .unauthorized, message: message, type: "invalid_request_error", param: nil, code: "invalid_api_key")
    }

    /// `atLeast`: the prompt was only counted this far (tokenizing stopped past the context).
    static func contextLength(promptTokens: Int, maxTokens: Int?, context: Int, param: String, atLeast: Bool = false) -> APIError {
        let message: String
        if let maxTokens {
            let (total, overflow) = promptTokens.addingReportingOverflow(maxTokens)
            message = "This model's maximum context length is \(context) tokens. However, you requested \(overflow ? "more than \(Int.max)" : String(total)) tokens (\(promptTokens) in the prompt, \(maxTokens) for the completion). Please reduce the prompt or the completion length."
        } else {
            message = "This model's maximum context length is \(context) tokens. However, the prompt has \(atLeast ? "more than \(promptTokens - 1)" : String(promptTokens)) tokens, leaving no room for a completion. Please reduce the prompt."
        }
        return invalidRequest(message, param: param, code: "context_length_exceeded")
    }

    static func tooLarge(limit: Int?) -> APIError {
        APIError(status: .contentTooLarge, message: "The request body exceeds the limit" + (limit.map { " of \($0) bytes." } ?? "."),
                 type: "invalid_request_error", param: nil, code: "request_too_large")
    }

    static func overloaded(_ message: String, retryAfter: Int) -> APIError {
        APIError(status: .tooManyRequests, message: message, type: "server_overloaded", param: nil, code: "queue_full",
                 headers: [.retryAfter: String(retryAfter)])
    }

    /// A key over its rate limit: 429 with `Retry-After`.
    static func rateLimited(_ refusal: RateLimiter.Refusal) -> APIError {
        APIError(status: .tooManyRequests, message: refusal.message + " Retry after \(refusal.retryAfter) s.", type: "requests",
                 param: nil, code: "rate_limit_exceeded", headers: [.retryAfter: String(refusal.retryAfter)])
    }

    static func unavailable(_ message: String) -> APIError {
        APIError(status: .serviceUnavailable, message: message, type: "server_error", param: nil, code: "unavailable",
                 headers: [.retryAfter: "1"])
    }

    /// The ledger cannot record, so nothing may be answered: 503 with `Retry-After`.
    static func ledgerUnavailable() -> APIError {
        APIError(status: .serviceUnavailable, message: "The ledger cannot record interactions right now, so none is started; retry shortly.",
                 type: "server_error", param: nil, code: "ledger_unavailable", headers: [.retryAfter: "5"])
    }

    static func server(_ message: String) -> APIError {
        APIError(status: .internalServerError, message: message, type: "server_error", param: nil, code: "internal_error")
    }

    /// A failure the server did not expect: the details are in its log, under this request id.
    static func unexpected(requestID: String) -> APIError {
        server("The server had an internal error while processing request \(requestID). Its log has the details under this request id.")
    }

    static func notFound(_ path: String) -> APIError {
        APIError(status: .notFound, message: "No route for \(path).", type: "invalid_request_error", param: nil, code: "not_found")
    }
}
