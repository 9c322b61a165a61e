import Foundation
import ModelFormats

/// A text tokenizer built from a model's `tokenizer.ggml.*` metadata, producing the same token
/// ids as llama.cpp's `llama_tokenize` and the same text as its `llama_detokenize`.
///
/// Supported: byte-level BPE (`tokenizer.ggml.model = gpt2`) with the pre-tokenizers listed in
/// ``supportedPreTokenizers``, and SentencePiece (`tokenizer.ggml.model = llama`: Llama 2,
/// Mistral, Gemma 1/2/3, Phi-3, …) with token scores, byte fallback and
/// `tokenizer.ggml.add_space_prefix`. Other models (WordPiece `bert`, Unigram `t5`, …) are
/// rejected with `.unsupportedModel`.
///
/// Immutable after construction and safe to share between threads.
public final class Tokenizer: Sendable {
    private let backend: any TokenizerBackend
    private let tokens: [String]
    private let specials: SpecialTokens
    private let partitioner: SpecialTokenPartitioner
    /// Rendered piece of every token (special tokens as their text), concatenated.
    private let pieceData: [UInt8]
    /// `pieceData` offsets; token `i` is `pieceData[pieceOffsets[i]..<pieceOffsets[i + 1]]`.
    private let pieceOffsets: [Int]
    /// The most UTF-8 bytes of input one token can stand for (its piece or its text, a little
    /// more for SentencePiece's space prefix): a text of n bytes needs at least n / this tokens.
    let maxTokenBytes: Int

    /// `tokenizer.ggml.model`, e.g. `"gpt2"` or `"llama"`.
    public let modelName: String
    /// Whether `encode(_:addSpecial: true, …)` prepends BOS (`tokenizer.ggml.add_bos_token`, else the model default).
    public let addBOS: Bool
    /// Whether `encode(_:addSpecial: true, …)` appends EOS (`tokenizer.ggml.add_eos_token`, else `false`).
    public let addEOS: Bool
    /// Whether text gets a leading space at the start and after special tokens, and decoding drops
    /// one leading space (`tokenizer.ggml.add_space_prefix`; default true for SentencePiece, false
    /// for BPE, which only uses it when decoding).
    public let addSpacePrefix: Bool
    /// Non-fatal problems found in the metadata (e.g. an out-of-range special token id that was ignored).
    public let warnings: [String]
    /// Text is put in Unicode NFC before tokenizing (see ``Vocabulary/normalizeNFC``).
    public let normalizesNFC: Bool

    /// Every supported `tokenizer.ggml.pre` value.
    public static var supportedPreTokenizers: [String] { PreTokenizer.supportedNames }

    /// Builds a tokenizer from a GGUF file's metadata.
    public convenience init(gguf: GGUFFile) throws(TokenizerError) {
        try self.init(vocabulary: Vocabulary(gguf: gguf))
    }

    /// Builds a tokenizer from a vocabulary; validates it and resolves llama.cpp's defaults.
    public init(vocabulary: Vocabulary) throws(TokenizerError) {
        let count = vocabulary.tokens.count
        guard count > 0 else {
            throw TokenizerError(.invalidVocabulary, "the vocabulary has no tokens ('tokenizer.ggml.tokens' is empty)")
        }
        guard count < Int(Int32.max) / 2 else {
            throw TokenizerError(.invalidVocabulary, "the vocabulary has \(count) tokens, more than token ids can address")
        }
        if let types = vocabulary.tokenTypes, types.count < count {
            throw TokenizerError(.invalidVocabulary, "'tokenizer.ggml.token_type' has \(types.count) entries for \(count) tokens")
        }
        // llama.cpp replaces empty token texts so that every text is unique-ish and non-empty.
        let tokens = vocabulary.tokens.enumerated().map { i, t in t.isEmpty ? "[EMPTY_\(i)]" : t }

        let backend: any TokenizerBackend
        switch vocabulary.model {
        case "gpt2":
            backend = try BPEBackend(vocabulary: vocabulary, tokens: tokens)
        case "llama":
            backend = try SentencePieceBackend(vocabulary: vocabulary, tokens: tokens)
        default:
            throw TokenizerError(
                .unsupportedModel,
                "tokenizer model '\(vocabulary.model)' (tokenizer.ggml.model) is not supported; supported: gpt2, llama")
        }
        let specials = SpecialTokens(
            vocabulary: vocabulary, tokens: tokens, defaultBOS: backend.defaultBOS, defaultEOS: backend.defaultEOS,
            defaultUnknown: backend.defaultUnknown)

        var candidates: [SpecialTokenPartitioner.Candidate] = []
        var data: [UInt8] = []
        var offsets: [Int] = [0]
        offsets.reserveCapacity(count + 1)
        var longest = 4   // an unknown token stands for one character
        for (i, text) in tokens.enumerated() {
            longest = max(longest, text.utf8.count)
            let attr = specials.attributes[i]
            if !attr.isDisjoint(with: .special) {
                candidates.append(SpecialTokenPartitioner.Candidate(
                    id: Int32(i), text: text, needsParseSpecial: !attr.isDisjoint(with: .hiddenSpecial),
                    lstrip: attr.contains(.lstrip), rstrip: attr.contains(.rstrip)))
                data.append(contentsOf: text.utf8)
            } else {
                data.append(contentsOf: backend.pieceBytes(text: text, attributes: attr))
            }
            offsets.append(data.count)
        }

        self.backend = backend
        self.tokens = tokens
        self.specials = specials
        self.partitioner = SpecialTokenPartitioner(candidates: candidates)
        self.pieceData = data
        self.pieceOffsets = offsets
        for i in 0..<count { longest = max(longest, offsets[i + 1] - offsets[i]) }
        self.maxTokenBytes = longest + 1
        self.modelName = vocabulary.model
        self.addBOS = vocabulary.addBOS ?? backend.defaultAddBOS
        self.addEOS = vocabulary.addEOS ?? false
        self.addSpacePrefix = vocabulary.addSpacePrefix ?? backend.defaultAddSpacePrefix
        var warnings = specials.warnings
        if vocabulary.preTokenizer == nil && backend is BPEBackend {
            warnings.append("missing 'tokenizer.ggml.pre'; using the 'default' pre-tokenizer (as llama.cpp does)")
        }
        self.warnings = warnings
        normalizesNFC = vocabulary.normalizeNFC
    }

    // MARK: Vocabulary facts

    /// Number of tokens in the vocabulary.
    public var vocabularySize: Int { tokens.count }
    /// The `tokenizer.ggml.pre` name in effect (`"default"` when the key is absent).
    public var preTokenizerName: String { backend.preTokenizerName }
    /// Beginning-of-sequence token, if any.
    public var bosTokenID: Int32? { specials.bos }
    /// End-of-sequence token, if any.
    public var eosTokenID: Int32? { specials.eos }
    /// End-of-turn token (explicit, or detected by text such as `<|im_end|>`), if any.
    public var eotTokenID: Int32? { specials.eot }
    /// End-of-message token (`<|eom_id|>`), if any.
    public var eomTokenID: Int32? { specials.eom }
    /// Unknown token, if any.
    public var unknownTokenID: Int32? { specials.unknown }
    /// Padding token, if any.
    public var paddingTokenID: Int32? { specials.padding }
    /// Every token that ends generation (llama.cpp's EOG set: EOS, EOT, EOM, FIM pad/repo/sep and
    /// tokens such as `<|im_end|>`, `<|endoftext|>`, `<|eot_id|>`).
    public var endOfGenerationTokenIDs: Set<Int32> { specials.endOfGeneration }

    /// `true` if generating `id` should stop generation.
    public func isEndOfGeneration(_ id: Int32) -> Bool {
        specials.endOfGeneration.contains(id)
    }

    /// `true` for control and unknown-type tokens: hidden by `decode(skipSpecial: true)` and only
    /// recognized in text by `encode(parseSpecial: true)`.
    public func isControl(_ id: Int32) -> Bool {
        guard id >= 0 && Int(id) < tokens.count else { return false }
        return !specials.attributes[Int(id)].isDisjoint(with: .hiddenSpecial)
    }

    /// The id of the token whose vocabulary text is exactly `text`, if any.
    public func tokenID(forText text: String) -> Int32? {
        backend.tokenID(forText: text)
    }

    /// The raw vocabulary text of a token (e.g. `"Ġhello"`), or `""` for an out-of-range id.
    public func tokenText(_ id: Int32) -> String {
        guard id >= 0 && Int(id) < tokens.count else { return "" }
        return tokens[Int(id)]
    }

    /// The bytes a token contributes to decoded output (byte-level decoded, so `Ġ` is a space;
    /// special tokens as their text); empty for an out-of-range id. May be a partial UTF-8 sequence.
    public func pieceBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0 && Int(id) < tokens.count else { return [] }
        return Array(pieceData[pieceOffsets[Int(id)]..<pieceOffsets[Int(id) + 1]])
    }

    /// Appends a token's piece to `out` unless it is hidden by `skipSpecial`.
    func appendPiece(_ id: Int32, skipSpecial: Bool, to out: inout [UInt8]) {
        guard id >= 0 && Int(id) < tokens.count else { return }
        if skipSpecial && !specials.attributes[Int(id)].isDisjoint(with: .hiddenSpecial) { return }
        out.append(contentsOf: pieceData[pieceOffsets[Int(id)]..<pieceOffsets[Int(id) + 1]])
    }

    // MARK: Encoding and decoding

    /// Converts text to token ids, exactly as llama.cpp's `llama_tokenize`.
    ///
    /// - Parameters:
    ///   - addSpecial: add BOS / EOS as the vocabulary's `add_bos_token` / `add_eos_token` say.
    ///   - parseSpecial: recognize control tokens such as `<|im_start|>` written in the text;
    ///     when `false` they are tokenized as plain text. User-defined tokens are always recognized.
    ///   - escapes: honour the escapes ``escapeControlTokens(_:)`` wrote: an escaped control token
    ///     is plain text even with `parseSpecial`, and the escape marks themselves are dropped.
    ///   - limit: stop early once more than this many tokens are known (the result then holds more
    ///     than `limit` tokens, but not necessarily all): for a caller that refuses a prompt longer
    ///     than its context anyway, so that an enormous text costs no more than the context.
    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool, escapes: Bool = false, limit: Int = .max) -> [Int32] {
        var utf8 = Array((normalizesNFC ? text.precomposedStringWithCanonicalMapping : text).utf8)
        var out: [Int32] = []
        // Not even the longest tokens could cover this much text within the limit.
        if limit >= 0, utf8.count / maxTokenBytes > limit {
            return [Int32](repeating: 0, count: limit + 1)
        }
        out.reserveCapacity(max(0, min(utf8.count / 3 + 2, limit)))
        if addSpecial && addBOS, let bos = specials.bos {
            out.append(bos)
        }
        var literal: Set<Int> = []
        if escapes {
            (utf8, literal) = Self.removeEscapes(utf8)
        }
        var afterSpecial = true
        for fragment in partitioner.partition(utf8, parseSpecial: parseSpecial, literal: literal) {
            if out.count > limit { return out }
            switch fragment {
            case .token(let id):
                out.append(id)
                afterSpecial = true
            case .text(let range):
                backend.encode(utf8[range], afterSpecial: afterSpecial, into: &out, limit: limit)
                afterSpecial = false
            }
        }
        if addSpecial && addEOS, let eos = specials.eos {
            out.append(eos)
        }
        return out
    }

    // MARK: Untrusted text

    /// The escape mark: U+FDD0, a Unicode noncharacter. In text encoded with `escapes`, the mark
    /// makes the character after it plain text (so a control token cannot start there), and is
    /// itself dropped; a mark in the original text is escaped as two.
    static let escapeMark: [UInt8] = [0xEF, 0xB7, 0x90]

    /// `text` with every control token written in it escaped (see ``escapeMark``), for untrusted
    /// text (a chat message's content) that passes through a chat template: encoded with
    /// `escapes: true`, the template's own control tokens are parsed and the content's are plain
    /// text, so no user can forge a turn of another role. Unchanged where no control token or
    /// mark occurs.
    public func escapeControlTokens(_ text: String) -> String {
        let utf8 = Array(text.utf8)
        var starts = partitioner.controlTokenStarts(utf8)
        var marks = 0
        for p in 0..<max(0, utf8.count - 2) where Self.isMark(utf8, at: p) { starts.append(p); marks += 1 }
        guard !starts.isEmpty else { return text }
        starts.sort()
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count + 3 * (starts.count + marks))
        var previous = 0
        for p in starts {
            out.append(contentsOf: utf8[previous..<p])
            out.append(contentsOf: Self.escapeMark)
            previous = p
        }
        out.append(contentsOf: utf8[previous...])
        return String(decoding: out, as: UTF8.self)
    }

    private static func isMark(_ utf8: [UInt8], at p: Int) -> Bool {
        p + 2 < utf8.count && utf8[p] == 0xEF && utf8[p + 1] == 0xB7 && utf8[p + 2] == 0x90
    }

    /// The text with its escape marks removed, and the positions (in the result) of the
    /// characters they escaped.
    private static func removeEscapes(_ utf8: [UInt8]) -> ([UInt8], Set<Int>) {
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var literal: Set<Int> = []
        var p = 0
        while p < utf8.count {
            if isMark(utf8, at: p) {
                p += 3
                guard p < utf8.count else { break }
                literal.insert(out.count)
                // The escaped character, whole (it may be a mark itself).
                let length = min(utf8.count - p, scalarLength(utf8[p]))
                out.append(contentsOf: utf8[p..<(p + length)])
                p += length
            } else {
                out.append(utf8[p])
                p += 1
            }
        }
        return (out, literal)
    }

    /// The length of the UTF-8 sequence a lead byte starts.
    private static func scalarLength(_ lead: UInt8) -> Int {
        lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
    }

    /// The decoded bytes of `ids` (see ``decode(_:skipSpecial:)``), before UTF-8 validation.
    public func decodeBytes(_ ids: [Int32], skipSpecial: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = []
        for (i, id) in ids.enumerated() {
            appendPiece(id, skipSpecial: skipSpecial, to: &bytes)
            // With add_space_prefix, llama.cpp drops one leading space of the first token's piece
            // (only the first token's, even when that piece is empty or hidden).
            if i == 0 && addSpacePrefix && bytes.first == UInt8(ascii: " ") {
                bytes.removeFirst()
            }
        }
        if backend.cleanSpaces {
            DecodeCleanup.cleanUpTokenizationSpaces(&bytes)
        }
        return bytes
    }

    /// Converts token ids to text, as llama.cpp's `llama_detokenize` with
    /// `remove_special = false`, `unparse_special = !skipSpecial`: with ``addSpacePrefix`` one
    /// leading space of the first token's piece is dropped.
    ///
    /// Out-of-range ids are ignored; invalid UTF-8 (e.g. a sequence cut off mid-character)
    /// becomes U+FFFD.
    public func decode(_ ids: [Int32], skipSpecial: Bool = false) -> String {
        String(decoding: decodeBytes(ids, skipSpecial: skipSpecial), as: UTF8.self)
    }
}
