/// Python methods of `str`, `dict` and `list` callable from templates.
extension Evaluator {
    func callMethod(_ recv: TemplateValue, _ name: String, _ args: Arguments) throws(TemplateError) -> TemplateValue {
        switch recv {
        case .string(let s): return try callStringMethod(s, name, args)
        case .object(let o): return try callDictMethod(o, name, args)
        case .array(let a): return try callListMethod(a, name, args)
        default: throw TemplateError.runtime("'\(recv.typeName)' object has no attribute '\(name)'")
        }
    }

    private func optString(_ v: TemplateValue, _ what: String) throws(TemplateError) -> String? {
        switch v {
        case .none, .undefined: return nil
        default: return try v.stringArg(what)
        }
    }

    private func optInt(_ v: TemplateValue, _ what: String) throws(TemplateError) -> Int? {
        switch v {
        case .none, .undefined: return nil
        default: return try v.intArg(what)
        }
    }

    func callStringMethod(_ s: String, _ name: String, _ args: Arguments) throws(TemplateError) -> TemplateValue {
        let a0 = args.get(0, "")
        switch name {
        case "strip", "lstrip", "rstrip":
            let chars = try optString(args.get(0, "chars"), name)
            return .string(PyString.strip(s, chars, left: name != "rstrip", right: name != "lstrip"))
        case "split", "rsplit":
            let sep = try optString(args.get(0, "sep"), name)
            let maxsplit = try optInt(args.get(1, "maxsplit"), name) ?? -1
            let parts = name == "split"
                ? try PyString.split(s, sep: sep, maxsplit: maxsplit)
                : try PyString.rsplit(s, sep: sep, maxsplit: maxsplit)
            return .array(parts.map { .string($0) })
        case "splitlines":
            return .array(PyString.splitlines(s, keepends: args.get(0, "keepends").isTruthy).map { .string($0) })
        case "startswith", "endswith":
            let sc = PyString.scalars(s)
            let start = try optInt(args.get(1, "start"), name) ?? 0
            let end = try optInt(args.get(2, "end"), name) ?? sc.count
            let idx = Self.sliceIndices(sc.count, start, end, 1)
            let sub = Array(idx.map { sc[$0] })
            var candidates: [String] = []
            if case .array(let arr) = a0 {
                for x in arr { candidates.append(try x.stringArg(name)) }
            } else {
                candidates = [try a0.stringArg(name)]
            }
            for c in candidates {
                let p = PyString.scalars(c)
                if name == "startswith" ? sub.starts(with: p) : sub.reversed().starts(with: p.reversed()) {
                    return .bool(true)
                }
            }
            return .bool(false)
        case "upper": return .string(PyString.upper(s))
        case "lower", "casefold": return .string(PyString.lower(s))
        case "title": return .string(PyString.title(s))
        case "capitalize": return .string(PyString.capitalize(s))
        case "swapcase":
            return .string(s.unicodeScalars.map { c in
                let t = String(c)
                return c.properties.isLowercase ? t.uppercased() : t.lowercased()
            }.joined())
        case "replace":
            let count = try optInt(args.get(2, "count"), name) ?? -1
            return .string(PyString.replace(s, try a0.stringArg(name), try args.get(1, "new").stringArg(name), count: count))
        case "find", "rfind", "index", "rindex":
            let sc = PyString.scalars(s)
            let sub = PyString.scalars(try a0.stringArg(name))
            var start = try optInt(args.get(1, "start"), name) ?? 0
            var end = try optInt(args.get(2, "end"), name) ?? sc.count
            if start < 0 { start = max(0, start + sc.count) }
            if end < 0 { end = max(0, end + sc.count) }
            let r = name.hasPrefix("r") ? PyString.rfind(sc, sub, from: start, to: end) : PyString.find(sc, sub, from: start, to: end)
            if let r { return .int(r) }
            if name.hasSuffix("index") { throw TemplateError.type("substring not found") }
            return .int(-1)
        case "count":
            return .int(PyString.count(s, try a0.stringArg(name)))
        case "join":
            var parts: [String] = []
            for v in try iterate(a0, line: nil) {
                guard case .string(let p) = v else {
                    throw TemplateError.type("sequence item: expected str instance, \(v.typeName) found")
                }
                parts.append(p)
            }
            return .string(parts.joined(separator: s))
        case "format":
            return .string(try PyFormat.format(s, args))
        case "isdigit", "isdecimal", "isnumeric":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType != nil })
        case "isalpha": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
        case "isalnum":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
        case "isspace": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(PyString.isSpace))
        case "isupper", "islower":
            let cased = s.unicodeScalars.filter { $0.properties.isCased }
            guard !cased.isEmpty else { return .bool(false) }
            return .bool(name == "isupper" ? s == s.uppercased() : s == s.lowercased())
        case "istitle": return .bool(!s.isEmpty && PyString.title(s) == s)
        case "center", "ljust", "rjust":
            let width = try a0.intArg(name)
            let fill = try optString(args.get(1, "fillchar"), name) ?? " "
            let len = s.unicodeScalars.count
            guard width > len else { return .string(s) }
            let pad = String(repeating: fill, count: width - len)
            if name == "ljust" { return .string(s + pad) }
            if name == "rjust" { return .string(pad + s) }
            return .string(PyString.center(s, width: width, fill: fill))
        case "zfill":
            let width = try a0.intArg(name)
            let len = s.unicodeScalars.count
            guard width > len else { return .string(s) }
            let zeros = String(repeating: "0", count: width - len)
            if let f = s.first, f == "-" || f == "+" { return .string(String(f) + zeros + s.dropFirst()) }
            return .string(zeros + s)
        case "partition", "rpartition":
            let sc = PyString.scalars(s)
            let sep = PyString.scalars(try a0.stringArg(name))
            guard !sep.isEmpty else { throw TemplateError.type("empty separator") }
            let k = name == "partition" ? PyString.find(sc, sep, from: 0) : PyString.rfind(sc, sep)
            guard let k else {
                return name == "partition" ? .array([.string(s), "", ""]) : .array(["", "", .string(s)])
            }
            return .array([.string(PyString.string(sc[..<k])), .string(PyString.string(sep)),
                           .string(PyString.string(sc[(k + sep.count)...]))])
        case "removeprefix":
            let p = try a0.stringArg(name)
            return .string(s.unicodeScalars.starts(with: p.unicodeScalars) ? PyString.string(s.unicodeScalars.dropFirst(p.unicodeScalars.count)) : s)
        case "removesuffix":
            let p = try a0.stringArg(name)
            let sc = PyString.scalars(s)
            let ps = PyString.scalars(p)
            return .string(!ps.isEmpty && sc.reversed().starts(with: ps.reversed()) ? PyString.string(sc.dropLast(ps.count)) : s)
        case "expandtabs":
            return .string(PyString.replace(s, "\t", String(repeating: " ", count: try optInt(a0, name) ?? 8), count: -1))
        default:
            throw TemplateError.runtime("'str' object has no attribute '\(name)'")
        }
    }

    func callDictMethod(_ o: OrderedObject, _ name: String, _ args: Arguments) throws(TemplateError) -> TemplateValue {
        switch name {
        case "items": return .array(o.map { .array([o.keyValue($0.0), $0.1]) })
        case "keys": return .array(o.keys.map { o.keyValue($0) })
        case "values": return .array(o.values)
        case "copy": return .object(o)
        case "get":
            let key = args.get(0, "key")
            return o[OrderedObject.encodeKey(key)] ?? args.get(1, "default", .none)
        default: throw TemplateError.runtime("'dict' object has no attribute '\(name)'")
        }
    }

    func callListMethod(_ a: [TemplateValue], _ name: String, _ args: Arguments) throws(TemplateError) -> TemplateValue {
        let x = args.get(0, "value")
        switch name {
        case "index":
            guard let i = a.firstIndex(where: { $0.pyEquals(x) }) else { throw TemplateError.type("\(x.pythonRepr) is not in list") }
            return .int(i)
        case "count": return .int(a.filter { $0.pyEquals(x) }.count)
        case "copy": return .array(a)
        default: throw TemplateError.runtime("'list' object has no attribute '\(name)'")
        }
    }
}

extension PyFormat {
    /// Python `str.format` with `{}`, `{0}`, `{name}`, `!r`/`!s` and `{{`/`}}` escapes (format specs
    /// support fill/align/width only).
    static func format(_ fmt: String, _ args: Arguments) throws(TemplateError) -> String {
        let sc = Array(fmt.unicodeScalars)
        var out = String.UnicodeScalarView()
        var auto = 0
        var i = 0
        while i < sc.count {
            let c = sc[i]
            if c == "{", i + 1 < sc.count, sc[i + 1] == "{" { out.append("{"); i += 2; continue }
            if c == "}", i + 1 < sc.count, sc[i + 1] == "}" { out.append("}"); i += 2; continue }
            guard c == "{" else { out.append(c); i += 1; continue }
            var j = i + 1
            var field = String.UnicodeScalarView()
            while j < sc.count, sc[j] != "}" { field.append(sc[j]); j += 1 }
            guard j < sc.count else { throw TemplateError.type("Single '{' encountered in format string") }
            i = j + 1
            var spec = ""
            var conv: Character? = nil
            var name = String(field)
            if let colon = name.firstIndex(of: ":") {
                spec = String(name[name.index(after: colon)...])
                name = String(name[..<colon])
            }
            if let bang = name.firstIndex(of: "!") {
                conv = name[name.index(after: bang)...].first
                name = String(name[..<bang])
            }
            let value: TemplateValue
            if name.isEmpty {
                value = args.get(auto, "\u{0}")
                auto += 1
            } else if let n = Int(name) {
                value = args.get(n, "\u{0}")
            } else {
                value = args.kw(name) ?? .undefined
            }
            if case .undefined = value { throw TemplateError.type("format: missing argument '\(name)'") }
            var text = conv == "r" ? value.pythonRepr : value.pythonString
            if !spec.isEmpty {
                var align: Character = value.numeric != nil && conv == nil ? ">" : "<"
                var fill: Character = " "
                var rest = Substring(spec)
                if rest.count >= 2, let a = rest.dropFirst().first, "<>^".contains(a) {
                    fill = rest.first ?? " "
                    align = a
                    rest = rest.dropFirst(2)
                } else if let a = rest.first, "<>^".contains(a) {
                    align = a
                    rest = rest.dropFirst()
                }
                let width = Int(rest) ?? 0
                let len = text.unicodeScalars.count
                if width > len {
                    let pad = width - len
                    switch align {
                    case "<": text += String(repeating: fill, count: pad)
                    case ">": text = String(repeating: fill, count: pad) + text
                    default:
                        text = String(repeating: fill, count: pad / 2) + text + String(repeating: fill, count: pad - pad / 2)
                    }
                }
            }
            out.append(contentsOf: text.unicodeScalars)
        }
        return String(out)
    }
}
