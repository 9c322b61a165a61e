import ArgumentParser
import Engine
import Foundation

/// Options shared by every command that loads a model.
struct ModelOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Path to a GGUF model file (default: the provisioned SmolLM2-135M-Instruct).")
    var model: String?

    @Option(help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("ctx"), help: "Context size in tokens (default: what the prompt and max tokens need, up to the model's trained context).")
    var contextSize: Int?

    var modelPath: String { model ?? ModelCache.defaultModelPath }

    var threadCount: Int { max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount) }

    func validate() throws {
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be between 1 and 256") }
        if let contextSize, contextSize < 1 { throw ValidationError("--ctx must be positive") }
    }

    func load() throws -> LoadedModel {
        if model == nil && !FileManager.default.fileExists(atPath: modelPath) {
            throw CLIError("default model not found at \(modelPath); run scripts/fetch-models or pass --model PATH")
        }
        let loaded = try LoadedModel(path: modelPath)
        return loaded
    }

    /// The KV cache size for a prompt of `promptTokens` and `maxTokens` more.
    func capacity(for model: LoadedModel, promptTokens: Int, maxTokens: Int) -> Int {
        let trained = model.network.trainedContextLength
        if let contextSize { return contextSize }
        return min(trained, promptTokens + maxTokens + 1)
    }
}

/// Sampling flags, mapping 1:1 onto ``SamplingParameters``.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0.8
    @Option(name: .customLong("top-p"), help: "Nucleus sampling threshold.") var topP: Float = 0.95
    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0: all).") var topK: Int = 40
    @Option(name: .customLong("min-p"), help: "Drop tokens below min-p × the top probability.") var minP: Float = 0.05
    @Option(name: .customLong("repeat-penalty"), help: "Repetition penalty (1: off).") var repeatPenalty: Float = 1
    @Option(name: .customLong("presence-penalty")) var presencePenalty: Float = 0
    @Option(name: .customLong("frequency-penalty")) var frequencyPenalty: Float = 0
    @Option(help: "Random seed: the same seed gives the same output.") var seed: UInt64?

    func validate() throws {
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be ≥ 0") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard topK >= 0 else { throw ValidationError("--top-k must be ≥ 0") }
        guard minP >= 0, minP <= 1 else { throw ValidationError("--min-p must be in [0, 1]") }
        guard repeatPenalty > 0 else { throw ValidationError("--repeat-penalty must be > 0") }
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
