/// An error produced while reading, validating or writing a GGUF file.
///
/// Every failure in `ModelFormats` is reported as a `GGUFError`; parsing never traps on
/// malformed input. The ``code`` identifies the kind of failure (stable, suitable for
/// matching in code and tests), the ``message`` is a human-readable explanation that
/// names the offending key, tensor or byte offset where one is known.
public struct GGUFError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure. Compare with the static members, e.g. `error.code == .truncated`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name, e.g. `"truncated"`.
        public let rawValue: String

        private init(_ rawValue: String) { self.rawValue = rawValue }

        public var description: String { rawValue }

        /// The file does not start with the four bytes `GGUF`.
        public static let badMagic = Code("badMagic")
        /// The version is not 2 or 3 (or the file is big-endian).
        public static let unsupportedVersion = Code("unsupportedVersion")
        /// The file ends before a value, string, array or tensor it declares.
        public static let truncated = Code("truncated")
        /// A metadata value type tag is not one of the GGUF value types.
        public static let unknownValueType = Code("unknownValueType")
        /// A tensor type is not one of the `GGMLType` cases.
        public static let unknownTensorType = Code("unknownTensorType")
        /// A count, length or number does not fit where it has to go.
        public static let outOfRange = Code("outOfRange")
        /// A size computed from file values (elements, bytes, offsets) overflows `Int`.
        public static let overflow = Code("overflow")
        /// A key, string value or tensor name is not valid UTF-8 (or a key is empty).
        public static let invalidString = Code("invalidString")
        /// Two metadata entries have the same key.
        public static let duplicateKey = Code("duplicateKey")
        /// Two tensors have the same name.
        public static let duplicateTensor = Code("duplicateTensor")
        /// `general.alignment` is not a non-zero power of two, or a tensor offset is not aligned.
        public static let invalidAlignment = Code("invalidAlignment")
        /// A tensor's shape is invalid (dimension count, a dimension <= 0, row not a whole number of blocks, wrong data size).
        public static let invalidTensor = Code("invalidTensor")
        /// The file could not be opened, mapped or written.
        public static let io = Code("io")
        /// A required metadata key is absent.
        public static let missingKey = Code("missingKey")
        /// A metadata value does not have the requested type.
        public static let typeMismatch = Code("typeMismatch")
    }

    /// The kind of failure.
    public var code: Code
    /// A human-readable explanation.
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
        var text = "GGUFError.\(code): \(message)"
        if let cause {
            text += " (caused by: \(cause))"
        }
        return text
    }
}
