import Kernels
import ModelFormats

/// The mutable state of one sequence on a decoder-only transformer: KV cache, a thread pool, and
/// scratch buffers sized once for `batch` tokens per step, so a forward pass allocates nothing.
final class TransformerContext: ModelContext {
    let cache: KVCache
    let pool: ThreadPool
    let batch: Int
    private(set) var count = 0
    var capacity: Int { cache.capacity }

    // Scratch, each `batch` rows.
    let x: UnsafeMutablePointer<Float>        // residual stream, batch × embd
    let h: UnsafeMutablePointer<Float>        // normed input, batch × embd
    let q: UnsafeMutablePointer<Float>        // batch × heads·keyDim
    let k: UnsafeMutablePointer<Float>        // batch × kvHeads·keyDim
    let v: UnsafeMutablePointer<Float>        // batch × kvHeads·valueDim
    let attn: UnsafeMutablePointer<Float>     // batch × heads·valueDim
    let gate: UnsafeMutablePointer<Float>     // batch × ff
    let up: UnsafeMutablePointer<Float>       // batch × ff
    let fused: UnsafeMutablePointer<Float>    // batch × fused QKV or gate+up width
    let ropeCos: UnsafeMutablePointer<Float>
    let ropeSin: UnsafeMutablePointer<Float>
    let attnScratch: [Attention.Scratch]      // one per pool thread
    let logits: UnsafeMutablePointer<Float>   // batch × vocab
    private var buffers: [UnsafeMutableRawPointer] = []
    private var activations: [ActivationKey: ActivationBuffer] = [:]
    private var quantizedSource: UnsafePointer<Float>?
    private var quantizedTypes: Set<ActivationKey> = []

    struct ActivationKey: Hashable { let type: GGMLType; let columns: Int }

    init(cache: KVCache, threads: Int, batch: Int, embd: Int, heads: Int, ff: Int, vocab: Int, ropeDims: Int, fusedWidth: Int) {
        self.cache = cache
        self.pool = ThreadPool(threads: threads)
        self.batch = batch
        func alloc<T>(_ n: Int, _: T.Type = Float.self) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: max(1, n))
            return p
        }
        let qDim = heads * cache.keyDim, kDim = cache.kvHeads * cache.keyDim, vDim = cache.kvHeads * cache.valueDim
        x = alloc(batch * embd); h = alloc(batch * embd)
        q = alloc(batch * qDim); k = alloc(batch * kDim); v = alloc(batch * vDim)
        attn = alloc(batch * heads * cache.valueDim)
        gate = alloc(batch * ff); up = alloc(batch * ff); fused = alloc(batch * fusedWidth)
        ropeCos = alloc(ropeDims / 2 + 1); ropeSin = alloc(ropeDims / 2 + 1)
        attnScratch = (0..<pool.size).map { _ in
            Attention.Scratch(scores: alloc(cache.capacity), probs16: alloc(cache.capacity, UInt16.self),
                              query16: alloc(cache.keyDim, UInt16.self))
        }
        logits = alloc(vocab)                  // one row: the last token of a `.last` pass
        buffers = [x, h, q, k, v, attn, gate, up, fused, ropeCos, ropeSin, logits].map { UnsafeMutableRawPointer($0) }
        for s in attnScratch {
            buffers += [UnsafeMutableRawPointer(s.scores), UnsafeMutableRawPointer(s.probs16), UnsafeMutableRawPointer(s.query16)]
        }
    }

    deinit {
        for b in buffers { b.deallocate() }
        allLogits.deallocate()
    }

    func truncate(to newCount: Int) { count = max(0, min(count, newCount)) }

    /// Logits of every token of a `.all` forward pass; grows on demand, never shrinks.
    private(set) var allLogits = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    private var allLogitsCapacity = 1

    func reserveAllLogits(_ n: Int) {
        guard n > allLogitsCapacity else { return }
        allLogits.deallocate()
        allLogits = .allocate(capacity: n)
        allLogitsCapacity = n
    }

    func advance(by n: Int) { count += n }

    /// Marks `input` as the rows the next matrix products read; they are quantized lazily, once per
    /// activation type.
    func setInput(_ input: UnsafePointer<Float>) {
        quantizedSource = input
        quantizedTypes.removeAll(keepingCapacity: true)
    }

    /// out[t] = w · input[t] for `tokens` rows of `w.columns` floats set by ``setInput(_:)``.
    func project(_ w: QuantizedMatrix, tokens: Int, into out: UnsafeMutablePointer<Float>) {
        guard let source = quantizedSource else { preconditionFailure("project without input") }
        let key = ActivationKey(type: w.activationType, columns: w.columns)
        let buffer: ActivationBuffer
        if let existing = activations[key] {
            buffer = existing
        } else {
            buffer = ActivationBuffer(type: key.type, columns: key.columns, capacity: batch)
            activations[key] = buffer
        }
        if !quantizedTypes.contains(key) {
            buffer.load(source, tokens: tokens, stride: w.columns)
            quantizedTypes.insert(key)
        }
        Kernels.matmul(w, buffer, tokens: tokens, into: out, ldOut: w.rows, pool: pool)
    }
}
