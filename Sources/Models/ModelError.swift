import ModelFormats

/// An error loading or running a model: unsupported architecture, missing or misshapen tensor,
/// bad hyperparameters, or a context that is full.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        public static let unsupportedArchitecture = Code(name: "unsupportedArchitecture")
        public static let unsupportedTensorType = Code(name: "unsupportedTensorType")
        public static let missingTensor = Code(name: "missingTensor")
        public static let shapeMismatch = Code(name: "shapeMismatch")
        public static let invalidHyperparameter = Code(name: "invalidHyperparameter")
        public static let contextFull = Code(name: "contextFull")
        public static let invalidToken = Code(name: "invalidToken")
        public static let format = Code(name: "format")
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

    /// Wraps a GGUF error met while reading model metadata or tensors.
    static func format(_ error: GGUFError) -> ModelError {
        ModelError(.format, error.message, cause: error)
    }
}
