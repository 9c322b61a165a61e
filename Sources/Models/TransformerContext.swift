import Kernels
import ModelFormats

/// One sequence's state on a decoder-only transformer: its KV cache and how many positions are
/// filled. Many of these share one ``Workspace`` in batched evaluation.
final class SequenceCache: ModelContext {
    let cache: KVCache
    private(set) var count = 0
    var capacity: Int { cache.capacity }

    init(cache: KVCache) { self.cache = cache }

    func truncate(to newCount: Int) { count = max(0, min(count, newCount)) }
    func advance(by n: Int) { count += n }
}

/// Everything a forward pass needs besides the KV caches: a thread pool and scratch buffers sized
/// once for `batch` tokens per step (attention scratch for `maxPositions`), so that a pass
/// allocates nothing. Owned by one thread at a time.
final class Workspace: BatchWorkspace {
    let pool: ThreadPool
    let batch: Int
    let maxPositions: Int

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
    private var buffers: [UnsafeMutableRawPointer] = []
    private var activations: [ActivationKey: ActivationBuffer] = [:]
    private(set) var quantizedSource: UnsafePointer<Float>?
    // LoRA: the current pass's adapters, each token's index among them (-1: none), and per call
    // the pairs of one projection, each token's index among those, and the kernel's scratch.
    fileprivate(set) var stepAdapters: [ModelAdapter] = []
    fileprivate(set) var adaptsOutput = false
    fileprivate var tokenAdapter: [Int32] = []
    fileprivate var loraSlots: [LoRAWeights?] = []
    fileprivate var loraScratch: LoRAScratch
    private var quantizedTypes: Set<ActivationKey> = []

    struct ActivationKey: Hashable { let type: GGMLType; let columns: Int }

    init(threads: Int, batch: Int, maxPositions: Int, embd: Int, heads: Int, kvHeads: Int, keyDim: Int, valueDim: Int,
         ff: Int, ropeDims: Int, fusedWidth: Int) {
        self.pool = ThreadPool(threads: threads)
        self.batch = batch
        self.maxPositions = maxPositions
        func alloc<T>(_ n: Int, _: T.Type = Float.self) -> UnsafeMutablePointer<T> {
            UnsafeMutablePointer<T>.allocate(capacity: max(1, n))
        }
        x = alloc(batch * embd); h = alloc(batch * embd)
        q = alloc(batch * heads * keyDim); k = alloc(batch * kvHeads * keyDim); v = alloc(batch * kvHeads * valueDim)
        attn = alloc(batch * heads * valueDim)
        gate = alloc(batch * ff); up = alloc(batch * ff); fused = alloc(batch * fusedWidth)
        ropeCos = alloc(ropeDims / 2 + 1); ropeSin = alloc(ropeDims / 2 + 1)
        loraScratch = LoRAScratch(tokens: batch, maxRank: 16)
        let group = heads / kvHeads
        attnScratch = (0..<pool.size).map { _ in
            Attention.Scratch(scores: alloc(group * maxPositions), probs16: alloc(group * Attention.probStride(maxPositions), UInt16.self),
                              query16: alloc(group * keyDim, UInt16.self))
        }
        buffers = [x, h, q, k, v, attn, gate, up, fused, ropeCos, ropeSin].map { UnsafeMutableRawPointer($0) }
        for s in attnScratch {
            buffers += [UnsafeMutableRawPointer(s.scores), UnsafeMutableRawPointer(s.probs16), UnsafeMutableRawPointer(s.query16)]
        }
    }

    deinit {
        for b in buffers { b.deallocate() }
        logits.deallocate()
    }

    /// Logits rows of the last pass; grows on demand, never shrinks.
    private(set) var logits = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    private var logitsCapacity = 1

    func reserveLogits(_ n: Int) {
        guard n > logitsCapacity else { return }
        logits.deallocate()
        logits = .allocate(capacity: n)
        logitsCapacity = n
    }

    /// Marks `input` as the rows the next matrix products read; they are quantized lazily, once per
    /// activation type.
    func setInput(_ input: UnsafePointer<Float>) {
        quantizedSource = input
        quantizedTypes.removeAll(keepingCapacity: true)
    }

    /// out[t] = w · input[t] for `tokens` rows of `w.columns` floats set by ``setInput(_:)``, plus
    /// each token's adapter's low-rank term for `lora` (layer, projection), if it has one.
    func project(_ w: QuantizedMatrix, tokens: Int, into out: UnsafeMutablePointer<Float>, lora: (layer: Int, slot: ModelAdapter.Slot)) {
        project(w, tokens: tokens, into: out)
        guard !stepAdapters.isEmpty else { return }
        addLoRA(layer: lora.layer, slot: lora.slot, tokens: tokens, into: out, ldOut: w.rows)
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

// MARK: - Adapters

extension Workspace {
    /// Sets the adapters of the next pass's tokens: `adapters[i]` for the `counts[i]` tokens of
    /// segment i, in order.
    func setAdapters(_ adapters: [ModelAdapter?], counts: [Int]) {
        stepAdapters.removeAll(keepingCapacity: true)
        tokenAdapter.removeAll(keepingCapacity: true)
        adaptsOutput = false
        for (adapter, count) in zip(adapters, counts) {
            var index: Int32 = -1
            if let adapter {
                if let i = stepAdapters.firstIndex(where: { $0 === adapter }) {
                    index = Int32(i)
                } else {
                    index = Int32(stepAdapters.count)
                    stepAdapters.append(adapter)
                    adaptsOutput = adaptsOutput || adapter.touchesOutput
                    reserveLoRAScratch(rank: adapter.maxRank)
                }
            }
            tokenAdapter.append(contentsOf: repeatElement(index, count: count))
        }
    }

    /// The adapter of token `t` of the current pass.
    func adapter(ofToken t: Int) -> ModelAdapter? {
        let i = tokenAdapter[t]
        return i < 0 ? nil : stepAdapters[Int(i)]
    }

    /// Adds each token's adapter's term for (layer, slot) to `out` (rows of `ldOut`), reading the
    /// input set by ``setInput(_:)``. Tokens whose adapter leaves this projection alone are untouched.
    func addLoRA(layer: Int, slot: ModelAdapter.Slot, tokens n: Int, into out: UnsafeMutablePointer<Float>, ldOut: Int) {
        loraSlots.removeAll(keepingCapacity: true)
        var any = false
        for adapter in stepAdapters {
            let weights = adapter.layers[layer][slot.rawValue]
            any = any || weights != nil
            loraSlots.append(weights)
        }
        guard any else { return }
        runLoRA(tokens: n, adapterOfToken: tokenAdapter, into: out, ldOut: ldOut)
    }

    /// Adds one adapter's term to all `n` rows of `out`, reading the input set by ``setInput(_:)``.
    func addLoRA(_ weights: LoRAWeights, tokens n: Int, into out: UnsafeMutablePointer<Float>, ldOut: Int) {
        reserveLoRAScratch(rank: weights.rank)
        loraSlots.removeAll(keepingCapacity: true)
        loraSlots.append(weights)
        runLoRA(tokens: n, adapterOfToken: [Int32](repeating: 0, count: n), into: out, ldOut: ldOut)
    }

    private func runLoRA(tokens n: Int, adapterOfToken: [Int32], into out: UnsafeMutablePointer<Float>, ldOut: Int) {
        guard let x = quantizedSource else { preconditionFailure("LoRA without input") }
        let width = loraSlots.lazy.compactMap { $0?.inFeatures }.first!
        do {
            try Kernels.loraApply(x: x, ldX: width, into: out, ldOut: ldOut, tokens: n, adapterOfToken: adapterOfToken,
                                  adapters: loraSlots, scratch: loraScratch, pool: pool)
        } catch {
            preconditionFailure("LoRA kernel refused a pass: \(error.message)")
        }
    }

    private func reserveLoRAScratch(rank: Int) {
        guard rank > loraScratch.maxRank else { return }
        loraScratch = LoRAScratch(tokens: batch, maxRank: rank)
    }
}

/// A single sequence with a workspace of its own: what ``LanguageModel/makeContext(capacity:threads:)``
/// returns for one-at-a-time generation.
final class TransformerContext: ModelContext {
    let sequence: SequenceCache
    let workspace: Workspace
    var count: Int { sequence.count }
    var capacity: Int { sequence.capacity }

    init(sequence: SequenceCache, workspace: Workspace) {
        self.sequence = sequence
        self.workspace = workspace
    }

    func truncate(to newCount: Int) { sequence.truncate(to: newCount) }
}
