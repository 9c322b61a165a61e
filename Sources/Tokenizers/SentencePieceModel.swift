/// SentencePiece's score-driven merging, equivalent to llama.cpp's `llm_tokenizer_spm_session`.
///
/// The text (spaces already escaped as `▁`) is split into UTF-8 characters; every adjacent pair
/// whose concatenation is a token is queued by that token's score; the best pair (highest score,
/// then leftmost) is merged and its new neighbours are queued, until nothing merges. Each final
/// symbol is emitted as its token, or, when it is not a token, as one byte-fallback token
/// (`<0xNN>`) per byte.
struct SentencePieceModel: Sendable {
    /// Token text → id (last id wins for repeated texts).
    let index: TokenTextIndex
    /// Score of every token (`tokenizer.ggml.scores`, 0 when absent).
    private let scores: [Float]
    /// The token for each byte: `<0xNN>`, else the one-byte text, else the unknown token, else -1.
    private let byteTokens: [Int32]

    /// Per-call working storage, reused across fragments.
    struct Scratch {
        fileprivate var symbols: [Symbol] = []
        fileprivate var queue = BigramQueue()
    }

    fileprivate struct Symbol {
        var start: Int32
        var count: Int32
        var prev: Int32
        var next: Int32
    }

    /// `tokens` must already have empty texts replaced; `scores` has at least one entry per token
    /// or is empty (all scores 0).
    init(tokens: [String], scores: [Float], unknown: Int32?) {
        let index = TokenTextIndex(tokens: tokens)
        self.index = index
        self.scores = scores.count >= tokens.count ? scores : [Float](repeating: 0, count: tokens.count)
        let hex = Array("0123456789ABCDEF".utf8)
        byteTokens = (0..<256).map { b in
            let name: [UInt8] = [UInt8(ascii: "<"), UInt8(ascii: "0"), UInt8(ascii: "x"), hex[b >> 4], hex[b & 15], UInt8(ascii: ">")]
            if let id = index.id(of: name) { return id }
            if let id = index.id(of: [UInt8(b)]) { return id }
            // llama.cpp throws here (std::map::at); emit the unknown token instead.
            return unknown ?? -1
        }
    }

    /// Whether every byte has a `<0xNN>` or one-byte token (false means unknown tokens may appear).
    var hasFullByteFallback: Bool { !byteTokens.contains(where: { $0 < 0 }) }

    /// Tokenizes `text` (already escaped), appending ids to `out`.
    func encode(_ text: [UInt8], into out: inout [Int32], scratch: inout Scratch) {
        guard !text.isEmpty else { return }
        text.withUnsafeBufferPointer { buf in
            encode(buf, into: &out, scratch: &scratch)
        }
    }

    private func encode(_ text: UnsafeBufferPointer<UInt8>, into out: inout [Int32], scratch: inout Scratch) {
        let n = text.count
        var symbols = scratch.symbols
        var queue = scratch.queue
        defer {
            symbols.removeAll(keepingCapacity: true)
            queue.removeAll()
            scratch.symbols = symbols
            scratch.queue = queue
        }
        symbols.removeAll(keepingCapacity: true)
        queue.removeAll()

        // 1. One symbol per UTF-8 character; the length comes from the lead byte alone (a stray
        //    continuation byte is a character of its own), clipped at the end of the text.
        var offset = 0
        var i: Int32 = 0
        while offset < n {
            let len = min(Self.utf8Length(text[offset]), n - offset)
            offset += len
            symbols.append(Symbol(start: Int32(offset - len), count: Int32(len), prev: i - 1, next: offset == n ? -1 : i + 1))
            i += 1
        }

        func tryAddBigram(_ left: Int32, _ right: Int32) {
            guard left >= 0 && right >= 0 else { return }
            let l = symbols[Int(left)]
            let size = Int(l.count + symbols[Int(right)].count)
            let start = Int(l.start)
            guard let token = index.id(of: UnsafeBufferPointer(rebasing: text[start..<(start + size)])) else { return }
            queue.push(ScoredBigram(score: scores[Int(token)], left: left, right: right, size: Int32(size)))
        }

        // 2. Seed with every adjacent pair.
        if symbols.count > 1 {
            for r in 1..<Int32(symbols.count) {
                tryAddBigram(r - 1, r)
            }
        }

        // 3. Merge the best pair until none is left.
        while let bigram = queue.pop() {
            let l = Int(bigram.left)
            let r = Int(bigram.right)
            let left = symbols[l]
            let right = symbols[r]
            if left.count == 0 || right.count == 0 || left.count + right.count != bigram.size {
                continue  // one side already merged elsewhere
            }
            symbols[l].count += right.count
            symbols[r].count = 0
            symbols[l].next = right.next
            if right.next >= 0 {
                symbols[Int(right.next)].prev = bigram.left
            }
            tryAddBigram(symbols[l].prev, bigram.left)
            tryAddBigram(bigram.left, symbols[l].next)
        }

        // 4. Emit. A merged symbol is always a token (pairs are only queued when they are), so
        //    llama.cpp's `resegment` through its reverse-merge map never applies: a symbol that is
        //    not a token is a single character, emitted as byte tokens.
        var s: Int32 = symbols.isEmpty ? -1 : 0
        while s >= 0 {
            let sym = symbols[Int(s)]
            let start = Int(sym.start)
            let range = start..<(start + Int(sym.count))
            if let token = index.id(of: UnsafeBufferPointer(rebasing: text[range])) {
                out.append(token)
            } else {
                for b in text[range] {
                    let t = byteTokens[Int(b)]
                    if t >= 0 { out.append(t) }
                }
            }
            s = sym.next
        }
    }

    /// llama.cpp's `unicode_len_utf8`: the sequence length announced by a lead byte.
    @inline(__always)
    static func utf8Length(_ byte: UInt8) -> Int {
        switch byte >> 4 {
        case 0xC, 0xD: return 2
        case 0xE: return 3
        case 0xF: return 4
        default: return 1
        }
    }
}

/// A candidate merge of two adjacent symbols in the SentencePiece work queue.
struct ScoredBigram {
    /// Score of the token the pair would form.
    var score: Float
    /// Index of the left symbol.
    var left: Int32
    /// Index of the right symbol.
    var right: Int32
    /// Byte length of the pair's text when it was queued; a mismatch later means it is stale.
    var size: Int32
}

/// ``ScoredBigram``s pop as llama.cpp's `llm_bigram_spm::comparator` orders them: the highest
/// score first and, among equal scores, the leftmost pair.
extension ScoredBigram: QueueOrdered {
    @inline(__always)
    static func popsBefore(_ a: ScoredBigram, _ b: ScoredBigram) -> Bool {
        // llama.cpp's comparator says "l < r" when l.score < r.score, or equal scores and
        // l.left > r.left; the top is the greatest element.
        if a.score != b.score { return a.score > b.score }
        return a.left < b.left
    }
}

/// The SentencePiece work queue.
typealias BigramQueue = PriorityQueue<ScoredBigram>
