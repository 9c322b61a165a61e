/// One step of a pre-tokenizer: llama.cpp applies a list of regexes in turn, each one splitting
/// every chunk produced by the previous one. Matches and the unmatched text between them both
/// become chunks.
enum SplitRule: Sendable, Equatable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` (llama.cpp's
    /// hand-written GPT-2 matcher).
    case gpt2
    /// The llama3 / qwen2 / qwen3.5 regex family (llama.cpp's hand-written matchers):
    /// `(?i:'s|…)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
    /// where `marksAsLetters` adds `\p{M}` to the letter classes (qwen3.5).
    case llama3(maxDigits: Int, marksAsLetters: Bool)
    /// A simple pattern, matched the way std::regex does (leftmost, non-overlapping).
    case pattern(SplitPattern)
}

/// The pre-tokenizer (word splitter) of a byte-level BPE vocabulary, selected by the
/// `tokenizer.ggml.pre` name.
struct PreTokenizer: Sendable {
    /// The `tokenizer.ggml.pre` value this was built from (`"default"` when absent).
    let name: String
    /// The split rules, applied in order.
    let rules: [SplitRule]
    /// Emit a whole word as one token when it is in the vocabulary (llama.cpp's `ignore_merges`).
    let ignoreMerges: Bool
    /// Apply llama.cpp's `clean_up_tokenization_spaces` when decoding.
    let cleanSpaces: Bool
    /// The BOS default before `tokenizer.ggml.add_bos_token` is consulted.
    let defaultAddBOS: Bool
    /// The pre-tokenizer disables the BOS token (chatglm).
    let disablesBOS: Bool

    /// Splits a text fragment into words; returns the words as UTF-8 byte ranges of `utf8`.
    func split(_ utf8: [UInt8]) -> [Range<Int>] {
        // Decode to code points (input comes from a Swift String, so it is valid UTF-8).
        var cps: [UInt32] = []
        var starts: [Int] = []
        cps.reserveCapacity(utf8.count)
        starts.reserveCapacity(utf8.count + 1)
        var i = 0
        let n = utf8.count
        while i < n {
            starts.append(i)
            let b0 = UInt32(utf8[i])
            if b0 < 0x80 {
                cps.append(b0)
                i += 1
            } else if b0 < 0xE0, i + 1 < n {
                cps.append((b0 & 0x1F) << 6 | UInt32(utf8[i + 1] & 0x3F))
                i += 2
            } else if b0 < 0xF0, i + 2 < n {
                cps.append((b0 & 0x0F) << 12 | UInt32(utf8[i + 1] & 0x3F) << 6 | UInt32(utf8[i + 2] & 0x3F))
                i += 3
            } else if i + 3 < n {
                cps.append((b0 & 0x07) << 18 | UInt32(utf8[i + 1] & 0x3F) << 12
                    | UInt32(utf8[i + 2] & 0x3F) << 6 | UInt32(utf8[i + 3] & 0x3F))
                i += 4
            } else {
                cps.append(0xFFFD)
                i += 1
            }
        }
        starts.append(n)
        let flags = cps.map { CodepointFlags.of($0) }
        var chunks = cps.isEmpty ? [] : [cps.count]
        let text = SplitText(cps: cps, flags: flags)
        for rule in rules {
            switch rule {
            case .gpt2:
                chunks = CustomSplitters.gpt2(text, chunks)
            case .llama3(let maxDigits, let marks):
                chunks = CustomSplitters.llama3(text, chunks, maxDigits: maxDigits, marksAsLetters: marks)
            case .pattern(let p):
                chunks = p.split(text, chunks)
            }
        }
        var out: [Range<Int>] = []
        out.reserveCapacity(chunks.count)
        var pos = 0
        for len in chunks {
            out.append(starts[pos]..<starts[pos + len])
            pos += len
        }
        return out
    }
}

/// The code points of one text fragment and their flags.
struct SplitText {
    let cps: [UInt32]
    let flags: [CodepointFlags]
}
