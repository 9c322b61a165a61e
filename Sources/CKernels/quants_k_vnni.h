// VNNI kernels of Q4_K and Q6_K (the K-quants of Q4_K_M files) with Q8_K activations, in the two
// layouts of quants_tile_vnni.h:
//   rows:   1 weight row × 1 token (decode, ck_dot_*);
//   tokens: up to 4 weight rows × 2 groups of 8 tokens, over activations repacked by
//           ck_pack_act_k (matmul.c) so that a weight dword meets 8 tokens' dwords in one vpdpbusd.
//
// Included by quants_tile_vnni.h (same CK_SFX, CK_TGT, CK_DP, CK_FN).
//
// Both layouts compute, for each (row, token), the exact integer sums and then the float operations
// of llama.cpp's x86 GEMMs for prompts, in the same order (the scalar twins in quants_k_scalar.c):
//   Q4_K (its repacked 8×8 GEMM): per pair p of 32-element sub-blocks,
//        acc = fma(isum_p, d·dy, acc), accm = fma(msum_p, dmin·dy, accm); result acc − accm
//   Q6_K (its tiled GEMM): per super-block, acc = fma(isum·d, dy, acc)
// with isum_p = Σ_{j∈p} sc_j·Σ_{i∈j} q_i·y_i, msum_p = Σ_{j∈p} m_j·ysum_j, and for Q6_K
// isum = Σ sc_s·Σ q·y − 32·Σ_s sc_s·bsum_s (its −32 offset). So the layouts agree bit for bit, a
// sequence decoded alone equals the same sequence in a batch, and prompts match llama.cpp's.

// Q4_K weights of one super-block as 256 unsigned bytes in element order (8 × 32).
CK_TGT static inline void CK_FN(unpack_q4_K)(const ck_block_q4_K *x, __m256i u[8]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int c = 0; c < 4; c++) {
        const __m256i bits = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * c));
        u[2 * c] = _mm256_and_si256(bits, m4);
        u[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
    }
}

// Q6_K weights of one super-block as 256 unsigned bytes (0..63) in element order (8 × 32).
CK_TGT static inline void CK_FN(unpack_q6_K)(const ck_block_q6_K *x, __m256i u[8]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h + 32));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
        u[4 * h] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4));
        u[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4));
        u[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4));
        u[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4));
    }
}


// 32·Σ_s sc_s·bsums[s]: Q6_K's −32 offset, exact.
static inline int32_t CK_FN(q6_K_offset)(const int8_t sc[16], const int16_t *bsums) {
    int32_t s = 0;
    for (int k = 0; k < 16; k++) s += (int32_t)sc[k] * bsums[k];
    return 32 * s;
}

CK_TGT float CK_CAT(ck_dot_q4_K_q8_K, CK_SFX)(const void *vx, const void *vy, size_t n) {
    const ck_block_q4_K *x = vx;
    const ck_block_q8_K *y = vy;
    float acc = 0.0f, accm = 0.0f;
    for (size_t b = 0; b < n / CK_QK_K; b++) {
        uint8_t sc[8], mn[8];
        ck_unpack_k4_scales(x[b].scales, sc, mn);
        __m256i u[8];
        CK_FN(unpack_q4_K)(&x[b], u);
        const float dd = h2f(x[b].d) * y[b].d, dm = h2f(x[b].dmin) * y[b].d;
        for (int p = 0; p < 4; p++) {
            __m256i s = _mm256_setzero_si256();
            for (int j = 2 * p; j < 2 * p + 2; j++) {
                const __m256i q = CK_DP(_mm256_setzero_si256(), u[j], _mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * j)));
                s = _mm256_add_epi32(s, _mm256_mullo_epi32(q, _mm256_set1_epi32(sc[j])));
            }
            const int32_t msum = mn[2 * p] * (y[b].bsums[4 * p] + y[b].bsums[4 * p + 1]) +
                                 mn[2 * p + 1] * (y[b].bsums[4 * p + 2] + y[b].bsums[4 * p + 3]);
            acc = fmaf((float)hsum_epi32(s), dd, acc);
            accm = fmaf((float)msum, dm, accm);
        }
    }
    return acc - accm;
}

CK_TGT float CK_CAT(ck_dot_q6_K_q8_K, CK_SFX)(const void *vx, const void *vy, size_t n) {
    const ck_block_q6_K *x = vx;
    const ck_block_q8_K *y = vy;
    float acc = 0.0f;
    for (size_t b = 0; b < n / CK_QK_K; b++) {
        __m256i u[8];
        CK_FN(unpack_q6_K)(&x[b], u);
        // Scales of the 16-element halves: lanes 0..3 sub-block 2j, lanes 4..7 sub-block 2j + 1.
        const __m256i sc32 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)x[b].scales));
        const __m256i sc32h = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[b].scales + 8)));
        __m256i s = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            const __m256i p = CK_DP(_mm256_setzero_si256(), u[j], _mm256_loadu_si256((const __m256i *)(y[b].qs + 32 * j)));
            const __m256i scj = j < 4 ? sc32 : sc32h;
            const int lo = 2 * (j & 3), hi = lo + 1;
            const __m256i pick = _mm256_setr_epi32(lo, lo, lo, lo, hi, hi, hi, hi);
            s = _mm256_add_epi32(s, _mm256_mullo_epi32(p, _mm256_permutevar8x32_epi32(scj, pick)));
        }
        const int32_t isum = hsum_epi32(s) - CK_FN(q6_K_offset)(x[b].scales, y[b].bsums);
        const float r = (float)isum * h2f(x[b].d);
        acc = fmaf(r, y[b].d, acc);
    }
    return acc;
}

// Tokens layout: R (1..4) rows × G (1, 2) groups of 8 tokens of the K-packed activations (group g
// of block b at pk + b * pstride + g * CK_PACKK_BYTES); out[t * ld + r] for the first nt tokens.
__attribute__((always_inline)) CK_TGT static inline void CK_FN(tokens_k_body)(
    int type, const int R, const int G, const uint8_t *xp, size_t x_stride, const uint8_t *pk,
    size_t pstride, size_t nb, int nt, float *out, size_t ld) {
    const int q6 = type == CK_Q6_K;
    const size_t xb = q6 ? sizeof(ck_block_q6_K) : sizeof(ck_block_q4_K);
    // Per (row, group): the 8 tokens' float chains (accm: Q4_K's mins).
    __m256 acc[4][2], accm[4][2];
    for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++) acc[r][g] = accm[r][g] = _mm256_setzero_ps();
    for (size_t ib = 0; ib < nb; ib++) {
        // The rows' unsigned quants (broadcast a dword at a time from memory), integer scales, and
        // the scale pairs (as int16 pairs) the activations' block sums are multiplied by.
        uint32_t u[4][64] __attribute__((aligned(32)));
        int32_t sc[4][16];
        int32_t pairs[4][8];
        float dx[4], mx[4];
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = xp + (size_t)r * x_stride + ib * xb;
            __m256i v[8];
            if (q6) {
                const ck_block_q6_K *x = (const ck_block_q6_K *)blk;
                CK_FN(unpack_q6_K)(x, v);
                for (int k = 0; k < 16; k++) sc[r][k] = x->scales[k];
                for (int p = 0; p < 8; p++) pairs[r][p] = (int32_t)(((uint32_t)(uint16_t)(int16_t)x->scales[2 * p + 1] << 16) | (uint16_t)(int16_t)x->scales[2 * p]);
                dx[r] = h2f(x->d);
            } else {
                const ck_block_q4_K *x = (const ck_block_q4_K *)blk;
                CK_FN(unpack_q4_K)(x, v);
                uint8_t s8[8], m8[8];
                ck_unpack_k4_scales(x->scales, s8, m8);
                for (int j = 0; j < 8; j++) sc[r][j] = s8[j];
                for (int p = 0; p < 4; p++) pairs[r][p] = (int32_t)(((uint32_t)m8[2 * p + 1] << 16) | m8[2 * p]);
                dx[r] = h2f(x->d);
                mx[r] = h2f(x->dmin);
            }
            for (int j = 0; j < 8; j++) _mm256_store_si256((__m256i *)(u[r] + 8 * j), v[j]);
        }
        for (int g = 0; g < G; g++) {
            const uint8_t *yb = pk + ib * pstride + (size_t)g * CK_PACKK_BYTES;
            const __m256 dy = _mm256_load_ps((const float *)(yb + CK_PACKK_D));
            __m256 dd[4];
            for (int r = 0; r < R; r++) dd[r] = _mm256_mul_ps(_mm256_set1_ps(dx[r]), dy);
            __m256i is[4];
            for (int r = 0; r < R; r++) is[r] = _mm256_setzero_si256();
            // Sub-blocks of 32 elements (Q4_K's scale groups; two of Q6_K's), 8 dwords each; two
            // chains per row (even and odd dwords) so that vpdpbusd's latency does not bind.
            for (int j = 0; j < 8; j++) {
                __m256i s[4][2];
                for (int r = 0; r < R; r++) s[r][0] = s[r][1] = _mm256_setzero_si256();
                for (int k = 0; k < 8; k++) {
                    const __m256i yk = _mm256_load_si256((const __m256i *)(yb + 32 * (8 * j + k)));
                    if (q6 && k == 4) {
                        // The first 16-element sub-block is complete: scale it.
                        for (int r = 0; r < R; r++) {
                            is[r] = _mm256_add_epi32(is[r], _mm256_mullo_epi32(_mm256_add_epi32(s[r][0], s[r][1]), _mm256_set1_epi32(sc[r][2 * j])));
                            s[r][0] = s[r][1] = _mm256_setzero_si256();
                        }
                    }
                    for (int r = 0; r < R; r++) s[r][k & 1] = CK_DP(s[r][k & 1], _mm256_set1_epi32((int)u[r][8 * j + k]), yk);
                }
                for (int r = 0; r < R; r++) {
                    const int32_t scale = q6 ? sc[r][2 * j + 1] : sc[r][j];
                    is[r] = _mm256_add_epi32(is[r], _mm256_mullo_epi32(_mm256_add_epi32(s[r][0], s[r][1]), _mm256_set1_epi32(scale)));
                }
                if (!q6 && (j & 1)) {
                    // Q4_K: a pair of sub-blocks is complete.
                    for (int r = 0; r < R; r++) {
                        acc[r][g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[r]), dd[r], acc[r][g]);
                        is[r] = _mm256_setzero_si256();
                    }
                }
            }
            for (int r = 0; r < R; r++) {
                if (q6) {
                    __m256i corr = _mm256_setzero_si256();
                    for (int p = 0; p < 8; p++)
                        corr = _mm256_add_epi32(corr, _mm256_madd_epi16(_mm256_load_si256((const __m256i *)(yb + CK_PACKK_BS + 32 * p)), _mm256_set1_epi32(pairs[r][p])));
                    const __m256i isum = _mm256_sub_epi32(is[r], _mm256_slli_epi32(corr, 5));
                    const __m256 rs = _mm256_mul_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(dx[r]));
                    acc[r][g] = _mm256_fmadd_ps(rs, dy, acc[r][g]);
                } else {
                    const __m256 dm = _mm256_mul_ps(_mm256_set1_ps(mx[r]), dy);
                    for (int p = 0; p < 4; p++) {
                        const __m256i ms = _mm256_madd_epi16(_mm256_load_si256((const __m256i *)(yb + CK_PACKK_YS + 32 * p)), _mm256_set1_epi32(pairs[r][p]));
                        accm[r][g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ms), dm, accm[r][g]);
                    }
                }
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++) {
            float o[8];
            _mm256_storeu_ps(o, q6 ? acc[r][g] : _mm256_sub_ps(acc[r][g], accm[r][g]));
            for (int i = 0; i < 8 && g * 8 + i < nt; i++) out[(size_t)(g * 8 + i) * ld + (size_t)r] = o[i];
        }
}

#define CK_VNNI_K_INST(NAME, TYPE) CK_TOK_KERNELS(tokk_##NAME, tokens_k_body, TYPE, CK_QK_K)

CK_VNNI_K_INST(q4_K_q8_K, CK_Q4_K)
CK_VNNI_K_INST(q6_K_q8_K, CK_Q6_K)

#undef CK_VNNI_K_INST
