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

    /// The same weights with attention in another precision.
    func withAttentionPrecision(_ precision: AttentionPrecision) -> DecoderModel {
        var options = options
        options.attentionPrecision = precision
        return DecoderModel(file: file, hyperparameters: hyperparameters, options: options, tokenEmbedding: tokenEmbedding,
                            layers: layers, outputNorm: outputNorm, output: output)
    }

    public func makeContext(capacity: Int, threads: Int) throws(ModelError) -> any ModelContext {
        let sequence = try makeSequenceCache(capacity: capacity)
        return TransformerContext(sequence: sequence, workspace: makeWorkspaceObject(batch: Self.batchSize, maxPositions: capacity, threads: threads))
    }

    public func makeSequence(capacity: Int) throws(ModelError) -> any ModelContext {
        try makeSequenceCache(capacity: capacity)
    }

    public func makeWorkspace(batch: Int, maxPositions: Int, threads: Int) throws(ModelError) -> any BatchWorkspace {
        guard batch > 0, maxPositions > 0 else { throw ModelError(.invalidHyperparameter, "workspace sizes must be positive") }
        return makeWorkspaceObject(batch: batch, maxPositions: maxPositions, threads: threads)
    }

    private func makeSequenceCache(capacity: Int) throws(ModelError) -> SequenceCache {
        guard capacity > 0 else { throw ModelError(.invalidHyperparameter, "context capacity must be positive") }
        let hp = hyperparameters
        return SequenceCache(cache: KVCache(layers: hp.layers, kvHeads: hp.kvHeads, keyDim: hp.keyDim, valueDim: hp.valueDim,
                                            capacity: capacity, precision: options.attentionPrecision))
    }

    private func makeWorkspaceObject(batch: Int, maxPositions: Int, threads: Int) -> Workspace {
        let hp = hyperparameters
        let qkvWidth = (hp.heads + 2 * hp.kvHeads) * max(hp.keyDim, hp.valueDim)
        return Workspace(threads: threads, batch: batch, maxPositions: maxPositions, embd: hp.embedding, heads: hp.heads,
                         kvHeads: hp.kvHeads, keyDim: hp.keyDim, valueDim: hp.valueDim, ff: hp.feedForward,
                         ropeDims: hp.ropeDims, fusedWidth: max(qkvWidth, 2 * hp.feedForward))
    }

    public func forward(_ tokens: [Int32], context: any ModelContext, logits mode: LogitsMode, adapter: ModelAdapter?) throws(ModelError)
        -> UnsafeBufferPointer<Float> {
        guard let ctx = context as? TransformerContext else {
            throw ModelError(.invalidHyperparameter, "context was not made by this model")
        }
        guard !tokens.isEmpty else { throw ModelError(.invalidToken, "no tokens to evaluate") }
        try validate(tokens[...], for: ctx.sequence)
        let vocab = vocabularySize, ws = ctx.workspace
        ws.reserveLogits((mode == .all ? tokens.count : 1) * vocab)
        var start = 0
        while start < tokens.count {
            let n = min(ws.batch, tokens.count - start)
            tokens.withUnsafeBufferPointer { buf in
                evaluate(UnsafeBufferPointer(rebasing: buf[start..<(start + n)]), segments: [Segment(sequence: ctx.sequence, count: n, adapter: adapter)], ws)
            }
            if mode == .all {
                outputLogits(ws, rows: 0..<n, into: ws.logits + start * vocab)
            } else if start + n == tokens.count {
                outputLogits(ws, rows: (n - 1)..<n, into: ws.logits)
            }
            start += n
        }
        return UnsafeBufferPointer(start: ws.logits, count: (mode == .all ? tokens.count : 1) * vocab)
    }

    public func forward(batch entries: [BatchEntry], workspace: any BatchWorkspace) throws(ModelError) -> UnsafeBufferPointer<Float> {
        guard let ws = workspace as? Workspace else {
            throw ModelError(.invalidHyperparameter, "workspace was not made by this model")
        }
        var segments: [Segment] = []
        var tokens: [Int32] = []
        var rows: [Int] = []
        for entry in entries {
            guard let sequence = entry.sequence as? SequenceCache else {
                throw ModelError(.invalidHyperparameter, "sequence was not made by makeSequence(capacity:)")
            }
            guard !entry.tokens.isEmpty else { throw ModelError(.invalidToken, "a batch entry has no tokens") }
            guard !segments.contains(where: { $0.sequence === sequence }) else {
                throw ModelError(.invalidHyperparameter, "a sequence appears twice in one batch")
            }
            guard sequence.capacity <= ws.maxPositions else {
                throw ModelError(.invalidHyperparameter, "a sequence of \(sequence.capacity) positions exceeds the workspace's \(ws.maxPositions)")
            }
            try validate(entry.tokens, for: sequence)
            segments.append(Segment(sequence: sequence, count: entry.tokens.count, adapter: entry.adapter))
            tokens.append(contentsOf: entry.tokens)
            if entry.wantsLogits { rows.append(tokens.count - 1) }
        }
        guard !tokens.isEmpty else { throw ModelError(.invalidToken, "no tokens to evaluate") }
        guard tokens.count <= ws.batch else {
            throw ModelError(.invalidHyperparameter, "a batch of \(tokens.count) tokens exceeds the workspace's \(ws.batch)")
        }
        let vocab = vocabularySize
        ws.reserveLogits(max(1, rows.count) * vocab)
        tokens.withUnsafeBufferPointer { evaluate($0, segments: segments, ws) }
        if !rows.isEmpty { outputLogits(ws, rows: rows, into: ws.logits) }
        return UnsafeBufferPointer(start: ws.logits, count: rows.count * vocab)
    }

    public func copyPrefix(from source: any ModelContext, to destination: any ModelContext, count: Int) throws(ModelError) {
        guard let from = source as? SequenceCache, let to = destination as? SequenceCache else {
            throw ModelError(.invalidHyperparameter, "sequences were not made by makeSequence(capacity:)")
        }
        guard count >= 0, count <= from.count, count <= to.capacity else {
            throw ModelError(.invalidHyperparameter, "cannot copy \(count) positions from a sequence of \(from.count) into one of \(to.capacity)")
        }
        guard from !== to else { to.truncate(to: count); return }
        to.cache.copyPrefix(from: from.cache, count: count)
        to.truncate(to: 0)
        to.advance(by: count)
    }

    private func validate(_ tokens: ArraySlice<Int32>, for sequence: SequenceCache) throws(ModelError) {
        guard sequence.count + tokens.count <= sequence.capacity else {
            throw ModelError(.contextFull, "context full: \(sequence.count) + \(tokens.count) tokens exceed its \(sequence.capacity) positions")
        }
        for t in tokens where t < 0 || Int(t) >= vocabularySize {
            throw ModelError(.invalidToken, "token id \(t) is outside the vocabulary (0..<\(vocabularySize))")
        }
    }
}
