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

    static let path = "/v1/messages"

    func addRoutes(to group: RouterGroup<VerityRequestContext>) {
        group.post("messages", use: create)
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
