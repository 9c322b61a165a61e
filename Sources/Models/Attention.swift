import Kernels

/// Scaled dot-product attention of one query position against the KV cache, grouped-query
/// (each KV head serves `heads / kvHeads` query heads), causal, optionally limited to a sliding
/// window. Numerics follow llama.cpp's non-flash CPU path: the query is rounded to half precision
/// for the K dot products, softmax runs in float with a double sum, and the probabilities are
/// rounded to half precision for the dot with V.
struct Attention: Sendable {
    let heads: Int
    let kvHeads: Int
    let keyDim: Int
    let valueDim: Int
    /// Multiplies q·k before the softmax.
    let scale: Float

    /// Scratch for one call: `scores` and `probs16` hold `positions` entries, `query16` `keyDim`.
    struct Scratch {
        let scores: UnsafeMutablePointer<Float>
        let probs16: UnsafeMutablePointer<UInt16>
        let query16: UnsafeMutablePointer<UInt16>
    }

    /// out[h * valueDim + d] for head h, attending to cache positions `visible`.
    func run(head h: Int, query: UnsafePointer<Float>, cache: KVCache, layer: Int, visible: Range<Int>,
             out: UnsafeMutablePointer<Float>, scratch: Scratch) {
        let g = h / (heads / kvHeads)
        let first = visible.lowerBound, n = visible.count
        VectorOps.toFP16(query + h * keyDim, into: scratch.query16, count: keyDim)
        for j in 0..<n {
            let k = cache.keyRow(layer: layer, head: g, position: first + j)
            scratch.scores[j] = VectorOps.dotFP16(k, scratch.query16, count: keyDim) * scale
        }
        VectorOps.softmax(scratch.scores, count: n)
        VectorOps.toFP16(scratch.scores, into: scratch.probs16, count: n)
        let o = out + h * valueDim
        for d in 0..<valueDim {
            o[d] = VectorOps.dotFP16(cache.valueColumn(layer: layer, head: g, dim: d) + first, scratch.probs16, count: n)
        }
    }
}
