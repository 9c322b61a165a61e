import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Node

/// Anthropic's Messages API: `POST /v1/messages`, streaming or not, for clients that speak it
/// (the `anthropic` SDKs, Claude-style agents). Each request is answered as the chat completion
/// it translates to (``MessagesRequest``, ``ChatBridge``): validated, generated and recorded in
/// the ledger as chat is, under the message's id (the record names the parameter `api:
/// messages`). Errors take Anthropic's shape (``ErrorMiddleware`` knows the path). Keys come as
/// `x-api-key`, as those SDKs send them, or as a bearer token.
struct MessagesController {
    let answer: ChatAnswerer
    let maxBodyBytes: Int
    /// The prompt tokens of a chat body, for `POST /v1/messages/count_tokens` (where the server
    /// holds the model: not on a gateway).
    var countTokens: (@Sendable (Data) async throws -> Int)? = nil

    static let paths: Set<String> = ["/v1/messages", "/v1/messages/count_tokens"]

    func addRoutes(to group: RouterGroup<VerityRequestContext>) {
        group.post("messages", use: create)
        if countTokens != nil { group.post("messages/count_tokens", use: count) }
    }

    /// `{"input_tokens": N}`: the request's prompt as the model's template renders it, tools
    /// included, in tokens. `max_tokens` may be left out.
    @Sendable func count(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let data = try await RequestBody.read(request, limit: maxBodyBytes)
        let body = try MessagesRequest(data).chatBody(counting: true)
        let tokens = try await countTokens!(Data(body.serialized().utf8))
        return Response(status: .ok, headers: [.contentType: "application/json"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: JSON.object([("input_tokens", .int(tokens))]).serialized())))
    }

    @Sendable func create(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let data = try await RequestBody.read(request, limit: maxBodyBytes)
        let req = try MessagesRequest(data)
        let body = try req.chatBody()
        let id = "msg_" + String((0..<24).map { _ in "0123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz".randomElement()! })
        let chat = try await answer(Data(body.serialized().utf8), context, id, "messages")
        if req.stream { return ChatBridge.translate(chat, with: MessagesStream(answer: MessagesAnswer(id: id))) }
        let message = MessagesAnswer(id: id, chat: try await ChatBridge.collect(chat)).message()
        var headers: HTTPFields = [.contentType: "application/json"]
        headers[CompletionResponder.recordHeader] = chat.headers[CompletionResponder.recordHeader]
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: message.serialized())))
    }
}
