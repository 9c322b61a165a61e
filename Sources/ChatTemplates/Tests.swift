/// jinja2's builtin tests (`x is defined`, `n is divisibleby 3`, ...).
extension Evaluator {
    func applyTest(_ name: String, _ v: TemplateValue, _ args: Arguments, frame: Frame, line: Int) throws(TemplateError) -> Bool {
        let a0 = args.get(0, "")
        func cmp(_ op: String) throws(TemplateError) -> Bool { try compare(op, v, a0, line: line) }
        switch name {
        case "defined": if case .undefined = v { return false } else { return true }
        case "undefined": if case .undefined = v { return true } else { return false }
        case "none": return v == .none
        case "boolean": if case .bool = v { return true } else { return false }
        case "true": return v == .bool(true)
        case "false": return v == .bool(false)
        case "integer": if case .int = v { return true } else { return false }
        case "float": if case .double = v { return true } else { return false }
        case "number": return v.numeric != nil
        case "string": if case .string = v { return true } else { return false }
        case "mapping": if case .object = v { return true } else { return false }
        case "iterable":
            switch v {
            case .string, .array, .object, .undefined, .function: return v.typeName != "function"
            default: return false
            }
        case "sequence":
            switch v {
            case .string, .array, .object: return true
            default: return false
            }
        case "callable":
            switch v {
            case .function(let f):
                if case .generator = f.kind { return false }
                return true
            case .object(let o): return o["__call__"] != nil
            default: return false
            }
        case "sameas":
            switch (v, a0) {
            case (.none, .none), (.undefined, .undefined): return true
            case (.bool(let x), .bool(let y)): return x == y
            case (.function(let x), .function(let y)): return x === y
            case (.namespace(let x), .namespace(let y)): return x === y
            case (.int(let x), .int(let y)): return x == y && (-5...256).contains(x)
            default: return false
            }
        case "escaped": return false
        case "lower":
            let s = v.pythonString
            return s.unicodeScalars.contains { $0.properties.isCased } && s == s.lowercased()
        case "upper":
            let s = v.pythonString
            return s.unicodeScalars.contains { $0.properties.isCased } && s == s.uppercased()
        case "odd", "even":
            guard let i = v.integer else { throw TemplateError(.type, "not all arguments converted during string formatting", line: line) }
            let odd = ((i % 2) + 2) % 2 == 1
            return name == "odd" ? odd : !odd
        case "divisibleby":
            let r = try binary("%", v, a0)
            return r.pyEquals(.int(0))
        case "eq", "equalto", "==": return try cmp("==")
        case "ne", "!=": return try cmp("!=")
        case "lt", "lessthan", "<": return try cmp("<")
        case "le", "<=": return try cmp("<=")
        case "gt", "greaterthan", ">": return try cmp(">")
        case "ge", ">=": return try cmp(">=")
        case "in": return try contains(a0, v, line: line)
        case "filter": return Self.filterNames.contains(v.pythonString)
        case "test": return Self.testNames.contains(v.pythonString)
        default: throw TemplateError(.runtime, "No test named '\(name)'.", line: line)
        }
    }

    static let testNames: Set<String> = [
        "defined", "undefined", "none", "boolean", "true", "false", "integer", "float", "number", "string",
        "mapping", "iterable", "sequence", "callable", "sameas", "escaped", "lower", "upper", "odd", "even",
        "divisibleby", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan",
        ">", "ge", ">=", "in", "filter", "test",
    ]
}
