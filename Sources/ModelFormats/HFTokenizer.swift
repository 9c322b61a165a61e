import Foundation

/// A Hugging Face `tokenizer.json` (the tokenizers library's format) with `tokenizer_config.json`,
/// `chat_template.jinja` and `generation_config.json`, as the `tokenizer.ggml.*` metadata that
/// llama.cpp's converter writes for the same model, so the tokenizer runs through the same code
/// as a GGUF file's:
/// - byte-level BPE (GPT-2, SmolLM, Llama 3, Qwen 2/3): tokens, merges and the pre-tokenizer,
///   recognized from the `pre_tokenizer` section (its split regex or digit rule);
/// - SentencePiece-style BPE with `byte_fallback` (Llama 2, Gemma): tokens, with each token's
///   score taken from the rank of the merge that makes it, so SentencePiece's best-score-first
///   merging makes the same merges as the tokenizers library's lowest-rank-first.
/// Anything else (Unigram, WordPiece, an unknown split regex or normalizer) is refused by name.
enum HFTokenizer {
    // llama.cpp's token types.
    static let normal: Int32 = 1, unknown: Int32 = 2, control: Int32 = 3, userDefined: Int32 = 4, unused: Int32 = 5, byte: Int32 = 6

    /// The split regexes of the byte-level pre-tokenizers Verity runs, as tokenizer.json spells
    /// them, and the `tokenizer.ggml.pre` each is.
    static let splitPatterns: [String: String] = [
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: "llama-bpe",
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: "qwen2",
    ]

    static func addMetadata(directory dir: String, config: [String: Any], to metadata: inout [(String, GGUFValue)]) throws(GGUFError) {
        let fm = FileManager.default
        let path = dir + "/tokenizer.json"
        guard fm.fileExists(atPath: path) else {
            let spm = fm.fileExists(atPath: dir + "/tokenizer.model")
            throw GGUFError(.io, "\(dir) has no tokenizer.json" + (spm ? " (only tokenizer.model, SentencePiece's protobuf, which Verity does not read yet)" : ""))
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw GGUFError(.io, "cannot read \(path)") }
        let json: RawJSON
        do {
            json = try RawJSON.parse([UInt8](data))
        } catch {
            throw GGUFError(.invalidString, "\(path) is not valid JSON: \(error.message)")
        }
        guard let model = json["model"], model.members != nil else { throw GGUFError(.missingKey, "\(path) has no 'model'") }
        let type = model["type"]?.string ?? "BPE"
        guard type == "BPE" else {
            throw GGUFError(.outOfRange, "\(path): the \(type) tokenizer model is not supported yet (supported: BPE, byte-level or with byte_fallback)")
        }
        guard let vocab = model["vocab"]?.members else { throw GGUFError(.missingKey, "\(path) has no model.vocab object") }

        // Tokens by id: the vocabulary, then the added tokens (which may extend or repeat it).
        var byID: [Int: [UInt8]] = [:]
        for (text, value) in vocab {
            guard let id = value.int, id >= 0, id < 10_000_000 else {
                throw GGUFError(.outOfRange, "\(path): token '\(String(decoding: text, as: UTF8.self))' has an invalid id")
            }
            byID[id] = text
        }
        var addedSpecial: Set<Int> = [], addedPlain: Set<Int> = []
        for added in json["added_tokens"]?.array ?? [] {
            guard let id = added["id"]?.int, id >= 0, id < 10_000_000, let content = added["content"]?.bytes else {
                throw GGUFError(.outOfRange, "\(path): an added token has no valid id or content")
            }
            byID[id] = content
            if added["special"]?.bool ?? false { addedSpecial.insert(id) } else { addedPlain.insert(id) }
        }
        // The embedding may have more rows than the tokenizer has tokens: pad, as llama.cpp does.
        let textConfig = config["text_config"] as? [String: Any] ?? config
        let vocabularySize = max((byID.keys.max() ?? -1) + 1, (textConfig["vocab_size"] as? NSNumber)?.intValue ?? 0)
        var tokens: [[UInt8]] = []
        var types: [Int32] = []
        tokens.reserveCapacity(vocabularySize)
        for id in 0..<vocabularySize {
            if let text = byID[id] {
                tokens.append(text)
                types.append(addedSpecial.contains(id) ? control : addedPlain.contains(id) ? userDefined : normal)
            } else {
                tokens.append(Array("[PAD\(id)]".utf8))
                types.append(unused)
            }
        }
        let merges = try mergeList(model["merges"], path: path)
        // Token text (exact bytes) → first id.
        var index: [[UInt8]: Int] = [:]
        index.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where index[t] == nil { index[t] = i }

        let pre = json["pre_tokenizer"]
        let normalizer = json["normalizer"].flatMap { $0.isNull ? nil : $0 }
        let byteLevel = containsType("ByteLevel", pre) || containsType("ByteLevel", json["decoder"])
        let space = UInt8(ascii: " ")
        if byteLevel {
            metadata.append(("tokenizer.ggml.model", .string("gpt2")))
            metadata.append(("tokenizer.ggml.pre", .string(try byteLevelPreTokenizer(pre, path: path))))
            if let normalizer {
                guard normalizer["type"]?.string == "NFC" else {
                    throw GGUFError(.outOfRange, "\(path): a byte-level tokenizer with normalizer \(describe(normalizer)) is not supported yet (supported: none, NFC)")
                }
                metadata.append(("tokenizer.hf.normalizer", .string("NFC")))
            }
            metadata.append(("tokenizer.ggml.merges", .array(.strings(merges.map { String(decoding: $0.0 + [space] + $0.1, as: UTF8.self) }))))
        } else if model["byte_fallback"]?.bool ?? false || containsReplace(normalizer, "▁") {
            metadata.append(("tokenizer.ggml.model", .string("llama")))
            metadata.append(("tokenizer.ggml.pre", .string("default")))
            let (prefix, ok) = sentencePieceNormalizer(normalizer)
            guard ok else { throw GGUFError(.outOfRange, "\(path): normalizer \(describe(normalizer)) is not supported yet (supported: replacing ' ' with '▁', with or without a '▁' prefix)") }
            metadata.append(("tokenizer.ggml.add_space_prefix", .bool(prefix)))
            // Scores: the merge that makes a token ranks it; unmade tokens (characters, bytes) lowest.
            var scores = [Float](repeating: -1e9, count: tokens.count)
            for (rank, (a, b)) in merges.enumerated() {
                if let id = index[a + b], scores[id] == -1e9 { scores[id] = -Float(rank) }
            }
            for (i, t) in tokens.enumerated() where types[i] == normal {
                // <0xNN>
                if t.count == 6, t[0] == 0x3C, t[1] == 0x30, t[2] == 0x78, t[5] == 0x3E,
                   UInt8(String(decoding: t[3...4], as: UTF8.self), radix: 16) != nil { types[i] = byte }
            }
            if let unk = model["unk_token"]?.bytes, let id = index[unk] {
                types[id] = unknown
                metadata.append(("tokenizer.ggml.unknown_token_id", .uint32(UInt32(id))))
            }
            metadata.append(("tokenizer.ggml.scores", .array(.float32(scores))))
        } else {
            throw GGUFError(.outOfRange, "\(path): this BPE tokenizer is neither byte-level nor SentencePiece-style (pre_tokenizer \(describe(pre)), normalizer \(describe(normalizer))); not supported yet")
        }
        metadata.append(("tokenizer.ggml.tokens", .array(.strings(tokens.map { String(decoding: $0, as: UTF8.self) }))))
        metadata.append(("tokenizer.ggml.token_type", .array(.int32(types))))

        try addSpecialTokens(directory: dir, json: json, index: index, tokenCount: tokens.count, to: &metadata)
    }

    static func mergeList(_ value: RawJSON?, path: String) throws(GGUFError) -> [([UInt8], [UInt8])] {
        guard let list = value?.array else { return [] }
        var out: [([UInt8], [UInt8])] = []
        out.reserveCapacity(list.count)
        for item in list {
            if let s = item.bytes {
                // "a b": split on the first space (neither side contains one in byte-level BPE).
                guard let space = s.firstIndex(of: UInt8(ascii: " ")) else {
                    throw GGUFError(.invalidString, "\(path): merge '\(String(decoding: s, as: UTF8.self))' has no space")
                }
                out.append((Array(s[..<space]), Array(s[(space + 1)...])))
            } else if let pair = item.array, pair.count == 2, let a = pair[0].bytes, let b = pair[1].bytes {
                out.append((a, b))
            } else {
                throw GGUFError(.invalidString, "\(path): a merge is neither \"a b\" nor [a, b]")
            }
        }
        return out
    }

    static func containsType(_ type: String, _ node: RawJSON?) -> Bool {
        guard let node else { return false }
        if node["type"]?.string == type { return true }
        for key in ["pretokenizers", "decoders", "normalizers"] {
            for child in node[key]?.array ?? [] where containsType(type, child) { return true }
        }
        return false
    }

    static func describe(_ node: RawJSON?) -> String {
        guard let node, !node.isNull else { return "null" }
        func render(_ v: RawJSON) -> String {
            switch v {
            case .null: return "null"
            case .bool(let b): return b ? "true" : "false"
            case .number(let d): return d.rounded() == d && abs(d) < 1e15 ? String(Int(d)) : String(d)
            case .string(let b): return "\"" + String(decoding: b, as: UTF8.self) + "\""
            case .array(let a): return "[" + a.map(render).joined(separator: ",") + "]"
            case .object(let m): return "{" + m.map { "\"" + String(decoding: $0.key, as: UTF8.self) + "\":" + render($0.value) }.joined(separator: ",") + "}"
            }
        }
        let text = render(node)
        return text.count > 300 ? String(text.prefix(300)) + "…" : text
    }

    static func containsReplace(_ normalizer: RawJSON?, _ content: String) -> Bool {
        guard let normalizer else { return false }
        if normalizer["type"]?.string == "Replace", normalizer["content"]?.bytes == Array(content.utf8) { return true }
        return (normalizer["normalizers"]?.array ?? []).contains { containsReplace($0, content) }
    }

    /// The SentencePiece normalizers: Replace(' ', '▁'), optionally after Prepend('▁').
    static func sentencePieceNormalizer(_ normalizer: RawJSON?) -> (prefix: Bool, ok: Bool) {
        guard let normalizer else { return (false, true) }
        let steps = normalizer["type"]?.string == "Sequence" ? (normalizer["normalizers"]?.array ?? []) : [normalizer]
        let mark = Array("▁".utf8)
        var prefix = false
        for step in steps {
            switch step["type"]?.string {
            case "Prepend" where step["prepend"]?.bytes == mark: prefix = true
            case "Replace" where step["content"]?.bytes == mark && step["pattern"]?["String"]?.string == " ": break
            default: return (prefix, false)
            }
        }
        return (prefix, true)
    }

    /// The `tokenizer.ggml.pre` of a byte-level pre-tokenizer section.
    static func byteLevelPreTokenizer(_ pre: RawJSON?, path: String) throws(GGUFError) -> String {
        guard let pre, !pre.isNull else { throw GGUFError(.outOfRange, "\(path): a byte-level tokenizer without a pre_tokenizer is not supported") }
        let steps = pre["type"]?.string == "Sequence" ? (pre["pretokenizers"]?.array ?? []) : [pre]
        let kinds = steps.map { $0["type"]?.string ?? "?" }
        func byteLevel(_ step: RawJSON, regex: Bool) -> Bool {
            step["type"]?.string == "ByteLevel" && (step["use_regex"]?.bool ?? true) == regex && !(step["add_prefix_space"]?.bool ?? false)
        }
        // GPT-2: ByteLevel with its own regex.
        if steps.count == 1, byteLevel(steps[0], regex: true) { return "gpt-2" }
        // StarCoder / SmolLM: every digit apart, then GPT-2's regex.
        if kinds == ["Digits", "ByteLevel"], steps[0]["individual_digits"]?.bool == true, byteLevel(steps[1], regex: true) { return "smollm" }
        // Llama 3, Qwen 2: a split regex, then bytes.
        if kinds == ["Split", "ByteLevel"], byteLevel(steps[1], regex: false),
           let pattern = steps[0]["pattern"]?["Regex"]?.string, let name = splitPatterns[pattern] {
            return name
        }
        throw GGUFError(.outOfRange, "\(path): pre-tokenizer \(describe(pre)) is not one Verity knows yet (GPT-2, SmolLM/StarCoder digits, Llama 3 and Qwen 2 regexes)")
    }

    /// BOS/EOS/unknown/padding ids and flags, the chat template.
    static func addSpecialTokens(directory dir: String, json: RawJSON, index: [[UInt8]: Int], tokenCount: Int,
                                 to metadata: inout [(String, GGUFValue)]) throws(GGUFError) {
        let fm = FileManager.default
        var config: [String: Any] = [:]
        if fm.fileExists(atPath: dir + "/tokenizer_config.json") { config = try HFCheckpoint.readJSONObject(dir + "/tokenizer_config.json") }
        var special: [String: Any] = [:]
        if fm.fileExists(atPath: dir + "/special_tokens_map.json") { special = try HFCheckpoint.readJSONObject(dir + "/special_tokens_map.json") }
        func tokenText(_ key: String) -> String? {
            for source in [config, special] {
                if let s = source[key] as? String { return s }
                if let d = source[key] as? [String: Any], let s = d["content"] as? String { return s }
            }
            return nil
        }
        let existing = Set(metadata.map(\.0))
        for (key, gguf) in [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id")] {
            guard !existing.contains("tokenizer.ggml." + gguf), let text = tokenText(key), let id = index[Array(text.utf8)] else { continue }
            metadata.append(("tokenizer.ggml." + gguf, .uint32(UInt32(id))))
        }
        // Whether BOS/EOS are added: tokenizer_config.json, else the post-processor's template.
        let single = json["post_processor"]?["single"]?.array ?? []
        let addBOS = config["add_bos_token"] as? Bool ?? (single.first?["SpecialToken"] != nil)
        let addEOS = config["add_eos_token"] as? Bool ?? (single.count > 1 && single.last?["SpecialToken"] != nil)
        metadata.append(("tokenizer.ggml.add_bos_token", .bool(addBOS)))
        metadata.append(("tokenizer.ggml.add_eos_token", .bool(addEOS)))
        if addBOS, !metadata.contains(where: { $0.0 == "tokenizer.ggml.bos_token_id" }),
           let text = single.first?["SpecialToken"]?["id"]?.bytes, let id = index[text] {
            metadata.append(("tokenizer.ggml.bos_token_id", .uint32(UInt32(id))))
        }
        // generation_config.json may end generation on more ids than the tokenizer's EOS.
        if fm.fileExists(atPath: dir + "/generation_config.json") {
            let generation = try HFCheckpoint.readJSONObject(dir + "/generation_config.json")
            let ids = (generation["eos_token_id"] as? [NSNumber])?.map(\.intValue) ?? ((generation["eos_token_id"] as? NSNumber).map { [$0.intValue] } ?? [])
            let eos = metadata.first { $0.0 == "tokenizer.ggml.eos_token_id" }?.1.intValue
            if eos == nil, let first = ids.first, first < tokenCount { metadata.append(("tokenizer.ggml.eos_token_id", .uint32(UInt32(first)))) }
            if let other = ids.first(where: { $0 != (eos ?? ids.first) && $0 < tokenCount }) {
                metadata.append(("tokenizer.ggml.eot_token_id", .uint32(UInt32(other))))
            }
            try addSamplingDefaults(generation, to: &metadata)
        }
        // The chat template: tokenizer_config.json's (a string, or named templates), else chat_template.jinja.
        var template: String?
        if let s = config["chat_template"] as? String { template = s }
        else if let named = config["chat_template"] as? [[String: Any]] {
            template = named.first { $0["name"] as? String == "default" }?["template"] as? String ?? named.first?["template"] as? String
        } else if let data = fm.contents(atPath: dir + "/chat_template.jinja") {
            template = String(decoding: data, as: UTF8.self)
        }
        if let template { metadata.append(("tokenizer.chat_template", .string(template))) }
    }

    /// generation_config.json's sampling settings, under llama.cpp's `general.sampling.*` keys.
    static func addSamplingDefaults(_ generation: [String: Any], to metadata: inout [(String, GGUFValue)]) throws(GGUFError) {
        let doSample = generation["do_sample"] as? Bool ?? true
        if let t = (generation["temperature"] as? NSNumber)?.floatValue { metadata.append(("general.sampling.temp", .float32(doSample ? t : 0))) }
        else if !doSample { metadata.append(("general.sampling.temp", .float32(0))) }
        if let p = (generation["top_p"] as? NSNumber)?.floatValue { metadata.append(("general.sampling.top_p", .float32(p))) }
        if let k = (generation["top_k"] as? NSNumber)?.intValue { metadata.append(("general.sampling.top_k", .int32(Int32(clamping: k)))) }
        if let m = (generation["min_p"] as? NSNumber)?.floatValue { metadata.append(("general.sampling.min_p", .float32(m))) }
        if let r = (generation["repetition_penalty"] as? NSNumber)?.floatValue { metadata.append(("general.sampling.penalty_repeat", .float32(r))) }
    }
}
