import CKernels
import ModelFormats

/// One LoRA adapter's low-rank pair for one projection, row-major: `a` is `rank × inFeatures`
/// (PEFT's `lora_A.weight`), `b` is `outFeatures × rank` (`lora_B.weight`) or its transpose (see
/// `BLayout`), both of `type`. The memory is owned elsewhere (typically a mapped safetensors or GGUF
/// file) and must outlive every use of this value.
public struct LoRAWeights: @unchecked Sendable {
    /// `rank × inFeatures` elements of `type`.
    public let a: UnsafeRawPointer
    /// `outFeatures × rank` elements of `type`, or `rank × outFeatures` (see `bLayout`).
    public let b: UnsafeRawPointer
    /// How `b` is laid out.
    public let bLayout: BLayout
    /// `.f32`, `.f16` or `.bf16` (both matrices); converted to float element by element.
    public let type: GGMLType
    /// r: A's rows and B's columns (1…`maxRank`).
    public let rank: Int
    /// The projection's input width (A's row length).
    public let inFeatures: Int
    /// The projection's output width (B's row count).
    public let outFeatures: Int
    /// The factor the delta is multiplied by: PEFT's `lora_alpha / r` (`lora_alpha / √r` with rsLoRA).
    public let scale: Float

    /// The layout of B.
    public enum BLayout: Sendable {
        /// `outFeatures × rank`, as PEFT's `lora_B.weight` and GGUF LoRA files store it.
        case outByRank
        /// `rank × outFeatures`: a transposed copy made once at load. The kernel then skips its
        /// per-call transposes of B (the results are bit-identical either way).
        case rankByOut
    }

    /// The largest rank the kernels take.
    public static let maxRank = 65536

    /// Types the LoRA kernels read.
    public static let supportedTypes: [GGMLType] = [.f32, .f16, .bf16]

    /// Wraps an adapter's A and B matrices.
    /// - Parameters:
    ///   - a: `rank × inFeatures` elements of `type` (`lora_A.weight`).
    ///   - b: `outFeatures × rank` elements of `type` (`lora_B.weight`), or `rank × outFeatures`
    ///     with `bLayout` `.rankByOut`.
    ///   - bLayout: the layout of `b` (default: PEFT's).
    ///   - type: `.f32`, `.f16` or `.bf16`.
    ///   - rank: the adapter's rank r (at least 1).
    ///   - inFeatures: the projection's input width (A's row length).
    ///   - outFeatures: the projection's output width (B's row count).
    ///   - scale: multiplies the delta: `out += (B·(A·x))·scale`.
    /// - Throws: `KernelError` `.unsupportedType` for another type, `.shapeMismatch` for a
    ///   non-positive dimension or a rank above `maxRank`.
    public init(a: UnsafeRawPointer, b: UnsafeRawPointer, bLayout: BLayout = .outByRank, type: GGMLType, rank: Int,
                inFeatures: Int, outFeatures: Int, scale: Float) throws(KernelError) {
        guard Self.supportedTypes.contains(type) else {
            throw KernelError(.unsupportedType, "LoRA weights of type \(type.name) (supported: f32, f16, bf16)")
        }
        guard rank > 0, rank <= Self.maxRank, inFeatures > 0, outFeatures > 0 else {
            throw KernelError(.shapeMismatch, "LoRA rank \(rank), \(inFeatures) → \(outFeatures) features: every size must be positive and the rank at most \(Self.maxRank)")
        }
        self.a = a
        self.b = b
        self.bLayout = bLayout
        self.type = type
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.scale = scale
    }

    var raw: ck_lora_adapter {
        ck_lora_adapter(a: a, b: b, type: Int32(type.rawValue), rank: Int32(rank), scale: scale,
                        b_transposed: bLayout == .rankByOut ? 1 : 0)
    }
}

/// The working memory of `Kernels.loraApply` for up to `tokens` tokens of adapters of rank up to
/// `maxRank`: allocated once (per model) and reused every step, by one call at a time.
public final class LoRAScratch: @unchecked Sendable {
    /// Most tokens one call may pass.
    public let tokens: Int
    /// Largest adapter rank one call may use.
    public let maxRank: Int
    let byteCount: Int
    let storage: UnsafeMutableRawPointer

    /// Scratch for calls of up to `tokens` tokens with ranks up to `maxRank`.
    public init(tokens: Int, maxRank: Int) {
        self.tokens = max(1, tokens)
        self.maxRank = max(1, maxRank)
        byteCount = ck_lora_scratch_bytes(self.tokens, self.maxRank)
        storage = .allocate(byteCount: byteCount, alignment: 64)
    }

    deinit { storage.deallocate() }
}

extension Kernels {
    /// Adds each token's LoRA delta to the base projection's output, for a batch that mixes
    /// adapters: for every token t < `tokens` with `adapterOfToken[t] = k >= 0` and
    /// `adapters[k]` not nil, `out[t] += (B_k·(A_k·x[t]))·scale_k`.
    ///
    /// Each result is bit-identical whatever the instruction set, thread count, batch size, the
    /// token's position or the other tokens and adapters in the batch: a sequence gets the same
    /// numbers alone or batched (see `Sources/CKernels/lora.c` for the exact operation order).
    /// Allocation-free. Tokens of one adapter are grouped so they share its weights in cache.
    /// - Parameters:
    ///   - x: the projection's input rows, `inFeatures` floats each (the adapters' shared width).
    ///   - ldX: floats from one token's input row to the next (at least `inFeatures`).
    ///   - out: the base projection's output rows, `outFeatures` floats each; updated in place.
    ///     Rows of tokens without an adapter are not touched.
    ///   - ldOut: floats from one token's output row to the next (at least `outFeatures`).
    ///   - tokens: the number of rows of `x` and `out`.
    ///   - adapterOfToken: for each token, its index into `adapters`, or -1 for none; at least
    ///     `tokens` entries.
    ///   - adapters: the adapter slots of this projection; nil where an adapter does not target it
    ///     (its tokens are left alone, as with -1). Every non-nil entry has the same
    ///     `inFeatures` and `outFeatures`.
    ///   - scratch: working memory for at least `tokens` tokens and every used adapter's rank.
    ///   - pool: the threads to split the work over; nil runs on the caller's thread.
    /// - Throws: `KernelError.shapeMismatch` (nothing written) for an index out of range,
    ///   adapters of differing widths, a stride below the width, or scratch that is too small.
    public static func loraApply(x: UnsafePointer<Float>, ldX: Int, into out: UnsafeMutablePointer<Float>, ldOut: Int,
                                 tokens: Int, adapterOfToken: [Int32], adapters: [LoRAWeights?], scratch: LoRAScratch,
                                 pool: ThreadPool?) throws(KernelError) {
        try loraRun(variant: nil, x: x, ldX: ldX, out: out, ldOut: ldOut, tokens: tokens, adapterOfToken: adapterOfToken,
                    adapters: adapters, scratch: scratch, pool: pool)
    }

    /// `loraApply` through one implementation whatever the level in force (`.scalar`: the scalar
    /// twin; `.avx2` and `.avxVNNI`: the AVX2 kernels), for tests that compare them bit for bit.
    /// Parameters and errors as `loraApply(x:ldX:into:ldOut:tokens:adapterOfToken:adapters:scratch:pool:)`.
    /// - Returns: false, with `out` untouched, when this CPU cannot run `variant`.
    @discardableResult
    public static func loraApply(x: UnsafePointer<Float>, ldX: Int, into out: UnsafeMutablePointer<Float>, ldOut: Int,
                                 tokens: Int, adapterOfToken: [Int32], adapters: [LoRAWeights?], scratch: LoRAScratch,
                                 pool: ThreadPool?, variant: DotVariant) throws(KernelError) -> Bool {
        guard variant.isAvailable else { return false }
        try loraRun(variant: variant, x: x, ldX: ldX, out: out, ldOut: ldOut, tokens: tokens, adapterOfToken: adapterOfToken,
                    adapters: adapters, scratch: scratch, pool: pool)
        return true
    }

    private static func loraRun(variant: DotVariant?, x: UnsafePointer<Float>, ldX: Int, out: UnsafeMutablePointer<Float>,
                                ldOut: Int, tokens: Int, adapterOfToken: [Int32], adapters: [LoRAWeights?],
                                scratch: LoRAScratch, pool: ThreadPool?) throws(KernelError) {
        guard tokens > 0 else { return }
        guard adapterOfToken.count >= tokens else {
            throw KernelError(.shapeMismatch, "LoRA: \(tokens) tokens but \(adapterOfToken.count) adapter indices")
        }
        guard tokens <= scratch.tokens else {
            throw KernelError(.shapeMismatch, "LoRA: \(tokens) tokens but scratch for \(scratch.tokens)")
        }
        var width: (in: Int, out: Int)?
        for case let w? in adapters {
            if let width, width != (w.inFeatures, w.outFeatures) {
                throw KernelError(.shapeMismatch, "LoRA adapters of one projection differ in shape: \(width.in) → \(width.out) and \(w.inFeatures) → \(w.outFeatures)")
            }
            width = (w.inFeatures, w.outFeatures)
        }
        for t in 0..<tokens {
            let k = Int(adapterOfToken[t])
            guard k >= -1, k < adapters.count else {
                throw KernelError(.shapeMismatch, "LoRA: token \(t) names adapter \(k) of \(adapters.count)")
            }
            if k >= 0, let w = adapters[k], w.rank > scratch.maxRank {
                throw KernelError(.shapeMismatch, "LoRA: adapter \(k) has rank \(w.rank) but scratch holds rank \(scratch.maxRank)")
            }
        }
        guard let width else { return } // no adapter targets this projection
        guard ldX >= width.in, ldOut >= width.out else {
            throw KernelError(.shapeMismatch, "LoRA: strides \(ldX), \(ldOut) below the widths \(width.in), \(width.out)")
        }
        let rc = withUnsafeTemporaryAllocation(of: ck_lora_adapter.self, capacity: adapters.count) { table in
            for (k, w) in adapters.enumerated() {
                table[k] = w?.raw ?? ck_lora_adapter(a: nil, b: nil, type: Int32(GGMLType.f32.rawValue), rank: 0, scale: 0, b_transposed: 0)
            }
            return adapterOfToken.withUnsafeBufferPointer { idx in
                if let variant {
                    return ck_lora_apply_variant(variant.rawValue, pool?.handle, x, ldX, width.in, out, ldOut, width.out, tokens,
                                                 idx.baseAddress, table.baseAddress, adapters.count, scratch.storage,
                                                 scratch.byteCount)
                }
                return ck_lora_apply(pool?.handle, x, ldX, width.in, out, ldOut, width.out, tokens, idx.baseAddress,
                                     table.baseAddress, adapters.count, scratch.storage, scratch.byteCount)
            }
        }
        guard rc == 0 else { throw KernelError(.shapeMismatch, "LoRA: the kernel refused its arguments (\(rc))") }
    }
}
