import Models
import Tokenizers

/// One sequence's completion as it grows: sampling from each step's logits, detokenizing, stop
/// strings and the token limit. The one-at-a-time ``Generator`` and the batching scheduler drive
/// the same state, so a completion does not depend on how it was scheduled.
public struct Completion: Sendable {
    public let parameters: GenerationParameters
    public private(set) var tokens: [Int32] = []
    public private(set) var text = ""
    public private(set) var logprobs: [TokenLogprob] = []
    private let tokenizer: Tokenizer
    private var sampler: Sampler
    private var detokenizer: StreamingDetokenizer
    private var stops: StopMatcher

    /// One sampled token: its text (possibly empty while a character or a possible stop string is
    /// incomplete) and, when the completion ended with it, why.
    public struct Step: Sendable {
        public var token: Int32
        public var text: String
        public var logprob: TokenLogprob?
        public var top: [TokenLogprob]
        public var finish: FinishReason?
    }

    public init(prompt: [Int32], parameters: GenerationParameters, tokenizer: Tokenizer) {
        self.parameters = parameters
        self.tokenizer = tokenizer
        sampler = Sampler(parameters: parameters.sampling)
        sampler.accept(prompt)
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        stops = StopMatcher(stops: parameters.stop)
    }

    /// True when no token may be sampled at all (`maxTokens` is 0).
    public var isExhausted: Bool { tokens.count >= parameters.maxTokens }

    /// Samples the next token from `logits`. `finish` is `.stop` for an end-of-generation token or
    /// a stop string (the text then holds what preceded it) and `.length` at `maxTokens`.
    public mutating func step(_ logits: UnsafeBufferPointer<Float>) -> Step {
        let (token, logprob, top) = sampler.sample(logits, topLogprobs: parameters.logprobs)
        tokens.append(token)
        if let logprob { logprobs.append(logprob) }
        if tokenizer.isEndOfGeneration(token) {
            let tail = stops.feed(detokenizer.finish()).released + stops.flush()
            text += tail
            return Step(token: token, text: tail, logprob: logprob, top: top, finish: .stop)
        }
        let (released, stopped) = stops.feed(detokenizer.append(token))
        text += released
        let finish: FinishReason? = stopped ? .stop : tokens.count >= parameters.maxTokens ? .length : nil
        return Step(token: token, text: released, logprob: logprob, top: top, finish: finish)
    }

    /// Ends a completion that did not stop by itself (length, full context, cancellation):
    /// returns text held back for a possible stop string or an unfinished character.
    public mutating func finish() -> String {
        let tail = stops.feed(detokenizer.finish()).released + stops.flush()
        text += tail
        return tail
    }
}
