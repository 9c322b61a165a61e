import ModelFormats

/// Maps `general.architecture` to the type that loads it. A new architecture is one file plus one
/// line here.
public enum ModelRegistry {
    public typealias Loader = @Sendable (GGUFFile) throws(ModelError) -> any LanguageModel

    public static let loaders: [String: Loader] = [
        "llama": Llama.load,
        "qwen2": Qwen2.load,
        "qwen3": Qwen3.load,
        "phi3": Phi3.load,
        "gemma3": Gemma3.load,
    ]

    /// Architecture names Verity can run.
    public static var supportedArchitectures: [String] { loaders.keys.sorted() }

    /// Loads the model in `file`, or throws naming the architecture and listing the supported ones.
    /// `attention` picks the KV cache's precision (`.f16`, llama.cpp's, by default).
    public static func load(_ file: GGUFFile, attention: AttentionPrecision) throws(ModelError) -> any LanguageModel {
        let model = try load(file)
        guard attention != .f16, let decoder = model as? DecoderModel else { return model }
        return decoder.withAttentionPrecision(attention)
    }

    /// Loads the model in `file`, or throws naming the architecture and listing the supported ones.
    public static func load(_ file: GGUFFile) throws(ModelError) -> any LanguageModel {
        let architecture: String
        do { architecture = try file.string("general.architecture") } catch { throw .format(error) }
        guard let loader = loaders[architecture] else {
            throw ModelError(.unsupportedArchitecture,
                             "unsupported architecture '\(architecture)' (supported: \(supportedArchitectures.joined(separator: ", ")))")
        }
        return try loader(file)
    }
}
