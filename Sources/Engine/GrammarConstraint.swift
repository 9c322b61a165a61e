import Foundation
import Grammar
import Tokenizers

/// A grammar in force on a generation: only tokens that keep the output a prefix of one of its
/// sentences may be sampled, and once the output is a complete sentence that can't go on, the
/// completion ends (finish reason `stop`). Built by ``GrammarConstraints``, which shares one
/// compiled grammar and its per-state token masks among every request that uses it.
public struct GrammarConstraint: Sendable, Equatable {
    public let grammar: TokenGrammar
    /// What the client asked for, for records and logs (`json_schema:<name>`, `gbnf`, …).
    public let label: String

    public static func == (a: GrammarConstraint, b: GrammarConstraint) -> Bool { a.grammar === b.grammar && a.label == b.label }
}

/// Compiles grammars for a vocabulary and keeps the recent ones (keyed by their source text), so
/// that a schema sent with every request is compiled once and its masks are computed once.
public final class GrammarConstraints: @unchecked Sendable {
    public static let shared = GrammarConstraints()
    /// Grammars kept per process (least recently used dropped first).
    public var capacity = 16

    private let lock = NSLock()
    private var vocabularies: [ObjectIdentifier: (tokenizer: Tokenizer, vocabulary: TokenVocabulary)] = [:]
    private var grammars: [String: (grammar: TokenGrammar, used: Int)] = [:]
    private var clock = 0

    public init() {}

    /// The constraint for the grammar `build` makes, cached under `key` (its source text) for this
    /// tokenizer. The initial state's mask is computed here, off the scheduler's thread.
    public func constraint(key: String, label: String, tokenizer: Tokenizer,
                           build: () throws(GrammarError) -> Grammar) throws(GrammarError) -> GrammarConstraint {
        let vocabulary = vocabulary(for: tokenizer)
        let fullKey = "\(ObjectIdentifier(tokenizer).hashValue)\u{0}\(key)"
        lock.lock()
        clock += 1
        if let hit = grammars[fullKey] {
            grammars[fullKey] = (hit.grammar, clock)
            lock.unlock()
            return GrammarConstraint(grammar: hit.grammar, label: label)
        }
        lock.unlock()
        let compiled = try CompiledGrammar(try build())
        let tokenGrammar = TokenGrammar(grammar: compiled, vocabulary: vocabulary)
        _ = tokenGrammar.mask(tokenGrammar.initialState)
        lock.lock()
        if grammars.count >= capacity, let oldest = grammars.min(by: { $0.value.used < $1.value.used })?.key {
            grammars.removeValue(forKey: oldest)
        }
        grammars[fullKey] = (tokenGrammar, clock)
        lock.unlock()
        return GrammarConstraint(grammar: tokenGrammar, label: label)
    }

    /// The vocabulary trie of `tokenizer` (control and end-of-generation tokens are never text; the
    /// end-of-generation ones may end a complete sentence).
    public func vocabulary(for tokenizer: Tokenizer) -> TokenVocabulary {
        let id = ObjectIdentifier(tokenizer)
        lock.lock()
        if let v = vocabularies[id] { lock.unlock(); return v.vocabulary }
        lock.unlock()
        var pieces: [[UInt8]?] = []
        pieces.reserveCapacity(tokenizer.vocabularySize)
        for t in 0..<Int32(tokenizer.vocabularySize) {
            pieces.append(tokenizer.isControl(t) || tokenizer.isEndOfGeneration(t) ? nil : tokenizer.pieceBytes(t))
        }
        let v = TokenVocabulary(pieces: pieces, endOfGeneration: Array(tokenizer.endOfGenerationTokenIDs))
        lock.lock()
        // The entry holds the tokenizer, so its identifier can't be reused by another while cached.
        vocabularies[id] = (tokenizer, v)
        lock.unlock()
        return v
    }
}
