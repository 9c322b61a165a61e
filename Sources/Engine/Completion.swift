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
    /// Log-probabilities of sampled tokens whose text is not released yet (held for a possible
    /// stop string or an unfinished character), oldest first, each with the text it added.
    private var heldLogprobs: [ContentLogprob] = []
    /// UTF-8 bytes of text released beyond the start of the first held entry.
    private var releasedBeyondHeld = 0
    /// The grammar's state after the tokens so far (with ``GenerationParameters/grammar``).
    public private(set) var grammarState: Int32 = 0

    /// One sampled token: its text (possibly empty while a character or a possible stop string is
    /// incomplete) and, when the completion ended with it, why.
    public struct Step: Sendable {
        public var token: Int32
        public var text: String
        public var logprob: TokenLogprob?
        public var top: [TokenLogprob]
        public var finish: FinishReason?
        /// The log-probabilities that go with ``text``: the tokens whose text it releases, each
        /// with the part of the content it accounts for. Joined, their texts are the content: an
        /// end-of-generation token has none, and a token cut by a stop string keeps only the text
        /// before the stop. Empty without `logprobs`.
        public var logprobs: [ContentLogprob] = []
    }

    public init(prompt: [Int32], parameters: GenerationParameters, tokenizer: Tokenizer) {
        self.parameters = parameters
        self.tokenizer = tokenizer
        sampler = Sampler(parameters: parameters.sampling)
        sampler.accept(prompt)
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        stops = StopMatcher(stops: parameters.stop)
        if let g = parameters.grammar { grammarState = g.grammar.initialState }
    }

    /// The stop string that ended the completion, if one did (as vLLM's `stop_reason` names it).
    public var stopString: String? { stops.matched }

    /// True when no token may be sampled at all (`maxTokens` is 0).
    public var isExhausted: Bool { tokens.count >= parameters.maxTokens }

    /// Samples the next token from `logits`. `finish` is `.stop` for an end-of-generation token or
    /// a stop string (the text then holds what preceded it) and `.length` at `maxTokens`.
    ///
    /// Under a grammar, only tokens it allows are sampled; when the output becomes a complete
    /// sentence that can't go on, the step finishes with `.stop` (no end-of-generation token is
    /// needed). If the grammar allows no token at all (a vocabulary that can't spell what it needs),
    /// the completion ends with `.length`, since its output is unfinished.
    public mutating func step(_ logits: UnsafeBufferPointer<Float>) -> Step {
        var mask: [UInt64]? = nil
        if let g = parameters.grammar?.grammar {
            let m = g.mask(grammarState)
            guard m.contains(where: { $0 != 0 }) else {
                let (tail, entries) = finishWithLogprobs()
                return Step(token: tokenizer.eosTokenID ?? 0, text: tail, logprob: nil, top: [], finish: .length, logprobs: entries)
            }
            mask = m
        }
        // Within the token budget, a grammar's output is always finished: a token after which
        // the rest of the budget could not complete the sentence is refused (when the budget
        // allowed a complete one to begin with; past that, the answer ends with `length`).
        var accept: ((Int32) -> Bool)? = nil
        if let g = parameters.grammar?.grammar {
            let left = parameters.maxTokens - tokens.count
            let state = grammarState
            if g.tokensToFinish(state) <= left {
                let tokenizer = self.tokenizer
                accept = { t in
                    tokenizer.isEndOfGeneration(t) || g.tokensToFinish(g.advance(state, bytes: tokenizer.pieceBytes(t))) <= left - 1
                }
            }
        }
        let (token, logprob, top) = sampler.sample(logits, topLogprobs: parameters.logprobs, allowed: mask, accept: accept)
        tokens.append(token)
        if let logprob { logprobs.append(logprob) }
        if tokenizer.isEndOfGeneration(token) {
            // Not content: its log-probability is not listed with the text.
            let (tail, entries) = finishWithLogprobs()
            return Step(token: token, text: tail, logprob: logprob, top: top, finish: .stop, logprobs: entries)
        }
        let added = detokenizer.append(token)
        if let logprob { heldLogprobs.append(ContentLogprob(chosen: logprob, top: top, text: added)) }
        var (released, stopped) = stops.feed(added)
        text += released
        var entries = releaseLogprobs(bytes: released.utf8.count, final: stopped)
        var finish: FinishReason? = stopped ? .stop : tokens.count >= parameters.maxTokens ? .length : nil
        if let g = parameters.grammar?.grammar {
            grammarState = g.advance(grammarState, bytes: tokenizer.pieceBytes(token))
            if !stopped, grammarState >= 0, g.isAccepting(grammarState), !g.canContinue(grammarState) {
                // The sentence is complete: release what a possible stop string held back.
                let (tail, more) = finishWithLogprobs()
                released += tail
                entries += more
                finish = .stop
            }
        }
        return Step(token: token, text: released, logprob: logprob, top: top, finish: finish, logprobs: entries)
    }

    /// The held log-probabilities whose text is now released, `bytes` more of it. With `final`
    /// (a stop string ended the text), a token the stop cut keeps the released part of its text
    /// and the tokens after it are dropped.
    private mutating func releaseLogprobs(bytes: Int, final: Bool) -> [ContentLogprob] {
        releasedBeyondHeld += bytes
        var out: [ContentLogprob] = []
        while let first = heldLogprobs.first, first.text.utf8.count <= releasedBeyondHeld {
            releasedBeyondHeld -= first.text.utf8.count
            out.append(heldLogprobs.removeFirst())
        }
        if final {
            if var cut = heldLogprobs.first, releasedBeyondHeld > 0 {
                // The released text and each token's text are whole Unicode scalars, so the cut is
                // at a scalar boundary.
                cut.text = String(decoding: cut.text.utf8.prefix(releasedBeyondHeld), as: UTF8.self)
                out.append(cut)
            }
            heldLogprobs.removeAll()
            releasedBeyondHeld = 0
        }
        return out
    }

    /// Ends a completion that did not stop by itself (length, full context, cancellation):
    /// returns text held back for a possible stop string or an unfinished character.
    public mutating func finish() -> String {
        finishWithLogprobs().text
    }

    /// ``finish()``, with the log-probabilities that go with the text it returns (see
    /// ``Step/logprobs``).
    public mutating func finishWithLogprobs() -> (text: String, logprobs: [ContentLogprob]) {
        let tail = stops.feed(detokenizer.finish()).released + stops.flush()
        text += tail
        return (tail, releaseLogprobs(bytes: tail.utf8.count, final: true))
    }
}

/// A sampled token's log-probability as listed with the content: the token, its alternatives, and
/// the text of the content it accounts for (what the detokenizer added for it, released).
public struct ContentLogprob: Sendable, Equatable {
    public var chosen: TokenLogprob
    public var top: [TokenLogprob]
    public var text: String

    public init(chosen: TokenLogprob, top: [TokenLogprob], text: String) {
        self.chosen = chosen
        self.top = top
        self.text = text
    }
}
