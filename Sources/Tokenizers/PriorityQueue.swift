/// An element of a ``PriorityQueue``: defines which of two elements pops first.
protocol QueueOrdered {
    /// `true` when `a` should be popped before `b`.
    static func popsBefore(_ a: Self, _ b: Self) -> Bool
}

/// A binary heap popping elements in ``QueueOrdered`` order. The storage is kept between uses
/// (``removeAll()`` keeps capacity), so the tokenizers' merge loops don't allocate per word.
struct PriorityQueue<Element: QueueOrdered> {
    private(set) var items: [Element] = []

    var isEmpty: Bool { items.isEmpty }

    mutating func removeAll() {
        items.removeAll(keepingCapacity: true)
    }

    mutating func push(_ item: Element) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !Element.popsBefore(items[child], items[parent]) { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> Element? {
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
            var best = l
            if r < count && Element.popsBefore(items[r], items[l]) { best = r }
            if !Element.popsBefore(items[best], items[parent]) { break }
            items.swapAt(parent, best)
            parent = best
        }
        return top
    }
}
