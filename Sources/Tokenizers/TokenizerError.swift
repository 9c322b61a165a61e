/// An error produced while building a tokenizer from a vocabulary.
///
/// Tokenizer construction never traps on malformed vocabularies: missing keys, arrays of the
/// wrong length or type, unknown tokenizer models and unknown pre-tokenizers all surface as a
/// `TokenizerError`. Encoding and decoding themselves never fail.
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure. Compare with the static members, e.g. `error.code == .unknownPreTokenizer`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name, e.g. `"unknownPreTokenizer"`.
        public let rawValue: String

        private init(_ rawValue: String) { self.rawValue = rawValue }

        public var description: String { rawValue }

        /// A required metadata key (tokens, merges, model) is absent.
        public static let missingKey = Code("missingKey")
        /// A metadata value has the wrong type or shape (e.g. token types shorter than tokens).
        public static let invalidVocabulary = Code("invalidVocabulary")
        /// `tokenizer.ggml.model` names a tokenizer family that is not implemented.
        public static let unsupportedModel = Code("unsupportedModel")
        /// `tokenizer.ggml.pre` names a pre-tokenizer that is not implemented.
        public static let unknownPreTokenizer = Code("unknownPreTokenizer")
        /// Reading the GGUF metadata failed; ``TokenizerError/cause`` holds the `GGUFError`.
        public static let gguf = Code("gguf")
    }

    /// The kind of failure.
    public var code: Code
    /// A human-readable explanation naming the offending key or value.
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
        var text = "TokenizerError.\(code): \(message)"
        if let cause {
            text += " (caused by: \(cause))"
        }
        return text
    }
}
