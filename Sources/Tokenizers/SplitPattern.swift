/// A character class of a simple split pattern.
///
/// llama.cpp runs the non-custom regexes through std::regex in one of two modes, and both are
/// reproduced here: `\p{…}` classes see each code point's category (ASCII by its own value),
/// while literal ranges see the code point itself, except that non-ASCII whitespace has been
/// replaced by U+000B (so, e.g., U+3000 never matches the CJK range `ࠀ-一`).
enum CharClass: Sendable, Equatable {
    /// `\p{L}`.
    case letter
    /// `\p{P}`.
    case punctuation
    /// `\p{N}`.
    case number
    /// `\p{P}` plus the listed ASCII characters (e.g. `[\p{P}\$\+<=>\^~\|]`).
    case punctuationOr(ascii: [UInt8])
    /// Literal code point ranges, as written in the regex.
    case ranges([ClosedRange<UInt32>])

    @inline(__always)
    func contains(_ cp: UInt32, _ flags: CodepointFlags) -> Bool {
        switch self {
        case .letter:
            return flags.isLetter
        case .punctuation:
            return flags.isPunctuation
        case .number:
            return flags.isNumber
        case .punctuationOr(let ascii):
            return flags.isPunctuation || (cp < 0x80 && ascii.contains(UInt8(cp)))
        case .ranges(let ranges):
            let effective: UInt32 = (cp >= 0x80 && flags.isWhitespace) ? 0x0B : cp
            for r in ranges where r.contains(effective) {
                return true
            }
            return false
        }
    }
}

/// The simple regexes llama.cpp runs through std::regex for the supported pre-tokenizers. Each
/// is matched leftmost-first and non-overlapping within every chunk; unmatched stretches become
/// chunks of their own.
enum SplitPattern: Sendable, Equatable {
    /// `X` — one code point of the class (e.g. `\p{N}`, `[\r\n]`).
    case single(CharClass)
    /// `X+` — a maximal run.
    case run(CharClass)
    /// `\s?X+` — an optional whitespace, then a maximal run.
    case optionalSpaceThenRun(CharClass)
    /// `[0-9][0-9][0-9]` — three ASCII digits.
    case asciiDigitTriple
    /// `\s+$` — the whitespace at the end of the chunk.
    case trailingWhitespace

    /// Splits every chunk (lengths in code points) of `text`.
    func split(_ text: SplitText, _ chunks: [Int]) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(chunks.count * 2)
        let cps = text.cps
        let flags = text.flags
        var start = 0
        for chunkLen in chunks {
            let ini = start
            let end = start + chunkLen
            start = end
            var gapStart = ini
            @inline(__always) func emit(_ s: Int, _ e: Int) {
                if s > gapStart { out.append(s - gapStart) }
                out.append(e - s)
                gapStart = e
            }
            if case .trailingWhitespace = self {
                var s = end
                while s > ini && flags[s - 1].isWhitespace { s -= 1 }
                if s < end { emit(s, end) }
            } else {
                var p = ini
                while p < end {
                    if let e = matchEnd(at: p, end: end, cps, flags) {
                        emit(p, e)
                        p = e
                    } else {
                        p += 1
                    }
                }
            }
            if gapStart < end { out.append(end - gapStart) }
        }
        return out
    }

    /// The end of a match starting at `p`, or `nil`.
    @inline(__always)
    private func matchEnd(at p: Int, end: Int, _ cps: [UInt32], _ flags: [CodepointFlags]) -> Int? {
        switch self {
        case .single(let cls):
            return cls.contains(cps[p], flags[p]) ? p + 1 : nil
        case .run(let cls):
            var e = p
            while e < end && cls.contains(cps[e], flags[e]) { e += 1 }
            return e > p ? e : nil
        case .optionalSpaceThenRun(let cls):
            var s = p
            if flags[p].isWhitespace && p + 1 < end && cls.contains(cps[p + 1], flags[p + 1]) {
                s = p + 1
            }
            var e = s
            while e < end && cls.contains(cps[e], flags[e]) { e += 1 }
            return e > s ? e : nil
        case .asciiDigitTriple:
            guard p + 2 < end else { return nil }
            for q in p...(p + 2) where !(cps[q] >= 0x30 && cps[q] <= 0x39) {
                return nil
            }
            return p + 3
        case .trailingWhitespace:
            return nil
        }
    }
}
