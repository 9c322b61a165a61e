import Foundation
import NIOCore
import Node

/// A chat answer as Anthropic's Messages API returns it: the `message` object, and, streamed,
/// its events (``MessagesStream``).
struct MessagesAnswer: Sendable {
    typealias Call = ChatBridge.ToolCall

    let id: String
    var model = ""
    var text = ""
    var calls: [Call] = []
    var finishReason: String?
    /// The stop sequence that ended the answer (the chat answer's `stop_reason`).
    var stopSequence: String?
    var usage: JSON = nil
    var receipt: JSON?

    init(id: String) { self.id = id }

    /// A whole (non-streaming) chat answer.
    init(id: String, chat: JSON) {
        self.id = id
        model = chat["model"]?.stringValue ?? ""
        let choice = chat["choices"]?.arrayValue?.first
        text = choice?["message"]?["content"]?.stringValue ?? ""
        calls = ChatBridge.calls(choice?["message"]?["tool_calls"])
        finishReason = choice?["finish_reason"]?.stringValue
        stopSequence = choice?["stop_reason"]?.stringValue
        usage = chat["usage"] ?? nil
        receipt = chat["verity"]
    }

    /// `end_turn`, `max_tokens`, `stop_sequence` or `tool_use`.
    var stopReason: String {
        switch finishReason {
        case "length": return "max_tokens"
        case "tool_calls": return "tool_use"
        default: return stopSequence == nil ? "end_turn" : "stop_sequence"
        }
    }

    var hasText: Bool { !text.isEmpty || calls.isEmpty }

    /// A call's `tool_use` block; `input` is its arguments as JSON (an object).
    static func toolUse(_ call: Call, input: JSON? = nil) -> JSON {
        let decoded = try? JSON.parse(Data(call.arguments.utf8))
        let parsed = input ?? (decoded?.objectFields != nil ? decoded! : [:])
        return ["type": "tool_use", "id": .string(call.id), "name": .string(call.name), "input": parsed, "caller": ["type": "direct"]]
    }

    var usageObject: JSON { Self.usage(input: usage["prompt_tokens"]?.intValue ?? 0, output: usage["completion_tokens"]?.intValue ?? 0,
                                       cached: usage["prompt_tokens_details"]?["cached_tokens"]?.intValue ?? 0) }

    /// Anthropic's usage object, every field its current schema requires included.
    static func usage(input: Int, output: Int, cached: Int) -> JSON {
        ["input_tokens": .int(input), "output_tokens": .int(output), "cache_creation_input_tokens": 0, "cache_read_input_tokens": .int(cached),
         "cache_creation": nil, "inference_geo": nil, "output_tokens_details": nil, "server_tool_use": nil, "service_tier": "standard"]
    }

    static func textBlock(_ text: String) -> JSON { ["type": "text", "text": .string(text), "citations": nil] }

    /// The `message` object; `streaming` is the opening of a stream (no content, no stop yet).
    func message(opening: Bool = false) -> JSON {
        var content: [JSON] = []
        if !opening {
            if hasText { content.append(Self.textBlock(text)) }
            content += calls.map { Self.toolUse($0) }
        }
        var fields: [(String, JSON)] = [
            ("id", .string(id)), ("type", "message"), ("role", "assistant"), ("model", .string(model)), ("content", .array(content)),
            ("stop_reason", opening ? nil : .string(stopReason)), ("stop_sequence", opening ? nil : .optional(stopSequence)),
            ("stop_details", nil), ("usage", opening ? Self.usage(input: 0, output: 0, cached: 0) : usageObject), ("container", nil),
        ]
        if !opening, let receipt { fields.append(("verity", receipt)) }
        return .object(fields)
    }
}

/// The Messages API's event stream, from the chat stream: `message_start` at the first chunk, a
/// `text` content block whose text grows by `text_delta`s, a `tool_use` block per call (its input
/// as `input_json_delta`s), then `message_delta` (the stop reason and the usage, which also gives
/// the input tokens: they are known only at the end) with the receipt stub, and `message_stop`. A
/// chat error event becomes an `error` event, and the stream ends there.
struct MessagesStream: StreamTranslator {
    var answer: MessagesAnswer
    private var started = false, failed = false
    /// The open content block's index, and whether it is the text block.
    private var block: Int?
    private var blocks = 0
    private var textOpen = false
    private var callIndexes: [Int] = []

    init(answer: MessagesAnswer) { self.answer = answer }

    private func event(_ type: String, _ fields: [(String, JSON)]) -> ByteBuffer {
        ChatBridge.sse(event: type, .object([("type", .string(type))] + fields))
    }

    mutating func chunk(_ chunk: JSON) async -> [ByteBuffer] {
        guard !failed else { return [] }
        if let error = chunk["error"] {
            failed = true
            let status = error["code"]?.stringValue == "ledger_unavailable" ? 503 : 500
            return [event("error", [("error", ["type": .string(MessagesErrors.type(status: status)), "message": error["message"] ?? ""])])]
        }
        var out: [ByteBuffer] = []
        if !started {
            started = true
            answer.model = chunk["model"]?.stringValue ?? ""
            out.append(event("message_start", [("message", answer.message(opening: true))]))
        }
        if let usage = chunk["usage"], !usage.isNull { answer.usage = usage }
        if let receipt = chunk["verity"] { answer.receipt = receipt }
        for choice in chunk["choices"]?.arrayValue ?? [] {
            let delta = choice["delta"]
            if let text = delta?["content"]?.stringValue, !text.isEmpty {
                if !textOpen { out += openText() }
                answer.text += text
                out.append(event("content_block_delta", [("index", .int(block ?? 0)), ("delta", ["type": "text_delta", "text": .string(text)])]))
            }
            for call in delta?["tool_calls"]?.arrayValue ?? [] { out += callDelta(call) }
            if let reason = choice["finish_reason"]?.stringValue { answer.finishReason = reason }
            if let stop = choice["stop_reason"]?.stringValue { answer.stopSequence = stop }
        }
        return out
    }

    private mutating func openText() -> [ByteBuffer] {
        textOpen = true
        block = blocks
        blocks += 1
        return [event("content_block_start", [("index", .int(block!)), ("content_block", MessagesAnswer.textBlock(""))])]
    }

    private mutating func closeBlock() -> [ByteBuffer] {
        guard let open = block else { return [] }
        block = nil
        textOpen = false
        return [event("content_block_stop", [("index", .int(open))])]
    }

    private mutating func callDelta(_ call: JSON) -> [ByteBuffer] {
        var out: [ByteBuffer] = []
        let index = call["index"]?.intValue ?? callIndexes.count
        if !callIndexes.contains(index) {
            out += closeBlock()
            callIndexes.append(index)
            let new = MessagesAnswer.Call(id: call["id"]?.stringValue ?? "", name: call["function"]?["name"]?.stringValue ?? "", arguments: "")
            answer.calls.append(new)
            block = blocks
            blocks += 1
            out.append(event("content_block_start", [("index", .int(block!)), ("content_block", MessagesAnswer.toolUse(new, input: [:]))]))
        }
        if let piece = call["function"]?["arguments"]?.stringValue, !piece.isEmpty, let p = callIndexes.firstIndex(of: index) {
            answer.calls[p].arguments += piece
            out.append(event("content_block_delta", [("index", .int(block ?? 0)), ("delta", ["type": "input_json_delta", "partial_json": .string(piece)])]))
        }
        return out
    }

    mutating func done() async -> [ByteBuffer] {
        guard started, !failed else { return [] }
        var out: [ByteBuffer] = []
        if blocks == 0 { out += openText() }
        out += closeBlock()
        var fields: [(String, JSON)] = [("delta", ["stop_reason": .string(answer.stopReason), "stop_sequence": .optional(answer.stopSequence)]),
                                        ("usage", answer.usageObject)]
        if let receipt = answer.receipt { fields.append(("verity", receipt)) }
        out.append(event("message_delta", fields))
        out.append(event("message_stop", []))
        return out
    }
}

/// Anthropic's error shape: `{"type": "error", "error": {"type", "message"}}`, whose type
/// follows the HTTP status.
enum MessagesErrors {
    static func type(status: Int) -> String {
        switch status {
        case 400, 422: return "invalid_request_error"
        case 401: return "authentication_error"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 413: return "request_too_large"
        case 429: return "rate_limit_error"
        case 503, 529: return "overloaded_error"
        default: return status < 500 ? "invalid_request_error" : "api_error"
        }
    }

    static func body(_ error: APIError) -> JSON {
        ["type": "error", "error": ["type": .string(type(status: Int(error.status.code))), "message": .string(error.message)]]
    }
}
