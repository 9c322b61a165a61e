import Foundation
import ModelFormats

/// Gemma 3 (text): embeddings scaled by √d, per-head QK norms, GeGLU, post-attention and post-FFN
/// norms, queries pre-scaled by 1/√head_dim, and sliding-window layers interleaved with global
/// ones (every `sliding_window_pattern`-th layer global, 6 by default) with their own RoPE base.
enum Gemma3 {
    static func load(_ file: GGUFFile) throws(ModelError) -> any LanguageModel {
        let arch = "gemma3"
        let w = WeightLoader(file: file, architecture: arch)
        var options = DecoderOptions(architecture: arch)
        options.feedForward = .geglu
        let embd = try w.int("embedding_length")
        let heads = try w.int("attention.head_count")
        let layers = try w.int("block_count")
        let keyDim = try w.int("attention.key_length", default: embd / max(1, heads))
        options.embeddingScale = Float(embd).squareRoot()
        // Gemma 3 27B scales by the model width per head, the others by the head size.
        options.queryScale = layers == 62 ? 1 / Float(embd / max(1, heads)).squareRoot() : 1 / Float(keyDim).squareRoot()
        let window = try w.int("attention.sliding_window", default: 0)
        if window > 0 {
            options.slidingWindow = window
            let pattern = try w.int("attention.sliding_window_pattern", default: 6)
            options.isSlidingLayer = (0..<layers).map { pattern == 0 || $0 % pattern < pattern - 1 }
            options.slidingRopeBase = try w.float("rope.freq_base_swa", default: 10_000)
        }
        let softcap = try w.float("final_logit_softcapping", default: 0)
        if softcap > 0 { options.finalLogitSoftcap = softcap }
        return try DecoderModel.load(file: file, options: options, ropeStyle: .halves)
    }
}
