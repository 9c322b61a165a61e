/// A candidate merge of two adjacent symbols in the BPE work queue.
struct MergeCandidate {
    /// `rank << 32 | left`: lower rank first, then the leftmost pair (llama.cpp's ordering).
    var key: UInt64
    /// Index of the right symbol.
    var right: Int32
    /// Symbol ids of the pair when it was queued; a mismatch later means the entry is stale.
    var leftSymbol: Int32
    var rightSymbol: Int32
    /// The symbol the pair merges into.
    var result: Int32

    @inline(__always) var left: Int { Int(key & 0xFFFF_FFFF) }
}

extension MergeCandidate: QueueOrdered {
    /// Lower key first: lower merge rank, then the leftmost pair.
    @inline(__always)
    static func popsBefore(_ a: MergeCandidate, _ b: MergeCandidate) -> Bool { a.key < b.key }
}

/// The BPE work queue, reused across words to avoid allocation.
typealias MergeQueue = PriorityQueue<MergeCandidate>
