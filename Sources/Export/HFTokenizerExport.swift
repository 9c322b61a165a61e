import Foundation
import ModelFormats
import Tokenizers

/// The Hugging Face tokenizer files of a model, written from its GGUF tokenizer metadata
/// (`tokenizer.ggml.*`, as llama.cpp's converter stores a tokenizer), so that transformers and the
/// tokenizers library tokenize as the model's own tokenizer does — the inverse of what
/// `HFTokenizer` (ModelFormats) and llama.cpp's convert_hf_to_gguf.py do:
///
/// - `"gpt2"`, byte-level BPE (GPT-2, SmolLM, Llama 3, Qwen 2/3…): the vocabulary and merges as
///   they are; the pre-tokenizer of `tokenizer.ggml.pre`, as the same split regexes llama.cpp runs
///   (llama-vocab.cpp, `llm_tokenizer_bpe`) and Verity runs (Tokenizers/PreTokenizer+Catalog.swift),
///   then ByteLevel; ByteLevel decoding.
/// - `"llama"`, SentencePiece BPE (Llama 2, Gemma, Phi-3…): a BPE model with byte fallback, as the
///   tokenizers library writes a SentencePiece model: normalizer Replace(" ", "▁") (after
///   Prepend("▁") when `add_space_prefix`), no pre-tokenizer, decoder Replace("▁", " "),
///   ByteFallback, Fuse. SentencePiece merges by token score where BPE needs a merge list, so
///   the merges are derived from the vocabulary as transformers does it
///   (`tokenization_utils_base.generate_merges`, used by its GGUF loader): every split of a token
///   into two tokens is a merge, best token first. `"gemma4"` (a SentencePiece-style BPE that
///   stores its merges) is written the same way with the file's merges.
/// - Anything else (`"bert"`, `"t5"`, `"rwkv"`…) is refused with an `.unsupported` error.
///
/// Control tokens (and the unknown token) become special added tokens, user-defined tokens plain
/// added tokens, so both stay whole, as llama.cpp keeps them. The output is deterministic: fixed
/// key orders, the vocabulary in id order, compact JSON.
public enum HFTokenizerExport {
    /// tokenizer.json, tokenizer_config.json (with "chat_template" when the model has one,
    /// bos/eos/pad/unk token strings, add_bos_token/add_eos_token, model_max_length from the context
    /// length, tokenizer_class), special_tokens_map.json.
    public static func files(from model: GGUFFile) throws(ExportError) -> [(name: String, contents: Data)] {
        let vocab = try Vocabulary(model)
        let tokenizer = try vocab.tokenizerJSON()
        return [
            (name: "tokenizer.json", contents: Data(tokenizer)),
            (name: "tokenizer_config.json", contents: Data(vocab.tokenizerConfigJSON())),
            (name: "special_tokens_map.json", contents: Data(vocab.specialTokensMapJSON())),
        ]
    }

    // llama.cpp's token types (`tokenizer.ggml.token_type`).
    static let normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6

    /// SentencePiece's space.
    static let metaspace: [UInt8] = Array("▁".utf8)

    // MARK: - Pre-tokenizers

    /// One step of a tokenizer.json pre-tokenizer.
    enum PreStep: Equatable {
        /// `Split(regex, "Isolated")`: matches and the text between them become separate pieces, as
        /// in llama.cpp's `unicode_regex_split`.
        case split(String)
        /// `Digits(individual_digits)`.
        case digits(individual: Bool)
        /// `ByteLevel(add_prefix_space: false, use_regex)`; with `use_regex`, GPT-2's own regex.
        case byteLevel(useRegex: Bool)
    }

    /// A `tokenizer.ggml.pre` as a tokenizer.json pre-tokenizer, and the flags that come with it.
    struct PreTokenizer {
        var steps: [PreStep]
        /// The model's `ignore_merges` (a word that is a token is not merged), llama.cpp's flag.
        var ignoreMerges = false
        /// Whether BOS is added when the file does not say (`tokenizer.ggml.add_bos_token`).
        var defaultAddBOS = false
    }

    /// GPT-2's split regex, as the tokenizers library's ByteLevel pre-tokenizer has it.
    static let gpt2Regex = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    /// Llama 3's and Qwen 2's, as their tokenizer.json spell them: HFTokenizer's (ModelFormats), so
    /// that a folder written here reads back in as the same `tokenizer.ggml.pre`.
    static let llama3Regex = HFTokenizerSplitPatterns.pattern(pre: "llama-bpe")
        ?? #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Regex = HFTokenizerSplitPatterns.pattern(pre: "qwen2")
        ?? #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// Qwen 3.5's (transformers' models/qwen3_5/tokenization_qwen3_5.py): marks continue a word.
    static let qwen35Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The pre-tokenizer of a `tokenizer.ggml.pre` name; `nil` for one Verity does not run. The
    /// names and families are Tokenizers/PreTokenizer+Catalog.swift's (llama.cpp's
    /// `llama_vocab::impl::load`), the regexes llama.cpp's `llm_tokenizer_bpe` ones, written as the
    /// models' own tokenizer.json files write them where those exist.
    static func preTokenizer(named name: String) -> PreTokenizer? {
        let byteLevel = PreStep.byteLevel(useRegex: false)
        switch name {
        case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
             "modern-bert", "exaone4", "mpt", "olmo", "jais", "trillion", "granite-docling":
            return PreTokenizer(steps: [.byteLevel(useRegex: true)])
        case "starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2", "command-r", "smollm":
            // Every digit apart, then GPT-2's regex (StarCoder's and SmolLM's tokenizer.json).
            return PreTokenizer(steps: [.digits(individual: true), .byteLevel(useRegex: true)])
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano":
            return PreTokenizer(steps: [.split(llama3Regex), byteLevel], ignoreMerges: true, defaultAddBOS: true)
        case "glm4", "glm5":
            return PreTokenizer(steps: [.split(llama3Regex), byteLevel], ignoreMerges: true)
        case "dbrx", "smaug-bpe", "chatglm-bpe":
            return PreTokenizer(steps: [.split(llama3Regex), byteLevel])
        case "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "grok-2", "megrez", "stablelm2", "hunyuan", "solar-open":
            return PreTokenizer(steps: [.split(qwen2Regex), byteLevel])
        case "qwen35":
            return PreTokenizer(steps: [.split(qwen35Regex), byteLevel])
        case "falcon":
            return PreTokenizer(steps: [.split(#"[\p{P}\$\+<=>\^~\|`]+"#), .split(gpt2Regex), .split("[0-9][0-9][0-9]"), byteLevel])
        case "default":
            return PreTokenizer(steps: [.split(#"[\p{P}\$\+<=>\^~\|]+"#), .split(gpt2Regex), .split(#"\p{N}+"#),
                                        .split("[0-9][0-9][0-9]"), byteLevel])
        case "deepseek-llm":
            return PreTokenizer(steps: [
                .split(#"[\r\n]"#), .split(#"\s?"# + characterClass(PreTokenizerCharacterClasses.deepseekLetters) + "+"),
                .split(#"\s?"# + characterClass(PreTokenizerCharacterClasses.deepseekPunctuation) + "+"), .split(#"\s+$"#),
                .split(characterClass(cjk) + "+"), .split(#"\p{N}+"#), byteLevel,
            ])
        case "deepseek-coder":
            return PreTokenizer(steps: [
                .split(#"[\r\n]"#), .split(#"\s?\p{L}+"#), .split(#"\s?\p{P}+"#), .split(characterClass(cjk) + "+"),
                .split(#"\p{N}"#), byteLevel,
            ])
        default:
            return nil
        }
    }

    /// A regex character class of code point ranges, each end written `\x{…}` (Oniguruma's syntax,
    /// which the tokenizers library uses).
    static func characterClass(_ ranges: [ClosedRange<UInt32>]) -> String {
        func hex(_ v: UInt32) -> String { "\\x{" + String(v, radix: 16, uppercase: true) + "}" }
        return "[" + ranges.map { $0.lowerBound == $0.upperBound ? hex($0.lowerBound) : hex($0.lowerBound) + "-" + hex($0.upperBound) }.joined() + "]"
    }

    /// `[一-龥ࠀ-一가-퟿]` of the DeepSeek regexes.
    static let cjk: [ClosedRange<UInt32>] = [0x4E00...0x9FA5, 0x0800...0x4E00, 0xAC00...0xD7FF]

    // MARK: - The vocabulary

    /// The tokenizer metadata of a GGUF file, read and checked, with the tokens as tokenizer.json
    /// spells them.
    struct Vocabulary {
        enum Kind {
            /// `"gpt2"`.
            case byteLevel(PreTokenizer)
            /// `"llama"` (or `"gemma4"`).
            case sentencePiece
        }

        var kind: Kind
        /// `tokenizer.ggml.model`.
        var model: String
        /// The tokens' UTF-8, by id, as tokenizer.json spells them.
        var tokens: [[UInt8]]
        var types: [Int]
        var scores: [Float]?
        /// `tokenizer.ggml.merges`, if the file has them.
        var fileMerges: [String]?
        /// Tokens left out of tokenizer.json's vocabulary: a repeat of an earlier token's text
        /// (a JSON object has each key once; the first id keeps it).
        var repeated: [Bool]
        /// User-defined tokens left out of the added tokens: SentencePiece ones whose "▁" llama.cpp
        /// wrote as " " (runs of spaces in Gemma), which SentencePiece reaches by merging, as the
        /// original tokenizer.json does.
        var mergedOnly: Set<Int> = []
        var bos: Int?, eos: Int?, unk: Int?, pad: Int?
        var addBOS: Bool, addEOS: Bool
        var addSpacePrefix: Bool
        /// `tokenizer.hf.normalizer` ("NFC"), which Verity's Hugging Face reader records.
        var normalizer: String?
        /// The chat templates: `tokenizer.chat_template` as "default", then the named ones
        /// (`tokenizer.chat_templates` → `tokenizer.chat_template.NAME`).
        var chatTemplates: [(name: String, template: String)] = []
        var contextLength: Int?

        init(_ file: GGUFFile) throws(ExportError) {
            func read<T>(_ body: () throws -> T) throws(ExportError) -> T {
                do { return try body() } catch { throw ExportError(.invalidSource, "tokenizer metadata: \(error)") }
            }
            let model = try read { try file.optionalString("tokenizer.ggml.model") } ?? ""
            guard !["", "none", "no_vocab"].contains(model) else {
                throw ExportError(.unsupported, "the model has no tokenizer (no tokenizer.ggml.model), so there are no tokenizer files to write")
            }
            let pre = try read { try file.optionalString("tokenizer.ggml.pre") }
            switch model {
            case "gpt2":
                let name = (pre?.isEmpty ?? true) ? "default" : (pre ?? "default")
                guard let p = preTokenizer(named: name) else {
                    throw ExportError(.unsupported, "the pre-tokenizer '\(name)' (tokenizer.ggml.pre) cannot be written as a Hugging Face tokenizer; Verity does not run it either")
                }
                kind = .byteLevel(p)
            case "llama", "gemma4":
                kind = .sentencePiece
            default:
                let what = ["bert": "WordPiece", "t5": "Unigram", "rwkv": "RWKV", "plamo2": "PLaMo 2", "ugm": "Unigram"][model]
                throw ExportError(.unsupported, "the tokenizer '\(model)'\(what.map { " (\($0))" } ?? "") (tokenizer.ggml.model) cannot be written as a Hugging Face tokenizer yet; supported: gpt2 (byte-level BPE), llama (SentencePiece)")
            }
            self.model = model

            let texts = try read { try file.stringArray("tokenizer.ggml.tokens") }
            guard !texts.isEmpty else { throw ExportError(.invalidSource, "tokenizer.ggml.tokens is empty") }
            let n = texts.count
            tokens = texts.map { Array($0.utf8) }
            types = try read { try file.optionalIntArray("tokenizer.ggml.token_type") } ?? [Int](repeating: normal, count: n)
            guard types.count == n else {
                throw ExportError(.invalidSource, "tokenizer.ggml.token_type has \(types.count) entries for \(n) tokens")
            }
            scores = try read { try file.optionalFloatArray("tokenizer.ggml.scores") }
            if let s = scores, s.count != n {
                throw ExportError(.invalidSource, "tokenizer.ggml.scores has \(s.count) entries for \(n) tokens")
            }
            fileMerges = try read { try file.optionalStringArray("tokenizer.ggml.merges") }
            normalizer = try read { try file.optionalString("tokenizer.hf.normalizer") }
            if let normalizer, normalizer != "NFC" {
                throw ExportError(.unsupported, "the normalizer '\(normalizer)' (tokenizer.hf.normalizer) cannot be written yet (supported: NFC)")
            }

            func id(_ key: String) throws(ExportError) -> Int? {
                guard let v = try read({ try file.optionalInt("tokenizer.ggml." + key) }), v >= 0, v < n else { return nil }
                return v
            }
            func flag(_ key: String) -> Bool? {
                guard let v = file["tokenizer.ggml." + key] else { return nil }
                return v.boolValue ?? v.intValue.map { $0 != 0 }
            }
            bos = try id("bos_token_id")
            eos = try id("eos_token_id")
            unk = try id("unknown_token_id")
            pad = try id("padding_token_id")
            switch kind {
            case .byteLevel(let p):
                addBOS = flag("add_bos_token") ?? p.defaultAddBOS
                addSpacePrefix = false
            case .sentencePiece:
                // llama.cpp adds BOS and a leading space to SentencePiece text unless the file says not to.
                addBOS = flag("add_bos_token") ?? (model == "llama")
                addSpacePrefix = flag("add_space_prefix") ?? (model == "llama")
                if unk == nil { unk = types.firstIndex(of: unknown) }
            }
            addEOS = flag("add_eos_token") ?? false

            if let template = try read({ try file.optionalString("tokenizer.chat_template") }) {
                chatTemplates.append((name: "default", template: template))
            }
            for name in try read({ try file.optionalStringArray("tokenizer.chat_templates") }) ?? [] where name != "default" {
                if let template = try read({ try file.optionalString("tokenizer.chat_template." + name) }) {
                    chatTemplates.append((name: name, template: template))
                }
            }
            if let arch = try read({ try file.optionalString("general.architecture") }),
               let context = try read({ try file.optionalInt(arch + ".context_length") }), context > 0 {
                contextLength = context
            }

            repeated = [Bool](repeating: false, count: n)
            if case .sentencePiece = kind { respellUserDefined() }
            var seen = Set<[UInt8]>(minimumCapacity: n)
            for i in 0..<n where !seen.insert(tokens[i]).inserted { repeated[i] = true }
        }

        /// llama.cpp's converter writes a user-defined SentencePiece token's "▁" as " "
        /// (convert_hf_to_gguf.py, "pre-normalize user-defined spaces"); tokenizer.json has "▁".
        mutating func respellUserDefined() {
            var candidates: [Int: [UInt8]] = [:]
            for i in tokens.indices where types[i] == userDefined && tokens[i].contains(0x20) {
                var t: [UInt8] = []
                for b in tokens[i] { if b == 0x20 { t += metaspace } else { t.append(b) } }
                candidates[i] = t
            }
            guard !candidates.isEmpty else { return }
            let existing = Set(tokens)
            for (i, t) in candidates where !existing.contains(t) {
                tokens[i] = t
                mergedOnly.insert(i)
            }
        }

        var isSentencePiece: Bool {
            if case .sentencePiece = kind { return true }
            return false
        }

        /// The text of a token id (for special token strings).
        func text(_ id: Int?) -> String? { id.map { String(decoding: tokens[$0], as: UTF8.self) } }

        // MARK: tokenizer.json

        func tokenizerJSON() throws(ExportError) -> [UInt8] {
            let index = PieceIndex(tokens, repeated: repeated)
            let merges: [(Int32, Int32)]
            if let fileMerges {
                merges = index.parseMerges(fileMerges)
            } else if isSentencePiece {
                merges = index.derivedMerges(order: mergeOrder())
            } else {
                throw ExportError(.invalidSource, "the byte-level tokenizer has no merges (tokenizer.ggml.merges)")
            }

            var j = JSONWriter()
            j.out.reserveCapacity(tokens.reduce(0) { $0 + $1.count } * 3 + merges.count * 16 + 4096)
            j.raw(#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":["#)
            var first = true
            for i in tokens.indices where !repeated[i] {
                let special: Bool
                switch types[i] {
                case control, unknown: special = true
                case userDefined where !mergedOnly.contains(i): special = false
                default: continue
                }
                if !first { j.raw(",") }
                first = false
                j.raw(#"{"id":"#); j.int(i)
                j.raw(#","content":"#); j.string(tokens[i])
                j.raw(#","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":"#)
                j.raw(special ? "true}" : "false}")
            }
            j.raw(#"],"normalizer":"#)
            writeNormalizer(&j)
            j.raw(#","pre_tokenizer":"#)
            writePreTokenizer(&j)
            j.raw(#","post_processor":"#)
            writePostProcessor(&j)
            j.raw(#","decoder":"#)
            writeDecoder(&j)

            j.raw(#","model":{"type":"BPE","dropout":null,"unk_token":"#)
            if isSentencePiece, let unk, !repeated[unk] { j.string(tokens[unk]) } else { j.raw("null") }
            j.raw(#","continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":"#)
            j.raw(isSentencePiece ? "true" : "false")
            j.raw(#","byte_fallback":"#)
            j.raw(isSentencePiece ? "true" : "false")
            j.raw(#","ignore_merges":"#)
            if case .byteLevel(let p) = kind, p.ignoreMerges { j.raw("true") } else { j.raw("false") }
            j.raw(#","vocab":{"#)
            first = true
            for i in tokens.indices where !repeated[i] {
                if !first { j.raw(",") }
                first = false
                j.string(tokens[i])
                j.raw(":")
                j.int(i)
            }
            j.raw(#"},"merges":["#)
            for (k, (a, b)) in merges.enumerated() {
                if k > 0 { j.raw(",") }
                j.raw("[")
                j.string(tokens[Int(a)])
                j.raw(",")
                j.string(tokens[Int(b)])
                j.raw("]")
            }
            j.raw("]}}")
            return j.out
        }

        func writeNormalizer(_ j: inout JSONWriter) {
            switch kind {
            case .byteLevel:
                j.raw(normalizer == "NFC" ? #"{"type":"NFC"}"# : "null")
            case .sentencePiece:
                let replace = #"{"type":"Replace","pattern":{"String":" "},"content":"▁"}"#
                if addSpacePrefix {
                    j.raw(#"{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},"# + replace + "]}")
                } else {
                    j.raw(replace)
                }
            }
        }

        func writePreTokenizer(_ j: inout JSONWriter) {
            guard case .byteLevel(let p) = kind else { j.raw("null"); return }
            func step(_ s: PreStep) {
                switch s {
                case .split(let regex):
                    j.raw(#"{"type":"Split","pattern":{"Regex":"#)
                    j.string(Array(regex.utf8))
                    j.raw(#"},"behavior":"Isolated","invert":false}"#)
                case .digits(let individual):
                    j.raw(#"{"type":"Digits","individual_digits":"# + (individual ? "true}" : "false}"))
                case .byteLevel(let useRegex):
                    j.raw(#"{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":"# + (useRegex ? "true}" : "false}"))
                }
            }
            if p.steps.count == 1 { step(p.steps[0]); return }
            j.raw(#"{"type":"Sequence","pretokenizers":["#)
            for (k, s) in p.steps.enumerated() {
                if k > 0 { j.raw(",") }
                step(s)
            }
            j.raw("]}")
        }

        /// BOS / EOS around each sequence, as `add_bos_token` / `add_eos_token` say.
        func writePostProcessor(_ j: inout JSONWriter) {
            let bosID = addBOS ? bos.flatMap { repeated[$0] ? nil : $0 } : nil
            let eosID = addEOS ? eos.flatMap { repeated[$0] ? nil : $0 } : nil
            let byteLevel = #"{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true}"#
            if !isSentencePiece, bosID == nil, eosID == nil { j.raw(byteLevel); return }
            if !isSentencePiece { j.raw(#"{"type":"Sequence","processors":["# + byteLevel + ",") }
            func special(_ id: Int, _ typeID: Int) {
                j.raw(#"{"SpecialToken":{"id":"#); j.string(tokens[id]); j.raw(#","type_id":"#); j.int(typeID); j.raw("}}")
            }
            func template(_ sequences: [(String, Int)]) {
                j.raw("[")
                for (k, (name, typeID)) in sequences.enumerated() {
                    if k > 0 { j.raw(",") }
                    if let bosID { special(bosID, typeID); j.raw(",") }
                    j.raw(#"{"Sequence":{"id":""# + name + #"","type_id":"#); j.int(typeID); j.raw("}}")
                    if let eosID { j.raw(","); special(eosID, typeID) }
                }
                j.raw("]")
            }
            j.raw(#"{"type":"TemplateProcessing","single":"#)
            template([("A", 0)])
            j.raw(#","pair":"#)
            template([("A", 0), ("B", 1)])
            j.raw(#","special_tokens":{"#)
            var ids: [Int] = []
            for id in [bosID, eosID].compactMap({ $0 }) where !ids.contains(id) { ids.append(id) }
            for (k, id) in ids.sorted().enumerated() {
                if k > 0 { j.raw(",") }
                j.string(tokens[id])
                j.raw(#":{"id":"#); j.string(tokens[id])
                j.raw(#","ids":["#); j.int(id)
                j.raw(#"],"tokens":["#); j.string(tokens[id]); j.raw("]}")
            }
            j.raw("}}")
            if !isSentencePiece { j.raw("]}") }
        }

        func writeDecoder(_ j: inout JSONWriter) {
            switch kind {
            case .byteLevel:
                j.raw(#"{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}"#)
            case .sentencePiece:
                j.raw(#"{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"}"#)
                if addSpacePrefix { j.raw(#",{"type":"Strip","content":" ","start":1,"stop":0}"#) }
                j.raw("]}")
            }
        }

        /// Each token's place in merge order (lower merges first; equal places tie): transformers'
        /// `generate_merges` sorts by token score, best first. Where the scores of the normal tokens
        /// fall with the id, as in a SentencePiece BPE model, the id is that order; it also puts the
        /// user-defined, control and byte tokens where the SentencePiece model had them, which
        /// llama.cpp's converter gives placeholder scores (-1000, 0) — transformers' GGUF loader
        /// does the same for Gemma ("the order the tokens appear in the file"), and that reproduces
        /// Gemma 3's tokenizer.json merges exactly. Otherwise the scores decide.
        func mergeOrder() -> [UInt32] {
            let n = tokens.count
            guard let scores else { return (0..<n).map { UInt32($0) } }
            var previous = Float.infinity
            var falling = true
            for i in 0..<n where types[i] == normal {
                if !(scores[i] < previous) { falling = false; break }
                previous = scores[i]
            }
            if falling { return (0..<n).map { UInt32($0) } }
            let key = scores.map { $0.isNaN ? -Float.infinity : $0 }
            let distinct = Array(Set(key)).sorted(by: >)
            var rank: [Float: UInt32] = [:]
            rank.reserveCapacity(distinct.count)
            for (r, s) in distinct.enumerated() { rank[s] = UInt32(r) }
            return key.map { rank[$0]! }
        }

        // MARK: tokenizer_config.json, special_tokens_map.json

        /// The `tokenizer_class`: the generic fast tokenizer, which runs tokenizer.json as it is.
        static let tokenizerClass = "PreTrainedTokenizerFast"

        func specialTokens() -> [(String, String)] {
            var out: [(String, String)] = []
            for (key, id) in [("bos_token", bos), ("eos_token", eos), ("pad_token", pad), ("unk_token", unk)] {
                if let id, let t = text(id) { out.append((key, t)) }
            }
            return out
        }

        func tokenizerConfigJSON() -> [UInt8] {
            var fields: [(String, (inout JSONWriter) -> Void)] = [
                ("add_bos_token", { $0.raw(addBOS ? "true" : "false") }),
                ("add_eos_token", { $0.raw(addEOS ? "true" : "false") }),
                ("clean_up_tokenization_spaces", { $0.raw("false") }),
                ("tokenizer_class", { $0.string(Array(Vocabulary.tokenizerClass.utf8)) }),
            ]
            for (key, t) in specialTokens() { fields.append((key, { $0.string(Array(t.utf8)) })) }
            if let contextLength { fields.append(("model_max_length", { $0.int(contextLength) })) }
            if chatTemplates.count == 1, chatTemplates[0].name == "default" {
                let t = chatTemplates[0].template
                fields.append(("chat_template", { $0.string(Array(t.utf8)) }))
            } else if !chatTemplates.isEmpty {
                let all = chatTemplates
                fields.append(("chat_template", { j in
                    j.raw("[")
                    for (k, c) in all.enumerated() {
                        j.raw(k > 0 ? ",\n    {\"name\": " : "\n    {\"name\": ")
                        j.string(Array(c.name.utf8))
                        j.raw(", \"template\": ")
                        j.string(Array(c.template.utf8))
                        j.raw("}")
                    }
                    j.raw("\n  ]")
                }))
            }
            return JSONWriter.object(fields)
        }

        func specialTokensMapJSON() -> [UInt8] {
            JSONWriter.object(specialTokens().map { key, t in (key, { $0.string(Array(t.utf8)) }) })
        }
    }

    // MARK: - Token lookup and merges

    /// Finds the token whose text is any byte range of a token, in expected constant time after
    /// hashing the token once (a polynomial hash of every prefix; a range's hash from two of them),
    /// so deriving merges costs time linear in the vocabulary's total length, not quadratic in its
    /// size. Every hit is checked byte for byte.
    struct PieceIndex {
        static let base: UInt64 = 0x100000001B3
        /// All tokens' bytes, one after another; token i is `bytes[starts[i]..<starts[i + 1]]`.
        var bytes: [UInt8] = []
        var starts: [Int] = [0]
        var hashes: [UInt64] = []
        /// Hash → the first token with it; tokens of other texts with the same hash are in `more`.
        var table: [UInt64: Int32] = [:]
        var more: [UInt64: [Int32]] = [:]
        /// base^k.
        var powers: [UInt64] = [1]

        init(_ tokens: [[UInt8]], repeated: [Bool]) {
            bytes.reserveCapacity(tokens.reduce(0) { $0 + $1.count })
            starts.reserveCapacity(tokens.count + 1)
            hashes.reserveCapacity(tokens.count)
            table.reserveCapacity(tokens.count)
            var longest = 0
            for t in tokens {
                bytes += t
                starts.append(bytes.count)
                longest = max(longest, t.count)
                var h: UInt64 = 0
                for b in t { h = h &* Self.base &+ UInt64(b) &+ 1 }
                hashes.append(h)
            }
            for _ in 0..<longest { powers.append(powers[powers.count - 1] &* Self.base) }
            for i in tokens.indices where !repeated[i] {
                let h = hashes[i]
                if table[h] == nil { table[h] = Int32(i) } else { more[h, default: []].append(Int32(i)) }
            }
        }

        func equal(_ id: Int32, _ start: Int, _ count: Int) -> Bool {
            let s = starts[Int(id)]
            guard starts[Int(id) + 1] - s == count else { return false }
            return bytes.withUnsafeBufferPointer { p in memcmp(p.baseAddress! + s, p.baseAddress! + start, count) == 0 }
        }

        /// The token whose text is `bytes[start..<start + count]`, whose hash is `hash`.
        func find(_ hash: UInt64, _ start: Int, _ count: Int) -> Int32? {
            guard let id = table[hash] else { return nil }
            if equal(id, start, count) { return id }
            return more[hash]?.first { equal($0, start, count) }
        }

        /// The token with the text of `a` followed by `b`.
        func concatenation(_ a: Int32, _ b: Int32) -> Int32? {
            let (sa, sb) = (starts[Int(a)], starts[Int(b)])
            let (na, nb) = (starts[Int(a) + 1] - sa, starts[Int(b) + 1] - sb)
            let h = hashes[Int(a)] &* powers[nb] &+ hashes[Int(b)]
            guard let id = table[h] ?? more[h]?.first else { return nil }
            func matches(_ id: Int32) -> Bool {
                let s = starts[Int(id)]
                guard starts[Int(id) + 1] - s == na + nb else { return false }
                return bytes.withUnsafeBufferPointer { p in
                    memcmp(p.baseAddress! + s, p.baseAddress! + sa, na) == 0 && memcmp(p.baseAddress! + s + na, p.baseAddress! + sb, nb) == 0
                }
            }
            if matches(id) { return id }
            return more[h]?.first(where: matches)
        }

        /// The token of a UTF-8 string, if it is one.
        func find(_ text: ArraySlice<UInt8>) -> Int32? {
            var h: UInt64 = 0
            for b in text { h = h &* Self.base &+ UInt64(b) &+ 1 }
            guard let id = table[h] ?? more[h]?.first else { return nil }
            func matches(_ id: Int32) -> Bool { bytes[starts[Int(id)]..<starts[Int(id) + 1]].elementsEqual(text) }
            if matches(id) { return id }
            return more[h]?.first(where: matches)
        }

        /// `tokenizer.ggml.merges` ("a b") as token pairs. A merge splits at the space where both
        /// sides and their concatenation are tokens (the first such space; tokens may hold spaces);
        /// a merge that names no tokens is dropped, as tokenizers would refuse it.
        func parseMerges(_ merges: [String]) -> [(Int32, Int32)] {
            var out: [(Int32, Int32)] = []
            out.reserveCapacity(merges.count)
            for m in merges {
                let u = Array(m.utf8)
                for (k, b) in u.enumerated() where b == 0x20 {
                    if let a = find(u[..<k]), let c = find(u[(k + 1)...]), concatenation(a, c) != nil {
                        out.append((a, c))
                        break
                    }
                }
            }
            return out
        }

        /// transformers' `generate_merges` (tokenization_utils_base.py), from which its GGUF loader
        /// builds a SentencePiece tokenizer's merges: every split of a token (between two code
        /// points) into two tokens is a merge; merges are ordered by the token they make
        /// (`order`, best first), then the longer left part, then the longer right part, then the
        /// token's id.
        func derivedMerges(order: [UInt32]) -> [(Int32, Int32)] {
            struct Merge { var key: UInt64; var token: Int32; var left: Int32; var right: Int32 }
            var merges: [Merge] = []
            var prefix = [UInt64](repeating: 0, count: powers.count + 1)
            for t in 0..<(starts.count - 1) {
                let s = starts[t], n = starts[t + 1] - s
                guard n >= 2, table[hashes[t]] != nil, find(hashes[t], s, n) == Int32(t) else { continue }
                var scalars = 0
                for k in 0..<n {
                    prefix[k + 1] = prefix[k] &* Self.base &+ UInt64(bytes[s + k]) &+ 1
                    if bytes[s + k] & 0xC0 != 0x80 { scalars += 1 }
                }
                var left = 0  // code points before k
                for k in 1..<n {
                    if bytes[s + k - 1] & 0xC0 != 0x80 { left += 1 }
                    guard bytes[s + k] & 0xC0 != 0x80 else { continue }
                    guard let a = find(prefix[k], s, k),
                          let b = find(prefix[n] &- prefix[k] &* powers[n - k], s + k, n - k) else { continue }
                    let key = UInt64(order[t]) << 32 | UInt64(0xFFFF - min(left, 0xFFFF)) << 16 | UInt64(0xFFFF - min(scalars - left, 0xFFFF))
                    merges.append(Merge(key: key, token: Int32(t), left: a, right: b))
                }
            }
            merges.sort { $0.key != $1.key ? $0.key < $1.key : $0.token < $1.token }
            return merges.map { ($0.left, $0.right) }
        }
    }

    // MARK: - JSON

    /// JSON written by hand into bytes: strings escaped as JSON requires (quote, backslash, control
    /// characters), everything else as its UTF-8.
    struct JSONWriter {
        var out: [UInt8] = []

        mutating func raw(_ s: String) { out += s.utf8 }

        mutating func int(_ v: Int) { out += String(v).utf8 }

        mutating func string(_ s: [UInt8]) {
            out.append(0x22)
            for b in s {
                switch b {
                case 0x22: out += [0x5C, 0x22]
                case 0x5C: out += [0x5C, 0x5C]
                case 0x0A: out += [0x5C, 0x6E]
                case 0x0D: out += [0x5C, 0x72]
                case 0x09: out += [0x5C, 0x74]
                case 0x08: out += [0x5C, 0x62]
                case 0x0C: out += [0x5C, 0x66]
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    out += [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]]
                default: out.append(b)
                }
            }
            out.append(0x22)
        }

        /// A small object, keys sorted, one per line.
        static func object(_ fields: [(String, (inout JSONWriter) -> Void)]) -> [UInt8] {
            var j = JSONWriter()
            j.raw("{")
            for (k, (key, value)) in fields.sorted(by: { $0.0 < $1.0 }).enumerated() {
                j.raw(k > 0 ? ",\n  " : "\n  ")
                j.string(Array(key.utf8))
                j.raw(": ")
                value(&j)
            }
            j.raw(fields.isEmpty ? "}\n" : "\n}\n")
            return j.out
        }
    }
}
