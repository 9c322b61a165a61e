/// A model's vocabulary as a byte trie, for computing which tokens a grammar state allows: a walk
/// down the trie follows the automaton byte by byte and prunes a whole subtree at the first byte
/// the grammar refuses, so a state costs the tokens it allows, not the whole vocabulary.
/// Built once per tokenizer.
public final class TokenVocabulary: Sendable {
    public let size: Int
    /// Tokens that end generation; allowed once the grammar's sentence is complete.
    public let endOfGeneration: [Int32]
    // The trie in compressed rows: node n's children are childByte/childNode[childStart[n]..<childStart[n+1]];
    // the tokens whose bytes end at node n are tokens[tokenStart[n]..<tokenStart[n+1]]. Node 0 is the root.
    let childStart: [Int32]
    let childByte: [UInt8]
    let childNode: [Int32]
    let tokenStart: [Int32]
    let tokens: [Int32]

    /// - Parameters:
    ///   - pieces: each token's bytes, nil for tokens a grammar never produces (control tokens,
    ///     empty pieces).
    ///   - endOfGeneration: the tokens that end generation.
    public init(pieces: [[UInt8]?], endOfGeneration: [Int32]) {
        size = pieces.count
        self.endOfGeneration = endOfGeneration.filter { $0 >= 0 && Int($0) < pieces.count }.sorted()
        // Sort the token ids by their bytes: a trie in depth-first order falls out of one pass.
        let ids = pieces.indices.filter { pieces[$0].map { !$0.isEmpty } ?? false }
            .sorted { pieces[$0]!.lexicographicallyPrecedes(pieces[$1]!) }
        // Build nodes with explicit child lists, then flatten.
        var children: [[(UInt8, Int32)]] = [[]]
        var nodeTokens: [[Int32]] = [[]]
        var path: [Int32] = [0]          // node at each depth of the previous token
        var previous: [UInt8] = []
        for id in ids {
            let bytes = pieces[id]!
            var common = 0
            while common < bytes.count && common < previous.count && bytes[common] == previous[common] { common += 1 }
            path.removeSubrange((common + 1)...)
            for depth in common..<bytes.count {
                let node = Int32(children.count)
                children.append([])
                nodeTokens.append([])
                children[Int(path[depth])].append((bytes[depth], node))
                path.append(node)
            }
            nodeTokens[Int(path[bytes.count])].append(Int32(id))
            previous = bytes
        }
        var childStart: [Int32] = [0], childByte: [UInt8] = [], childNode: [Int32] = []
        var tokenStart: [Int32] = [0], tokens: [Int32] = []
        for n in children.indices {
            for (b, c) in children[n] { childByte.append(b); childNode.append(c) }
            childStart.append(Int32(childByte.count))
            tokens.append(contentsOf: nodeTokens[n])
            tokenStart.append(Int32(tokens.count))
        }
        self.childStart = childStart
        self.childByte = childByte
        self.childNode = childNode
        self.tokenStart = tokenStart
        self.tokens = tokens
    }

    public var nodeCount: Int { childStart.count - 1 }
    /// Words of a token mask (one bit per token).
    public var maskWords: Int { (size + 63) / 64 }
}
