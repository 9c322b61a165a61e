/// Evaluated call arguments (positional and keyword).
struct Arguments {
    var positional: [TemplateValue] = []
    var keyword: [(String, TemplateValue)] = []

    /// The argument at `index` or named `name`, else `defaultValue`.
    func get(_ index: Int, _ name: String, _ defaultValue: TemplateValue = .undefined) -> TemplateValue {
        if index >= 0, index < positional.count { return positional[index] }
        if let kw = keyword.first(where: { $0.0 == name }) { return kw.1 }
        return defaultValue
    }

    func kw(_ name: String) -> TemplateValue? { keyword.first(where: { $0.0 == name })?.1 }

    var isEmpty: Bool { positional.isEmpty && keyword.isEmpty }

    /// Drops the first `n` positional arguments.
    func dropping(_ n: Int) -> Arguments {
        Arguments(positional: Array(positional.dropFirst(n)), keyword: keyword)
    }
}

extension TemplateValue {
    /// Value as a Python int for arguments (accepts bool, int, integral float).
    func intArg(_ what: String) throws(TemplateError) -> Int {
        if let i = integer { return i }
        if case .double(let d) = self, d == d.rounded(.towardZero), abs(d) < 1e18 { return Int(d) }
        throw TemplateError.type("\(what): '\(typeName)' object cannot be interpreted as an integer")
    }

    /// String argument or error.
    func stringArg(_ what: String) throws(TemplateError) -> String {
        if case .string(let s) = self { return s }
        throw TemplateError.type("\(what) argument must be str, not \(typeName)")
    }
}
