import Foundation
import Kernels
import ModelFormats

extension DecoderModel {
    /// Reads hyperparameters from `ARCH.*` metadata and the standard llama.cpp tensor names,
    /// detecting the optional pieces (biases, QK norms, post norms, fused projections) by presence.
    static func load(file: GGUFFile, options: DecoderOptions, ropeStyle: RoPE.Style) throws(ModelError) -> DecoderModel {
        let w = WeightLoader(file: file, architecture: options.architecture)
        let layerCount = try w.int("block_count")
        let embd = try w.int("embedding_length")
        let ff = try w.int("feed_forward_length")
        let heads = try w.int("attention.head_count")
        let kvHeads = try w.int("attention.head_count_kv", default: heads)
        guard layerCount > 0, embd > 0, ff > 0, heads > 0, kvHeads > 0, heads % kvHeads == 0 else {
            throw ModelError(.invalidHyperparameter,
                             "invalid \(options.architecture) hyperparameters: layers \(layerCount), embedding \(embd), feed-forward \(ff), heads \(heads), kv heads \(kvHeads)")
        }
        let keyDim = try w.int("attention.key_length", default: embd / heads)
        let valueDim = try w.int("attention.value_length", default: keyDim)
        let ropeDims = try w.int("rope.dimension_count", default: keyDim)
        guard keyDim > 0, valueDim > 0, ropeDims > 0, ropeDims <= keyDim, ropeDims % 2 == 0 else {
            throw ModelError(.invalidHyperparameter, "invalid head sizes: key \(keyDim), value \(valueDim), rope dims \(ropeDims)")
        }
        var freqScale: Float = 1
        switch try w.optionalString("rope.scaling.type") {
        case nil, "none": break
        case "linear":
            let factor = try w.float("rope.scaling.factor", default: 1)
            guard factor > 0 else { throw ModelError(.invalidHyperparameter, "invalid rope.scaling.factor \(factor)") }
            freqScale = 1 / factor
        case "longrope" where w.has("rope_factors_short.weight"):
            break // factors below
        case let other?:
            throw ModelError(.invalidHyperparameter, "RoPE scaling '\(other)' is not supported yet (supported: none, linear, longrope)")
        }
        let ropeBase = try w.float("rope.freq_base", default: 10_000)
        let magnitude = try w.float("rope.scaling.attn_factor", default: 1)
        let rmsEps = try w.float("attention.layer_norm_rms_epsilon", default: 1e-5)
        var contextLength = try w.int("context_length", default: 2048)
        if contextLength <= 0 { contextLength = 2048 }

        guard let embdInfo = file.tensor(named: "token_embd.weight"), embdInfo.dimensions.count == 2 else {
            throw ModelError(.missingTensor, "model file has no 2-D tensor 'token_embd.weight'")
        }
        let vocab = embdInfo.dimensions[1]
        let hp = Hyperparameters(layers: layerCount, embedding: embd, feedForward: ff, heads: heads, kvHeads: kvHeads,
                                 keyDim: keyDim, valueDim: valueDim, ropeDims: ropeDims, rmsEps: rmsEps,
                                 contextLength: contextLength, vocabulary: vocab)

        // Frequency factors: Llama 3 (rope_freqs) or LongRoPE's short factors (the trained context).
        var factors: [Float]?
        if w.has("rope_freqs.weight") {
            factors = try w.vector("rope_freqs.weight", count: ropeDims / 2)
        } else if w.has("rope_factors_short.weight") {
            factors = try w.vector("rope_factors_short.weight", count: ropeDims / 2)
        }
        var globalRope = RoPE(style: ropeStyle, dimensions: ropeDims, base: ropeBase, freqScale: freqScale, freqFactors: factors)
        globalRope.magnitude = magnitude
        var slidingRope = globalRope
        if let base = options.slidingRopeBase { slidingRope = RoPE(style: ropeStyle, dimensions: ropeDims, base: base,
                                                                  freqScale: options.slidingRopeScale ?? freqScale, freqFactors: factors) }

        let qDim = heads * keyDim, kDim = kvHeads * keyDim, vDim = kvHeads * valueDim
        var layers: [Layer] = []
        layers.reserveCapacity(layerCount)
        for i in 0..<layerCount {
            let p = "blk.\(i)."
            func optionalVector(_ name: String, _ count: Int) throws(ModelError) -> [Float]? {
                w.has(p + name) ? try w.vector(p + name, count: count) : nil
            }
            let qkv: Projection
            if w.has(p + "attn_qkv.weight") {
                qkv = .fused(try w.matrix(p + "attn_qkv.weight", columns: embd, rows: qDim + kDim + vDim))
            } else {
                qkv = .separate(try w.matrix(p + "attn_q.weight", columns: embd, rows: qDim),
                                try w.matrix(p + "attn_k.weight", columns: embd, rows: kDim),
                                try w.matrix(p + "attn_v.weight", columns: embd, rows: vDim))
            }
            let fusedFFN = !w.has(p + "ffn_gate.weight")
            let sliding = options.slidingWindow != nil && i < options.isSlidingLayer.count && options.isSlidingLayer[i]
            layers.append(Layer(
                attnNorm: try w.vector(p + "attn_norm.weight", count: embd),
                qkv: qkv,
                qBias: try optionalVector("attn_q.bias", qDim),
                kBias: try optionalVector("attn_k.bias", kDim),
                vBias: try optionalVector("attn_v.bias", vDim),
                qNorm: try optionalVector("attn_q_norm.weight", keyDim),
                kNorm: try optionalVector("attn_k_norm.weight", keyDim),
                wo: try w.matrix(p + "attn_output.weight", columns: heads * valueDim, rows: embd),
                postAttnNorm: try optionalVector("post_attention_norm.weight", embd),
                ffnNorm: try w.vector(p + "ffn_norm.weight", count: embd),
                gate: fusedFFN ? nil : try w.matrix(p + "ffn_gate.weight", columns: embd, rows: ff),
                up: try w.matrix(p + "ffn_up.weight", columns: embd, rows: fusedFFN ? 2 * ff : ff),
                down: try w.matrix(p + "ffn_down.weight", columns: ff, rows: embd),
                postFFNNorm: try optionalVector("post_ffw_norm.weight", embd),
                window: sliding ? options.slidingWindow : nil,
                rope: sliding ? slidingRope : globalRope))
        }
        let tokenEmbedding = try w.matrix("token_embd.weight", columns: embd, rows: vocab)
        let output = w.has("output.weight") ? try w.matrix("output.weight", columns: embd, rows: vocab) : tokenEmbedding
        return DecoderModel(file: file, hyperparameters: hp, options: options, tokenEmbedding: tokenEmbedding,
                            layers: layers, outputNorm: try w.vector("output_norm.weight", count: embd), output: output)
    }
}
