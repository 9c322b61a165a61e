import ModelFormats

/// Integer bounds as digit-range grammars, and the JSON text of `const` and `enum` values.
extension JSONSchemaGrammar {
    // MARK: Integers

    func integer(_ schema: RawJSON, path: String) throws(GrammarError) -> GrammarExpression {
        func bound(_ key: String) throws(GrammarError) -> Double? {
            guard let v = schema[key] else { return nil }
            if case .bool = v { throw GrammarError(.unsupportedSchema, "boolean \(key) (draft 4) is not supported; give the bound as a number", path: "\(path)/\(key)") }
            guard let d = v.double, abs(d) < 1e15 else { throw GrammarError(.unsupportedSchema, "\(key) must be a number of at most 15 digits", path: "\(path)/\(key)") }
            return d
        }
        var lo: Int? = try bound("minimum").map { Int($0.rounded(.up)) }
        var hi: Int? = try bound("maximum").map { Int($0.rounded(.down)) }
        if let x = try bound("exclusiveMinimum") { lo = max(lo ?? .min, Int(x.rounded(.down)) + 1) }
        if let x = try bound("exclusiveMaximum") { hi = min(hi ?? .max, Int(x.rounded(.up)) - 1) }
        if lo == nil && hi == nil { return .rule("integer") }
        if let lo, let hi, lo > hi { throw GrammarError(.invalidSchema, "the integer bounds leave no value", path: path) }
        var alts: [GrammarExpression] = []
        // Negative numbers: "-" then magnitudes in [max(1, -hi), -lo].
        if (lo ?? -1) < 0 {
            let magLo = max(1, hi.map { -$0 } ?? 1)
            let magHi = lo.map { -$0 }
            if magHi.map({ magLo <= $0 }) ?? true { alts.append(.sequence([.text("-"), Self.magnitudes(magLo, magHi)])) }
        }
        if (hi ?? 0) >= 0 {
            alts.append(Self.magnitudes(max(0, lo ?? 0), hi))
        }
        return alts.count == 1 ? alts[0] : .choice(alts)
    }

    /// Decimal numerals (no leading zeros) of the integers in `lo...hi` (`hi` nil: up to 16 digits).
    static func magnitudes(_ lo: Int, _ hi: Int?) -> GrammarExpression {
        let top = hi ?? 9_999_999_999_999_999
        var alts: [GrammarExpression] = []
        var length = String(lo).count
        while true {
            let first = length == 1 ? 0 : Int(pow10(length - 1))
            let last = Int(pow10(length)) - 1
            let a = max(lo, first), b = min(top, last)
            if a <= b { alts.append(sameLength(Array(String(a).utf8), Array(String(b).utf8))) }
            if b >= top || length >= 16 { break }
            length += 1
        }
        return alts.count == 1 ? alts[0] : .choice(alts)
    }

    static func pow10(_ n: Int) -> Double {
        var v = 1.0
        for _ in 0..<n { v *= 10 }
        return v
    }

    /// Fixed-width digit strings from `lo` to `hi` (same length).
    static func sameLength(_ lo: [UInt8], _ hi: [UInt8]) -> GrammarExpression {
        let digit = { (a: UInt8, b: UInt8) in GrammarExpression.bytes(ByteSet(range: a...b)) }
        guard lo.count > 1 else { return digit(lo[0], hi[0]) }
        if lo[0] == hi[0] { return .sequence([.literal([lo[0]]), sameLength(Array(lo.dropFirst()), Array(hi.dropFirst()))]) }
        let n = lo.count - 1
        let nines = [UInt8](repeating: UInt8(ascii: "9"), count: n), zeros = [UInt8](repeating: UInt8(ascii: "0"), count: n)
        var alts: [GrammarExpression] = [.sequence([.literal([lo[0]]), sameLength(Array(lo.dropFirst()), nines)])]
        if lo[0] + 1 <= hi[0] - 1 {
            alts.append(.sequence([digit(lo[0] + 1, hi[0] - 1), .repetition(digit(48, 57), min: n, max: n)]))
        }
        alts.append(.sequence([.literal([hi[0]]), sameLength(zeros, Array(hi.dropFirst()))]))
        return .choice(alts)
    }

    // MARK: Literals

    /// Compact JSON text of a value, strings escaped minimally, members in their order: the key
    /// under which a schema's compiled grammar is cached.
    public static func canonicalText(_ v: RawJSON) -> String { String(decoding: encode(v), as: UTF8.self) }

    /// Compact JSON text of a value, strings escaped minimally.
    static func encode(_ v: RawJSON) -> [UInt8] {
        switch v {
        case .null: return Array("null".utf8)
        case .bool(let b): return Array((b ? "true" : "false").utf8)
        case .number(let d):
            if d.rounded() == d && abs(d) < 1e15 { return Array(String(Int(d)).utf8) }
            return Array("\(d)".utf8)
        case .string(let bytes):
            var out: [UInt8] = [UInt8(ascii: "\"")]
            for b in bytes {
                switch b {
                case UInt8(ascii: "\""): out += Array("\\\"".utf8)
                case UInt8(ascii: "\\"): out += Array("\\\\".utf8)
                case 10: out += Array("\\n".utf8)
                case 13: out += Array("\\r".utf8)
                case 9: out += Array("\\t".utf8)
                case 0..<0x20:
                    let h = Array("0123456789abcdef".utf8)
                    out += Array("\\u00".utf8) + [h[Int(b >> 4)], h[Int(b & 15)]]
                default: out.append(b)
                }
            }
            out.append(UInt8(ascii: "\""))
            return out
        case .array(let items):
            var out: [UInt8] = [UInt8(ascii: "[")]
            for (i, x) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out += encode(x)
            }
            out.append(UInt8(ascii: "]"))
            return out
        case .object(let members):
            var out: [UInt8] = [UInt8(ascii: "{")]
            for (i, m) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out += encode(.string(m.key)) + [UInt8(ascii: ":")] + encode(m.value)
            }
            out.append(UInt8(ascii: "}"))
            return out
        }
    }
}
