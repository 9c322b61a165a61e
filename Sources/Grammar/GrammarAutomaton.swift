import Foundation

/// The pushdown automaton of a ``CompiledGrammar``, made deterministic on the fly. A state is a
/// set of stacks of element positions (the top of each stack is the byte set it waits for; an
/// empty stack means the input so far is a complete sentence), as in llama.cpp's grammar engine.
/// States are interned, so a state is a small integer and each (state, byte) transition is
/// computed once and then read from a table: the same state comes back again and again in a JSON
/// document (inside a string, after a comma), so matching soon costs one array read per byte.
///
/// Thread-safe: the tables grow under a lock. States are never forgotten while the automaton
/// lives, so a state id stays valid; ``maxStates`` bounds the memory (beyond it, a transition into
/// a new state is refused as dead, which ends generation with finish reason `length`).
public final class GrammarAutomaton: @unchecked Sendable {
    public let grammar: CompiledGrammar
    public static let dead: Int32 = -1
    private static let unknown: Int32 = -2
    public static let maxStates = 50_000
    /// Deeper stacks (nesting) are refused as dead rather than grown without bound.
    public static let maxDepth = 2_048

    private let lock = NSLock()
    private var stateStacks: [[[Int32]]] = []
    private var index: [[[Int32]]: Int32] = [:]
    private var transitions: [Int32] = []
    private var accepting: [Bool] = []
    private var continuing: [Bool] = []
    private var shortest: [Int32] = []
    /// Per element position: the fewest bytes that finish its alternative from there.
    private let restBytes: [Int32]
    public private(set) var initial: Int32 = 0
    /// ``shortestCompletion(_:)`` of a state from which no sentence can be reached.
    public static let unreachable = Int(Int32.max / 4)

    public init(_ grammar: CompiledGrammar) {
        self.grammar = grammar
        restBytes = Self.restBytes(grammar)
        var start = Set<[Int32]>()
        for alt in grammar.alternatives[Int(grammar.root)] { expand([alt], into: &start) }
        initial = intern(start)
    }

    public var stateCount: Int {
        lock.lock(); defer { lock.unlock() }
        return stateStacks.count
    }

    /// The state after `byte`, or ``dead``.
    public func step(_ state: Int32, _ byte: UInt8) -> Int32 {
        lock.lock(); defer { lock.unlock() }
        return stepLocked(state, byte)
    }

    /// The state after `bytes`, or ``dead``.
    public func step(_ state: Int32, _ bytes: some Sequence<UInt8>) -> Int32 {
        lock.lock(); defer { lock.unlock() }
        var s = state
        for b in bytes {
            s = stepLocked(s, b)
            if s < 0 { return Self.dead }
        }
        return s
    }

    /// The input so far is a complete sentence.
    public func isAccepting(_ state: Int32) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return state >= 0 && accepting[Int(state)]
    }

    /// More input may follow.
    public func canContinue(_ state: Int32) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return state >= 0 && continuing[Int(state)]
    }

    /// The fewest bytes that make the input so far a complete sentence (0 if it is one;
    /// ``unreachable`` for the dead state).
    public func shortestCompletion(_ state: Int32) -> Int {
        lock.lock(); defer { lock.unlock() }
        return state >= 0 ? Int(shortest[Int(state)]) : Self.unreachable
    }

    /// The fewest bytes that finish each element's alternative from it: a fixed point over the
    /// rules (recursion converges; a rule that can never finish stays at ``unreachable``).
    private static func restBytes(_ g: CompiledGrammar) -> [Int32] {
        let infinity = Int32(unreachable)
        var rest = [Int32](repeating: infinity, count: g.elements.count + 1)
        var ruleMin = [Int32](repeating: infinity, count: g.alternatives.count)
        // Each pass settles at least one more level of rule nesting; a grammar nested deeper than
        // the passes allow keeps an overestimate there (a bound, never an underestimate).
        var changed = true
        var passes = 0
        while changed && passes < 256 {
            changed = false
            passes += 1
            for p in stride(from: g.elements.count - 1, through: 0, by: -1) {
                let e = g.elements[p]
                let v: Int32
                if e == CompiledGrammar.end { v = 0 }
                else if e >= 0 { v = min(infinity, 1 + rest[p + 1]) }
                else { v = min(infinity, ruleMin[Int(-e - 2)] + rest[p + 1]) }
                rest[p] = v
            }
            for r in g.alternatives.indices {
                let m = g.alternatives[r].map { rest[Int($0)] }.min() ?? infinity
                if m < ruleMin[r] { ruleMin[r] = m; changed = true }
            }
        }
        return rest
    }

    /// Runs `body` with the lock held, for walks that take many steps (``TokenGrammar``).
    func withLock<T>(_ body: (Locked) -> T) -> T {
        lock.lock(); defer { lock.unlock() }
        return body(Locked(automaton: self))
    }

    struct Locked {
        let automaton: GrammarAutomaton
        @inline(__always) func step(_ s: Int32, _ b: UInt8) -> Int32 { automaton.stepLocked(s, b) }
        func isAccepting(_ s: Int32) -> Bool { automaton.accepting[Int(s)] }
    }

    @inline(__always) private func stepLocked(_ state: Int32, _ byte: UInt8) -> Int32 {
        let slot = Int(state) << 8 | Int(byte)
        let known = transitions[slot]
        if known != Self.unknown { return known }
        let next = compute(state, byte)
        transitions[slot] = next
        return next
    }

    private func compute(_ state: Int32, _ byte: UInt8) -> Int32 {
        var next = Set<[Int32]>()
        let elements = grammar.elements
        for stack in stateStacks[Int(state)] {
            guard let top = stack.last else { continue }
            let e = elements[Int(top)]
            guard e >= 0, grammar.byteSets[Int(e)].contains(byte) else { continue }
            var s = stack
            s[s.count - 1] = top + 1
            expand(s, into: &next)
        }
        if next.isEmpty { return Self.dead }
        if index[canonical(next)] == nil && stateStacks.count >= Self.maxStates { return Self.dead }
        return intern(next)
    }

    /// Advances `stack` until its top waits for a byte (or it is empty), into `out`: an
    /// alternative's end pops, a rule reference is replaced by its continuation (skipped when it
    /// is the end, so that right recursion does not grow the stack) and one stack per alternative.
    ///
    /// A work list rather than recursion, so that a long chain of rules can't exhaust the thread's
    /// stack; at most ``maxExpansion`` steps (a grammar that needs more is treated as dead there).
    private func expand(_ stack: [Int32], into out: inout Set<[Int32]>) {
        var work = [stack]
        var steps = 0
        while var s = work.popLast() {
            steps += 1
            guard steps <= Self.maxExpansion else { return }
            guard let top = s.last else { out.insert(s); continue }
            guard s.count <= Self.maxDepth else { continue }
            let e = grammar.elements[Int(top)]
            if e >= 0 { out.insert(s); continue }
            s.removeLast()
            if e == CompiledGrammar.end { work.append(s); continue }
            let rule = Int(-e - 2)
            if grammar.elements[Int(top) + 1] != CompiledGrammar.end { s.append(top + 1) }
            for alt in grammar.alternatives[rule].reversed() {
                var t = s
                t.append(alt)
                work.append(t)
            }
        }
    }

    /// Steps one expansion may take.
    public static let maxExpansion = 100_000

    private func canonical(_ stacks: Set<[Int32]>) -> [[Int32]] {
        stacks.sorted { $0.lexicographicallyPrecedes($1) }
    }

    private func intern(_ stacks: Set<[Int32]>) -> Int32 {
        let key = canonical(stacks)
        if let id = index[key] { return id }
        let id = Int32(stateStacks.count)
        stateStacks.append(key)
        index[key] = id
        transitions.append(contentsOf: repeatElement(Self.unknown, count: 256))
        accepting.append(key.contains { $0.isEmpty })
        continuing.append(key.contains { !$0.isEmpty })
        let infinity = Int64(Self.unreachable)
        shortest.append(Int32(key.map { stack in min(infinity, stack.reduce(Int64(0)) { $0 + Int64(restBytes[Int($1)]) }) }.min() ?? infinity))
        return id
    }
}
