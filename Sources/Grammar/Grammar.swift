/// A context-free grammar over UTF-8 bytes: named rules whose bodies are expressions. It is what
/// both front ends produce (GBNF text, ``GBNFParser``; a JSON Schema, ``JSONSchemaGrammar``) and
/// what ``CompiledGrammar`` turns into the pushdown automaton that masks tokens during decoding.
public struct Grammar: Sendable, Equatable {
    /// Rule names in definition order, the root first.
    public private(set) var names: [String] = []
    public private(set) var rules: [String: GrammarExpression] = [:]
    public let root: String

    public init(root: String = "root") {
        self.root = root
    }

    /// Defines (or redefines) `name`.
    public mutating func define(_ name: String, _ body: GrammarExpression) {
        if rules[name] == nil { names.append(name) }
        rules[name] = body
    }

    public func isDefined(_ name: String) -> Bool { rules[name] != nil }
}

/// A rule body. Terminals are bytes (`literal`, `bytes`) or Unicode scalars (`characters`, which
/// compiles to the UTF-8 byte sequences of its ranges, so a token that ends inside a character is
/// still judged byte by byte).
public indirect enum GrammarExpression: Sendable, Hashable {
    /// These bytes, in order (an empty literal matches the empty string).
    case literal([UInt8])
    /// One byte from the set.
    case bytes(ByteSet)
    /// One Unicode scalar within (or, negated, outside) the ranges; never a surrogate.
    case characters([ClosedRange<UInt32>], negated: Bool)
    /// Another rule, by name.
    case rule(String)
    case sequence([GrammarExpression])
    case choice([GrammarExpression])
    /// `min` to `max` (nil: unbounded) repetitions.
    case repetition(GrammarExpression, min: Int, max: Int?)

    public static func text(_ s: String) -> GrammarExpression { .literal(Array(s.utf8)) }
    public static let empty = GrammarExpression.literal([])
    public static func optional(_ e: GrammarExpression) -> GrammarExpression { .repetition(e, min: 0, max: 1) }
    public static func star(_ e: GrammarExpression) -> GrammarExpression { .repetition(e, min: 0, max: nil) }
    public static func plus(_ e: GrammarExpression) -> GrammarExpression { .repetition(e, min: 1, max: nil) }
    /// Any one Unicode scalar.
    public static let anyCharacter = GrammarExpression.characters([], negated: true)
}

/// A set of bytes, as four 64-bit words.
public struct ByteSet: Sendable, Hashable {
    public private(set) var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    public init() {}
    public init(_ bytes: some Sequence<UInt8>) {
        for b in bytes { insert(b) }
    }
    public init(range: ClosedRange<UInt8>) {
        for b in range { insert(b) }
    }

    public mutating func insert(_ b: UInt8) {
        let bit = UInt64(1) << UInt64(b & 63)
        switch b >> 6 {
        case 0: words.0 |= bit
        case 1: words.1 |= bit
        case 2: words.2 |= bit
        default: words.3 |= bit
        }
    }

    @inline(__always) public func contains(_ b: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(b & 63)
        switch b >> 6 {
        case 0: return words.0 & bit != 0
        case 1: return words.1 & bit != 0
        case 2: return words.2 & bit != 0
        default: return words.3 & bit != 0
        }
    }

    public var isEmpty: Bool { words.0 | words.1 | words.2 | words.3 == 0 }

    public static func == (a: ByteSet, b: ByteSet) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }

    public func hash(into h: inout Hasher) {
        h.combine(words.0); h.combine(words.1); h.combine(words.2); h.combine(words.3)
    }
}
