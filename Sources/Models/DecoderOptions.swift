/// What distinguishes one decoder-only transformer architecture from another, beyond which
/// tensors its file holds (biases, QK norms, post-norms and fused projections are detected from
/// the tensors themselves). Each architecture file fills one of these from metadata.
struct DecoderOptions: Sendable {
    enum FeedForward: Sendable { case swiglu, geglu }

    /// Metadata key prefix, `general.architecture`.
    var architecture: String
    var feedForward: FeedForward = .swiglu
    /// Multiplies token embeddings (Gemma: √embedding).
    var embeddingScale: Float? = nil
    /// When set, queries are multiplied by it before attention and q·k is not scaled again
    /// (Gemma); otherwise q·k is scaled by 1/√keyDim.
    var queryScale: Float? = nil
    /// Sliding-window attention: the window and which layers use it.
    var slidingWindow: Int? = nil
    var isSlidingLayer: [Bool] = []
    /// RoPE base and scale of the sliding-window layers (default: the global ones).
    var slidingRopeBase: Float? = nil
    var slidingRopeScale: Float? = nil
    /// Gemma 2 style final logit soft-capping (cap · tanh(x / cap)).
    var finalLogitSoftcap: Float? = nil
    /// The KV cache's and attention's precision (see ``AttentionPrecision``).
    var attentionPrecision: AttentionPrecision = .f16

    init(architecture: String) { self.architecture = architecture }
}
