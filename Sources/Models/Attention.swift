import Kernels

/// Scaled dot-product attention of one query position against the KV cache, grouped-query
/// (each KV head serves `heads / kvHeads` query heads), causal, optionally limited to a sliding
/// window. The numerics are llama.cpp's non-flash CPU path, operation for operation: the query is
/// rounded to half precision for the K dot products, the softmax runs over the cache's 16-cell
/// chunks (ck_softmax_cells), and the probabilities are rounded to half precision for the dot with
/// V, its lanes aligned to the same cells. Each dot has tinyBLAS's 16-lane order (ck_dot_f16_rows).
struct Attention: Sendable {
    let heads: Int
    let kvHeads: Int
    let keyDim: Int
    let valueDim: Int
    /// Multiplies q·k before the softmax.
    let scale: Float

    /// Query heads per KV head.
    var group: Int { heads / kvHeads }

    /// Scratch for one call: `scores` holds `group` rows of `maxPositions`, `probs16` `group` rows
    /// of `probStride(maxPositions)` (a row starts up to 15 cells before the first visible one),
    /// `query16` `group × keyDim`.
    struct Scratch {
        let scores: UnsafeMutablePointer<Float>
        let probs16: UnsafeMutablePointer<UInt16>
        let query16: UnsafeMutablePointer<UInt16>
    }

    static func probStride(_ maxPositions: Int) -> Int { maxPositions + 16 }

    /// out[h * valueDim + d] for the query heads h of KV head `g`, attending to cache positions
    /// `visible` (`maxPositions`: the scratch's row stride). The KV head's keys and values are read
    /// once for all its query heads; each head's result is what it would be alone.
    func run(kvHead g: Int, query: UnsafePointer<Float>, cache: KVCache, layer: Int, visible: Range<Int>,
             out: UnsafeMutablePointer<Float>, scratch: Scratch, maxPositions: Int) {
        if cache.precision == .f32 {
            runF32(kvHead: g, query: query, cache: cache, layer: layer, visible: visible, out: out, scratch: scratch, maxPositions: maxPositions)
            return
        }
        let first = visible.lowerBound, n = visible.count, m = group
        // The 16-cell chunk the first visible position falls in starts `lead` cells before it.
        let lead = first % 16, span = lead + n, pStride = Self.probStride(maxPositions)
        let h0 = g * m
        VectorOps.toFP16(query + h0 * keyDim, into: scratch.query16, count: m * keyDim)
        // Keys are consecutive rows of keyDim; value dimensions are rows `capacity` apart.
        VectorOps.dotFP16Rows(cache.keyRow(layer: layer, head: g, position: first), stride: keyDim, count: n,
                              scratch.query16, vectorStride: keyDim, vectorCount: m, length: keyDim,
                              into: scratch.scores, ldOut: maxPositions)
        for i in 0..<m {
            let scores = scratch.scores + i * maxPositions
            for j in 0..<n { scores[j] *= scale }
            VectorOps.softmaxCells(scores, count: n, lead: lead)
            let probs = scratch.probs16 + i * pStride
            probs.update(repeating: 0, count: lead)
            VectorOps.toFP16(scores, into: probs + lead, count: n)
        }
        // The cells before `first` in its chunk have probability zero (their values are finite:
        // earlier positions of this sequence).
        VectorOps.dotFP16Rows(cache.valueColumn(layer: layer, head: g, dim: 0) + (first - lead), stride: cache.capacity,
                              count: valueDim, scratch.probs16, vectorStride: pStride, vectorCount: m, length: span,
                              into: out + h0 * valueDim, ldOut: valueDim)
    }

    /// The single-precision path: q·k, softmax and p·v in floats, no rounding to half precision.
    private func runF32(kvHead g: Int, query: UnsafePointer<Float>, cache: KVCache, layer: Int, visible: Range<Int>,
                        out: UnsafeMutablePointer<Float>, scratch: Scratch, maxPositions: Int) {
        let first = visible.lowerBound, n = visible.count
        for i in 0..<group {
            let h = g * group + i
            let q = query + h * keyDim
            let scores = scratch.scores + i * maxPositions
            let keys = cache.keyRow32(layer: layer, head: g, position: first)
            for j in 0..<n { scores[j] = Kernels.dot(q, keys + j * keyDim, count: keyDim) * scale }
            VectorOps.softmaxCells(scores, count: n, lead: 0)
            for d in 0..<valueDim {
                out[h * valueDim + d] = Kernels.dot(scores, cache.valueColumn32(layer: layer, head: g, dim: d) + first, count: n)
            }
        }
    }
}
