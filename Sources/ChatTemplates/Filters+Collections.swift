/// Collection filters: sorting, mapping, selecting, aggregating.
extension Evaluator {
    /// jinja2 `make_attrgetter`: dotted path, integer parts index sequences.
    func attrGetter(_ item: TemplateValue, _ attribute: TemplateValue) -> TemplateValue {
        if let i = attribute.integer { return getItem(item, .int(i)) }
        var v = item
        for part in attribute.pythonString.split(separator: ".", omittingEmptySubsequences: false) {
            v = Int(part).map { getItem(v, .int($0)) } ?? getItem(v, .string(String(part)))
        }
        return v
    }

    private func sortKey(_ v: TemplateValue, caseSensitive: Bool) -> TemplateValue {
        if !caseSensitive, case .string(let s) = v { return .string(PyString.lower(s)) }
        return v
    }

    /// Stable sort with Python comparison semantics.
    func pySorted(_ items: [TemplateValue], key: (TemplateValue) -> TemplateValue, reverse: Bool) throws(TemplateError) -> [TemplateValue] {
        var failure: TemplateError? = nil
        let keyed = items.map { (key($0), $0) }
        let sorted = keyed.enumerated().sorted { a, b in
            do throws(TemplateError) {
                let c = try a.element.0.pyCompare(b.element.0, op: "<")
                if c == 0 { return a.offset < b.offset }
                return reverse ? c > 0 : c < 0
            } catch {
                failure = error
                return false
            }
        }
        if let failure { throw failure }
        return sorted.map { $0.element.1 }
    }

    private func testSelect(_ value: TemplateValue, _ args: Arguments, attr: Bool, keep: Bool, frame: Frame, line: Int)
        throws(TemplateError) -> TemplateValue
    {
        var rest = args.positional
        var attribute: TemplateValue? = nil
        if attr {
            guard !rest.isEmpty else { throw TemplateError.type("missing attribute argument") }
            attribute = rest.removeFirst()
        }
        let testName = rest.isEmpty ? nil : rest.removeFirst().pythonString
        var out: [TemplateValue] = []
        for item in value.isTruthy ? try iterate(value, line: line) : [] {
            let v = attribute.map { attrGetter(item, $0) } ?? item
            let ok: Bool
            if let testName {
                ok = try applyTest(testName, v, Arguments(positional: rest), frame: frame, line: line)
            } else {
                ok = v.isTruthy
            }
            if ok == keep { out.append(item) }
        }
        return Self.generator(out)
    }

    static func generator(_ items: [TemplateValue]) -> TemplateValue {
        .function(TemplateFunction(name: "generator", kind: .generator(items)))
    }

    func collectionFilter(_ name: String, _ value: TemplateValue, _ args: Arguments, frame: Frame, line: Int)
        throws(TemplateError) -> TemplateValue
    {
        switch name {
        case "first":
            return try iterate(value, line: line).first ?? .undefined
        case "last":
            if case .object = value { throw TemplateError.type("'dict' object is not reversible") }
            if value.typeName == "generator" { throw TemplateError.type("'generator' object is not reversible") }
            return try iterate(value, line: line).last ?? .undefined
        case "list":
            return .array(try iterate(value, line: line))
        case "reverse":
            if case .string(let s) = value { return .string(PyString.string(s.unicodeScalars.reversed())) }
            return .array(try iterate(value, line: line).reversed())
        case "sort":
            let reverse = args.get(0, "reverse").isTruthy
            let cs = args.get(1, "case_sensitive").isTruthy
            let attribute = args.get(2, "attribute", .none)
            return .array(try pySorted(try iterate(value, line: line), key: { v in
                self.sortKey(attribute == .none ? v : self.attrGetter(v, attribute), caseSensitive: cs)
            }, reverse: reverse))
        case "unique":
            let cs = args.get(0, "case_sensitive").isTruthy
            let attribute = args.get(1, "attribute", .none)
            var seen: [TemplateValue] = []
            var out: [TemplateValue] = []
            for item in try iterate(value, line: line) {
                let k = sortKey(attribute == .none ? item : attrGetter(item, attribute), caseSensitive: cs)
                if !seen.contains(where: { $0.pyEquals(k) }) {
                    seen.append(k)
                    out.append(item)
                }
            }
            return .array(out)
        case "map":
            let items = value.isTruthy ? try iterate(value, line: line) : []
            if let attribute = args.kw("attribute") {
                let def = args.kw("default")
                return Self.generator(items.map { item in
                    let v = attrGetter(item, attribute)
                    if case .undefined = v, let def { return def }
                    return v
                })
            }
            guard let fname = args.positional.first?.pythonString else { return Self.generator(items) }
            var out: [TemplateValue] = []
            for item in items { out.append(try applyFilter(fname, item, args.dropping(1), frame: frame, line: line)) }
            return Self.generator(out)
        case "select", "reject":
            return try testSelect(value, args, attr: false, keep: name == "select", frame: frame, line: line)
        case "selectattr", "rejectattr":
            return try testSelect(value, args, attr: true, keep: name == "selectattr", frame: frame, line: line)
        case "items":
            if case .undefined = value { return .array([]) }
            guard case .object(let o) = value else { throw TemplateError.type("Can only get item pairs from a mapping.") }
            return .array(o.map { .array([o.keyValue($0.0), $0.1]) })
        case "dictsort":
            guard case .object(let o) = value else { throw TemplateError.type("'\(value.typeName)' object has no attribute 'items'") }
            let cs = args.get(0, "case_sensitive").isTruthy
            let byValue = args.get(1, "by", .string("key")).pythonString == "value"
            let reverse = args.get(2, "reverse").isTruthy
            let pairs: [TemplateValue] = o.map { .array([o.keyValue($0.0), $0.1]) }
            return .array(try pySorted(pairs, key: { p in
                guard case .array(let kv) = p, kv.count == 2 else { return p }
                return self.sortKey(byValue ? kv[1] : kv[0], caseSensitive: cs)
            }, reverse: reverse))
        case "join":
            let sep = args.get(0, "d", .string("")).pythonString
            let attribute = args.get(1, "attribute", .none)
            let items = try iterate(value, line: line)
            return .string(items.map { (attribute == .none ? $0 : attrGetter($0, attribute)).pythonString }.joined(separator: sep))
        case "batch":
            let n = try args.get(0, "linecount").intArg("batch")
            guard n > 0 else { throw TemplateError.type("batch size must be positive") }
            let fill = args.get(1, "fill_with", .none)
            var out: [TemplateValue] = []
            var cur: [TemplateValue] = []
            for item in try iterate(value, line: line) {
                cur.append(item)
                if cur.count == n { out.append(.array(cur)); cur = [] }
            }
            if !cur.isEmpty {
                if fill != .none { while cur.count < n { cur.append(fill) } }
                out.append(.array(cur))
            }
            return .array(out)
        case "slice":
            let slices = try args.get(0, "slices").intArg("slice")
            guard slices > 0 else { throw TemplateError.type("slices must be positive") }
            let fill = args.get(1, "fill_with", .none)
            let seq = try iterate(value, line: line)
            let per = seq.count / slices
            let extra = seq.count % slices
            var offset = 0
            var out: [TemplateValue] = []
            for i in 0..<slices {
                let start = offset + i * per
                if i < extra { offset += 1 }
                let end = offset + (i + 1) * per
                var part = Array(seq[min(start, seq.count)..<min(end, seq.count)])
                if fill != .none, i >= extra { part.append(fill) }
                out.append(.array(part))
            }
            return .array(out)
        case "sum":
            let attribute = args.get(0, "attribute", .none)
            var total = args.get(1, "start", .int(0))
            for item in try iterate(value, line: line) {
                total = try binary("+", total, attribute == .none ? item : attrGetter(item, attribute))
            }
            return total
        case "min", "max":
            let cs = args.get(0, "case_sensitive").isTruthy
            let attribute = args.get(1, "attribute", .none)
            let items = try iterate(value, line: line)
            let sorted = try pySorted(items, key: { v in
                self.sortKey(attribute == .none ? v : self.attrGetter(v, attribute), caseSensitive: cs)
            }, reverse: false)
            return (name == "min" ? sorted.first : sorted.last) ?? .undefined
        case "groupby":
            let attribute = args.get(0, "attribute")
            let items = try pySorted(try iterate(value, line: line), key: { self.attrGetter($0, attribute) }, reverse: false)
            var groups: [TemplateValue] = []
            var curKey: TemplateValue? = nil
            var cur: [TemplateValue] = []
            for item in items {
                let k = attrGetter(item, attribute)
                if let ck = curKey, ck.pyEquals(k) { cur.append(item); continue }
                if let ck = curKey { groups.append(.array([ck, .array(cur)])) }
                curKey = k
                cur = [item]
            }
            if let ck = curKey { groups.append(.array([ck, .array(cur)])) }
            return .array(groups)
        default:
            throw TemplateError(.runtime, "No filter named '\(name)'.", line: line)
        }
    }
}
