import ModelFormats

/// Qwen 2 / 2.5: Q/K/V biases (found by tensor), half-split RoPE, untied output.
enum Qwen2 {
    static func load(_ file: GGUFFile) throws(ModelError) -> any LanguageModel {
        try DecoderModel.load(file: file, options: DecoderOptions(architecture: "qwen2"), ropeStyle: .halves)
    }
}
