import Foundation
import Node

/// A request to Anthropic's Messages API (`POST /v1/messages`), read and translated into the chat
/// completions body that answers it.
///
/// Translated: `system` (a string or text blocks), `messages` with string content or blocks
/// (`text`; the assistant's `tool_use`; the user's `tool_result`, which becomes a `tool` message
/// before the user's text), `max_tokens` (required, as Anthropic requires it), `stop_sequences`,
/// `temperature`, `top_p`, `top_k`, `tools` (client tools with an `input_schema`),
/// `tool_choice` (`auto`, `any`, `tool`, `none`, and `disable_parallel_tool_use`),
/// `metadata.user_id` (chat's `user`), `output_config.format` (a JSON schema: structured output, as
/// the SDK's `messages.parse` sends it) and `stream`. Images, documents, server tools and extended
/// thinking are 400s that name the field.
struct MessagesRequest {
    let json: JSON
    var model: String
    var stream: Bool

    init(_ data: Data) throws(APIError) {
        let json = try ChatBridge.object(data)
        self.json = json
        model = try Self.string(json["model"], "model") ?? ""
        switch json["stream"] {
        case nil, .null?: stream = false
        case .bool(let b)?: stream = b
        default: throw APIError.invalidType("stream", "expected a boolean.")
        }
        if let thinking = json["thinking"], !thinking.isNull, thinking["type"]?.stringValue != "disabled" {
            throw APIError.unsupported("thinking", "Extended thinking is not supported: the served models answer directly.")
        }
    }

    /// The chat completions body. `counting`: for `count_tokens`, where `max_tokens` may be absent.
    func chatBody(counting: Bool = false) throws(APIError) -> JSON {
        let maxTokens: JSON
        if let given = json["max_tokens"]?.nonNull { maxTokens = given } else if counting { maxTokens = 1 } else { throw APIError.missing("max_tokens") }
        var messages: [JSON] = []
        if let system = json["system"], !system.isNull {
            messages.append(["role": "system", "content": .string(try Self.text(system, at: "system"))])
        }
        guard let list = json["messages"]?.arrayValue else {
            throw json["messages"] == nil ? APIError.missing("messages") : APIError.invalidType("messages", "expected an array of messages.")
        }
        for (i, message) in list.enumerated() { messages += try Self.chatMessages(message, at: "messages.\(i)") }
        var fields: [(String, JSON)] = [("messages", .array(messages)), ("max_completion_tokens", maxTokens)]
        if !model.isEmpty { fields.insert(("model", .string(model)), at: 0) }
        for key in ["temperature", "top_p", "top_k"] {
            if let value = json[key], !value.isNull { fields.append((key, value)) }
        }
        if let stops = json["stop_sequences"], !stops.isNull { fields.append(("stop", stops)) }
        if let user = json["metadata"]?["user_id"], !user.isNull { fields.append(("user", user)) }
        if let tools = try Self.tools(json["tools"]) { fields.append(("tools", tools)) }
        if let choice = json["tool_choice"], !choice.isNull {
            let (chatChoice, parallel) = try Self.toolChoice(choice)
            fields.append(("tool_choice", chatChoice))
            if let parallel { fields.append(("parallel_tool_calls", .bool(parallel))) }
        }
        if let config = json["output_config"], !config.isNull {
            if let effort = config["effort"], !effort.isNull {
                throw APIError.unsupported("output_config.effort", "The served models don't reason before answering; leave 'effort' unset.")
            }
            if let format = config["format"], !format.isNull {
                guard format["type"]?.stringValue == "json_schema", let schema = format["schema"], schema.objectFields != nil else {
                    throw APIError.invalidRequest("output_config.format must be {\"type\": \"json_schema\", \"schema\": {…}}.", param: "output_config.format")
                }
                fields.append(("response_format", ["type": "json_schema", "json_schema": ["name": "output", "schema": schema, "strict": true]]))
            }
        }
        // Verity's own extension (a gateway's routing constraints, a grammar) goes through as is.
        if let verity = json["verity"], !verity.isNull { fields.append(("verity", verity)) }
        if stream { fields += [("stream", true), ("stream_options", ["include_usage": true])] }
        return .object(fields)
    }

    // MARK: Messages

    /// One Messages API message as chat messages: an assistant's text and calls as one message; a
    /// user's tool results as `tool` messages, then the user's text (if any).
    static func chatMessages(_ message: JSON, at path: String) throws(APIError) -> [JSON] {
        guard message.objectFields != nil else { throw APIError.invalidType(path, "expected a message object.") }
        guard let role = try string(message["role"], path + ".role") else { throw APIError.missing(path + ".role") }
        guard role == "user" || role == "assistant" else {
            throw APIError.invalidRequest("\(path).role: Input should be 'user' or 'assistant'.", param: path + ".role")
        }
        guard let content = message["content"], !content.isNull else { throw APIError.missing(path + ".content") }
        if let text = content.stringValue { return [["role": .string(role), "content": .string(text)]] }
        guard let blocks = content.arrayValue else { throw APIError.invalidType(path + ".content", "expected a string or an array of content blocks.") }
        var text = "", calls: [JSON] = [], results: [JSON] = []
        for (j, block) in blocks.enumerated() {
            let at = "\(path).content.\(j)"
            let type = try string(block["type"], at + ".type")
            switch (type, role) {
            case ("text"?, _):
                guard let t = block["text"]?.stringValue else { throw APIError.missing(at + ".text") }
                text += t
            case ("tool_use"?, "assistant"):
                guard let id = block["id"]?.stringValue else { throw APIError.missing(at + ".id") }
                guard let name = block["name"]?.stringValue else { throw APIError.missing(at + ".name") }
                let input = block["input"]?.nonNull ?? [:]
                calls.append(["id": .string(id), "type": "function", "function": ["name": .string(name), "arguments": .string(input.serialized())]])
            case ("tool_result"?, "user"):
                guard let id = block["tool_use_id"]?.stringValue else { throw APIError.missing(at + ".tool_use_id") }
                var output = ""
                if let c = block["content"], !c.isNull { output = try Self.text(c, at: at + ".content") }
                if block["is_error"]?.boolValue == true { output = "Error: " + output }
                results.append(["role": "tool", "tool_call_id": .string(id), "content": .string(output)])
            case ("thinking"?, "assistant"), ("redacted_thinking"?, "assistant"):
                // Never produced here; one sent back carries nothing to render.
                break
            default:
                throw APIError.unsupported(at, "Content blocks of type '\(type ?? "none")' are not supported in \(role) messages; use text\(role == "user" ? " and tool_result" : " and tool_use") blocks.")
            }
        }
        if role == "assistant" {
            var fields: [(String, JSON)] = [("role", "assistant"), ("content", calls.isEmpty || !text.isEmpty ? .string(text) : nil)]
            if !calls.isEmpty { fields.append(("tool_calls", .array(calls))) }
            return [.object(fields)]
        }
        return results + (text.isEmpty && !results.isEmpty ? [] : [["role": "user", "content": .string(text)]])
    }

    /// A string, or text blocks joined (`system`, a tool result's content).
    static func text(_ value: JSON, at path: String) throws(APIError) -> String {
        if let s = value.stringValue { return s }
        guard let blocks = value.arrayValue else { throw APIError.invalidType(path, "expected a string or an array of text blocks.") }
        var out = ""
        for (j, block) in blocks.enumerated() {
            guard block["type"]?.stringValue == "text", let t = block["text"]?.stringValue else {
                throw APIError.unsupported("\(path).\(j)", "Only text blocks are supported here.")
            }
            out += t
        }
        return out
    }

    // MARK: Tools

    private static func tools(_ value: JSON?) throws(APIError) -> JSON? {
        guard let value, !value.isNull else { return nil }
        guard let list = value.arrayValue else { throw APIError.invalidType("tools", "expected an array of tools.") }
        var out: [JSON] = []
        for (i, tool) in list.enumerated() {
            if let type = tool["type"]?.stringValue, type != "custom" {
                throw APIError.unsupported("tools.\(i).type", "Only client tools (with an input_schema) are supported; '\(type)' is a server tool this server does not have.")
            }
            guard let name = tool["name"]?.stringValue else { throw APIError.missing("tools.\(i).name") }
            guard let schema = tool["input_schema"], schema.objectFields != nil else { throw APIError.missing("tools.\(i).input_schema") }
            var function: [(String, JSON)] = [("name", .string(name))]
            if let d = tool["description"], !d.isNull { function.append(("description", d)) }
            function.append(("parameters", schema))
            out.append(["type": "function", "function": .object(function)])
        }
        return .array(out)
    }

    /// Chat's `tool_choice`, and `parallel_tool_calls` when the choice sets it.
    private static func toolChoice(_ value: JSON) throws(APIError) -> (JSON, Bool?) {
        let parallel = value["disable_parallel_tool_use"]?.boolValue.map { !$0 }
        switch value["type"]?.stringValue {
        case "auto": return ("auto", parallel)
        case "any": return ("required", parallel)
        case "none": return ("none", nil)
        case "tool":
            guard let name = value["name"]?.stringValue else { throw APIError.missing("tool_choice.name") }
            return (["type": "function", "function": ["name": .string(name)]], parallel)
        default:
            throw APIError.invalidRequest("tool_choice.type must be 'auto', 'any', 'tool' or 'none'.", param: "tool_choice.type")
        }
    }

    private static func string(_ value: JSON?, _ path: String) throws(APIError) -> String? {
        guard let value, !value.isNull else { return nil }
        guard let s = value.stringValue else { throw APIError.invalidType(path, "expected a string.") }
        return s
    }
}
