import ModelFormats

extension Vocabulary {
    /// GGUF metadata keys read by ``init(gguf:)``; each constant is the full key string
    /// (e.g. ``model`` is `"tokenizer.ggml.model"`).
    public enum Key {
        public static let model = "tokenizer.ggml.model"
        public static let pre = "tokenizer.ggml.pre"
        public static let tokens = "tokenizer.ggml.tokens"
        public static let tokenType = "tokenizer.ggml.token_type"
        public static let scores = "tokenizer.ggml.scores"
        public static let merges = "tokenizer.ggml.merges"
        public static let bos = "tokenizer.ggml.bos_token_id"
        public static let eos = "tokenizer.ggml.eos_token_id"
        public static let eot = "tokenizer.ggml.eot_token_id"
        public static let eom = "tokenizer.ggml.eom_token_id"
        public static let unknown = "tokenizer.ggml.unknown_token_id"
        public static let separator = "tokenizer.ggml.seperator_token_id"
        public static let padding = "tokenizer.ggml.padding_token_id"
        public static let mask = "tokenizer.ggml.mask_token_id"
        public static let fimPre = "tokenizer.ggml.fim_pre_token_id"
        public static let fimSuf = "tokenizer.ggml.fim_suf_token_id"
        public static let fimMid = "tokenizer.ggml.fim_mid_token_id"
        public static let prefix = "tokenizer.ggml.prefix_token_id"
        public static let suffix = "tokenizer.ggml.suffix_token_id"
        public static let middle = "tokenizer.ggml.middle_token_id"
        public static let fimPad = "tokenizer.ggml.fim_pad_token_id"
        public static let fimRep = "tokenizer.ggml.fim_rep_token_id"
        public static let fimSep = "tokenizer.ggml.fim_sep_token_id"
        public static let addBOS = "tokenizer.ggml.add_bos_token"
        public static let addEOS = "tokenizer.ggml.add_eos_token"
        public static let addSpacePrefix = "tokenizer.ggml.add_space_prefix"
        public static let generalName = "general.name"
        /// Verity's own key: the tokenizer.json normalizer a GGUF tokenizer has no place for.
        public static let hfNormalizer = "tokenizer.hf.normalizer"
    }

    /// Reads the `tokenizer.ggml.*` metadata of a GGUF file.
    ///
    /// Throws `.missingKey` when the model or token list is absent and `.gguf` (wrapping the
    /// reader's error) when a key has the wrong type. Merges are only required later, by the
    /// BPE tokenizer.
    public init(gguf: GGUFFile) throws(TokenizerError) {
        func wrap<T>(_ body: () throws(GGUFError) -> T) throws(TokenizerError) -> T {
            do {
                return try body()
            } catch {
                throw TokenizerError(.gguf, error.message, cause: error)
            }
        }
        guard let model = try wrap({ () throws(GGUFError) in try gguf.optionalString(Key.model) }) else {
            throw TokenizerError(.missingKey, "metadata key '\(Key.model)' is missing")
        }
        guard let tokens = try wrap({ () throws(GGUFError) in try gguf.optionalStringArray(Key.tokens) }) else {
            throw TokenizerError(.missingKey, "metadata key '\(Key.tokens)' is missing")
        }
        let pre = try wrap { () throws(GGUFError) in try gguf.optionalString(Key.pre) }
        let merges = try wrap { () throws(GGUFError) in try gguf.optionalStringArray(Key.merges) } ?? []
        var types: [Int32]?
        if let raw = try wrap({ () throws(GGUFError) in try gguf.optionalIntArray(Key.tokenType) }) {
            var out: [Int32] = []
            out.reserveCapacity(raw.count)
            for v in raw {
                guard let t = Int32(exactly: v) else {
                    throw TokenizerError(.invalidVocabulary, "metadata key '\(Key.tokenType)' has value \(v) out of Int32 range")
                }
                out.append(t)
            }
            types = out
        }
        let scores = try wrap { () throws(GGUFError) in try gguf.optionalFloatArray(Key.scores) }
        func id(_ key: String) throws(TokenizerError) -> Int? {
            try wrap { () throws(GGUFError) in try gguf.optionalInt(key) }
        }
        func flag(_ key: String) throws(TokenizerError) -> Bool? {
            try wrap { () throws(GGUFError) in try gguf.optionalBool(key) }
        }
        // The deprecated keys, when present, win (llama.cpp reads them last).
        func fim(_ key: String, deprecated: String) throws(TokenizerError) -> Int? {
            if let old = try id(deprecated) { return old }
            return try id(key)
        }
        let fimPre = try fim(Key.fimPre, deprecated: Key.prefix)
        let fimSuf = try fim(Key.fimSuf, deprecated: Key.suffix)
        let fimMid = try fim(Key.fimMid, deprecated: Key.middle)
        self.init(
            model: model,
            preTokenizer: pre,
            tokens: tokens,
            tokenTypes: types,
            scores: scores,
            merges: merges,
            bosTokenID: try id(Key.bos),
            eosTokenID: try id(Key.eos),
            eotTokenID: try id(Key.eot),
            eomTokenID: try id(Key.eom),
            unknownTokenID: try id(Key.unknown),
            separatorTokenID: try id(Key.separator),
            paddingTokenID: try id(Key.padding),
            maskTokenID: try id(Key.mask),
            fimPreTokenID: fimPre,
            fimSufTokenID: fimSuf,
            fimMidTokenID: fimMid,
            fimPadTokenID: try id(Key.fimPad),
            fimRepTokenID: try id(Key.fimRep),
            fimSepTokenID: try id(Key.fimSep),
            addBOS: try flag(Key.addBOS),
            addEOS: try flag(Key.addEOS),
            addSpacePrefix: try flag(Key.addSpacePrefix),
            generalName: (try? gguf.optionalString(Key.generalName)) ?? nil
        )
        normalizeNFC = (try wrap { () throws(GGUFError) in try gguf.optionalString(Key.hfNormalizer) }) == "NFC"
    }
}
