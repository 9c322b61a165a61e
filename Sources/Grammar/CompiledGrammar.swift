/// A grammar flattened for matching: every rule is a list of alternatives, every alternative a
/// run of elements in one array — a byte set, a reference to a rule, or the alternative's end —
/// the layout llama.cpp's grammar engine matches over. Repetitions become right-recursive helper
/// rules, character classes the UTF-8 byte sequences of their ranges. Left recursion is refused
/// (matching would never terminate), so is a grammar past ``maxElements``.
public final class CompiledGrammar: Sendable {
    /// `>= 0`: index into ``byteSets``; ``end``: the alternative ends; `<= -2`: rule `-(e + 2)`.
    let elements: [Int32]
    let byteSets: [ByteSet]
    /// Start positions (in ``elements``) of each rule's alternatives.
    let alternatives: [[Int32]]
    let root: Int32
    static let end: Int32 = -1
    public static let maxElements = 1 << 20

    public var ruleCount: Int { alternatives.count }
    public var elementCount: Int { elements.count }

    public init(_ grammar: Grammar) throws(GrammarError) {
        var b = Builder(grammar: grammar)
        let root = try b.rule(named: grammar.root)
        try b.defineNamedRules()
        try b.checkLeftRecursion()
        var elements: [Int32] = []
        var alternatives: [[Int32]] = []
        for rule in b.rules {
            var starts: [Int32] = []
            for alt in rule {
                starts.append(Int32(elements.count))
                for atom in alt {
                    switch atom {
                    case .set(let s): elements.append(Int32(b.setIndex(s)))
                    case .ref(let r): elements.append(-Int32(r) - 2)
                    }
                }
                elements.append(Self.end)
            }
            alternatives.append(starts)
        }
        guard elements.count <= Self.maxElements else {
            throw GrammarError(.invalid, "the grammar is too large (\(elements.count) elements; at most \(Self.maxElements))")
        }
        self.elements = elements
        self.byteSets = b.sets
        self.alternatives = alternatives
        self.root = Int32(root)
    }

    // MARK: Building

    private enum Atom: Hashable {
        case set(ByteSet)
        case ref(Int)
    }

    private struct Builder {
        let grammar: Grammar
        var rules: [[[Atom]]] = []
        var ruleNames: [String] = []
        var named: [String: Int] = [:]
        var anonymous: [GrammarExpression: Int] = [:]
        var sets: [ByteSet] = []
        var setIndices: [ByteSet: Int] = [:]
        var size = 0

        init(grammar: Grammar) { self.grammar = grammar }

        mutating func setIndex(_ s: ByteSet) -> Int {
            if let i = setIndices[s] { return i }
            sets.append(s)
            setIndices[s] = sets.count - 1
            return sets.count - 1
        }

        mutating func newRule(_ name: String) -> Int {
            rules.append([])
            ruleNames.append(name)
            return rules.count - 1
        }

        mutating func rule(named name: String) throws(GrammarError) -> Int {
            if let r = named[name] { return r }
            guard grammar.isDefined(name) else { throw GrammarError(.syntax, "rule '\(name)' is used but never defined") }
            let r = newRule(name)
            named[name] = r
            return r
        }

        /// Compiles every named rule reachable from the ones referenced so far.
        mutating func defineNamedRules() throws(GrammarError) {
            // Rules are numbered as they are first referenced; compiling one may reference more.
            var next = 0
            while next < rules.count {
                let name = ruleNames[next]
                if !name.isEmpty, named[name] == next { rules[next] = try alternatives(grammar.rules[name]!) }
                next += 1
            }
        }

        mutating func alternatives(_ e: GrammarExpression) throws(GrammarError) -> [[Atom]] {
            if case .choice(let alts) = e {
                var out: [[Atom]] = []
                for a in alts { out.append(contentsOf: try alternatives(a)) }
                return out
            }
            return [try atoms(e)]
        }

        mutating func grow(_ n: Int) throws(GrammarError) {
            size += n
            guard size <= CompiledGrammar.maxElements else {
                throw GrammarError(.invalid, "the grammar is too large (more than \(CompiledGrammar.maxElements) elements)")
            }
        }

        mutating func anonymousRule(for e: GrammarExpression, _ body: (inout Builder) throws(GrammarError) -> [[Atom]]) throws(GrammarError) -> Int {
            if let r = anonymous[e] { return r }
            let r = newRule("")
            anonymous[e] = r
            rules[r] = try body(&self)
            return r
        }

        mutating func atoms(_ e: GrammarExpression) throws(GrammarError) -> [Atom] {
            switch e {
            case .literal(let bytes):
                try grow(bytes.count)
                return bytes.map { .set(ByteSet([$0])) }
            case .bytes(let s):
                try grow(1)
                return [.set(s)]
            case .characters(let ranges, let negated):
                let r = try anonymousRule(for: e) { b throws(GrammarError) in
                    let seqs = UTF8Ranges.sequences(UTF8Ranges.normalize(ranges, negated: negated))
                    try b.grow(seqs.count * 4)
                    return seqs.map { $0.map { .set(ByteSet(range: $0)) } }
                }
                return [.ref(r)]
            case .rule(let name):
                return [.ref(try rule(named: name))]
            case .sequence(let items):
                var out: [Atom] = []
                for i in items { out.append(contentsOf: try atoms(i)) }
                return out
            case .choice(let alts):
                if alts.count == 1 { return try atoms(alts[0]) }
                let r = try anonymousRule(for: e) { b throws(GrammarError) in try b.alternatives(e) }
                return [.ref(r)]
            case .repetition(let inner, let lo, let hi):
                guard lo >= 0, hi.map({ $0 >= lo }) ?? true else { throw GrammarError(.invalid, "a repetition's bounds are invalid") }
                if hi == 0 { return [] }
                let unit = try atoms(inner)
                var out: [Atom] = []
                for _ in 0..<lo { out.append(contentsOf: unit) }
                try grow(unit.count * lo)
                if let hi {
                    // O_k ::= unit O_(k-1) | ε, O_1 ::= unit | ε
                    var previous: Int? = nil
                    for _ in 0..<(hi - lo) {
                        let r = newRule("")
                        var first = unit
                        if let previous { first.append(.ref(previous)) }
                        rules[r] = [first, []]
                        try grow(unit.count + 2)
                        previous = r
                    }
                    if let previous { out.append(.ref(previous)) }
                } else {
                    let r = try anonymousRule(for: e) { b throws(GrammarError) in [[], []] }
                    rules[r] = [unit + [.ref(r)], []]
                    try grow(unit.count + 2)
                    out.append(.ref(r))
                }
                return out
            }
        }

        /// Refuses rules that can reach themselves without consuming a byte.
        func checkLeftRecursion() throws(GrammarError) {
            var nullable = [Bool](repeating: false, count: rules.count)
            var changed = true
            while changed {
                changed = false
                for (r, alts) in rules.enumerated() where !nullable[r] {
                    if alts.contains(where: { $0.allSatisfy { if case .ref(let x) = $0 { return nullable[x] } else { return false } } }) {
                        nullable[r] = true
                        changed = true
                    }
                }
            }
            var leftEdges = [[Int]](repeating: [], count: rules.count)
            for (r, alts) in rules.enumerated() {
                for alt in alts {
                    for atom in alt {
                        guard case .ref(let x) = atom else { break }
                        leftEdges[r].append(x)
                        if !nullable[x] { break }
                    }
                }
            }
            // 0 unvisited, 1 on the path, 2 done.
            var mark = [UInt8](repeating: 0, count: rules.count)
            for start in rules.indices where mark[start] == 0 {
                var path: [(rule: Int, next: Int)] = [(start, 0)]
                mark[start] = 1
                while let top = path.last {
                    if top.next < leftEdges[top.rule].count {
                        path[path.count - 1].next += 1
                        let x = leftEdges[top.rule][top.next]
                        if mark[x] == 1 {
                            let name = path.map { ruleNames[$0.rule] }.last { !$0.isEmpty } ?? "(a repetition)"
                            throw GrammarError(.invalid, "rule '\(name)' is left-recursive (it can reach itself without consuming input), or repeats something that can be empty")
                        }
                        if mark[x] == 0 { mark[x] = 1; path.append((x, 0)) }
                    } else {
                        mark[top.rule] = 2
                        path.removeLast()
                    }
                }
            }
        }
    }
}

/// Unicode scalar ranges as UTF-8 byte-range sequences (the construction of Russ Cox's RE2 and
/// Rust's utf8-ranges): every scalar in the ranges, and no other byte string, matches one sequence.
enum UTF8Ranges {
    /// Sorted, merged ranges without surrogates; with `negated`, their complement.
    static func normalize(_ ranges: [ClosedRange<UInt32>], negated: Bool) -> [ClosedRange<UInt32>] {
        var merged: [ClosedRange<UInt32>] = []
        for r in ranges.map({ min($0.lowerBound, 0x10FFFF)...min($0.upperBound, 0x10FFFF) }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = merged.last, r.lowerBound <= last.upperBound &+ 1 {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                merged.append(r)
            }
        }
        if negated {
            var out: [ClosedRange<UInt32>] = []
            var next: UInt32 = 0
            for r in merged {
                if r.lowerBound > next { out.append(next...(r.lowerBound - 1)) }
                next = r.upperBound + 1
            }
            if next <= 0x10FFFF { out.append(next...0x10FFFF) }
            merged = out
        }
        // Cut out the surrogates.
        var out: [ClosedRange<UInt32>] = []
        for r in merged {
            if r.upperBound < 0xD800 || r.lowerBound > 0xDFFF { out.append(r); continue }
            if r.lowerBound < 0xD800 { out.append(r.lowerBound...0xD7FF) }
            if r.upperBound > 0xDFFF { out.append(0xE000...r.upperBound) }
        }
        return out
    }

    static func sequences(_ ranges: [ClosedRange<UInt32>]) -> [[ClosedRange<UInt8>]] {
        var out: [[ClosedRange<UInt8>]] = []
        for r in ranges {
            for (lo, hi) in [(UInt32(0), UInt32(0x7F)), (0x80, 0x7FF), (0x800, 0xFFFF), (0x10000, 0x10FFFF)] {
                let a = max(lo, r.lowerBound), b = min(hi, r.upperBound)
                if a <= b { split(a, b, into: &out) }
            }
        }
        return out
    }

    private static func split(_ lo: UInt32, _ hi: UInt32, into out: inout [[ClosedRange<UInt8>]]) {
        let n = encode(lo).count
        if n > 1 {
            for i in 1..<n {
                let m: UInt32 = (1 << (6 * UInt32(i))) - 1
                if lo & ~m != hi & ~m {
                    if lo & m != 0 {
                        split(lo, lo | m, into: &out)
                        split((lo | m) + 1, hi, into: &out)
                        return
                    }
                    if hi & m != m {
                        split(lo, (hi & ~m) - 1, into: &out)
                        split(hi & ~m, hi, into: &out)
                        return
                    }
                }
            }
        }
        let a = encode(lo), b = encode(hi)
        out.append(zip(a, b).map { $0...$1 })
    }

    static func encode(_ v: UInt32) -> [UInt8] {
        switch v {
        case 0..<0x80: return [UInt8(v)]
        case 0x80..<0x800: return [UInt8(0xC0 | v >> 6), UInt8(0x80 | v & 0x3F)]
        case 0x800..<0x10000: return [UInt8(0xE0 | v >> 12), UInt8(0x80 | (v >> 6) & 0x3F), UInt8(0x80 | v & 0x3F)]
        default: return [UInt8(0xF0 | v >> 18), UInt8(0x80 | (v >> 12) & 0x3F), UInt8(0x80 | (v >> 6) & 0x3F), UInt8(0x80 | v & 0x3F)]
        }
    }
}
