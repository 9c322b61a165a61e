import ArgumentParser
import Engine
import Kernels
import Models
import Foundation

/// Options shared by every command that loads a model.
struct ModelOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "A GGUF file, a Hugging Face model folder, or hf:ORG/NAME[:QUANT] from the hub (default: the provisioned SmolLM2-135M-Instruct).")
    var model: String?

    @OptionGroup var loading: LoadOptions

    @OptionGroup var adapters: AdapterOptions

    @Option(help: "The LoRA adapter (a --lora NAME) that answers; 'none': the bare base (default: the only --lora, if just one).")
    var adapter: String?

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

    /// The adapter `--adapter` picks among the `--lora` ones (loaded for `model`), or nil for the base.
    func selectedAdapter(for model: LoadedModel) async throws -> ModelAdapter? {
        let specs = try adapters.specs()
        let name: String
        if let adapter {
            if adapter == "none" { return nil }
            name = adapter
        } else if specs.count == 1 {
            name = specs[0].name
        } else if specs.isEmpty {
            return nil
        } else {
            throw CLIError("several --lora adapters are loaded (\(specs.map(\.name).joined(separator: ", "))): pick one with --adapter NAME (or --adapter none)")
        }
        guard let spec = specs.first(where: { $0.name == name }) else {
            throw CLIError("--adapter \(name) names no --lora adapter (loaded: \(specs.isEmpty ? "none" : specs.map(\.name).joined(separator: ", ")))")
        }
        let resolved = try await ModelResolver.resolve(spec.path)
        return try model.loadAdapter(path: resolved.path, scale: spec.scale)
    }

    /// A generator on `model` with the selected adapter.
    func generator(for model: LoadedModel, capacity: Int) async throws -> Generator {
        let generator = try Generator(model: model, capacity: capacity, threads: threadCount)
        generator.adapter = try await selectedAdapter(for: model)
        return generator
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

/// `--lora NAME=PATH` and `--lora-scale NAME=SCALE`, shared by the commands that load adapters.
struct AdapterOptions: ParsableArguments {
    @Option(name: .customLong("lora"), help: "A LoRA adapter NAME=PATH: a PEFT folder (adapter_config.json + adapter_model.safetensors), a GGUF LoRA file or hf:ORG/NAME (repeatable).")
    var lora: [String] = []

    @Option(name: .customLong("lora-scale"), help: "NAME=SCALE: multiplies adapter NAME's low-rank term (default 1; repeatable).")
    var loraScale: [String] = []

    func validate() throws { _ = try specs() }

    /// The adapters named, in order, with their scales.
    func specs() throws -> [AdapterSpec] {
        var specs: [AdapterSpec] = []
        for entry in lora {
            guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex, entry.index(after: eq) != entry.endIndex else {
                throw ValidationError("--lora \(entry): expected NAME=PATH")
            }
            let name = String(entry[..<eq]), path = String(entry[entry.index(after: eq)...])
            if let problem = AdapterSpec.nameProblem(name) { throw ValidationError("--lora: \(problem)") }
            guard !specs.contains(where: { $0.name == name }) else { throw ValidationError("--lora \(name) is given twice") }
            specs.append(AdapterSpec(name: name, path: path))
        }
        for entry in loraScale {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let scale = Float(parts[1]), scale.isFinite else {
                throw ValidationError("--lora-scale \(entry): expected NAME=SCALE (a number)")
            }
            guard let i = specs.firstIndex(where: { $0.name == parts[0] }) else {
                throw ValidationError("--lora-scale \(parts[0]) names no --lora adapter")
            }
            specs[i].scale = scale
        }
        return specs
    }
}
