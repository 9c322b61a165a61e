/// Hand-written matchers for the two most common pre-tokenizer regex families, following
/// llama.cpp's `unicode_regex_split_custom_gpt2` / `_llama3` / `_qwen2` / `_qwen35` step by step
/// (including their treatment of chunk boundaries as "out of range").
enum CustomSplitters {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    static func gpt2(_ text: SplitText, _ chunks: [Int]) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(chunks.count * 2)
        let cps = text.cps
        let fl = text.flags
        var start = 0
        for chunkLen in chunks {
            var chunk = SplitChunk(cps: cps, flags: fl, start: start, end: start + chunkLen)
            let ini = start, end = start + chunkLen
            start = end
            @inline(__always) func cpt(_ p: Int) -> UInt32 { chunk.cpt(p) }
            @inline(__always) func flags(_ p: Int) -> CodepointFlags { chunk.flags(p) }
            @inline(__always) func add(_ e: Int) -> Int { chunk.add(e, to: &out) }
            var pos = ini
            while pos < end {
                let c = cpt(pos)
                let f = flags(pos)
                // 's|'t|'re|'ve|'m|'ll|'d
                if c == 0x27, let e = chunk.contractionEnd(at: pos, caseInsensitive: false) {
                    pos += add(e)
                    continue
                }
                var f2 = c == 0x20 ? flags(pos + 1) : f
                // <space>?\p{L}+
                if f2.isLetter {
                    if c == 0x20 { pos += 1 }
                    while f2.isLetter { pos += 1; f2 = flags(pos) }
                    _ = add(pos)
                    continue
                }
                // <space>?\p{N}+
                if f2.isNumber {
                    if c == 0x20 { pos += 1 }
                    while f2.isNumber { pos += 1; f2 = flags(pos) }
                    _ = add(pos)
                    continue
                }
                // <space>?[^\s\p{L}\p{N}]+
                if !(f2.isWhitespace || f2.isLetter || f2.isNumber) && f2.isDefined {
                    if c == 0x20 { pos += 1 }
                    while !(f2.isWhitespace || f2.isLetter || f2.isNumber) && f2.isDefined {
                        pos += 1
                        f2 = flags(pos)
                    }
                    _ = add(pos)
                    continue
                }
                var nws = 0
                while flags(pos + nws).isWhitespace { nws += 1 }
                // \s+(?!\S)|\s+ (or no match)
                pos = chunk.whitespaceEnd(at: pos, count: nws)
                _ = add(pos)
            }
        }
        return out
    }

    /// llama3 (`maxDigits` 3), qwen2 (`maxDigits` 1) and qwen3.5 (`maxDigits` 1, marks as letters).
    static func llama3(_ text: SplitText, _ chunks: [Int], maxDigits: Int, marksAsLetters: Bool) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(chunks.count * 2)
        let cps = text.cps
        let fl = text.flags
        var start = 0
        for chunkLen in chunks {
            var chunk = SplitChunk(cps: cps, flags: fl, start: start, end: start + chunkLen)
            let ini = start, end = start + chunkLen
            start = end
            @inline(__always) func cpt(_ p: Int) -> UInt32 { chunk.cpt(p) }
            @inline(__always) func flags(_ p: Int) -> CodepointFlags { chunk.flags(p) }
            @inline(__always) func add(_ e: Int) -> Int { chunk.add(e, to: &out) }
            @inline(__always) func wordy(_ f: CodepointFlags) -> Bool {
                f.isLetter || (marksAsLetters && f.isMark)
            }
            var pos = ini
            while pos < end {
                let c = cpt(pos)
                let f = flags(pos)
                // (?i:'s|'t|'re|'ve|'m|'ll|'d)
                if c == 0x27, let e = chunk.contractionEnd(at: pos, caseInsensitive: true) {
                    pos += add(e)
                    continue
                }
                // [^\r\n\p{L}\p{N}]?\p{L}+
                if !(c == 0x0D || c == 0x0A || f.isNumber) {
                    if wordy(f) || wordy(flags(pos + 1)) {
                        pos += 1
                        while wordy(flags(pos)) { pos += 1 }
                        _ = add(pos)
                        continue
                    }
                }
                // \p{N}{1,maxDigits}
                if f.isNumber {
                    var groupStart = pos
                    while flags(pos).isNumber {
                        pos += 1
                        if pos - groupStart >= maxDigits {
                            _ = add(pos)
                            groupStart = pos
                        }
                    }
                    _ = add(pos)
                    continue
                }
                // <space>?[^\s\p{L}\p{N}]+[\r\n]*
                var f2 = c == 0x20 ? flags(pos + 1) : f
                if !(f2.isWhitespace || wordy(f2) || f2.isNumber) && f.isDefined {
                    if c == 0x20 { pos += 1 }
                    while !(f2.isWhitespace || wordy(f2) || f2.isNumber) && f2.isDefined {
                        pos += 1
                        f2 = flags(pos)
                    }
                    var c2 = cpt(pos)
                    while c2 == 0x0D || c2 == 0x0A {
                        pos += 1
                        c2 = cpt(pos)
                    }
                    _ = add(pos)
                    continue
                }
                var nws = 0
                var lastLineEnd = 0
                while flags(pos + nws).isWhitespace {
                    let c2 = cpt(pos + nws)
                    if c2 == 0x0D || c2 == 0x0A { lastLineEnd = pos + nws + 1 }
                    nws += 1
                }
                // \s*[\r\n]+
                if lastLineEnd > 0 {
                    pos = lastLineEnd
                    _ = add(pos)
                    continue
                }
                // \s+(?!\S)|\s+ (or no match)
                pos = chunk.whitespaceEnd(at: pos, count: nws)
                _ = add(pos)
            }
        }
        return out
    }
}

/// One chunk being split. Reads outside the chunk see "out of range", as llama.cpp's splitters do;
/// `add` records the piece that ends at a position. Holds the parts both matcher families share.
struct SplitChunk {
    static let outOfRange: UInt32 = 0xFFFF_FFFF

    let cps: [UInt32]
    let codepointFlags: [CodepointFlags]
    let start: Int
    let end: Int
    private var pieceStart: Int

    init(cps: [UInt32], flags: [CodepointFlags], start: Int, end: Int) {
        self.cps = cps
        self.codepointFlags = flags
        self.start = start
        self.end = end
        pieceStart = start
    }

    @inline(__always) func cpt(_ p: Int) -> UInt32 { p >= start && p < end ? cps[p] : Self.outOfRange }

    @inline(__always) func flags(_ p: Int) -> CodepointFlags { p >= start && p < end ? codepointFlags[p] : .outOfRange }

    /// Appends the piece ending at `e` (if non-empty) to `out`; returns its length.
    @inline(__always) mutating func add(_ e: Int, to out: inout [Int]) -> Int {
        let len = e - pieceStart
        if len > 0 { out.append(len) }
        pieceStart = e
        return len
    }

    /// End of `'s|'t|'re|'ve|'m|'ll|'d` at `pos` (an apostrophe), ASCII case-insensitively if asked
    /// (llama.cpp lower-cases with `unicode_tolower`; only ASCII capitals lower to these letters).
    @inline(__always) func contractionEnd(at pos: Int, caseInsensitive: Bool) -> Int? {
        guard pos + 1 < end else { return nil }
        @inline(__always) func letter(_ p: Int) -> UInt32 {
            let c = cpt(p)
            return caseInsensitive && c >= 0x41 && c <= 0x5A ? c + 0x20 : c
        }
        let n1 = letter(pos + 1)
        if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 { return pos + 2 }
        guard pos + 2 < end else { return nil }
        let n2 = letter(pos + 2)
        if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) { return pos + 3 }
        return nil
    }

    /// Where `\s+(?!\S)|\s+` ends given `count` whitespace code points at `pos` (one past `pos`
    /// when there are none: no match, a single-code-point piece).
    @inline(__always) func whitespaceEnd(at pos: Int, count nws: Int) -> Int {
        if nws > 1 && cpt(pos + nws) != Self.outOfRange { return pos + nws - 1 }
        return nws > 0 ? pos + nws : pos + 1
    }
}
