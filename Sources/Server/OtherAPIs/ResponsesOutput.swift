import Foundation
import Hummingbird
import NIOCore
import Node

/// A chat answer as the Responses API returns it: the response object (``response(status:)``),
/// and, streamed, its events (``ResponsesStream``).
struct ResponsesAnswer: Sendable {
    typealias Call = ChatBridge.ToolCall

    let id: String
    let created: Int
    let request: ResponsesRequest.Echo
    var model = ""
    var text = ""
    var logprobs: [JSON] = []
    var calls: [Call] = []
    var finishReason: String?
    var usage: JSON = nil
    /// The `verity` receipt stub of the chat answer.
    var receipt: JSON?

    init(id: String, created: Int, request: ResponsesRequest.Echo) {
        self.id = id
        self.created = created
        self.request = request
    }

    /// A whole (non-streaming) chat answer.
    init(id: String, created: Int, request: ResponsesRequest.Echo, chat: JSON) {
        self.init(id: id, created: created, request: request)
        model = chat["model"]?.stringValue ?? ""
        let choice = chat["choices"]?.arrayValue?.first
        text = choice?["message"]?["content"]?.stringValue ?? ""
        logprobs = choice?["logprobs"]?["content"]?.arrayValue ?? []
        calls = ChatBridge.calls(choice?["message"]?["tool_calls"])
        finishReason = choice?["finish_reason"]?.stringValue
        usage = chat["usage"] ?? nil
        receipt = chat["verity"]
    }

    var incomplete: Bool { finishReason == "length" }

    /// Output items' ids follow from the response's.
    var messageID: String { "msg_" + id.dropFirst("resp_".count) }
    func callItemID(_ i: Int) -> String { "fc_" + id.dropFirst("resp_".count) + "_\(i)" }

    /// The message item (its text so far).
    func messageItem(status: String, text: String? = nil, logprobs: [JSON]? = nil) -> JSON {
        ["id": .string(messageID), "type": "message", "status": .string(status), "role": "assistant",
         "content": text.map { [Self.textPart($0, logprobs: logprobs ?? [])] } ?? []]
    }

    static func textPart(_ text: String, logprobs: [JSON]) -> JSON {
        ["type": "output_text", "text": .string(text), "annotations": [], "logprobs": .array(logprobs)]
    }

    func callItem(_ i: Int, status: String, arguments: String? = nil) -> JSON {
        let call = calls[i]
        return ["id": .string(callItemID(i)), "type": "function_call", "status": .string(status), "call_id": .string(call.id),
                "name": .string(call.name), "arguments": .string(arguments ?? call.arguments)]
    }

    /// Whether the answer has a message item: it has text, or it called nothing.
    var hasMessage: Bool { !text.isEmpty || calls.isEmpty }

    var output: [JSON] {
        let status = incomplete ? "incomplete" : "completed"
        var items: [JSON] = hasMessage ? [messageItem(status: status, text: text, logprobs: logprobs)] : []
        for i in calls.indices { items.append(callItem(i, status: "completed")) }
        return items
    }

    /// The response object. `status` `in_progress` is the streamed opening (no output yet, zero usage).
    func response(status: String? = nil) -> JSON {
        let status = status ?? (incomplete ? "incomplete" : "completed")
        let done = status != "in_progress"
        var fields: [(String, JSON)] = [
            ("id", .string(id)), ("object", "response"), ("created_at", .int(created)), ("status", .string(status)),
            ("completed_at", done && status == "completed" ? .int(Int(Date().timeIntervalSince1970)) : nil),
            ("error", nil), ("incomplete_details", done && incomplete ? ["reason": "max_output_tokens"] : nil),
            ("instructions", request.instructions), ("max_output_tokens", request.maxOutputTokens), ("model", .string(model)),
            ("output", done ? .array(output) : []), ("parallel_tool_calls", request.parallelToolCalls),
            ("previous_response_id", request.previousResponseID), ("reasoning", ["effort": nil, "summary": nil]),
            ("store", .bool(request.store)), ("temperature", request.temperature), ("text", request.text),
            ("tool_choice", request.toolChoice), ("tools", request.tools), ("top_logprobs", request.topLogprobs), ("top_p", request.topP),
            ("truncation", "disabled"), ("metadata", request.metadata),
            // What the Open Responses specification also requires of a response.
            ("presence_penalty", request.presencePenalty), ("frequency_penalty", request.frequencyPenalty),
            ("max_tool_calls", request.maxToolCalls), ("background", false), ("service_tier", "default"),
            ("safety_identifier", request.safetyIdentifier), ("prompt_cache_key", request.promptCacheKey),
        ]
        // Nor is `usage` ever null (and Open Responses requires it): a response in progress has used nothing yet.
        fields.append(("usage", done ? responseUsage : Self.usage(input: 0, output: 0, cached: 0)))
        // The schema has `user` as a string, never null: absent when the request gave none.
        if !request.user.isNull { fields.append(("user", request.user)) }
        if done, let receipt { fields.append(("verity", receipt)) }
        return .object(fields)
    }

    /// Chat's usage in the Responses API's names.
    private var responseUsage: JSON {
        Self.usage(input: usage["prompt_tokens"]?.intValue ?? 0, output: usage["completion_tokens"]?.intValue ?? 0,
                   cached: usage["prompt_tokens_details"]?["cached_tokens"]?.intValue ?? 0)
    }

    static func usage(input: Int, output: Int, cached: Int) -> JSON {
        ["input_tokens": .int(input), "input_tokens_details": ["cached_tokens": .int(cached), "cache_write_tokens": 0],
         "output_tokens": .int(output), "output_tokens_details": ["reasoning_tokens": 0], "total_tokens": .int(input + output)]
    }

    /// The stored conversation's last message: this answer as chat's assistant message.
    var assistantMessage: JSON {
        var fields: [(String, JSON)] = [("role", "assistant"), ("content", calls.isEmpty || !text.isEmpty ? .string(text) : nil)]
        if !calls.isEmpty {
            fields.append(("tool_calls", .array(calls.map {
                ["id": .string($0.id), "type": "function", "function": ["name": .string($0.name), "arguments": .string($0.arguments)]]
            })))
        }
        return .object(fields)
    }
}

extension ResponsesRequest {
    /// What a response object repeats of its request, with OpenAI's defaults.
    struct Echo: Sendable {
        var instructions: JSON
        var maxOutputTokens: JSON
        var parallelToolCalls: JSON
        var previousResponseID: JSON
        var store: Bool
        var temperature: JSON
        var topP: JSON
        var topLogprobs: JSON
        var text: JSON
        var toolChoice: JSON
        var tools: JSON
        var user: JSON
        var metadata: JSON
        var presencePenalty: JSON
        var frequencyPenalty: JSON
        var maxToolCalls: JSON
        var safetyIdentifier: JSON
        var promptCacheKey: JSON
    }

    var echo: Echo {
        func field(_ key: String, _ fallback: JSON) -> JSON { json[key]?.nonNull ?? fallback }
        return Echo(instructions: field("instructions", nil), maxOutputTokens: field("max_output_tokens", nil),
                    parallelToolCalls: field("parallel_tool_calls", true), previousResponseID: field("previous_response_id", nil),
                    store: store, temperature: field("temperature", 1), topP: field("top_p", 1), topLogprobs: field("top_logprobs", 0),
                    text: ["format": json["text"]?["format"]?.nonNull ?? ["type": "text"]],
                    toolChoice: field("tool_choice", "auto"),
                    // Each function tool as given, with `strict` (which the schema requires) false when unset.
                    tools: .array((json["tools"]?.arrayValue ?? []).map { $0["strict"].map { !$0.isNull } == true ? $0 : $0.setting("strict", false) }),
                    user: field("user", nil), metadata: field("metadata", [:]),
                    presencePenalty: field("presence_penalty", 0), frequencyPenalty: field("frequency_penalty", 0),
                    maxToolCalls: field("max_tool_calls", nil), safetyIdentifier: field("safety_identifier", nil),
                    promptCacheKey: field("prompt_cache_key", nil))
    }
}

/// The Responses API's event stream, from the chat stream: `response.created` and
/// `response.in_progress` at the first chunk; a message item whose text grows by
/// `response.output_text.delta`; a `function_call` item per call; then `response.completed` (or
/// `response.incomplete` when the answer hit its length) with the whole response, its receipt
/// stub included. A chat error event becomes an `error` event, and the stream ends there.
struct ResponsesStream: StreamTranslator {
    var answer: ResponsesAnswer
    let store: ResponseStore?
    let owner: String
    let conversation: [JSON]
    private var sequence = 0
    private var started = false, messageOpen = false, failed = false
    /// Each call's index in the chat stream, by output position.
    private var callIndexes: [Int] = []

    init(answer: ResponsesAnswer, store: ResponseStore?, owner: String, conversation: [JSON]) {
        self.answer = answer
        self.store = store
        self.owner = owner
        self.conversation = conversation
    }

    private mutating func event(_ type: String, _ fields: [(String, JSON)]) -> ByteBuffer {
        defer { sequence += 1 }
        return ChatBridge.sse(event: type, .object([("type", .string(type))] + fields + [("sequence_number", .int(sequence))]))
    }

    mutating func chunk(_ chunk: JSON) async -> [ByteBuffer] {
        guard !failed else { return [] }
        if let error = chunk["error"] {
            failed = true
            return [event("error", [("code", error["code"] ?? nil), ("message", error["message"] ?? ""), ("param", error["param"] ?? nil)])]
        }
        var out: [ByteBuffer] = []
        if !started {
            started = true
            answer.model = chunk["model"]?.stringValue ?? ""
            out.append(event("response.created", [("response", answer.response(status: "in_progress"))]))
            out.append(event("response.in_progress", [("response", answer.response(status: "in_progress"))]))
        }
        if let usage = chunk["usage"], !usage.isNull { answer.usage = usage }
        if let receipt = chunk["verity"] { answer.receipt = receipt }
        for choice in chunk["choices"]?.arrayValue ?? [] {
            let delta = choice["delta"]
            if let text = delta?["content"]?.stringValue, !text.isEmpty {
                out += openMessage()
                answer.text += text
                let entries = choice["logprobs"]?["content"]?.arrayValue ?? []
                answer.logprobs += entries
                out.append(event("response.output_text.delta", [("item_id", .string(answer.messageID)), ("output_index", 0), ("content_index", 0),
                                                               ("delta", .string(text)), ("logprobs", .array(entries))]))
            }
            for call in delta?["tool_calls"]?.arrayValue ?? [] {
                out += callDelta(call)
            }
            if let reason = choice["finish_reason"]?.stringValue { answer.finishReason = reason }
        }
        return out
    }

    private mutating func openMessage() -> [ByteBuffer] {
        guard !messageOpen else { return [] }
        messageOpen = true
        return [event("response.output_item.added", [("output_index", 0), ("item", answer.messageItem(status: "in_progress"))]),
                event("response.content_part.added", [("item_id", .string(answer.messageID)), ("output_index", 0), ("content_index", 0),
                                                      ("part", ResponsesAnswer.textPart("", logprobs: []))])]
    }

    private mutating func closeMessage() -> [ByteBuffer] {
        guard messageOpen else { return [] }
        messageOpen = false
        let status = answer.incomplete ? "incomplete" : "completed"
        let part = ResponsesAnswer.textPart(answer.text, logprobs: answer.logprobs)
        return [event("response.output_text.done", [("item_id", .string(answer.messageID)), ("output_index", 0), ("content_index", 0),
                                                    ("text", .string(answer.text)), ("logprobs", .array(answer.logprobs))]),
                event("response.content_part.done", [("item_id", .string(answer.messageID)), ("output_index", 0), ("content_index", 0),
                                                     ("part", part)]),
                event("response.output_item.done", [("output_index", 0), ("item", answer.messageItem(status: status, text: answer.text, logprobs: answer.logprobs))])]
    }

    /// A `tool_calls` delta: a new call opens its item (closing the message, which comes first);
    /// arguments arrive as deltas (whole, from Verity's engine; in pieces, from some upstreams).
    private mutating func callDelta(_ call: JSON) -> [ByteBuffer] {
        var out: [ByteBuffer] = []
        let index = call["index"]?.intValue ?? callIndexes.count
        let piece = call["function"]?["arguments"]?.stringValue ?? ""
        var position = callIndexes.firstIndex(of: index)
        if position == nil {
            out += closeMessage()
            callIndexes.append(index)
            answer.calls.append(.init(id: call["id"]?.stringValue ?? "", name: call["function"]?["name"]?.stringValue ?? "", arguments: ""))
            position = answer.calls.count - 1
            out.append(event("response.output_item.added", [("output_index", .int(outputIndex(position!))),
                                                           ("item", answer.callItem(position!, status: "in_progress", arguments: ""))]))
        }
        if !piece.isEmpty, let p = position {
            answer.calls[p].arguments += piece
            out.append(event("response.function_call_arguments.delta", [("item_id", .string(answer.callItemID(p))), ("output_index", .int(outputIndex(p))),
                                                                       ("delta", .string(piece))]))
        }
        return out
    }

    private func outputIndex(_ call: Int) -> Int { call + (answer.text.isEmpty ? 0 : 1) }

    mutating func done() async -> [ByteBuffer] {
        guard started, !failed else { return [] }
        var out: [ByteBuffer] = []
        if answer.calls.isEmpty { out += openMessage() }
        out += closeMessage()
        for i in answer.calls.indices {
            out.append(event("response.function_call_arguments.done", [("item_id", .string(answer.callItemID(i))), ("name", .string(answer.calls[i].name)),
                                                                      ("output_index", .int(outputIndex(i))), ("arguments", .string(answer.calls[i].arguments))]))
            out.append(event("response.output_item.done", [("output_index", .int(outputIndex(i))), ("item", answer.callItem(i, status: "completed"))]))
        }
        let response = answer.response()
        store?.put(id: answer.id, owner: owner, response: response, conversation: conversation + [answer.assistantMessage])
        out.append(event(answer.incomplete ? "response.incomplete" : "response.completed", [("response", response)]))
        return out
    }
}
