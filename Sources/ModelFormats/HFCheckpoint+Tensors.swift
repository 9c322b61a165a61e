import Foundation

extension HFCheckpoint.Builder {
    typealias Transform = HFTensorNames.Transform

    /// The tensor naming rules of this checkpoint's architecture.
    var names: HFTensorNames {
        HFTensorNames(directory: directory, hfArchitecture: hfArchitecture, arch: arch, layers: layers, heads: heads, kvHeads: kvHeads)
    }

    func ggufName(_ hfName: String) throws(GGUFError) -> (String, Transform)? { try names.ggufName(hfName) }

    /// Adds every tensor the architecture uses, renamed and transformed as llama.cpp's converter
    /// does; bitsandbytes 4-bit weights (when `bitsAndBytes` or their quant states say so) are
    /// dequantized first and their companion tensors consumed.
    mutating func addTensors(bitsAndBytes: BitsAndBytes.Config? = nil) throws(GGUFError) {
        let quantized = try BitsAndBytes.Weights(weights, directory: directory)
        for hfName in weights.tensors.keys.sorted() where !quantized.companions.contains(hfName) {
            guard let (file, tensor) = weights.tensors[hfName], let (name, transform) = try ggufName(hfName) else { continue }
            // The tensor's bytes: in its file, or dequantized from 4 bits into memory.
            var (owner, offset, dtype, shape) = (weights.files[file].storage, tensor.range.lowerBound, tensor.dtype, tensor.shape)
            if quantized.states[hfName] != nil {
                (owner, dtype, shape) = quantized.dequantize(hfName)
                offset = 0
            }
            guard let type = dtype.ggmlType else {
                var hint = "Verity loads F32, F16 and BF16 checkpoints and bitsandbytes 4-bit ones"
                if let bitsAndBytes, dtype == .u8 {
                    hint = "a bitsandbytes 4-bit weight needs its quant state '\(hfName)\(BitsAndBytes.quantStateInfix)\(bitsAndBytes.quantType.rawValue)', which is missing"
                }
                throw GGUFError(.unknownTensorType, "\(directory): tensor '\(hfName)' is \(dtype.rawValue); \(hint)")
            }
            let count = shape.reduce(1, *)
            guard (1...2).contains(shape.count), count > 0 else {
                throw GGUFError(.invalidTensor, "\(directory): tensor '\(hfName)' has shape \(shape); expected a vector or a matrix")
            }
            let bytes = UnsafeRawBufferPointer(rebasing: owner.buffer[offset..<offset + count * dtype.byteSize])
            let dimensions = Array(shape.reversed())
            switch transform {
            case .none:
                tensors.append((name, dimensions, type, owner, offset))
            case .permuteRows(let n):
                let rows = shape[0], rowBytes = bytes.count / rows
                guard rows % n == 0, (rows / n) % 2 == 0 else {
                    throw GGUFError(.invalidTensor, "\(directory): tensor '\(hfName)' has \(rows) rows, not \(n) heads of an even size")
                }
                let permuted = MappedFile(allocating: bytes.count) { dst in
                    HFTensorNames.permuteRows(bytes, into: dst, rows: rows, rowBytes: rowBytes, heads: n)
                }
                tensors.append((name, dimensions, type, permuted, 0))
            case .plusOne:
                addFloatTensor(name, Self.floats(bytes, dtype: dtype, count: count).map { $0 + 1 })
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
