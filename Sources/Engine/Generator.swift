import Foundation
import Models
import Tokenizers

/// What to generate and when to stop.
public struct GenerationParameters: Sendable, Equatable {
    public var maxTokens: Int = 256
    public var stop: [String] = []
    public var sampling = SamplingParameters()
    /// Report log-probabilities with this many alternatives per token (nil: none).
    public var logprobs: Int? = nil
    /// A grammar the output must follow (structured output); nil: free text.
    public var grammar: GrammarConstraint? = nil
    public init() {}
}

/// The outcome of a one-at-a-time generation: its summary, plus the token ids, text and timings
/// a command-line user sees.
public struct GenerationResult: Sendable {
    public var summary: GenerationSummary
    public var promptTokens: [Int32]
    public var completionTokens: [Int32]
    /// The whole completion text, tail included.
    public var text: String
    public var finishReason: FinishReason { summary.finishReason }
    /// Seconds spent evaluating the prompt and generating the completion.
    public var promptSeconds: Double
    public var generationSeconds: Double
    public var logprobs: [TokenLogprob]

    public var promptTokensPerSecond: Double { promptSeconds > 0 ? Double(promptTokens.count) / promptSeconds : 0 }
    public var generationTokensPerSecond: Double {
        generationSeconds > 0 ? Double(max(0, completionTokens.count - 1)) / generationSeconds : 0
    }
}

/// Runs generations on one model context (one sequence at a time). Keeps the KV cache between
/// calls and reuses the longest common prefix of the previous and next prompt, so the next turn of
/// a chat evaluates only its new tokens. Owned by one thread.
public final class Generator {
    public let model: LoadedModel
    public let context: any ModelContext
    private var cachedTokens: [Int32] = []

    /// The LoRA adapter generations run with (nil: the bare base). Changing it forgets the cache,
    /// whose keys and values belong to the previous adapter.
    public var adapter: ModelAdapter? {
        didSet {
            guard adapter !== oldValue else { return }
            cachedTokens = []
            context.truncate(to: 0)
        }
    }

    /// - Parameters:
    ///   - capacity: positions in the KV cache (prompt + completion); at most the trained context.
    ///   - threads: compute threads.
    public init(model: LoadedModel, capacity: Int, threads: Int) throws(EngineError) {
        self.model = model
        do {
            context = try model.network.makeContext(capacity: capacity, threads: threads)
        } catch {
            throw EngineError(.model, error.message, cause: error)
        }
    }

    /// Generates a completion of `prompt`, calling `onEvent` with each ``GenerationEvent/token(_:)``
    /// (returning false cancels) and then once with ``GenerationEvent/finished(_:)``. Throws
    /// `.promptTooLong` when the prompt leaves no room in the context.
    @discardableResult
    public func generate(prompt: [Int32], parameters: GenerationParameters,
                         onEvent: (GenerationEvent) -> Bool = { _ in true }) throws(EngineError) -> GenerationResult {
        guard !prompt.isEmpty else { throw EngineError(.invalidParameter, "the prompt is empty") }
        guard parameters.maxTokens >= 0 else { throw EngineError(.invalidParameter, "max tokens must not be negative") }
        guard prompt.count < context.capacity else {
            throw EngineError(.promptTooLong, "the prompt has \(prompt.count) tokens but the context holds \(context.capacity)")
        }
        var completion = Completion(prompt: prompt, parameters: parameters, tokenizer: model.tokenizer)

        let shared = cachedTokens.reusablePrefix(of: prompt)
        context.truncate(to: shared)
        cachedTokens.removeSubrange(shared...)

        let promptStart = Date()
        var logits = try evaluate(Array(prompt[shared...]))
        let promptSeconds = Date().timeIntervalSince(promptStart)

        var finish = FinishReason.length
        let genStart = Date()
        while !completion.isExhausted {
            let step = completion.step(logits)
            let wanted = onEvent(.token(step))
            if let reason = step.finish { finish = reason; break }
            if !wanted { finish = .cancelled; break }
            if context.count + 1 > context.capacity { break }
            logits = try evaluate([step.token])
        }
        let (tail, tailLogprobs) = finish == .stop ? ("", []) : completion.finishWithLogprobs()
        var summary = GenerationSummary(finishReason: finish, tail: tail, promptTokens: prompt.count, cachedPromptTokens: shared,
                                        completionTokens: completion.tokens.count)
        summary.tailLogprobs = tailLogprobs
        summary.stopString = completion.stopString
        _ = onEvent(.finished(summary))
        return GenerationResult(summary: summary, promptTokens: prompt, completionTokens: completion.tokens, text: completion.text,
                                promptSeconds: promptSeconds, generationSeconds: Date().timeIntervalSince(genStart),
                                logprobs: completion.logprobs)
    }

    /// Appends `tokens` to the context; on failure forgets the cache so the next call starts clean.
    private func evaluate(_ tokens: [Int32]) throws(EngineError) -> UnsafeBufferPointer<Float> {
        do {
            let logits = try model.network.forward(tokens, context: context, logits: .last, adapter: adapter)
            cachedTokens.append(contentsOf: tokens)
            return logits
        } catch {
            cachedTokens = []
            context.truncate(to: 0)
            throw EngineError(.model, error.message, cause: error)
        }
    }

    /// Teacher-forced logits: evaluates `tokens` from an empty cache and returns
    /// `tokens.count × vocabularySize` floats, row t predicting token t+1.
    public func logits(for tokens: [Int32]) throws(EngineError) -> [Float] {
        context.truncate(to: 0)
        cachedTokens = []
        do {
            let out = try model.network.forward(tokens, context: context, logits: .all, adapter: adapter)
            cachedTokens = tokens
            return Array(out)
        } catch {
            context.truncate(to: 0)
            throw EngineError(.model, error.message, cause: error)
        }
    }
}
