/// SentencePiece (`tokenizer.ggml.model = llama`: Llama 2, Mistral, Gemma 1/2/3, Phi-3, …), as
/// llama.cpp's SPM tokenizer: each text fragment gets a leading space when
/// `tokenizer.ggml.add_space_prefix` is set (default true) and it is the first fragment or
/// follows a special token; spaces become `▁` (U+2581); ``SentencePieceModel`` merges by
/// token score with byte fallback. Decoding turns `▁` back into spaces and `<0xNN>` tokens into
/// their byte.
struct SentencePieceBackend: TokenizerBackend {
    let model: SentencePieceModel
    /// Prefix a space to fragments at the start and after special tokens.
    let addSpacePrefix: Bool
    let preTokenizerName: String

    init(vocabulary: Vocabulary, tokens: [String]) throws(TokenizerError) {
        if let scores = vocabulary.scores, scores.count < tokens.count {
            throw TokenizerError(
                .invalidVocabulary,
                "'\(Vocabulary.Key.scores)' has \(scores.count) entries for \(tokens.count) tokens")
        }
        // The unknown token as SpecialTokens resolves it (a valid explicit id, else the default 0);
        // byte fallback's last resort when a vocabulary lacks a byte token.
        let n = tokens.count
        let unknown = vocabulary.unknownTokenID.flatMap { $0 >= 0 && $0 < n ? Int32($0) : nil } ?? (n > 0 ? 0 : nil)
        model = SentencePieceModel(tokens: tokens, scores: vocabulary.scores ?? [], unknown: unknown)
        addSpacePrefix = vocabulary.addSpacePrefix ?? true
        preTokenizerName = vocabulary.preTokenizer ?? "default"
    }

    private static let space = UInt8(ascii: " ")
    /// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space.
    static let escapedSpace: [UInt8] = [0xE2, 0x96, 0x81]

    func encode(_ utf8: ArraySlice<UInt8>, afterSpecial: Bool, into out: inout [Int32], limit: Int) {
        var text: [UInt8] = []
        text.reserveCapacity(utf8.count + utf8.count / 2 + 3)
        if addSpacePrefix && afterSpecial {
            text.append(contentsOf: Self.escapedSpace)
        }
        for b in utf8 {
            if b == Self.space {
                text.append(contentsOf: Self.escapedSpace)
            } else {
                text.append(b)
            }
        }
        var scratch = SentencePieceModel.Scratch()
        model.encode(text, into: &out, scratch: &scratch)
    }

    func pieceBytes(text: String, attributes: TokenAttributes) -> [UInt8] {
        if attributes.contains(.normal) {
            return Self.unescapeSpaces(Array(text.utf8))
        }
        if attributes.contains(.byte) {
            return [Self.byteValue(ofByteToken: Array(text.utf8))]
        }
        // Unused and undefined tokens render as nothing.
        return []
    }

    /// Replaces every `▁` with a space (llama.cpp's `llama_unescape_whitespace`).
    static func unescapeSpaces(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count >= 3 else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if i + 2 < bytes.count && bytes[i] == 0xE2 && bytes[i + 1] == 0x96 && bytes[i + 2] == 0x81 {
                out.append(space)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    /// The byte of a byte-type token `<0xNN>`: llama.cpp runs `strtol(text.substr(3, 2), 16)`,
    /// so the leading hex digits of those two characters are used and anything else gives 0.
    static func byteValue(ofByteToken text: [UInt8]) -> UInt8 {
        var value: UInt8 = 0
        var i = 3
        while i < min(5, text.count) {
            let c = text[i]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default: return value
            }
            value = value << 4 | digit
            i += 1
        }
        return value
    }

    var cleanSpaces: Bool { false }
    var defaultAddBOS: Bool { true }
    var defaultBOS: Int32? { 1 }
    var defaultEOS: Int32? { 2 }
    var defaultUnknown: Int32? { 0 }
    var defaultAddSpacePrefix: Bool { true }

    func tokenID(forText text: String) -> Int32? {
        model.index.id(of: Array(text.utf8))
    }
}
