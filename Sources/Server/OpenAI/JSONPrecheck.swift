import Foundation

/// A strict first pass over a request body, before `JSONDecoder` reads it, so that every bad
/// input gets an error that says what is wrong and where, which the decoder's "The given data was
/// not valid JSON" does not:
///
/// - bytes that are not UTF-8, a lone surrogate escape, a syntax error: 400 `invalid_json`, with
///   the byte offset;
/// - nesting deeper than ``maxDepth``: 400 `invalid_json`;
/// - a number too large for a double (`1e309`): 400 naming the field, "out of range";
/// - an integer field (``integerFields``, at the top level, and the token-id arrays) holding a
///   fraction, an exponent, `-0`, or a value beyond 64 bits: 400 naming the field.
///
/// One pass, O(body), no allocation per value beyond the current path.
struct JSONPrecheck {
    /// Top-level fields that must be integers where they are numbers.
    static let integerFields: Set<String> = ["max_tokens", "max_completion_tokens", "n", "top_k", "top_logprobs", "seed", "best_of", "logprobs"]
    /// Top-level fields whose arrays (and arrays of arrays) hold token ids.
    static let tokenArrayFields: Set<String> = ["prompt", "tokens"]
    static let maxDepth = 64

    private let bytes: [UInt8]
    private var at = 0
    private var path: [String] = []

    /// Checks `data`; throws the first problem found.
    static func check(_ data: Data) throws(APIError) {
        var scanner = JSONPrecheck(bytes: Array(data))
        try scanner.run()
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private mutating func run() throws(APIError) {
        if let bad = Self.firstInvalidUTF8(bytes) {
            throw APIError.invalidJSON("the body is not valid UTF-8 (byte \(bad))")
        }
        skipSpace()
        guard at < bytes.count else { throw APIError.invalidJSON("the body is empty") }
        try value(depth: 1)
        skipSpace()
        guard at == bytes.count else { throw fail("unexpected text after the JSON value") }
    }

    private func fail(_ what: String) -> APIError {
        APIError.invalidJSON("\(what) at byte \(at)")
    }

    private mutating func skipSpace() {
        while at < bytes.count, bytes[at] == 0x20 || bytes[at] == 0x0A || bytes[at] == 0x0D || bytes[at] == 0x09 { at += 1 }
    }

    private mutating func value(depth: Int) throws(APIError) {
        guard depth <= Self.maxDepth else { throw fail("the JSON is nested more than \(Self.maxDepth) levels deep") }
        guard at < bytes.count else { throw fail("unexpected end of the body") }
        switch bytes[at] {
        case UInt8(ascii: "{"): try object(depth: depth)
        case UInt8(ascii: "["): try array(depth: depth)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        default: throw fail("unexpected character '\(String(decoding: [bytes[at]], as: UTF8.self))'")
        }
    }

    private mutating func object(depth: Int) throws(APIError) {
        at += 1
        skipSpace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return }
        while true {
            skipSpace()
            guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw fail("expected a field name") }
            let start = at + 1
            try string()
            let key = String(decoding: bytes[start..<(at - 1)], as: UTF8.self)
            skipSpace()
            guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw fail("expected ':' after a field name") }
            at += 1
            skipSpace()
            path.append(key)
            try value(depth: depth + 1)
            path.removeLast()
            skipSpace()
            guard at < bytes.count else { throw fail("unexpected end of the body in an object") }
            if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
            guard bytes[at] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
            at += 1
            return
        }
    }

    private mutating func array(depth: Int) throws(APIError) {
        at += 1
        skipSpace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return }
        var index = 0
        while true {
            skipSpace()
            path.append("[\(index)]")
            try value(depth: depth + 1)
            path.removeLast()
            index += 1
            skipSpace()
            guard at < bytes.count else { throw fail("unexpected end of the body in an array") }
            if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
            guard bytes[at] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
            at += 1
            return
        }
    }

    private mutating func string() throws(APIError) {
        at += 1
        while at < bytes.count {
            let c = bytes[at]
            if c == UInt8(ascii: "\"") { at += 1; return }
            if c < 0x20 { throw fail("a control character in a string") }
            if c == UInt8(ascii: "\\") {
                guard at + 1 < bytes.count else { break }
                let e = bytes[at + 1]
                if e == UInt8(ascii: "u") {
                    guard let unit = hex4(at + 2) else { throw fail("a malformed \\u escape") }
                    at += 6
                    if (0xD800...0xDBFF).contains(unit) {
                        guard at + 1 < bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u"),
                              let low = hex4(at + 2), (0xDC00...0xDFFF).contains(low) else {
                            throw fail("a lone surrogate in a \\u escape (not valid Unicode)")
                        }
                        at += 6
                    } else if (0xDC00...0xDFFF).contains(unit) {
                        throw fail("a lone surrogate in a \\u escape (not valid Unicode)")
                    }
                    continue
                }
                guard "\"\\/bfnrt".utf8.contains(e) else { throw fail("an unknown escape in a string") }
                at += 2
                continue
            }
            at += 1
        }
        throw fail("an unterminated string")
    }

    private func hex4(_ from: Int) -> Int? {
        guard from + 4 <= bytes.count else { return nil }
        var value = 0
        for b in bytes[from..<(from + 4)] {
            guard let digit = Int(String(UnicodeScalar(b)), radix: 16) else { return nil }
            value = value * 16 + digit
        }
        return value
    }

    private mutating func literal(_ word: String) throws(APIError) {
        let w = Array(word.utf8)
        guard at + w.count <= bytes.count, Array(bytes[at..<(at + w.count)]) == w else { throw fail("an unknown literal") }
        at += w.count
    }

    private mutating func number() throws(APIError) {
        let start = at
        if bytes[at] == UInt8(ascii: "-") { at += 1 }
        func digits() -> Int {
            let from = at
            while at < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[at]) { at += 1 }
            return at - from
        }
        let intStart = at
        guard digits() > 0 else { throw fail("a malformed number") }
        if bytes[intStart] == UInt8(ascii: "0"), at - intStart > 1 { throw fail("a number with a leading zero") }
        var integral = true
        if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
            at += 1
            integral = false
            guard digits() > 0 else { throw fail("a malformed number") }
        }
        if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
            at += 1
            integral = false
            if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
            guard digits() > 0 else { throw fail("a malformed number") }
        }
        let text = String(decoding: bytes[start..<at], as: UTF8.self)
        let field = fieldName()
        guard let double = Double(text), double.isFinite else {
            throw APIError.invalidRequest("\(field ?? "A number") is out of range: \(text).", param: field)
        }
        guard let field, isIntegerField() else { return }
        guard integral, text != "-0" else {
            throw APIError.invalidRequest("\(field) must be an integer; got \(text).", param: path.count > 1 ? path[0] : field)
        }
        if path.count > 1 {
            // A token id.
            guard Int32(text) != nil else {
                throw APIError.invalidRequest("\(field) is out of range: \(text) is not a token id (32 bits).", param: path[0])
            }
        } else if Int64(text) == nil {
            throw APIError.invalidRequest("\(field) is out of range: \(text) does not fit in 64 bits.", param: field)
        }
    }

    /// The field being read, as ``RequestBody`` names fields (`messages[0].content`).
    private func fieldName() -> String? {
        guard !path.isEmpty else { return nil }
        var out = ""
        for part in path { out += part.hasPrefix("[") || out.isEmpty ? part : "." + part }
        return out
    }

    /// A top-level integer field, or an element of a top-level token-id array.
    private func isIntegerField() -> Bool {
        guard let top = path.first else { return false }
        if path.count == 1 { return Self.integerFields.contains(top) }
        return Self.tokenArrayFields.contains(top) && path.dropFirst().allSatisfy { $0.hasPrefix("[") }
    }

    /// The offset of the first byte that is not part of valid UTF-8, if any.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b < 0x80 { i += 1; continue }
            let length: Int, minimum: UInt32
            switch b {
            case 0xC2...0xDF: (length, minimum) = (2, 0x80)
            case 0xE0...0xEF: (length, minimum) = (3, 0x800)
            case 0xF0...0xF4: (length, minimum) = (4, 0x10000)
            default: return i
            }
            guard i + length <= bytes.count else { return i }
            var scalar = UInt32(b) & (0xFF >> (length + 1))
            for k in 1..<length {
                let c = bytes[i + k]
                guard c & 0xC0 == 0x80 else { return i }
                scalar = scalar << 6 | UInt32(c & 0x3F)
            }
            guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else { return i }
            i += length
        }
        return nil
    }
}
