/// The `tokenizer.ggml.pre` names this module understands, mirroring llama.cpp's
/// `llama_vocab::impl::load` (name → pre-tokenizer type and flags) and `llm_tokenizer_bpe`
/// (pre-tokenizer type → regex list).
extension PreTokenizer {
    private enum Family {
        case gpt2, llama3, qwen2, qwen35, starcoder, falcon, deepseekLLM, deepseekCoder, defaultRegex
    }

    private struct Entry {
        var family: Family
        var cleanSpaces = true
        var ignoreMerges = false
        var addBOS = false
        var disablesBOS = false
    }

    private static let catalog: [String: Entry] = {
        var c: [String: Entry] = [:]
        c["default"] = Entry(family: .defaultRegex)
        for n in ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"] {
            c[n] = Entry(family: .llama3, ignoreMerges: true, addBOS: true)
        }
        c["dbrx"] = Entry(family: .llama3)
        c["smaug-bpe"] = Entry(family: .llama3)
        c["chatglm-bpe"] = Entry(family: .llama3, disablesBOS: true)
        c["glm4"] = Entry(family: .llama3, ignoreMerges: true, disablesBOS: true)
        c["glm5"] = Entry(family: .llama3, ignoreMerges: true, disablesBOS: true)
        c["deepseek-llm"] = Entry(family: .deepseekLLM, cleanSpaces: false)
        c["deepseek-coder"] = Entry(family: .deepseekCoder, cleanSpaces: false)
        c["falcon"] = Entry(family: .falcon)
        for n in ["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
                  "mellum", "modern-bert", "exaone4", "mpt", "olmo", "jais"] {
            c[n] = Entry(family: .gpt2)
        }
        c["trillion"] = Entry(family: .gpt2, cleanSpaces: false)
        c["granite-docling"] = Entry(family: .gpt2, cleanSpaces: false)
        for n in ["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"] {
            c[n] = Entry(family: .starcoder)
        }
        c["command-r"] = Entry(family: .starcoder, cleanSpaces: false)
        c["smollm"] = Entry(family: .starcoder, cleanSpaces: false)
        for n in ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "grok-2"] {
            c[n] = Entry(family: .qwen2, cleanSpaces: false)
        }
        c["megrez"] = Entry(family: .qwen2)
        c["stablelm2"] = Entry(family: .qwen2)
        c["hunyuan"] = Entry(family: .qwen2, cleanSpaces: false)
        c["solar-open"] = Entry(family: .qwen2, cleanSpaces: false)
        c["qwen35"] = Entry(family: .qwen35, cleanSpaces: false)
        return c
    }()

    /// Every supported `tokenizer.ggml.pre` value, sorted.
    static var supportedNames: [String] { catalog.keys.sorted() }

    /// The pre-tokenizer for a `tokenizer.ggml.pre` value (`nil` → `"default"`, as in llama.cpp).
    /// Throws `.unknownPreTokenizer` naming the value and the supported list otherwise.
    static func named(_ name: String?) throws(TokenizerError) -> PreTokenizer {
        let key = (name?.isEmpty ?? true) ? "default" : (name ?? "default")
        guard let e = catalog[key] else {
            throw TokenizerError(
                .unknownPreTokenizer,
                "unknown pre-tokenizer type '\(key)' (tokenizer.ggml.pre); supported: \(supportedNames.joined(separator: ", "))")
        }
        return PreTokenizer(
            name: key, rules: rules(for: e.family), ignoreMerges: e.ignoreMerges,
            cleanSpaces: e.cleanSpaces, defaultAddBOS: e.addBOS, disablesBOS: e.disablesBOS)
    }

    private static func rules(for family: Family) -> [SplitRule] {
        let lineBreak = CharClass.ranges([0x0A...0x0A, 0x0D...0x0D])
        let cjk = CharClass.ranges([0x4E00...0x9FA5, 0x0800...0x4E00, 0xAC00...0xD7FF])
        switch family {
        case .gpt2:
            return [.gpt2]
        case .llama3:
            return [.llama3(maxDigits: 3, marksAsLetters: false)]
        case .qwen2:
            return [.llama3(maxDigits: 1, marksAsLetters: false)]
        case .qwen35:
            return [.llama3(maxDigits: 1, marksAsLetters: true)]
        case .starcoder:
            return [.pattern(.single(.number)), .gpt2]
        case .falcon:
            return [.pattern(.run(.punctuationOr(ascii: Array("$+<=>^~|`".utf8)))), .gpt2, .pattern(.asciiDigitTriple)]
        case .defaultRegex:
            return [.pattern(.run(.punctuationOr(ascii: Array("$+<=>^~|".utf8)))), .gpt2,
                    .pattern(.run(.number)), .pattern(.asciiDigitTriple)]
        case .deepseekLLM:
            return [.pattern(.single(lineBreak)),
                    .pattern(.optionalSpaceThenRun(.ranges(PreTokenizerCharacterClasses.deepseekLetters))),
                    .pattern(.optionalSpaceThenRun(.ranges(PreTokenizerCharacterClasses.deepseekPunctuation))),
                    .pattern(.trailingWhitespace),
                    .pattern(.run(cjk)),
                    .pattern(.run(.number))]
        case .deepseekCoder:
            return [.pattern(.single(lineBreak)),
                    .pattern(.optionalSpaceThenRun(.letter)),
                    .pattern(.optionalSpaceThenRun(.punctuation)),
                    .pattern(.run(cjk)),
                    .pattern(.single(.number))]
        }
    }
}

/// Character classes of pre-tokenizer regexes that are written out range by range: the DeepSeek
/// pre-tokenizers here, and the Export module, which writes them back into a tokenizer.json.
public enum PreTokenizerCharacterClasses {
    /// `[!-/:-~！-／：-～‘-‟　-。]` from deepseek-llm's third regex.
    public static let deepseekPunctuation: [ClosedRange<UInt32>] = [
        0x21...0x2F, 0x3A...0x7E, 0xFF01...0xFF0F, 0xFF1A...0xFF5E, 0x2018...0x201F, 0x3000...0x3002,
    ]

    /// The letter class of deepseek-llm's second regex (`[A-Za-zµÀ-ÖØ-ö…𞤀-𞥃]`), range by range.
    public static let deepseekLetters: [ClosedRange<UInt32>] = [
        0x41...0x5A, 0x61...0x7A, 0xB5...0xB5, 0xC0...0xD6, 0xD8...0xF6, 0xF8...0x1BA, 0x1BC...0x1BF,
        0x1C4...0x293, 0x295...0x2AF, 0x370...0x373, 0x376...0x377, 0x37B...0x37D, 0x37F...0x37F,
        0x386...0x386, 0x388...0x38A, 0x38C...0x38C, 0x38E...0x3A1, 0x3A3...0x3F5, 0x3F7...0x481,
        0x48A...0x52F, 0x531...0x556, 0x10A0...0x10C5, 0x13A0...0x13F5, 0x13F8...0x13FD, 0x1C90...0x1CBA,
        0x1CBD...0x1CBF, 0x1D00...0x1D2B, 0x1D6B...0x1D77, 0x1D79...0x1D9A, 0x1E00...0x1F15, 0x1F18...0x1F1D,
        0x1F20...0x1F45, 0x1F48...0x1F4D, 0x1F50...0x1F57, 0x1F59...0x1F59, 0x1F5B...0x1F5B, 0x1F5D...0x1F5D,
        0x1F5F...0x1F7D, 0x1F80...0x1FB4, 0x1FB6...0x1FBC, 0x1FBE...0x1FBE, 0x1FC2...0x1FC4, 0x1FC6...0x1FCC,
        0x1FD0...0x1FD3, 0x1FD6...0x1FDB, 0x1FE0...0x1FEC, 0x1FF2...0x1FF4, 0x1FF6...0x1FFC, 0x2102...0x2102,
        0x2107...0x2107, 0x210A...0x2113, 0x2115...0x2115, 0x2119...0x211D, 0x2124...0x2124, 0x2126...0x2126,
        0x2128...0x2128, 0x212A...0x212D, 0x212F...0x2134, 0x2139...0x2139, 0x213C...0x213F, 0x2145...0x2149,
        0x214E...0x214E, 0x2183...0x2184, 0x2C00...0x2C7B, 0x2C7E...0x2CE4, 0x2CEB...0x2CEE, 0x2CF2...0x2CF3,
        0xA640...0xA66D, 0xA680...0xA69B, 0xA722...0xA76F, 0xA771...0xA787, 0xA78B...0xA78E, 0xAB70...0xABBF,
        0xFB00...0xFB06, 0xFB13...0xFB17, 0xFF21...0xFF3A, 0xFF41...0xFF5A, 0x10400...0x1044F,
        0x104B0...0x104D3, 0x104D8...0x104FB, 0x10C80...0x10CB2, 0x10CC0...0x10CF2, 0x118A0...0x118DF,
        0x1E900...0x1E943,
    ]
}
