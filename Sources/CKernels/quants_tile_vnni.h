// VNNI kernels of the 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) with their
// Q8_0 / Q8_1 activations, in two layouts:
//   rows:   up to 4 weight rows × 1 token (decode, and ck_dot_*: 1 row), rows in float lanes;
//   tokens: up to 4 weight rows × 2 groups of 8 tokens, tokens in lanes, over activations repacked
//           by ck_pack_act (matmul.c) so that a weight dword meets 8 tokens' dwords in one vpdpbusd.
//
// Included by quants_avx2.c with
//   CK_SFX   the function-name suffix (vnni)
//   CK_TGT   the function target attribute
//   CK_DP(acc, u, s)  acc + sums of products of unsigned bytes u and signed bytes s, 8 int32 lanes
//
// Every (row, token) result is, in either layout and whatever the tile, the same sequence of
// float operations, the order of the kernel llama.cpp's x86 build runs for a prompt, so results are
// bit-identical across tile shapes and token counts (a sequence decoded alone equals the same
// sequence in a batch) and to llama.cpp's. Q5_0, Q8_0, Q4_1, Q5_1 (its vec_dot and tinyBLAS
// kernels): 8 lanes, lane k the exact integer dot of elements 4k..4k+3 of a block,
// acc_k = fma(dx_b·dy_b, (float)lane_k, acc_k) over the blocks in order, then
// ((a0+a4)+(a2+a6))+((a1+a5)+(a3+a7)); Q4_1 / Q5_1 add a chain summs = fma(mx_b, sy_b, summs).
// Q4_0 and IQ4_NL (its repacked 8×8 GEMM, block_form): the exact integer dot of each whole block,
// acc = fma((float)sum_b, dx_b·dy_b, acc). The scale product dx·dy is exact (fp16 × fp16 fits a float).
//
// The weight quants are taken unsigned, u = q + ck_u_offset(type), so vpdpbusd needs no sign fix
// per (row, token): isum = Σ u·y − offset·Σ y, the correction coming with the activations.

#define CK_CAT_(a, b) a##_##b
#define CK_CAT(a, b) CK_CAT_(a, b)
#define CK_FN(name) CK_CAT(name, CK_SFX)

#include "quants_tile_common.h"

// The IQ4_NL code book plus 128, for pshufb.
CK_TGT static inline __m256i CK_FN(iq4_table)(void) {
    const __m128i t = _mm_xor_si128(_mm_loadu_si128((const __m128i *)ck_iq4nl_values), _mm_set1_epi8((char)0x80));
    return _mm256_set_m128i(t, t);
}

// Unsigned quants of one block, 32 bytes in element order.
CK_TGT static inline __m256i CK_FN(load_u)(int type, const uint8_t *b) {
    switch (type) {
    case CK_Q4_0: return nibbles32(b + 2);
    case CK_Q4_1: return nibbles32(b + 4);
    case CK_Q5_0: return _mm256_or_si256(nibbles32(b + 6), _mm256_and_si256(bits32(b + 2), _mm256_set1_epi8(0x10)));
    case CK_Q5_1: return _mm256_or_si256(nibbles32(b + 8), _mm256_and_si256(bits32(b + 4), _mm256_set1_epi8(0x10)));
    case CK_IQ4_NL: return _mm256_shuffle_epi8(CK_FN(iq4_table)(), nibbles32(b + 2));
    default: return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(b + 2)), _mm256_set1_epi8((char)0x80));
    }
}

// Rows layout: R (1, 2, 4) rows × 1 token; out[r] for r < R. Per block, one vpdpbusd per row
// gives the 8 lanes; the offset's share (−c·Σ of each lane's 4 activations) starts them. The
// scales of 4 blocks are converted at once; Q4_1 / Q5_1's min chains run for 4 rows in one vector.
__attribute__((always_inline)) CK_TGT static inline void CK_FN(rows_body)(
    int type, const int R, const uint8_t *xp, size_t x_stride, const uint8_t *y, size_t nb, float *out) {
    const int minv = CK_FN(has_min)(type), blkf = CK_FN(block_form)(type), c = ck_u_offset(type);
    const size_t xb = CK_FN(xbytes)(type);
    const size_t yb = minv ? sizeof(ck_block_q8_1) : sizeof(ck_block_q8_0), yoff = minv ? 4 : 2;
    const __m256i ones = _mm256_set1_epi8(1), negc = _mm256_set1_epi32(-c);
    // Absent rows repeat the last one (their results are dropped).
    const uint8_t *x[4];
    for (int r = 0; r < 4; r++) x[r] = xp + (size_t)(r < R ? r : R - 1) * x_stride;
    __m256 acc[4];
    __m128 summs = _mm_setzero_ps();
    __m128 bacc = _mm_setzero_ps(); // block form: row r in lane r
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    for (size_t ib = 0; ib < nb; ib += 4) {
        const int count = nb - ib < 4 ? (int)(nb - ib) : 4;
        // Decode streams the weights from memory: prefetch 4 KiB ahead, past the page boundaries
        // where the hardware prefetcher stops (mmapped weights).
        for (int r = 0; r < R; r++) {
            _mm_prefetch((const char *)(x[r] + ib * xb + 4096), _MM_HINT_T0);
            _mm_prefetch((const char *)(x[r] + ib * xb + 4096 + 64), _MM_HINT_T0);
        }
        // (d, m) of 4 blocks as floats: lane 2j holds block j's d, lane 2j + 1 its m (or s).
        const __m256 hy = CK_FN(scales4)(y + ib * yb, yb, count, minv);
        __m256 hx[4], p[4];
        for (int r = 0; r < R; r++) {
            hx[r] = CK_FN(scales4)(x[r] + ib * xb, xb, count, minv);
            p[r] = _mm256_mul_ps(hx[r], hy);
        }
        // Transposed per block j: drows[j] holds dx·dy of rows 0..3 (the block form), mrows[j] their m.
        __m128 mrows[4], drows[4], unused[4];
        if (blkf) {
            for (int r = R; r < 4; r++) p[r] = p[R - 1];
            transpose_pairs4(p, drows, unused);
        }
        if (minv) {
            for (int r = R; r < 4; r++) hx[r] = hx[R - 1];
            transpose_pairs4(hx, unused, mrows);
        }
        for (int j = 0; j < count; j++) {
            const uint8_t *yblk = y + (ib + (size_t)j) * yb;
            const __m256i yq = _mm256_loadu_si256((const __m256i *)(yblk + yoff));
            const __m256i init = c ? _mm256_mullo_epi32(CK_DP(_mm256_setzero_si256(), ones, yq), negc) : _mm256_setzero_si256();
            const __m256i dsel = _mm256_set1_epi32(2 * j);
            __m256i bi[4];
            for (int r = 0; r < R; r++) {
                const __m256i lanes = CK_DP(init, CK_FN(load_u)(type, x[r] + (ib + (size_t)j) * xb), yq);
                if (blkf) bi[r] = lanes;
                else acc[r] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(p[r], dsel), _mm256_cvtepi32_ps(lanes), acc[r]);
            }
            if (blkf) {
                // One exact sum per (row, block), rows in lanes, then bacc = fma(sum, dx·dy, bacc).
                for (int r = R; r < 4; r++) bi[r] = bi[R - 1];
                bacc = _mm_fmadd_ps(_mm_cvtepi32_ps(hsum4_epi32(bi[0], bi[1], bi[2], bi[3])), drows[j], bacc);
            }
            if (minv) {
                const __m128 sy = _mm256_castps256_ps128(_mm256_permutevar8x32_ps(hy, _mm256_set1_epi32(2 * j + 1)));
                summs = _mm_fmadd_ps(mrows[j], sy, summs);
            }
        }
    }
    float sm[4], b4[4];
    _mm_storeu_ps(sm, summs);
    _mm_storeu_ps(b4, bacc);
    for (int r = 0; r < R; r++) out[r] = blkf ? b4[r] : minv ? hsum_ps(acc[r]) + sm[r] : hsum_ps(acc[r]);
}

// Tokens layout: R (1..4) rows × G (1, 2) groups of 8 tokens, one (row, group) at a time so that
// its 8 lane accumulators stay in registers; the offset's share per lane comes with the packed
// activations (CK_PACK_KCORR).
__attribute__((always_inline)) CK_TGT static inline void CK_FN(tokens_body)(
    int type, const int R, const int G, const uint8_t *xp, size_t x_stride, const uint8_t *pk,
    size_t pstride, size_t nb, int nt, float *out, size_t ld) {
    const int minv = CK_FN(has_min)(type), blkf = CK_FN(block_form)(type), c = ck_u_offset(type);
    const size_t xb = CK_FN(xbytes)(type);
    for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++) {
            const uint8_t *x = xp + (size_t)r * x_stride;
            __m256 acc[8], summs = _mm256_setzero_ps();
            for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();
            for (size_t ib = 0; ib < nb; ib++) {
                const uint8_t *yb = pk + ib * pstride + (size_t)g * CK_PACK_BYTES;
                const uint8_t *xblk = x + ib * xb;
                uint32_t u[8] __attribute__((aligned(32)));
                _mm256_store_si256((__m256i *)u, CK_FN(load_u)(type, xblk));
                const __m256 d = _mm256_mul_ps(_mm256_set1_ps(h2f((uint16_t)(xblk[0] | xblk[1] << 8))),
                                               _mm256_load_ps((const float *)(yb + CK_PACK_D)));
                if (blkf) {
                    // One exact sum per block (two chains of 4 dword products), one FMA.
                    __m256i s0 = c ? _mm256_load_si256((const __m256i *)(yb + CK_PACK_KCORR)) : _mm256_setzero_si256();
                    __m256i s1 = c ? _mm256_load_si256((const __m256i *)(yb + CK_PACK_KCORR + 32)) : _mm256_setzero_si256();
                    for (int k = 0; k < 8; k += 2) {
                        if (c && k) {
                            s0 = _mm256_add_epi32(s0, _mm256_load_si256((const __m256i *)(yb + CK_PACK_KCORR + 32 * k)));
                            s1 = _mm256_add_epi32(s1, _mm256_load_si256((const __m256i *)(yb + CK_PACK_KCORR + 32 * k + 32)));
                        }
                        s0 = CK_DP(s0, _mm256_set1_epi32((int)u[k]), _mm256_load_si256((const __m256i *)(yb + 32 * k)));
                        s1 = CK_DP(s1, _mm256_set1_epi32((int)u[k + 1]), _mm256_load_si256((const __m256i *)(yb + 32 * k + 32)));
                    }
                    acc[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), d, acc[0]);
                } else {
                    for (int k = 0; k < 8; k++) {
                        const __m256i init = c ? _mm256_load_si256((const __m256i *)(yb + CK_PACK_KCORR + 32 * k)) : _mm256_setzero_si256();
                        const __m256i lanes = CK_DP(init, _mm256_set1_epi32((int)u[k]), _mm256_load_si256((const __m256i *)(yb + 32 * k)));
                        acc[k] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc[k]);
                    }
                }
                if (minv)
                    summs = _mm256_fmadd_ps(_mm256_set1_ps(h2f((uint16_t)(xblk[2] | xblk[3] << 8))),
                                            _mm256_load_ps((const float *)(yb + CK_PACK_S)), summs);
            }
            __m256 sum = blkf ? acc[0]
                              : _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6])),
                                              _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7])));
            if (minv) sum = _mm256_add_ps(sum, summs);
            float o[8];
            _mm256_storeu_ps(o, sum);
            for (int i = 0; i < 8 && g * 8 + i < nt; i++) out[(size_t)(g * 8 + i) * ld + (size_t)r] = o[i];
        }
}

// The packed-token kernel FN of a type: BODY specialized for 4 or 1 rows × 1 or 2 token groups, and
// the dispatcher the matmul calls (rows past a multiple of 4 one at a time); QK elements per block.
#define CK_TOK_KERNELS(FN, BODY, TYPE, QK)                                                           \
    CK_TGT static void CK_FN(FN##_41)(const uint8_t *x, size_t xs, const uint8_t *p, size_t ps, size_t nb, int nt, float *o, size_t ld) { CK_FN(BODY)(TYPE, 4, 1, x, xs, p, ps, nb, nt, o, ld); } \
    CK_TGT static void CK_FN(FN##_42)(const uint8_t *x, size_t xs, const uint8_t *p, size_t ps, size_t nb, int nt, float *o, size_t ld) { CK_FN(BODY)(TYPE, 4, 2, x, xs, p, ps, nb, nt, o, ld); } \
    CK_TGT static void CK_FN(FN##_11)(const uint8_t *x, size_t xs, const uint8_t *p, size_t ps, size_t nb, int nt, float *o, size_t ld) { CK_FN(BODY)(TYPE, 1, 1, x, xs, p, ps, nb, nt, o, ld); } \
    CK_TGT static void CK_FN(FN##_12)(const uint8_t *x, size_t xs, const uint8_t *p, size_t ps, size_t nb, int nt, float *o, size_t ld) { CK_FN(BODY)(TYPE, 1, 2, x, xs, p, ps, nb, nt, o, ld); } \
    CK_TGT static void CK_FN(FN)(int nr, int ng, const void *x, size_t xs, const void *p, size_t ps, size_t n, int nt, float *o, size_t ld) { \
        const size_t nb = n / (QK);                                                                  \
        if (nr == 4) {                                                                               \
            if (ng == 2) CK_FN(FN##_42)(x, xs, p, ps, nb, nt, o, ld);                                \
            else CK_FN(FN##_41)(x, xs, p, ps, nb, nt, o, ld);                                        \
            return;                                                                                  \
        }                                                                                            \
        for (int r = 0; r < nr; r++) {                                                               \
            const uint8_t *xr = (const uint8_t *)x + (size_t)r * xs;                                 \
            if (ng == 2) CK_FN(FN##_12)(xr, xs, p, ps, nb, nt, o + r, ld);                           \
            else CK_FN(FN##_11)(xr, xs, p, ps, nb, nt, o + r, ld);                                   \
        }                                                                                            \
    }

#define CK_VNNI_INST(NAME, TYPE)                                                                     \
    CK_TGT static void CK_FN(rows_##NAME##_1)(const uint8_t *x, size_t xs, const uint8_t *y, size_t nb, float *o) { CK_FN(rows_body)(TYPE, 1, x, xs, y, nb, o); } \
    CK_TGT static void CK_FN(rows_##NAME##_2)(const uint8_t *x, size_t xs, const uint8_t *y, size_t nb, float *o) { CK_FN(rows_body)(TYPE, 2, x, xs, y, nb, o); } \
    CK_TGT static void CK_FN(rows_##NAME##_4)(const uint8_t *x, size_t xs, const uint8_t *y, size_t nb, float *o) { CK_FN(rows_body)(TYPE, 4, x, xs, y, nb, o); } \
    /* One token: out[r] (ld unused). */                                                            \
    CK_TGT static void CK_FN(tile_##NAME)(int nr, int nt, const void *x, size_t xs, const void *y, size_t ys, size_t n, float *o, size_t ld) { \
        (void)nt; (void)ys; (void)ld;                                                                \
        if (nr == 4) CK_FN(rows_##NAME##_4)(x, xs, y, n / CK_QK, o);                                 \
        else if (nr == 2) CK_FN(rows_##NAME##_2)(x, xs, y, n / CK_QK, o);                            \
        else CK_FN(rows_##NAME##_1)(x, xs, y, n / CK_QK, o);                                         \
    }                                                                                                \
    CK_TOK_KERNELS(tok_##NAME, tokens_body, TYPE, CK_QK)                                            \
    CK_TGT float CK_CAT(ck_dot_##NAME, CK_SFX)(const void *x, const void *y, size_t n) {             \
        float o;                                                                                     \
        CK_FN(rows_##NAME##_1)(x, 0, y, n / CK_QK, &o);                                              \
        return o;                                                                                    \
    }

CK_VNNI_INST(q4_0_q8_0, CK_Q4_0)
CK_VNNI_INST(q4_1_q8_1, CK_Q4_1)
CK_VNNI_INST(q5_0_q8_0, CK_Q5_0)
CK_VNNI_INST(q5_1_q8_1, CK_Q5_1)
CK_VNNI_INST(q8_0_q8_0, CK_Q8_0)
CK_VNNI_INST(iq4_nl_q8_0, CK_IQ4_NL)

#include "quants_k_vnni.h"

CK_RESOLVE_TILE

/// The packed-tokens kernel of a type (NULL for types without one); Q4_K and Q6_K take activations
/// packed by ck_pack_act_k, the others by ck_pack_act.
ck_tok_fn CK_FN(ck_resolve_tok)(int type) {
    switch (type) {
    case CK_Q4_0: return CK_FN(tok_q4_0_q8_0);
    case CK_Q4_1: return CK_FN(tok_q4_1_q8_1);
    case CK_Q5_0: return CK_FN(tok_q5_0_q8_0);
    case CK_Q5_1: return CK_FN(tok_q5_1_q8_1);
    case CK_Q8_0: return CK_FN(tok_q8_0_q8_0);
    case CK_IQ4_NL: return CK_FN(tok_iq4_nl_q8_0);
    case CK_Q4_K: return CK_FN(tokk_q4_K_q8_K);
    case CK_Q6_K: return CK_FN(tokk_q6_K_q8_K);
    default: return NULL;
    }
}

#undef CK_VNNI_INST
#undef CK_TOK_KERNELS
#undef CK_FN
#undef CK_CAT
#undef CK_CAT_
