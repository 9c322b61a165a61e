import Foundation
import Kernels

extension DecoderModel {
    /// A run of consecutive tokens of one pass that belong to one sequence.
    struct Segment {
        let sequence: SequenceCache
        let count: Int
        var adapter: ModelAdapter? = nil
    }

    /// Runs all layers over one batch of tokens (the segments' tokens, in order), appending them to
    /// their sequences' KV caches and leaving the final residual stream in ctx.x.
    func evaluate(_ tokens: UnsafeBufferPointer<Int32>, segments: [Segment], _ ctx: Workspace) {
        let hp = hyperparameters
        let n = tokens.count, embd = hp.embedding
        // Per token: its sequence's cache and its position there.
        var caches: [KVCache] = []
        var positions: [Int] = []
        caches.reserveCapacity(n)
        positions.reserveCapacity(n)
        for segment in segments {
            for i in 0..<segment.count {
                caches.append(segment.sequence.cache)
                positions.append(segment.sequence.count + i)
            }
        }
        precondition(caches.count == n, "segments do not cover the batch")
        ctx.setAdapters(segments.map(\.adapter), counts: segments.map(\.count))
        let qDim = hp.heads * hp.keyDim, kDim = hp.kvHeads * hp.keyDim, vDim = hp.kvHeads * hp.valueDim
        let attnDim = hp.heads * hp.valueDim, ff = hp.feedForward
        for t in 0..<n {
            let embedding = ctx.adapter(ofToken: t)?.tokenEmbedding ?? tokenEmbedding
            embedding.dequantizeRow(Int(tokens[t]), into: ctx.x + t * embd)
            if let scale = options.embeddingScale {
                for i in 0..<embd { ctx.x[t * embd + i] *= scale }
            }
        }

        for (l, layer) in layers.enumerated() {
            norm(ctx.x, layer.attnNorm, into: ctx.h, rows: n, width: embd)
            ctx.setInput(ctx.h)
            switch layer.qkv {
            case .separate(let wq, let wk, let wv):
                ctx.project(wq, tokens: n, into: ctx.q, lora: (l, .q))
                ctx.project(wk, tokens: n, into: ctx.k, lora: (l, .k))
                ctx.project(wv, tokens: n, into: ctx.v, lora: (l, .v))
            case .fused(let w):
                ctx.project(w, tokens: n, into: ctx.fused, lora: (l, .qkv))
                let width = qDim + kDim + vDim
                for t in 0..<n {
                    let row = ctx.fused + t * width
                    (ctx.q + t * qDim).update(from: row, count: qDim)
                    (ctx.k + t * kDim).update(from: row + qDim, count: kDim)
                    (ctx.v + t * vDim).update(from: row + qDim + kDim, count: vDim)
                }
            }
            addBias(layer.qBias, to: ctx.q, rows: n, width: qDim)
            addBias(layer.kBias, to: ctx.k, rows: n, width: kDim)
            addBias(layer.vBias, to: ctx.v, rows: n, width: vDim)
            if let qNorm = layer.qNorm { norm(ctx.q, qNorm, into: ctx.q, rows: n * hp.heads, width: hp.keyDim) }
            if let kNorm = layer.kNorm { norm(ctx.k, kNorm, into: ctx.k, rows: n * hp.kvHeads, width: hp.keyDim) }
            for t in 0..<n {
                layer.rope.angles(position: positions[t], cos: ctx.ropeCos, sin: ctx.ropeSin)
                layer.rope.apply(ctx.q + t * qDim, heads: hp.heads, headDim: hp.keyDim, cos: ctx.ropeCos, sin: ctx.ropeSin)
                layer.rope.apply(ctx.k + t * kDim, heads: hp.kvHeads, headDim: hp.keyDim, cos: ctx.ropeCos, sin: ctx.ropeSin)
                if let s = options.queryScale {
                    for i in 0..<qDim { ctx.q[t * qDim + i] *= s }
                }
                for g in 0..<hp.kvHeads {
                    caches[t].store(layer: l, head: g, position: positions[t],
                                    key: ctx.k + t * kDim + g * hp.keyDim, value: ctx.v + t * vDim + g * hp.valueDim)
                }
            }
            // (token, KV head) pairs claimed one at a time by the pool's threads.
            let kvHeads = hp.kvHeads, window = layer.window, attention = self.attention
            let q = ctx.q, attn = ctx.attn, scratch = ctx.attnScratch, maxPositions = ctx.maxPositions
            ctx.pool.forEach(n * kvHeads) { item, ith in
                let t = item / kvHeads, g = item % kvHeads
                let position = positions[t]
                let first = window.map { max(0, position - $0 + 1) } ?? 0
                attention.run(kvHead: g, query: q + t * qDim, cache: caches[t], layer: l, visible: first..<(position + 1),
                              out: attn + t * attnDim, scratch: scratch[ith], maxPositions: maxPositions)
            }
            ctx.setInput(ctx.attn)
            ctx.project(layer.wo, tokens: n, into: ctx.h, lora: (l, .o))
            if let post = layer.postAttnNorm { norm(ctx.h, post, into: ctx.h, rows: n, width: embd) }
            VectorOps.add(ctx.x, ctx.h, count: n * embd)

            norm(ctx.x, layer.ffnNorm, into: ctx.h, rows: n, width: embd)
            ctx.setInput(ctx.h)
            if let gate = layer.gate {
                ctx.project(gate, tokens: n, into: ctx.gate, lora: (l, .gate))
                ctx.project(layer.up, tokens: n, into: ctx.up, lora: (l, .up))
            } else {
                ctx.project(layer.up, tokens: n, into: ctx.fused, lora: (l, .up))
                for t in 0..<n {
                    (ctx.gate + t * ff).update(from: ctx.fused + t * 2 * ff, count: ff)
                    (ctx.up + t * ff).update(from: ctx.fused + t * 2 * ff + ff, count: ff)
                }
            }
            switch options.feedForward {
            case .swiglu: VectorOps.swiglu(ctx.gate, ctx.up, count: n * ff)
            case .geglu where options.attentionPrecision == .f32: GELU.mulExact(ctx.gate, ctx.up, count: n * ff)
            case .geglu: GELU.mul(ctx.gate, ctx.up, count: n * ff)
            }
            ctx.setInput(ctx.gate)
            ctx.project(layer.down, tokens: n, into: ctx.h, lora: (l, .down))
            if let post = layer.postFFNNorm { norm(ctx.h, post, into: ctx.h, rows: n, width: embd) }
            VectorOps.add(ctx.x, ctx.h, count: n * embd)
        }
        for segment in segments { segment.sequence.advance(by: segment.count) }
    }

    /// Final norm, output projection (and soft-cap) for `rows` of the last batch. Rows whose
    /// sequence's adapter replaces or adapts the output are projected apart, per adapter.
    func outputLogits(_ ctx: Workspace, rows: some Collection<Int>, into out: UnsafeMutablePointer<Float>) {
        let rows = Array(rows)
        guard ctx.adaptsOutput else {
            projectOutput(ctx, rows: rows, matrix: output, adapter: nil, into: out)
            return
        }
        let vocab = vocabularySize
        var groups: [(adapter: ModelAdapter?, indices: [Int])] = []
        for (i, t) in rows.enumerated() {
            let adapter = ctx.adapter(ofToken: t).flatMap { $0.touchesOutput ? $0 : nil }
            if let g = groups.firstIndex(where: { $0.adapter === adapter }) { groups[g].indices.append(i) } else { groups.append((adapter, [i])) }
        }
        var scratch = [Float](repeating: 0, count: rows.count * vocab)
        for group in groups {
            scratch.withUnsafeMutableBufferPointer { buffer in
                projectOutput(ctx, rows: group.indices.map { rows[$0] }, matrix: group.adapter?.outputReplacement ?? output,
                              adapter: group.adapter, into: buffer.baseAddress!)
                for (k, i) in group.indices.enumerated() {
                    (out + i * vocab).update(from: buffer.baseAddress! + k * vocab, count: vocab)
                }
            }
        }
    }

    private func projectOutput(_ ctx: Workspace, rows: [Int], matrix: QuantizedMatrix, adapter: ModelAdapter?, into out: UnsafeMutablePointer<Float>) {
        let embd = hyperparameters.embedding
        outputNorm.withUnsafeBufferPointer { wn in
            for (i, t) in rows.enumerated() {
                VectorOps.rmsNorm(ctx.x + t * embd, weight: wn.baseAddress!, eps: hyperparameters.rmsEps,
                                  into: ctx.h + i * embd, count: embd)
            }
        }
        ctx.setInput(ctx.h)
        ctx.project(matrix, tokens: rows.count, into: out)
        if let lora = adapter?.output { ctx.addLoRA(lora, tokens: rows.count, into: out, ldOut: vocabularySize) }
        if let cap = options.finalLogitSoftcap {
            let count = rows.count * vocabularySize, inverse = 1 / cap
            for i in 0..<count { out[i] = tanhf(out[i] * inverse) * cap }
        }
    }

    /// RMSNorm of `rows` rows of `width` floats (in place when `x == y`).
    @inline(__always)
    private func norm(_ x: UnsafeMutablePointer<Float>, _ weight: [Float], into y: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        weight.withUnsafeBufferPointer { w in
            for r in 0..<rows {
                VectorOps.rmsNorm(x + r * width, weight: w.baseAddress!, eps: hyperparameters.rmsEps, into: y + r * width, count: width)
            }
        }
    }

    @inline(__always)
    private func addBias(_ bias: [Float]?, to x: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        guard let bias else { return }
        bias.withUnsafeBufferPointer { b in
            for r in 0..<rows { VectorOps.add(x + r * width, b.baseAddress!, count: width) }
        }
    }
}
