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
// float operations: for each block b in order, acc = fma((float)isum_b, dx_b·dy_b, acc), then
// acc += mx_b·sy_b for Q4_1 / Q5_1, where isum_b is the block's exact integer dot and both scale
// products are exact (fp16 × fp16 fits a float). So results are bit-identical across tile shapes
// and token counts (a sequence decoded alone equals the same sequence in a batch).
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

// Bytes 0x10 where the 5-bit types' high bit is set, for 16 elements of two rows: row a's in
// lanes 0..15, row b's in 16..31; elements 16..31 of each row when `upper`.
CK_TGT static inline __m256i CK_FN(hbits_pair)(const uint8_t *qa, const uint8_t *qb, int upper) {
    const __m256i v = _mm256_set_epi32(0, 0, 0, (int)CK_FN(ld32)(qb), 0, 0, 0, (int)CK_FN(ld32)(qa));
    const __m256i shuf = upper ? _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL, 0x0303030303030303LL, 0x0202020202020202LL)
                               : _mm256_set_epi64x(0x0101010101010101LL, 0x0000000000000000LL, 0x0101010101010101LL, 0x0000000000000000LL);
    __m256i b = _mm256_shuffle_epi8(v, shuf);
    b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfeLL));
    return _mm256_and_si256(_mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10));
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

// Unsigned quants of one block of two rows a and b: lo = elements 0..15 (a | b), hi = 16..31.
CK_TGT static inline void CK_FN(load_u_pair)(int type, const uint8_t *a, const uint8_t *b, __m256i *lo, __m256i *hi) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    switch (type) {
    case CK_Q8_0: {
        const __m256i f = _mm256_set1_epi8((char)0x80);
        *lo = _mm256_xor_si256(_mm256_loadu2_m128i((const __m128i *)(b + 2), (const __m128i *)(a + 2)), f);
        *hi = _mm256_xor_si256(_mm256_loadu2_m128i((const __m128i *)(b + 18), (const __m128i *)(a + 18)), f);
        return;
    }
    default: break;
    }
    const size_t qs = type == CK_Q4_1 ? 4 : type == CK_Q5_0 ? 6 : type == CK_Q5_1 ? 8 : 2;
    const __m256i t = _mm256_loadu2_m128i((const __m128i *)(b + qs), (const __m128i *)(a + qs));
    __m256i l = _mm256_and_si256(t, m4), h = _mm256_and_si256(_mm256_srli_epi16(t, 4), m4);
    switch (type) {
    case CK_IQ4_NL: {
        const __m256i tab = CK_FN(iq4_table)();
        l = _mm256_shuffle_epi8(tab, l);
        h = _mm256_shuffle_epi8(tab, h);
        break;
    }
    case CK_Q5_0: case CK_Q5_1: {
        const size_t qh = type == CK_Q5_0 ? 2 : 4;
        l = _mm256_or_si256(l, CK_FN(hbits_pair)(a + qh, b + qh, 0));
        h = _mm256_or_si256(h, CK_FN(hbits_pair)(a + qh, b + qh, 1));
        break;
    }
    default: break;
    }
    *lo = l;
    *hi = h;
}

// Integer dots of one block of rows x[0..3] with one activation block: lanes 0..3 hold halves of
// rows 0, 0, 2, 2 and lanes 4..7 of rows 1, 1, 3, 3 (their sums are exact; the order is free).
CK_TGT static inline __m256i CK_FN(rows_block)(int type, const uint8_t *const x[4], size_t xoff,
                                               const uint8_t *yq, int c) {
    const __m256i ylo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)yq));
    const __m256i yhi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(yq + 16)));
    __m256i init = _mm256_setzero_si256();
    if (c) {
        const __m256i cb = _mm256_set1_epi8((char)c);
        init = _mm256_sub_epi32(init, CK_DP(CK_DP(_mm256_setzero_si256(), cb, ylo), cb, yhi));
    }
    __m256i l01, h01, l23, h23;
    CK_FN(load_u_pair)(type, x[0] + xoff, x[1] + xoff, &l01, &h01);
    CK_FN(load_u_pair)(type, x[2] + xoff, x[3] + xoff, &l23, &h23);
    const __m256i a = CK_DP(CK_DP(init, l01, ylo), h01, yhi);
    const __m256i b = CK_DP(CK_DP(init, l23, ylo), h23, yhi);
    return _mm256_hadd_epi32(a, b);
}

// Rows layout: R (1, 2, 4) rows × 1 token; out[r] for r < R.
__attribute__((always_inline)) CK_TGT static inline void CK_FN(rows_body)(
    int type, const int R, const uint8_t *xp, size_t x_stride, const uint8_t *y, size_t nb, float *out) {
    const int minv = CK_FN(has_min)(type), c = ck_u_offset(type);
    const size_t xb = CK_FN(xbytes)(type);
    const size_t yb = minv ? sizeof(ck_block_q8_1) : sizeof(ck_block_q8_0);
    const size_t yoff = minv ? 4 : 2;
    // Absent rows repeat the last one (their lanes are dropped).
    const uint8_t *x[4];
    for (int r = 0; r < 4; r++) x[r] = xp + (size_t)(r < R ? r : R - 1) * x_stride;
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m128 acc = _mm_setzero_ps();
    for (size_t ib = 0; ib < nb; ib += 4) {
        const int count = nb - ib < 4 ? (int)(nb - ib) : 4;
        // Weights stream from memory once per token (decode): prefetch 4 KiB ahead (2 KiB was measured
        // slower on Gemma 3's 168 MB output projection), past the page boundaries where the hardware
        // prefetcher stops (mmapped weights).
        for (int r = 0; r < R; r++) {
            _mm_prefetch((const char *)(x[r] + ib * xb + 4096), _MM_HINT_T0);
            _mm_prefetch((const char *)(x[r] + ib * xb + 4096 + 64), _MM_HINT_T0);
        }
        // Scale products of the 4 blocks, transposed: d[j & 1] holds dx·dy of block j for rows 0..3
        // (low half for j < 2), m[j & 1] the mx·sy.
        const __m256 hy = CK_FN(scales4)(y + ib * yb, yb, count, minv);
        __m256 p[4];
        for (int r = 0; r < 4; r++) p[r] = _mm256_mul_ps(CK_FN(scales4)(x[r] + ib * xb, xb, count, minv), hy);
        const __m256 t0 = _mm256_unpacklo_ps(p[0], p[1]), t1 = _mm256_unpackhi_ps(p[0], p[1]);
        const __m256 t2 = _mm256_unpacklo_ps(p[2], p[3]), t3 = _mm256_unpackhi_ps(p[2], p[3]);
        const __m256 d[2] = { _mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t1, t3, 0x44) };
        const __m256 m[2] = { _mm256_shuffle_ps(t0, t2, 0xEE), _mm256_shuffle_ps(t1, t3, 0xEE) };
        for (int j = 0; j < count; j += 2) {
            // Two blocks' sums in one vector: [rows 0..3 of block j | rows 0..3 of block j + 1].
            const __m256i cj = CK_FN(rows_block)(type, x, (ib + j) * xb, y + (ib + j) * yb + yoff, c);
            const __m256i ck = j + 1 < count ? CK_FN(rows_block)(type, x, (ib + j + 1) * xb, y + (ib + j + 1) * yb + yoff, c) : cj;
            const __m256 f = _mm256_cvtepi32_ps(_mm256_permutevar8x32_epi32(_mm256_hadd_epi32(cj, ck), order));
            const __m128 dj = j ? _mm256_extractf128_ps(d[0], 1) : _mm256_castps256_ps128(d[0]);
            acc = _mm_fmadd_ps(_mm256_castps256_ps128(f), dj, acc);
            if (minv) acc = _mm_add_ps(acc, j ? _mm256_extractf128_ps(m[0], 1) : _mm256_castps256_ps128(m[0]));
            if (j + 1 < count) {
                const __m128 dk = j ? _mm256_extractf128_ps(d[1], 1) : _mm256_castps256_ps128(d[1]);
                acc = _mm_fmadd_ps(_mm256_extractf128_ps(f, 1), dk, acc);
                if (minv) acc = _mm_add_ps(acc, j ? _mm256_extractf128_ps(m[1], 1) : _mm256_castps256_ps128(m[1]));
            }
        }
    }
    float o[4];
    _mm_storeu_ps(o, acc);
    for (int r = 0; r < R; r++) out[r] = o[r];
}

// Tokens layout: R (1..4) rows × G (1, 2) groups of 8 tokens of the packed activations (group g of
// block b at pk + b * pstride + g * CK_PACK_BYTES); out[t * ld + r] for the first nt tokens.
__attribute__((always_inline)) CK_TGT static inline void CK_FN(tokens_body)(
    int type, const int R, const int G, const uint8_t *xp, size_t x_stride, const uint8_t *pk,
    size_t pstride, size_t nb, int nt, float *out, size_t ld) {
    const int minv = CK_FN(has_min)(type), c = ck_u_offset(type);
    const size_t xb = CK_FN(xbytes)(type);
    const uint8_t *x[4];
    for (int r = 0; r < R; r++) x[r] = xp + (size_t)r * x_stride;
    __m256 acc[4][2];
    for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++) acc[r][g] = _mm256_setzero_ps();
    // The rows' scales (d, m pairs) of 4 blocks at a time, broadcast from memory.
    float sx[4][8] __attribute__((aligned(32)));
    for (size_t ib = 0; ib < nb; ib++) {
        const uint8_t *yb = pk + ib * pstride;
        // The rows' unsigned quants, broadcast a dword at a time from memory (no shuffle port).
        uint32_t u[4][8] __attribute__((aligned(32)));
        for (int r = 0; r < R; r++) _mm256_store_si256((__m256i *)u[r], CK_FN(load_u)(type, x[r] + ib * xb));
        // Integer sums: is[r][g][chain]. One group: each token dword is loaded once for all rows,
        // with two chains (even and odd dwords) per row so that vpdpbusd's latency does not bind;
        // two groups: row by row, the 8 (row, group) chains are enough.
        __m256i is[4][2][2];
        for (int r = 0; r < R; r++)
            for (int g = 0; g < G; g++) {
                is[r][g][0] = c ? _mm256_load_si256((const __m256i *)(yb + g * CK_PACK_BYTES + CK_PACK_CORR)) : _mm256_setzero_si256();
                is[r][g][1] = _mm256_setzero_si256();
            }
        if (G == 1) {
            for (int k = 0; k < 8; k++) {
                const __m256i yk = _mm256_load_si256((const __m256i *)(yb + 32 * k));
                for (int r = 0; r < R; r++) is[r][0][k & 1] = CK_DP(is[r][0][k & 1], _mm256_set1_epi32((int)u[r][k]), yk);
            }
        } else {
            for (int r = 0; r < R; r++)
                for (int k = 0; k < 8; k++) {
                    const __m256i uk = _mm256_set1_epi32((int)u[r][k]);
                    for (int g = 0; g < G; g++)
                        is[r][g][0] = CK_DP(is[r][g][0], uk, _mm256_load_si256((const __m256i *)(yb + g * CK_PACK_BYTES + 32 * k)));
                }
        }
        if (ib % 4 == 0) {
            const int count = nb - ib < 4 ? (int)(nb - ib) : 4;
            for (int r = 0; r < R; r++) _mm256_store_ps(sx[r], CK_FN(scales4)(x[r] + ib * xb, xb, count, minv));
        }
        for (int r = 0; r < R; r++) {
            const __m256 dx = _mm256_broadcast_ss(&sx[r][2 * (ib % 4)]);
            const __m256 mx = _mm256_broadcast_ss(&sx[r][2 * (ib % 4) + 1]);
            for (int g = 0; g < G; g++) {
                const uint8_t *s = yb + g * CK_PACK_BYTES;
                const __m256 d = _mm256_mul_ps(dx, _mm256_load_ps((const float *)(s + CK_PACK_D)));
                const __m256i isum = _mm256_add_epi32(is[r][g][0], is[r][g][1]);
                acc[r][g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc[r][g]);
                if (minv) acc[r][g] = _mm256_add_ps(acc[r][g], _mm256_mul_ps(mx, _mm256_load_ps((const float *)(s + CK_PACK_S))));
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++) {
            float o[8];
            _mm256_storeu_ps(o, acc[r][g]);
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
