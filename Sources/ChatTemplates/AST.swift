/// Expression nodes.
indirect enum Expr {
    case literal(TemplateValue)
    case name(String, line: Int)
    case list([Expr])
    case tuple([Expr])
    case dict([(Expr, Expr)])
    case getAttr(Expr, String, line: Int)
    case getItem(Expr, Expr, line: Int)
    case slice(Expr, start: Expr?, stop: Expr?, step: Expr?, line: Int)
    case call(Expr, args: [Expr], kwargs: [(String, Expr)], line: Int)
    case filter(Expr?, name: String, args: [Expr], kwargs: [(String, Expr)], line: Int)
    case test(Expr, name: String, args: [Expr], negated: Bool, line: Int)
    case unary(String, Expr, line: Int)
    case binary(String, Expr, Expr, line: Int)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case not(Expr)
    case compare(Expr, [(String, Expr)], line: Int)
    case concat([Expr], line: Int)
    case conditional(test: Expr, then: Expr, otherwise: Expr?)
}

/// Assignment targets for `set`, `for` and `with`.
indirect enum Target {
    case name(String)
    case tuple([Target])
    case attribute(String, String)  // namespace.attr
}

/// A macro definition (also used for `caller` bodies).
final class MacroDef {
    let name: String
    let params: [(String, Expr?)]
    let body: [Node]
    init(name: String, params: [(String, Expr?)], body: [Node]) {
        self.name = name
        self.params = params
        self.body = body
    }
}

/// A `for` loop.
struct ForNode {
    var target: Target
    var iterable: Expr
    var filter: Expr?
    var body: [Node]
    var elseBody: [Node]
    var recursive: Bool
    var line: Int
}

/// Statement / template nodes.
indirect enum Node {
    case output(String)
    case print(Expr, line: Int)
    case ifNode([(Expr, [Node])], elseBody: [Node])
    case forNode(ForNode)
    case set(Target, Expr, line: Int)
    case setBlock(Target, body: [Node], filters: [(String, [Expr], [(String, Expr)], Int)], line: Int)
    case macro(MacroDef)
    case callBlock(call: Expr, caller: MacroDef, line: Int)
    case filterBlock(body: [Node], filters: [(String, [Expr], [(String, Expr)], Int)])
    case with([(Target, Expr)], body: [Node])
    case breakLoop(line: Int)
    case continueLoop(line: Int)
    case scope([Node])
}
