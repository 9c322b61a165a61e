import Foundation

/// A grammar bound to a vocabulary: for each automaton state, the set of tokens whose bytes keep
/// the output inside the grammar (plus the end-of-generation tokens where the output is a complete
/// sentence). A state's mask is computed once, by one trie walk, and cached, so decoding under a
/// grammar costs a dictionary read per step once its states have been seen (XGrammar's idea of a
/// precomputed per-state token mask, taken to whole states). Shared by every request that uses the
/// same grammar on the same vocabulary, and thread-safe.
public final class TokenGrammar: @unchecked Sendable {
    public let automaton: GrammarAutomaton
    public let vocabulary: TokenVocabulary
    private let lock = NSLock()
    private var masks: [Int32: [UInt64]] = [:]
    /// Bytes of masks kept at most (a mask is 6 KB on a 49k vocabulary, 32 KB on a 262k one);
    /// beyond, the cache starts over.
    public static let maxCachedMaskBytes = 32 << 20

    public init(grammar: CompiledGrammar, vocabulary: TokenVocabulary) {
        automaton = GrammarAutomaton(grammar)
        self.vocabulary = vocabulary
    }

    public var initialState: Int32 { automaton.initial }

    /// The tokens allowed in `state`: bit `t % 64` of word `t / 64` is set for token `t`.
    public func mask(_ state: Int32) -> [UInt64] {
        lock.lock()
        if let m = masks[state] { lock.unlock(); return m }
        lock.unlock()
        let m = computeMask(state)
        lock.lock()
        if (masks.count + 1) * m.count * 8 > Self.maxCachedMaskBytes { masks.removeAll(keepingCapacity: true) }
        masks[state] = m
        lock.unlock()
        return m
    }

    /// The state after `token`'s bytes (``GrammarAutomaton/dead`` if they leave the grammar).
    public func advance(_ state: Int32, bytes: [UInt8]) -> Int32 {
        automaton.step(state, bytes)
    }

    public func isAccepting(_ state: Int32) -> Bool { automaton.isAccepting(state) }

    /// The fewest tokens that surely end the output from `state`: 0 for a complete sentence that
    /// can't go on; 1 (an end-of-generation token) for a complete one that could; otherwise one
    /// token per byte of the shortest completion (every byte has a token of its own in byte-level
    /// and byte-fallback vocabularies), plus one to end it. An upper bound on what is needed.
    public func tokensToFinish(_ state: Int32) -> Int {
        if automaton.isAccepting(state) { return automaton.canContinue(state) ? 1 : 0 }
        let bytes = automaton.shortestCompletion(state)
        return bytes >= GrammarAutomaton.unreachable ? bytes : bytes + 1
    }
    public func canContinue(_ state: Int32) -> Bool { automaton.canContinue(state) }

    private func computeMask(_ state: Int32) -> [UInt64] {
        let v = vocabulary
        var bits = [UInt64](repeating: 0, count: v.maskWords)
        guard state >= 0 else { return bits }
        automaton.withLock { a in
            var pending: [(node: Int32, state: Int32)] = [(0, state)]
            while let (node, s) = pending.popLast() {
                for c in Int(v.childStart[Int(node)])..<Int(v.childStart[Int(node) + 1]) {
                    let next = a.step(s, v.childByte[c])
                    guard next >= 0 else { continue }
                    let child = Int(v.childNode[c])
                    for t in Int(v.tokenStart[child])..<Int(v.tokenStart[child + 1]) {
                        let id = Int(v.tokens[t])
                        bits[id >> 6] |= 1 << UInt64(id & 63)
                    }
                    if v.childStart[child] < v.childStart[child + 1] { pending.append((Int32(child), next)) }
                }
            }
            if a.isAccepting(state) {
                for id in v.endOfGeneration { bits[Int(id) >> 6] |= 1 << UInt64(id & 63) }
            }
        }
        return bits
    }
}
