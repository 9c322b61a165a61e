/// A piece of input text after special-token partitioning.
enum TextFragment: Equatable {
    /// Raw text still to be pre-tokenized: a byte range of the input's UTF-8.
    case text(Range<Int>)
    /// A special (control, user-defined or unknown-type) token found verbatim in the input.
    case token(Int32)
}

/// Splits input text on special tokens before pre-tokenization, reproducing llama.cpp's
/// `tokenizer_st_partition`: special tokens are taken longest text first; each one, in turn,
/// splits every remaining text fragment at its leftmost non-overlapping occurrences. Control and
/// unknown-type tokens only take part when `parseSpecial` is set; user-defined tokens always do.
///
/// llama.cpp searches the text once per special token. Here one trie pass finds every special
/// token that occurs at all, and the same per-token procedure then runs over those only, driven by
/// the recorded positions, so the result is identical but the cost does not grow with the number
/// of special tokens in the vocabulary.
struct SpecialTokenPartitioner: Sendable {
    private struct Special {
        var id: Int32
        var length: Int
        /// Control or unknown type: skipped unless `parseSpecial`.
        var needsParseSpecial: Bool
        /// Drop whitespace before / after the token (llama.cpp's LSTRIP / RSTRIP attributes).
        var lstrip: Bool
        var rstrip: Bool
    }

    /// Specials in priority order (longest text first, then lowest id).
    private let specials: [Special]
    /// Trie over the specials' UTF-8: `node << 8 | byte` → child node.
    private let edges: [Int: Int32]
    /// Indices into `specials` of the tokens ending at each trie node.
    private let terminals: [Int32: [Int32]]
    /// Bytes that start at least one special token.
    private let firstBytes: [Bool]

    /// One special token: its id and text, whether it needs `parseSpecial`, and whether it
    /// strips whitespace on its left / right.
    struct Candidate {
        var id: Int32
        var text: String
        var needsParseSpecial: Bool
        var lstrip = false
        var rstrip = false
    }

    init(candidates: [Candidate]) {
        let sorted = candidates
            .filter { !$0.text.utf8.isEmpty }
            .sorted { a, b in
                let la = a.text.utf8.count
                let lb = b.text.utf8.count
                return la != lb ? la > lb : a.id < b.id
            }
        var specials: [Special] = []
        var edges: [Int: Int32] = [:]
        var terminals: [Int32: [Int32]] = [:]
        var first = [Bool](repeating: false, count: 256)
        var nodeCount: Int32 = 1
        for (index, c) in sorted.enumerated() {
            let bytes = Array(c.text.utf8)
            specials.append(Special(
                id: c.id, length: bytes.count, needsParseSpecial: c.needsParseSpecial, lstrip: c.lstrip, rstrip: c.rstrip))
            first[Int(bytes[0])] = true
            var node: Int32 = 0
            for b in bytes {
                let key = Int(node) << 8 | Int(b)
                if let child = edges[key] {
                    node = child
                } else {
                    edges[key] = nodeCount
                    node = nodeCount
                    nodeCount += 1
                }
            }
            terminals[node, default: []].append(Int32(index))
        }
        self.specials = specials
        self.edges = edges
        self.terminals = terminals
        self.firstBytes = first
    }

    /// The positions in `utf8` where a control (or unknown-type) token's text starts.
    func controlTokenStarts(_ utf8: [UInt8]) -> [Int] {
        var starts: [Int] = []
        let n = utf8.count
        for p in 0..<n where firstBytes[Int(utf8[p])] {
            var node: Int32 = 0
            var q = p
            search: while q < n, let child = edges[Int(node) << 8 | Int(utf8[q])] {
                node = child
                q += 1
                for s in terminals[node] ?? [] where specials[Int(s)].needsParseSpecial {
                    starts.append(p)
                    break search
                }
            }
        }
        return starts
    }

    /// Partitions `utf8` into text and special-token fragments. No special token is taken at a
    /// position in `literal` (text escaped as plain, see ``Tokenizer/escapeControlTokens(_:)``).
    func partition(_ utf8: [UInt8], parseSpecial: Bool, literal: Set<Int> = []) -> [TextFragment] {
        guard !utf8.isEmpty else { return [] }
        guard !specials.isEmpty else { return [.text(0..<utf8.count)] }
        // 1. Every occurrence of every eligible special token, by special index, ascending.
        var occurrences: [Int32: [Int]] = [:]
        let n = utf8.count
        for p in 0..<n where firstBytes[Int(utf8[p])] && (literal.isEmpty || !literal.contains(p)) {
            var node: Int32 = 0
            var q = p
            while q < n, let child = edges[Int(node) << 8 | Int(utf8[q])] {
                node = child
                q += 1
                if let ends = terminals[node] {
                    for s in ends where parseSpecial || !specials[Int(s)].needsParseSpecial {
                        occurrences[s, default: []].append(p)
                    }
                }
            }
        }
        var fragments: [TextFragment] = [.text(0..<n)]
        guard !occurrences.isEmpty else { return fragments }
        // 2. llama.cpp's procedure, for the specials that occur, in priority order.
        for s in occurrences.keys.sorted() {
            guard let positions = occurrences[s] else { continue }
            let special = specials[Int(s)]
            let len = special.length
            var next: [TextFragment] = []
            next.reserveCapacity(fragments.count + 2)
            var k = 0
            for fragment in fragments {
                guard case .text(let range) = fragment else {
                    next.append(fragment)
                    continue
                }
                var a = range.lowerBound
                let b = range.upperBound
                while k < positions.count && positions[k] < a { k += 1 }
                while k < positions.count && positions[k] + len <= b {
                    let p = positions[k]
                    var leftEnd = p
                    if special.lstrip {
                        while leftEnd > a && Self.isSpace(utf8[leftEnd - 1]) { leftEnd -= 1 }
                    }
                    if leftEnd > a { next.append(.text(a..<leftEnd)) }
                    next.append(.token(special.id))
                    a = p + len
                    if special.rstrip {
                        while a < b && Self.isSpace(utf8[a]) { a += 1 }
                    }
                    while k < positions.count && positions[k] < a { k += 1 }
                }
                if a < b { next.append(.text(a..<b)) }
            }
            fragments = next
        }
        return fragments
    }

    /// C's `isspace` in the "C" locale.
    @inline(__always)
    static func isSpace(_ c: UInt8) -> Bool {
        c == 0x20 || (0x09...0x0D).contains(c)
    }
}
