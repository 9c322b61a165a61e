/// Builds an AST from tokens, following jinja2's parser grammar.
struct Parser {
    var tokens: [Token]
    var index = 0
    var depth = 0
    static let maxDepth = 120

    init(tokens: [Token]) { self.tokens = tokens }

    static func parse(_ source: String) throws(TemplateError) -> [Node] {
        var parser = Parser(tokens: try Lexer.tokenize(source))
        let (nodes, end) = try parser.subparse(endTags: [])
        if let end { throw TemplateError.syntax("Encountered unknown tag '\(end)'", line: parser.current.line) }
        return nodes
    }

    // MARK: Token helpers

    var current: Token { tokens[min(index, tokens.count - 1)] }
    func look(_ n: Int = 1) -> Token { tokens[min(index + n, tokens.count - 1)] }
    mutating func next() { if index < tokens.count - 1 { index += 1 } }

    func isOp(_ s: String, _ t: Token? = nil) -> Bool {
        if case .op(let o) = (t ?? current).kind { return o == s }
        return false
    }

    func isName(_ s: String, _ t: Token? = nil) -> Bool {
        if case .name(let n) = (t ?? current).kind { return n == s }
        return false
    }

    mutating func skipOp(_ s: String) -> Bool {
        if isOp(s) { next(); return true }
        return false
    }

    mutating func skipName(_ s: String) -> Bool {
        if isName(s) { next(); return true }
        return false
    }

    func fail(_ message: String) -> TemplateError { TemplateError.syntax(message, line: current.line) }

    func describe(_ t: Token) -> String {
        switch t.kind {
        case .name(let n): return n
        case .op(let o): return o
        case .string: return "string"
        case .integer, .float: return "number"
        case .variableEnd: return "end of print statement"
        case .blockEnd: return "end of statement block"
        case .eof: return "end of template"
        default: return "template data"
        }
    }

    mutating func expectOp(_ s: String) throws(TemplateError) {
        guard skipOp(s) else { throw fail("expected token '\(s)', got '\(describe(current))'") }
    }

    mutating func expectName() throws(TemplateError) -> String {
        guard case .name(let n) = current.kind else { throw fail("expected name, got '\(describe(current))'") }
        next()
        return n
    }

    mutating func expectBlockEnd() throws(TemplateError) {
        guard current.kind == .blockEnd else {
            throw fail("expected token 'end of statement block', got '\(describe(current))'")
        }
        next()
    }

    // MARK: Template structure

    /// Parses nodes until a block tag whose name is in `endTags`; returns that name (consumed) or nil at EOF.
    mutating func subparse(endTags: Set<String>) throws(TemplateError) -> ([Node], String?) {
        var body: [Node] = []
        while true {
            let tok = current
            switch tok.kind {
            case .data(let s), .rawData(let s):
                body.append(.output(s))
                next()
            case .variableBegin:
                next()
                let expr = try parseTuple(withCondExpr: true)
                guard current.kind == .variableEnd else {
                    throw fail("expected token 'end of print statement', got '\(describe(current))'")
                }
                next()
                body.append(.print(expr, line: tok.line))
            case .blockBegin:
                next()
                guard case .name(let tag) = current.kind else { throw fail("tag name expected") }
                if endTags.contains(tag) {
                    next()
                    return (body, tag)
                }
                body.append(try parseStatement(tag))
            case .eof:
                if !endTags.isEmpty {
                    let list = endTags.sorted().map { "'\($0)'" }.joined(separator: " or ")
                    throw fail("Unexpected end of template. Jinja was looking for the following tags: \(list).")
                }
                return (body, nil)
            default:
                throw fail("unexpected '\(describe(tok))'")
            }
        }
    }

    /// Parses statements until one of `endTags`, consuming it and (if `dropEnd`) its block end.
    mutating func parseBody(_ endTags: Set<String>, dropEnd: Bool = true) throws(TemplateError) -> ([Node], String) {
        let (nodes, end) = try subparse(endTags: endTags)
        guard let end else { throw fail("Unexpected end of template") }
        if dropEnd { try expectBlockEnd() }
        return (nodes, end)
    }

    mutating func parseStatement(_ tag: String) throws(TemplateError) -> Node {
        let line = current.line
        depth += 1
        defer { depth -= 1 }
        guard depth < Self.maxDepth else { throw fail("template nesting too deep") }
        next()
        switch tag {
        case "if": return try parseIf()
        case "for": return try parseFor(line: line)
        case "set": return try parseSet(line: line)
        case "macro": return try parseMacro()
        case "call": return try parseCallBlock(line: line)
        case "filter":
            let filters = try parseFilterChain()
            try expectBlockEnd()
            let (body, _) = try parseBody(["endfilter"])
            return .filterBlock(body: body, filters: filters)
        case "with":
            var assigns: [(Target, Expr)] = []
            while current.kind != .blockEnd {
                if !assigns.isEmpty { try expectOp(",") }
                let target = try parseAssignTarget(withNamespace: false)
                try expectOp("=")
                assigns.append((target, try parseExpression()))
            }
            try expectBlockEnd()
            let (body, _) = try parseBody(["endwith"])
            return .with(assigns, body: body)
        case "generation":
            try expectBlockEnd()
            let (body, _) = try parseBody(["endgeneration"])
            return .scope(body)
        case "block":
            _ = try expectName()
            _ = skipName("scoped")
            try expectBlockEnd()
            let (body, _) = try parseBody(["endblock"], dropEnd: false)
            if case .name = current.kind { next() }
            try expectBlockEnd()
            return .scope(body)
        case "break", "continue":
            try expectBlockEnd()
            return tag == "break" ? .breakLoop(line: line) : .continueLoop(line: line)
        default:
            index -= 1
            throw fail("Encountered unknown tag '\(tag)'.")
        }
    }

    mutating func parseIf() throws(TemplateError) -> Node {
        var branches: [(Expr, [Node])] = []
        var elseBody: [Node] = []
        var test = try parseTuple(withCondExpr: false)
        while true {
            try expectBlockEnd()
            let (body, end) = try parseBody(["elif", "else", "endif"], dropEnd: false)
            branches.append((test, body))
            if end == "elif" {
                test = try parseTuple(withCondExpr: false)
                continue
            }
            try expectBlockEnd()
            if end == "else" {
                (elseBody, _) = try parseBody(["endif"])
            }
            break
        }
        return .ifNode(branches, elseBody: elseBody)
    }

    mutating func parseFor(line: Int) throws(TemplateError) -> Node {
        let target = try parseAssignTarget(withNamespace: false, extraEnd: ["in"])
        guard skipName("in") else { throw fail("expected 'in'") }
        let iter = try parseTuple(withCondExpr: false, extraEnd: ["recursive"])
        var filter: Expr? = nil
        if skipName("if") { filter = try parseExpression() }
        let recursive = skipName("recursive")
        try expectBlockEnd()
        let (body, end) = try parseBody(["endfor", "else"])
        var elseBody: [Node] = []
        if end == "else" { (elseBody, _) = try parseBody(["endfor"]) }
        return .forNode(
            ForNode(target: target, iterable: iter, filter: filter, body: body, elseBody: elseBody,
                    recursive: recursive, line: line))
    }

    mutating func parseSet(line: Int) throws(TemplateError) -> Node {
        let target = try parseAssignTarget(withNamespace: true)
        if skipOp("=") {
            let expr = try parseTuple(withCondExpr: true)
            try expectBlockEnd()
            return .set(target, expr, line: line)
        }
        var filters: [(String, [Expr], [(String, Expr)], Int)] = []
        if isOp("|") {
            next()
            filters = try parseFilterChain()
        }
        try expectBlockEnd()
        let (body, _) = try parseBody(["endset"])
        return .setBlock(target, body: body, filters: filters, line: line)
    }

    mutating func parseMacroParams() throws(TemplateError) -> [(String, Expr?)] {
        var params: [(String, Expr?)] = []
        try expectOp("(")
        while !isOp(")") {
            if !params.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            let name = try expectName()
            var def: Expr? = nil
            if skipOp("=") { def = try parseExpression() }
            params.append((name, def))
        }
        try expectOp(")")
        return params
    }

    mutating func parseMacro() throws(TemplateError) -> Node {
        let name = try expectName()
        let params = try parseMacroParams()
        try expectBlockEnd()
        let (body, _) = try parseBody(["endmacro"])
        return .macro(MacroDef(name: name, params: params, body: body))
    }

    mutating func parseCallBlock(line: Int) throws(TemplateError) -> Node {
        var params: [(String, Expr?)] = []
        if isOp("(") { params = try parseMacroParams() }
        let call = try parseExpression()
        guard case .call = call else { throw fail("expected call") }
        try expectBlockEnd()
        let (body, _) = try parseBody(["endcall"])
        return .callBlock(call: call, caller: MacroDef(name: "caller", params: params, body: body), line: line)
    }

    /// Parses `name(args) | name ...` after the first pipe (or at the start of a filter block).
    mutating func parseFilterChain() throws(TemplateError) -> [(String, [Expr], [(String, Expr)], Int)] {
        var filters: [(String, [Expr], [(String, Expr)], Int)] = []
        repeat {
            let line = current.line
            var name = try expectName()
            while skipOp(".") { name += "." + (try expectName()) }
            var args: [Expr] = []
            var kwargs: [(String, Expr)] = []
            if isOp("(") { (args, kwargs) = try parseCallArgs() }
            filters.append((name, args, kwargs, line))
        } while skipOp("|")
        return filters
    }

    mutating func parseAssignTarget(withNamespace: Bool, extraEnd: Set<String> = []) throws(TemplateError) -> Target {
        var targets: [Target] = []
        var isTuple = false
        let parens = skipOp("(")
        while true {
            if !targets.isEmpty { try expectOp(",") }
            if isOp(")") || isOp("=") || current.kind == .blockEnd { break }
            if case .name(let n) = current.kind, extraEnd.contains(n) { break }
            let name = try expectName()
            if withNamespace, skipOp(".") {
                targets.append(.attribute(name, try expectName()))
            } else {
                targets.append(.name(name))
            }
            if isOp(",") { isTuple = true } else { break }
        }
        if parens { try expectOp(")") }
        guard let first = targets.first else { throw fail("expected assignment target") }
        return isTuple || targets.count > 1 || parens && isTuple ? .tuple(targets) : first
    }
}
