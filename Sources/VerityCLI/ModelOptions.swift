import ArgumentParser
import Engine
import Kernels
import Foundation

/// Options shared by every command that loads a model.
struct ModelOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "A GGUF file, a Hugging Face model folder, or hf:ORG/NAME[:QUANT] from the hub (default: the provisioned SmolLM2-135M-Instruct).")
    var model: String?

    @OptionGroup var loading: LoadOptions

    @Option(help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("ctx"), help: "Context size in tokens (default: what the prompt and max tokens need, up to the model's trained context).")
    var contextSize: Int?

    var modelPath: String { model ?? ModelCache.defaultModelPath }

    var threadCount: Int { threads ?? ThreadPool.defaultThreadCount }

    func validate() throws {
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be between 1 and 256") }
        if let contextSize, contextSize < 1 { throw ValidationError("--ctx must be positive") }
    }

    func load() async throws -> LoadedModel {
        if model == nil && !FileManager.default.fileExists(atPath: modelPath) {
            throw CLIError("default model not found at \(modelPath); run scripts/fetch-models or pass --model PATH")
        }
        let resolved = try await ModelResolver.resolve(modelPath, revision: loading.revision)
        return try LoadedModel(path: resolved.path, options: try loading.options(source: resolved.source), threads: threadCount)
    }

    /// The KV cache size for a prompt of `promptTokens` and `maxTokens` more.
    func capacity(for model: LoadedModel, promptTokens: Int, maxTokens: Int) -> Int {
        let trained = model.network.trainedContextLength
        if let contextSize { return contextSize }
        return min(trained, promptTokens + maxTokens + 1)
    }
}

/// Sampling flags, mapping 1:1 onto ``SamplingParameters``; defaults are its defaults, ranges the
/// engine's ``ParameterRanges`` (as the HTTP API checks them).
struct SamplingOptions: ParsableArguments {
    static let defaults = SamplingParameters()

    @Option(help: "Sampling temperature; 0 is greedy.") var temperature = Self.defaults.temperature
    @Option(name: .customLong("top-p"), help: "Nucleus sampling threshold.") var topP = Self.defaults.topP
    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0: all).") var topK = Self.defaults.topK
    @Option(name: .customLong("min-p"), help: "Drop tokens below min-p × the top probability.") var minP = Self.defaults.minP
    @Option(name: .customLong("repeat-penalty"), help: "Repetition penalty (1: off).") var repeatPenalty = Self.defaults.repetitionPenalty
    @Option(name: .customLong("presence-penalty")) var presencePenalty = Self.defaults.presencePenalty
    @Option(name: .customLong("frequency-penalty")) var frequencyPenalty = Self.defaults.frequencyPenalty
    @Option(help: "Random seed: the same seed gives the same output.") var seed: UInt64?

    func validate() throws {
        do {
            _ = try ParameterRanges.check(Double(temperature), ParameterRanges.temperature, name: "--temperature")
            _ = try ParameterRanges.check(Double(topP), ParameterRanges.topP, name: "--top-p")
            guard topK >= 0 else { throw ValidationError("--top-k must be ≥ 0") }
            _ = try ParameterRanges.check(Double(minP), ParameterRanges.minP, name: "--min-p")
            _ = try ParameterRanges.check(Double(repeatPenalty), ParameterRanges.repetitionPenalty, name: "--repeat-penalty")
            _ = try ParameterRanges.check(Double(presencePenalty), ParameterRanges.presencePenalty, name: "--presence-penalty")
            _ = try ParameterRanges.check(Double(frequencyPenalty), ParameterRanges.frequencyPenalty, name: "--frequency-penalty")
        } catch let error as EngineError {
            throw ValidationError(error.message)
        }
    }

    var parameters: SamplingParameters {
        var p = SamplingParameters()
        p.temperature = temperature
        p.topP = topP
        p.topK = topK
        p.minP = minP
        p.repetitionPenalty = repeatPenalty
        p.presencePenalty = presencePenalty
        p.frequencyPenalty = frequencyPenalty
        p.seed = seed
        return p
    }
}

/// A one-line error for the user.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// How a model is loaded, beyond which one: shared by every command that loads models.
struct LoadOptions: ParsableArguments {
    @Option(help: "For hf: models: the branch, tag or commit (default: main).")
    var revision: String?

    @Option(help: "Quantize float (F32/F16/BF16) weights at load time: q8_0, q6_k, q5_k, q4_k, q4_0, … (see README).")
    var quantize: String?

    @Option(help: "Numerics: f32 (transformers' float32: F32 KV cache, attention and GELU; F16/BF16 weights widened to F32 at load, twice their memory, unless --quantize) or f16 (llama.cpp's: F16 cache, bit-exact to llama.cpp on GGUF). Default: f32 for a Hugging Face folder, f16 for GGUF.")
    var precision: AttentionPrecision?

    func validate() throws {
        _ = try ModelResolver.quantizeType(quantize)
    }

    func options(source: String?) throws -> ModelLoadOptions {
        ModelLoadOptions(quantize: try ModelResolver.quantizeType(quantize), sourceName: source, attention: precision)
    }
}

extension AttentionPrecision: ExpressibleByArgument {}
