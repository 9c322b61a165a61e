/// An error from the engine: loading a model, preparing a prompt, validating parameters, or
/// generating. Its ``message`` is one line a user can act on.
public struct EngineError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure. Compare with the static members, e.g. `error.code == .promptTooLong`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name, e.g. `"promptTooLong"`.
        public let rawValue: String

        private init(_ rawValue: String) { self.rawValue = rawValue }

        public var description: String { rawValue }

        /// The model file does not exist (or is a directory).
        public static let fileNotFound = Code("fileNotFound")
        /// The file is not a valid GGUF model (bad header, missing tensor, bad hyperparameter).
        public static let invalidModelFile = Code("invalidModelFile")
        /// A valid file of an architecture or tensor type this engine does not run.
        public static let unsupportedModel = Code("unsupportedModel")
        /// The vocabulary cannot be turned into a tokenizer.
        public static let tokenizer = Code("tokenizer")
        /// The chat template is missing, does not parse, or fails on these messages.
        public static let chatTemplate = Code("chatTemplate")
        /// The prompt leaves no room in the context for a completion.
        public static let promptTooLong = Code("promptTooLong")
        /// A parameter is outside its range (``EngineError/parameter`` names it).
        public static let invalidParameter = Code("invalidParameter")
        /// The model failed while computing (a forward pass or a KV cache operation).
        public static let model = Code("model")
        /// The scheduler's queue is full; retry later.
        public static let overloaded = Code("overloaded")
        /// The scheduler is shutting down.
        public static let shuttingDown = Code("shuttingDown")
    }

    /// The kind of failure.
    public var code: Code
    /// A one-line explanation a user can act on.
    public var message: String
    /// For ``Code/invalidParameter``: the parameter at fault, as the caller named it.
    public var parameter: String?
    /// The underlying error, if this error wraps another one.
    public var cause: (any Error & Sendable)?

    /// Creates an error.
    public init(_ code: Code, _ message: String, parameter: String? = nil, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.parameter = parameter
        self.cause = cause
    }

    public var description: String {
        var text = "EngineError.\(code): \(message)"
        if let cause { text += " (caused by: \(cause))" }
        return text
    }
}
