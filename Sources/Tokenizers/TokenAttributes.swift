/// Per-token attributes, as llama.cpp's `llama_token_attr` bit set.
struct TokenAttributes: OptionSet, Sendable {
    let rawValue: UInt16

    static let unknown = TokenAttributes(rawValue: 1 << 0)
    static let unused = TokenAttributes(rawValue: 1 << 1)
    static let normal = TokenAttributes(rawValue: 1 << 2)
    static let control = TokenAttributes(rawValue: 1 << 3)
    static let userDefined = TokenAttributes(rawValue: 1 << 4)
    static let byte = TokenAttributes(rawValue: 1 << 5)
    /// Whitespace before the token is dropped when it is split out of the text.
    static let lstrip = TokenAttributes(rawValue: 1 << 7)
    /// Whitespace after the token is dropped when it is split out of the text.
    static let rstrip = TokenAttributes(rawValue: 1 << 8)

    /// Tokens split out of the text before pre-tokenization.
    static let special: TokenAttributes = [.control, .userDefined, .unknown]
    /// Tokens hidden by `decode(skipSpecial: true)` and only matched with `parseSpecial`.
    static let hiddenSpecial: TokenAttributes = [.control, .unknown]

    /// The attributes of a raw `tokenizer.ggml.token_type` value (no type array → normal).
    init(tokenType: Int32?) {
        guard let tokenType else {
            self = .normal
            return
        }
        switch Vocabulary.TokenType(rawValue: tokenType) {
        case .normal: self = .normal
        case .unknown: self = .unknown
        case .control: self = .control
        case .userDefined: self = .userDefined
        case .unused: self = .unused
        case .byte: self = .byte
        case .undefined, .none: self = []
        }
    }

    init(rawValue: UInt16) { self.rawValue = rawValue }
}
