// AVX-512 VNNI tokens kernel of the 32-element block types: the VNNI tokens layout (see
// quants_tile_vnni.h) with two groups of 8 tokens in one 512-bit vector, so each vpdpbusd,
// conversion and FMA serves 16 tokens. Same operations per (row, token) as every other path, so
// the results are bit-identical to them (and to llama.cpp's order; Q4_0 and IQ4_NL in its block
// form, see quants_tile_vnni.h). Rows are taken two at a time:
// their 2 × 8 lane accumulators and the shared activation vectors fit in the 32 registers.
//
// Included by quants_avx2.c after quants_tile_vnni.h (it calls the VNNI kernels for a lone group).

#define CK_AVX512 __attribute__((target("avx2,fma,f16c,avxvnni,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

// Two 32-byte halves, group g's and g + 1's, as one vector.
CK_AVX512 static inline __m512i ck_pair_si(const uint8_t *a) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_load_si256((const __m256i *)a)),
                              _mm256_load_si256((const __m256i *)(a + CK_PACK_BYTES)), 1);
}
CK_AVX512 static inline __m512 ck_pair_ps(const uint8_t *a) {
    return _mm512_castsi512_ps(ck_pair_si(a));
}

// The 8 lane accumulators combined per token as llama.cpp's hsum_float_8 combines lanes.
CK_AVX512 static inline __m512 ck_lanes8_512(const __m512 a[8]) {
    return _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a[0], a[4]), _mm512_add_ps(a[2], a[6])),
                         _mm512_add_ps(_mm512_add_ps(a[1], a[5]), _mm512_add_ps(a[3], a[7])));
}

// R (1, 2) rows × 16 tokens (two packed groups); out[t * ld + r] for the first nt tokens.
__attribute__((always_inline)) CK_AVX512 static inline void tok16_body(
    int type, const int R, const uint8_t *xp, size_t x_stride, const uint8_t *pk, size_t pstride, size_t nb, int nt,
    float *out, size_t ld) {
    const int minv = has_min_vnni(type), blkf = block_form_vnni(type), c = ck_u_offset(type);
    const size_t xb = xbytes_vnni(type);
    __m512 acc[2][8], summs[2];
    for (int r = 0; r < R; r++) {
        summs[r] = _mm512_setzero_ps();
        for (int k = 0; k < 8; k++) acc[r][k] = _mm512_setzero_ps();
    }
    for (size_t ib = 0; ib < nb; ib++) {
        const uint8_t *yb = pk + ib * pstride;
        uint32_t u[2][8] __attribute__((aligned(32)));
        __m512 d[2];
        const __m512 dy = ck_pair_ps(yb + CK_PACK_D);
        for (int r = 0; r < R; r++) {
            const uint8_t *xblk = xp + (size_t)r * x_stride + ib * xb;
            _mm256_store_si256((__m256i *)u[r], load_u_vnni(type, xblk));
            d[r] = _mm512_mul_ps(_mm512_set1_ps(h2f((uint16_t)(xblk[0] | xblk[1] << 8))), dy);
            if (minv)
                summs[r] = _mm512_fmadd_ps(_mm512_set1_ps(h2f((uint16_t)(xblk[2] | xblk[3] << 8))), ck_pair_ps(yb + CK_PACK_S), summs[r]);
        }
        // Broadcast each weight dword straight from memory (a load, no shuffle port).
        __asm__ volatile("" : : "r"(u) : "memory");
        if (blkf) {
            // One exact sum per block (the corrections summed first), one FMA.
            __m512i corr = _mm512_setzero_si512(), is[2] = { _mm512_setzero_si512(), _mm512_setzero_si512() };
            if (c)
                for (int k = 0; k < 8; k++) corr = _mm512_add_epi32(corr, ck_pair_si(yb + CK_PACK_KCORR + 32 * k));
            for (int r = 0; r < R; r++) is[r] = corr;
            for (int k = 0; k < 8; k++) {
                const __m512i yk = ck_pair_si(yb + 32 * k);
                for (int r = 0; r < R; r++) is[r] = _mm512_dpbusd_epi32(is[r], _mm512_set1_epi32((int)u[r][k]), yk);
            }
            for (int r = 0; r < R; r++) acc[r][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[r]), d[r], acc[r][0]);
            continue;
        }
        for (int k = 0; k < 8; k++) {
            const __m512i yk = ck_pair_si(yb + 32 * k);
            const __m512i init = c ? ck_pair_si(yb + CK_PACK_KCORR + 32 * k) : _mm512_setzero_si512();
            for (int r = 0; r < R; r++) {
                const __m512i lanes = _mm512_dpbusd_epi32(init, _mm512_set1_epi32((int)u[r][k]), yk);
                acc[r][k] = _mm512_fmadd_ps(d[r], _mm512_cvtepi32_ps(lanes), acc[r][k]);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        __m512 sum = blkf ? acc[r][0] : ck_lanes8_512(acc[r]);
        if (minv) sum = _mm512_add_ps(sum, summs[r]);
        float o[16];
        _mm512_storeu_ps(o, sum);
        for (int i = 0; i < 16 && i < nt; i++) out[(size_t)i * ld + (size_t)r] = o[i];
    }
}

// One group of 8 tokens (the batched decode of 8 sequences): two rows per vector, row r's 8 tokens
// in the low half and row r + 1's in the high half; the activations are broadcast to both halves
// straight from memory and each half's weight dword is picked with one vpermd.
__attribute__((always_inline)) CK_AVX512 static inline void tok8x2_body(
    int type, const uint8_t *xp, size_t x_stride, const uint8_t *pk, size_t pstride, size_t nb, int nt,
    float *out, size_t ld) {
    const int minv = has_min_vnni(type), blkf = block_form_vnni(type), c = ck_u_offset(type);
    const size_t xb = xbytes_vnni(type);
    const uint8_t *x0 = xp, *x1 = xp + x_stride;
    __m512 acc[8], summs = _mm512_setzero_ps();
    for (int k = 0; k < 8; k++) acc[k] = _mm512_setzero_ps();
    for (size_t ib = 0; ib < nb; ib++) {
        const uint8_t *yb = pk + ib * pstride;
        const uint8_t *b0 = x0 + ib * xb, *b1 = x1 + ib * xb;
        // Both rows' 8 weight dwords: row r's in lanes 0..7, row r + 1's in 8..15.
        const __m512i u = _mm512_inserti64x4(_mm512_castsi256_si512(load_u_vnni(type, b0)), load_u_vnni(type, b1), 1);
        const __m512 dx = _mm512_insertf32x8(_mm512_set1_ps(h2f((uint16_t)(b0[0] | b0[1] << 8))),
                                             _mm256_set1_ps(h2f((uint16_t)(b1[0] | b1[1] << 8))), 1);
        const __m512 d = _mm512_mul_ps(dx, _mm512_broadcast_f32x8(_mm256_load_ps((const float *)(yb + CK_PACK_D))));
        if (minv) {
            const __m512 mx = _mm512_insertf32x8(_mm512_set1_ps(h2f((uint16_t)(b0[2] | b0[3] << 8))),
                                                 _mm256_set1_ps(h2f((uint16_t)(b1[2] | b1[3] << 8))), 1);
            summs = _mm512_fmadd_ps(mx, _mm512_broadcast_f32x8(_mm256_load_ps((const float *)(yb + CK_PACK_S))), summs);
        }
        __m512i is = _mm512_setzero_si512();
        for (int k = 0; k < 8; k++) {
            const __m512i pick = _mm512_set_epi32(8 + k, 8 + k, 8 + k, 8 + k, 8 + k, 8 + k, 8 + k, 8 + k, k, k, k, k, k, k, k, k);
            const __m512i yk = _mm512_broadcast_i64x4(_mm256_load_si256((const __m256i *)(yb + 32 * k)));
            const __m512i init = c ? _mm512_broadcast_i64x4(_mm256_load_si256((const __m256i *)(yb + CK_PACK_KCORR + 32 * k)))
                                   : _mm512_setzero_si512();
            if (blkf) {
                // One exact sum per block, one FMA after the loop.
                is = _mm512_dpbusd_epi32(_mm512_add_epi32(is, init), _mm512_permutexvar_epi32(pick, u), yk);
                continue;
            }
            const __m512i lanes = _mm512_dpbusd_epi32(init, _mm512_permutexvar_epi32(pick, u), yk);
            acc[k] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(lanes), acc[k]);
        }
        if (blkf) acc[0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), d, acc[0]);
    }
    __m512 sum = blkf ? acc[0] : ck_lanes8_512(acc);
    if (minv) sum = _mm512_add_ps(sum, summs);
    float o[16];
    _mm512_storeu_ps(o, sum);
    for (int i = 0; i < 8 && i < nt; i++) {
        out[(size_t)i * ld] = o[i];
        out[(size_t)i * ld + 1] = o[8 + i];
    }
}

#define CK_TOK16_INST(NAME, TYPE)                                                                    \
    CK_AVX512 static void tok16_##NAME##_2(const uint8_t *x, size_t xs, const uint8_t *p, size_t ps, size_t nb, int nt, float *o, size_t ld) { tok16_body(TYPE, 2, x, xs, p, ps, nb, nt, o, ld); } \
    CK_AVX512 static void tok16_##NAME##_1(const uint8_t *x, size_t xs, const uint8_t *p, size_t ps, size_t nb, int nt, float *o, size_t ld) { tok16_body(TYPE, 1, x, xs, p, ps, nb, nt, o, ld); } \
    CK_AVX512 static void tok8x2_##NAME(const uint8_t *x, size_t xs, const uint8_t *p, size_t ps, size_t nb, int nt, float *o, size_t ld) { tok8x2_body(TYPE, x, xs, p, ps, nb, nt, o, ld); } \
    static void tok16_##NAME(int nr, int ng, const void *x, size_t xs, const void *p, size_t ps, size_t n, int nt, float *o, size_t ld) { \
        const size_t nb = n / CK_QK;                                                                 \
        if (ng < 2) {                                                                                \
            int r = 0;                                                                               \
            for (; r + 2 <= nr; r += 2) tok8x2_##NAME((const uint8_t *)x + (size_t)r * xs, xs, p, ps, nb, nt, o + r, ld); \
            if (r < nr) tok_##NAME##_vnni(1, 1, (const uint8_t *)x + (size_t)r * xs, xs, p, ps, n, nt, o + r, ld); \
            return;                                                                                  \
        }                                                                                            \
        int r = 0;                                                                                   \
        for (; r + 2 <= nr; r += 2) tok16_##NAME##_2((const uint8_t *)x + (size_t)r * xs, xs, p, ps, nb, nt, o + r, ld); \
        if (r < nr) tok16_##NAME##_1((const uint8_t *)x + (size_t)r * xs, xs, p, ps, nb, nt, o + r, ld); \
    }

CK_TOK16_INST(q4_0_q8_0, CK_Q4_0)
CK_TOK16_INST(q4_1_q8_1, CK_Q4_1)
CK_TOK16_INST(q5_0_q8_0, CK_Q5_0)
CK_TOK16_INST(q5_1_q8_1, CK_Q5_1)
CK_TOK16_INST(q8_0_q8_0, CK_Q8_0)
CK_TOK16_INST(iq4_nl_q8_0, CK_IQ4_NL)

/// The AVX-512 tokens kernel of a type: the 32-element types' 16-token kernels (and 2-row ones for
/// a lone group); the K-quants take the AVX-VNNI ones.
ck_tok_fn ck_resolve_tok_avx512(int type) {
    switch (type) {
    case CK_Q4_0: return tok16_q4_0_q8_0;
    case CK_Q4_1: return tok16_q4_1_q8_1;
    case CK_Q5_0: return tok16_q5_0_q8_0;
    case CK_Q5_1: return tok16_q5_1_q8_1;
    case CK_Q8_0: return tok16_q8_0_q8_0;
    case CK_IQ4_NL: return tok16_iq4_nl_q8_0;
    default: return ck_resolve_tok_vnni(type);
    }
}

#undef CK_TOK16_INST
