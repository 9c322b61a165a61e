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

/// A binary min-heap of merge candidates, reused across words to avoid allocation.
struct MergeQueue {
    private(set) var items: [MergeCandidate] = []

    var isEmpty: Bool { items.isEmpty }

    mutating func removeAll() {
        items.removeAll(keepingCapacity: true)
    }

    mutating func push(_ item: MergeCandidate) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if items[parent].key <= items[child].key { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> MergeCandidate? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        items[0] = last
        var parent = 0
        let count = items.count
        while true {
            let l = 2 * parent + 1
            if l >= count { break }
            let r = l + 1
            var smallest = l
            if r < count && items[r].key < items[l].key { smallest = r }
            if items[parent].key <= items[smallest].key { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
