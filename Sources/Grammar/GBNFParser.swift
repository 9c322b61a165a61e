/// Reads GBNF, llama.cpp's grammar notation (`grammars/README.md` there):
///
///     root   ::= object
///     object ::= "{" ws ( pair ( "," ws pair )* )? "}"
///     ws     ::= [ \t\n]{0,20}   # a comment
///
/// Rules are `name ::= body`; a body is alternatives (`|`) of sequences of `"literal"`,
/// `[character class]` (ranges, `^` negation), `.` (any character), rule names and parenthesized
/// groups, each optionally followed by `*`, `+`, `?`, `{m}`, `{m,}` or `{m,n}`. Literals and classes
/// take `\n \r \t \\ \" \] \[ \- \xHH \uHHHH \UHHHHHHHH`. A newline ends a rule unless it follows a
/// `|` or sits inside parentheses. Every referenced rule must be defined; `root` is the start.
public enum GBNFParser {
    /// Deepest nesting of parentheses accepted.
    public static let maxNesting = 64

    public static func parse(_ text: String, root: String = "root") throws(GrammarError) -> Grammar {
        var p = Cursor(bytes: Array(text.utf8))
        var grammar = Grammar(root: root)
        var referenced: [(String, Int)] = []
        p.skip(newlines: true)
        while !p.atEnd {
            let at = p.i
            let name = p.name()
            guard !name.isEmpty else { throw p.error("expected a rule name") }
            p.skip(newlines: false)
            guard p.consume("::=") else { throw p.error("expected '::=' after rule name '\(name)'") }
            p.skip(newlines: true)
            let body = try p.alternatives(nested: false, references: &referenced)
            if grammar.isDefined(name) { throw GrammarError(.syntax, "rule '\(name)' is defined twice (byte \(at))") }
            grammar.define(name, body)
            p.skip(newlines: true)
        }
        guard grammar.isDefined(root) else { throw GrammarError(.syntax, "the grammar has no '\(root)' rule") }
        for (name, at) in referenced where !grammar.isDefined(name) {
            throw GrammarError(.syntax, "rule '\(name)' is used (byte \(at)) but never defined")
        }
        return grammar
    }

    private struct Cursor {
        let bytes: [UInt8]
        var i = 0

        var atEnd: Bool { i >= bytes.count }
        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        func error(_ message: String) -> GrammarError {
            var line = 1, column = 1
            for b in bytes[..<min(i, bytes.count)] {
                if b == 10 { line += 1; column = 1 } else { column += 1 }
            }
            return GrammarError(.syntax, "GBNF: \(message) at line \(line), column \(column)")
        }

        mutating func skip(newlines: Bool) {
            while let b = peek {
                if b == UInt8(ascii: "#") {
                    while let c = peek, c != 10 { i += 1 }
                } else if b == 32 || b == 9 || (newlines && (b == 10 || b == 13)) {
                    i += 1
                } else {
                    return
                }
            }
        }

        mutating func consume(_ s: String) -> Bool {
            let u = Array(s.utf8)
            guard i + u.count <= bytes.count, Array(bytes[i..<(i + u.count)]) == u else { return false }
            i += u.count
            return true
        }

        static func isNameByte(_ b: UInt8) -> Bool {
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
        }

        mutating func name() -> String {
            let start = i
            while let b = peek, Self.isNameByte(b) { i += 1 }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }

        /// Parentheses open now; at most ``GBNFParser/maxNesting``.
        var depth = 0

        mutating func alternatives(nested: Bool, references: inout [(String, Int)]) throws(GrammarError) -> GrammarExpression {
            var alts = [try sequence(nested: nested, references: &references)]
            while peek == UInt8(ascii: "|") {
                i += 1
                skip(newlines: true)
                alts.append(try sequence(nested: nested, references: &references))
            }
            return alts.count == 1 ? alts[0] : .choice(alts)
        }

        mutating func sequence(nested: Bool, references: inout [(String, Int)]) throws(GrammarError) -> GrammarExpression {
            var items: [GrammarExpression] = []
            while let b = peek {
                var item: GrammarExpression
                let at = i
                switch b {
                case UInt8(ascii: "\""):
                    i += 1
                    var lit: [UInt8] = []
                    while true {
                        guard let c = peek, c != 10 else { throw error("unterminated string literal") }
                        if c == UInt8(ascii: "\"") { i += 1; break }
                        lit.append(contentsOf: utf8(try character()))
                    }
                    item = .literal(lit)
                case UInt8(ascii: "["):
                    i += 1
                    var negated = false
                    if peek == UInt8(ascii: "^") { negated = true; i += 1 }
                    var ranges: [ClosedRange<UInt32>] = []
                    while true {
                        guard let c = peek, c != 10 else { throw error("unterminated character class") }
                        if c == UInt8(ascii: "]") { i += 1; break }
                        let lo = try character()
                        var hi = lo
                        if peek == UInt8(ascii: "-"), i + 1 < bytes.count, bytes[i + 1] != UInt8(ascii: "]") {
                            i += 1
                            hi = try character()
                        }
                        guard lo <= hi else { throw error("character range is reversed") }
                        ranges.append(lo...hi)
                    }
                    item = .characters(ranges, negated: negated)
                case UInt8(ascii: "."):
                    i += 1
                    item = .anyCharacter
                case UInt8(ascii: "("):
                    i += 1
                    depth += 1
                    guard depth <= GBNFParser.maxNesting else { throw error("parentheses nest more than \(GBNFParser.maxNesting) deep") }
                    defer { depth -= 1 }
                    skip(newlines: true)
                    item = try alternatives(nested: true, references: &references)
                    guard peek == UInt8(ascii: ")") else { throw error("expected ')'") }
                    i += 1
                case UInt8(ascii: "<"):
                    throw error("token references (<...>) are not supported; write the token's text as a literal")
                default:
                    guard Self.isNameByte(b) else {
                        if b == UInt8(ascii: ")") || b == UInt8(ascii: "|") || b == 10 || b == 13 { return seq(items) }
                        throw error("unexpected character '\(String(decoding: [b], as: UTF8.self))'")
                    }
                    // A name followed by '::=' starts the next rule: this sequence is over.
                    let save = i
                    let n = name()
                    var look = self
                    look.skip(newlines: false)
                    if !nested && look.consume("::=") { i = save; return seq(items) }
                    references.append((n, at))
                    item = .rule(n)
                }
                skip(newlines: nested)
                // Postfix operators.
                while let op = peek {
                    if op == UInt8(ascii: "*") { item = .star(item); i += 1 }
                    else if op == UInt8(ascii: "+") { item = .plus(item); i += 1 }
                    else if op == UInt8(ascii: "?") { item = .optional(item); i += 1 }
                    else if op == UInt8(ascii: "{") {
                        i += 1
                        skip(newlines: false)
                        guard let lo = number() else { throw error("expected a number after '{'") }
                        skip(newlines: false)
                        var hi: Int? = lo
                        if peek == UInt8(ascii: ",") {
                            i += 1
                            skip(newlines: false)
                            hi = number()
                            skip(newlines: false)
                        }
                        guard peek == UInt8(ascii: "}") else { throw error("expected '}'") }
                        i += 1
                        if let hi, hi < lo { throw error("repetition {\(lo),\(hi)} has max below min") }
                        item = .repetition(item, min: lo, max: hi)
                    } else { break }
                    skip(newlines: nested)
                }
                items.append(item)
            }
            return seq(items)
        }

        private func seq(_ items: [GrammarExpression]) -> GrammarExpression {
            items.count == 1 ? items[0] : .sequence(items)
        }

        mutating func number() -> Int? {
            let start = i
            while let b = peek, b >= 48 && b <= 57, i - start < 6 { i += 1 }
            return i > start ? Int(String(decoding: bytes[start..<i], as: UTF8.self)) : nil
        }

        /// One character of a literal or class: a UTF-8 scalar or an escape.
        mutating func character() throws(GrammarError) -> UInt32 {
            guard let b = peek else { throw error("unexpected end of grammar") }
            if b == UInt8(ascii: "\\") {
                i += 1
                guard let e = peek else { throw error("unexpected end after '\\'") }
                i += 1
                switch e {
                case UInt8(ascii: "n"): return 10
                case UInt8(ascii: "r"): return 13
                case UInt8(ascii: "t"): return 9
                case UInt8(ascii: "x"): return try hex(2)
                case UInt8(ascii: "u"): return try hex(4)
                case UInt8(ascii: "U"): return try hex(8)
                case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "-"), UInt8(ascii: "^"):
                    return UInt32(e)
                default: throw error("unknown escape '\\\(String(decoding: [e], as: UTF8.self))'")
                }
            }
            // A UTF-8 scalar.
            let length = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2
            guard i + length <= bytes.count else { throw error("truncated UTF-8") }
            let s = String(decoding: bytes[i..<(i + length)], as: UTF8.self).unicodeScalars.first!.value
            i += length
            return s
        }

        mutating func hex(_ n: Int) throws(GrammarError) -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<n {
                guard let b = peek, let d = Self.hexValue(b) else { throw error("expected \(n) hex digits") }
                v = v << 4 | d
                i += 1
            }
            guard v <= 0x10FFFF, !(0xD800...0xDFFF).contains(v) else { throw error("escape is not a Unicode scalar") }
            return v
        }

        static func hexValue(_ b: UInt8) -> UInt32? {
            switch b {
            case 48...57: return UInt32(b - 48)
            case 65...70: return UInt32(b - 55)
            case 97...102: return UInt32(b - 87)
            default: return nil
            }
        }

        func utf8(_ scalar: UInt32) -> [UInt8] {
            Array(String(Unicode.Scalar(scalar).map(Character.init) ?? "\u{FFFD}").utf8)
        }
    }
}
