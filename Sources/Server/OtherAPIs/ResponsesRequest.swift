import Foundation
import Node

/// A request to OpenAI's Responses API (`POST /v1/responses`), read and translated into the chat
/// completions body that answers it (``chatBody(history:)``).
///
/// Translated: `input` (a string, or message, `function_call` and `function_call_output` items),
/// `instructions` (a system message first; it does not carry over to a continuation),
/// `previous_response_id` (the stored conversation before the input), `max_output_tokens`,
/// `temperature`, `top_p`, `presence_penalty`, `frequency_penalty`, `tools` (function tools), `tool_choice`, `parallel_tool_calls`,
/// `text.format` (`json_object` and `json_schema`: structured output), `include`'s
/// `message.output_text.logprobs` with `top_logprobs`, `stream`, `user` and `seed` (Verity's, as
/// on chat). `metadata` and `store` are kept with the response. What would change the answer and
/// has no equivalent here is a 400 that names it: built-in tools, images and files, `background`,
/// `conversation`, `prompt`, `truncation: auto`, reasoning effort.
struct ResponsesRequest {
    let json: JSON
    var model: String
    var stream: Bool
    var store: Bool
    var previousID: String?
    var instructions: String?
    var wantsLogprobs: Bool

    init(_ data: Data) throws(APIError) {
        let json = try ChatBridge.object(data)
        self.json = json
        model = try Self.string(json, "model") ?? ""
        stream = try Self.bool(json, "stream") ?? false
        store = try Self.bool(json, "store") ?? true
        previousID = try Self.string(json, "previous_response_id")
        instructions = try Self.string(json, "instructions")
        var logprobs = false
        if let include = json["include"], !include.isNull {
            guard let items = include.arrayValue else { throw APIError.invalidType("include", "expected an array of strings.") }
            for (i, item) in items.enumerated() {
                guard let name = item.stringValue else { throw APIError.invalidType("include[\(i)]", "expected a string.") }
                if name == "message.output_text.logprobs" { logprobs = true }
            }
        }
        wantsLogprobs = logprobs
        for refused in ["background", "conversation", "prompt"] {
            if let value = json[refused], !value.isNull, value != .bool(false) {
                throw APIError.unsupported(refused, "'\(refused)' is not supported by this server's Responses API.")
            }
        }
        // The fields a response repeats must be what its schema says they are.
        for (key, kind) in [("parallel_tool_calls", "a boolean"), ("temperature", "a number"), ("top_p", "a number"),
                            ("presence_penalty", "a number"), ("frequency_penalty", "a number"), ("max_tool_calls", "an integer"),
                            ("safety_identifier", "a string"), ("prompt_cache_key", "a string"),
                            ("max_output_tokens", "an integer"), ("top_logprobs", "an integer"), ("user", "a string"),
                            ("metadata", "an object of strings"), ("text", "an object"), ("tools", "an array")] {
            guard let value = json[key]?.nonNull else { continue }
            let ok: Bool
            switch kind {
            case "a boolean": ok = value.boolValue != nil
            case "a number": ok = value.intValue != nil || { if case .double = value { return true }; return false }()
            case "an integer": ok = value.intValue != nil
            case "a string": ok = value.stringValue != nil
            case "an object of strings": ok = value.objectFields?.allSatisfy { $0.1.stringValue != nil } ?? false
            case "an object": ok = value.objectFields != nil
            default: ok = value.arrayValue != nil
            }
            guard ok else { throw APIError.invalidType(key, "expected \(kind).") }
        }
        if let truncation = json["truncation"], !truncation.isNull, truncation != "disabled" {
            throw APIError.unsupported("truncation", "Only truncation 'disabled' is supported: the conversation must fit the model's context.")
        }
        if let effort = json["reasoning"]?["effort"], !effort.isNull {
            throw APIError.unsupported("reasoning.effort", "The served models don't reason before answering; leave 'reasoning' unset.")
        }
    }

    /// The chat completions body: the instructions, the conversation so far (`history`, from
    /// the previous response), then this request's input. Also returns the input as chat
    /// messages, which the stored conversation gains.
    func chatBody(history: [JSON]) throws(APIError) -> (body: JSON, input: [JSON]) {
        let input = try Self.messages(json["input"])
        guard !(history + input).isEmpty else { throw APIError.missing("input") }
        var messages: [JSON] = []
        if let instructions { messages.append(["role": "system", "content": .string(instructions)]) }
        messages += history + input
        var fields: [(String, JSON)] = [("messages", .array(messages))]
        if !model.isEmpty { fields.insert(("model", .string(model)), at: 0) }
        for (from, to) in [("temperature", "temperature"), ("top_p", "top_p"), ("max_output_tokens", "max_completion_tokens"),
                           ("presence_penalty", "presence_penalty"), ("frequency_penalty", "frequency_penalty"),
                           ("parallel_tool_calls", "parallel_tool_calls"), ("user", "user"), ("seed", "seed")] {
            if let value = json[from], !value.isNull { fields.append((to, value)) }
        }
        if wantsLogprobs {
            fields.append(("logprobs", true))
            if let top = json["top_logprobs"], !top.isNull { fields.append(("top_logprobs", top)) }
        }
        if let tools = try Self.tools(json["tools"]) { fields.append(("tools", tools)) }
        if let choice = try Self.toolChoice(json["tool_choice"]) { fields.append(("tool_choice", choice)) }
        if let format = try Self.responseFormat(json["text"]?["format"]) { fields.append(("response_format", format)) }
        // Verity's own extension (a gateway's routing constraints, a grammar) goes through as is.
        if let verity = json["verity"], !verity.isNull { fields.append(("verity", verity)) }
        if stream { fields += [("stream", true), ("stream_options", ["include_usage": true])] }
        return (.object(fields), input)
    }

    // MARK: Input

    /// `input` as chat messages.
    static func messages(_ input: JSON?) throws(APIError) -> [JSON] {
        switch input {
        case nil, .null?: return []
        case .string(let text)?: return [["role": "user", "content": .string(text)]]
        case .array(let items)?:
            var out: [JSON] = []
            for (i, item) in items.enumerated() { try add(item, at: "input[\(i)]", to: &out) }
            return out
        default: throw APIError.invalidType("input", "expected a string or an array of input items.")
        }
    }

    private static func add(_ item: JSON, at path: String, to out: inout [JSON]) throws(APIError) {
        guard item.objectFields != nil else { throw APIError.invalidType(path, "expected an input item object.") }
        let type = try string(item, "type", at: path)
        switch type {
        case nil, "message"?:
            guard let role = try string(item, "role", at: path) else { throw APIError.missing(path + ".role") }
            let roles = ["user", "assistant", "system", "developer"]
            guard roles.contains(role) else {
                throw APIError.invalidRequest("Invalid role '\(role)' in \(path); expected one of \(roles.joined(separator: ", ")).", param: path + ".role")
            }
            out.append(["role": .string(role), "content": .string(try text(item["content"], at: path + ".content"))])
        case "function_call"?:
            guard let callID = try string(item, "call_id", at: path) else { throw APIError.missing(path + ".call_id") }
            guard let name = try string(item, "name", at: path) else { throw APIError.missing(path + ".name") }
            let arguments = try string(item, "arguments", at: path) ?? "{}"
            let call: JSON = ["id": .string(callID), "type": "function", "function": ["name": .string(name), "arguments": .string(arguments)]]
            // Calls that follow an assistant message (or each other) are that message's calls.
            if let last = out.last, last["role"]?.stringValue == "assistant" {
                out[out.count - 1] = last.setting("tool_calls", .array((last["tool_calls"]?.arrayValue ?? []) + [call]))
            } else {
                out.append(["role": "assistant", "content": nil, "tool_calls": [call]])
            }
        case "function_call_output"?:
            guard let callID = try string(item, "call_id", at: path) else { throw APIError.missing(path + ".call_id") }
            out.append(["role": "tool", "tool_call_id": .string(callID), "content": .string(try text(item["output"], at: path + ".output"))])
        case "reasoning"?:
            // This server never produces reasoning items; one echoed back carries nothing to render.
            break
        case let other?:
            throw APIError.unsupported(path + ".type", "Input items of type '\(other)' are not supported; use messages, function_call and function_call_output items.")
        }
    }

    /// A message's content (or a call's output): a string, or text parts joined.
    private static func text(_ content: JSON?, at path: String) throws(APIError) -> String {
        switch content {
        case nil, .null?: return ""
        case .string(let s)?: return s
        case .array(let parts)?:
            var out = ""
            for (j, part) in parts.enumerated() {
                let type = part["type"]?.stringValue
                switch type {
                case "input_text", "output_text", "text":
                    guard let t = part["text"]?.stringValue else { throw APIError.missing("\(path)[\(j)].text") }
                    out += t
                case "refusal": break
                default:
                    throw APIError.unsupported("\(path)[\(j)]", "Only text content parts are supported (got '\(type ?? "no type")').")
                }
            }
            return out
        default: throw APIError.invalidType(path, "expected a string or an array of content parts.")
        }
    }

    // MARK: Options

    /// Function tools in chat's shape (`{"type": "function", "function": {…}}`).
    private static func tools(_ value: JSON?) throws(APIError) -> JSON? {
        guard let value, !value.isNull else { return nil }
        guard let list = value.arrayValue else { throw APIError.invalidType("tools", "expected an array of tools.") }
        var out: [JSON] = []
        for (i, tool) in list.enumerated() {
            guard let type = tool["type"]?.stringValue else { throw APIError.missing("tools[\(i)].type") }
            guard type == "function" else {
                throw APIError.unsupported("tools[\(i)].type", "Only function tools are supported; '\(type)' is a built-in tool this server does not have.")
            }
            guard let name = tool["name"]?.stringValue else { throw APIError.missing("tools[\(i)].name") }
            var function: [(String, JSON)] = [("name", .string(name))]
            for key in ["description", "parameters", "strict"] {
                if let v = tool[key], !v.isNull { function.append((key, v)) }
            }
            out.append(["type": "function", "function": .object(function)])
        }
        return .array(out)
    }

    private static func toolChoice(_ value: JSON?) throws(APIError) -> JSON? {
        switch value {
        case nil, .null?: return nil
        case .string(let s)? where ["auto", "none", "required"].contains(s): return .string(s)
        case let v? where v["type"]?.stringValue == "function":
            guard let name = v["name"]?.stringValue else { throw APIError.missing("tool_choice.name") }
            return ["type": "function", "function": ["name": .string(name)]]
        default:
            throw APIError.invalidRequest("tool_choice must be 'auto', 'none', 'required' or {\"type\": \"function\", \"name\": …}.", param: "tool_choice")
        }
    }

    /// `text.format` as chat's `response_format`.
    private static func responseFormat(_ value: JSON?) throws(APIError) -> JSON? {
        guard let value, !value.isNull else { return nil }
        switch value["type"]?.stringValue {
        case "text": return nil
        case "json_object": return ["type": "json_object"]
        case "json_schema":
            var schema: [(String, JSON)] = [("name", value["name"] ?? "response")]
            for key in ["description", "schema", "strict"] {
                if let v = value[key], !v.isNull { schema.append((key, v)) }
            }
            return ["type": "json_schema", "json_schema": .object(schema)]
        default:
            throw APIError.invalidRequest("text.format.type must be 'text', 'json_object' or 'json_schema'.", param: "text.format.type")
        }
    }

    // MARK: Fields

    private static func string(_ json: JSON, _ key: String, at path: String? = nil) throws(APIError) -> String? {
        guard let value = json[key], !value.isNull else { return nil }
        guard let s = value.stringValue else { throw APIError.invalidType(path.map { $0 + "." + key } ?? key, "expected a string.") }
        return s
    }

    private static func bool(_ json: JSON, _ key: String) throws(APIError) -> Bool? {
        guard let value = json[key], !value.isNull else { return nil }
        guard let b = value.boolValue else { throw APIError.invalidType(key, "expected a boolean.") }
        return b
    }
}
