import ModelFormats

/// Qwen 3 (dense): per-head RMSNorm on queries and keys before RoPE, half-split RoPE.
enum Qwen3 {
    static func load(_ file: GGUFFile) throws(ModelError) -> any LanguageModel {
        try DecoderModel.load(file: file, options: DecoderOptions(architecture: "qwen3"), ropeStyle: .halves)
    }
}
