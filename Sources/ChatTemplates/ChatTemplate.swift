import Foundation

/// A parsed Jinja chat template (Hugging Face `tokenizer.chat_template`), rendered byte-for-byte like
/// Python jinja2 3.1 configured as transformers does (`ImmutableSandboxedEnvironment` with
/// `trim_blocks`, `lstrip_blocks`, `loopcontrols`, the `generation` tag, `raise_exception`,
/// `strftime_now` and the `tojson` override).
public struct ChatTemplate: Sendable {
    /// The template source.
    public let source: String
    private let nodes: NodesBox

    /// Parses the template once. Throws a `.syntax` error whose message includes the line number.
    public init(_ source: String) throws(TemplateError) {
        self.source = source
        self.nodes = NodesBox(try Parser.parse(source))
    }

    /// Renders with the given top-level variables. `strftime_now` uses the current time.
    public func render(_ context: [String: TemplateValue]) throws(TemplateError) -> String {
        try render(context, now: Date())
    }

    /// Renders with an injectable clock for `strftime_now` (formatted in the local time zone).
    public func render(_ context: [String: TemplateValue], now: Date) throws(TemplateError) -> String {
        let evaluator = Evaluator(context: context, now: now)
        _ = try evaluator.render(nodes.nodes, in: evaluator.globalFrame)
        return evaluator.out
    }
}

/// Immutable AST holder; the AST contains reference types that are never mutated after parsing.
private final class NodesBox: @unchecked Sendable {
    let nodes: [Node]
    init(_ nodes: [Node]) { self.nodes = nodes }
}

/// A chat message with plain-text content.
public struct ChatMessage: Sendable, Equatable {
    /// `system`, `user`, `assistant`, `tool`...
    public var role: String
    /// Text content.
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    /// The message as the `{"role": ..., "content": ...}` dict templates expect.
    public var templateValue: TemplateValue {
        .object(OrderedObject([("role", .string(role)), ("content", .string(content))]))
    }
}

extension ChatTemplate {
    /// Renders with Hugging Face `apply_chat_template` conventions: `messages`, `add_generation_prompt`,
    /// `bos_token`, `eos_token`, `tools` (None when absent), `documents` (None) plus `extra` variables.
    public func apply(
        messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String, eosToken: String,
        tools: [TemplateValue]? = nil, extra: [String: TemplateValue] = [:]
    ) throws(TemplateError) -> String {
        try apply(messages: messages.map(\.templateValue), addGenerationPrompt: addGenerationPrompt,
                  bosToken: bosToken, eosToken: eosToken, tools: tools, extra: extra, now: Date())
    }

    /// Like ``apply(messages:addGenerationPrompt:bosToken:eosToken:tools:extra:)`` but with arbitrary
    /// message dicts (tool calls, multimodal content) and an injectable clock.
    public func apply(
        messages: [TemplateValue], addGenerationPrompt: Bool, bosToken: String, eosToken: String,
        tools: [TemplateValue]? = nil, extra: [String: TemplateValue] = [:], now: Date
    ) throws(TemplateError) -> String {
        var context = extra
        context["messages"] = .array(messages)
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        context["bos_token"] = .string(bosToken)
        context["eos_token"] = .string(eosToken)
        context["tools"] = tools.map { .array($0) } ?? TemplateValue.none
        context["documents"] = extra["documents"] ?? TemplateValue.none
        return try render(context, now: now)
    }
}
