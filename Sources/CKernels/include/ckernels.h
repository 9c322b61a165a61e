// CKernels: the SIMD hot loops of Verity's engine, with scalar twins.
//
// Only Sources/Kernels imports this module. Every function that has a SIMD variant also has a
// `_scalar` twin with identical semantics; `ck_*` entry points dispatch at run time on CPUID
// (never -march=native), so the same binary runs on CPUs without AVX2 / AVX-512.
//
// Block layouts follow ggml's (GGUF tensor types), all little-endian, fp16 = IEEE binary16:
//   Q4_0  (32 elems, 18 B): f16 d; u8 qs[16]           x = ((nibble) - 8) * d
//   Q4_1  (32 elems, 20 B): f16 d, m; u8 qs[16]        x = nibble * d + m
//   Q5_0  (32 elems, 22 B): f16 d; u8 qh[4]; u8 qs[16] x = ((nibble | hbit << 4) - 16) * d
//   Q5_1  (32 elems, 24 B): f16 d, m; u8 qh[4]; u8 qs[16]  x = (nibble | hbit << 4) * d + m
//   Q8_0  (32 elems, 34 B): f16 d; i8 qs[32]            x = q * d
//   Q8_1  (32 elems, 36 B): f16 d, s; i8 qs[32]         x = q * d, s = d * sum(q)
// Nibble j of a 4-bit block: element j is the low nibble of qs[j], element j+16 the high nibble.
// The high bit of element j (5-bit types) is bit j of the little-endian u32 qh.
//   IQ4_NL (32 elems, 18 B): f16 d; u8 qs[16]          x = kvalues_iq4nl[nibble] * d
// Super-blocks of 256 (K-quants), field order as stored:
//   Q2_K  (84 B):  u8 scales[16] (lo 4 bits scale, hi 4 bits min, per 16), u8 qs[64], f16 d, dmin
//                  x = d*scale*q - dmin*min, q 2 bits
//   Q3_K  (110 B): u8 hmask[32], u8 qs[64], u8 scales[12] (16 packed 6-bit, -32), f16 d
//                  x = d*scale*(q - 4 if the hmask bit is clear), q 2 bits
//   Q4_K  (144 B): f16 d, dmin; u8 scales[12] (8 6-bit scales + 8 6-bit mins, per 32); u8 qs[128]
//                  x = d*scale*q - dmin*min, q 4 bits
//   Q5_K  (176 B): as Q4_K plus u8 qh[32] (the fifth bit) before qs
//   Q6_K  (210 B): u8 ql[128], u8 qh[64], i8 scales[16] (per 16), f16 d; x = d*scale*(q - 32), q 6 bits
//   IQ4_XS (136 B): f16 d; u16 scales_h; u8 scales_l[4] (8 6-bit scales, -32, per 32); u8 qs[128]
//                  x = d*scale*kvalues_iq4nl[nibble]
//   Q8_K  (292 B, activations only): f32 d; i8 qs[256]; i16 bsums[16] (sums of each 16 quants)
// See quants_k_scalar.c for where each element's bits live (ggml's layouts exactly).
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Tensor type codes: ggml's numbering, so GGMLType.rawValue passes straight through.
enum {
    CK_F32 = 0, CK_F16 = 1, CK_Q4_0 = 2, CK_Q4_1 = 3, CK_Q5_0 = 6, CK_Q5_1 = 7,
    CK_Q8_0 = 8, CK_Q8_1 = 9, CK_Q2_K = 10, CK_Q3_K = 11, CK_Q4_K = 12, CK_Q5_K = 13, CK_Q6_K = 14,
    CK_Q8_K = 15, CK_IQ4_NL = 20, CK_IQ4_XS = 23, CK_BF16 = 30,
};

/// Instruction-set levels the dispatcher can choose.
enum { CK_ISA_SCALAR = 0, CK_ISA_AVX2 = 1, CK_ISA_AVX512 = 2 };

/// The best level this CPU supports.
int ck_cpu_isa(void);
/// Forces a level at or below ck_cpu_isa() (tests and benchmarks); returns the level in force.
int ck_set_isa(int isa);
/// The level in force.
int ck_active_isa(void);

/// Optional instruction-set features used on top of the level (bit mask).
enum { CK_FEAT_AVXVNNI = 1, CK_FEAT_AVX512VNNI = 2 };
/// The features this CPU has.
int ck_cpu_features(void);
/// The features in use: AVX-VNNI when the CPU has it, the level in force is AVX2 or above, and
/// neither VERITY_ISA=avx2 / scalar nor VERITY_VNNI=0 turned it off.
int ck_active_features(void);

/// One implementation of a dot product, for tests comparing every SIMD variant with its twin
/// without changing the process-wide level (tests run concurrently).
enum { CK_VARIANT_SCALAR = 0, CK_VARIANT_AVX2 = 1, CK_VARIANT_AVXVNNI = 2 };
/// Whether `variant` can run here (the CPU has the instructions).
int ck_variant_available(int variant);
/// ck_vec_dot through `variant`; a type without such a variant uses the next lower one. NAN when
/// the variant cannot run on this CPU.
float ck_vec_dot_variant(int variant, int type, const void *x, const void *y, size_t n);

// ---- fp16 / bf16 -------------------------------------------------------------------------------
float ck_fp16_to_fp32(uint16_t h);
uint16_t ck_fp32_to_fp16(float f);
void ck_fp16_to_fp32_row(const uint16_t *x, float *y, size_t n);
void ck_fp32_to_fp16_row(const float *x, uint16_t *y, size_t n);

// ---- per-type facts ----------------------------------------------------------------------------
/// Elements per block, bytes per block, and the activation type its dot product consumes
/// (-1 when the type is not supported by these kernels).
int ck_block_size(int type);
int ck_block_bytes(int type);
int ck_vec_dot_type(int type);
/// Bytes of one row of `n` elements (n must be a multiple of the block size).
size_t ck_row_bytes(int type, size_t n);

// ---- dequantize / quantize ---------------------------------------------------------------------
/// Writes n floats; returns 0, or -1 for an unsupported type.
int ck_dequantize_row(int type, const void *x, float *y, size_t n);
int ck_dequantize_row_scalar(int type, const void *x, float *y, size_t n);
/// Quantizes n floats (multiple of 32; of 256 for Q8_K) to `type` (Q8_0, Q8_1, Q8_K, F16, F32, BF16
/// as activation types). Q8_K matches ggml's quantize_row_q8_K_ref byte for byte; Q8_0 / Q8_1 follow
/// llama.cpp's x86 activation quantizer (127/amax, round half to even), not quantize_row_q8_0_ref.
/// Any other weight type goes to ck_quantize_row_ref. Returns 0, or -1 for an unsupported type or
/// an n that is not a multiple of the block size.
int ck_quantize_row(int type, const float *x, void *y, size_t n);
int ck_quantize_row_scalar(int type, const float *x, void *y, size_t n);
/// Quantizes n weights (a multiple of the type's block size) byte for byte as llama.cpp's
/// llama-quantize does without an importance matrix (ggml_quantize_chunk with imatrix = NULL):
/// quantize_row_*_ref for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K; quantize_iq4_nl /
/// quantize_iq4_xs for IQ4_NL / IQ4_XS; F32, F16 and BF16 conversions. Scalar, deterministic, the
/// same on every CPU tier; each row (each block) is independent. Returns 0, or -1 for an
/// unsupported type or a bad n.
int ck_quantize_row_ref(int type, const float *x, void *y, size_t n);
/// 1 when ck_quantize_row_ref supports `type`, else 0.
int ck_quantize_weights_supported(int type);

// ---- dot products ------------------------------------------------------------------------------
/// Dot product of one row of `type` with one row of its vec-dot type (see ck_vec_dot_type),
/// n elements. Returns NAN for an unsupported type.
float ck_vec_dot(int type, const void *x, const void *y, size_t n);
float ck_vec_dot_scalar(int type, const void *x, const void *y, size_t n);
float ck_dot_f32(const float *x, const float *y, size_t n);
float ck_dot_f32_scalar(const float *x, const float *y, size_t n);

// ---- float activations -------------------------------------------------------------------------
/// gate[i] = silu(gate[i]) * up[i]
void ck_silu_mul(float *gate, const float *up, size_t n);
void ck_silu_mul_scalar(float *gate, const float *up, size_t n);
/// exp(x) as ggml's AVX-512 code computes it (≈1.5 ulp): Arm's optimized-routines reduction and
/// polynomial with the final 1 folded into the last FMA, scaled by 2^n; the scalar twin of the
/// SIMD paths (SiLU, softmax).
float ck_expf_scalef(float x);
/// Attention's softmax, in place, over x[0..n) sitting at cells lead..lead+n of a grid of 16-cell
/// chunks (lead < 16): exp(x - max) by ck_expf_scalef, each chunk's values summed as ggml's
/// _mm512_reduce_add_ps does, chunk sums added in double, then x *= (float)(1 / sum). These are the
/// operations of llama.cpp's soft_max over a KV cache row (masked cells are exact zeros there).
void ck_softmax_cells(float *x, size_t n, size_t lead);
void ck_softmax_cells_scalar(float *x, size_t n, size_t lead);
/// Rotates `half` pairs (v[i·stride], v[i·stride + offset]) of each of `heads` vectors of head_dim
/// floats by the angles whose cos / sin are given, with ggml's (GCC-contracted) FMAs.
void ck_rope(float *x, size_t heads, size_t head_dim, size_t half, size_t stride, size_t offset, const float *cos,
             const float *sin);
/// Sum of 16 floats in the order of _mm512_reduce_add_ps.
float ck_reduce16(const float v[16]);

/// out[j * ld_out + i] = Σ_{k<n} rows[i * stride + k] · vs[j * v_stride + k] for i < count, j < m,
/// in half precision widened to float, as llama.cpp's tinyBLAS F16 kernel orders it: 16 lanes,
/// lane k % 16 a chain of FMAs in k order, then ck_reduce16. Row elements at k >= valid (and
/// anything past n) count as zero and are not read, so a row may end inside the last 16-chunk.
/// Each row is read once for all m vectors (attention: the queries of one KV group against its
/// keys; their probabilities against its value columns). Bit-identical across ISAs.
void ck_dot_f16_rows(const uint16_t *rows, size_t stride, size_t count, size_t valid, const uint16_t *vs, size_t v_stride,
                     size_t m, size_t n, float *out, size_t ld_out);
void ck_dot_f16_rows_scalar(const uint16_t *rows, size_t stride, size_t count, size_t valid, const uint16_t *vs,
                            size_t v_stride, size_t m, size_t n, float *out, size_t ld_out);

// ---- thread pool -------------------------------------------------------------------------------
typedef struct ck_pool ck_pool;
typedef void (*ck_item_fn)(void *ctx, size_t item, int ith);
/// A persistent pool: n_threads - 1 workers plus the caller. Workers spin briefly, then sleep.
ck_pool *ck_pool_create(int n_threads);
void ck_pool_destroy(ck_pool *pool);
int ck_pool_size(const ck_pool *pool);
/// Calls fn(ctx, item, ith) once for every item in 0..<n_items, on whichever of the pool's threads
/// claims it first (ith: the claiming thread, 0 for the caller; use it to pick per-thread scratch),
/// and returns when all are done. Items are claimed one at a time, so a worker the OS has not
/// scheduled yet (more runnable threads than cores) costs nothing: the others do its share, and a
/// worker that arrives after the last item skips the call. Not reentrant: one caller at a time.
void ck_pool_for(ck_pool *pool, size_t n_items, ck_item_fn fn, void *ctx);

// ---- matrix products ---------------------------------------------------------------------------
/// out[t * ld_out + r] = dot(W row r, activation row t) for r < rows, t < n_tokens.
/// `w` holds `rows` rows of `cols` elements of `type`, row stride w_row_bytes. `act` holds n_tokens
/// rows already quantized to ck_vec_dot_type(type), stride act_row_bytes. Rows are split across
/// the pool's threads (pool may be NULL: single-threaded).
typedef struct {
    int type;
    const void *w;
    size_t w_row_bytes;
    size_t rows;
    size_t cols;
    const void *act;
    size_t act_row_bytes;
    size_t n_tokens;
    float *out;
    size_t ld_out;
} ck_matmul_args;
int ck_matmul(ck_pool *pool, const ck_matmul_args *args);

// ---- batched LoRA (lora.c) ---------------------------------------------------------------------
/// One adapter's low-rank pair for one projection, row-major: `a` is rank × in (PEFT's
/// lora_A.weight), `b` is out × rank (lora_B.weight) or, with b_transposed, rank × out (a copy the
/// loader transposed once: the kernel then skips its per-call transposes; same results, bit for bit).
/// Both of `type` (CK_F32, CK_F16 or CK_BF16). rank 0: the adapter leaves this projection alone
/// (its tokens are skipped; a and b unused).
typedef struct {
    const void *a;
    const void *b;
    int type;
    int rank;
    float scale;
    int b_transposed;
} ck_lora_adapter;
/// Scratch bytes ck_lora_apply needs for n_tokens tokens whose adapters have rank <= max_rank.
size_t ck_lora_scratch_bytes(size_t n_tokens, size_t max_rank);
/// For every token t < n_tokens with idx[t] >= 0 (an index into adapters[0..<n_adapters]) and that
/// adapter's rank > 0: u = A·x[t], d[o] = Σ_j B[o][j]·u[j], out[t * ld_out + o] += d[o] · scale for
/// o < out_dim; x[t] is x + t * ld_x (in floats). Tokens with idx -1 are not touched.
/// Every result is bit-identical across instruction sets, thread counts and batch compositions: u[j]
/// is 16 lanes of fmaf chains (lane l: i ≡ l mod 16, the row zero-padded to a multiple of 16) summed
/// as ck_reduce16; d[o] one fmaf chain over j from +0; then out + d·scale (see lora.c).
/// scratch: 4-byte aligned, at least ck_lora_scratch_bytes(n_tokens, largest rank in use) bytes.
/// Returns 0, or -1 (nothing written) for a bad argument: an index out of range, an unsupported
/// type, a rank above 65536, a null pointer, ld_x < in, ld_out < out_dim, or too little scratch.
/// pool may be NULL (single-threaded); small calls run on the caller's thread anyway.
int ck_lora_apply(ck_pool *pool, const float *x, size_t ld_x, size_t in, float *out, size_t ld_out, size_t out_dim,
                  size_t n_tokens, const int32_t *idx, const ck_lora_adapter *adapters, size_t n_adapters, void *scratch,
                  size_t scratch_bytes);
/// ck_lora_apply through one variant (CK_VARIANT_SCALAR: the scalar twin; CK_VARIANT_AVX2 and
/// CK_VARIANT_AVXVNNI: the AVX2 kernels) whatever the level in force; -2 when the CPU cannot run it.
int ck_lora_apply_variant(int variant, ck_pool *pool, const float *x, size_t ld_x, size_t in, float *out, size_t ld_out,
                          size_t out_dim, size_t n_tokens, const int32_t *idx, const ck_lora_adapter *adapters,
                          size_t n_adapters, void *scratch, size_t scratch_bytes);

#ifdef __cplusplus
}
#endif
#endif
