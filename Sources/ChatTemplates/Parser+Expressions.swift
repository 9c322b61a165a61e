/// Expression grammar (precedence climbing identical to jinja2's parser).
extension Parser {
    private mutating func enter() throws(TemplateError) {
        depth += 1
        guard depth < Self.maxDepth else { throw fail("expression nesting too deep") }
    }

    func isTupleEnd(_ extraEnd: Set<String>) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .eof: return true
        case .op(let o): return o == ")"
        case .name(let n): return extraEnd.contains(n)
        default: return false
        }
    }

    mutating func parseTuple(withCondExpr: Bool, extraEnd: Set<String> = [], explicitParens: Bool = false)
        throws(TemplateError) -> Expr
    {
        var items: [Expr] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEnd) { break }
            items.append(withCondExpr ? try parseExpression() : try parseOr())
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let first = items.first { return first }
            if !explicitParens { throw fail("Expected an expression, got '\(describe(current))'") }
        }
        return .tuple(items)
    }

    mutating func parseExpression() throws(TemplateError) -> Expr {
        try enter()
        defer { depth -= 1 }
        var expr = try parseOr()
        while skipName("if") {
            let test = try parseOr()
            var otherwise: Expr? = nil
            if skipName("else") { otherwise = try parseExpression() }
            expr = .conditional(test: test, then: expr, otherwise: otherwise)
        }
        return expr
    }

    mutating func parseOr() throws(TemplateError) -> Expr {
        var left = try parseAnd()
        while skipName("or") { left = .or(left, try parseAnd()) }
        return left
    }

    mutating func parseAnd() throws(TemplateError) -> Expr {
        var left = try parseNot()
        while skipName("and") { left = .and(left, try parseNot()) }
        return left
    }

    mutating func parseNot() throws(TemplateError) -> Expr {
        if skipName("not") {
            try enter()
            defer { depth -= 1 }
            return .not(try parseNot())
        }
        return try parseCompare()
    }

    mutating func parseCompare() throws(TemplateError) -> Expr {
        let line = current.line
        let expr = try parseMath1()
        var ops: [(String, Expr)] = []
        while true {
            if case .op(let o) = current.kind, ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                next()
                ops.append((o, try parseMath1()))
            } else if skipName("in") {
                ops.append(("in", try parseMath1()))
            } else if isName("not"), isName("in", look()) {
                next()
                next()
                ops.append(("notin", try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? expr : .compare(expr, ops, line: line)
    }

    mutating func parseMath1() throws(TemplateError) -> Expr {
        var left = try parseConcat()
        while case .op(let o) = current.kind, o == "+" || o == "-" {
            let line = current.line
            next()
            left = .binary(o, left, try parseConcat(), line: line)
        }
        return left
    }

    mutating func parseConcat() throws(TemplateError) -> Expr {
        let line = current.line
        var args = [try parseMath2()]
        while skipOp("~") { args.append(try parseMath2()) }
        return args.count == 1 ? args[0] : .concat(args, line: line)
    }

    mutating func parseMath2() throws(TemplateError) -> Expr {
        var left = try parsePow()
        while case .op(let o) = current.kind, ["*", "/", "//", "%"].contains(o) {
            let line = current.line
            next()
            left = .binary(o, left, try parsePow(), line: line)
        }
        return left
    }

    mutating func parsePow() throws(TemplateError) -> Expr {
        var left = try parseUnary(withFilter: true)
        while isOp("**") {
            let line = current.line
            next()
            left = .binary("**", left, try parseUnary(withFilter: true), line: line)
        }
        return left
    }

    mutating func parseUnary(withFilter: Bool) throws(TemplateError) -> Expr {
        try enter()
        defer { depth -= 1 }
        let line = current.line
        var node: Expr
        if isOp("-") || isOp("+") {
            let op = isOp("-") ? "-" : "+"
            next()
            node = .unary(op, try parseUnary(withFilter: false), line: line)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpr(node) }
        return node
    }

    mutating func parsePrimary() throws(TemplateError) -> Expr {
        let tok = current
        switch tok.kind {
        case .name(let n):
            next()
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n, line: tok.line)
            }
        case .string(var s):
            next()
            while case .string(let more) = current.kind {
                s += more
                next()
            }
            return .literal(.string(s))
        case .integer(let v):
            next()
            return .literal(.int(v))
        case .float(let v):
            next()
            return .literal(.double(v))
        case .op("("):
            next()
            let e = try parseTuple(withCondExpr: true, explicitParens: true)
            try expectOp(")")
            return e
        case .op("["):
            next()
            var items: [Expr] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return .list(items)
        case .op("{"):
            next()
            var items: [(Expr, Expr)] = []
            while !isOp("}") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let k = try parseExpression()
                try expectOp(":")
                items.append((k, try parseExpression()))
            }
            try expectOp("}")
            return .dict(items)
        default:
            throw fail("unexpected '\(describe(tok))'")
        }
    }

    mutating func parsePostfix(_ start: Expr) throws(TemplateError) -> Expr {
        var node = start
        while true {
            let line = current.line
            if isOp(".") {
                next()
                switch current.kind {
                case .name(let n):
                    next()
                    node = .getAttr(node, n, line: line)
                case .integer(let i):
                    next()
                    node = .getItem(node, .literal(.int(i)), line: line)
                default:
                    throw fail("expected name or number")
                }
            } else if isOp("[") {
                next()
                var subs: [Expr] = []
                while !isOp("]") {
                    if !subs.isEmpty { try expectOp(",") }
                    if isOp("]") { break }
                    subs.append(try parseSubscribed(node, line: line))
                }
                try expectOp("]")
                if subs.count == 1, case .slice = subs[0] {
                    node = subs[0]
                } else if subs.count == 1 {
                    node = .getItem(node, subs[0], line: line)
                } else {
                    node = .getItem(node, .tuple(subs), line: line)
                }
            } else if isOp("(") {
                node = try parseCall(node)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscribed(_ target: Expr, line: Int) throws(TemplateError) -> Expr {
        var start: Expr? = nil
        if !isOp(":") {
            let e = try parseExpression()
            if !isOp(":") { return e }
            start = e
        }
        next()  // ':'
        var stop: Expr? = nil
        var step: Expr? = nil
        if !isOp(":"), !isOp("]"), !isOp(",") { stop = try parseExpression() }
        if skipOp(":") {
            if !isOp("]"), !isOp(",") { step = try parseExpression() }
        }
        return .slice(target, start: start, stop: stop, step: step, line: line)
    }

    mutating func parseCallArgs() throws(TemplateError) -> ([Expr], [(String, Expr)]) {
        try expectOp("(")
        var args: [Expr] = []
        var kwargs: [(String, Expr)] = []
        while !isOp(")") {
            if !args.isEmpty || !kwargs.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            if case .name(let n) = current.kind, isOp("=", look()) {
                next()
                next()
                kwargs.append((n, try parseExpression()))
            } else {
                if !kwargs.isEmpty { throw fail("positional argument after keyword argument") }
                args.append(try parseExpression())
            }
        }
        try expectOp(")")
        return (args, kwargs)
    }

    mutating func parseCall(_ callee: Expr) throws(TemplateError) -> Expr {
        let line = current.line
        let (args, kwargs) = try parseCallArgs()
        return .call(callee, args: args, kwargs: kwargs, line: line)
    }

    mutating func parseFilterExpr(_ start: Expr) throws(TemplateError) -> Expr {
        var node = start
        while true {
            if isOp("|") {
                next()
                for (name, args, kwargs, line) in try parseFilterChainSingle() {
                    node = .filter(node, name: name, args: args, kwargs: kwargs, line: line)
                }
            } else if isName("is") {
                node = try parseTest(node)
            } else if isOp("(") {
                node = try parseCall(node)
            } else {
                return node
            }
        }
    }

    private mutating func parseFilterChainSingle() throws(TemplateError) -> [(String, [Expr], [(String, Expr)], Int)] {
        let line = current.line
        var name = try expectName()
        while skipOp(".") { name += "." + (try expectName()) }
        var args: [Expr] = []
        var kwargs: [(String, Expr)] = []
        if isOp("(") { (args, kwargs) = try parseCallArgs() }
        return [(name, args, kwargs, line)]
    }

    mutating func parseTest(_ node: Expr) throws(TemplateError) -> Expr {
        let line = current.line
        next()  // 'is'
        let negated = skipName("not")
        var name = try expectName()
        while skipOp(".") { name += "." + (try expectName()) }
        var args: [Expr] = []
        if isOp("(") {
            let (a, _) = try parseCallArgs()
            args = a
        } else {
            var startsArg = false
            switch current.kind {
            case .name(let n): startsArg = !["else", "or", "and"].contains(n)
            case .string, .integer, .float: startsArg = true
            case .op(let o): startsArg = o == "[" || o == "{"
            default: break
            }
            if startsArg {
                if isName("is") { throw fail("You cannot chain multiple tests with is") }
                args = [try parsePostfix(try parsePrimary())]
            }
        }
        return .test(node, name: name, args: args, negated: negated, line: line)
    }
}
