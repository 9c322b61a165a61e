import Kernels
import ModelFormats

/// A LoRA adapter prepared for one model: per layer and projection, the low-rank pair the forward
/// pass adds (`W·x + scale · B·(A·x)`) for the sequences that use it, and the whole weights it
/// replaces (PEFT's `modules_to_save`: the token embedding, the output). Immutable; shared by every
/// sequence that uses it, in any batch, beside sequences with other adapters or none. Never merged
/// into the base weights, which stay shared.
public final class ModelAdapter: @unchecked Sendable {
    /// The projections of a layer an adapter can adapt.
    enum Slot: Int, CaseIterable {
        case q, k, v, qkv, o, gate, up, down
    }

    /// The adapter as read (it owns the weight memory).
    public let file: LoRAFile
    /// The user's multiplier on top of the adapter's own alpha / rank.
    public let scale: Float
    /// `[layer][slot]`.
    let layers: [[LoRAWeights?]]
    let output: LoRAWeights?
    let tokenEmbedding: QuantizedMatrix?
    let outputReplacement: QuantizedMatrix?
    /// The largest rank of any pair (the kernel's scratch per token).
    let maxRank: Int

    /// Bytes of adapter weights in memory.
    public var byteCount: Int { file.byteCount }

    /// Whether the adapter changes the output projection (a LoRA on it, or a replacement).
    var touchesOutput: Bool { output != nil || outputReplacement != nil }

    init(file: LoRAFile, scale: Float, layers: [[LoRAWeights?]], output: LoRAWeights?, tokenEmbedding: QuantizedMatrix?,
         outputReplacement: QuantizedMatrix?) {
        self.file = file
        self.scale = scale
        self.layers = layers
        self.output = output
        self.tokenEmbedding = tokenEmbedding
        self.outputReplacement = outputReplacement
        maxRank = (layers.flatMap { $0 } + [output]).compactMap { $0?.rank }.max() ?? 0
    }
}

extension DecoderModel {
    /// Prepares `file` (read for this model's GGUF) to run on this model with the user's `scale`.
    /// Throws when the adapter adapts something this model computes differently (a fused
    /// projection the adapter splits, an embedding LoRA).
    public func makeAdapter(_ file: LoRAFile, scale: Float) throws(ModelError) -> ModelAdapter {
        guard scale.isFinite else { throw ModelError(.invalidHyperparameter, "adapter scale \(scale) is not finite") }
        let hp = hyperparameters
        var perLayer = [[LoRAWeights?]](repeating: [LoRAWeights?](repeating: nil, count: ModelAdapter.Slot.allCases.count), count: hp.layers)
        var output: LoRAWeights?
        for (name, pair) in file.pairs {
            let weights = try LoRAWeights(pair, scale: pair.scale * scale, path: file.path, name: name)
            if name == "output.weight" { output = weights; continue }
            let parts = name.split(separator: ".")
            guard parts.count == 4, parts[3] == "weight", parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, layer < hp.layers else {
                throw ModelError(.invalidHyperparameter, "\(file.path): a LoRA on '\(name)' is not supported (Verity applies LoRA to attention and feed-forward projections and the output)")
            }
            let slot: ModelAdapter.Slot
            switch parts[2] {
            case "attn_q": slot = .q
            case "attn_k": slot = .k
            case "attn_v": slot = .v
            case "attn_qkv": slot = .qkv
            case "attn_output": slot = .o
            case "ffn_gate": slot = .gate
            case "ffn_up": slot = .up
            case "ffn_down": slot = .down
            default:
                throw ModelError(.invalidHyperparameter, "\(file.path): a LoRA on '\(name)' is not supported (Verity applies LoRA to attention and feed-forward projections and the output)")
            }
            let base = layers[layer]
            switch (slot, base.qkv) {
            case (.qkv, .separate):
                throw ModelError(.invalidHyperparameter, "\(file.path): the adapter adapts a fused QKV projection but this model's are separate")
            default: break
            }
            if slot == .up, base.gate == nil, weights.outFeatures != 2 * hp.feedForward {
                throw ModelError(.invalidHyperparameter, "\(file.path): the adapter adapts a separate up projection but this model fuses gate and up")
            }
            if slot == .gate, base.gate == nil {
                throw ModelError(.invalidHyperparameter, "\(file.path): the adapter adapts a separate gate projection but this model fuses gate and up")
            }
            perLayer[layer][slot.rawValue] = weights
        }
        func replacement(_ name: String) throws(ModelError) -> QuantizedMatrix? {
            guard let m = file.replacements[name] else { return nil }
            do {
                return try QuantizedMatrix(type: m.type, bytes: m.bytes, rows: m.rows, columns: m.columns)
            } catch {
                throw ModelError(.shapeMismatch, "\(file.path): '\(name)': \(error.message)")
            }
        }
        return ModelAdapter(file: file, scale: scale, layers: perLayer, output: output,
                            tokenEmbedding: try replacement("token_embd.weight"), outputReplacement: try replacement("output.weight"))
    }
}

extension LoRAWeights {
    init(_ pair: LoRAFile.Pair, scale: Float, path: String, name: String) throws(ModelError) {
        guard pair.a.type == pair.b.type else {
            throw ModelError(.unsupportedTensorType, "\(path): the LoRA pair of '\(name)' mixes \(pair.a.type.name) and \(pair.b.type.name)")
        }
        do {
            try self.init(a: pair.a.bytes.baseAddress!, b: pair.b.bytes.baseAddress!, type: pair.a.type, rank: pair.rank,
                          inFeatures: pair.a.columns, outFeatures: pair.b.rows, scale: scale)
        } catch {
            throw ModelError(.unsupportedTensorType, "\(path): '\(name)': \(error.message)")
        }
    }
}
