/// Python `json.dumps` as used by transformers' `tojson` override.
struct JSONWriter {
    var ensureASCII = false
    var indent: String? = nil
    var itemSeparator = ", "
    var keySeparator = ": "
    var sortKeys = false

    init(ensureASCII: Bool, indent: TemplateValue, separators: TemplateValue, sortKeys: Bool) throws(TemplateError) {
        self.ensureASCII = ensureASCII
        self.sortKeys = sortKeys
        switch indent {
        case .int(let n): self.indent = String(repeating: " ", count: max(0, n))
        case .string(let s): self.indent = s
        case .none, .undefined: self.indent = nil
        default: throw TemplateError.type("indent must be int or str")
        }
        if self.indent != nil { itemSeparator = "," }
        if case .array(let seps) = separators {
            guard seps.count == 2, case .string(let a) = seps[0], case .string(let b) = seps[1] else {
                throw TemplateError.type("separators must be a pair of strings")
            }
            itemSeparator = a
            keySeparator = b
        }
    }

    func dumps(_ value: TemplateValue) throws(TemplateError) -> String {
        var out = ""
        try write(value, into: &out, level: 0)
        return out
    }

    private func newline(_ out: inout String, _ level: Int) {
        guard let indent else { return }
        out += "\n" + String(repeating: indent, count: level)
    }

    private func write(_ value: TemplateValue, into out: inout String, level: Int) throws(TemplateError) {
        guard level < 256 else { throw TemplateError(.limit, "JSON nesting too deep") }
        switch value {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-Infinity" : "Infinity" } else {
                out += TemplateValue.pythonFloatRepr(d)
            }
        case .string(let s): writeString(s, into: &out)
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(&out, level + 1)
                try write(v, into: &out, level: level + 1)
            }
            newline(&out, level)
            out += "]"
        case .object(let o):
            if o.count == 0 { out += "{}"; return }
            out += "{"
            var pairs = Array(o)
            if sortKeys {
                pairs.sort { Array($0.0.unicodeScalars).map(\.value).lexicographicallyPrecedes(Array($1.0.unicodeScalars).map(\.value)) }
            }
            for (i, (k, v)) in pairs.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(&out, level + 1)
                let kv = o.keyValue(k)
                if case .string(let ks) = kv { writeString(ks, into: &out) } else {
                    var ks = ""
                    try write(kv, into: &ks, level: level + 1)
                    writeString(ks, into: &out)
                }
                out += keySeparator
                try write(v, into: &out, level: level + 1)
            }
            newline(&out, level)
            out += "}"
        case .namespace, .function, .undefined:
            let name = value.typeName == "Undefined" ? "Undefined" : value.typeName
            throw TemplateError.type("Object of type \(name) is not JSON serializable")
        }
    }

    private func writeString(_ s: String, into out: inout String) {
        var buf = String.UnicodeScalarView()
        buf.append("\"")
        for c in s.unicodeScalars {
            switch c {
            case "\"": buf.append(contentsOf: "\\\"".unicodeScalars)
            case "\\": buf.append(contentsOf: "\\\\".unicodeScalars)
            case "\n": buf.append(contentsOf: "\\n".unicodeScalars)
            case "\r": buf.append(contentsOf: "\\r".unicodeScalars)
            case "\t": buf.append(contentsOf: "\\t".unicodeScalars)
            case "\u{08}": buf.append(contentsOf: "\\b".unicodeScalars)
            case "\u{0C}": buf.append(contentsOf: "\\f".unicodeScalars)
            default:
                if c.value < 0x20 || (ensureASCII && c.value > 0x7E) {
                    if c.value > 0xFFFF {
                        let v = c.value - 0x10000
                        let hi = 0xD800 + (v >> 10)
                        let lo = 0xDC00 + (v & 0x3FF)
                        buf.append(contentsOf: "\\u\(TemplateValue.hex(hi, 4))\\u\(TemplateValue.hex(lo, 4))".unicodeScalars)
                    } else {
                        buf.append(contentsOf: "\\u\(TemplateValue.hex(c.value, 4))".unicodeScalars)
                    }
                } else {
                    buf.append(c)
                }
            }
        }
        buf.append("\"")
        out += String(buf)
    }
}
