import Foundation

/// Python arithmetic operators.
extension Evaluator {
    func binary(_ op: String, _ a: TemplateValue, _ b: TemplateValue) throws(TemplateError) -> TemplateValue {
        if case .undefined = a { throw TemplateError(.undefined, "undefined value in arithmetic") }
        if case .undefined = b { throw TemplateError(.undefined, "undefined value in arithmetic") }
        func unsupported() -> TemplateError {
            TemplateError.type("unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
        }
        // Integer arithmetic (bool counts as int).
        if let x = a.integer, let y = b.integer {
            switch op {
            case "+": return try checked(x.addingReportingOverflow(y))
            case "-": return try checked(x.subtractingReportingOverflow(y))
            case "*": return try checked(x.multipliedReportingOverflow(by: y))
            case "/":
                guard y != 0 else { throw TemplateError.type("division by zero") }
                return .double(Double(x) / Double(y))
            case "//":
                guard y != 0 else { throw TemplateError.type("integer division or modulo by zero") }
                let q = x / y
                return .int((x % y != 0 && ((x < 0) != (y < 0))) ? q - 1 : q)
            case "%":
                guard y != 0 else { throw TemplateError.type("integer division or modulo by zero") }
                let m = x % y
                return .int(m != 0 && ((m < 0) != (y < 0)) ? m + y : m)
            case "**":
                if y < 0 { return .double(pow(Double(x), Double(y))) }
                var result = 1
                var base = x
                var e = y
                while e > 0 {
                    if e & 1 == 1 { result = try checkedInt(result.multipliedReportingOverflow(by: base)) }
                    e >>= 1
                    if e > 0 { base = try checkedInt(base.multipliedReportingOverflow(by: base)) }
                }
                return .int(result)
            default: throw unsupported()
            }
        }
        if let x = a.numeric, let y = b.numeric {
            switch op {
            case "+": return .double(x + y)
            case "-": return .double(x - y)
            case "*": return .double(x * y)
            case "/":
                guard y != 0 else { throw TemplateError.type("float division by zero") }
                return .double(x / y)
            case "//":
                guard y != 0 else { throw TemplateError.type("float floor division by zero") }
                return .double((x / y).rounded(.down))
            case "%":
                guard y != 0 else { throw TemplateError.type("float modulo") }
                let m = fmod(x, y)
                return .double(m != 0 && ((m < 0) != (y < 0)) ? m + y : m)
            case "**": return .double(pow(x, y))
            default: throw unsupported()
            }
        }
        switch (op, a, b) {
        case ("+", .string(let x), .string(let y)): return .string(x + y)
        case ("+", .array(let x), .array(let y)): return .array(x + y)
        case ("*", .string(let s), _), ("*", _, .string(let s)):
            guard let n = (a.integer ?? b.integer) else { throw unsupported() }
            guard n > 0 else { return .string("") }
            guard n.multipliedReportingOverflow(by: s.utf8.count).partialValue < Self.maxOutput else {
                throw TemplateError(.limit, "string repetition too large")
            }
            return .string(String(repeating: s, count: n))
        case ("*", .array(let arr), _), ("*", _, .array(let arr)):
            guard let n = (a.integer ?? b.integer) else { throw unsupported() }
            guard n > 0 else { return .array([]) }
            guard n.multipliedReportingOverflow(by: arr.count).partialValue < 10_000_000 else {
                throw TemplateError(.limit, "list repetition too large")
            }
            return .array(Array([[TemplateValue]](repeating: arr, count: n).joined()))
        case ("%", .string(let fmt), _):
            return .string(try PyFormat.percent(fmt, b))
        default:
            throw unsupported()
        }
    }

    private func checked(_ r: (partialValue: Int, overflow: Bool)) throws(TemplateError) -> TemplateValue {
        .int(try checkedInt(r))
    }

    private func checkedInt(_ r: (partialValue: Int, overflow: Bool)) throws(TemplateError) -> Int {
        if r.overflow { throw TemplateError(.limit, "integer overflow (64-bit)") }
        return r.partialValue
    }
}

/// Python string formatting (`%` operator and `str.format`).
enum PyFormat {
    /// `fmt % args` with %s, %r, %d, %i, %f, %x, %% and simple width/precision.
    static func percent(_ fmt: String, _ args: TemplateValue) throws(TemplateError) -> String {
        var values: [TemplateValue]
        var mapping: OrderedObject? = nil
        switch args {
        case .array(let a): values = a
        case .object(let o): values = [args]; mapping = o
        default: values = [args]
        }
        var out = ""
        var idx = 0
        let chars = Array(fmt.unicodeScalars)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            guard c == "%" else { out.unicodeScalars.append(c); i += 1; continue }
            i += 1
            guard i < chars.count else { throw TemplateError.type("incomplete format") }
            var key: String? = nil
            if chars[i] == "(" {
                var j = i + 1
                var name = String.UnicodeScalarView()
                while j < chars.count, chars[j] != ")" { name.append(chars[j]); j += 1 }
                key = String(name)
                i = j + 1
            }
            var spec = ""
            while i < chars.count, "-+ #0123456789.".unicodeScalars.contains(chars[i]) {
                spec.unicodeScalars.append(chars[i])
                i += 1
            }
            guard i < chars.count else { throw TemplateError.type("incomplete format") }
            let conv = chars[i]
            i += 1
            if conv == "%" { out += "%"; continue }
            let v: TemplateValue
            if let key {
                guard let m = mapping?[key] else { throw TemplateError.type("format requires a mapping") }
                v = m
            } else {
                guard idx < values.count else { throw TemplateError.type("not enough arguments for format string") }
                v = values[idx]
                idx += 1
            }
            out += try formatOne(v, spec: spec, conv: conv)
        }
        if mapping == nil, idx < values.count {
            throw TemplateError.type("not all arguments converted during string formatting")
        }
        return out
    }

    static func formatOne(_ v: TemplateValue, spec: String, conv: Unicode.Scalar) throws(TemplateError) -> String {
        var leftAlign = false
        var zeroPad = false
        var plus = false
        var rest = Substring(spec)
        while let f = rest.first, "-+ #0".contains(f) {
            if f == "-" { leftAlign = true }
            if f == "0" { zeroPad = true }
            if f == "+" { plus = true }
            rest = rest.dropFirst()
        }
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
        let width = Int(parts.first ?? "") ?? 0
        let precision = parts.count > 1 ? Int(parts[1]) ?? 0 : nil
        var body: String
        switch conv {
        case "s": body = v.pythonString
        case "r": body = v.pythonRepr
        case "d", "i":
            guard let n = v.numeric else { throw TemplateError.type("%d format: a real number is required, not \(v.typeName)") }
            body = String(Int(n.rounded(.towardZero)))
            if plus, n >= 0 { body = "+" + body }
        case "f", "F", "e", "g":
            guard let n = v.numeric else { throw TemplateError.type("must be real number, not \(v.typeName)") }
            body = String(format: "%\(plus ? "+" : "").\(precision ?? 6)\(Character(conv))", n)
        case "x", "X", "o":
            guard let n = v.integer else { throw TemplateError.type("%x format: an integer is required") }
            body = String(n, radix: conv == "o" ? 8 : 16, uppercase: conv == "X")
        default:
            throw TemplateError.type("unsupported format character '\(conv)'")
        }
        if conv == "s" || conv == "r", let precision { body = String(body.unicodeScalars.prefix(precision).map(Character.init)) }
        let len = body.unicodeScalars.count
        if len < width {
            let pad = width - len
            if leftAlign {
                body += String(repeating: " ", count: pad)
            } else if zeroPad, conv != "s", conv != "r" {
                let neg = body.hasPrefix("-") || body.hasPrefix("+")
                let sign = neg ? String(body.prefix(1)) : ""
                body = sign + String(repeating: "0", count: pad) + body.dropFirst(neg ? 1 : 0)
            } else {
                body = String(repeating: " ", count: pad) + body
            }
        }
        return body
    }
}
