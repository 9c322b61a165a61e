import ModelFormats

/// An error loading or running a model: unsupported architecture, missing or misshapen tensor,
/// bad hyperparameters, or a context that is full.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure. Compare with the static members, e.g. `error.code == .missingTensor`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name, e.g. `"missingTensor"`.
        public let rawValue: String

        private init(_ rawValue: String) { self.rawValue = rawValue }

        public var description: String { rawValue }

        /// `general.architecture` names an architecture no file in Models implements.
        public static let unsupportedArchitecture = Code("unsupportedArchitecture")
        /// A weight's tensor type has no kernel.
        public static let unsupportedTensorType = Code("unsupportedTensorType")
        /// A tensor the architecture needs is absent from the file.
        public static let missingTensor = Code("missingTensor")
        /// A tensor's shape does not match the hyperparameters, or a batch's buffers do not fit.
        public static let shapeMismatch = Code("shapeMismatch")
        /// A hyperparameter is missing, zero, or inconsistent with another.
        public static let invalidHyperparameter = Code("invalidHyperparameter")
        /// A sequence's KV cache has no room for the tokens given.
        public static let contextFull = Code("contextFull")
        /// A token id outside the vocabulary.
        public static let invalidToken = Code("invalidToken")
        /// Reading the GGUF file failed; ``ModelError/cause`` holds the `GGUFError`.
        public static let format = Code("format")
    }

    /// The kind of failure.
    public var code: Code
    /// A human-readable explanation naming the tensor, hyperparameter or token.
    public var message: String
    /// The underlying error, if this error wraps another one.
    public var cause: (any Error & Sendable)?

    /// Creates an error.
    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        var text = "ModelError.\(code): \(message)"
        if let cause { text += " (caused by: \(cause))" }
        return text
    }

    /// Wraps a GGUF error met while reading model metadata or tensors.
    static func format(_ error: GGUFError) -> ModelError {
        ModelError(.format, error.message, cause: error)
    }
}
