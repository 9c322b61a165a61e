import Kernels
import ModelFormats

/// Which positions of a forward pass need logits.
public enum LogitsMode: Sendable {
    /// Only the last token's (generation).
    case last
    /// Every token's (teacher-forced evaluation, perplexity).
    case all
}

/// A loaded causal language model. Weights are immutable and shared; everything mutable
/// (KV cache, scratch, thread pool) lives in a ``ModelContext`` owned by one thread.
public protocol LanguageModel: AnyObject, Sendable {
    /// Architecture name as in `general.architecture`, e.g. `"llama"`.
    var architecture: String { get }
    /// Number of logits per position.
    var vocabularySize: Int { get }
    /// The context length the model was trained for.
    var trainedContextLength: Int { get }

    /// Creates a context holding a KV cache for `capacity` positions and a pool of `threads`.
    func makeContext(capacity: Int, threads: Int) throws(ModelError) -> any ModelContext

    /// Evaluates `tokens` at positions `context.count ..< context.count + tokens.count`, appends
    /// them to the KV cache, and returns the logits: one row of `vocabularySize` floats for the last
    /// token, or one per token. The buffer is owned by the context and valid until its next call.
    func forward(_ tokens: [Int32], context: any ModelContext, logits: LogitsMode, adapter: ModelAdapter?) throws(ModelError)
        -> UnsafeBufferPointer<Float>

    /// Prepares a LoRA adapter read for this model's file, with the user's `scale`.
    func makeAdapter(_ file: LoRAFile, scale: Float) throws(ModelError) -> ModelAdapter

    /// Creates an empty sequence (a KV cache for `capacity` positions) for batched evaluation.
    func makeSequence(capacity: Int) throws(ModelError) -> any ModelContext

    /// Creates the scratch and thread pool that batched passes of up to `batch` tokens in all,
    /// over sequences of up to `maxPositions` positions, run on.
    func makeWorkspace(batch: Int, maxPositions: Int, threads: Int) throws(ModelError) -> any BatchWorkspace

    /// Evaluates several sequences' tokens in one pass (one matrix product per weight for all of
    /// them), appending each entry's tokens to its sequence. Returns one row of logits for the last
    /// token of each entry that wants them, in entry order. Each token's logits are bit-identical
    /// to what a pass over that sequence alone computes. The buffer is owned by the workspace and
    /// valid until its next pass.
    func forward(batch: [BatchEntry], workspace: any BatchWorkspace) throws(ModelError) -> UnsafeBufferPointer<Float>

    /// Makes `destination` hold the first `count` positions of `source` (both made by
    /// ``makeSequence(capacity:)``): a memory copy of their KV entries instead of recomputing a
    /// prefix two sequences share.
    func copyPrefix(from source: any ModelContext, to destination: any ModelContext, count: Int) throws(ModelError)
}

extension LanguageModel {
    /// ``forward(_:context:logits:adapter:)`` on the bare base model.
    public func forward(_ tokens: [Int32], context: any ModelContext, logits: LogitsMode) throws(ModelError) -> UnsafeBufferPointer<Float> {
        try forward(tokens, context: context, logits: logits, adapter: nil)
    }
}

/// Scratch buffers and threads shared by batched forward passes (made by ``LanguageModel``).
public protocol BatchWorkspace: AnyObject {
    /// Most tokens one pass may hold, over all entries.
    var batch: Int { get }
}

/// One sequence's share of a batched forward pass.
public struct BatchEntry {
    public var sequence: any ModelContext
    public var tokens: ArraySlice<Int32>
    /// Whether to return logits for the entry's last token.
    public var wantsLogits: Bool
    /// The LoRA adapter this sequence runs with (nil: the bare base). A sequence's KV cache holds
    /// its adapter's keys and values: keep one sequence on one adapter.
    public var adapter: ModelAdapter?

    public init(sequence: any ModelContext, tokens: ArraySlice<Int32>, wantsLogits: Bool, adapter: ModelAdapter? = nil) {
        self.sequence = sequence
        self.tokens = tokens
        self.wantsLogits = wantsLogits
        self.adapter = adapter
    }
}

/// Per-sequence mutable state: the KV cache and scratch buffers of one model.
public protocol ModelContext: AnyObject {
    /// Positions filled in the KV cache.
    var count: Int { get }
    /// Positions the KV cache can hold.
    var capacity: Int { get }
    /// Forgets positions from `count` on (keeps a shared prefix for reuse).
    func truncate(to count: Int)
}
