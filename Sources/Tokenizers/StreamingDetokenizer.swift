/// Incremental detokenization for streaming generation output.
///
/// Byte-level tokens often end in the middle of a multi-byte UTF-8 character (emoji, CJK). Each
/// ``append(_:)`` returns only text whose characters are complete, holding back the bytes of a
/// character that has started but not finished; ``finish()`` flushes what is left (an unfinished
/// character becomes U+FFFD). The concatenation of everything returned equals decoding all the
/// bytes at once, and no returned string ever ends in a partial character.
///
/// Pieces are concatenated as llama.cpp's `token_to_piece` renders them; the
/// `clean_up_tokenization_spaces` pass that ``Tokenizer/decode(_:skipSpecial:)`` applies for some
/// vocabularies (gpt-2, llama3, falcon, …) is not applied, nor is the removal of the first
/// token's leading space that `add_space_prefix` vocabularies (Llama 2, Mistral) get from
/// ``Tokenizer/decode(_:skipSpecial:)``, as in llama.cpp's streaming output. SentencePiece
/// byte-fallback tokens (`<0xNN>`) are held back like byte-level BPE pieces.
public struct StreamingDetokenizer: Sendable {
    private let tokenizer: Tokenizer
    private let skipSpecial: Bool
    private var pending: [UInt8] = []

    /// Creates a detokenizer. With `skipSpecial` (the default) control tokens such as
    /// `<|im_end|>` produce no text.
    public init(tokenizer: Tokenizer, skipSpecial: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
    }

    /// Bytes received but not yet returned (at most three: an unfinished character).
    public var pendingByteCount: Int { pending.count }

    /// Adds one token and returns the newly completed text (possibly empty).
    public mutating func append(_ id: Int32) -> String {
        tokenizer.appendPiece(id, skipSpecial: skipSpecial, to: &pending)
        let cut = Self.completePrefixLength(pending)
        guard cut > 0 else { return "" }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeSubrange(..<cut)
        return text
    }

    /// Returns everything still held back; an unfinished trailing character becomes U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// The length of the longest prefix of `bytes` that does not end inside a character that
    /// could still be completed by more bytes. Invalid bytes are not held back: they decode to
    /// U+FFFD right away, exactly as they would if the whole text were decoded at once.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        // Find the start of the last (possibly partial) sequence: at most 3 bytes back.
        var start = n - 1
        while start >= 0 && start >= n - 4 && bytes[start] & 0xC0 == 0x80 {
            start -= 1
        }
        guard start >= 0 && start >= n - 4 else { return n }
        let lead = bytes[start]
        let needed: Int
        switch lead {
        case 0xC2...0xDF: needed = 2
        case 0xE0...0xEF: needed = 3
        case 0xF0...0xF4: needed = 4
        default: return n  // ASCII or an invalid lead byte: nothing to wait for
        }
        let have = n - start
        guard have < needed else { return n }
        // The second byte of some sequences is restricted; if it is already wrong, the sequence
        // can never complete, so emit it (as U+FFFD) now.
        if have >= 2 {
            let second = bytes[start + 1]
            let ok: Bool
            switch lead {
            case 0xE0: ok = (0xA0...0xBF).contains(second)
            case 0xED: ok = (0x80...0x9F).contains(second)
            case 0xF0: ok = (0x90...0xBF).contains(second)
            case 0xF4: ok = (0x80...0x8F).contains(second)
            default: ok = true
            }
            if !ok { return n }
        }
        return start
    }
}
