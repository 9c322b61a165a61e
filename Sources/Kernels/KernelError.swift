/// An error from the kernel layer: an unsupported tensor type or a shape that does not fit.
public struct KernelError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure. Compare with the static members, e.g. `error.code == .shapeMismatch`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name, e.g. `"shapeMismatch"`.
        public let rawValue: String

        private init(_ rawValue: String) { self.rawValue = rawValue }

        public var description: String { rawValue }

        /// A tensor type no kernel computes with (dequantize, dot product or matmul).
        public static let unsupportedType = Code("unsupportedType")
        /// Operand shapes that do not fit together (row length, block multiple, buffer size).
        public static let shapeMismatch = Code("shapeMismatch")
    }

    /// The kind of failure.
    public var code: Code
    /// A human-readable explanation naming the tensor type or shape.
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
        var text = "KernelError.\(code): \(message)"
        if let cause { text += " (caused by: \(cause))" }
        return text
    }
}
