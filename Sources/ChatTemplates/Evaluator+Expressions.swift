import Foundation

/// Expression evaluation and Python operators.
extension Evaluator {
    func eval(_ e: Expr, _ frame: Frame) throws(TemplateError) -> TemplateValue {
        try enter()
        defer { depth -= 1 }
        switch e {
        case .literal(let v): return v
        case .name(let n, _): return resolve(n, frame)
        case .list(let items), .tuple(let items):
            var arr: [TemplateValue] = []
            arr.reserveCapacity(items.count)
            for i in items { arr.append(try eval(i, frame)) }
            return .array(arr)
        case .dict(let pairs):
            var o = OrderedObject()
            for (k, v) in pairs { o.set(key: try eval(k, frame), try eval(v, frame)) }
            return .object(o)
        case .getAttr(let base, let name, let line):
            let b = try eval(base, frame)
            if case .undefined = b { throw undefinedError(base, line: line) }
            return getAttr(b, name)
        case .getItem(let base, let key, let line):
            let b = try eval(base, frame)
            if case .undefined = b { throw undefinedError(base, line: line) }
            return getItem(b, try eval(key, frame))
        case .slice(let base, let start, let stop, let step, let line):
            let b = try eval(base, frame)
            if case .undefined = b { throw undefinedError(base, line: line) }
            return try slice(b, start.map { x throws(TemplateError) in try eval(x, frame) },
                             stop.map { x throws(TemplateError) in try eval(x, frame) },
                             step.map { x throws(TemplateError) in try eval(x, frame) }, line: line)
        case .call(let callee, let args, let kwargs, let line):
            let f = try eval(callee, frame)
            if case .undefined = f { throw undefinedError(callee, line: line) }
            return try callValue(f, try evalArgs(args, kwargs, frame), frame: frame, line: line)
        case .filter(let base, let name, let args, let kwargs, let line):
            let v = try base.map { x throws(TemplateError) in try eval(x, frame) } ?? .undefined
            return try applyFilter(name, v, try evalArgs(args, kwargs, frame), frame: frame, line: line)
        case .test(let base, let name, let args, let negated, let line):
            let v = try eval(base, frame)
            var a = Arguments()
            for x in args { a.positional.append(try eval(x, frame)) }
            let r = try applyTest(name, v, a, frame: frame, line: line)
            return .bool(negated ? !r : r)
        case .unary(let op, let x, let line):
            let v = try eval(x, frame)
            switch v {
            case .int(let i): return .int(op == "-" ? -i : i)
            case .bool(let b): return .int(op == "-" ? (b ? -1 : 0) : (b ? 1 : 0))
            case .double(let d): return .double(op == "-" ? -d : d)
            case .undefined: throw undefinedError(x, line: line)
            default: throw TemplateError(.type, "bad operand type for unary \(op): '\(v.typeName)'", line: line)
            }
        case .binary(let op, let l, let r, let line):
            let a = try eval(l, frame)
            let b = try eval(r, frame)
            do throws(TemplateError) {
                return try binary(op, a, b)
            } catch {
                var err = error
                if err.line == nil { err.line = line }
                if case .undefined = a, err.code == .undefined { err = undefinedError(l, line: line) }
                if case .undefined = b, err.code == .undefined { err = undefinedError(r, line: line) }
                throw err
            }
        case .and(let l, let r):
            let a = try eval(l, frame)
            return a.isTruthy ? try eval(r, frame) : a
        case .or(let l, let r):
            let a = try eval(l, frame)
            return a.isTruthy ? a : try eval(r, frame)
        case .not(let x):
            return .bool(!(try eval(x, frame).isTruthy))
        case .compare(let first, let ops, let line):
            var left = try eval(first, frame)
            for (op, rhsExpr) in ops {
                let right = try eval(rhsExpr, frame)
                if !(try compare(op, left, right, line: line)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .concat(let parts, _):
            var s = ""
            for p in parts { s += try eval(p, frame).pythonString }
            return .string(s)
        case .conditional(let test, let then, let otherwise):
            if try eval(test, frame).isTruthy { return try eval(then, frame) }
            guard let otherwise else { return .undefined }
            return try eval(otherwise, frame)
        }
    }

    func evalArgs(_ args: [Expr], _ kwargs: [(String, Expr)], _ frame: Frame) throws(TemplateError) -> Arguments {
        var a = Arguments()
        for x in args { a.positional.append(try eval(x, frame)) }
        for (k, x) in kwargs { a.keyword.append((k, try eval(x, frame))) }
        return a
    }

    func resolve(_ name: String, _ frame: Frame) -> TemplateValue {
        if let v = frame.lookup(name) { return v }
        if Self.builtinNames.contains(name) { return .function(TemplateFunction(name: name, kind: .builtin(name))) }
        return .undefined
    }

    func describe(_ e: Expr) -> String {
        switch e {
        case .name(let n, _): return n
        case .getAttr(let b, let n, _): return describe(b) + "." + n
        case .getItem(let b, .literal(let k), _): return describe(b) + "[" + k.pythonRepr + "]"
        default: return "value"
        }
    }

    func undefinedError(_ e: Expr, line: Int) -> TemplateError {
        switch e {
        case .getAttr(let b, let n, _): return TemplateError(.undefined, "'\(describe(b))' has no attribute '\(n)'", line: line)
        case .getItem(let b, .literal(let k), _):
            return TemplateError(.undefined, "'\(describe(b))' has no attribute \(k.pythonRepr)", line: line)
        default: return TemplateError(.undefined, "'\(describe(e))' is undefined", line: line)
        }
    }

    func compare(_ op: String, _ a: TemplateValue, _ b: TemplateValue, line: Int) throws(TemplateError) -> Bool {
        switch op {
        case "==": return a.pyEquals(b)
        case "!=": return !a.pyEquals(b)
        case "in": return try contains(b, a, line: line)
        case "notin": return !(try contains(b, a, line: line))
        default:
            let c: Int
            do { c = try a.pyCompare(b, op: op) } catch {
                var err = error
                err.line = line
                throw err
            }
            switch op {
            case "<": return c < 0
            case "<=": return c <= 0
            case ">": return c > 0
            default: return c >= 0
            }
        }
    }

    /// Python `needle in haystack`.
    func contains(_ haystack: TemplateValue, _ needle: TemplateValue, line: Int?) throws(TemplateError) -> Bool {
        switch haystack {
        case .string(let s):
            guard case .string(let n) = needle else {
                throw TemplateError(.type, "'in <string>' requires string as left operand, not \(needle.typeName)", line: line)
            }
            return n.isEmpty || PyString.find(Array(s.unicodeScalars), Array(n.unicodeScalars), from: 0) != nil
        case .array(let a): return a.contains { $0.pyEquals(needle) }
        case .object(let o):
            return o[OrderedObject.encodeKey(needle)] != nil
        case .undefined: return false
        case .namespace(let ns):
            if case .string(let k) = needle { return ns.attributes[k] != nil }
            return false
        default:
            throw TemplateError(.type, "argument of type '\(haystack.typeName)' is not iterable", line: line)
        }
    }
}
