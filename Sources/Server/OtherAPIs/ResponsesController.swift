import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Node

/// OpenAI's Responses API: `POST /v1/responses` (streaming or not), and the stored responses'
/// `GET` and `DELETE /v1/responses/{id}`. Each request is answered as the chat completion it
/// translates to (``ResponsesRequest``, ``ChatBridge``), so it is validated, generated and
/// recorded in the ledger exactly as chat is, under the response's id (the record also names
/// the parameter `api: responses`).
struct ResponsesController {
    let answer: ChatAnswerer
    let store: ResponseStore
    let maxBodyBytes: Int

    func addRoutes(to group: RouterGroup<VerityRequestContext>) {
        group.post("responses", use: create)
        group.get("responses/{id}", use: retrieve)
        group.delete("responses/{id}", use: delete)
    }

    @Sendable func create(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let data = try await RequestBody.read(request, limit: maxBodyBytes)
        let req = try ResponsesRequest(data)
        let owner = ResponseStore.owner(context)
        var history: [JSON] = []
        if let previous = req.previousID {
            guard let stored = store.get(previous, owner: owner) else {
                throw APIError(status: .notFound, message: "Previous response with id '\(previous)' not found.", type: "invalid_request_error",
                               param: "previous_response_id", code: "previous_response_not_found")
            }
            history = stored.conversation
        }
        let (body, input) = try req.chatBody(history: history)
        let id = "resp_" + String((0..<32).map { _ in "0123456789abcdef".randomElement()! })
        let created = Int(Date().timeIntervalSince1970)
        let chat = try await answer(Data(body.serialized().utf8), context, id, "responses")
        let answer = ResponsesAnswer(id: id, created: created, request: req.echo)
        let conversation = history + input
        if req.stream {
            return ChatBridge.translate(chat, with: ResponsesStream(answer: answer, store: req.store ? store : nil, owner: owner,
                                                                    conversation: conversation))
        }
        let whole = ResponsesAnswer(id: id, created: created, request: req.echo, chat: try await ChatBridge.collect(chat))
        let response = whole.response()
        if req.store { store.put(id: id, owner: owner, response: response, conversation: conversation + [whole.assistantMessage]) }
        var headers: HTTPFields = [.contentType: "application/json"]
        headers[CompletionResponder.recordHeader] = chat.headers[CompletionResponder.recordHeader]
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: response.serialized())))
    }

    @Sendable func retrieve(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        guard let stored = store.get(id, owner: ResponseStore.owner(context)) else { throw Self.notFound(id) }
        return Self.json(stored.response)
    }

    @Sendable func delete(_ request: Request, context: VerityRequestContext) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        guard store.delete(id, owner: ResponseStore.owner(context)) else { throw Self.notFound(id) }
        return Self.json(["id": .string(id), "object": "response.deleted", "deleted": true])
    }

    static func notFound(_ id: String) -> APIError {
        APIError(status: .notFound, message: "No response with id '\(id)' is stored for this key.", type: "invalid_request_error",
                 param: "response_id", code: "not_found")
    }

    static func json(_ value: JSON) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: value.serialized())))
    }
}
