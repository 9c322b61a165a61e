import ChatTemplates
import Crypto
import Engine
import Foundation
import Grammar
import ModelFormats
import Node

/// The syntax in which a model's chat template teaches it to call tools, read from the template.
enum ToolSyntax: String, Sendable {
    /// Hermes / Qwen: `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`, one block per call.
    case hermes
    /// Llama 3.x: the answer is one JSON object `{"name": …, "parameters": {…}}`.
    case llama3
    /// Mistral: `[TOOL_CALLS]` then a JSON array of `{"name", "arguments"}` (the marker is a
    /// control token, hidden from the text).
    case mistral
    /// A template that knows no tools: Verity describes them in a system message and asks for
    /// Hermes-style `<tool_call>` blocks, which it then parses (README, "Tools").
    case generic

    static func of(_ template: ChatTemplate?) -> ToolSyntax {
        guard let source = template?.source, source.contains("tools") else { return .generic }
        if source.contains("<tool_call>") { return .hermes }
        if source.contains("[TOOL_CALLS]") { return .mistral }
        if source.contains("<|python_tag|>") || source.contains("ipython") { return .llama3 }
        return .generic
    }

    /// The key of a call's arguments in this syntax.
    var argumentsKey: String { self == .llama3 ? "parameters" : "arguments" }
}

/// A chat request's tools (`tools`, `tool_choice`, `parallel_tool_calls`), its messages as the
/// template's dicts (assistant `tool_calls`, `role: tool` results), and the parsing of the answer
/// into `tool_calls`. With `tool_choice` `required` or a named function, the answer is decoded under
/// a grammar of the syntax's call blocks whose arguments follow each function's `parameters`
/// schema, so they always validate; with `auto`, the model chooses, and what it wrote is parsed.
struct ToolCalling: Sendable {
    struct Function: Sendable {
        let name: String
        let parameters: RawJSON
        /// The tool object as the request gave it (`{"type": "function", "function": {…}}`).
        let tool: RawJSON
    }

    enum Choice: Sendable, Equatable {
        case none, auto, required, named(String)
    }

    struct Call: Sendable {
        let name: String
        /// The arguments as compact JSON text.
        let arguments: String
    }

    let functions: [Function]
    let choice: Choice
    let parallel: Bool
    let syntax: ToolSyntax
    /// For the record: `tools`, `tool_choice`, `parallel_tool_calls` as given.
    let recorded: [(String, String)]

    static let maxTools = 128

    /// Whether the request is about tools at all: tools or a tool choice given, or a conversation
    /// holding tool calls or results.
    static func involved(_ json: RawJSON) -> Bool {
        if let tools = json["tools"]?.array, !tools.isEmpty { return true }
        if let choice = json["tool_choice"], !choice.isNull { return true }
        return json["messages"]?.array?.contains { m in
            m["role"]?.string == "tool" || (m["tool_calls"]?.array.map { !$0.isEmpty } ?? false)
        } ?? false
    }

    static func parse(_ json: RawJSON, template: ChatTemplate?) throws(APIError) -> ToolCalling {
        var functions: [Function] = []
        var recorded: [(String, String)] = []
        if let tools = json["tools"], !tools.isNull {
            guard let list = tools.array else { throw APIError.invalidType("tools", "expected an array of tools.") }
            guard list.count <= maxTools else { throw APIError.invalidRequest("At most \(maxTools) tools are accepted; got \(list.count).", param: "tools") }
            for (i, tool) in list.enumerated() {
                guard tool["type"]?.string == "function", let f = tool["function"], f.members != nil else {
                    throw APIError.invalidRequest("tools[\(i)] must be {\"type\": \"function\", \"function\": {…}}.", param: "tools[\(i)]")
                }
                guard let name = f["name"]?.string, !name.isEmpty, name.count <= 64,
                      name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-") })
                else {
                    throw APIError.invalidRequest("tools[\(i)].function.name must be 1 to 64 letters, digits, '_' or '-'.", param: "tools[\(i)].function.name")
                }
                if functions.contains(where: { $0.name == name }) {
                    throw APIError.invalidRequest("Two tools are named '\(name)'.", param: "tools[\(i)].function.name")
                }
                let parameters = f["parameters"] ?? .object([(Array("type".utf8), .string(Array("object".utf8)))])
                guard parameters.members != nil else {
                    throw APIError.invalidType("tools[\(i)].function.parameters", "expected a JSON Schema object.")
                }
                functions.append(Function(name: name, parameters: parameters, tool: tool))
            }
            recorded.append(("tools", JSONSchemaGrammar.canonicalText(tools)))
        }
        var choice: Choice = functions.isEmpty ? .none : .auto
        if let c = json["tool_choice"], !c.isNull {
            recorded.append(("tool_choice", JSONSchemaGrammar.canonicalText(c)))
            switch c {
            case .string(let bytes):
                switch String(decoding: bytes, as: UTF8.self) {
                case "none": choice = .none
                case "auto": choice = functions.isEmpty ? .none : .auto
                case "required": choice = .required
                case let other: throw APIError.invalidRequest("tool_choice must be 'none', 'auto', 'required' or a function; got '\(other)'.", param: "tool_choice")
                }
            default:
                guard let name = c["function"]?["name"]?.string else {
                    throw APIError.invalidRequest("tool_choice must be 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": …}}.", param: "tool_choice")
                }
                choice = .named(name)
            }
        }
        if choice == .required && functions.isEmpty { throw APIError.invalidRequest("tool_choice 'required' needs tools.", param: "tool_choice") }
        if case .named(let name) = choice, !functions.contains(where: { $0.name == name }) {
            throw APIError.invalidRequest("tool_choice names '\(name)', which is not among the tools.", param: "tool_choice")
        }
        var parallel = true
        if let p = json["parallel_tool_calls"], !p.isNull {
            guard let b = p.bool else { throw APIError.invalidType("parallel_tool_calls", "expected a boolean.") }
            parallel = b
            recorded.append(("parallel_tool_calls", b ? "true" : "false"))
        }
        return ToolCalling(functions: functions, choice: choice, parallel: parallel, syntax: .of(template), recorded: recorded)
    }

    // MARK: The prompt

    /// The tools as the template's `tools` variable (nil when the template knows none, or with
    /// `tool_choice: none`).
    var templateTools: [TemplateValue]? {
        guard syntax != .generic, choice != .none, !functions.isEmpty else { return nil }
        return functions.map { Self.templateValue($0.tool) }
    }

    /// The messages as template dicts, and as plain messages for the record. For a template that
    /// knows no tools, tool calls become `<tool_call>` blocks in the assistant's text, results
    /// user messages in `<tool_response>` blocks, and the tools a system message that says how to
    /// call them.
    func messages(_ json: RawJSON, limit: Int) throws(APIError) -> (values: [TemplateValue], plain: [ChatMessage]) {
        guard let list = json["messages"]?.array, !list.isEmpty else { throw APIError.invalidRequest("messages must not be empty.", param: "messages") }
        guard list.count <= limit else {
            throw APIError.invalidRequest("A request may have at most \(limit) messages; this one has \(list.count).", param: "messages")
        }
        var values: [TemplateValue] = []
        var plain: [ChatMessage] = []
        let generic = syntax == .generic
        for (i, m) in list.enumerated() {
            let roles = ["system", "developer", "user", "assistant", "tool"]
            guard let role = m["role"]?.string, roles.contains(role) else {
                throw APIError.invalidRequest("Invalid role in messages[\(i)]; expected one of \(roles.joined(separator: ", ")).", param: "messages[\(i)].role")
            }
            var text = ""
            switch m["content"] {
            case nil, .null?: break
            case .string(let b)?: text = String(decoding: b, as: UTF8.self)
            case .array(let parts)?:
                for (j, part) in parts.enumerated() {
                    guard part["type"]?.string == "text", let t = part["text"]?.string else {
                        throw APIError.unsupported("messages[\(i)].content[\(j)]", "Only text content parts are supported.")
                    }
                    text += t
                }
            default: throw APIError.invalidType("messages[\(i)].content", "expected a string or an array of content parts.")
            }
            var calls: [(id: String, name: String, arguments: RawJSON)] = []
            if let tc = m["tool_calls"], !tc.isNull {
                guard role == "assistant", let items = tc.array else {
                    throw APIError.invalidRequest("Only assistant messages carry tool_calls, as an array.", param: "messages[\(i)].tool_calls")
                }
                for (j, call) in items.enumerated() {
                    guard let name = call["function"]?["name"]?.string else { throw APIError.missing("messages[\(i)].tool_calls[\(j)].function.name") }
                    let argumentsText = call["function"]?["arguments"]?.string ?? "{}"
                    let arguments = (try? RawJSON.parse(Array(argumentsText.utf8))) ?? .string(Array(argumentsText.utf8))
                    calls.append((call["id"]?.string ?? "call_\(j)", name, arguments))
                }
            }
            var r = role == "developer" ? "system" : role
            if generic {
                if !calls.isEmpty {
                    let blocks = calls.map { "<tool_call>\n" + Self.callText(name: $0.name, arguments: $0.arguments, key: "arguments") + "\n</tool_call>" }
                    text = ([text].filter { !$0.isEmpty } + blocks).joined(separator: "\n")
                }
                if r == "tool" {
                    r = "user"
                    text = "<tool_response>\n\(text)\n</tool_response>"
                }
                values.append(.object(OrderedObject([("role", .string(r)), ("content", .string(text))])))
            } else {
                var pairs: [(String, TemplateValue)] = [("role", .string(r)), ("content", .string(text))]
                if !calls.isEmpty {
                    pairs.append(("tool_calls", .array(calls.map { c in
                        .object(OrderedObject([("id", .string(c.id)), ("type", .string("function")),
                                               ("function", .object(OrderedObject([("name", .string(c.name)),
                                                                                   ("arguments", Self.templateValue(c.arguments))])))]))
                    })))
                }
                if let id = m["tool_call_id"]?.string { pairs.append(("tool_call_id", .string(id))) }
                if let name = m["name"]?.string { pairs.append(("name", .string(name))) }
                values.append(.object(OrderedObject(pairs)))
            }
            plain.append(ChatMessage(role: r, content: text))
        }
        if generic, choice != .none, !functions.isEmpty {
            let preamble = genericPreamble()
            if case .object(var first)? = values.first, first["role"] == .string("system"), case .string(let s)? = first["content"] {
                first["content"] = .string(s + "\n\n" + preamble)
                values[0] = .object(first)
                plain[0].content = s + "\n\n" + preamble
            } else {
                values.insert(.object(OrderedObject([("role", .string("system")), ("content", .string(preamble))])), at: 0)
                plain.insert(ChatMessage(role: "system", content: preamble), at: 0)
            }
        }
        return (values, plain)
    }

    private func genericPreamble() -> String {
        let list = functions.map { JSONSchemaGrammar.canonicalText($0.tool) }.joined(separator: "\n")
        var text = """
        You can call these tools (JSON Schema of each function's arguments):
        \(list)
        To call a tool, answer with a block
        <tool_call>
        {"name": "<function name>", "arguments": {<arguments>}}
        </tool_call>
        and nothing else; the result comes back in a <tool_response> block.
        """
        if parallel { text += " You may call several tools, one block each." }
        return text
    }

    // MARK: Decoding

    /// The grammar of the answer when a call is required (`required`, or a named function).
    func grammar() throws(APIError) -> StructuredOutput? {
        let candidates: [Function]
        switch choice {
        case .none, .auto: return nil
        case .required: candidates = functions
        case .named(let name): candidates = functions.filter { $0.name == name }
        }
        let key = Array(syntax.argumentsKey.utf8)
        let branches: [RawJSON] = candidates.map { f in
            .object([(Array("type".utf8), .string(Array("object".utf8))),
                     (Array("properties".utf8), .object([(Array("name".utf8), .object([(Array("const".utf8), .string(Array(f.name.utf8)))])),
                                                         (key, f.parameters)])),
                     (Array("required".utf8), .array([.string(Array("name".utf8)), .string(key)])),
                     (Array("additionalProperties".utf8), .bool(false))])
        }
        let schema: RawJSON = branches.count == 1 ? branches[0] : .object([(Array("anyOf".utf8), .array(branches))])
        var g: Grammar
        do { g = try JSONSchemaGrammar.grammar(schema: schema) } catch {
            let at = error.path.map { " (at \($0))" } ?? ""
            throw APIError.invalidRequest("tools: a function's parameters can't be enforced: \(error.message)\(at).", param: "tools",
                                          code: "unsupported_schema")
        }
        let call = g.rules["root"]!
        g.define("tool-call", call)
        let one: GrammarExpression
        let many: GrammarExpression
        switch syntax {
        case .hermes, .generic:
            one = .sequence([.text("<tool_call>\n"), .rule("tool-call"), .text("\n</tool_call>")])
            many = .sequence([one, .star(.sequence([.text("\n"), one]))])
        case .llama3:
            one = .rule("tool-call")
            many = one
        case .mistral:
            one = .sequence([.text("["), .rule("tool-call"), .text("]")])
            many = .sequence([.text("["), .rule("tool-call"), .star(.sequence([.text(", "), .rule("tool-call")])), .text("]")])
        }
        g.define("root", parallel && choice == .required ? many : one)
        let label = "tools:\(syntax.rawValue)"
        return StructuredOutput(key: "tools\u{0}\(syntax.rawValue)\u{0}\(parallel)\u{0}" + JSONSchemaGrammar.canonicalText(schema), label: label,
                                recorded: ("tools", ""), grammar: g)
    }

    // MARK: The answer

    /// The calls in `text`, and the text around them (nil when there is none). No calls when the
    /// text holds none, or when a block doesn't parse as a call of a given function (then it is
    /// all content).
    func parse(_ text: String) -> (content: String?, calls: [Call]) {
        guard choice != .none else { return (text, []) }
        var calls: [Call] = []
        var content = ""
        func call(_ json: RawJSON) -> Call? {
            guard let name = json["name"]?.string, functions.contains(where: { $0.name == name }) else { return nil }
            var arguments = json[syntax.argumentsKey] ?? json["arguments"] ?? json["parameters"] ?? .object([])
            if let s = arguments.string, let parsed = try? RawJSON.parse(Array(s.utf8)) { arguments = parsed }
            guard arguments.members != nil else { return nil }
            return Call(name: name, arguments: JSONSchemaGrammar.canonicalText(arguments))
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        switch syntax {
        case .hermes, .generic:
            var rest = Substring(text)
            while let open = rest.range(of: "<tool_call>") {
                content += rest[..<open.lowerBound]
                let after = rest[open.upperBound...]
                let close = after.range(of: "</tool_call>")
                let body = close.map { after[..<$0.lowerBound] } ?? after
                guard let json = try? RawJSON.parse(Array(body.trimmingCharacters(in: .whitespacesAndNewlines).utf8)), let c = call(json) else {
                    return (text, [])
                }
                calls.append(c)
                rest = close.map { after[$0.upperBound...] } ?? ""
            }
            content += rest
        case .llama3:
            let body = trimmed.hasPrefix("<|python_tag|>") ? String(trimmed.dropFirst("<|python_tag|>".count)) : trimmed
            guard body.hasPrefix("{"), let json = try? RawJSON.parse(Array(body.utf8)), let c = call(json) else { return (text, []) }
            calls = [c]
        case .mistral:
            guard trimmed.hasPrefix("["), let items = (try? RawJSON.parse(Array(trimmed.utf8)))?.array else { return (text, []) }
            for item in items {
                guard let c = call(item) else { return (text, []) }
                calls.append(c)
            }
        }
        let outside = content.trimmingCharacters(in: .whitespacesAndNewlines)
        return (outside.isEmpty ? nil : outside, calls)
    }

    /// The id of a response's `index`th tool call: `call_` and 24 base-36 characters derived from
    /// the response's id, so that the record and the answer name the call alike. Mistral's
    /// templates take only 9 letters and digits, so its calls get those.
    static func callID(_ responseID: String, _ index: Int, syntax: ToolSyntax = .generic) -> String {
        let digest = Array(SHA256.hash(data: Data("\(responseID)\u{0}\(index)".utf8)))
        if syntax == .mistral {
            let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
            return String(digest.prefix(9).map { alphabet[Int($0) % alphabet.count] })
        }
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")
        return "call_" + String(digest.prefix(24).map { alphabet[Int($0) % alphabet.count] })
    }

    /// A tool call as the answer lists it: `{"id", "type": "function", "function": {"name", "arguments"}}`.
    static func item(_ call: Call, id: String) -> JSON {
        ["id": .string(id), "type": "function", "function": ["name": .string(call.name), "arguments": .string(call.arguments)]]
    }

    // MARK: Conversions

    static func callText(name: String, arguments: RawJSON, key: String) -> String {
        JSONSchemaGrammar.canonicalText(.object([(Array("name".utf8), .string(Array(name.utf8))), (Array(key.utf8), arguments)]))
    }

    static func templateValue(_ json: RawJSON) -> TemplateValue {
        switch json {
        case .null: return .none
        case .bool(let b): return .bool(b)
        case .number(let d): return d.rounded() == d && abs(d) < 9e15 ? .int(Int(d)) : .double(d)
        case .string(let b): return .string(String(decoding: b, as: UTF8.self))
        case .array(let items): return .array(items.map(templateValue))
        case .object(let members): return .object(OrderedObject(members.map { (String(decoding: $0.key, as: UTF8.self), templateValue($0.value)) }))
        }
    }
}
