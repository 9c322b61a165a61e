import Kernels

/// Keys and values of every layer for up to `capacity` positions, in half precision (as
/// llama.cpp's default cache) or, with `.f32`, in single precision (as transformers keeps them).
/// Keys are stored `[layer][kvHead][position][headDim]`; values are stored transposed,
/// `[layer][kvHead][headDim][position]`, so that the weighted sum over positions is a contiguous
/// dot product.
final class KVCache {
    let layers: Int
    let kvHeads: Int
    let keyDim: Int
    let valueDim: Int
    let capacity: Int
    let precision: AttentionPrecision
    /// Half-precision storage (empty with `.f32`).
    private(set) var keys: UnsafeMutablePointer<UInt16>
    private(set) var values: UnsafeMutablePointer<UInt16>
    /// Single-precision storage (empty with `.f16`).
    private(set) var keys32: UnsafeMutablePointer<Float>
    private(set) var values32: UnsafeMutablePointer<Float>

    init(layers: Int, kvHeads: Int, keyDim: Int, valueDim: Int, capacity: Int, precision: AttentionPrecision = .f16) {
        self.layers = layers
        self.kvHeads = kvHeads
        self.keyDim = keyDim
        self.valueDim = valueDim
        self.capacity = capacity
        self.precision = precision
        let k = layers * kvHeads * capacity * keyDim, v = layers * kvHeads * capacity * valueDim
        let half = precision == .f16
        keys = .allocate(capacity: half ? k : 0)
        values = .allocate(capacity: half ? v : 0)
        keys32 = .allocate(capacity: half ? 0 : k)
        values32 = .allocate(capacity: half ? 0 : v)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
        keys32.deallocate()
        values32.deallocate()
    }

    /// Bytes held by the cache.
    var byteCount: Int { (layers * kvHeads * capacity * (keyDim + valueDim)) * (precision == .f16 ? 2 : 4) }

    @inline(__always)
    func keyRow32(layer: Int, head: Int, position: Int) -> UnsafeMutablePointer<Float> {
        keys32 + ((layer * kvHeads + head) * capacity + position) * keyDim
    }

    @inline(__always)
    func valueColumn32(layer: Int, head: Int, dim: Int) -> UnsafeMutablePointer<Float> {
        values32 + ((layer * kvHeads + head) * valueDim + dim) * capacity
    }

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
        precondition(source.layers == layers && source.kvHeads == kvHeads && source.keyDim == keyDim && source.valueDim == valueDim
                     && source.precision == precision)
        if precision == .f32 {
            for l in 0..<layers {
                for g in 0..<kvHeads {
                    keyRow32(layer: l, head: g, position: 0).update(from: source.keyRow32(layer: l, head: g, position: 0), count: count * keyDim)
                    for d in 0..<valueDim {
                        valueColumn32(layer: l, head: g, dim: d).update(from: source.valueColumn32(layer: l, head: g, dim: d), count: count)
                    }
                }
            }
            return
        }
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
        if precision == .f32 {
            keyRow32(layer: layer, head: head, position: position).update(from: key, count: keyDim)
            let base = values32 + (layer * kvHeads + head) * valueDim * capacity + position
            for d in 0..<valueDim { base[d * capacity] = value[d] }
            return
        }
        VectorOps.toFP16(key, into: keyRow(layer: layer, head: head, position: position), count: keyDim)
        let base = values + (layer * kvHeads + head) * valueDim * capacity + position
        for d in 0..<valueDim { base[d * capacity] = Kernels.fp16(value[d]) }
    }
}

/// The precision of the KV cache and of attention's arithmetic. `.f16` is llama.cpp's (the query
/// and the probabilities rounded to half precision too): GGUF models are bit-exact to llama.cpp
/// with it. `.f32` keeps keys, values, queries and probabilities in single precision, as
/// transformers does (and GELU is computed without ggml's half-precision table): what Hugging
/// Face checkpoints get by default, at twice the cache memory.
public enum AttentionPrecision: String, Sendable, CaseIterable {
    case f16, f32
}
