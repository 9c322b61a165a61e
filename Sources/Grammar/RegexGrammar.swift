/// A JSON Schema `pattern` (ECMA-262 syntax) as a grammar for the *JSON text* of the strings it
/// matches, quotes excluded. Supported: literals and escapes (`\.`, `\n`, `\t`, `\uXXXX`, …),
/// `.`, classes (`[a-z_]`, `[^…]`, `\d \w \s \D \W \S`), groups (`(…)`, `(?:…)`), alternation,
/// and the quantifiers `* + ? {n} {n,} {n,m}` (lazy or not: a grammar has no preference). As JSON
/// Schema says, a pattern is not anchored: without `^` any text may come before the match, without
/// `$` any text after. Back-references, look-around, word boundaries and named groups are refused.
///
/// A character that JSON must escape is produced escaped: `"` as `\"`, `\` as `\\`, newline, tab
/// and carriage return as `\n \t \r`; other control characters are never produced.
struct RegexGrammar {
    private let scalars: [Unicode.Scalar]
    private var i = 0
    /// Repetitions beyond this many copies are refused (the grammar unrolls them).
    static let maxRepeat = 1_000

    static func expression(_ pattern: String) throws(GrammarError) -> GrammarExpression {
        var p = RegexGrammar(scalars: Array(pattern.unicodeScalars))
        var anchoredStart = false, anchoredEnd = false
        if p.scalars.first == "^" { anchoredStart = true; p.i = 1 }
        let body = try p.alternatives(depth: 0)
        if p.i < p.scalars.count {
            if p.scalars[p.i] == "$" && p.i == p.scalars.count - 1 { anchoredEnd = true; p.i += 1 }
            else { throw p.error("unexpected '\(p.scalars[p.i])'") }
        }
        let any = GrammarExpression.star(Self.jsonCharacters([0...0x10FFFF], negated: false))
        return .sequence((anchoredStart ? [] : [any]) + [body] + (anchoredEnd ? [] : [any]))
    }

    private init(scalars: [Unicode.Scalar]) { self.scalars = scalars }

    private func error(_ message: String) -> GrammarError {
        GrammarError(.unsupportedSchema, "pattern: \(message) (at character \(i))")
    }

    private var peek: Unicode.Scalar? { i < scalars.count ? scalars[i] : nil }

    private mutating func alternatives(depth: Int) throws(GrammarError) -> GrammarExpression {
        guard depth < 64 else { throw error("nested too deeply") }
        var alts = [try sequence(depth: depth)]
        while peek == "|" {
            i += 1
            alts.append(try sequence(depth: depth))
        }
        return alts.count == 1 ? alts[0] : .choice(alts)
    }

    private mutating func sequence(depth: Int) throws(GrammarError) -> GrammarExpression {
        var items: [GrammarExpression] = []
        while let c = peek, c != "|", c != ")" {
            if c == "$" && i == scalars.count - 1 && depth == 0 { break }
            var atom: GrammarExpression
            switch c {
            case "(":
                i += 1
                if peek == "?" {
                    guard i + 1 < scalars.count, scalars[i + 1] == ":" else { throw error("look-around and named groups are not supported") }
                    i += 2
                }
                atom = try alternatives(depth: depth + 1)
                guard peek == ")" else { throw error("missing ')'") }
                i += 1
            case "[":
                i += 1
                atom = try characterClass()
            case ".":
                i += 1
                atom = Self.jsonCharacters([10...10, 13...13, 0x2028...0x2029], negated: true)
            case "^", "$":
                throw error("'\(c)' is supported only at the start and end of the pattern")
            case "*", "+", "?", "{":
                throw error("nothing to repeat before '\(c)'")
            case "\\":
                i += 1
                atom = try escape(inClass: false).expression
            default:
                i += 1
                atom = Self.jsonCharacters([c.value...c.value], negated: false)
            }
            atom = try quantified(atom)
            items.append(atom)
        }
        return items.count == 1 ? items[0] : .sequence(items)
    }

    private mutating func quantified(_ atom: GrammarExpression) throws(GrammarError) -> GrammarExpression {
        var lo = 1, hi: Int? = 1
        switch peek {
        case "*": lo = 0; hi = nil; i += 1
        case "+": lo = 1; hi = nil; i += 1
        case "?": lo = 0; hi = 1; i += 1
        case "{":
            let save = i
            i += 1
            guard let a = number() else { i = save; return atom }   // a literal '{'
            lo = a
            hi = a
            if peek == "," {
                i += 1
                hi = number()
            }
            guard peek == "}" else { throw error("malformed {m,n}") }
            i += 1
            if let h = hi, h < lo { throw error("{\(lo),\(h)} has max below min") }
            guard lo <= Self.maxRepeat, (hi ?? 0) <= Self.maxRepeat else { throw error("repetition above \(Self.maxRepeat)") }
        default:
            return atom
        }
        if peek == "?" { i += 1 }            // lazy: the same language
        if peek == "*" || peek == "+" || peek == "?" || peek == "{" { throw error("a repetition can't be repeated") }
        return .repetition(atom, min: lo, max: hi)
    }

    private mutating func number() -> Int? {
        var v = 0, digits = 0
        while let c = peek, ("0"..."9").contains(c), digits < 6 {
            v = v * 10 + Int(c.value - 48)
            digits += 1
            i += 1
        }
        return digits > 0 ? v : nil
    }

    private static let digit: [ClosedRange<UInt32>] = [48...57]
    private static let word: [ClosedRange<UInt32>] = [48...57, 65...90, 95...95, 97...122]
    private static let space: [ClosedRange<UInt32>] = [9...13, 32...32, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A,
                                                       0x2028...0x2029, 0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000, 0xFEFF...0xFEFF]

    /// An escape after `\`: one character's ranges (or a class's, negated or not).
    private mutating func escape(inClass: Bool) throws(GrammarError) -> (ranges: [ClosedRange<UInt32>], negated: Bool, expression: GrammarExpression) {
        guard let c = peek else { throw error("pattern ends with '\\'") }
        i += 1
        func one(_ v: UInt32) -> ([ClosedRange<UInt32>], Bool, GrammarExpression) { ([v...v], false, Self.jsonCharacters([v...v], negated: false)) }
        switch c {
        case "d": return (Self.digit, false, Self.jsonCharacters(Self.digit, negated: false))
        case "D": return (Self.digit, true, Self.jsonCharacters(Self.digit, negated: true))
        case "w": return (Self.word, false, Self.jsonCharacters(Self.word, negated: false))
        case "W": return (Self.word, true, Self.jsonCharacters(Self.word, negated: true))
        case "s": return (Self.space, false, Self.jsonCharacters(Self.space, negated: false))
        case "S": return (Self.space, true, Self.jsonCharacters(Self.space, negated: true))
        case "n": return one(10)
        case "t": return one(9)
        case "r": return one(13)
        case "f": return one(12)
        case "v": return one(11)
        case "0": return one(0)
        case "x", "u":
            let n = c == "x" ? 2 : 4
            var v: UInt32 = 0
            for _ in 0..<n {
                guard let h = peek, let d = UInt32(String(h), radix: 16) else { throw error("\\\(c) needs \(n) hex digits") }
                v = v * 16 + d
                i += 1
            }
            return one(v)
        case "b" where inClass: return one(8)
        case "b", "B": throw error("word boundaries (\\b, \\B) are not supported")
        case "1"..."9", "k": throw error("back-references are not supported")
        case "p", "P": throw error("Unicode property classes (\\p{…}) are not supported")
        default:
            guard !c.properties.isAlphabetic && !("0"..."9").contains(c) else { throw error("unknown escape '\\\(c)'") }
            return one(c.value)
        }
    }

    private mutating func characterClass() throws(GrammarError) -> GrammarExpression {
        var negated = false
        if peek == "^" { negated = true; i += 1 }
        var ranges: [ClosedRange<UInt32>] = []
        var alternatives: [GrammarExpression] = []
        var first = true
        while true {
            guard let c = peek else { throw error("missing ']'") }
            if c == "]" && !first { i += 1; break }
            first = false
            var lo: UInt32
            if c == "\\" {
                i += 1
                let e = try escape(inClass: true)
                if e.negated || e.ranges.count > 1 || e.ranges[0].count > 1 {
                    // A class escape (\d, \W, …) inside brackets.
                    if negated { throw error("a class escape inside a negated class is not supported") }
                    if e.negated { alternatives.append(e.expression) } else { ranges += e.ranges }
                    continue
                }
                lo = e.ranges[0].lowerBound
            } else {
                i += 1
                lo = c.value
            }
            var hi = lo
            if peek == "-", i + 1 < scalars.count, scalars[i + 1] != "]" {
                i += 1
                if peek == "\\" {
                    i += 1
                    let e = try escape(inClass: true)
                    guard !e.negated, e.ranges.count == 1, e.ranges[0].count == 1 else { throw error("a range must end in one character") }
                    hi = e.ranges[0].lowerBound
                } else {
                    hi = peek!.value
                    i += 1
                }
                guard lo <= hi else { throw error("character range is reversed") }
            }
            ranges.append(lo...hi)
        }
        let main = Self.jsonCharacters(ranges, negated: negated)
        return alternatives.isEmpty ? main : .choice([main] + alternatives)
    }

    /// One character of the ranges (or outside them), as JSON string text: raw where JSON allows
    /// it, escaped where it must be.
    static func jsonCharacters(_ ranges: [ClosedRange<UInt32>], negated: Bool) -> GrammarExpression {
        let set = UTF8Ranges.normalize(ranges, negated: negated)
        func contains(_ v: UInt32) -> Bool { set.contains { $0.contains(v) } }
        // Raw: all but what JSON can't hold raw (control characters, '"' and '\').
        var alts: [GrammarExpression] = [.characters(set.flatMap { subtract($0, [0...0x1F, 0x22...0x22, 0x5C...0x5C]) }, negated: false)]
        for (v, text) in [(UInt32(0x22), "\\\""), (0x5C, "\\\\"), (10, "\\n"), (9, "\\t"), (13, "\\r")] where contains(v) {
            alts.append(.text(text))
        }
        return alts.count == 1 ? alts[0] : .choice(alts)
    }

    private static func subtract(_ r: ClosedRange<UInt32>, _ cuts: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var pieces = [r]
        for cut in cuts {
            pieces = pieces.flatMap { p -> [ClosedRange<UInt32>] in
                guard p.overlaps(cut) else { return [p] }
                var out: [ClosedRange<UInt32>] = []
                if p.lowerBound < cut.lowerBound { out.append(p.lowerBound...(cut.lowerBound - 1)) }
                if p.upperBound > cut.upperBound { out.append((cut.upperBound + 1)...p.upperBound) }
                return out
            }
        }
        return pieces
    }
}
