/// An error raised while parsing or rendering a template.
public struct TemplateError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The category of a template error.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name, e.g. `"syntax"`.
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }
        /// Template source could not be tokenized or parsed (jinja2 `TemplateSyntaxError`).
        public static let syntax = Code("syntax")
        /// An undefined value was used in a way that requires a value (jinja2 `UndefinedError`).
        public static let undefined = Code("undefined")
        /// An operation was applied to values of the wrong type (Python `TypeError`/`ValueError`).
        public static let type = Code("type")
        /// The template called `raise_exception(message)`; `message` is exactly the argument.
        public static let raised = Code("raised")
        /// A sandbox violation, e.g. mutating a list with `append` (jinja2 `SecurityError`).
        public static let security = Code("security")
        /// A resource limit was hit (recursion depth, loop iterations, output size).
        public static let limit = Code("limit")
        /// Any other runtime failure (unknown filter, bad call, index error...).
        public static let runtime = Code("runtime")
        public var description: String { rawValue }
    }

    /// The error category.
    public var code: Code
    /// Human-readable message; syntax errors include `line N`.
    public var message: String
    /// 1-based template line where the error was detected, when known.
    public var line: Int?

    /// Creates an error.
    public init(_ code: Code, _ message: String, line: Int? = nil) {
        self.code = code
        self.message = message
        self.line = line
    }

    public var description: String {
        if let line, code != .raised { return "\(code) error (line \(line)): \(message)" }
        return "\(code) error: \(message)"
    }

    static func syntax(_ message: String, line: Int) -> TemplateError {
        TemplateError(.syntax, "\(message) (line \(line))", line: line)
    }

    static func type(_ message: String) -> TemplateError { TemplateError(.type, message) }
    static func runtime(_ message: String) -> TemplateError { TemplateError(.runtime, message) }
}
