/// Python object semantics: `str()`, `repr()`, truthiness, equality and ordering.
extension TemplateValue {
    /// Python `str(value)` as jinja2 prints it (`undefined` prints as the empty string).
    public var pythonString: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return pythonRepr
        }
    }

    /// Python `repr(value)`.
    public var pythonRepr: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return Self.pythonFloatRepr(d)
        case .string(let s): return Self.pythonStringRepr(s)
        case .array(let a): return "[" + a.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .object(let o):
            return "{" + o.map { o.keyValue($0.0).pythonRepr + ": " + $0.1.pythonRepr }.joined(separator: ", ") + "}"
        case .function(let f):
            if case .generator = f.kind { return "<generator object sync_do_map at 0x7f0000000000>" }
            return "<function \(f.name)>"
        case .namespace(let ns): return "<Namespace \(TemplateValue.object(ns.attributes).pythonRepr)>"
        }
    }

    /// Python truthiness (`undefined` is falsy).
    public var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return o.count > 0
        case .function, .namespace: return true
        }
    }

    /// Python type name, used in error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .object: return "dict"
        case .function(let f):
            if case .generator = f.kind { return "generator" }
            return "function"
        case .namespace: return "Namespace"
        }
    }

    /// Numeric view (bool counts as int, like Python).
    var numeric: Double? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// Integer view for int and bool.
    var integer: Int? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return i
        default: return nil
        }
    }

    /// Python `==`.
    func pyEquals(_ other: TemplateValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.pyEquals($1) }
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            for (k, v) in a {
                guard let w = b[k], v.pyEquals(w) else { return false }
            }
            return true
        case (.function(let a), .function(let b)): return a === b
        case (.namespace(let a), .namespace(let b)): return a === b
        default:
            if let x = integer, let y = other.integer { return x == y }
            if let x = numeric, let y = other.numeric { return x == y }
            return false
        }
    }

    /// Python `<` / ordering; throws TypeError for unorderable types.
    func pyCompare(_ other: TemplateValue, op: String) throws(TemplateError) -> Int {
        switch (self, other) {
        case (.string(let a), .string(let b)):
            let x = Array(a.unicodeScalars).map(\.value)
            let y = Array(b.unicodeScalars).map(\.value)
            return x.lexicographicallyPrecedes(y) ? -1 : (x == y ? 0 : 1)
        case (.array(let a), .array(let b)):
            for (x, y) in zip(a, b) where !x.pyEquals(y) {
                return try x.pyCompare(y, op: op)
            }
            return a.count < b.count ? -1 : (a.count == b.count ? 0 : 1)
        default:
            if let x = integer, let y = other.integer { return x < y ? -1 : (x == y ? 0 : 1) }
            if let x = numeric, let y = other.numeric { return x < y ? -1 : (x == y ? 0 : 1) }
            if case .undefined = self { throw TemplateError(.undefined, "Undefined value used in comparison") }
            if case .undefined = other { throw TemplateError(.undefined, "Undefined value used in comparison") }
            throw TemplateError.type(
                "'\(op)' not supported between instances of '\(typeName)' and '\(other.typeName)'")
        }
    }

    // MARK: Formatting helpers

    /// Python `repr(float)`: shortest round-trip digits, exponent when exp < -4 or >= 16.
    static func pythonFloatRepr(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        let (negative, digits, decpt) = shortestDigits(d)
        var out = negative ? "-" : ""
        if decpt > 16 || decpt < -3 {
            out += String(digits.first ?? "0")
            if digits.count > 1 { out += "." + digits.dropFirst() }
            let e = decpt - 1
            out += e < 0 ? "e-" : "e+"
            let mag = String(abs(e))
            out += mag.count < 2 ? "0" + mag : mag
        } else if decpt <= 0 {
            out += "0." + String(repeating: "0", count: -decpt) + digits
        } else if decpt >= digits.count {
            out += digits + String(repeating: "0", count: decpt - digits.count) + ".0"
        } else {
            let i = digits.index(digits.startIndex, offsetBy: decpt)
            out += digits[..<i] + "." + digits[i...]
        }
        return out
    }

    /// Shortest round-trip decimal digits of `d` (from Swift's description) and the decimal point position.
    static func shortestDigits(_ d: Double) -> (Bool, String, Int) {
        var s = abs(d).description
        var exp = 0
        if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exp = Int(s[s.index(after: e)...]) ?? 0
            s = String(s[..<e])
        }
        var intPart = s
        var frac = ""
        if let dot = s.firstIndex(of: ".") {
            intPart = String(s[..<dot])
            frac = String(s[s.index(after: dot)...])
        }
        var digits = intPart + frac
        var decpt = intPart.count + exp
        while digits.hasPrefix("0"), digits.count > 1 {
            digits.removeFirst()
            decpt -= 1
        }
        while digits.hasSuffix("0"), digits.count > 1 { digits.removeLast() }
        return (d < 0, digits, decpt)
    }

    /// Python `repr(str)`.
    static func pythonStringRepr(_ s: String) -> String {
        let quote: Unicode.Scalar = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String.UnicodeScalarView()
        out.append(quote)
        for c in s.unicodeScalars {
            switch c {
            case quote, "\\":
                out.append("\\")
                out.append(c)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            default:
                if isPrintable(c) {
                    out.append(c)
                } else if c.value < 0x100 {
                    out.append(contentsOf: "\\x\(hex(c.value, 2))".unicodeScalars)
                } else if c.value < 0x10000 {
                    out.append(contentsOf: "\\u\(hex(c.value, 4))".unicodeScalars)
                } else {
                    out.append(contentsOf: "\\U\(hex(c.value, 8))".unicodeScalars)
                }
            }
        }
        out.append(quote)
        return String(out)
    }

    static func hex(_ v: UInt32, _ width: Int) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - h.count)) + h
    }

    /// Python `str.isprintable` for one character.
    static func isPrintable(_ c: Unicode.Scalar) -> Bool {
        if c == " " { return true }
        switch c.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
            .spaceSeparator:
            return false
        default: return true
        }
    }
}
