import Foundation
import Kernels
import ModelFormats

/// The llama architecture (Llama 1–3, SmolLM, Mistral-style dense models), driven entirely by
/// GGUF metadata: RMSNorm, RoPE (normal mode, optional frequency factors and linear scaling),
/// grouped-query attention, SwiGLU feed-forward, tied or separate output projection.
public final class LlamaModel: LanguageModel {
    public struct Hyperparameters: Sendable {
        public var layers: Int
        public var embedding: Int
        public var feedForward: Int
        public var heads: Int
        public var kvHeads: Int
        public var keyDim: Int
        public var valueDim: Int
        public var ropeDims: Int
        public var ropeBase: Float
        public var ropeFreqScale: Float
        public var rmsEps: Float
        public var contextLength: Int
        public var vocabulary: Int
    }

    struct Layer {
        let attnNorm: [Float]
        let wq, wk, wv, wo: QuantizedMatrix
        let ffnNorm: [Float]
        let wGate, wUp, wDown: QuantizedMatrix
    }

    public let architecture: String
    public let hyperparameters: Hyperparameters
    public var vocabularySize: Int { hyperparameters.vocabulary }
    public var trainedContextLength: Int { hyperparameters.contextLength }

    let file: GGUFFile           // keeps the mapping alive for the weight views
    let tokenEmbedding: QuantizedMatrix
    let layers: [Layer]
    let outputNorm: [Float]
    let output: QuantizedMatrix
    let rope: RoPE
    let attention: Attention

    /// Tokens evaluated per matrix product in prefill.
    public static let batchSize = 64

    public init(file: GGUFFile) throws(ModelError) {
        let arch: String
        do { arch = try file.string("general.architecture") } catch { throw .format(error) }
        let w = WeightLoader(file: file, architecture: arch)
        let layerCount = try w.int("block_count")
        let embd = try w.int("embedding_length")
        let ff = try w.int("feed_forward_length")
        let heads = try w.int("attention.head_count")
        let kvHeads = try w.int("attention.head_count_kv", default: heads)
        guard layerCount > 0, embd > 0, ff > 0, heads > 0, kvHeads > 0, heads % kvHeads == 0, embd % heads == 0 else {
            throw ModelError(.invalidHyperparameter,
                             "invalid llama hyperparameters: layers \(layerCount), embedding \(embd), feed-forward \(ff), heads \(heads), kv heads \(kvHeads)")
        }
        let keyDim = try w.int("attention.key_length", default: embd / heads)
        let valueDim = try w.int("attention.value_length", default: keyDim)
        let ropeDims = try w.int("rope.dimension_count", default: keyDim)
        guard ropeDims > 0, ropeDims <= keyDim, ropeDims % 2 == 0 else {
            throw ModelError(.invalidHyperparameter, "invalid rope.dimension_count \(ropeDims) for key length \(keyDim)")
        }
        var freqScale: Float = 1
        switch try w.optionalString("rope.scaling.type") {
        case nil, "none": break
        case "linear":
            let factor = try w.float("rope.scaling.factor", default: 1)
            guard factor > 0 else { throw ModelError(.invalidHyperparameter, "invalid rope.scaling.factor \(factor)") }
            freqScale = 1 / factor
        case let other?:
            throw ModelError(.invalidHyperparameter, "RoPE scaling '\(other)' is not supported yet (supported: none, linear)")
        }
        guard let embdInfo = file.tensor(named: "token_embd.weight"), embdInfo.dimensions.count == 2 else {
            throw ModelError(.missingTensor, "model file has no 2-D tensor 'token_embd.weight'")
        }
        let vocab = embdInfo.dimensions[1]

        var hp = Hyperparameters(
            layers: layerCount, embedding: embd, feedForward: ff, heads: heads, kvHeads: kvHeads,
            keyDim: keyDim, valueDim: valueDim, ropeDims: ropeDims,
            ropeBase: try w.float("rope.freq_base", default: 10_000), ropeFreqScale: freqScale,
            rmsEps: try w.float("attention.layer_norm_rms_epsilon", default: 1e-5),
            contextLength: try w.int("context_length", default: 2048), vocabulary: vocab)
        if hp.contextLength <= 0 { hp.contextLength = 2048 }

        tokenEmbedding = try w.matrix("token_embd.weight", columns: embd, rows: vocab)
        var layers: [Layer] = []
        layers.reserveCapacity(layerCount)
        for i in 0..<layerCount {
            let p = "blk.\(i)."
            layers.append(Layer(
                attnNorm: try w.vector(p + "attn_norm.weight", count: embd),
                wq: try w.matrix(p + "attn_q.weight", columns: embd, rows: heads * keyDim),
                wk: try w.matrix(p + "attn_k.weight", columns: embd, rows: kvHeads * keyDim),
                wv: try w.matrix(p + "attn_v.weight", columns: embd, rows: kvHeads * valueDim),
                wo: try w.matrix(p + "attn_output.weight", columns: heads * valueDim, rows: embd),
                ffnNorm: try w.vector(p + "ffn_norm.weight", count: embd),
                wGate: try w.matrix(p + "ffn_gate.weight", columns: embd, rows: ff),
                wUp: try w.matrix(p + "ffn_up.weight", columns: embd, rows: ff),
                wDown: try w.matrix(p + "ffn_down.weight", columns: ff, rows: embd)))
        }
        self.layers = layers
        outputNorm = try w.vector("output_norm.weight", count: embd)
        output = w.has("output.weight") ? try w.matrix("output.weight", columns: embd, rows: vocab) : tokenEmbedding
        let freqFactors = w.has("rope_freqs.weight") ? try w.vector("rope_freqs.weight", count: ropeDims / 2) : nil
        rope = RoPE(dimensions: ropeDims, base: hp.ropeBase, freqScale: freqScale, freqFactors: freqFactors)
        attention = Attention(heads: heads, kvHeads: kvHeads, keyDim: keyDim, valueDim: valueDim,
                              scale: 1 / Float(keyDim).squareRoot())
        architecture = arch
        hyperparameters = hp
        self.file = file
    }

    public func makeContext(capacity: Int, threads: Int) throws(ModelError) -> any ModelContext {
        guard capacity > 0 else { throw ModelError(.invalidHyperparameter, "context capacity must be positive") }
        let hp = hyperparameters
        let cache = KVCache(layers: hp.layers, kvHeads: hp.kvHeads, keyDim: hp.keyDim, valueDim: hp.valueDim, capacity: capacity)
        return TransformerContext(cache: cache, threads: threads, batch: Self.batchSize, embd: hp.embedding,
                                  heads: hp.heads, ff: hp.feedForward, vocab: hp.vocabulary, ropeDims: hp.ropeDims)
    }

    public func forward(_ tokens: [Int32], context: any ModelContext, logits mode: LogitsMode) throws(ModelError)
        -> UnsafeBufferPointer<Float> {
        guard let ctx = context as? TransformerContext else {
            throw ModelError(.invalidHyperparameter, "context was not made by this model")
        }
        guard !tokens.isEmpty else { throw ModelError(.invalidToken, "no tokens to evaluate") }
        guard ctx.count + tokens.count <= ctx.capacity else {
            throw ModelError(.contextFull, "context full: \(ctx.count) + \(tokens.count) tokens exceed its \(ctx.capacity) positions")
        }
        for t in tokens where t < 0 || Int(t) >= vocabularySize {
            throw ModelError(.invalidToken, "token id \(t) is outside the vocabulary (0..<\(vocabularySize))")
        }
        let vocab = vocabularySize
        if mode == .all { ctx.reserveAllLogits(tokens.count * vocab) }
        var start = 0
        while start < tokens.count {
            let n = min(ctx.batch, tokens.count - start)
            let isLast = start + n == tokens.count
            tokens.withUnsafeBufferPointer { buf in
                evaluate(UnsafeBufferPointer(rebasing: buf[start..<(start + n)]), ctx)
            }
            if mode == .all {
                outputLogits(ctx, rows: 0..<n, into: ctx.allLogits + start * vocab)
            } else if isLast {
                outputLogits(ctx, rows: (n - 1)..<n, into: ctx.logits)
            }
            start += n
        }
        if mode == .all { return UnsafeBufferPointer(start: ctx.allLogits, count: tokens.count * vocab) }
        return UnsafeBufferPointer(start: ctx.logits, count: vocab)
    }

    /// Runs all layers over one batch of tokens, leaving the final residual stream in ctx.x.
    private func evaluate(_ tokens: UnsafeBufferPointer<Int32>, _ ctx: TransformerContext) {
        let hp = hyperparameters
        let n = tokens.count, embd = hp.embedding
        let qDim = hp.heads * hp.keyDim, kDim = hp.kvHeads * hp.keyDim, vDim = hp.kvHeads * hp.valueDim
        let attnDim = hp.heads * hp.valueDim
        for t in 0..<n { tokenEmbedding.dequantizeRow(Int(tokens[t]), into: ctx.x + t * embd) }
        let base = ctx.count

        for (l, layer) in layers.enumerated() {
            layer.attnNorm.withUnsafeBufferPointer { wn in
                for t in 0..<n { VectorOps.rmsNorm(ctx.x + t * embd, weight: wn.baseAddress!, eps: hp.rmsEps, into: ctx.h + t * embd, count: embd) }
            }
            ctx.setInput(ctx.h)
            ctx.project(layer.wq, tokens: n, into: ctx.q)
            ctx.project(layer.wk, tokens: n, into: ctx.k)
            ctx.project(layer.wv, tokens: n, into: ctx.v)
            for t in 0..<n {
                rope.angles(position: base + t, cos: ctx.ropeCos, sin: ctx.ropeSin)
                rope.apply(ctx.q + t * qDim, heads: hp.heads, headDim: hp.keyDim, cos: ctx.ropeCos, sin: ctx.ropeSin)
                rope.apply(ctx.k + t * kDim, heads: hp.kvHeads, headDim: hp.keyDim, cos: ctx.ropeCos, sin: ctx.ropeSin)
                for g in 0..<hp.kvHeads {
                    ctx.cache.store(layer: l, head: g, position: base + t,
                                    key: ctx.k + t * kDim + g * hp.keyDim, value: ctx.v + t * vDim + g * hp.valueDim)
                }
            }
            for t in 0..<n {
                attention.run(query: ctx.q + t * qDim, cache: ctx.cache, layer: l, positions: base + t + 1,
                              out: ctx.attn + t * attnDim, scratch: ctx.attnScratch)
            }
            ctx.setInput(ctx.attn)
            ctx.project(layer.wo, tokens: n, into: ctx.h)
            VectorOps.add(ctx.x, ctx.h, count: n * embd)

            layer.ffnNorm.withUnsafeBufferPointer { wn in
                for t in 0..<n { VectorOps.rmsNorm(ctx.x + t * embd, weight: wn.baseAddress!, eps: hp.rmsEps, into: ctx.h + t * embd, count: embd) }
            }
            ctx.setInput(ctx.h)
            ctx.project(layer.wGate, tokens: n, into: ctx.gate)
            ctx.project(layer.wUp, tokens: n, into: ctx.up)
            VectorOps.swiglu(ctx.gate, ctx.up, count: n * hp.feedForward)
            ctx.setInput(ctx.gate)
            ctx.project(layer.wDown, tokens: n, into: ctx.h)
            VectorOps.add(ctx.x, ctx.h, count: n * embd)
        }
        ctx.advance(by: n)
    }

    /// Final norm and output projection for `rows` of the last batch.
    private func outputLogits(_ ctx: TransformerContext, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let embd = hyperparameters.embedding
        outputNorm.withUnsafeBufferPointer { wn in
            for (i, t) in rows.enumerated() {
                VectorOps.rmsNorm(ctx.x + t * embd, weight: wn.baseAddress!, eps: hyperparameters.rmsEps, into: ctx.h + i * embd, count: embd)
            }
        }
        ctx.setInput(ctx.h)
        ctx.project(output, tokens: rows.count, into: out)
    }
}
