import Engine
import Node
import Tokenizers

/// How one endpoint renders a generation's choices: chat (`delta` / `message`, logprobs as
/// `content` entries) or text (`text`, logprobs as parallel arrays). ``CompletionResponder``
/// drives either, streaming or not, and wraps the choices with ``ResponseShape``.
protocol CompletionFormat: Sendable {
    /// The choice of the chunk sent before any token, if any (chat: the assistant's role).
    var opening: JSON? { get }
    /// The choice for one token, given how many characters of text were sent before it; nil when
    /// there is nothing to send for it.
    func tokenChoice(_ step: Completion.Step, textOffset: Int) -> JSON?
    /// The choices that end a stream, one chunk each: the text held back, and the finish reason.
    func closingChoices(_ summary: GenerationSummary) -> [JSON]
    /// The non-streaming choice.
    func choice(text: String, steps: [Completion.Step], summary: GenerationSummary) -> JSON
}

/// `/v1/chat/completions`.
struct ChatFormat: CompletionFormat {
    let tokenizer: Tokenizer
    let wantsLogprobs: Bool

    var opening: JSON? { ["index": 0, "delta": ["role": "assistant", "content": ""], "logprobs": nil, "finish_reason": nil] }

    func tokenChoice(_ step: Completion.Step, textOffset: Int) -> JSON? {
        guard !step.text.isEmpty || wantsLogprobs else { return nil }
        let logprobs: JSON = wantsLogprobs && step.logprob != nil ? ["content": [entry(step)!], "refusal": nil] : nil
        return ["index": 0, "delta": ["content": .string(step.text)], "logprobs": logprobs, "finish_reason": nil]
    }

    func closingChoices(_ summary: GenerationSummary) -> [JSON] {
        var out: [JSON] = []
        if !summary.tail.isEmpty {
            out.append(["index": 0, "delta": ["content": .string(summary.tail)], "logprobs": nil, "finish_reason": nil])
        }
        out.append(["index": 0, "delta": [:], "logprobs": nil, "finish_reason": ResponseShape.finishReason(summary.finishReason)])
        return out
    }

    func choice(text: String, steps: [Completion.Step], summary: GenerationSummary) -> JSON {
        ["index": 0, "message": ["role": "assistant", "content": .string(text), "refusal": nil],
         "logprobs": wantsLogprobs ? ["content": .array(steps.compactMap(entry)), "refusal": nil] : nil,
         "finish_reason": ResponseShape.finishReason(summary.finishReason)]
    }

    /// One entry of a chat `logprobs.content` array.
    private func entry(_ step: Completion.Step) -> JSON? {
        guard let chosen = step.logprob else { return nil }
        func fields(_ t: TokenLogprob) -> [(String, JSON)] {
            let bytes = tokenizer.pieceBytes(t.token)
            return [("token", .string(String(decoding: bytes, as: UTF8.self))), ("logprob", Logprobs.value(t.logprob)),
                    ("bytes", .array(bytes.map { .int(Int($0)) }))]
        }
        return .object(fields(chosen) + [("top_logprobs", .array(step.top.map { .object(fields($0)) }))])
    }
}

/// `/v1/completions`.
struct TextFormat: CompletionFormat {
    let tokenizer: Tokenizer
    let wantsLogprobs: Bool

    var opening: JSON? { nil }

    func tokenChoice(_ step: Completion.Step, textOffset: Int) -> JSON? {
        guard !step.text.isEmpty || wantsLogprobs else { return nil }
        return ["index": 0, "text": .string(step.text), "logprobs": logprobs([step], from: textOffset), "finish_reason": nil]
    }

    func closingChoices(_ summary: GenerationSummary) -> [JSON] {
        [["index": 0, "text": .string(summary.tail), "logprobs": nil, "finish_reason": ResponseShape.finishReason(summary.finishReason)]]
    }

    func choice(text: String, steps: [Completion.Step], summary: GenerationSummary) -> JSON {
        ["index": 0, "text": .string(text), "logprobs": logprobs(steps, from: 0),
         "finish_reason": ResponseShape.finishReason(summary.finishReason)]
    }

    /// The legacy logprobs object: `tokens`, `token_logprobs`, `top_logprobs` and `text_offset`
    /// (the characters of text before each token).
    private func logprobs(_ steps: [Completion.Step], from start: Int) -> JSON {
        guard wantsLogprobs else { return nil }
        var tokens: [JSON] = [], values: [JSON] = [], tops: [JSON] = [], offsets: [JSON] = []
        var offset = start
        for step in steps {
            guard let chosen = step.logprob else { continue }
            tokens.append(.string(text(chosen.token)))
            values.append(Logprobs.value(chosen.logprob))
            tops.append(.object(step.top.map { (text($0.token), Logprobs.value($0.logprob)) }))
            offsets.append(.int(offset))
            offset += step.text.count
        }
        return ["tokens": .array(tokens), "token_logprobs": .array(values), "top_logprobs": .array(tops), "text_offset": .array(offsets)]
    }

    private func text(_ token: Int32) -> String { String(decoding: tokenizer.pieceBytes(token), as: UTF8.self) }
}

enum Logprobs {
    /// A log-probability as JSON; -inf (a token the bias ruled out) as -9999, as OpenAI does.
    static func value(_ value: Float) -> JSON { .float(value.isFinite ? value : -9999) }
}
