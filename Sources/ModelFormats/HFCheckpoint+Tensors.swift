import Foundation

extension HFCheckpoint.Builder {
    /// How a checkpoint tensor becomes a GGUF tensor.
    enum Transform {
        /// The same bytes.
        case none
        /// Llama's q_proj / k_proj: rows reordered from rotate-half to adjacent-pair RoPE
        /// (convert_hf_to_gguf.py's `permute`), for `heads` heads.
        case permuteRows(heads: Int)
        /// Gemma's RMSNorm weights: stored as 1 + w, in F32.
        case plusOne
    }

    /// The GGUF name of a checkpoint tensor and its transform; nil for tensors a text model does
    /// not use (rotary caches, a multimodal model's vision tower); throws for anything unknown,
    /// so a weight is never silently dropped.
    func ggufName(_ hfName: String) throws(GGUFError) -> (String, Transform)? {
        var name = hfName
        if name.hasSuffix("rotary_emb.inv_freq") { return nil }
        if arch == "gemma3" {
            for skipped in ["vision_tower.", "multi_modal_projector.", "model.vision_tower.", "model.multi_modal_projector."] where name.hasPrefix(skipped) {
                return nil
            }
            for prefix in ["language_model.model.", "model.language_model.", "language_model."] where name.hasPrefix(prefix) {
                name = "model." + name.dropFirst(prefix.count)
                break
            }
        }
        if name == "lm_head.weight" || name == "model.lm_head.weight" { return ("output.weight", .none) }
        guard name.hasPrefix("model.") else { throw unexpected(hfName) }
        name.removeFirst("model.".count)
        switch name {
        case "embed_tokens.weight": return ("token_embd.weight", .none)
        case "norm.weight": return ("output_norm.weight", arch == "gemma3" ? .plusOne : .none)
        default: break
        }
        let parts = name.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "layers", let layer = Int(parts[1]), layer >= 0, layer < layers else { throw unexpected(hfName) }
        let rest = String(parts[2])
        let p = "blk.\(layer)."
        let gemma = arch == "gemma3"
        let permute = arch == "llama"
        switch rest {
        case "input_layernorm.weight": return (p + "attn_norm.weight", gemma ? .plusOne : .none)
        case "post_attention_layernorm.weight": return gemma ? (p + "post_attention_norm.weight", .plusOne) : (p + "ffn_norm.weight", .none)
        case "pre_feedforward_layernorm.weight" where gemma: return (p + "ffn_norm.weight", .plusOne)
        case "post_feedforward_layernorm.weight" where gemma: return (p + "post_ffw_norm.weight", .plusOne)
        case "self_attn.q_proj.weight": return (p + "attn_q.weight", permute ? .permuteRows(heads: heads) : .none)
        case "self_attn.k_proj.weight": return (p + "attn_k.weight", permute ? .permuteRows(heads: kvHeads) : .none)
        case "self_attn.v_proj.weight": return (p + "attn_v.weight", .none)
        case "self_attn.q_proj.bias": return (p + "attn_q.bias", permute ? .permuteRows(heads: heads) : .none)
        case "self_attn.k_proj.bias": return (p + "attn_k.bias", permute ? .permuteRows(heads: kvHeads) : .none)
        case "self_attn.v_proj.bias": return (p + "attn_v.bias", .none)
        case "self_attn.o_proj.weight": return (p + "attn_output.weight", .none)
        case "self_attn.qkv_proj.weight" where arch == "phi3": return (p + "attn_qkv.weight", .none)
        case "self_attn.q_norm.weight": return (p + "attn_q_norm.weight", gemma ? .plusOne : .none)
        case "self_attn.k_norm.weight": return (p + "attn_k_norm.weight", gemma ? .plusOne : .none)
        case "mlp.gate_proj.weight": return (p + "ffn_gate.weight", .none)
        case "mlp.up_proj.weight": return (p + "ffn_up.weight", .none)
        case "mlp.down_proj.weight": return (p + "ffn_down.weight", .none)
        case "mlp.gate_up_proj.weight" where arch == "phi3": return (p + "ffn_up.weight", .none)
        default: throw unexpected(hfName)
        }
    }

    func unexpected(_ name: String) -> GGUFError {
        GGUFError(.invalidTensor, "\(directory): tensor '\(name)' has no place in a \(hfArchitecture) that Verity runs (a bias, adapter or layer it does not implement); refusing to drop it silently")
    }

    mutating func addTensors() throws(GGUFError) {
        for hfName in weights.tensors.keys.sorted() {
            guard let (file, tensor) = weights.tensors[hfName], let (name, transform) = try ggufName(hfName) else { continue }
            guard let type = tensor.dtype.ggmlType else {
                throw GGUFError(.unknownTensorType, "\(directory): tensor '\(hfName)' is \(tensor.dtype.rawValue); Verity loads F32, F16 and BF16 checkpoints")
            }
            guard (1...2).contains(tensor.shape.count), tensor.elementCount > 0 else {
                throw GGUFError(.invalidTensor, "\(directory): tensor '\(hfName)' has shape \(tensor.shape); expected a vector or a matrix")
            }
            let source = weights.files[file]
            let dimensions = Array(tensor.shape.reversed())
            switch transform {
            case .none:
                tensors.append((name, dimensions, type, source.storage, tensor.range.lowerBound))
            case .permuteRows(let n):
                let rows = tensor.shape[0], rowBytes = tensor.range.count / rows
                guard rows % n == 0, (rows / n) % 2 == 0 else {
                    throw GGUFError(.invalidTensor, "\(directory): tensor '\(hfName)' has \(rows) rows, not \(n) heads of an even size")
                }
                let headRows = rows / n, half = headRows / 2
                let src = source.data(tensor)
                let owner = MappedFile(allocating: tensor.range.count) { dst in
                    // GGUF row h·d + 2i + j holds checkpoint row h·d + j·d/2 + i.
                    for h in 0..<n {
                        for i in 0..<half {
                            for j in 0..<2 {
                                let to = (h * headRows + 2 * i + j) * rowBytes, from = (h * headRows + j * half + i) * rowBytes
                                dst.baseAddress!.advanced(by: to).copyMemory(from: src.baseAddress!.advanced(by: from), byteCount: rowBytes)
                            }
                        }
                    }
                }
                tensors.append((name, dimensions, type, owner, 0))
            case .plusOne:
                let count = tensor.elementCount
                let values = Self.floats(source.data(tensor), dtype: tensor.dtype, count: count)
                addFloatTensor(name, values.map { $0 + 1 })
            }
        }
        try checkComplete()
    }

    /// Every tensor the architecture needs is there, named as the checkpoint names it.
    func checkComplete() throws(GGUFError) {
        let have = Set(tensors.map(\.name))
        func need(_ gguf: String, _ hf: String) throws(GGUFError) {
            guard have.contains(gguf) else {
                throw GGUFError(.missingKey, "\(directory): the checkpoint has no tensor '\(hf)', which a \(hfArchitecture) needs")
            }
        }
        try need("token_embd.weight", "model.embed_tokens.weight")
        try need("output_norm.weight", "model.norm.weight")
        if !have.contains("output.weight") && !config.bool("tie_word_embeddings", default: true) {
            throw GGUFError(.missingKey, "\(directory): the checkpoint has no 'lm_head.weight' and tie_word_embeddings is false")
        }
        for i in 0..<layers {
            let p = "blk.\(i).", hp = "model.layers.\(i)."
            try need(p + "attn_norm.weight", hp + "input_layernorm.weight")
            if arch == "phi3" {
                try need(p + "attn_qkv.weight", hp + "self_attn.qkv_proj.weight")
            } else {
                try need(p + "attn_q.weight", hp + "self_attn.q_proj.weight")
                try need(p + "attn_k.weight", hp + "self_attn.k_proj.weight")
                try need(p + "attn_v.weight", hp + "self_attn.v_proj.weight")
                try need(p + "ffn_gate.weight", hp + "mlp.gate_proj.weight")
            }
            try need(p + "attn_output.weight", hp + "self_attn.o_proj.weight")
            try need(p + "ffn_up.weight", hp + (arch == "phi3" ? "mlp.gate_up_proj.weight" : "mlp.up_proj.weight"))
            try need(p + "ffn_down.weight", hp + "mlp.down_proj.weight")
            try need(p + "ffn_norm.weight", hp + (arch == "gemma3" ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"))
            if arch == "gemma3" || arch == "qwen3" {
                try need(p + "attn_q_norm.weight", hp + "self_attn.q_norm.weight")
                try need(p + "attn_k_norm.weight", hp + "self_attn.k_norm.weight")
            }
            if arch == "gemma3" {
                try need(p + "post_attention_norm.weight", hp + "post_attention_layernorm.weight")
                try need(p + "post_ffw_norm.weight", hp + "post_feedforward_layernorm.weight")
            }
            if arch == "qwen2" {
                try need(p + "attn_q.bias", hp + "self_attn.q_proj.bias")
            }
        }
    }

    /// F32, F16 or BF16 values as floats (exact).
    static func floats(_ bytes: UnsafeRawBufferPointer, dtype: SafetensorsFile.DType, count: Int) -> [Float] {
        (0..<count).map { i in
            switch dtype {
            case .f32: return Float(bitPattern: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
            case .f16: return Float(Float16(bitPattern: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            default: return Float(bitPattern: UInt32(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
            }
        }
    }
}
