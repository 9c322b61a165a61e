import Foundation

extension HFCheckpoint {
    typealias AssembledTensor = (name: String, dimensions: [Int], type: GGMLType, owner: MappedFile, offset: Int)

    /// Maps one architecture's config.json and tensor names onto llama.cpp's GGUF keys and names.
    struct Builder {
        let directory: String
        let hfArchitecture: String
        let arch: String
        let config: JSONObject
        let weights: SafetensorsSet
        var metadata: [(String, GGUFValue)] = []
        var tensors: [AssembledTensor] = []

        // Read by addHyperparameters, used by addTensors.
        var layers = 0, heads = 0, kvHeads = 0, headDim = 0, embedding = 0
        var ropeTheta: Double = 10_000

        init(directory: String, hfArchitecture: String, arch: String, config: JSONObject, weights: SafetensorsSet) {
            self.directory = directory
            self.hfArchitecture = hfArchitecture
            self.arch = arch
            self.config = config
            self.weights = weights
        }

        mutating func put(_ key: String, _ value: GGUFValue) { metadata.append((key, value)) }
        mutating func put(arch key: String, int value: Int) { put("\(arch).\(key)", .uint32(UInt32(clamping: value))) }
        mutating func put(arch key: String, float value: Double) { put("\(arch).\(key)", .float32(Float(value))) }

        /// The RoPE settings: `rope_theta` / `rope_scaling` (transformers ≤ 4) or `rope_parameters`
        /// (transformers 5; per layer type for Gemma 3).
        func rope(layerType: String? = nil) -> (theta: Double?, scaling: JSONObject?) {
            if var parameters = config.object("rope_parameters") {
                if let layerType, let perType = parameters.object(layerType) { parameters = perType }
                let type = parameters.string("rope_type") ?? parameters.string("type") ?? "default"
                return (parameters.optionalDouble("rope_theta"), type == "default" ? nil : parameters)
            }
            let theta = layerType == "sliding_attention" ? config.optionalDouble("rope_local_base_freq") : config.optionalDouble("rope_theta")
            var scaling = config.object("rope_scaling")
            if layerType == "sliding_attention" { scaling = nil }
            if let s = scaling, (s.string("rope_type") ?? s.string("type")) == "default" { scaling = nil }
            return (theta, scaling)
        }

        mutating func addHyperparameters() throws(GGUFError) {
            let name = config.string("_name_or_path").flatMap { $0.isEmpty ? nil : $0 } ?? URL(fileURLWithPath: directory).lastPathComponent
            put("general.architecture", .string(arch))
            put("general.type", .string("model"))
            put("general.name", .string(name))
            put("general.file_type", .uint32(0))
            layers = try config.int("num_hidden_layers")
            embedding = try config.int("hidden_size")
            heads = try config.int("num_attention_heads")
            kvHeads = config.optionalInt("num_key_value_heads") ?? heads
            guard layers > 0, embedding > 0, heads > 0, kvHeads > 0, heads % kvHeads == 0 else {
                throw GGUFError(.outOfRange, "\(directory)/config.json: invalid sizes: \(layers) layers, hidden \(embedding), \(heads) heads, \(kvHeads) kv heads")
            }
            headDim = config.optionalInt("head_dim") ?? embedding / heads
            let context = config.optionalInt("max_position_embeddings") ?? 2048
            put(arch: "block_count", int: layers)
            put(arch: "context_length", int: context)
            put(arch: "embedding_length", int: embedding)
            put(arch: "feed_forward_length", int: try config.int("intermediate_size"))
            put(arch: "attention.head_count", int: heads)
            put(arch: "attention.head_count_kv", int: kvHeads)
            put(arch: "attention.key_length", int: headDim)
            put(arch: "attention.value_length", int: headDim)
            put(arch: "attention.layer_norm_rms_epsilon", float: config.optionalDouble("rms_norm_eps") ?? 1e-6)
            if let vocabulary = config.optionalInt("vocab_size") { put(arch: "vocab_size", int: vocabulary) }
            // As llama.cpp's converter writes it: the rotated part of each head.
            let factor = config.optionalDouble("partial_rotary_factor") ?? 1
            put(arch: "rope.dimension_count", int: Int(Double(headDim) * factor))

            let global = rope(layerType: arch == "gemma3" ? "full_attention" : nil)
            ropeTheta = global.theta ?? 10_000
            put(arch: "rope.freq_base", float: ropeTheta)
            if let scaling = global.scaling { try addRopeScaling(scaling, context: context) }

            switch arch {
            case "gemma3":
                try addGemma3()
            case "qwen2", "qwen3":
                if config.bool("use_sliding_window", default: false) {
                    throw GGUFError(.outOfRange, "\(directory): use_sliding_window is set; Verity does not run \(hfArchitecture) with sliding-window attention yet")
                }
            case "llama":
                // Mistral 7B v0.1 attends within a 4,096-token window: serve no more context than that.
                if let window = config.optionalInt("sliding_window"), window > 0, window < context {
                    metadata.removeAll { $0.0 == "\(arch).context_length" }
                    put(arch: "context_length", int: window)
                }
            default:
                break
            }
        }

        mutating func addRopeScaling(_ scaling: JSONObject, context: Int) throws(GGUFError) {
            let type = scaling.string("rope_type") ?? scaling.string("type") ?? "default"
            switch type {
            case "linear":
                put("\(arch).rope.scaling.type", .string("linear"))
                put(arch: "rope.scaling.factor", float: scaling.optionalDouble("factor") ?? 1)
            case "llama3":
                // convert_hf_to_gguf.py's rope_freqs: per-frequency divisors from Llama 3.1's formula.
                let factor = scaling.optionalDouble("factor") ?? 8
                let low = scaling.optionalDouble("low_freq_factor") ?? 1
                let high = scaling.optionalDouble("high_freq_factor") ?? 4
                let old = Double(scaling.optionalInt("original_max_position_embeddings") ?? 8192)
                let lowWavelength = old / low, highWavelength = old / high
                let dims = config.optionalDouble("partial_rotary_factor").map { Int(Double(headDim) * $0) } ?? headDim
                var factors: [Float] = []
                for i in stride(from: 0, to: dims, by: 2) {
                    let freq = Double(1 / powf(Float(ropeTheta), Float(i) / Float(dims)))
                    let wavelength = 2 * Double.pi / freq
                    if wavelength < highWavelength { factors.append(1) }
                    else if wavelength > lowWavelength { factors.append(Float(factor)) }
                    else {
                        let smooth = (old / wavelength - low) / (high - low)
                        factors.append(Float(1 / ((1 - smooth) / factor + smooth)))
                    }
                }
                addFloatTensor("rope_freqs.weight", factors)
            case "longrope":
                guard let short = scaling.values["short_factor"] as? [NSNumber], let long = scaling.values["long_factor"] as? [NSNumber] else {
                    throw GGUFError(.missingKey, "\(directory)/config.json: longrope scaling needs short_factor and long_factor")
                }
                let original = config.optionalInt("original_max_position_embeddings") ?? scaling.optionalInt("original_max_position_embeddings") ?? context
                let scale = Double(context) / Double(original)
                put("\(arch).rope.scaling.type", .string("longrope"))
                put(arch: "rope.scaling.original_context_length", int: original)
                put(arch: "rope.scaling.attn_factor", float: scale <= 1 ? 1 : (1 + log(scale) / log(Double(original))).squareRoot())
                addFloatTensor("rope_factors_short.weight", short.map(\.floatValue))
                addFloatTensor("rope_factors_long.weight", long.map(\.floatValue))
            default:
                throw GGUFError(.outOfRange, "\(directory)/config.json: RoPE scaling '\(type)' is not supported yet (supported: linear, llama3, longrope)")
            }
        }

        mutating func addGemma3() throws(GGUFError) {
            let window = config.optionalInt("sliding_window") ?? 0
            put(arch: "attention.sliding_window", int: window)
            // Which layers attend globally: layer_types (transformers ≥ 4.53) or every pattern-th.
            var pattern = config.optionalInt("sliding_window_pattern") ?? config.optionalInt("_sliding_window_pattern") ?? 6
            if let types = config.values["layer_types"] as? [String] {
                guard let first = types.firstIndex(of: "full_attention") else {
                    throw GGUFError(.outOfRange, "\(directory)/config.json: layer_types has no full_attention layer")
                }
                pattern = first + 1
                let expected = (0..<types.count).map { $0 % pattern < pattern - 1 ? "sliding_attention" : "full_attention" }
                guard types == expected else {
                    throw GGUFError(.outOfRange, "\(directory)/config.json: layer_types is not one global layer every \(pattern); Verity runs only that pattern")
                }
            }
            put(arch: "attention.sliding_window_pattern", int: pattern)
            let local = rope(layerType: "sliding_attention")
            put(arch: "rope.freq_base_swa", float: local.theta ?? 10_000)
            if let cap = config.optionalDouble("final_logit_softcapping") { put(arch: "final_logit_softcapping", float: cap) }
            if let cap = config.optionalDouble("attn_logit_softcapping") {
                throw GGUFError(.outOfRange, "\(directory)/config.json: attention logit soft-capping (\(cap)) is not supported")
            }
            if let scalar = config.optionalInt("query_pre_attn_scalar"), scalar != headDim, layers != 62 {
                throw GGUFError(.outOfRange, "\(directory)/config.json: query_pre_attn_scalar \(scalar) differs from head_dim \(headDim); Verity scales queries by 1/√head_dim")
            }
        }

        /// A small F32 tensor computed here (RoPE factors).
        mutating func addFloatTensor(_ name: String, _ values: [Float]) {
            let owner = MappedFile(allocating: values.count * 4) { buffer in
                values.withUnsafeBytes { buffer.copyMemory(from: $0) }
            }
            tensors.append((name, [values.count], .f32, owner, 0))
        }
    }
}
