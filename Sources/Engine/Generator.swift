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
        let tokenizer = model.tokenizer
        var sampler = Sampler(parameters: parameters.sampling)
        sampler.accept(prompt)

        // Reuse the cached prefix; always evaluate at least the last prompt token for its logits.
        var shared = 0
        while shared < min(cachedTokens.count, prompt.count - 1), cachedTokens[shared] == prompt[shared] { shared += 1 }
        context.truncate(to: shared)
        cachedTokens.removeSubrange(shared...)

        let promptStart = Date()
        var logits: UnsafeBufferPointer<Float>
        do {
            logits = try model.network.forward(Array(prompt[shared...]), context: context, logits: .last)
        } catch {
            cachedTokens = []
            context.truncate(to: 0)
            throw EngineError(.model, error.message, cause: error)
        }
        cachedTokens.append(contentsOf: prompt[shared...])
        let promptSeconds = Date().timeIntervalSince(promptStart)

        var result = GenerationResult(promptTokens: prompt, completionTokens: [], text: "", finishReason: .length,
                                      promptSeconds: promptSeconds, generationSeconds: 0, logprobs: [])
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        var stops = StopMatcher(stops: parameters.stop)
        let genStart = Date()
        var finished = false
        while !finished {
            if result.completionTokens.count >= parameters.maxTokens { result.finishReason = .length; break }
            let (token, logprob, top) = sampler.sample(logits, topLogprobs: parameters.logprobs)
            result.completionTokens.append(token)
            if let logprob { result.logprobs.append(logprob) }
            if tokenizer.isEndOfGeneration(token) {
                let tail = stops.feed(detokenizer.finish()).released + stops.flush()
                result.text += tail
                _ = onEvent(.token(id: token, text: tail, logprob: logprob, top: top))
                result.finishReason = .stop
                break
            }
            let (text, stopped) = stops.feed(detokenizer.append(token))
            result.text += text
            if !onEvent(.token(id: token, text: text, logprob: logprob, top: top)) {
                result.finishReason = .cancelled
                break
            }
            if stopped { result.finishReason = .stop; break }
            if result.completionTokens.count >= parameters.maxTokens { finished = true; result.finishReason = .length; continue }
            if context.count + 1 > context.capacity { result.finishReason = .length; break }
            do {
                logits = try model.network.forward([token], context: context, logits: .last)
                cachedTokens.append(token)
            } catch {
                cachedTokens = []
                context.truncate(to: 0)
                throw EngineError(.model, error.message, cause: error)
            }
        }
        if result.finishReason != .stop {
            let tail = stops.feed(detokenizer.finish()).released + stops.flush()
            if !tail.isEmpty {
                result.text += tail
                _ = onEvent(.token(id: -1, text: tail, logprob: nil, top: []))
            }
        }
        result.generationSeconds = Date().timeIntervalSince(genStart)
        return result
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
