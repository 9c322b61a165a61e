// Tiled dot products of the 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) with
// their Q8_0 / Q8_1 activations: R weight rows × T activation rows per call, 4 blocks per step.
//
// Included by quants_avx2.c once per instruction-set variant, with
//   CK_SFX   the function-name suffix (avx2; the VNNI variant has its own, quants_tile_vnni.h)
//   CK_TGT   the function target attribute
//   CK_DOTI  (u, s): 8 int32 lanes of sums of products of unsigned bytes u and signed bytes s
// The per-(row, token) sequence of operations does not depend on the tile shape, so every tile
// returns, bit for bit, what the 1×1 tile (the plain dot) returns: llama.cpp's x86 order (see
// quants_tile_vnni.h; Q4_0 and IQ4_NL in its block form), the same as the VNNI kernels and the
// scalar twins.
//
// Per step of 4 blocks the fp16 scales of the 4 blocks are gathered (32 bits at each block start:
// d, and m or s for the types that have one) and converted with one vcvtph2ps; the products
// dx·dy land in even lanes, mx·sy in odd lanes (accumulated in a vector for Q4_1 / Q5_1).

#ifndef CK_PREFETCH_AHEAD
#define CK_PREFETCH_AHEAD 2048
#endif
#define CK_CAT_(a, b) a##_##b
#define CK_CAT(a, b) CK_CAT_(a, b)
#define CK_FN(name) CK_CAT(name, CK_SFX)

#include "quants_tile_common.h"

// The weight block's 32 quants as bytes: unsigned for Q4_1 / Q5_1, signed for the others.
CK_TGT static inline __m256i CK_FN(load_x)(int type, const uint8_t *b) {
    switch (type) {
    case CK_Q4_0: return _mm256_sub_epi8(nibbles32(b + 2), _mm256_set1_epi8(8));
    case CK_Q4_1: return nibbles32(b + 4);
    case CK_Q5_0: {
        const __m256i hi = _mm256_andnot_si256(bits32(b + 2), _mm256_set1_epi8((char)0xF0));
        return _mm256_or_si256(nibbles32(b + 6), hi); // (nibble | h << 4) - 16 as a signed byte
    }
    case CK_Q5_1: return _mm256_or_si256(nibbles32(b + 8), _mm256_and_si256(bits32(b + 4), _mm256_set1_epi8(0x10)));
    case CK_IQ4_NL: {
        const __m128i t = _mm_loadu_si128((const __m128i *)ck_iq4nl_values);
        return _mm256_shuffle_epi8(_mm256_set_m128i(t, t), nibbles32(b + 2));
    }
    default: return _mm256_loadu_si256((const __m256i *)(b + 2)); // Q8_0
    }
}

// One step of `count` (1..4) blocks starting at block ib, for an R×T tile.
#define CK_TILE_STEP(COUNT)                                                                          \
    do {                                                                                             \
        float sc[4][4][8] __attribute__((aligned(32)));                                              \
        float fx[4][8] __attribute__((aligned(32))), fy[4][8] __attribute__((aligned(32)));          \
        __m256 hx[4], hy[4];                                                                         \
        __m256i bi[4] = { _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256() }; \
        for (int r = 0; r < R; r++) hx[r] = CK_FN(scales4)(x[r] + ib * xb, xb, (COUNT), minv);       \
        for (int t = 0; t < T; t++) hy[t] = CK_FN(scales4)(y[t] + ib * yb, yb, (COUNT), minv);       \
        __m128 drows[4], unused[4];                                                                  \
        if (blkf) {                                                                                  \
            /* Transposed scale products: drows[j] holds block j's dx·dy for pairs r·T + t. */       \
            __m256 pp[4];                                                                            \
            for (int r = 0; r < R; r++)                                                              \
                for (int t = 0; t < T; t++) pp[r * T + t] = _mm256_mul_ps(hx[r], hy[t]);             \
            for (int i = R * T; i < 4; i++) pp[i] = pp[R * T - 1];                                   \
            transpose_pairs4(pp, drows, unused);                                                     \
        } else {                                                                                     \
            for (int r = 0; r < R; r++)                                                              \
                for (int t = 0; t < T; t++) _mm256_store_ps(sc[r][t], _mm256_mul_ps(hx[r], hy[t]));  \
        }                                                                                            \
        if (minv) {                                                                                  \
            /* summs = fma(mx, sy, summs), block by block (llama.cpp's order). */                    \
            for (int r = 0; r < R; r++) _mm256_store_ps(fx[r], hx[r]);                               \
            for (int t = 0; t < T; t++) _mm256_store_ps(fy[t], hy[t]);                               \
            for (int r = 0; r < R; r++)                                                              \
                for (int t = 0; t < T; t++)                                                          \
                    for (int j = 0; j < (COUNT); j++) summs[r][t] = fmaf(fx[r][2 * j + 1], fy[t][2 * j + 1], summs[r][t]); \
        }                                                                                            \
        for (int j = 0; j < (COUNT); j++) {                                                          \
            __m256i ux[4], ax[4], qy[4];                                                             \
            for (int r = 0; r < R; r++) {                                                            \
                ux[r] = CK_FN(load_x)(type, x[r] + (ib + j) * xb);                                   \
                ax[r] = minv ? ux[r] : _mm256_sign_epi8(ux[r], ux[r]);                               \
            }                                                                                        \
            for (int t = 0; t < T; t++) qy[t] = _mm256_loadu_si256((const __m256i *)(y[t] + (ib + j) * yb + yoff)); \
            for (int r = 0; r < R; r++)                                                              \
                for (int t = 0; t < T; t++) {                                                        \
                    const __m256i s = minv ? qy[t] : _mm256_sign_epi8(qy[t], ux[r]);                 \
                    const __m256i lanes = CK_DOTI(ax[r], s);                                         \
                    if (blkf) {                                                                      \
                        bi[r * T + t] = lanes;                                                       \
                    } else {                                                                         \
                        const __m256 d = _mm256_broadcast_ss(&sc[r][t][2 * j]);                      \
                        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), d, acc[r][t]);        \
                    }                                                                                \
                }                                                                                    \
            if (blkf) {                                                                              \
                /* The (row, token) pairs in lanes (R·T <= 4): one exact sum per block each, then */ \
                /* bacc = fma(sum, dx·dy, bacc), block by block. */                                  \
                const __m128i sums = hsum4_epi32(bi[0], bi[1], bi[2], bi[3]);                 \
                bacc = _mm_fmadd_ps(_mm_cvtepi32_ps(sums), drows[j], bacc);                          \
            }                                                                                        \
        }                                                                                            \
    } while (0)

__attribute__((always_inline)) CK_TGT static inline void CK_FN(tile_body)(
    int type, const int R, const int T, const uint8_t *xp, size_t x_stride, const uint8_t *yp,
    size_t y_stride, size_t nb, float *out, size_t ld_out) {
    const int minv = CK_FN(has_min)(type), blkf = CK_FN(block_form)(type);
    const size_t xb = CK_FN(xbytes)(type);
    const size_t yb = minv ? sizeof(ck_block_q8_1) : sizeof(ck_block_q8_0);
    const size_t yoff = minv ? 4 : 2;
    const uint8_t *x[4], *y[4];
    __m256 acc[4][4];
    float summs[4][4];
    __m128 bacc = _mm_setzero_ps(); // block form: (row, token) pair r·T + t in lane
    for (int r = 0; r < R; r++) x[r] = xp + (size_t)r * x_stride;
    for (int t = 0; t < T; t++) y[t] = yp + (size_t)t * y_stride;
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) { acc[r][t] = _mm256_setzero_ps(); summs[r][t] = 0.0f; }
    size_t ib = 0;
    for (; ib + 4 <= nb; ib += 4) {
        // Weights stream from memory once per token (decode): prefetch ahead of the 4-block step
        // (up to 136 bytes a row) so that several rows' streams stay in flight; 2 KiB ahead also
        // runs ahead of the 4 KiB page boundaries where the hardware prefetcher stops (mmapped weights).
        for (int r = 0; r < R; r++) {
            _mm_prefetch((const char *)(x[r] + ib * xb + CK_PREFETCH_AHEAD), _MM_HINT_T0);
            _mm_prefetch((const char *)(x[r] + ib * xb + CK_PREFETCH_AHEAD + 64), _MM_HINT_T0);
        }
        CK_TILE_STEP(4);
    }
    for (; ib < nb; ib++) CK_TILE_STEP(1);
    float b4[4];
    _mm_storeu_ps(b4, bacc);
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) {
            float v = blkf ? b4[r * T + t] : hsum_ps(acc[r][t]);
            if (minv) v += summs[r][t];
            out[(size_t)t * ld_out + (size_t)r] = v;
        }
}

#define CK_TILE_INST(NAME, TYPE)                                                                     \
    CK_TGT static void CK_FN(tile_##NAME##_1x1)(const uint8_t *x, size_t xs, const uint8_t *y, size_t ys, size_t nb, float *o, size_t ld) { CK_FN(tile_body)(TYPE, 1, 1, x, xs, y, ys, nb, o, ld); } \
    CK_TGT static void CK_FN(tile_##NAME##_2x1)(const uint8_t *x, size_t xs, const uint8_t *y, size_t ys, size_t nb, float *o, size_t ld) { CK_FN(tile_body)(TYPE, 2, 1, x, xs, y, ys, nb, o, ld); } \
    CK_TGT static void CK_FN(tile_##NAME##_4x1)(const uint8_t *x, size_t xs, const uint8_t *y, size_t ys, size_t nb, float *o, size_t ld) { CK_FN(tile_body)(TYPE, 4, 1, x, xs, y, ys, nb, o, ld); } \
    CK_TGT static void CK_FN(tile_##NAME##_1x2)(const uint8_t *x, size_t xs, const uint8_t *y, size_t ys, size_t nb, float *o, size_t ld) { CK_FN(tile_body)(TYPE, 1, 2, x, xs, y, ys, nb, o, ld); } \
    CK_TGT static void CK_FN(tile_##NAME##_2x2)(const uint8_t *x, size_t xs, const uint8_t *y, size_t ys, size_t nb, float *o, size_t ld) { CK_FN(tile_body)(TYPE, 2, 2, x, xs, y, ys, nb, o, ld); } \
    CK_TGT static void CK_FN(tile_##NAME)(int nr, int nt, const void *x, size_t xs, const void *y, size_t ys, size_t n, float *o, size_t ld) { \
        const size_t nb = n / CK_QK;                                                                 \
        if (nt == 2) {                                                                               \
            if (nr == 2) CK_FN(tile_##NAME##_2x2)(x, xs, y, ys, nb, o, ld);                          \
            else CK_FN(tile_##NAME##_1x2)(x, xs, y, ys, nb, o, ld);                                  \
        } else if (nr == 4) CK_FN(tile_##NAME##_4x1)(x, xs, y, ys, nb, o, ld);                       \
        else if (nr == 2) CK_FN(tile_##NAME##_2x1)(x, xs, y, ys, nb, o, ld);                         \
        else CK_FN(tile_##NAME##_1x1)(x, xs, y, ys, nb, o, ld);                                      \
    }                                                                                                \
    CK_TGT float CK_CAT(ck_dot_##NAME, CK_SFX)(const void *x, const void *y, size_t n) {             \
        float o;                                                                                     \
        CK_FN(tile_##NAME##_1x1)(x, 0, y, 0, n / CK_QK, &o, 1);                                       \
        return o;                                                                                    \
    }

CK_TILE_INST(q4_0_q8_0, CK_Q4_0)
CK_TILE_INST(q4_1_q8_1, CK_Q4_1)
CK_TILE_INST(q5_0_q8_0, CK_Q5_0)
CK_TILE_INST(q5_1_q8_1, CK_Q5_1)
CK_TILE_INST(q8_0_q8_0, CK_Q8_0)
CK_TILE_INST(iq4_nl_q8_0, CK_IQ4_NL)

CK_RESOLVE_TILE

#undef CK_TILE_INST
#undef CK_TILE_STEP
#undef CK_FN
#undef CK_CAT
#undef CK_CAT_
