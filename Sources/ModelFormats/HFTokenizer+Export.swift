/// The tokenizer.json split regexes that ``HFTokenizer`` recognizes when it reads a Hugging Face
/// tokenizer, by the `tokenizer.ggml.pre` name each becomes, for the Export module, which writes a
/// tokenizer.json from GGUF metadata: writing the same pattern back means a folder Verity exported
/// reads back in as the pre-tokenizer it came from.
public enum HFTokenizerSplitPatterns {
    /// The split regex of a `tokenizer.ggml.pre` name (`"llama-bpe"`, `"qwen2"`), as tokenizer.json
    /// spells it; `nil` for a name ``HFTokenizer`` does not read from a split regex.
    public static func pattern(pre name: String) -> String? {
        HFTokenizer.splitPatterns.first { $0.value == name }?.key
    }
}
