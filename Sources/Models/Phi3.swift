import ModelFormats

/// Phi-3 / Phi-3.5: fused QKV and fused gate+up projections (found by tensor), half-split RoPE,
/// LongRoPE short factors for the trained context, queries pre-scaled by 1/√head_dim.
enum Phi3 {
    static func load(_ file: GGUFFile) throws(ModelError) -> any LanguageModel {
        let w = WeightLoader(file: file, architecture: "phi3")
        let embd = try w.int("embedding_length")
        let heads = try w.int("attention.head_count")
        let keyDim = try w.int("attention.key_length", default: embd / max(1, heads))
        var options = DecoderOptions(architecture: "phi3")
        options.queryScale = 1 / Float(keyDim).squareRoot()
        return try DecoderModel.load(file: file, options: options, ropeStyle: .halves)
    }
}
