import ModelFormats

/// Llama 1/2/3, SmolLM, Mistral 7B and other `llama`-architecture files: RMSNorm, adjacent-pair
/// RoPE (with Llama 3's frequency factors when the file has them), SwiGLU.
enum Llama {
    static func load(_ file: GGUFFile) throws(ModelError) -> any LanguageModel {
        try DecoderModel.load(file: file, options: DecoderOptions(architecture: "llama"), ropeStyle: .adjacent)
    }
}
