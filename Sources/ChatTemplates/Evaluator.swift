import Foundation

/// A variable scope. jinja2 creates a fresh scope per loop iteration, macro call and `with` block.
final class Frame {
    var vars: [String: TemplateValue] = [:]
    let parent: Frame?

    init(parent: Frame?) { self.parent = parent }

    func lookup(_ name: String) -> TemplateValue? {
        var f: Frame? = self
        while let cur = f {
            if let v = cur.vars[name] { return v }
            f = cur.parent
        }
        return nil
    }
}

/// What a callable value does when called.
enum FunctionKind {
    case macro(MacroDef, Frame)
    case builtin(String)
    case method(TemplateValue, String)
    case unsafeMethod(String, String)
    case loopCycle(Int)
    case recursiveLoop(ForNode, Frame, Int)
    /// A Python generator (result of map/select/...): iterable once, no len, not JSON serializable.
    case generator([TemplateValue])
}

/// Control flow signal from rendering a statement list.
enum Flow { case normal, breakLoop, continueLoop }

/// Walks the AST and produces output.
final class Evaluator {
    static let maxDepth = 250
    static let maxIterations = 5_000_000
    static let maxOutput = 64 << 20

    var out = ""
    var depth = 0
    var iterations = 0
    let now: Date
    let globalFrame: Frame

    init(context: [String: TemplateValue], now: Date) {
        self.now = now
        let root = Frame(parent: nil)
        root.vars = context
        self.globalFrame = Frame(parent: root)
    }

    static let builtinNames: Set<String> = [
        "range", "dict", "namespace", "raise_exception", "strftime_now",
    ]

    func enter(line: Int? = nil) throws(TemplateError) {
        depth += 1
        if depth > Self.maxDepth { throw TemplateError(.limit, "maximum recursion depth exceeded", line: line) }
    }

    func countIteration() throws(TemplateError) {
        iterations += 1
        if iterations > Self.maxIterations { throw TemplateError(.limit, "too many loop iterations") }
    }

    /// Renders `nodes` into a fresh buffer and returns it.
    func capture(_ nodes: [Node], in frame: Frame) throws(TemplateError) -> String {
        let saved = out
        out = ""
        defer { out = saved }
        _ = try render(nodes, in: frame)
        return out
    }

    func render(_ nodes: [Node], in frame: Frame) throws(TemplateError) -> Flow {
        try enter()
        defer { depth -= 1 }
        for node in nodes {
            let flow = try render(node, in: frame)
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func render(_ node: Node, in frame: Frame) throws(TemplateError) -> Flow {
        switch node {
        case .output(let s):
            out += s
        case .print(let e, let line):
            let v = try eval(e, frame)
            out += v.pythonString
            if out.utf8.count > Self.maxOutput { throw TemplateError(.limit, "output too large", line: line) }
        case .ifNode(let branches, let elseBody):
            for (test, body) in branches {
                if try eval(test, frame).isTruthy { return try render(body, in: frame) }
            }
            return try render(elseBody, in: frame)
        case .forNode(let f):
            try renderFor(f, in: frame, iterable: nil, depth: 1)
        case .set(let target, let e, let line):
            try assign(target, try eval(e, frame), in: frame, line: line)
        case .setBlock(let target, let body, let filters, let line):
            var v = TemplateValue.string(try capture(body, in: frame))
            for (name, args, kwargs, fline) in filters {
                v = try applyFilter(name, v, try evalArgs(args, kwargs, frame), frame: frame, line: fline)
            }
            try assign(target, v, in: frame, line: line)
        case .macro(let def):
            frame.vars[def.name] = .function(TemplateFunction(name: def.name, kind: .macro(def, frame)))
        case .callBlock(let call, let caller, let line):
            guard case .call(let callee, let args, let kwargs, _) = call else { break }
            var a = try evalArgs(args, kwargs, frame)
            a.keyword.append(("caller", .function(TemplateFunction(name: "caller", kind: .macro(caller, frame)))))
            out += try callValue(try eval(callee, frame), a, frame: frame, line: line).pythonString
        case .filterBlock(let body, let filters):
            var v = TemplateValue.string(try capture(body, in: frame))
            for (name, args, kwargs, fline) in filters {
                v = try applyFilter(name, v, try evalArgs(args, kwargs, frame), frame: frame, line: fline)
            }
            out += v.pythonString
        case .with(let assigns, let body):
            let inner = Frame(parent: frame)
            for (target, e) in assigns { try assign(target, try eval(e, frame), in: inner, line: nil) }
            return try render(body, in: inner)
        case .breakLoop: return .breakLoop
        case .continueLoop: return .continueLoop
        case .scope(let body):
            return try render(body, in: frame)
        }
        return .normal
    }

    /// Binds a value to an assignment target.
    func assign(_ target: Target, _ value: TemplateValue, in frame: Frame, line: Int?) throws(TemplateError) {
        switch target {
        case .name(let n):
            frame.vars[n] = value
        case .attribute(let base, let attr):
            guard case .namespace(let ns) = frame.lookup(base) ?? .undefined else {
                throw TemplateError(.runtime, "cannot assign attribute on non-namespace object", line: line)
            }
            ns.attributes[attr] = value
        case .tuple(let targets):
            let items = try iterate(value, line: line)
            guard items.count == targets.count else {
                let msg = items.count > targets.count
                    ? "too many values to unpack (expected \(targets.count))"
                    : "not enough values to unpack (expected \(targets.count), got \(items.count))"
                throw TemplateError(.type, msg, line: line)
            }
            for (t, v) in zip(targets, items) { try assign(t, v, in: frame, line: line) }
        }
    }

    /// Python iteration: list items, dict keys, string characters; undefined iterates as empty.
    func iterate(_ value: TemplateValue, line: Int?) throws(TemplateError) -> [TemplateValue] {
        switch value {
        case .array(let a): return a
        case .object(let o): return o.keys.map { o.keyValue($0) }
        case .function(let f):
            if case .generator(let items) = f.kind { return items }
            throw TemplateError(.type, "'function' object is not iterable", line: line)
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        case .namespace, .none, .bool, .int, .double:
            throw TemplateError(.type, "'\(value.typeName)' object is not iterable", line: line)
        }
    }

    func renderFor(_ f: ForNode, in frame: Frame, iterable: TemplateValue?, depth loopDepth: Int) throws(TemplateError) {
        var source: TemplateValue
        if let iterable { source = iterable } else { source = try eval(f.iterable, frame) }
        var items = try iterate(source, line: f.line)
        if let filter = f.filter {
            var kept: [TemplateValue] = []
            for item in items {
                try countIteration()
                let scope = Frame(parent: frame)
                try assign(f.target, item, in: scope, line: f.line)
                if try eval(filter, scope).isTruthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            _ = try render(f.elseBody, in: Frame(parent: frame))
            return
        }
        let n = items.count
        for (i, item) in items.enumerated() {
            try countIteration()
            let scope = Frame(parent: frame)
            var loop = OrderedObject()
            loop["index"] = .int(i + 1)
            loop["index0"] = .int(i)
            loop["revindex"] = .int(n - i)
            loop["revindex0"] = .int(n - i - 1)
            loop["first"] = .bool(i == 0)
            loop["last"] = .bool(i == n - 1)
            loop["length"] = .int(n)
            loop["depth"] = .int(loopDepth)
            loop["depth0"] = .int(loopDepth - 1)
            loop["previtem"] = i > 0 ? items[i - 1] : .undefined
            loop["nextitem"] = i + 1 < n ? items[i + 1] : .undefined
            loop["cycle"] = .function(TemplateFunction(name: "cycle", kind: .loopCycle(i)))
            if f.recursive {
                loop["__call__"] = .function(TemplateFunction(name: "loop", kind: .recursiveLoop(f, frame, loopDepth)))
            }
            scope.vars["loop"] = .object(loop)
            try assign(f.target, item, in: scope, line: f.line)
            if try render(f.body, in: scope) == .breakLoop { break }
        }
    }
}
