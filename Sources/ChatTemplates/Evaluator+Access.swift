import Foundation

/// Attribute / item access, slicing and calls (jinja2 `getattr`/`getitem` semantics under
/// `ImmutableSandboxedEnvironment`).
extension Evaluator {
    static let stringMethods: Set<String> = [
        "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "upper", "lower",
        "title", "capitalize", "swapcase", "casefold", "replace", "find", "rfind", "index", "rindex", "count",
        "join", "format", "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower", "isnumeric",
        "isdecimal", "istitle", "center", "ljust", "rjust", "zfill", "partition", "rpartition", "removeprefix",
        "removesuffix", "expandtabs",
    ]
    static let dictMethods: Set<String> = ["items", "keys", "values", "get", "copy"]
    static let dictUnsafe: Set<String> = ["pop", "popitem", "setdefault", "update", "clear", "fromkeys"]
    static let listMethods: Set<String> = ["index", "count", "copy"]
    static let listUnsafe: Set<String> = ["append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"]

    private func method(_ receiver: TemplateValue, _ name: String) -> TemplateValue {
        .function(TemplateFunction(name: name, kind: .method(receiver, name)))
    }

    private func unsafe(_ type: String, _ name: String) -> TemplateValue {
        .function(TemplateFunction(name: name, kind: .unsafeMethod(type, name)))
    }

    /// `obj.name`: Python attribute first, then item.
    func getAttr(_ obj: TemplateValue, _ name: String) -> TemplateValue {
        if name.hasPrefix("_") {
            // Sandbox: underscore attributes are never Python attributes; dict keys still resolve.
            if case .object(let o) = obj { return o[name] ?? .undefined }
            return .undefined
        }
        switch obj {
        case .object(let o):
            if Self.dictMethods.contains(name) { return method(obj, name) }
            if Self.dictUnsafe.contains(name) { return unsafe("dict", name) }
            return o[name] ?? .undefined
        case .array:
            if Self.listMethods.contains(name) { return method(obj, name) }
            if Self.listUnsafe.contains(name) { return unsafe("list", name) }
            return .undefined
        case .string:
            return Self.stringMethods.contains(name) ? method(obj, name) : .undefined
        case .namespace(let ns):
            return ns.attributes[name] ?? .undefined
        default:
            return .undefined
        }
    }

    /// `obj[key]`: item first, then attribute for string keys.
    func getItem(_ obj: TemplateValue, _ key: TemplateValue) -> TemplateValue {
        switch (obj, key) {
        case (.object(let o), _):
            if let v = o[OrderedObject.encodeKey(key)] { return v }
        case (.array(let a), _):
            if let i = key.integer {
                let j = i < 0 ? i + a.count : i
                return j >= 0 && j < a.count ? a[j] : .undefined
            }
        case (.string(let s), _):
            if let i = key.integer {
                let scalars = Array(s.unicodeScalars)
                let j = i < 0 ? i + scalars.count : i
                return j >= 0 && j < scalars.count ? .string(String(scalars[j])) : .undefined
            }
        case (.namespace(let ns), .string(let k)):
            return ns.attributes[k] ?? .undefined
        default: break
        }
        if case .string(let k) = key { return getAttr(obj, k) }
        return .undefined
    }

    /// Python slice indices for a sequence of length `n`.
    static func sliceIndices(_ n: Int, _ start: Int?, _ stop: Int?, _ step: Int) -> [Int] {
        var result: [Int] = []
        if step > 0 {
            func clamp(_ v: Int) -> Int { v < 0 ? max(0, v + n) : min(v, n) }
            var i = start.map(clamp) ?? 0
            let end = stop.map(clamp) ?? n
            while i < end { result.append(i); i += step }
        } else {
            func clamp(_ v: Int) -> Int { v < 0 ? max(-1, v + n) : min(v, n - 1) }
            var i = start.map(clamp) ?? n - 1
            let end = stop.map(clamp) ?? -1
            while i > end { result.append(i); i += step }
        }
        return result
    }

    func slice(_ obj: TemplateValue, _ start: TemplateValue?, _ stop: TemplateValue?, _ step: TemplateValue?,
               line: Int) throws(TemplateError) -> TemplateValue {
        func idx(_ v: TemplateValue?) throws(TemplateError) -> Int? {
            guard let v else { return nil }
            if case .none = v { return nil }
            guard let i = v.integer else {
                throw TemplateError(.type, "slice indices must be integers or None", line: line)
            }
            return i
        }
        let st = try idx(step) ?? 1
        guard st != 0 else { throw TemplateError(.type, "slice step cannot be zero", line: line) }
        switch obj {
        case .array(let a):
            return .array(Self.sliceIndices(a.count, try idx(start), try idx(stop), st).map { a[$0] })
        case .string(let s):
            let sc = Array(s.unicodeScalars)
            var v = String.UnicodeScalarView()
            for i in Self.sliceIndices(sc.count, try idx(start), try idx(stop), st) { v.append(sc[i]) }
            return .string(String(v))
        default:
            return .undefined
        }
    }

    /// Calls a callable value.
    func callValue(_ f: TemplateValue, _ args: Arguments, frame: Frame, line: Int) throws(TemplateError) -> TemplateValue {
        guard case .function(let fn) = f else {
            if case .object(let o) = f, let call = o["__call__"] { return try callValue(call, args, frame: frame, line: line) }
            if case .undefined = f { throw TemplateError(.undefined, "undefined value is not callable", line: line) }
            throw TemplateError(.type, "'\(f.typeName)' object is not callable", line: line)
        }
        do throws(TemplateError) {
            switch fn.kind {
            case .macro(let def, let closure):
                return try callMacro(def, closure: closure, args, line: line)
            case .builtin(let name):
                return try callBuiltin(name, args)
            case .method(let recv, let name):
                return try callMethod(recv, name, args)
            case .unsafeMethod(let type, let name):
                throw TemplateError(.security, "access to attribute '\(name)' of '\(type)' object is unsafe.")
            case .loopCycle(let i):
                guard !args.positional.isEmpty else { throw TemplateError.type("no items for cycling given") }
                return args.positional[i % args.positional.count]
            case .generator:
                throw TemplateError.type("'generator' object is not callable")
            case .recursiveLoop(let node, let outer, let d):
                let saved = out
                out = ""
                defer { out = saved }
                try enter(line: line)
                defer { depth -= 1 }
                try renderFor(node, in: outer, iterable: args.get(0, "iterable"), depth: d + 1)
                return .string(out)
            }
        } catch {
            var err = error
            if err.line == nil, err.code != .raised { err.line = line }
            throw err
        }
    }

    func callMacro(_ def: MacroDef, closure: Frame, _ args: Arguments, line: Int) throws(TemplateError) -> TemplateValue {
        try enter(line: line)
        defer { depth -= 1 }
        let scope = Frame(parent: closure)
        var used = Set<String>()
        for (i, (pname, defExpr)) in def.params.enumerated() {
            if i < args.positional.count {
                scope.vars[pname] = args.positional[i]
            } else if let v = args.kw(pname) {
                scope.vars[pname] = v
                used.insert(pname)
            } else if let defExpr {
                scope.vars[pname] = try eval(defExpr, scope)
            } else {
                scope.vars[pname] = .undefined
            }
        }
        scope.vars["varargs"] = .array(Array(args.positional.dropFirst(def.params.count)))
        var extra = OrderedObject()
        for (k, v) in args.keyword where !used.contains(k) {
            if k == "caller" { scope.vars["caller"] = v } else { extra[k] = v }
        }
        scope.vars["kwargs"] = .object(extra)
        return .string(try capture(def.body, in: scope))
    }

    func callBuiltin(_ name: String, _ args: Arguments) throws(TemplateError) -> TemplateValue {
        switch name {
        case "range":
            let ints = try args.positional.map { v throws(TemplateError) in try v.intArg("range") }
            var (start, stop, step) = (0, 0, 1)
            switch ints.count {
            case 1: stop = ints[0]
            case 2: (start, stop) = (ints[0], ints[1])
            case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
            default: throw TemplateError.type("range expected 1 to 3 arguments, got \(ints.count)")
            }
            guard step != 0 else { throw TemplateError.type("range() arg 3 must not be zero") }
            let count = step > 0 ? max(0, (stop - start + step - 1) / step) : max(0, (start - stop - step - 1) / -step)
            guard count <= 100_000 else { throw TemplateError(.limit, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).") }
            return .array((0..<count).map { .int(start + $0 * step) })
        case "dict":
            var o = OrderedObject()
            if case .object(let base) = args.get(0, "") { o = base }
            for (k, v) in args.keyword { o[k] = v }
            return .object(o)
        case "namespace":
            var o = OrderedObject()
            if case .object(let base) = args.get(0, "") { o = base }
            for (k, v) in args.keyword { o[k] = v }
            return .namespace(TemplateNamespace(o))
        case "raise_exception":
            throw TemplateError(.raised, args.get(0, "message").pythonString)
        case "strftime_now":
            return .string(Strftime.format(now, try args.get(0, "format").stringArg("strftime_now")))
        default:
            throw TemplateError.runtime("unknown function '\(name)'")
        }
    }
}
