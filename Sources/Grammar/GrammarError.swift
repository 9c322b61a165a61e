/// Why a grammar or a schema can't be used: the message names the construct (a GBNF rule, a JSON
/// Schema keyword and its path) so that a client can fix its request.
public struct GrammarError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        let name: String
        /// The GBNF text does not parse, or refers to a rule it never defines.
        public static let syntax = Code(name: "syntax")
        /// The grammar parses but can't drive decoding (left recursion, too large).
        public static let invalid = Code(name: "invalid")
        /// A JSON Schema keyword or value this compiler can't enforce: refused, never ignored.
        public static let unsupportedSchema = Code(name: "unsupported_schema")
        /// The JSON Schema itself is malformed (a `$ref` to nowhere, `required` not a list, …).
        public static let invalidSchema = Code(name: "invalid_schema")
    }

    public var code: Code
    public var message: String
    /// For schema errors: the JSON pointer of the offending keyword (`#/properties/age/minimum`).
    public var path: String?

    public init(_ code: Code, _ message: String, path: String? = nil) {
        self.code = code
        self.message = message
        self.path = path
    }

    public var description: String { path.map { "\(message) (at \($0))" } ?? message }
}
