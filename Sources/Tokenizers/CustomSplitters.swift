/// Hand-written matchers for the two most common pre-tokenizer regex families, following
/// llama.cpp's `unicode_regex_split_custom_gpt2` / `_llama3` / `_qwen2` / `_qwen35` step by step
/// (including their treatment of chunk boundaries as "out of range").
enum CustomSplitters {
    private static let outOfRange: UInt32 = 0xFFFF_FFFF

    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    static func gpt2(_ text: SplitText, _ chunks: [Int]) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(chunks.count * 2)
        let cps = text.cps
        let fl = text.flags
        var start = 0
        for chunkLen in chunks {
            let ini = start
            let end = start + chunkLen
            start = end
            @inline(__always) func cpt(_ p: Int) -> UInt32 { p >= ini && p < end ? cps[p] : outOfRange }
            @inline(__always) func flags(_ p: Int) -> CodepointFlags { p >= ini && p < end ? fl[p] : .outOfRange }
            var prevEnd = ini
            @inline(__always) func add(_ e: Int) -> Int {
                let len = e - prevEnd
                if len > 0 { out.append(len) }
                prevEnd = e
                return len
            }
            var pos = ini
            while pos < end {
                let c = cpt(pos)
                let f = flags(pos)
                // 's|'t|'re|'ve|'m|'ll|'d
                if c == 0x27, pos + 1 < end {
                    let n1 = cpt(pos + 1)
                    if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 {
                        pos += add(pos + 2)
                        continue
                    }
                    if pos + 2 < end {
                        let n2 = cpt(pos + 2)
                        if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                            pos += add(pos + 3)
                            continue
                        }
                    }
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
                // \s+(?!\S)
                if nws > 1 && cpt(pos + nws) != outOfRange {
                    pos += nws - 1
                    _ = add(pos)
                    continue
                }
                // \s+
                if nws > 0 {
                    pos += nws
                    _ = add(pos)
                    continue
                }
                // no match
                pos += 1
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
            let ini = start
            let end = start + chunkLen
            start = end
            @inline(__always) func cpt(_ p: Int) -> UInt32 { p >= ini && p < end ? cps[p] : outOfRange }
            @inline(__always) func flags(_ p: Int) -> CodepointFlags { p >= ini && p < end ? fl[p] : .outOfRange }
            @inline(__always) func wordy(_ f: CodepointFlags) -> Bool {
                f.isLetter || (marksAsLetters && f.isMark)
            }
            var prevEnd = ini
            @inline(__always) func add(_ e: Int) -> Int {
                let len = e - prevEnd
                if len > 0 { out.append(len) }
                prevEnd = e
                return len
            }
            var pos = ini
            while pos < end {
                let c = cpt(pos)
                let f = flags(pos)
                // (?i:'s|'t|'re|'ve|'m|'ll|'d)
                if c == 0x27, pos + 1 < end {
                    let n1 = asciiLower(cpt(pos + 1))
                    if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 {
                        pos += add(pos + 2)
                        continue
                    }
                    if pos + 2 < end {
                        let n2 = asciiLower(cpt(pos + 2))
                        if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                            pos += add(pos + 3)
                            continue
                        }
                    }
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
                // \s+(?!\S)
                if nws > 1 && cpt(pos + nws) != outOfRange {
                    pos += nws - 1
                    _ = add(pos)
                    continue
                }
                // \s+
                if nws > 0 {
                    pos += nws
                    _ = add(pos)
                    continue
                }
                pos += 1
                _ = add(pos)
            }
        }
        return out
    }

    /// llama.cpp uses `unicode_tolower` here; the only code points that lower-case to the ASCII
    /// letters tested are the ASCII capitals themselves.
    @inline(__always)
    private static func asciiLower(_ c: UInt32) -> UInt32 {
        (c >= 0x41 && c <= 0x5A) ? c + 0x20 : c
    }
}
