import Foundation

/// How llama.cpp's `convert_hf_to_gguf.py` names and transforms a Hugging Face checkpoint's
/// tensors, for one architecture: used to assemble a checkpoint as GGUF, and to map a PEFT
/// adapter's modules onto the same tensors (a LoRA's B rows get the same Q/K permutation).
public struct HFTensorNames: Sendable {
    public let directory: String
    public let hfArchitecture: String
    public let arch: String
    public let layers: Int
    public let heads: Int
    public let kvHeads: Int

    public init(directory: String, hfArchitecture: String, arch: String, layers: Int, heads: Int, kvHeads: Int) {
        self.directory = directory
        self.hfArchitecture = hfArchitecture
        self.arch = arch
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads
    }

    /// How a checkpoint tensor becomes a GGUF tensor.
    public enum Transform {
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
    public func ggufName(_ hfName: String) throws(GGUFError) -> (String, Transform)? {
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

    /// Copies `rows` rows of `rowBytes` bytes from `src` to `dst`, reordering each of `heads`
    /// heads' rows from rotate-half to adjacent-pair RoPE: row h·d + 2i + j of `dst` is row
    /// h·d + j·d/2 + i of `src`.
    public static func permuteRows(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, rows: Int, rowBytes: Int, heads n: Int) {
        let headRows = rows / n, half = headRows / 2
        for h in 0..<n {
            for i in 0..<half {
                for j in 0..<2 {
                    let to = (h * headRows + 2 * i + j) * rowBytes, from = (h * headRows + j * half + i) * rowBytes
                    dst.baseAddress!.advanced(by: to).copyMemory(from: src.baseAddress!.advanced(by: from), byteCount: rowBytes)
                }
            }
        }
    }
}
