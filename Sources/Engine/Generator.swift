import Foundation
import Models
import Tokenizers

/// Why a generation ended.
public enum FinishReason: String, Sendable, Codable {
    /// An end-of-generation token or a stop string.
    case stop
    /// `maxTokens` reached, or the context is full.
    case length
    /// The caller asked to stop.
    case cancelled
}

/// What to generate and when to stop.
public struct GenerationParameters: Sendable, Equatable {
    public var maxTokens: Int = 256
    public var stop: [String] = []
    public var sampling = SamplingParameters()
    /// Report log-probabilities with this many alternatives per token (nil: none).
    public var logprobs: Int? = nil
    public init() {}
}

/// One step of a generation, reported as it happens.
public enum GenerationEvent: Sendable {
    /// A sampled token and the text it completed (may be empty while a UTF-8 character or a
    /// possible stop string is incomplete).
    case token(id: Int32, text: String, logprob: TokenLogprob?, top: [TokenLogprob])
}

/// The outcome of a generation.
public struct GenerationResult: Sendable {
    public var promptTokens: [Int32]
    public var completionTokens: [Int32]
    public var text: String
    public var finishReason: FinishReason
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

    /// Generates a completion of `prompt`, calling `onEvent` per token; returning false from it
    /// cancels. Throws `.promptTooLong` when the prompt leaves no room in the context.
    @discardableResult
    public func generate(prompt: [Int32], parameters: GenerationParameters,
                         onEvent: (GenerationEvent) -> Bool = { _ in true }) throws(EngineError) -> GenerationResult {
        guard !prompt.isEmpty else { throw EngineError(.invalidParameter, "the prompt is empty") }
        guard parameters.maxTokens >= 0 else { throw EngineError(.invalidParameter, "max tokens must not be negative") }
        guard prompt.count < context.capacity else {
            throw EngineError(.promptTooLong, "the prompt has \(prompt.count) tokens but the context holds \(context.capacity)")
        }
        var completion = Completion(prompt: prompt, parameters: parameters, tokenizer: model.tokenizer)

        // Reuse the cached prefix; always evaluate at least the last prompt token for its logits.
        var shared = 0
        while shared < min(cachedTokens.count, prompt.count - 1), cachedTokens[shared] == prompt[shared] { shared += 1 }
        context.truncate(to: shared)
        cachedTokens.removeSubrange(shared...)

        let promptStart = Date()
        var logits = try evaluate(Array(prompt[shared...]))
        let promptSeconds = Date().timeIntervalSince(promptStart)

        var finish = FinishReason.length
        let genStart = Date()
        while !completion.isExhausted {
            let step = completion.step(logits)
            let wanted = onEvent(.token(id: step.token, text: step.text, logprob: step.logprob, top: step.top))
            if let reason = step.finish { finish = reason; break }
            if !wanted { finish = .cancelled; break }
            if context.count + 1 > context.capacity { break }
            logits = try evaluate([step.token])
        }
        if finish != .stop {
            let tail = completion.finish()
            if !tail.isEmpty { _ = onEvent(.token(id: -1, text: tail, logprob: nil, top: [])) }
        }
        return GenerationResult(promptTokens: prompt, completionTokens: completion.tokens, text: completion.text,
                                finishReason: finish, promptSeconds: promptSeconds,
                                generationSeconds: Date().timeIntervalSince(genStart), logprobs: completion.logprobs)
    }

    /// Appends `tokens` to the context; on failure forgets the cache so the next call starts clean.
    private func evaluate(_ tokens: [Int32]) throws(EngineError) -> UnsafeBufferPointer<Float> {
        do {
            let logits = try model.network.forward(tokens, context: context, logits: .last)
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
            let out = try model.network.forward(tokens, context: context, logits: .all)
            cachedTokens = tokens
            return Array(out)
        } catch {
            context.truncate(to: 0)
            throw EngineError(.model, error.message, cause: error)
        }
    }
}
