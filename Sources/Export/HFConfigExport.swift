import Foundation
import ModelFormats

/// `config.json` and `generation_config.json` for a Hugging Face folder, from a model's GGUF
/// metadata: the inverse of what `HFCheckpoint.load` reads (HFCheckpoint+Builder's
/// `addHyperparameters`, HFTokenizer's special tokens and sampling defaults), so that loading the
/// written folder back gives the same GGUF metadata, and in the form transformers (4.x and 5)
/// builds the same model from.
///
/// What is written, per architecture (GGUF key → config.json key):
/// - all: `block_count` → num_hidden_layers, `embedding_length` → hidden_size,
///   `feed_forward_length` → intermediate_size, `attention.head_count(_kv)` →
///   num_attention_heads / num_key_value_heads, `attention.key_length` → head_dim,
///   `attention.layer_norm_rms_epsilon` → rms_norm_eps, `rope.freq_base` → rope_theta,
///   `context_length` → max_position_embeddings, token_embd's rows → vocab_size, no `output.weight`
///   → tie_word_embeddings, `tokenizer.ggml.{bos,eos,padding}_token_id` → bos/eos/pad_token_id,
///   `general.name` → _name_or_path (what HFCheckpoint names the model after).
/// - RoPE scaling: `rope.scaling.type` linear → rope_scaling linear with its factor; a
///   `rope_freqs.weight` tensor → rope_scaling llama3 (factor, low/high_freq_factor and
///   original_max_position_embeddings recovered from the factors and checked to give them back);
///   longrope (`rope_factors_short/long.weight`, `rope.scaling.original_context_length`) →
///   rope_scaling longrope with short/long_factor and original_max_position_embeddings; yarn →
///   rope_scaling yarn (factor, original_max_position_embeddings; HFCheckpoint does not read it).
/// - llama: LlamaForCausalLM, head_dim, attention_bias (q bias present), mlp_bias false.
/// - qwen2: Qwen2ForCausalLM, use_sliding_window false (the q/k/v biases are always there).
/// - qwen3: Qwen3ForCausalLM, head_dim, attention_bias, use_sliding_window false.
/// - gemma3: Gemma3ForCausalLM (model_type gemma3_text), head_dim, sliding_window,
///   sliding_window_pattern and layer_types, rope_local_base_freq (`rope.freq_base_swa`),
///   query_pre_attn_scalar (head_dim; hidden/heads for the 62-layer 27B), final/attn logit
///   soft-capping, hidden_activation gelu_pytorch_tanh.
/// - phi3: Phi3ForCausalLM, partial_rotary_factor (`rope.dimension_count` / head_dim) when not 1,
///   original_max_position_embeddings.
enum HFConfigExport {
    /// GGUF architecture → (HF class, model_type).
    static let architectures: [String: (hfArchitecture: String, modelType: String)] = [
        "llama": ("LlamaForCausalLM", "llama"),
        "qwen2": ("Qwen2ForCausalLM", "qwen2"),
        "qwen3": ("Qwen3ForCausalLM", "qwen3"),
        "gemma3": ("Gemma3ForCausalLM", "gemma3_text"),
        "phi3": ("Phi3ForCausalLM", "phi3"),
    ]

    /// transformers' name of a dtype (`torch_dtype` / `dtype`).
    static func torchDType(_ dtype: SafetensorsFile.DType) -> String {
        switch dtype {
        case .f16: "float16"
        case .bf16: "bfloat16"
        case .f64: "float64"
        default: "float32"
        }
    }

    /// The model's GGUF architecture, checked to be one a Hugging Face folder can be written for.
    static func architecture(of model: GGUFFile) throws(ExportError) -> String {
        let m = Metadata(model: model, arch: "")
        guard let arch = try m.string("general.architecture") else {
            throw ExportError(.invalidSource, "the model has no general.architecture: what is it?")
        }
        guard architectures[arch] != nil else {
            throw ExportError(.unsupported, "a \(arch) model cannot be written as a Hugging Face folder yet (supported: \(architectures.keys.sorted().joined(separator: ", ")))")
        }
        return arch
    }

    /// Sizes the tensor map and the config need.
    struct Shape {
        var arch: String
        var layers: Int
        var embedding: Int
        var heads: Int
        var kvHeads: Int
        var headDim: Int
        var feedForward: Int
    }

    static func shape(of model: GGUFFile) throws(ExportError) -> Shape {
        let arch = try architecture(of: model)
        let m = Metadata(model: model, arch: arch)
        let layers = try m.requiredInt("block_count"), embedding = try m.requiredInt("embedding_length")
        let heads = try m.requiredInt("attention.head_count")
        let kvHeads = try m.int("attention.head_count_kv") ?? heads
        let feedForward = try m.requiredInt("feed_forward_length")
        guard layers > 0, embedding > 0, heads > 0, kvHeads > 0, heads % kvHeads == 0, feedForward > 0 else {
            throw ExportError(.invalidSource, "invalid \(arch) sizes: \(layers) layers, hidden \(embedding), \(heads) heads, \(kvHeads) kv heads, feed-forward \(feedForward)")
        }
        let headDim = try m.int("attention.key_length") ?? embedding / heads
        if let value = try m.int("attention.value_length"), value != headDim {
            throw ExportError(.unsupported, "keys of \(headDim) and values of \(value) per head: a Hugging Face \(arch) config has one head_dim")
        }
        return Shape(arch: arch, layers: layers, embedding: embedding, heads: heads, kvHeads: kvHeads, headDim: headDim, feedForward: feedForward)
    }

    // MARK: - config.json

    /// config.json's contents for `model`, written as `dtype`.
    static func config(for model: GGUFFile, dtype: SafetensorsFile.DType) throws(ExportError) -> HFJSON {
        let s = try shape(of: model)
        let arch = s.arch
        let m = Metadata(model: model, arch: arch)
        let (hfArchitecture, modelType) = architectures[arch]!
        guard let embeddings = model.tensor(named: "token_embd.weight"), embeddings.dimensions.count == 2 else {
            throw ExportError(.invalidSource, "the model has no 2-D token_embd.weight")
        }
        var c: [(String, HFJSON)] = []
        func put(_ key: String, _ value: HFJSON) { c.removeAll { $0.0 == key }; c.append((key, value)) }

        if let name = try m.string("general.name"), !name.isEmpty { put("_name_or_path", .string(name)) }
        put("architectures", .array([.string(hfArchitecture)]))
        put("model_type", .string(modelType))
        put("hidden_size", .int(s.embedding))
        put("intermediate_size", .int(s.feedForward))
        put("num_hidden_layers", .int(s.layers))
        put("num_attention_heads", .int(s.heads))
        put("num_key_value_heads", .int(s.kvHeads))
        if ["llama", "qwen3", "gemma3"].contains(arch) || s.headDim != s.embedding / s.heads { put("head_dim", .int(s.headDim)) }
        let context = try m.int("context_length") ?? 2048
        put("max_position_embeddings", .int(context))
        // Verity runs 1e-5 when the key is missing (DecoderModel's default).
        put("rms_norm_eps", .float(try m.float("attention.layer_norm_rms_epsilon") ?? 1e-5))
        let theta = try m.float("rope.freq_base") ?? 10_000
        put("rope_theta", .float(theta))
        put("vocab_size", .int(embeddings.dimensions[1]))
        put("tie_word_embeddings", .bool(model.tensor(named: "output.weight") == nil))
        for (key, gguf) in [("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"), ("pad_token_id", "padding_token_id")] {
            put(key, try m.int("tokenizer.ggml." + gguf, global: true).map(HFJSON.int) ?? .null)
        }
        put("torch_dtype", .string(torchDType(dtype)))
        put("dtype", .string(torchDType(dtype)))
        put("use_cache", .bool(true))
        put("attention_dropout", .float(0))
        put("initializer_range", .float(0.02))

        // Rotary dimensions: all of head_dim, or a part (Phi-3's partial_rotary_factor).
        let ropeDims = try m.int("rope.dimension_count") ?? s.headDim
        if ropeDims != s.headDim {
            guard arch == "phi3", ropeDims > 0, ropeDims < s.headDim else {
                throw ExportError(.unsupported, "RoPE on \(ropeDims) of \(s.headDim) head dimensions: transformers' \(hfArchitecture) rotates all of them")
            }
            put("partial_rotary_factor", .double(partialRotaryFactor(ropeDims, of: s.headDim)))
        }
        put("rope_scaling", try ropeScaling(model, m, shape: s, theta: theta, ropeDims: ropeDims, context: context, put: put))

        let hasQBias = model.tensor(named: "blk.0.attn_q.bias") != nil
        switch arch {
        case "llama":
            put("hidden_act", .string("silu"))
            put("attention_bias", .bool(hasQBias))
            put("mlp_bias", .bool(false))
            put("pretraining_tp", .int(1))
        case "qwen2":
            put("hidden_act", .string("silu"))
            put("use_sliding_window", .bool(false))
            put("sliding_window", .null)
            put("max_window_layers", .int(s.layers))
        case "qwen3":
            put("hidden_act", .string("silu"))
            put("attention_bias", .bool(hasQBias))
            put("use_sliding_window", .bool(false))
            put("sliding_window", .null)
            put("max_window_layers", .int(s.layers))
        case "gemma3":
            put("hidden_activation", .string("gelu_pytorch_tanh"))
            put("attention_bias", .bool(false))
            put("query_pre_attn_scalar", .int(s.layers == 62 ? s.embedding / s.heads : s.headDim))
            let window = try m.int("attention.sliding_window") ?? 0
            var pattern = try m.int("attention.sliding_window_pattern") ?? 6
            if window <= 0 { pattern = 1 } // no sliding layers: every layer global
            guard pattern >= 1 else {
                throw ExportError(.unsupported, "gemma3 sliding_window_pattern \(pattern) (every layer local) has no Hugging Face config")
            }
            put("sliding_window", window > 0 ? .int(window) : .null)
            put("sliding_window_pattern", .int(pattern))
            put("layer_types", .array((0..<s.layers).map { .string($0 % pattern < pattern - 1 ? "sliding_attention" : "full_attention") }))
            put("rope_local_base_freq", .float(try m.float("rope.freq_base_swa") ?? 10_000))
            put("final_logit_softcapping", try m.float("final_logit_softcapping").map(HFJSON.float) ?? .null)
            put("attn_logit_softcapping", try m.float("attn_logit_softcapping").map(HFJSON.float) ?? .null)
        case "phi3":
            put("hidden_act", .string("silu"))
            if c.first(where: { $0.0 == "original_max_position_embeddings" }) == nil {
                put("original_max_position_embeddings", .int(context))
            }
            put("sliding_window", .null)
            put("resid_pdrop", .float(0))
            put("embd_pdrop", .float(0))
        default:
            break
        }
        return .object(c.sorted { $0.0 < $1.0 })
    }

    /// A factor f with Int(Double(headDim) · f) == dims, as HFCheckpoint and transformers compute it.
    static func partialRotaryFactor(_ dims: Int, of headDim: Int) -> Double {
        var f = Double(dims) / Double(headDim)
        while Int(Double(headDim) * f) < dims { f = f.nextUp }
        return f
    }

    /// config.json's rope_scaling (null for none); may add original_max_position_embeddings.
    static func ropeScaling(_ model: GGUFFile, _ m: Metadata, shape s: Shape, theta: Float, ropeDims: Int, context: Int,
                            put: (String, HFJSON) -> Void) throws(ExportError) -> HFJSON {
        let type = try m.string("rope.scaling.type")
        if let freqs = model.tensor(named: "rope_freqs.weight") {
            guard type == nil || type == "none" || type == "llama3" else {
                throw ExportError(.unsupported, "the model has both rope_freqs.weight and RoPE scaling '\(type!)'")
            }
            let factors = try floats(model, freqs)
            guard let p = llama3Parameters(factors, theta: theta, dims: ropeDims, context: context) else {
                throw ExportError(.unsupported, "rope_freqs.weight (\(factors.count) factors) is not Llama 3's frequency scaling for any factor, low/high_freq_factor and original context")
            }
            return .object([
                ("factor", .double(p.factor)), ("high_freq_factor", .double(p.high)), ("low_freq_factor", .double(p.low)),
                ("original_max_position_embeddings", .int(p.original)), ("rope_type", .string("llama3")),
            ])
        }
        switch type {
        case nil, "none":
            return .null
        case "linear":
            return .object([("factor", .float(try m.float("rope.scaling.factor") ?? 1)), ("rope_type", .string("linear")), ("type", .string("linear"))])
        case "longrope":
            guard let short = model.tensor(named: "rope_factors_short.weight"), let long = model.tensor(named: "rope_factors_long.weight") else {
                throw ExportError(.invalidSource, "LongRoPE scaling without rope_factors_short.weight and rope_factors_long.weight")
            }
            put("original_max_position_embeddings", .int(try m.int("rope.scaling.original_context_length") ?? context))
            return .object([
                ("long_factor", .array(try floats(model, long).map(HFJSON.float))),
                ("rope_type", .string("longrope")),
                ("short_factor", .array(try floats(model, short).map(HFJSON.float))),
                ("type", .string("longrope")),
            ])
        case "yarn":
            var fields: [(String, HFJSON)] = [("factor", .float(try m.float("rope.scaling.factor") ?? 1))]
            if let original = try m.int("rope.scaling.original_context_length") { fields.append(("original_max_position_embeddings", .int(original))) }
            fields += [("rope_type", .string("yarn")), ("type", .string("yarn"))]
            return .object(fields)
        case let other?:
            throw ExportError(.unsupported, "RoPE scaling '\(other)' cannot be written to a Hugging Face config yet (supported: linear, llama3, longrope, yarn)")
        }
    }

    /// A small F32/F16/BF16 vector tensor's values.
    static func floats(_ model: GGUFFile, _ info: GGUFTensorInfo) throws(ExportError) -> [Float] {
        let data = model.tensorData(info)
        switch info.type {
        case .f32: return (0..<info.elementCount).map { Float(bitPattern: data.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) }
        case .f16: return (0..<info.elementCount).map { Float(Float16(bitPattern: data.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
        case .bf16: return (0..<info.elementCount).map { Float(bitPattern: UInt32(data.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) << 16) }
        default: throw ExportError(.unsupported, "'\(info.name)' is \(info.type.name); expected F32 factors")
        }
    }

    struct Llama3Parameters: Equatable {
        var factor: Double
        var low: Double
        var high: Double
        var original: Int
    }

    /// convert_hf_to_gguf.py's (and HFCheckpoint's) Llama 3 frequency factors, computed exactly as
    /// HFCheckpoint+Builder computes them.
    static func llama3Factors(_ p: Llama3Parameters, theta: Float, dims: Int) -> [Float] {
        let old = Double(p.original), lowWavelength = old / p.low, highWavelength = old / p.high
        var factors: [Float] = []
        for i in stride(from: 0, to: dims, by: 2) {
            let freq = Double(1 / powf(theta, Float(i) / Float(dims)))
            let wavelength = 2 * Double.pi / freq
            if wavelength < highWavelength { factors.append(1) }
            else if wavelength > lowWavelength { factors.append(Float(p.factor)) }
            else {
                let smooth = (old / wavelength - p.low) / (p.high - p.low)
                factors.append(Float(1 / ((1 - smooth) / p.factor + smooth)))
            }
        }
        return factors
    }

    /// Llama 3 scaling parameters that give back exactly `factors` (nil if none found). The factor
    /// is the largest; with low_freq_factor 1 (every Llama 3.x), the smoothly scaled frequencies
    /// fix high_freq_factor and the original context; without any, Llama 3.1's 4 and 8192 are
    /// tried, then any original context the unscaled and fully scaled frequencies allow.
    static func llama3Parameters(_ factors: [Float], theta: Float, dims: Int, context: Int) -> Llama3Parameters? {
        guard !factors.isEmpty, factors.count == dims / 2, let top = factors.max(), top >= 1 else { return nil }
        let factor = Double(top)
        var candidates: [Llama3Parameters] = []
        let wavelengths = (0..<factors.count).map { 2 * Double.pi / Double(1 / powf(theta, Float(2 * $0) / Float(dims))) }
        // Smooth points: smooth = old/(high-low) · 1/λ − low/(high-low), linear in 1/λ.
        let smooth = factors.indices.filter { factors[$0] != 1 && factors[$0] != top }.map { i -> (x: Double, s: Double) in
            let v = Double(factors[i])
            return (1 / wavelengths[i], (1 / v - 1 / factor) / (1 - 1 / factor))
        }
        if smooth.count >= 2, let first = smooth.first, let last = smooth.last, last.x != first.x {
            let a = (last.s - first.s) / (last.x - first.x), b = a * first.x - first.s
            if b > 0 {
                let high = 1 + 1 / b, old = a / b
                for h in [(high * 1000).rounded() / 1000, high] {
                    candidates.append(Llama3Parameters(factor: factor, low: 1, high: h, original: Int(old.rounded())))
                }
            }
        }
        candidates.append(Llama3Parameters(factor: factor, low: 1, high: 4, original: 8192))
        // One smooth point, with Llama 3.1's low 1 and high 4: smooth = (old/λ − 1)/3 gives old.
        if let point = smooth.first {
            let old = (1 + 3 * point.s) / point.x
            candidates.append(Llama3Parameters(factor: factor, low: 1, high: 4, original: Int(old.rounded())))
        }
        // Without smooth points: any original context between 4× the longest unscaled wavelength
        // and the shortest scaled one (low 1, high 4).
        let ones = factors.indices.filter { factors[$0] == 1 }.map { wavelengths[$0] }
        let scaled = factors.indices.filter { factors[$0] == top }.map { wavelengths[$0] }
        let lower = (ones.max() ?? 0) * 4, upper = scaled.min() ?? Double(Int32.max)
        if lower < upper {
            var power = 1
            while Double(power) <= lower { power *= 2 }
            if Double(power) < upper { candidates.append(Llama3Parameters(factor: factor, low: 1, high: 4, original: power)) }
            candidates.append(Llama3Parameters(factor: factor, low: 1, high: 4, original: Int(((lower + upper) / 2).rounded())))
        }
        if context > 0 { candidates.append(Llama3Parameters(factor: factor, low: 1, high: 4, original: context)) }
        for c in candidates where c.original > 0 && c.high > c.low && llama3Factors(c, theta: theta, dims: dims) == factors { return c }
        // Close enough (the fitted values off in the last bits): transformers computes the same.
        for c in candidates where c.original > 0 && c.high > c.low {
            let again = llama3Factors(c, theta: theta, dims: dims)
            if zip(again, factors).allSatisfy({ abs($0 - $1) <= 1e-6 * max(1, abs($1)) }) { return c }
        }
        return nil
    }

    // MARK: - Copying a source folder's config.json

    /// A source folder's config.json, as written: `torch_dtype` / `dtype` set to the written dtype
    /// and `quantization_config` dropped (the weights are written dequantized); everything else
    /// kept as it was. Nil when the folder's config does not describe the weights written (Gemma
    /// 3's multimodal class: only the text model is written), then the config is generated.
    static func copiedConfig(_ data: [UInt8], dtype: SafetensorsFile.DType, file: String) throws(ExportError) -> HFJSON? {
        let json: HFJSON
        do { json = try HFJSON.parse(data) } catch {
            throw ExportError(.invalidSource, "\(file) is not valid JSON: \(error.message)")
        }
        guard case .object(var members) = json else { throw ExportError(.invalidSource, "\(file) is not a JSON object") }
        guard let architectures = json["architectures"]?.arrayValue, case .string(let first)? = architectures.first,
              HFCheckpoint.architectures[first] != nil, first != "Gemma3ForConditionalGeneration" else { return nil }
        members.removeAll { $0.0 == "quantization_config" }
        for key in ["torch_dtype", "dtype"] {
            if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = .string(torchDType(dtype)) }
            else { members.append((key, .string(torchDType(dtype)))) }
        }
        return .object(members)
    }

    // MARK: - generation_config.json

    /// generation_config.json from the GGUF's special tokens and `general.sampling.*` defaults (the
    /// inverse of HFTokenizer's reading: an end-of-turn token becomes a second eos_token_id).
    static func generationConfig(for model: GGUFFile) throws(ExportError) -> HFJSON {
        let m = Metadata(model: model, arch: "")
        var c: [(String, HFJSON)] = [("_from_model_config", .bool(true))]
        if let bos = try m.int("tokenizer.ggml.bos_token_id") { c.append(("bos_token_id", .int(bos))) }
        let eos = try m.int("tokenizer.ggml.eos_token_id")
        let eot = try m.int("tokenizer.ggml.eot_token_id")
        if let eos, let eot, eot != eos { c.append(("eos_token_id", .array([.int(eos), .int(eot)]))) }
        else if let id = eos ?? eot { c.append(("eos_token_id", .int(id))) }
        if let pad = try m.int("tokenizer.ggml.padding_token_id") { c.append(("pad_token_id", .int(pad))) }
        let temperature = try m.float("general.sampling.temp")
        let topP = try m.float("general.sampling.top_p"), topK = try m.int("general.sampling.top_k")
        let minP = try m.float("general.sampling.min_p"), penalty = try m.float("general.sampling.penalty_repeat")
        if temperature == 0 {
            c.append(("do_sample", .bool(false)))
        } else if temperature != nil || topP != nil || topK != nil || minP != nil {
            c.append(("do_sample", .bool(true)))
        }
        if let temperature, temperature != 0 { c.append(("temperature", .float(temperature))) }
        if let topP { c.append(("top_p", .float(topP))) }
        if let topK { c.append(("top_k", .int(topK))) }
        if let minP { c.append(("min_p", .float(minP))) }
        if let penalty { c.append(("repetition_penalty", .float(penalty))) }
        return .object(c.sorted { $0.0 < $1.0 })
    }

    // MARK: - Metadata access

    /// Typed metadata reads with errors as ExportError; keys are `arch.`-prefixed unless global.
    struct Metadata {
        let model: GGUFFile
        let arch: String

        func key(_ k: String, _ global: Bool) -> String {
            global || arch.isEmpty || k.hasPrefix("general.") || k.hasPrefix("tokenizer.") ? k : "\(arch).\(k)"
        }

        func int(_ k: String, global: Bool = false) throws(ExportError) -> Int? {
            do { return try model.optionalInt(key(k, global)) } catch { throw ExportError(.invalidSource, error.message) }
        }

        func requiredInt(_ k: String) throws(ExportError) -> Int {
            guard let v = try int(k) else { throw ExportError(.invalidSource, "the model has no \(key(k, false))") }
            return v
        }

        func float(_ k: String) throws(ExportError) -> Float? {
            do { return try model.optionalFloat(key(k, false)) } catch { throw ExportError(.invalidSource, error.message) }
        }

        func string(_ k: String) throws(ExportError) -> String? {
            do { return try model.optionalString(key(k, false)) } catch { throw ExportError(.invalidSource, error.message) }
        }
    }
}
