/// Orders a vocabulary's logits best first: descending logit, ties by ascending token id.
/// Sampling draws in this order, so the order is part of what a seed reproduces; these are
/// cheaper ways to the same order than a comparison sort or insertion into a list.
enum TokenRanking {
    /// The `k` best finite logits, best first, in O(V log k): a bounded min-heap whose root is the
    /// worst kept, then a sort of the k kept.
    static func top(_ k: Int, of values: UnsafeBufferPointer<Float>) -> [(id: Int32, logit: Float)] {
        guard k > 0 else { return [] }
        var heap: [(id: Int32, logit: Float)] = []
        heap.reserveCapacity(min(k, values.count))
        // `a` ranks after `b`: a lower logit, or an equal one with a higher id.
        @inline(__always) func worse(_ a: (id: Int32, logit: Float), _ b: (id: Int32, logit: Float)) -> Bool {
            a.logit < b.logit || (a.logit == b.logit && a.id > b.id)
        }
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count, worse(heap[l], heap[m]) { m = l }
                if r < heap.count, worse(heap[r], heap[m]) { m = r }
                if m == i { return }
                heap.swapAt(i, m)
                i = m
            }
        }
        for i in 0..<values.count {
            let v = values[i]
            guard v > -Float.infinity else { continue }   // also skips NaN
            let item = (id: Int32(i), logit: v)
            if heap.count < k {
                heap.append(item)
                var c = heap.count - 1
                while c > 0 {
                    let p = (c - 1) / 2
                    guard worse(heap[c], heap[p]) else { break }
                    heap.swapAt(c, p)
                    c = p
                }
            } else if worse(heap[0], item) {
                heap[0] = item
                siftDown(0)
            }
        }
        return heap.sorted { worse($1, $0) }
    }

    /// Every finite logit, best first, in O(V): a stable least-significant-digit radix sort on
    /// an order-preserving transform of the float's bits, over ids taken in ascending order (so
    /// equal logits keep ascending ids).
    static func all(_ values: UnsafeBufferPointer<Float>, into out: inout [(id: Int32, logit: Float)],
                    scratch: inout [(key: UInt32, id: Int32)], buffer: inout [(key: UInt32, id: Int32)]) {
        scratch.removeAll(keepingCapacity: true)
        for i in 0..<values.count {
            let v = values[i]
            guard v > -Float.infinity else { continue }   // also skips NaN
            // Ascending order of floats as unsigned integers, inverted for descending logits;
            // -0 is +0 (they compare equal, so they tie and go by id).
            let bits = v == 0 ? 0 : v.bitPattern
            let ascending = bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
            scratch.append((~ascending, Int32(i)))
        }
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: scratch)
        var counts = [Int](repeating: 0, count: 256)
        for shift in stride(from: 0, to: 32, by: 8) {
            for i in 0..<256 { counts[i] = 0 }
            for item in scratch { counts[Int((item.key >> UInt32(shift)) & 0xFF)] += 1 }
            var total = 0
            for i in 0..<256 {
                let c = counts[i]
                counts[i] = total
                total += c
            }
            for item in scratch {
                let digit = Int((item.key >> UInt32(shift)) & 0xFF)
                buffer[counts[digit]] = item
                counts[digit] += 1
            }
            swap(&scratch, &buffer)
        }
        out.removeAll(keepingCapacity: true)
        for item in scratch { out.append((item.id, values[Int(item.id)])) }
    }
}
