import Foundation
import Kernels
import ModelFormats

/// A decoder-only transformer as llama.cpp's llama-family graphs define it, configured by
/// ``DecoderOptions`` and by which tensors the file holds: RMSNorm, RoPE (adjacent or halves),
/// grouped-query attention with optional Q/K/V biases, per-head QK norms, sliding windows and
/// post-attention / post-FFN norms, a SwiGLU or GeGLU feed-forward (separate or fused gate/up),
/// tied or separate output. Architecture files (Llama.swift, Qwen2.swift, …) build one of these.
public final class DecoderModel: LanguageModel {
    public struct Hyperparameters: Sendable {
        public var layers: Int
        public var embedding: Int
        public var feedForward: Int
        public var heads: Int
        public var kvHeads: Int
        public var keyDim: Int
        public var valueDim: Int
        public var ropeDims: Int
        public var rmsEps: Float
        public var contextLength: Int
        public var vocabulary: Int
    }

    enum Projection {
        case separate(QuantizedMatrix, QuantizedMatrix, QuantizedMatrix)
        case fused(QuantizedMatrix)
    }

    struct Layer {
        let attnNorm: [Float]
        let qkv: Projection               // q, k, v (or one fused matrix, rows in that order)
        let qBias, kBias, vBias: [Float]?
        let qNorm, kNorm: [Float]?        // per-head RMSNorm weights (keyDim)
        let wo: QuantizedMatrix
        let postAttnNorm: [Float]?
        let ffnNorm: [Float]
        let gate: QuantizedMatrix?        // nil: `up` holds gate rows then up rows (fused)
        let up: QuantizedMatrix
        let down: QuantizedMatrix
        let postFFNNorm: [Float]?
        let window: Int?                  // sliding window, nil for global attention
        let rope: RoPE
    }

    public let architecture: String
    public let hyperparameters: Hyperparameters
    public var vocabularySize: Int { hyperparameters.vocabulary }
    public var trainedContextLength: Int { hyperparameters.contextLength }

    let file: GGUFFile   // keeps the mapping alive for the weight views
    let options: DecoderOptions
    let tokenEmbedding: QuantizedMatrix
    let layers: [Layer]
    let outputNorm: [Float]
    let output: QuantizedMatrix
    let attention: Attention

    /// Tokens evaluated per matrix product in prefill.
    public static let batchSize = 64

    init(file: GGUFFile, hyperparameters: Hyperparameters, options: DecoderOptions, tokenEmbedding: QuantizedMatrix,
         layers: [Layer], outputNorm: [Float], output: QuantizedMatrix) {
        self.file = file
        self.hyperparameters = hyperparameters
        self.options = options
        self.architecture = options.architecture
        self.tokenEmbedding = tokenEmbedding
        self.layers = layers
        self.outputNorm = outputNorm
        self.output = output
        let hp = hyperparameters
        attention = Attention(heads: hp.heads, kvHeads: hp.kvHeads, keyDim: hp.keyDim, valueDim: hp.valueDim,
                              scale: options.queryScale == nil ? 1 / Float(hp.keyDim).squareRoot() : 1)
    }

    public func makeContext(capacity: Int, threads: Int) throws(ModelError) -> any ModelContext {
        guard capacity > 0 else { throw ModelError(.invalidHyperparameter, "context capacity must be positive") }
        let hp = hyperparameters
        let cache = KVCache(layers: hp.layers, kvHeads: hp.kvHeads, keyDim: hp.keyDim, valueDim: hp.valueDim, capacity: capacity)
        let qkvWidth = (hp.heads + 2 * hp.kvHeads) * max(hp.keyDim, hp.valueDim)
        return TransformerContext(cache: cache, threads: threads, batch: Self.batchSize, embd: hp.embedding,
                                  heads: hp.heads, ff: hp.feedForward, vocab: hp.vocabulary, ropeDims: hp.ropeDims,
                                  fusedWidth: max(qkvWidth, 2 * hp.feedForward))
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
            tokens.withUnsafeBufferPointer { buf in
                evaluate(UnsafeBufferPointer(rebasing: buf[start..<(start + n)]), ctx)
            }
            if mode == .all {
                outputLogits(ctx, rows: 0..<n, into: ctx.allLogits + start * vocab)
            } else if start + n == tokens.count {
                outputLogits(ctx, rows: (n - 1)..<n, into: ctx.logits)
            }
            start += n
        }
        if mode == .all { return UnsafeBufferPointer(start: ctx.allLogits, count: tokens.count * vocab) }
        return UnsafeBufferPointer(start: ctx.logits, count: vocab)
    }
}
