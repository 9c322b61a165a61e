/// A lexical token of a Jinja template.
struct Token: Equatable {
    enum Kind: Equatable {
        case data(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case rawData(String)
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case op(String)
        case eof
    }
    var kind: Kind
    var line: Int
}

/// Splits template source into tokens, reproducing jinja2's lexer with
/// `trim_blocks=True`, `lstrip_blocks=True`, `keep_trailing_newline=False`.
struct Lexer {
    private let src: [Unicode.Scalar]
    private var pos = 0
    private var line = 1
    private var tokens: [Token] = []
    /// jinja2's `line_starting`: the previous match ended with a newline.
    private var lineStarting = true
    let trimBlocks: Bool
    let lstripBlocks: Bool

    init(_ source: String, trimBlocks: Bool = true, lstripBlocks: Bool = true, keepTrailingNewline: Bool = false) {
        // Normalize newlines like jinja2 (\r\n, \r -> \n) and drop one trailing newline.
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(source.unicodeScalars.count)
        var it = Array(source.unicodeScalars)[...]
        while let c = it.popFirst() {
            if c == "\r" {
                if it.first == "\n" { it = it.dropFirst() }
                scalars.append("\n")
            } else {
                scalars.append(c)
            }
        }
        if !keepTrailingNewline, scalars.last == "\n" { scalars.removeLast() }
        self.src = scalars
        self.trimBlocks = trimBlocks
        self.lstripBlocks = lstripBlocks
    }

    static func tokenize(_ source: String) throws(TemplateError) -> [Token] {
        var lexer = Lexer(source)
        try lexer.run()
        return lexer.tokens
    }

    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        let i = pos + offset
        return i < src.count ? src[i] : nil
    }

    private func matches(_ s: String, at i: Int) -> Bool {
        var j = i
        for c in s.unicodeScalars {
            guard j < src.count, src[j] == c else { return false }
            j += 1
        }
        return true
    }

    private mutating func advance(to newPos: Int) {
        var i = pos
        while i < newPos { if src[i] == "\n" { line += 1 }; i += 1 }
        pos = newPos
    }

    private func text(_ a: Int, _ b: Int) -> String {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: src[a..<b])
        return String(s)
    }

    private func skipSpaces(from i: Int) -> Int {
        var j = i
        while j < src.count, src[j].properties.isWhitespace { j += 1 }
        return j
    }

    /// Applies `-` / lstrip_blocks to the data preceding a tag.
    private func stripData(_ a: Int, _ b: Int, sign: Unicode.Scalar?, isVariable: Bool) -> Int {
        if sign == "-" {
            var e = b
            while e > a, src[e - 1].properties.isWhitespace { e -= 1 }
            return e
        }
        if sign != "+", lstripBlocks, !isVariable {
            var l = b
            while l > a, src[l - 1] != "\n" { l -= 1 }
            if l > a || lineStarting {
                if l < b, src[l..<b].allSatisfy({ $0.properties.isWhitespace }) { return l }
            }
        }
        return b
    }

    /// Emits data text, tracking lines.
    private mutating func emitData(_ a: Int, _ end: Int, kept: Int, raw: Bool = false) {
        if kept > a { tokens.append(Token(kind: raw ? .rawData(text(a, kept)) : .data(text(a, kept)), line: line)) }
        advance(to: end)
    }

    /// Consumes a block end (`%}`, `-%}` + whitespace, `+%}`) at `i`, returning the new position.
    private func blockEnd(at i: Int, close: String) -> Int? {
        if matches("-" + close, at: i) { return skipSpaces(from: i + 3) }
        if matches("+" + close, at: i) { return i + 3 }
        if matches(close, at: i) {
            if trimBlocks, close != "}}", i + 2 < src.count, src[i + 2] == "\n" { return i + 3 }
            return i + 2
        }
        return nil
    }

    private mutating func run() throws(TemplateError) {
        while pos < src.count {
            // Find the next tag start.
            var i = pos
            var found: (Int, Unicode.Scalar)? = nil
            while i + 1 < src.count {
                if src[i] == "{", src[i + 1] == "{" || src[i + 1] == "%" || src[i + 1] == "#" {
                    found = (i, src[i + 1])
                    break
                }
                i += 1
            }
            guard let (start, kind) = found else {
                emitData(pos, src.count, kept: src.count)
                lineStarting = false
                break
            }
            var afterOpen = start + 2
            var sign: Unicode.Scalar? = nil
            if afterOpen < src.count, src[afterOpen] == "-" || src[afterOpen] == "+" {
                sign = src[afterOpen]
                afterOpen += 1
            }
            // Raw block?
            if kind == "%" {
                let r = skipSpaces(from: afterOpen)
                if matches("raw", at: r) {
                    let r2 = skipSpaces(from: r + 3)
                    var rawStart: Int? = nil
                    if matches("-%}", at: r2) { rawStart = skipSpaces(from: r2 + 3) } else if matches("%}", at: r2) { rawStart = r2 + 2 }
                    if let rawStart, r + 3 < src.count, !isNameChar(src[r + 3]) {
                        let kept = stripData(pos, start, sign: sign, isVariable: false)
                        emitData(pos, start, kept: kept)
                        advance(to: rawStart)
                        lineStarting = src[rawStart - 1] == "\n"
                        try lexRaw()
                        continue
                    }
                }
            }
            let kept = stripData(pos, start, sign: sign, isVariable: kind == "{")
            emitData(pos, start, kept: kept)
            advance(to: afterOpen)
            switch kind {
            case "#":
                try lexComment()
            case "%":
                tokens.append(Token(kind: .blockBegin, line: line))
                try lexTag(close: "%}")
            default:
                tokens.append(Token(kind: .variableBegin, line: line))
                try lexTag(close: "}}")
            }
        }
        tokens.append(Token(kind: .eof, line: line))
    }

    private func isNameChar(_ c: Unicode.Scalar) -> Bool {
        c == "_" || c.properties.isAlphabetic || ("0"..."9").contains(c)
    }

    private mutating func lexComment() throws(TemplateError) {
        var i = pos
        while i + 1 < src.count {
            if src[i] == "#", src[i + 1] == "}" {
                var endStart = i
                if i > pos, src[i - 1] == "-" || src[i - 1] == "+" { endStart = i - 1 }
                guard let end = blockEnd(at: endStart, close: "#}") else { break }
                advance(to: end)
                lineStarting = src[end - 1] == "\n"
                return
            }
            i += 1
        }
        throw TemplateError.syntax("Missing end of comment tag", line: line)
    }

    private mutating func lexRaw() throws(TemplateError) {
        var i = pos
        while i + 1 < src.count {
            if src[i] == "{", src[i + 1] == "%" {
                var j = i + 2
                var sign: Unicode.Scalar? = nil
                if j < src.count, src[j] == "-" || src[j] == "+" { sign = src[j]; j += 1 }
                j = skipSpaces(from: j)
                if matches("endraw", at: j) {
                    j = skipSpaces(from: j + 6)
                    if let end = blockEnd(at: j, close: "%}") {
                        let kept = stripData(pos, i, sign: sign, isVariable: false)
                        emitData(pos, i, kept: kept, raw: true)
                        advance(to: end)
                        lineStarting = src[end - 1] == "\n"
                        return
                    }
                }
            }
            i += 1
        }
        throw TemplateError.syntax("Missing end of raw directive", line: line)
    }
}

extension Lexer {
    private static let twoCharOps = ["//", "**", "==", "!=", ">=", "<="]
    private static let oneCharOps: Set<Unicode.Scalar> = [
        "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";",
    ]

    /// Lexes the inside of a `{% %}` or `{{ }}` tag up to and including its end.
    fileprivate mutating func lexTag(close: String) throws(TemplateError) {
        var balancing: [Unicode.Scalar] = []
        let startLine = line
        while true {
            guard pos < src.count else {
                throw TemplateError.syntax("unexpected end of template, expected '\(close)'", line: startLine)
            }
            if balancing.isEmpty, let end = blockEnd(at: pos, close: close) {
                advance(to: end)
                lineStarting = src[end - 1] == "\n"
                tokens.append(Token(kind: close == "}}" ? .variableEnd : .blockEnd, line: line))
                return
            }
            let c = src[pos]
            if c.properties.isWhitespace {
                advance(to: skipSpaces(from: pos))
                continue
            }
            if ("0"..."9").contains(c) {
                try lexNumber()
                continue
            }
            if c == "_" || c.properties.isAlphabetic {
                var j = pos
                while j < src.count, isNameCharacter(src[j]) { j += 1 }
                tokens.append(Token(kind: .name(text(pos, j)), line: line))
                advance(to: j)
                continue
            }
            if c == "'" || c == "\"" {
                try lexString(quote: c)
                continue
            }
            if pos + 1 < src.count {
                let two = text(pos, pos + 2)
                if Self.twoCharOps.contains(two) {
                    tokens.append(Token(kind: .op(two), line: line))
                    advance(to: pos + 2)
                    continue
                }
            }
            if Self.oneCharOps.contains(c) {
                switch c {
                case "(": balancing.append(")")
                case "[": balancing.append("]")
                case "{": balancing.append("}")
                case ")", "]", "}":
                    guard let expected = balancing.popLast() else {
                        throw TemplateError.syntax("unexpected '\(c)'", line: line)
                    }
                    guard expected == c else {
                        throw TemplateError.syntax("unexpected '\(c)', expected '\(expected)'", line: line)
                    }
                default: break
                }
                tokens.append(Token(kind: .op(String(c)), line: line))
                advance(to: pos + 1)
                continue
            }
            throw TemplateError.syntax("unexpected char '\(c)'", line: line)
        }
    }

    private func isNameCharacter(_ c: Unicode.Scalar) -> Bool {
        c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
    }

    private mutating func lexNumber() throws(TemplateError) {
        var j = pos
        func digits(_ j: inout Int) {
            while j < src.count, ("0"..."9").contains(src[j]) || (src[j] == "_" && j + 1 < src.count && ("0"..."9").contains(src[j + 1])) {
                j += 1
            }
        }
        digits(&j)
        var isFloat = false
        let precededByDot = pos > 0 && src[pos - 1] == "."
        if !precededByDot, j + 1 < src.count, src[j] == ".", ("0"..."9").contains(src[j + 1]) {
            isFloat = true
            j += 1
            digits(&j)
        }
        if !precededByDot, j < src.count, src[j] == "e" || src[j] == "E" {
            var k = j + 1
            if k < src.count, src[k] == "+" || src[k] == "-" { k += 1 }
            if k < src.count, ("0"..."9").contains(src[k]) {
                digits(&k)
                j = k
                isFloat = true
            }
        }
        let literal = text(pos, j).replacingOccurrences(of: "_", with: "")
        if isFloat {
            guard let d = Double(literal) else { throw TemplateError.syntax("bad float literal", line: line) }
            tokens.append(Token(kind: .float(d), line: line))
        } else {
            guard let v = Int(literal) else { throw TemplateError.syntax("integer literal too large", line: line) }
            tokens.append(Token(kind: .integer(v), line: line))
        }
        advance(to: j)
    }

    private mutating func lexString(quote: Unicode.Scalar) throws(TemplateError) {
        var j = pos + 1
        var out = String.UnicodeScalarView()
        let startLine = line
        while j < src.count {
            let c = src[j]
            if c == quote {
                tokens.append(Token(kind: .string(String(out)), line: startLine))
                advance(to: j + 1)
                return
            }
            if c == "\\", j + 1 < src.count {
                j += 1
                let e = src[j]
                switch e {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "\\": out.append("\\")
                case "'": out.append("'")
                case "\"": out.append("\"")
                case "a": out.append("\u{07}")
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                case "v": out.append("\u{0B}")
                case "\n": break
                case "x", "u", "U":
                    let n = e == "x" ? 2 : (e == "u" ? 4 : 8)
                    guard j + n < src.count, let v = UInt32(text(j + 1, j + 1 + n), radix: 16),
                        let scalar = Unicode.Scalar(v)
                    else { throw TemplateError.syntax("invalid \\\(e) escape in string", line: line) }
                    out.append(scalar)
                    j += n
                case "0"..."7":
                    var k = j
                    var v: UInt32 = 0
                    while k < src.count, k < j + 3, ("0"..."7").contains(src[k]) {
                        v = v * 8 + (src[k].value - 48)
                        k += 1
                    }
                    out.append(Unicode.Scalar(v) ?? "\u{FFFD}")
                    j = k - 1
                default:
                    out.append("\\")
                    out.append(e)
                }
                j += 1
                continue
            }
            out.append(c)
            j += 1
        }
        throw TemplateError.syntax("unterminated string", line: line)
    }
}
