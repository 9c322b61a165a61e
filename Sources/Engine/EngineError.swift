/// An error from the engine: loading a model, preparing a prompt, or generating. Its message is
/// one line a user can act on.
public struct EngineError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        public static let fileNotFound = Code(name: "fileNotFound")
        public static let invalidModelFile = Code(name: "invalidModelFile")
        public static let unsupportedModel = Code(name: "unsupportedModel")
        public static let tokenizer = Code(name: "tokenizer")
        public static let chatTemplate = Code(name: "chatTemplate")
        public static let promptTooLong = Code(name: "promptTooLong")
        public static let invalidParameter = Code(name: "invalidParameter")
        public static let model = Code(name: "model")
        /// The scheduler's queue is full; retry later.
        public static let overloaded = Code(name: "overloaded")
        /// The scheduler is shutting down.
        public static let shuttingDown = Code(name: "shuttingDown")
    }

    public var code: Code
    public var message: String
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}
