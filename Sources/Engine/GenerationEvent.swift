/// Why a generation ended.
public enum FinishReason: String, Sendable, Codable {
    /// An end-of-generation token or a stop string.
    case stop
    /// `maxTokens` reached, or the context is full.
    case length
    /// The caller asked to stop (a client that went away, or shutdown).
    case cancelled
}

/// What a generation reports as it runs, in order: tokens, then exactly one `finished` or
/// `failed`. The one-at-a-time ``Generator`` and the ``BatchScheduler`` both speak it, and the
/// server renders it.
public enum GenerationEvent: Sendable {
    /// A sampled token and the text it completed (empty while a UTF-8 character or a possible
    /// stop string is incomplete).
    case token(Completion.Step)
    /// The generation ended.
    case finished(GenerationSummary)
    /// The generation could not go on (a failed forward pass, or shutdown before it started).
    case failed(EngineError)
}

/// How a generation ended.
public struct GenerationSummary: Sendable, Equatable {
    public var finishReason: FinishReason
    /// Text held back until the end (an unfinished character or a partial stop string), to be
    /// appended after the last token's text.
    public var tail: String
    /// The log-probabilities that go with ``tail`` (see ``Completion/Step/logprobs``).
    public var tailLogprobs: [ContentLogprob] = []
    public var promptTokens: Int
    /// Prompt tokens whose KV entries were reused from an earlier request.
    public var cachedPromptTokens: Int
    public var completionTokens: Int
    /// The stop string that ended the answer (finish reason `stop`), if one did rather than an
    /// end-of-generation token or a finished grammar.
    public var stopString: String? = nil

    public init(finishReason: FinishReason, tail: String, promptTokens: Int, cachedPromptTokens: Int, completionTokens: Int) {
        self.finishReason = finishReason
        self.tail = tail
        self.promptTokens = promptTokens
        self.cachedPromptTokens = cachedPromptTokens
        self.completionTokens = completionTokens
    }
}

extension Array where Element == Int32 {
    /// How many leading tokens this cache holds of `prompt` that can be reused: the common
    /// prefix, but never the prompt's last token, which is always evaluated for its logits.
    func reusablePrefix(of prompt: [Int32]) -> Int {
        var n = 0
        let limit = Swift.min(count, prompt.count - 1)
        while n < limit, self[n] == prompt[n] { n += 1 }
        return n
    }
}

extension GenerationEvent {
    /// The text this event adds to the completion: a token's text, or at the end the text held
    /// back until then.
    public var text: String {
        switch self {
        case .token(let step): step.text
        case .finished(let summary): summary.tail
        case .failed: ""
        }
    }
}
