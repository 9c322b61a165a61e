/// Special token ids, per-token attributes and the end-of-generation set, resolved from a
/// ``Vocabulary`` the way llama.cpp's `llama_vocab::impl::load` does: model defaults, explicit
/// ids (out-of-range ids are ignored with a warning), text-based detection of EOT/FIM tokens
/// (which also marks them as control tokens) and the EOG list.
struct SpecialTokens: Sendable {
    var attributes: [TokenAttributes]
    var bos: Int32?
    var eos: Int32?
    var eot: Int32?
    var eom: Int32?
    var unknown: Int32?
    var separator: Int32?
    var padding: Int32?
    var mask: Int32?
    var endOfGeneration: Set<Int32>
    var warnings: [String]

    static let eotTexts = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
        "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
    ]
    static let eomTexts = ["<|eom_id|>"]
    static let fimPreTexts = ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"]
    static let fimSufTexts = ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"]
    static let fimMidTexts = ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"]
    static let fimPadTexts = ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]
    static let fimRepTexts = ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]
    static let fimSepTexts = ["<|file_sep|>"]
    static let forcedUserDefined = ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]
    static let eogTexts: Set<String> = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
        "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
        "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
        "<｜end▁of▁sentence｜>", "[e~[",
    ]

    /// Resolves the specials of `vocabulary`, whose token texts are `tokens` (empty texts already
    /// replaced). `defaultBOS`/`defaultEOS`/`defaultUnknown` are the model family's defaults.
    init(vocabulary v: Vocabulary, tokens: [String], defaultBOS: Int32?, defaultEOS: Int32?, defaultUnknown: Int32? = nil) {
        let n = tokens.count
        var warnings: [String] = []
        let types = v.tokenTypes
        var attributes: [TokenAttributes] = (0..<n).map { i in
            guard let types else { return .normal }
            return TokenAttributes(tokenType: i < types.count ? types[i] : Vocabulary.TokenType.undefined.rawValue)
        }
        func resolve(_ name: String, _ explicit: Int?, _ fallback: Int32?) -> Int32? {
            var value = fallback
            if let f = fallback, f < 0 || Int(f) >= n {
                warnings.append("default \(name) id \(f) is out of vocabulary range; disabled")
                value = nil
            }
            guard let explicit else { return value }
            guard explicit >= 0 && explicit < n else {
                warnings.append("bad \(name) id \(explicit) (vocabulary has \(n) tokens); using \(value.map(String.init) ?? "none")")
                return value
            }
            return Int32(explicit)
        }
        bos = resolve("bos", v.bosTokenID, defaultBOS)
        eos = resolve("eos", v.eosTokenID, defaultEOS)
        eot = resolve("eot", v.eotTokenID, nil)
        eom = resolve("eom", v.eomTokenID, nil)
        unknown = resolve("unknown", v.unknownTokenID, defaultUnknown)
        separator = resolve("separator", v.separatorTokenID, nil)
        padding = resolve("padding", v.paddingTokenID, nil)
        mask = resolve("mask", v.maskTokenID, nil)
        var fimPre = resolve("fim_pre", v.fimPreTokenID, nil)
        var fimSuf = resolve("fim_suf", v.fimSufTokenID, nil)
        var fimMid = resolve("fim_mid", v.fimMidTokenID, nil)
        var fimPad = resolve("fim_pad", v.fimPadTokenID, nil)
        var fimRep = resolve("fim_rep", v.fimRepTokenID, nil)
        var fimSep = resolve("fim_sep", v.fimSepTokenID, nil)

        // Text-based detection; a detected token becomes a control token. Every text looked for
        // starts with one of a few bytes, which keeps this pass cheap on large vocabularies.
        let wanted = Set((Self.eotTexts + Self.eomTexts + Self.fimPreTexts + Self.fimSufTexts + Self.fimMidTexts
            + Self.fimPadTexts + Self.fimRepTexts + Self.fimSepTexts + Array(Self.eogTexts) + Self.forcedUserDefined)
            .map { ByteString($0) })
        let firstBytes = Set(wanted.compactMap { $0.bytes.first })
        var firstByText: [ByteString: Int32] = [:]
        var candidates: [(Int, ByteString)] = []
        for (i, t) in tokens.enumerated() {
            guard let b = t.utf8.first, firstBytes.contains(b) else { continue }
            let key = ByteString(t)
            if wanted.contains(key) {
                candidates.append((i, key))
                if firstByText[key] == nil { firstByText[key] = Int32(i) }
            }
        }
        func detect(_ slot: inout Int32?, _ texts: [String]) {
            guard slot == nil else { return }
            for t in texts {
                if let id = firstByText[ByteString(t)] {
                    slot = id
                    attributes[Int(id)].insert(.control)
                    return
                }
            }
        }
        detect(&eot, Self.eotTexts)
        detect(&eom, Self.eomTexts)
        detect(&fimPre, Self.fimPreTexts)
        detect(&fimSuf, Self.fimSufTexts)
        detect(&fimMid, Self.fimMidTexts)
        detect(&fimPad, Self.fimPadTexts)
        detect(&fimRep, Self.fimRepTexts)
        detect(&fimSep, Self.fimSepTexts)

        var eog = Set([fimPad, fimRep, fimSep].compactMap { $0 })
        let eogKeys = Set(Self.eogTexts.map { ByteString($0) })
        let userKeys = Set(Self.forcedUserDefined.map { ByteString($0) })
        for (i, key) in candidates {
            if eogKeys.contains(key) {
                eog.insert(Int32(i))
                attributes[i].insert(.control)
            }
        }
        // gpt-oss: always render these.
        for (i, key) in candidates where userKeys.contains(key) {
            attributes[i] = .userDefined
        }
        for id in [eos, eot, eom].compactMap({ $0 }) {
            eog.insert(id)
        }
        // gpt-oss / solar-open: "<|end|>" is not end-of-generation when "<|return|>"+"<|call|>"
        // (or "<|calls|>"+"<|flush|>") exist.
        let eogTextsPresent = Set(eog.map { tokens[Int($0)] })
        if eogTextsPresent.contains("<|end|>"),
           (eogTextsPresent.contains("<|return|>") && (eogTextsPresent.contains("<|call|>") || eogTextsPresent.contains("<|calls|>")))
            || ((eogTextsPresent.contains("<|call|>") || eogTextsPresent.contains("<|calls|>")) && eogTextsPresent.contains("<|flush|>")) {
            for id in eog where tokens[Int(id)] == "<|end|>" {
                eog.remove(id)
                attributes[Int(id)] = .userDefined
            }
        }
        // gemma4 / plamo: "</s>" is a normal token there.
        if eogTextsPresent.contains("</s>"),
           eogTextsPresent.contains("<|tool_response>") || eogTextsPresent.contains("<|plamo:eos|>") {
            for id in eog where tokens[Int(id)] == "</s>" {
                eog.remove(id)
                attributes[Int(id)] = .normal
            }
        }
        endOfGeneration = eog
        Self.applyModelAttributes(&attributes, tokens: tokens, generalName: v.generalName)
        self.attributes = attributes
        self.warnings = warnings
    }

    /// llama.cpp's per-model token attributes (set after everything else): for models whose
    /// `general.name` contains "phi-3" or "phi3", special tokens swallow the whitespace after
    /// them, as does `</s>`, except `<unk>`, `<s>` and `<|endoftext|>`.
    static func applyModelAttributes(_ attributes: inout [TokenAttributes], tokens: [String], generalName: String?) {
        guard let name = generalName?.lowercased(), name.contains("phi-3") || name.contains("phi3") else { return }
        for i in attributes.indices where !attributes[i].isDisjoint(with: .special) {
            attributes[i].insert(.rstrip)
        }
        // Last occurrence of a text, like llama.cpp's token_to_id.
        var last: [String: Int] = [:]
        for (i, t) in tokens.enumerated() where t == "</s>" || t == "<unk>" || t == "<s>" || t == "<|endoftext|>" {
            last[t] = i
        }
        if let i = last["</s>"] { attributes[i].insert(.rstrip) }
        for t in ["<unk>", "<s>", "<|endoftext|>"] {
            if let i = last[t] { attributes[i].remove(.rstrip) }
        }
    }
}
