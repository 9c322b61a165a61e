/// A JSON value whose strings keep their exact code points and whose objects keep every key in
/// order. Foundation's JSONSerialization cannot read tokenizer.json faithfully: its dictionaries
/// compare keys by canonical equivalence, so a vocabulary holding both ";" (U+003B) and the Greek
/// question mark (U+037E), or a composed and a decomposed "é", loses one of them (437 tokens of
/// Gemma 3's), and it takes seconds on a 30 MB file. Strings here are UTF-8 bytes; compare and
/// hash those, never `String`s, where code points matter.
public indirect enum RawJSON: Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string([UInt8])
    case array([RawJSON])
    case object([(key: [UInt8], value: RawJSON)])

    /// Parses `bytes` (UTF-8 JSON). Errors give the byte offset.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(GGUFError) -> RawJSON {
        var p = Parser(bytes: bytes.bindMemory(to: UInt8.self))
        p.skipSpace()
        let value = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == p.bytes.count else { throw p.error("unexpected bytes after the JSON value") }
        return value
    }

    public static func parse(_ bytes: [UInt8]) throws(GGUFError) -> RawJSON {
        let result: Result<RawJSON, GGUFError> = bytes.withUnsafeBytes { buffer in
            do throws(GGUFError) { return .success(try parse(buffer)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    // MARK: Access

    /// The member `key` of an object (the first, if repeated).
    public subscript(key: String) -> RawJSON? {
        guard case .object(let members) = self else { return nil }
        let k = Array(key.utf8)
        return members.first { $0.key == k }?.value
    }

    public var string: String? {
        if case .string(let b) = self { return String(decoding: b, as: UTF8.self) }
        return nil
    }

    public var bytes: [UInt8]? {
        if case .string(let b) = self { return b }
        return nil
    }

    public var int: Int? {
        if case .number(let d) = self, d.rounded() == d, abs(d) < 9.0e15 { return Int(d) }
        return nil
    }

    public var double: Double? {
        if case .number(let d) = self { return d }
        return nil
    }

    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var array: [RawJSON]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var members: [(key: [UInt8], value: RawJSON)]? {
        if case .object(let m) = self { return m }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    // MARK: Parser

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var i = 0

        func error(_ what: String) -> GGUFError { GGUFError(.invalidString, "invalid JSON at byte \(i): \(what)") }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        mutating func literal(_ word: StaticString, _ value: RawJSON) throws(GGUFError) -> RawJSON {
            let n = word.utf8CodeUnitCount
            guard i + n <= bytes.count else { throw error("truncated literal") }
            for k in 0..<n where bytes[i + k] != word.utf8Start[k] { throw error("unknown literal") }
            i += n
            return value
        }

        mutating func value(depth: Int) throws(GGUFError) -> RawJSON {
            guard depth < 512 else { throw error("nested too deeply") }
            guard i < bytes.count else { throw error("unexpected end") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var members: [(key: [UInt8], value: RawJSON)] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw error("expected a key") }
                    let key = try string()
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw error("expected ':'") }
                    i += 1
                    skipSpace()
                    members.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard i < bytes.count else { throw error("unterminated object") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    guard bytes[i] == UInt8(ascii: "}") else { throw error("expected ',' or '}'") }
                    i += 1
                    return .object(members)
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [RawJSON] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < bytes.count else { throw error("unterminated array") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    guard bytes[i] == UInt8(ascii: "]") else { throw error("expected ',' or ']'") }
                    i += 1
                    return .array(items)
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .null)
            default:
                return .number(try number())
            }
        }

        mutating func number() throws(GGUFError) -> Double {
            let start = i
            while i < bytes.count {
                let c = bytes[i]
                guard (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
                    || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") else { break }
                i += 1
            }
            guard i > start, let d = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)) else {
                throw error("expected a value")
            }
            return d
        }

        func hex4(_ at: Int) -> UInt32? {
            guard at + 4 <= bytes.count else { return nil }
            var v: UInt32 = 0
            for k in 0..<4 {
                let c = bytes[at + k]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: return nil
                }
                v = v << 4 | d
            }
            return v
        }

        mutating func string() throws(GGUFError) -> [UInt8] {
            i += 1 // opening quote
            var out: [UInt8] = []
            var runStart = i
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "\"") {
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
                    i += 1
                    return out
                }
                if c == UInt8(ascii: "\\") {
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
                    guard i + 1 < bytes.count else { throw error("unterminated escape") }
                    let e = bytes[i + 1]
                    i += 2
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        guard var scalar = hex4(i) else { throw error("bad \\u escape") }
                        i += 4
                        if scalar >= 0xD800 && scalar < 0xDC00 {
                            // A surrogate pair; a lone high surrogate becomes U+FFFD, as serde_json's lossy reading would not accept it either.
                            if i + 6 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u"),
                               let low = hex4(i + 2), low >= 0xDC00 && low < 0xE000 {
                                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                                i += 6
                            } else {
                                throw error("unpaired surrogate")
                            }
                        } else if scalar >= 0xDC00 && scalar < 0xE000 {
                            throw error("unpaired surrogate")
                        }
                        out.append(contentsOf: Array(String(Unicode.Scalar(scalar)!).utf8))
                    default:
                        throw error("unknown escape")
                    }
                    runStart = i
                    continue
                }
                guard c >= 0x20 else { throw error("control character in a string") }
                i += 1
            }
            throw error("unterminated string")
        }
    }
}
