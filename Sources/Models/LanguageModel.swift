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
    func forward(_ tokens: [Int32], context: any ModelContext, logits: LogitsMode) throws(ModelError)
        -> UnsafeBufferPointer<Float>
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
