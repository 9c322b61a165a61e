import Kernels

/// Keys and values of every layer for up to `capacity` positions, in half precision (as
/// llama.cpp's default cache). Keys are stored `[layer][kvHead][position][headDim]`; values are
/// stored transposed, `[layer][kvHead][headDim][position]`, so that the weighted sum over positions
/// is a contiguous dot product.
final class KVCache {
    let layers: Int
    let kvHeads: Int
    let keyDim: Int
    let valueDim: Int
    let capacity: Int
    private(set) var keys: UnsafeMutablePointer<UInt16>
    private(set) var values: UnsafeMutablePointer<UInt16>

    init(layers: Int, kvHeads: Int, keyDim: Int, valueDim: Int, capacity: Int) {
        self.layers = layers
        self.kvHeads = kvHeads
        self.keyDim = keyDim
        self.valueDim = valueDim
        self.capacity = capacity
        keys = .allocate(capacity: layers * kvHeads * capacity * keyDim)
        values = .allocate(capacity: layers * kvHeads * capacity * valueDim)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Bytes held by the cache.
    var byteCount: Int { (layers * kvHeads * capacity * (keyDim + valueDim)) * 2 }

    @inline(__always)
    func keyRow(layer: Int, head: Int, position: Int) -> UnsafeMutablePointer<UInt16> {
        keys + ((layer * kvHeads + head) * capacity + position) * keyDim
    }

    /// Start of value dimension `d` across positions.
    @inline(__always)
    func valueColumn(layer: Int, head: Int, dim: Int) -> UnsafeMutablePointer<UInt16> {
        values + ((layer * kvHeads + head) * valueDim + dim) * capacity
    }

    /// Copies positions `0..<count` of every layer and head from `source` (same shape).
    func copyPrefix(from source: KVCache, count: Int) {
        precondition(source.layers == layers && source.kvHeads == kvHeads && source.keyDim == keyDim && source.valueDim == valueDim)
        for l in 0..<layers {
            for g in 0..<kvHeads {
                keyRow(layer: l, head: g, position: 0).update(from: source.keyRow(layer: l, head: g, position: 0), count: count * keyDim)
                for d in 0..<valueDim {
                    valueColumn(layer: l, head: g, dim: d).update(from: source.valueColumn(layer: l, head: g, dim: d), count: count)
                }
            }
        }
    }

    /// Stores one position's key and value for one KV head (floats converted to half precision).
    @inline(__always)
    func store(layer: Int, head: Int, position: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>) {
        VectorOps.toFP16(key, into: keyRow(layer: layer, head: head, position: position), count: keyDim)
        let base = values + (layer * kvHeads + head) * valueDim * capacity + position
        for d in 0..<valueDim { base[d * capacity] = Kernels.fp16(value[d]) }
    }
}
