/// Byte-level BPE merging, equivalent to llama.cpp's `llm_tokenizer_bpe_session::tokenize`.
///
/// Every string that can appear during merging (token texts, both sides of every merge and their
/// concatenations, and the 256 byte characters) is interned as a *symbol* id: a token's own id
/// for token texts (the last id when a text repeats, like llama.cpp's `token_to_id`), ids from
/// `vocabularySize` upward for strings that are not tokens. Merges become a table from a pair of
/// symbol ids to (rank, merged symbol), so the merge loop never touches strings.
struct BPEModel: Sendable {
    /// Number of tokens; symbol ids below this are token ids.
    let vocabularySize: Int
    /// Text (UTF-8) → symbol id, for every interned string.
    let textToSymbol: [ByteString: Int32]
    /// `left << 32 | right` → `rank << 32 | merged`; the first occurrence of a pair wins.
    private let merges: [UInt64: UInt64]
    /// The symbol of each byte's character.
    private let byteSymbol: [Int32]
    /// UTF-8 of the (byte-encoded) text of symbols that are not tokens, indexed from `vocabularySize`.
    private let extraText: [[UInt8]]
    /// The token whose text is a given single ASCII character, or -1.
    private let asciiToken: [Int32]
    /// Emit a whole word as one token when its text is a token (llama.cpp's `ignore_merges`).
    let ignoreMerges: Bool

    /// Builds the merge tables. `tokens` must already have empty texts replaced.
    init(tokens: [String], merges mergeList: [String], ignoreMerges: Bool) {
        let n = tokens.count
        vocabularySize = n
        self.ignoreMerges = ignoreMerges
        var table: [ByteString: Int32] = [:]
        table.reserveCapacity(n + mergeList.count / 4 + 256)
        for (i, t) in tokens.enumerated() {
            table[ByteString(t)] = Int32(truncatingIfNeeded: i)
        }
        var extra: [[UInt8]] = []
        func intern(_ s: ByteString) -> Int32 {
            if let v = table[s] { return v }
            let id = Int32(truncatingIfNeeded: n + extra.count)
            extra.append(s.bytes)
            table[s] = id
            return id
        }
        var bytes = [Int32](repeating: 0, count: 256)
        for b in 0..<256 {
            bytes[b] = intern(ByteString(ByteLevelEncoding.encodedUTF8[b]))
        }
        var pairs: [UInt64: UInt64] = [:]
        pairs.reserveCapacity(mergeList.count)
        for (rank, merge) in mergeList.enumerated() {
            // llama.cpp splits at the first space at byte offset >= 1.
            let utf8 = Array(merge.utf8)
            guard utf8.count > 1, let space = utf8[1...].firstIndex(of: 0x20) else { continue }
            let l = intern(ByteString(utf8[..<space]))
            let r = intern(ByteString(utf8[(space + 1)...]))
            let key = UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))
            if pairs[key] == nil {
                var joined = utf8
                joined.remove(at: space)
                let merged = intern(ByteString(joined))
                pairs[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged))
            }
        }
        var ascii = [Int32](repeating: -1, count: 128)
        for c in 0..<128 {
            if let id = table[ByteString([UInt8(c)])], Int(id) < n { ascii[c] = id }
        }
        textToSymbol = table
        merges = pairs
        byteSymbol = bytes
        extraText = extra
        asciiToken = ascii
    }

    /// The token id whose text is exactly `text`, if any.
    func tokenID(forText text: String) -> Int32? {
        tokenID(forUTF8: ByteString(text))
    }

    /// The token id whose text has exactly these UTF-8 bytes, if any.
    func tokenID(forUTF8 key: ByteString) -> Int32? {
        guard let s = textToSymbol[key], Int(s) < vocabularySize else { return nil }
        return s
    }

    /// Reusable buffers for ``encodeWord(_:into:scratch:)``.
    struct Scratch {
        var symbol: [Int32] = []
        var next: [Int32] = []
        var prev: [Int32] = []
        var queue = MergeQueue()
    }

    /// BPE-encodes one pre-tokenized word (raw UTF-8 bytes) and appends its tokens.
    func encodeWord(_ word: ArraySlice<UInt8>, into out: inout [Int32], scratch: inout Scratch) {
        let count = word.count
        guard count > 0 else { return }
        if ignoreMerges {
            var encoded: [UInt8] = []
            encoded.reserveCapacity(count * 2)
            for b in word { encoded.append(contentsOf: ByteLevelEncoding.encodedUTF8[Int(b)]) }
            if let id = tokenID(forUTF8: ByteString(encoded)) {
                out.append(id)
                return
            }
        }
        if count == 1, let b = word.first {
            emit(byteSymbol[Int(b)], into: &out)
            return
        }
        scratch.symbol.removeAll(keepingCapacity: true)
        scratch.next.removeAll(keepingCapacity: true)
        scratch.prev.removeAll(keepingCapacity: true)
        scratch.queue.removeAll()
        for (i, b) in word.enumerated() {
            scratch.symbol.append(byteSymbol[Int(b)])
            scratch.prev.append(Int32(i - 1))
            scratch.next.append(i + 1 < count ? Int32(i + 1) : -1)
        }
        for i in 1..<count {
            queuePair(i - 1, i, &scratch)
        }
        while let top = scratch.queue.pop() {
            let left = top.left
            let right = Int(top.right)
            let ls = scratch.symbol[left]
            let rs = scratch.symbol[right]
            if ls < 0 || rs < 0 || ls != top.leftSymbol || rs != top.rightSymbol { continue }
            scratch.symbol[left] = top.result
            scratch.symbol[right] = -1
            let after = scratch.next[right]
            scratch.next[left] = after
            if after >= 0 { scratch.prev[Int(after)] = Int32(left) }
            let before = Int(scratch.prev[left])
            if before >= 0 { queuePair(before, left, &scratch) }
            if after >= 0 { queuePair(left, Int(after), &scratch) }
        }
        var i = 0
        while i >= 0 && i < count {
            emit(scratch.symbol[i], into: &out)
            i = Int(scratch.next[i])
        }
    }

    @inline(__always)
    private func queuePair(_ left: Int, _ right: Int, _ scratch: inout Scratch) {
        let l = scratch.symbol[left]
        let r = scratch.symbol[right]
        let key = UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))
        guard let m = merges[key] else { return }
        scratch.queue.push(MergeCandidate(
            key: (m >> 32) << 32 | UInt64(left), right: Int32(right),
            leftSymbol: l, rightSymbol: r, result: Int32(bitPattern: UInt32(truncatingIfNeeded: m))))
    }

    /// Appends the token for a final symbol; a symbol that is not a token falls back, like
    /// llama.cpp, to the single-character tokens of its text (characters without one are dropped).
    @inline(__always)
    private func emit(_ symbol: Int32, into out: inout [Int32]) {
        if symbol >= 0 && Int(symbol) < vocabularySize {
            out.append(symbol)
            return
        }
        let index = Int(symbol) - vocabularySize
        guard index >= 0 && index < extraText.count else { return }
        for b in extraText[index] where b < 0x80 && asciiToken[Int(b)] >= 0 {
            out.append(asciiToken[Int(b)])
        }
    }
}
