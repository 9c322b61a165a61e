import Foundation

/// The inverse of ``HFTensorNames/ggufName(_:)``: how a GGUF tensor goes back to the Hugging Face
/// checkpoint tensor it was made from (used by `verity export --to safetensors`). Every name the
/// forward map produces comes back to the name it came from (for Gemma 3's multimodal class, to
/// the text model's `model.` names), and every transform is undone.
extension HFTensorNames {
    /// How a GGUF tensor becomes a checkpoint tensor: the inverse of ``Transform``.
    public enum InverseTransform: Sendable, Equatable {
        /// The same values.
        case none
        /// Llama's q_proj / k_proj: rows reordered back from adjacent-pair to rotate-half RoPE
        /// (``unpermuteRows(_:into:rows:rowBytes:heads:)``), for `heads` heads.
        case unpermuteRows(heads: Int)
        /// Gemma's RMSNorm weights: stored as 1 + w, so w = g − 1, in F32.
        case minusOne
    }

    /// The GGUF tensors the forward map computes from config.json rather than reads from a weight
    /// (Llama 3's RoPE frequency factors, LongRoPE's factors): they go back into config.json.
    public static let configTensors: Set<String> = ["rope_freqs.weight", "rope_factors_short.weight", "rope_factors_long.weight"]

    /// The checkpoint name of a GGUF tensor and the transform that undoes ``ggufName(_:)``'s; nil
    /// for ``configTensors``; throws for a tensor the forward map never produces for this
    /// architecture, so a weight is never silently dropped.
    public func hfName(_ ggufName: String) throws(GGUFError) -> (String, InverseTransform)? {
        if Self.configTensors.contains(ggufName) { return nil }
        let gemma = arch == "gemma3", permute = arch == "llama", phi3 = arch == "phi3"
        switch ggufName {
        case "token_embd.weight": return ("model.embed_tokens.weight", .none)
        case "output_norm.weight": return ("model.norm.weight", gemma ? .minusOne : .none)
        case "output.weight": return ("lm_head.weight", .none)
        default: break
        }
        let parts = ggufName.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, layer < layers,
              String(layer) == parts[1] else { throw noCheckpointName(ggufName) }
        let p = "model.layers.\(layer)."
        switch String(parts[2]) {
        case "attn_norm.weight": return (p + "input_layernorm.weight", gemma ? .minusOne : .none)
        case "ffn_norm.weight": return gemma ? (p + "pre_feedforward_layernorm.weight", .minusOne) : (p + "post_attention_layernorm.weight", .none)
        case "post_attention_norm.weight" where gemma: return (p + "post_attention_layernorm.weight", .minusOne)
        case "post_ffw_norm.weight" where gemma: return (p + "post_feedforward_layernorm.weight", .minusOne)
        case "attn_q.weight" where !phi3: return (p + "self_attn.q_proj.weight", permute ? .unpermuteRows(heads: heads) : .none)
        case "attn_k.weight" where !phi3: return (p + "self_attn.k_proj.weight", permute ? .unpermuteRows(heads: kvHeads) : .none)
        case "attn_v.weight" where !phi3: return (p + "self_attn.v_proj.weight", .none)
        case "attn_q.bias" where !phi3: return (p + "self_attn.q_proj.bias", permute ? .unpermuteRows(heads: heads) : .none)
        case "attn_k.bias" where !phi3: return (p + "self_attn.k_proj.bias", permute ? .unpermuteRows(heads: kvHeads) : .none)
        case "attn_v.bias" where !phi3: return (p + "self_attn.v_proj.bias", .none)
        case "attn_output.weight": return (p + "self_attn.o_proj.weight", .none)
        case "attn_qkv.weight" where phi3: return (p + "self_attn.qkv_proj.weight", .none)
        case "attn_q_norm.weight": return (p + "self_attn.q_norm.weight", gemma ? .minusOne : .none)
        case "attn_k_norm.weight": return (p + "self_attn.k_norm.weight", gemma ? .minusOne : .none)
        case "ffn_gate.weight" where !phi3: return (p + "mlp.gate_proj.weight", .none)
        // Phi-3 keeps gate and up fused in one matrix, [gate; up], as its checkpoints do.
        case "ffn_up.weight": return (p + (phi3 ? "mlp.gate_up_proj.weight" : "mlp.up_proj.weight"), .none)
        case "ffn_down.weight": return (p + "mlp.down_proj.weight", .none)
        default: throw noCheckpointName(ggufName)
        }
    }

    func noCheckpointName(_ name: String) -> GGUFError {
        GGUFError(.invalidTensor, "tensor '\(name)' has no place in a Hugging Face \(hfArchitecture) checkpoint (a \(arch) model of \(layers) layers); refusing to drop it silently")
    }

    /// The inverse of ``permuteRows(_:into:rows:rowBytes:heads:)``: copies `rows` rows of
    /// `rowBytes` bytes from `src` to `dst`, reordering each of `heads` heads' rows from
    /// adjacent-pair back to rotate-half RoPE: row h·d + j·d/2 + i of `dst` is row h·d + 2i + j
    /// of `src`.
    public static func unpermuteRows(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, rows: Int, rowBytes: Int, heads n: Int) {
        let headRows = rows / n, half = headRows / 2
        for h in 0..<n {
            for i in 0..<half {
                for j in 0..<2 {
                    let to = (h * headRows + j * half + i) * rowBytes, from = (h * headRows + 2 * i + j) * rowBytes
                    dst.baseAddress!.advanced(by: to).copyMemory(from: src.baseAddress!.advanced(by: from), byteCount: rowBytes)
                }
            }
        }
    }
}
