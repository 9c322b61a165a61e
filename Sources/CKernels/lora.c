// Batched LoRA: after the base product out[t] = W·x[t], each token t whose sequence uses adapter
// a = idx[t] gets out[t] += scale_a · B_a·(A_a·x[t]) (PEFT: A is rank×in, B is out×rank, row-major;
// B may also come transposed, rank×out). Tokens of many adapters, and tokens with none (idx -1),
// share one call.
//
// Two phases over the pool, with the tokens grouped by adapter first (stable, in the caller's
// scratch), so that the tokens of one adapter pass over its weights while they are in cache:
//   shrink  u[t][j] = A[j]·x[t]   items: (adapter, 4 rows of A, up to 16 of its tokens)
//   expand  d[t][o] = B[o]·u[t]   items: (adapter, a chunk of outputs, up to 16 of its tokens)
//           out[t][o] = out[t][o] + d[t][o]·scale
//
// Every value has one fixed sequence of float operations, whatever the instruction set, thread
// count, batch size, batch position or neighbours of its token (so a sequence's logits do not
// depend on what it was batched with):
//   u[t][j]: 16 lanes, lane l an fmaf chain over i ≡ l (mod 16) in increasing i, the row padded
//            with zeros to a multiple of 16 (a pad step is fmaf(0, 0, acc)), then the lanes summed
//            as ck_reduce16 (= hsum_ps(hi + lo) on AVX2, _mm512_reduce_add_ps on AVX-512);
//   d[t][o]: one fmaf chain over j = 0..rank-1 from +0 (AVX2 holds 8 outputs per vector, from a
//            panel of B converted to float and, in PEFT's layout, transposed: no horizontal sums);
//   out:     out + d·scale, a rounded product then a rounded sum (the Package builds CKernels with
//            -ffp-contract=off, and every FMA here is explicit).
// Weights (F32, F16 or BF16) are converted to float exactly; activations are float throughout.
// How the work is split (items, tiles, panels, threads) never changes these operations.
#include "ck_internal.h"

// Rows of A per shrink item, and tokens per item of either phase.
#define LORA_ROWS 4
#define LORA_TOKENS 16
// Below this many multiply-adds (both phases) a call runs on the caller's thread alone: waking
// the pool costs more than the work.
#define LORA_PARALLEL_MIN 32768
// Ranks above this are refused (PEFT ranks are at most a few hundred; this keeps item counts in int32).
#define LORA_MAX_RANK 65536
// The AVX2 expand converts B a panel at a time: 64 outputs × up to 64 ranks (16 KiB of stack).
#define LORA_PANEL 64
#define LORA_JCHUNK 64

size_t ck_lora_scratch_bytes(size_t n_tokens, size_t max_rank) {
    return sizeof(float) * n_tokens * max_rank + sizeof(int32_t) * (6 * n_tokens + 4);
}

static inline float lora_w(int type, const void *p, size_t i) {
    switch (type) {
    case CK_F16: return ck_fp16_to_fp32(((const uint16_t *)p)[i]);
    case CK_BF16: return ck_bf16_to_fp32(((const uint16_t *)p)[i]);
    default: return ((const float *)p)[i];
    }
}

// The plan of one call, in the caller's scratch: tokens grouped by adapter.
typedef struct {
    const float *x;
    size_t ld_x, in;
    float *out;
    size_t ld_out, out_dim;
    const ck_lora_adapter *adapters;
    float *u;             // u[p * ustride + j] for the token at position p of `order`
    size_t ustride;       // the largest rank in use
    const int32_t *order; // tokens grouped by adapter, each group in token order
    const int32_t *gstart, *gad; // group g: positions gstart[g]..<gstart[g+1], adapter gad[g]
    const int32_t *shpre, *expre; // items before group g in each phase
    int n_groups;
    size_t ochunk; // outputs per expand item (a multiple of LORA_PANEL)
    int avx2;
} lora_ctx;

static inline int lora_group_of(const int32_t *pre, int n_groups, size_t item) {
    int lo = 0, hi = n_groups - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if ((size_t)pre[mid] <= item) lo = mid; else hi = mid - 1;
    }
    return lo;
}

static inline size_t lora_chunks(size_t n, size_t c) { return (n + c - 1) / c; }

// ---- scalar twins --------------------------------------------------------------------------------

// u[p][j0 + r] for r < nr and the positions p0..<p1.
static void shrink_scalar(const lora_ctx *c, const ck_lora_adapter *ad, size_t j0, int nr, size_t p0, size_t p1) {
    const size_t in = c->in;
    for (size_t p = p0; p < p1; p++) {
        const float *x = c->x + (size_t)c->order[p] * c->ld_x;
        for (int r = 0; r < nr; r++) {
            const size_t row = (j0 + (size_t)r) * in;
            float acc[16] = { 0 };
            for (size_t i0 = 0; i0 < in; i0 += 16)
                for (int l = 0; l < 16; l++) {
                    const size_t i = i0 + (size_t)l;
                    const float a = i < in ? lora_w(ad->type, ad->a, row + i) : 0.0f;
                    const float v = i < in ? x[i] : 0.0f;
                    acc[l] = fmaf(a, v, acc[l]);
                }
            c->u[p * c->ustride + j0 + (size_t)r] = ck_reduce16(acc);
        }
    }
}

// out[t][o] for o in o0..<o1 and the tokens at positions p0..<p1.
static void expand_scalar(const lora_ctx *c, const ck_lora_adapter *ad, size_t o0, size_t o1, size_t p0, size_t p1) {
    const size_t rank = (size_t)ad->rank;
    const float scale = ad->scale;
    for (size_t p = p0; p < p1; p++) {
        const float *u = c->u + p * c->ustride;
        float *out = c->out + (size_t)c->order[p] * c->ld_out;
        for (size_t o = o0; o < o1; o++) {
            float d = 0.0f;
            for (size_t j = 0; j < rank; j++) {
                const size_t at = ad->b_transposed ? j * c->out_dim + o : o * rank + j;
                d = fmaf(lora_w(ad->type, ad->b, at), u[j], d);
            }
            out[o] = out[o] + d * scale;
        }
    }
}

// ---- AVX2 ----------------------------------------------------------------------------------------
#if defined(__x86_64__) || defined(__i386__)
#include "ck_avx2.h"

// 8 weights from element i on, as floats (`type` is a constant wherever this is inlined).
__attribute__((always_inline)) CK_AVX2 static inline __m256 lora_ld8(int type, const void *p, size_t i) {
    switch (type) {
    case CK_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    case CK_BF16:
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i))), 16));
    default: return _mm256_loadu_ps((const float *)p + i);
    }
}

// nr (1..4) rows of A against one token: two 8-lane accumulators per row (lanes 0..7, 8..15).
__attribute__((always_inline)) CK_AVX2 static inline void shrink_tile(int type, int nr, const void *a, size_t in, size_t j0,
                                                                     const float *x, float *u) {
    __m256 lo[LORA_ROWS], hi[LORA_ROWS];
    for (int r = 0; r < nr; r++) lo[r] = hi[r] = _mm256_setzero_ps();
    const size_t full = in & ~(size_t)15;
    for (size_t i = 0; i < full; i += 16) {
        const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
        for (int r = 0; r < nr; r++) {
            const size_t row = (j0 + (size_t)r) * in;
            lo[r] = _mm256_fmadd_ps(lora_ld8(type, a, row + i), x0, lo[r]);
            hi[r] = _mm256_fmadd_ps(lora_ld8(type, a, row + i + 8), x1, hi[r]);
        }
    }
    if (full < in) {
        // The last partial chunk through zero-padded copies: fmaf(0, 0, acc) in the pad lanes,
        // exactly as the scalar twin steps through them.
        float xt[16] = { 0 }, at[16];
        for (size_t i = full; i < in; i++) xt[i - full] = x[i];
        const __m256 x0 = _mm256_loadu_ps(xt), x1 = _mm256_loadu_ps(xt + 8);
        for (int r = 0; r < nr; r++) {
            const size_t row = (j0 + (size_t)r) * in;
            for (size_t l = 0; l < 16; l++) at[l] = full + l < in ? lora_w(type, a, row + full + l) : 0.0f;
            lo[r] = _mm256_fmadd_ps(_mm256_loadu_ps(at), x0, lo[r]);
            hi[r] = _mm256_fmadd_ps(_mm256_loadu_ps(at + 8), x1, hi[r]);
        }
    }
    for (int r = 0; r < nr; r++) u[r] = hsum_ps(_mm256_add_ps(hi[r], lo[r]));
}

__attribute__((always_inline)) CK_AVX2 static inline void shrink_avx2_t(int type, const lora_ctx *c, const ck_lora_adapter *ad,
                                                                       size_t j0, int nr, size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; p++) {
        const float *x = c->x + (size_t)c->order[p] * c->ld_x;
        float *u = c->u + p * c->ustride + j0;
        if (nr == LORA_ROWS) shrink_tile(type, LORA_ROWS, ad->a, c->in, j0, x, u);
        else shrink_tile(type, nr, ad->a, c->in, j0, x, u);
    }
}

CK_AVX2 static void shrink_avx2(const lora_ctx *c, const ck_lora_adapter *ad, size_t j0, int nr, size_t p0, size_t p1) {
    switch (ad->type) {
    case CK_F16: shrink_avx2_t(CK_F16, c, ad, j0, nr, p0, p1); break;
    case CK_BF16: shrink_avx2_t(CK_BF16, c, ad, j0, nr, p0, p1); break;
    default: shrink_avx2_t(CK_F32, c, ad, j0, nr, p0, p1); break;
    }
}

// bt[j][l] = B[o0 + l][jc + j] as a float for l < nrows, j < jn, and zeros for l from nrows to the
// next multiple of 16. B as PEFT stores it (out × rank): 8×8 blocks transposed in registers; B given
// transposed (rank × out): straight copies.
__attribute__((always_inline)) CK_AVX2 static inline void expand_fill(int type, const ck_lora_adapter *ad, size_t out_dim,
                                                                     size_t o0, int nrows, size_t jc, size_t jn,
                                                                     float (*bt)[LORA_PANEL]) {
    const size_t rank = (size_t)ad->rank;
    const int width = (nrows + 15) & ~15;
    if (ad->b_transposed) {
        for (size_t j = 0; j < jn; j++) {
            const size_t row = (jc + j) * out_dim + o0;
            int l = 0;
            for (; l + 8 <= nrows; l += 8) _mm256_storeu_ps(bt[j] + l, lora_ld8(type, ad->b, row + (size_t)l));
            for (; l < width; l++) bt[j][l] = l < nrows ? lora_w(type, ad->b, row + (size_t)l) : 0.0f;
        }
        return;
    }
    for (int lb = 0; lb < width; lb += 8) {
        size_t j = 0;
        if (nrows - lb >= 8) {
            const size_t row = (o0 + (size_t)lb) * rank + jc;
            for (; j + 8 <= jn; j += 8) {
                __m256 r[8];
                for (int k = 0; k < 8; k++) r[k] = lora_ld8(type, ad->b, row + (size_t)k * rank + j);
                const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
                const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
                const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
                const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
                const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
                const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
                const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
                const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
                _mm256_storeu_ps(bt[j + 0] + lb, _mm256_permute2f128_ps(s0, s4, 0x20));
                _mm256_storeu_ps(bt[j + 1] + lb, _mm256_permute2f128_ps(s1, s5, 0x20));
                _mm256_storeu_ps(bt[j + 2] + lb, _mm256_permute2f128_ps(s2, s6, 0x20));
                _mm256_storeu_ps(bt[j + 3] + lb, _mm256_permute2f128_ps(s3, s7, 0x20));
                _mm256_storeu_ps(bt[j + 4] + lb, _mm256_permute2f128_ps(s0, s4, 0x31));
                _mm256_storeu_ps(bt[j + 5] + lb, _mm256_permute2f128_ps(s1, s5, 0x31));
                _mm256_storeu_ps(bt[j + 6] + lb, _mm256_permute2f128_ps(s2, s6, 0x31));
                _mm256_storeu_ps(bt[j + 7] + lb, _mm256_permute2f128_ps(s3, s7, 0x31));
            }
        }
        for (; j < jn; j++)
            for (int l = lb; l < lb + 8; l++)
                bt[j][l] = l < nrows ? lora_w(type, ad->b, (o0 + (size_t)l) * rank + jc + j) : 0.0f;
    }
}

// nt tokens (positions p..p+nt-1) × nb blocks of 16 outputs (panel columns col..col+16·nb-1) over
// ranks jc..jc+jn-1: acc = fma(B[o][j], u[j], acc) for j in order. The first chunk starts from +0,
// later ones from dbuf; the last adds acc·scale to out, earlier ones park acc in dbuf.
__attribute__((always_inline)) CK_AVX2 static inline void expand_tile(const int nt, const int nb, const lora_ctx *c,
                                                                     const ck_lora_adapter *ad, const float (*bt)[LORA_PANEL],
                                                                     size_t jc, size_t jn, int first, int last, size_t o,
                                                                     int nrows, int col, size_t p, size_t p0,
                                                                     float (*dbuf)[LORA_PANEL]) {
    __m256 acc[4][4][2];
    for (int k = 0; k < nt; k++)
        for (int b = 0; b < nb; b++)
            for (int h = 0; h < 2; h++)
                acc[k][b][h] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(dbuf[p + (size_t)k - p0] + col + 16 * b + 8 * h);
    const float *u[4];
    for (int k = 0; k < nt; k++) u[k] = c->u + (p + (size_t)k) * c->ustride + jc;
    for (size_t j = 0; j < jn; j++) {
        for (int k = 0; k < nt; k++) {
            const __m256 uj = _mm256_broadcast_ss(u[k] + j);
            for (int b = 0; b < nb; b++)
                for (int h = 0; h < 2; h++)
                    acc[k][b][h] = _mm256_fmadd_ps(_mm256_loadu_ps(bt[j] + col + 16 * b + 8 * h), uj, acc[k][b][h]);
        }
    }
    if (!last) {
        for (int k = 0; k < nt; k++)
            for (int b = 0; b < nb; b++)
                for (int h = 0; h < 2; h++) _mm256_storeu_ps(dbuf[p + (size_t)k - p0] + col + 16 * b + 8 * h, acc[k][b][h]);
        return;
    }
    const __m256 s = _mm256_set1_ps(ad->scale);
    for (int k = 0; k < nt; k++) {
        float *out = c->out + (size_t)c->order[p + (size_t)k] * c->ld_out + o + (size_t)col;
        for (int b = 0; b < nb; b++) {
            float *ob = out + 16 * b;
            const int valid = nrows - col - 16 * b;
            if (valid >= 16) {
                _mm256_storeu_ps(ob, _mm256_add_ps(_mm256_loadu_ps(ob), _mm256_mul_ps(acc[k][b][0], s)));
                _mm256_storeu_ps(ob + 8, _mm256_add_ps(_mm256_loadu_ps(ob + 8), _mm256_mul_ps(acc[k][b][1], s)));
            } else {
                float t[16] = { 0 };
                for (int l = 0; l < valid; l++) t[l] = ob[l];
                _mm256_storeu_ps(t, _mm256_add_ps(_mm256_loadu_ps(t), _mm256_mul_ps(acc[k][b][0], s)));
                _mm256_storeu_ps(t + 8, _mm256_add_ps(_mm256_loadu_ps(t + 8), _mm256_mul_ps(acc[k][b][1], s)));
                for (int l = 0; l < valid; l++) ob[l] = t[l];
            }
        }
    }
}

// Outputs o0..<o1 for positions p0..<p1 (at most LORA_TOKENS), a panel of 64 outputs at a time:
// the panel's B (a chunk of ranks) is converted once and every token passes over it. Tiles keep 8
// accumulators (4 tokens × 16 outputs, 2 × 32 or 1 × 64) so that 8 FMA chains are in flight.
__attribute__((always_inline)) CK_AVX2 static inline void expand_avx2_t(int type, const lora_ctx *c, const ck_lora_adapter *ad,
                                                                       size_t o0, size_t o1, size_t p0, size_t p1) {
    float bt[LORA_JCHUNK][LORA_PANEL], dbuf[LORA_TOKENS][LORA_PANEL];
    const size_t rank = (size_t)ad->rank;
    for (size_t o = o0; o < o1; o += LORA_PANEL) {
        const int nrows = o1 - o < LORA_PANEL ? (int)(o1 - o) : LORA_PANEL;
        const int nblk = (nrows + 15) / 16;
        for (size_t jc = 0; jc < rank; jc += LORA_JCHUNK) {
            const size_t jn = rank - jc < LORA_JCHUNK ? rank - jc : LORA_JCHUNK;
            const int first = jc == 0, last = jc + jn == rank;
            expand_fill(type, ad, c->out_dim, o, nrows, jc, jn, bt);
            const float (*pb)[LORA_PANEL] = (const float (*)[LORA_PANEL])bt;
            size_t p = p0;
            for (; p + 4 <= p1; p += 4)
                for (int b = 0; b < nblk; b++) expand_tile(4, 1, c, ad, pb, jc, jn, first, last, o, nrows, 16 * b, p, p0, dbuf);
            for (; p + 2 <= p1; p += 2) {
                int b = 0;
                for (; b + 2 <= nblk; b += 2) expand_tile(2, 2, c, ad, pb, jc, jn, first, last, o, nrows, 16 * b, p, p0, dbuf);
                if (b < nblk) expand_tile(2, 1, c, ad, pb, jc, jn, first, last, o, nrows, 16 * b, p, p0, dbuf);
            }
            for (; p < p1; p++) {
                int b = 0;
                for (; b + 4 <= nblk; b += 4) expand_tile(1, 4, c, ad, pb, jc, jn, first, last, o, nrows, 16 * b, p, p0, dbuf);
                for (; b + 2 <= nblk; b += 2) expand_tile(1, 2, c, ad, pb, jc, jn, first, last, o, nrows, 16 * b, p, p0, dbuf);
                if (b < nblk) expand_tile(1, 1, c, ad, pb, jc, jn, first, last, o, nrows, 16 * b, p, p0, dbuf);
            }
        }
    }
}

CK_AVX2 static void expand_avx2(const lora_ctx *c, const ck_lora_adapter *ad, size_t o0, size_t o1, size_t p0, size_t p1) {
    switch (ad->type) {
    case CK_F16: expand_avx2_t(CK_F16, c, ad, o0, o1, p0, p1); break;
    case CK_BF16: expand_avx2_t(CK_BF16, c, ad, o0, o1, p0, p1); break;
    default: expand_avx2_t(CK_F32, c, ad, o0, o1, p0, p1); break;
    }
}
#endif

// ---- work items ----------------------------------------------------------------------------------

static void lora_shrink_item(void *p, size_t item, int ith) {
    (void)ith;
    const lora_ctx *c = p;
    const int g = lora_group_of(c->shpre, c->n_groups, item);
    const ck_lora_adapter *ad = &c->adapters[c->gad[g]];
    const size_t ps = (size_t)c->gstart[g], pe = (size_t)c->gstart[g + 1];
    const size_t tc = lora_chunks(pe - ps, LORA_TOKENS), local = item - (size_t)c->shpre[g];
    const size_t j0 = local / tc * LORA_ROWS, p0 = ps + local % tc * LORA_TOKENS;
    const size_t p1 = p0 + LORA_TOKENS < pe ? p0 + LORA_TOKENS : pe;
    const int nr = (size_t)ad->rank - j0 < LORA_ROWS ? (int)((size_t)ad->rank - j0) : LORA_ROWS;
#if defined(__x86_64__) || defined(__i386__)
    if (c->avx2) { shrink_avx2(c, ad, j0, nr, p0, p1); return; }
#endif
    shrink_scalar(c, ad, j0, nr, p0, p1);
}

static void lora_expand_item(void *p, size_t item, int ith) {
    (void)ith;
    const lora_ctx *c = p;
    const int g = lora_group_of(c->expre, c->n_groups, item);
    const ck_lora_adapter *ad = &c->adapters[c->gad[g]];
    const size_t ps = (size_t)c->gstart[g], pe = (size_t)c->gstart[g + 1];
    const size_t tc = lora_chunks(pe - ps, LORA_TOKENS), local = item - (size_t)c->expre[g];
    const size_t o0 = local / tc * c->ochunk, p0 = ps + local % tc * LORA_TOKENS;
    const size_t o1 = o0 + c->ochunk < c->out_dim ? o0 + c->ochunk : c->out_dim;
    const size_t p1 = p0 + LORA_TOKENS < pe ? p0 + LORA_TOKENS : pe;
#if defined(__x86_64__) || defined(__i386__)
    if (c->avx2) { expand_avx2(c, ad, o0, o1, p0, p1); return; }
#endif
    expand_scalar(c, ad, o0, o1, p0, p1);
}

static void lora_run(ck_pool *pool, size_t n_items, ck_item_fn fn, lora_ctx *c) {
    if (!pool) {
        for (size_t i = 0; i < n_items; i++) fn(c, i, 0);
        return;
    }
    ck_pool_for(pool, n_items, fn, c);
}

static int lora_apply(int avx2, ck_pool *pool, const float *x, size_t ld_x, size_t in, float *out, size_t ld_out,
                      size_t out_dim, size_t n_tokens, const int32_t *idx, const ck_lora_adapter *adapters,
                      size_t n_adapters, void *scratch, size_t scratch_bytes) {
    if (n_tokens == 0) return 0;
    if (!x || !out || !idx || !scratch || in == 0 || out_dim == 0 || ld_x < in || ld_out < out_dim) return -1;
    if (n_tokens > (size_t)INT32_MAX / 8) return -1;
    if ((uintptr_t)scratch % sizeof(float)) return -1;
    if (n_adapters && !adapters) return -1;
    // Check everything before writing anything.
    size_t max_rank = 0;
    for (size_t t = 0; t < n_tokens; t++) {
        const int32_t a = idx[t];
        if (a < -1 || (a >= 0 && (size_t)a >= n_adapters)) return -1;
        if (a < 0) continue;
        const ck_lora_adapter *ad = &adapters[a];
        if (ad->rank < 0 || ad->rank > LORA_MAX_RANK) return -1;
        if (ad->rank == 0) continue;
        if (!ad->a || !ad->b || (ad->type != CK_F32 && ad->type != CK_F16 && ad->type != CK_BF16)) return -1;
        if ((size_t)ad->rank > max_rank) max_rank = (size_t)ad->rank;
    }
    if (max_rank == 0) return 0;
    if (scratch_bytes < ck_lora_scratch_bytes(n_tokens, max_rank)) return -1;

    // Group the tokens by adapter (stable). Ints after u: group of each token, order, group starts,
    // group adapters, then per-group cursors / item prefixes.
    float *u = scratch;
    int32_t *gof = (int32_t *)(u + n_tokens * max_rank);
    int32_t *order = gof + n_tokens;
    int32_t *gstart = order + n_tokens;      // n_tokens + 1
    int32_t *gad = gstart + n_tokens + 1;    // n_tokens
    int32_t *shpre = gad + n_tokens;         // n_tokens + 1
    int32_t *expre = shpre + n_tokens + 1;   // n_tokens + 1 (6n + 3 ints in all)
    int n_groups = 0, last = -1;
    for (size_t t = 0; t < n_tokens; t++) {
        const int32_t a = idx[t];
        if (a < 0 || adapters[a].rank == 0) { gof[t] = -1; continue; }
        int g = last >= 0 && gad[last] == a ? last : -1;
        for (int k = 0; g < 0 && k < n_groups; k++) if (gad[k] == a) g = k;
        if (g < 0) { g = n_groups++; gad[g] = a; shpre[g] = 0; }
        shpre[g]++; // group sizes, for now
        gof[t] = g;
        last = g;
    }
    gstart[0] = 0;
    for (int g = 0; g < n_groups; g++) { gstart[g + 1] = gstart[g] + shpre[g]; shpre[g] = gstart[g]; }
    for (size_t t = 0; t < n_tokens; t++) if (gof[t] >= 0) order[shpre[gof[t]]++] = (int32_t)t;

    // Work: multiply-adds of both phases; items sized so each thread gets several.
    size_t work = 0, token_chunks = 0;
    for (int g = 0; g < n_groups; g++) {
        const size_t n = (size_t)(gstart[g + 1] - gstart[g]);
        work += n * (size_t)adapters[gad[g]].rank * (in + out_dim);
        token_chunks += lora_chunks(n, LORA_TOKENS);
    }
    if (work < LORA_PARALLEL_MIN || ck_pool_size(pool) < 2) pool = NULL;
    const size_t threads = (size_t)ck_pool_size(pool);
    // Expand: about 4 items per thread over all groups' token chunks, outputs in whole panels.
    size_t per = threads * 4 / token_chunks;
    if (per < 1) per = 1;
    const size_t ochunk = (lora_chunks(out_dim, per) + LORA_PANEL - 1) & ~(size_t)(LORA_PANEL - 1);
    size_t sh_items = 0, ex_items = 0;
    shpre[0] = expre[0] = 0;
    for (int g = 0; g < n_groups; g++) {
        const size_t tc = lora_chunks((size_t)(gstart[g + 1] - gstart[g]), LORA_TOKENS);
        sh_items += lora_chunks((size_t)adapters[gad[g]].rank, LORA_ROWS) * tc;
        ex_items += lora_chunks(out_dim, ochunk) * tc;
        if (sh_items > INT32_MAX || ex_items > INT32_MAX) return -1; // out not touched yet
        shpre[g + 1] = (int32_t)sh_items;
        expre[g + 1] = (int32_t)ex_items;
    }

    lora_ctx c = {
        .x = x, .ld_x = ld_x, .in = in, .out = out, .ld_out = ld_out, .out_dim = out_dim, .adapters = adapters,
        .u = u, .ustride = max_rank, .order = order, .gstart = gstart, .gad = gad, .shpre = shpre, .expre = expre,
        .n_groups = n_groups, .ochunk = ochunk, .avx2 = avx2,
    };
    lora_run(pool, (size_t)shpre[n_groups], lora_shrink_item, &c);
    lora_run(pool, (size_t)expre[n_groups], lora_expand_item, &c);
    return 0;
}

int ck_lora_apply(ck_pool *pool, const float *x, size_t ld_x, size_t in, float *out, size_t ld_out, size_t out_dim,
                  size_t n_tokens, const int32_t *idx, const ck_lora_adapter *adapters, size_t n_adapters, void *scratch,
                  size_t scratch_bytes) {
    const int avx2 = ck_active_isa() >= CK_ISA_AVX2;
    return lora_apply(avx2, pool, x, ld_x, in, out, ld_out, out_dim, n_tokens, idx, adapters, n_adapters, scratch,
                      scratch_bytes);
}

int ck_lora_apply_variant(int variant, ck_pool *pool, const float *x, size_t ld_x, size_t in, float *out, size_t ld_out,
                          size_t out_dim, size_t n_tokens, const int32_t *idx, const ck_lora_adapter *adapters,
                          size_t n_adapters, void *scratch, size_t scratch_bytes) {
    if (!ck_variant_available(variant)) return -2;
    return lora_apply(variant != CK_VARIANT_SCALAR, pool, x, ld_x, in, out, ld_out, out_dim, n_tokens, idx, adapters,
                      n_adapters, scratch, scratch_bytes);
}
