import Foundation

/// jinja2's builtin filters (string and scalar filters; collection filters live in Filters+Collections).
extension Evaluator {
    static let filterNames: Set<String> = [
        "length", "count", "upper", "lower", "title", "capitalize", "trim", "replace", "join", "default", "d",
        "first", "last", "list", "string", "int", "float", "abs", "round", "reverse", "sort", "unique", "map",
        "select", "reject", "selectattr", "rejectattr", "items", "dictsort", "tojson", "indent", "safe", "escape",
        "e", "forceescape", "wordcount", "center", "batch", "slice", "sum", "min", "max", "striptags", "format",
        "truncate", "attr", "groupby", "pprint",
    ]

    func applyFilter(_ name: String, _ value: TemplateValue, _ args: Arguments, frame: Frame, line: Int)
        throws(TemplateError) -> TemplateValue
    {
        do throws(TemplateError) {
            return try filter(name, value, args, frame: frame, line: line)
        } catch {
            var err = error
            if err.line == nil, err.code != .raised { err.line = line }
            throw err
        }
    }

    private func filter(_ name: String, _ value: TemplateValue, _ args: Arguments, frame: Frame, line: Int)
        throws(TemplateError) -> TemplateValue
    {
        let str = value.pythonString
        switch name {
        case "length", "count":
            switch value {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .array(let a): return .int(a.count)
            case .object(let o): return .int(o.count)
            case .undefined: return .int(0)
            default: throw TemplateError.type("object of type '\(value.typeName)' has no len()")
            }
        case "upper": return .string(PyString.upper(str))
        case "lower": return .string(PyString.lower(str))
        case "capitalize": return .string(PyString.capitalize(str))
        case "title": return .string(Self.jinjaTitle(str))
        case "trim":
            let chars = args.get(0, "chars")
            let set: String? = { if case .string(let c) = chars { return c } else { return nil } }()
            return .string(PyString.strip(str, set, left: true, right: true))
        case "replace":
            let count = args.get(2, "count")
            return .string(PyString.replace(str, args.get(0, "old").pythonString, args.get(1, "new").pythonString,
                                            count: count.integer ?? -1))
        case "default", "d":
            let def = args.get(0, "default_value", .string(""))
            let boolean = args.get(1, "boolean").isTruthy
            if case .undefined = value { return def }
            if boolean, !value.isTruthy { return def }
            return value
        case "string": return .string(str)
        case "safe": return .string(str)
        case "escape", "e", "forceescape": return .string(Self.htmlEscape(str))
        case "int":
            let def = args.get(0, "default", .int(0))
            let base = try args.get(1, "base", .int(10)).intArg("int")
            switch value {
            case .int, .bool: return .int(value.integer ?? 0)
            case .double(let d):
                guard d.isFinite, abs(d) < 9.2e18 else { return def }
                return .int(Int(d.rounded(.towardZero)))
            case .string(let s):
                let t = PyString.strip(s, nil, left: true, right: true).replacingOccurrences(of: "_", with: "")
                var body = Substring(t)
                var sign = 1
                if body.first == "-" || body.first == "+" { sign = body.first == "-" ? -1 : 1; body = body.dropFirst() }
                if base == 16, body.lowercased().hasPrefix("0x") { body = body.dropFirst(2) }
                if let i = Int(body, radix: base), !body.isEmpty { return .int(sign * i) }
                if let d = Self.pyFloat(s), d.isFinite, abs(d) < 9.2e18 { return .int(Int(d.rounded(.towardZero))) }
                return def
            default: return def
            }
        case "float":
            let def = args.get(0, "default", .double(0))
            switch value {
            case .int, .bool, .double: return .double(value.numeric ?? 0)
            case .string(let s): return Self.pyFloat(s).map { .double($0) } ?? def
            default: return def
            }
        case "abs":
            switch value {
            case .int(let i): return .int(abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return .double(abs(d))
            default: throw TemplateError.type("bad operand type for abs(): '\(value.typeName)'")
            }
        case "round":
            let precision = try args.get(0, "precision", .int(0)).intArg("round")
            let method = args.get(1, "method", .string("common")).pythonString
            guard let x = value.numeric else { throw TemplateError.type("type \(value.typeName) doesn't define __round__ method") }
            if method == "common", value.integer != nil, case .int = value { return value }
            let scale = pow(10.0, Double(precision))
            switch method {
            case "ceil": return .double((x * scale).rounded(.up) / scale)
            case "floor": return .double((x * scale).rounded(.down) / scale)
            default:
                if precision == 0 { return .double(x.rounded(.toNearestOrEven)) }
                return .double(Double(String(format: "%.\(max(0, precision))f", x)) ?? x)
            }
        case "tojson":
            let writer = try JSONWriter(
                ensureASCII: args.get(0, "ensure_ascii", .bool(false)).isTruthy, indent: args.get(1, "indent", .none),
                separators: args.get(2, "separators", .none), sortKeys: args.get(3, "sort_keys").isTruthy)
            return .string(try writer.dumps(value))
        case "indent":
            return .string(try Self.indent(str, args))
        case "wordcount":
            var n = 0
            var inWord = false
            for c in str.unicodeScalars {
                let w = c.properties.isAlphabetic || c.properties.numericType != nil || c == "_"
                if w, !inWord { n += 1 }
                inWord = w
            }
            return .int(n)
        case "center":
            return .string(PyString.center(str, width: try args.get(0, "width", .int(80)).intArg("center")))
        case "striptags":
            var out = ""
            var inTag = false
            for ch in str {
                if ch == "<" { inTag = true } else if ch == ">" && inTag { inTag = false } else if !inTag { out.append(ch) }
            }
            return .string(try PyString.split(out, sep: nil, maxsplit: -1).joined(separator: " "))
        case "format":
            if !args.keyword.isEmpty {
                return .string(try PyFormat.percent(str, .object(OrderedObject(args.keyword))))
            }
            return .string(try PyFormat.percent(str, .array(args.positional)))
        case "truncate":
            let length = try args.get(0, "length", .int(255)).intArg("truncate")
            let killwords = args.get(1, "killwords").isTruthy
            let end = args.get(2, "end", .string("...")).pythonString
            let leewayArg = args.get(3, "leeway", .none)
            let leeway = leewayArg == .none ? 5 : try leewayArg.intArg("truncate")
            let sc = PyString.scalars(str)
            if sc.count <= length + leeway { return .string(str) }
            let cut = PyString.string(sc.prefix(max(0, length - end.unicodeScalars.count)))
            if killwords { return .string(cut + end) }
            return .string((try PyString.rsplit(cut, sep: " ", maxsplit: 1).first ?? "") + end)
        case "attr":
            let n = args.get(0, "name").pythonString
            if case .object = value { return Self.dictMethods.contains(n) ? getAttr(value, n) : .undefined }
            return getAttr(value, n)
        case "pprint":
            return .string(value.pythonRepr)
        default:
            return try collectionFilter(name, value, args, frame: frame, line: line)
        }
    }

    /// jinja2's `title` filter (capitalizes after `-`, whitespace and opening brackets).
    static func jinjaTitle(_ s: String) -> String {
        var out = ""
        var atStart = true
        for c in s.unicodeScalars {
            let isDelim = c == "-" || c == "(" || c == "{" || c == "[" || c == "<" || PyString.isSpace(c)
            if isDelim {
                out.unicodeScalars.append(c)
                atStart = true
            } else {
                out += atStart ? String(c).uppercased() : String(c).lowercased()
                atStart = false
            }
        }
        return out
    }

    static func htmlEscape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Python `float(str)`.
    static func pyFloat(_ s: String) -> Double? {
        let t = PyString.strip(s, nil, left: true, right: true).replacingOccurrences(of: "_", with: "").lowercased()
        switch t {
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        case "nan", "+nan", "-nan": return .nan
        default:
            guard !t.isEmpty, t.allSatisfy({ "0123456789.e+-".contains($0) }) else { return nil }
            return Double(t)
        }
    }

    /// jinja2 `indent(width=4, first=False, blank=False)`.
    static func indent(_ s: String, _ args: Arguments) throws(TemplateError) -> String {
        let widthArg = args.get(0, "width", .int(4))
        let indention: String
        if case .string(let w) = widthArg { indention = w } else { indention = String(repeating: " ", count: max(0, try widthArg.intArg("indent"))) }
        let first = args.get(1, "first").isTruthy
        let blank = args.get(2, "blank").isTruthy
        let text = s + "\n"
        var rv: String
        if blank {
            rv = PyString.splitlines(text, keepends: false).joined(separator: "\n" + indention)
        } else {
            var lines = PyString.splitlines(text, keepends: false)
            rv = lines.isEmpty ? "" : lines.removeFirst()
            if !lines.isEmpty {
                rv += "\n" + lines.map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n")
            }
        }
        if first { rv = indention + rv }
        return rv
    }
}
