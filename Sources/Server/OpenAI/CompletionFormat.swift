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
    /// The choices that end a stream, one chunk each: the text held back (which starts at
    /// `textOffset` characters), and the finish reason. `text` is the whole answer.
    func closingChoices(_ summary: GenerationSummary, textOffset: Int, text: String) -> [JSON]
    /// The non-streaming choice.
    func choice(text: String, steps: [Completion.Step], summary: GenerationSummary) -> JSON
    /// The answer as the record (and the usage statement) holds it, given the generated text.
    func recordedResponse(_ text: String) -> String
    /// The format of choice `index` of several (`n` > 1); choice 0's is this one.
    func forChoice(_ index: Int) -> any CompletionFormat
}

extension CompletionFormat {
    func recordedResponse(_ text: String) -> String { text }
    func forChoice(_ index: Int) -> any CompletionFormat { self }
}

/// `/v1/chat/completions`.
struct ChatFormat: CompletionFormat {
    let tokenizer: Tokenizer
    let wantsLogprobs: Bool
    /// With tools the model may call, the answer is held back while streaming and parsed at its
    /// end into `tool_calls` (and content, if any, without logprobs).
    var tools: ToolCalling? = nil
    /// The response's id, from which its tool calls' ids are derived (so the record can name them).
    var responseID = ""

    private var parsesCalls: Bool { tools.map { $0.choice != .none } ?? false }

    /// Another choice's calls get ids of their own: derived from the response id and the choice.
    func forChoice(_ index: Int) -> any CompletionFormat {
        guard index > 0 else { return self }
        var other = self
        other.responseID = responseID + "-\(index)"
        return other
    }

    var opening: JSON? { ["index": 0, "delta": ["role": "assistant", "content": ""], "logprobs": nil, "finish_reason": nil] }

    func tokenChoice(_ step: Completion.Step, textOffset: Int) -> JSON? {
        if parsesCalls { return nil }
        // Logprobs go with the text they account for: a token whose text is held back (or an
        // end-of-generation token) sends nothing of its own.
        let entries = wantsLogprobs ? step.logprobs : []
        guard !step.text.isEmpty || !entries.isEmpty else { return nil }
        let logprobs: JSON = wantsLogprobs ? ["content": .array(entries.map(entry)), "refusal": nil] : nil
        return ["index": 0, "delta": ["content": .string(step.text)], "logprobs": logprobs, "finish_reason": nil]
    }

    func closingChoices(_ summary: GenerationSummary, textOffset: Int, text: String) -> [JSON] {
        var out: [JSON] = []
        if let tools, parsesCalls {
            let (content, calls) = tools.parse(text)
            let shown = calls.isEmpty ? text : content ?? ""
            if !shown.isEmpty { out.append(["index": 0, "delta": ["content": .string(shown)], "logprobs": nil, "finish_reason": nil]) }
            for (i, call) in calls.enumerated() {
                let item = ToolCalling.item(call, id: ToolCalling.callID(responseID, i, syntax: tools.syntax)).setting("index", .int(i))
                out.append(["index": 0, "delta": ["tool_calls": [item]], "logprobs": nil, "finish_reason": nil])
            }
            out.append(ResponseShape.stopReason(["index": 0, "delta": [:], "logprobs": nil, "finish_reason": finishReason(summary, calls: !calls.isEmpty)], summary))
            return out
        }
        if !summary.tail.isEmpty {
            let logprobs: JSON = wantsLogprobs ? ["content": .array(summary.tailLogprobs.map(entry)), "refusal": nil] : nil
            out.append(["index": 0, "delta": ["content": .string(summary.tail)], "logprobs": logprobs, "finish_reason": nil])
        }
        out.append(ResponseShape.stopReason(["index": 0, "delta": [:], "logprobs": nil, "finish_reason": ResponseShape.finishReason(summary.finishReason)], summary))
        return out
    }

    /// With tool calls: the content (if any), then each call as its JSON (``ToolCalling/item(_:id:)``),
    /// one per line, as a gateway relaying the answer rebuilds it.
    func recordedResponse(_ text: String) -> String {
        guard let tools, parsesCalls else { return text }
        let (content, calls) = tools.parse(text)
        guard !calls.isEmpty else { return text }
        return ([content].compactMap { $0 } + calls.enumerated().map { ToolCalling.item($1, id: ToolCalling.callID(responseID, $0, syntax: tools.syntax)).serialized() })
            .joined(separator: "\n")
    }

    private func finishReason(_ summary: GenerationSummary, calls: Bool) -> JSON {
        calls && summary.finishReason == .stop ? "tool_calls" : ResponseShape.finishReason(summary.finishReason)
    }

    func choice(text: String, steps: [Completion.Step], summary: GenerationSummary) -> JSON {
        if let tools, parsesCalls {
            let (content, calls) = tools.parse(text)
            if !calls.isEmpty {
                let items: [JSON] = calls.enumerated().map { ToolCalling.item($1, id: ToolCalling.callID(responseID, $0, syntax: tools.syntax)) }
                return ["index": 0, "message": ["role": "assistant", "content": .optional(content), "refusal": nil, "annotations": [],
                                                "tool_calls": .array(items)],
                        "logprobs": nil, "finish_reason": finishReason(summary, calls: true)]
            }
        }
        return ResponseShape.stopReason(
            ["index": 0, "message": ["role": "assistant", "content": .string(text), "refusal": nil, "annotations": []],
             "logprobs": wantsLogprobs ? ["content": .array((steps.flatMap(\.logprobs) + summary.tailLogprobs).map(entry)), "refusal": nil] : nil,
             "finish_reason": ResponseShape.finishReason(summary.finishReason)], summary)
    }

    /// One entry of a chat `logprobs.content` array. The chosen token's `token` and `bytes` are
    /// the content it accounts for, so that the entries join to the content; the alternatives
    /// are their tokens' own text.
    private func entry(_ item: ContentLogprob) -> JSON {
        func fields(_ text: String, _ bytes: [UInt8], _ logprob: Float) -> [(String, JSON)] {
            [("token", .string(text)), ("logprob", Logprobs.value(logprob)), ("bytes", .array(bytes.map { .int(Int($0)) }))]
        }
        let top: [JSON] = item.top.map { alternative in
            let bytes = tokenizer.pieceBytes(alternative.token)
            return .object(fields(String(decoding: bytes, as: UTF8.self), bytes, alternative.logprob))
        }
        return .object(fields(item.text, Array(item.text.utf8), item.chosen.logprob) + [("top_logprobs", .array(top))])
    }
}

/// `/v1/completions`.
struct TextFormat: CompletionFormat {
    let tokenizer: Tokenizer
    let wantsLogprobs: Bool

    var opening: JSON? { nil }

    func tokenChoice(_ step: Completion.Step, textOffset: Int) -> JSON? {
        guard !step.text.isEmpty || (wantsLogprobs && !step.logprobs.isEmpty) else { return nil }
        return ["index": 0, "text": .string(step.text), "logprobs": logprobs(step.logprobs, from: textOffset), "finish_reason": nil]
    }

    func closingChoices(_ summary: GenerationSummary, textOffset: Int, text: String) -> [JSON] {
        [ResponseShape.stopReason(["index": 0, "text": .string(summary.tail), "logprobs": summary.tail.isEmpty ? nil : logprobs(summary.tailLogprobs, from: textOffset),
                                   "finish_reason": ResponseShape.finishReason(summary.finishReason)], summary)]
    }

    func choice(text: String, steps: [Completion.Step], summary: GenerationSummary) -> JSON {
        ResponseShape.stopReason(["index": 0, "text": .string(text), "logprobs": logprobs(steps.flatMap(\.logprobs) + summary.tailLogprobs, from: 0),
                                  "finish_reason": ResponseShape.finishReason(summary.finishReason)], summary)
    }

    /// The legacy logprobs object: `tokens` (the text each token accounts for: they join to the
    /// text), `token_logprobs`, `top_logprobs` and `text_offset` (the characters of text before
    /// each token).
    private func logprobs(_ entries: [ContentLogprob], from start: Int) -> JSON {
        guard wantsLogprobs else { return nil }
        var tokens: [JSON] = [], values: [JSON] = [], tops: [JSON] = [], offsets: [JSON] = []
        var offset = start
        for item in entries {
            tokens.append(.string(item.text))
            values.append(Logprobs.value(item.chosen.logprob))
            tops.append(.object(item.top.map { (text($0.token), Logprobs.value($0.logprob)) }))
            offsets.append(.int(offset))
            offset += item.text.count
        }
        return ["tokens": .array(tokens), "token_logprobs": .array(values), "top_logprobs": .array(tops), "text_offset": .array(offsets)]
    }

    private func text(_ token: Int32) -> String { String(decoding: tokenizer.pieceBytes(token), as: UTF8.self) }
}

enum Logprobs {
    /// A log-probability as JSON; -inf (a token the bias ruled out) as -9999, as OpenAI does.
    static func value(_ value: Float) -> JSON { .float(value.isFinite ? value : -9999) }
}
