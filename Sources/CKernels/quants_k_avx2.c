// AVX2 + FMA + F16C kernels for the K-quants and IQ4_NL / IQ4_XS, twins of quants_k_scalar.c.
// Compiled with function target attributes (never -march) and only called after ck_cpu_isa()
// confirmed the CPU has them.
//
// The dot products sum integer products exactly per block and then do the scalar twins' float
// operations in llama.cpp's order, so they equal the scalar twins bit for bit. The
// dequantizers and the Q8_K quantizer round exactly as the scalar twins (bit-identical): no fused
// multiply-adds there.
#include "ck_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include "ck_avx2.h"


// Shuffle controls that spread the 16-element scales p*2 and p*2+1 over the 16 int16 lanes of a
// 32-element product (lanes 0-7 cover elements 0-15, lanes 8-15 elements 16-31).
static const uint8_t k_pair_shuffle[8][16] = {
    { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 },
    { 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3 },
    { 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5 },
    { 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7 },
    { 8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9 },
    { 10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11 },
    { 12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13 },
    { 14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15 },
};

// int16 lanes holding signed scales 2p (lanes 0-7) and 2p+1 (lanes 8-15) from 16 signed bytes.
CK_AVX2 static inline __m256i pair_scales(__m128i sc8, int p) {
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, _mm_loadu_si128((const __m128i *)k_pair_shuffle[p])));
}

// Unsigned bytes u (< 128) times signed bytes s, 32 products, scaled per 16 by sc16 -> 8 int32 lanes.
CK_AVX2 static inline __m256i dot_us_scaled(__m256i u, __m256i s, __m256i sc16) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), sc16);
}

// 16 bytes of nibbles looked up in the IQ4 code book: lanes 0-15 low nibbles, 16-31 high nibbles.
CK_AVX2 static inline __m256i iq4_values32(const uint8_t *qs, __m128i table) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(t, 4), m4)),
                            _mm_shuffle_epi8(table, _mm_and_si128(t, m4)));
}

// Signed bytes x times signed bytes y (|x|, |y| <= 127), pairs summed -> 16 int16 lanes.
CK_AVX2 static inline __m256i dot_ss16(__m256i x, __m256i y) {
    return _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// Q5_K's 64-element chunk c: 32 bytes of nibbles at qs plus the next two bits of each qh byte
// (hbits, shifted on for the next chunk) -> the 5-bit values of elements 0-31 (lo) and 32-63 (hi).
CK_AVX2 static inline void q5_K_chunk(const uint8_t *qs, __m256i *hbits, __m256i *lo, __m256i *hi) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m1 = _mm256_set1_epi8(1);
    const __m256i bits = _mm256_loadu_si256((const __m256i *)qs);
    *lo = _mm256_or_si256(_mm256_and_si256(bits, m4), _mm256_slli_epi16(_mm256_and_si256(*hbits, m1), 4));
    *hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(*hbits, 1), m1), 4));
    *hbits = _mm256_srli_epi16(*hbits, 2);
}

// ---- dot products ------------------------------------------------------------------------------

// Q2_K in llama.cpp's order (see the scalar twin): exact integer sums per 128-element half, then
// two float FMA chains (acc and accm in the lanes of one vector); bit-identical to the scalar twin.
CK_AVX2 float ck_dot_q2_K_q8_K_avx2(const void *vx, const void *vy, size_t n) {
    const ck_block_q2_K *x = vx;
    const ck_block_q8_K *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3);
    __m128 acc = _mm_setzero_ps(); // lane 0: acc, lane 1: accm
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        const __m128i sc_raw = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m128i sc8 = _mm_and_si128(sc_raw, _mm_set1_epi8(0x0F));
        const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc_raw, 4), _mm_set1_epi8(0x0F)));
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)y[i].bsums);
        // int32 lanes 0-3 hold the first half's min·bsum pairs, lanes 4-7 the second's.
        const __m256i m32 = _mm256_madd_epi16(bsums, mins16);
        const int8_t *q8 = y[i].qs;
        __m256i sumi[2];
        for (int h = 0; h < 2; h++) {
            sumi[h] = _mm256_setzero_si256();
            __m256i bits = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int s = 0; s < 4; s++) {
                const __m256i q = _mm256_and_si256(bits, m3);
                bits = _mm256_srli_epi16(bits, 2);
                const __m256i qy = _mm256_loadu_si256((const __m256i *)q8);
                q8 += 32;
                sumi[h] = _mm256_add_epi32(sumi[h], dot_us_scaled(q, qy, pair_scales(sc8, 4 * h + s)));
            }
        }
        // [isum_0, imin_0, isum_1, imin_1] as floats; then per half, lanes (acc, accm) fused.
        const __m128 sums = _mm_cvtepi32_ps(hsum4_epi32(sumi[0], _mm256_permute2x128_si256(m32, m32, 0x80),
                                                        sumi[1], _mm256_permute2x128_si256(m32, m32, 0x81)));
        const __m128 d = _mm_setr_ps(h2f(x[i].d) * y[i].d, h2f(x[i].dmin) * y[i].d, 0.0f, 0.0f);
        acc = _mm_fmadd_ps(sums, d, acc);
        acc = _mm_fmadd_ps(_mm_movehl_ps(sums, sums), d, acc);
    }
    return _mm_cvtss_f32(acc) - _mm_cvtss_f32(_mm_movehdup_ps(acc));
}

// Q3_K in llama.cpp's order (see the scalar twin); bit-identical to it.
CK_AVX2 float ck_dot_q3_K_q8_K_avx2(const void *vx, const void *vy, size_t n) {
    const ck_block_q3_K *x = vx;
    const ck_block_q8_K *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
    float acc = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        int8_t sc[16];
        ck_unpack_q3_K_scales(x[i].scales, sc);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)sc);
        // value = (2 low bits | high bit << 2) - 4: sum the unsigned part, subtract 4·Σ scale·bsum.
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)y[i].bsums);
        const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(bsums, _mm256_cvtepi8_epi16(sc8)), 2);
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), offset);
        __m256i hbits = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        const int8_t *q8 = y[i].qs;
        for (int h = 0; h < 2; h++) {
            __m256i bits = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int s = 0; s < 4; s++) {
                const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(hbits, m1), 2);
                const __m256i q = _mm256_or_si256(_mm256_and_si256(bits, m3), hi);
                bits = _mm256_srli_epi16(bits, 2);
                hbits = _mm256_srli_epi16(hbits, 1);
                const __m256i qy = _mm256_loadu_si256((const __m256i *)q8);
                q8 += 32;
                sumi = _mm256_add_epi32(sumi, dot_us_scaled(q, qy, pair_scales(sc8, 4 * h + s)));
            }
        }
        acc = ck_tiled_step(acc, hsum_epi32(sumi), h2f(x[i].d), y[i].d);
    }
    return acc;
}

// Q4_K in llama.cpp's order (see the scalar twin): per 64-element pair, exact integer sums, then
// two float FMA chains; bit-identical to the scalar twin.
CK_AVX2 float ck_dot_q4_K_q8_K_avx2(const void *vx, const void *vy, size_t n) {
    const ck_block_q4_K *x = vx;
    const ck_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    float acc = 0.0f, accm = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        uint8_t sc[8], mn[8];
        ck_unpack_k4_scales(x[i].scales, sc, mn);
        const float dd = h2f(x[i].d) * y[i].d, dm = h2f(x[i].dmin) * y[i].d;
        for (int p = 0; p < 4; p++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * p));
            const __m256i y0 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * p));
            const __m256i y1 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * p + 32));
            const __m256i s = _mm256_add_epi32(dot_us_scaled(_mm256_and_si256(bits, m4), y0, _mm256_set1_epi16(sc[2 * p])),
                                               dot_us_scaled(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), y1,
                                                             _mm256_set1_epi16(sc[2 * p + 1])));
            const int32_t imin = mn[2 * p] * (y[i].bsums[4 * p] + y[i].bsums[4 * p + 1]) +
                                 mn[2 * p + 1] * (y[i].bsums[4 * p + 2] + y[i].bsums[4 * p + 3]);
            acc = fmaf((float)hsum_epi32(s), dd, acc);
            accm = fmaf((float)imin, dm, accm);
        }
    }
    return acc - accm;
}

// Q5_K in llama.cpp's order (see the scalar twin); bit-identical to it.
CK_AVX2 float ck_dot_q5_K_q8_K_avx2(const void *vx, const void *vy, size_t n) {
    const ck_block_q5_K *x = vx;
    const ck_block_q8_K *y = vy;
    float acc = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        uint8_t sc[8], mn[8];
        ck_unpack_k4_scales(x[i].scales, sc, mn);
        int32_t m = 0;
        for (int j = 0; j < 8; j++) m += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        __m256i hbits = _mm256_loadu_si256((const __m256i *)x[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i lo, hi;
            q5_K_chunk(x[i].qs + 32 * c, &hbits, &lo, &hi);
            const __m256i y0 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c));
            const __m256i y1 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c + 32));
            sumi = _mm256_add_epi32(sumi, dot_us_scaled(lo, y0, _mm256_set1_epi16(sc[2 * c])));
            sumi = _mm256_add_epi32(sumi, dot_us_scaled(hi, y1, _mm256_set1_epi16(sc[2 * c + 1])));
        }
        acc = ck_tiled_step_min(acc, hsum_epi32(sumi), m, h2f(x[i].d), h2f(x[i].dmin), y[i].d);
    }
    return acc;
}

// Q6_K in llama.cpp's order (see the scalar twin); bit-identical to it.
CK_AVX2 float ck_dot_q6_K_q8_K_avx2(const void *vx, const void *vy, size_t n) {
    const ck_block_q6_K *x = vx;
    const ck_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    float acc = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        // value = unsigned 6 bits - 32: sum the unsigned part, subtract 32·Σ scale·bsum.
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)y[i].bsums);
        const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(bsums, _mm256_cvtepi8_epi16(sc8)), 5);
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), offset);
        const int8_t *q8 = y[i].qs;
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4)),
                _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4)),
            };
            for (int k = 0; k < 4; k++) {
                const __m256i qy = _mm256_loadu_si256((const __m256i *)q8);
                q8 += 32;
                sumi = _mm256_add_epi32(sumi, dot_us_scaled(q[k], qy, pair_scales(sc8, 4 * h + k)));
            }
        }
        acc = ck_tiled_step(acc, hsum_epi32(sumi), h2f(x[i].d), y[i].d);
    }
    return acc;
}

// ck_dot_iq4_nl_q8_0_avx2: see quants_tile_impl.h (tiled with the other 32-element types).

// IQ4_XS in llama.cpp's order (see the scalar twin); bit-identical to it.
CK_AVX2 float ck_dot_iq4_xs_q8_K_avx2(const void *vx, const void *vy, size_t n) {
    const ck_block_iq4_xs *x = vx;
    const ck_block_q8_K *y = vy;
    const __m128i table = _mm_loadu_si128((const __m128i *)ck_iq4nl_values);
    float acc = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        __m256i sumi = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            const __m256i qx = iq4_values32(x[i].qs + 16 * ib, table);
            const __m256i qy = _mm256_loadu_si256((const __m256i *)(y[i].qs + 32 * ib));
            const __m256i p = _mm256_madd_epi16(dot_ss16(qx, qy), _mm256_set1_epi16((short)ck_iq4_xs_scale(&x[i], ib)));
            sumi = _mm256_add_epi32(sumi, p);
        }
        acc = ck_tiled_step(acc, hsum_epi32(sumi), h2f(x[i].d), y[i].d);
    }
    return acc;
}

// ---- Q8_K activations --------------------------------------------------------------------------

CK_AVX2 void ck_quantize_q8_K_avx2(const float *x, void *vy, size_t n) {
    ck_block_q8_K *y = vy;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (size_t i = 0; i < n / CK_QK_K; i++, x += CK_QK_K) {
        __m256 m = _mm256_setzero_ps();
        // max_ps returns its second operand when either is NaN: NaNs are skipped, as by the scalar scan.
        for (int j = 0; j < 256; j += 8) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), m);
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        // The first element of that magnitude gives the sign (as the scalar scan's strict >).
        float max = amax;
        const __m256 va = _mm256_set1_ps(amax);
        for (int j = 0; j < 256; j += 8) {
            const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), va, _CMP_EQ_OQ));
            if (mask) { max = x[j + __builtin_ctz((unsigned)mask)]; break; }
        }
        const float iscale = -127.0f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        const __m256i cap = _mm256_set1_epi32(127);
        for (int j = 0; j < 256; j += 32) {
            // Round half to even (the MXCSR default) equals ggml's nearest_int for |v| <= 2^22.
            __m256i i0 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j))), cap);
            __m256i i1 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 8))), cap);
            __m256i i2 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 16))), cap);
            __m256i i3 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 24))), cap);
            // Group sums of 16 (bsums), before packing.
            const __m256i s01 = _mm256_add_epi32(i0, i1), s23 = _mm256_add_epi32(i2, i3);
            __m256i hs = _mm256_hadd_epi32(s01, s23); // per 128-bit lane: pairs of s01, then of s23
            hs = _mm256_hadd_epi32(hs, hs);           // lane 0: s01 low-half quads, lane 4: high-half
            const __m128i q = _mm_add_epi32(_mm256_castsi256_si128(hs), _mm256_extracti128_si256(hs, 1));
            y[i].bsums[j / 16] = (int16_t)_mm_cvtsi128_si32(q);
            y[i].bsums[j / 16 + 1] = (int16_t)_mm_extract_epi32(q, 1);
            i0 = _mm256_packs_epi32(i0, i1);
            i2 = _mm256_packs_epi32(i2, i3);
            i0 = _mm256_packs_epi16(i0, i2);
            i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), i0);
        }
        y[i].d = 1.0f / iscale;
    }
}

// ---- dequantize (bit-identical to the scalar twins: separate multiply and subtract) -------------

CK_AVX2 static inline void store_scaled(float *y, __m256i q32, float dl, float ml) {
    _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(dl), _mm256_cvtepi32_ps(q32)), _mm256_set1_ps(ml)));
}

// 32 unsigned bytes -> 32 floats dl * q - ml.
CK_AVX2 static inline void store32_u8(float *y, __m256i q, float dl, float ml) {
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    store_scaled(y, _mm256_cvtepu8_epi32(lo), dl, ml);
    store_scaled(y + 8, _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)), dl, ml);
    store_scaled(y + 16, _mm256_cvtepu8_epi32(hi), dl, ml);
    store_scaled(y + 24, _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)), dl, ml);
}

// 16 signed bytes -> 16 floats dl * q.
CK_AVX2 static inline void store16_i8(float *y, __m128i q, float dl) {
    const __m256 vd = _mm256_set1_ps(dl);
    _mm256_storeu_ps(y, _mm256_mul_ps(vd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(vd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)))));
}

// 16 unsigned bytes -> 16 floats dl * q - ml.
CK_AVX2 static inline void store16_u8(float *y, __m128i q, float dl, float ml) {
    store_scaled(y, _mm256_cvtepu8_epi32(q), dl, ml);
    store_scaled(y + 8, _mm256_cvtepu8_epi32(_mm_srli_si128(q, 8)), dl, ml);
}

CK_AVX2 static void dequant_q2_K_avx2(const ck_block_q2_K *x, float *y, size_t nb) {
    const __m256i m3 = _mm256_set1_epi8(3);
    for (size_t i = 0; i < nb; i++) {
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        for (int h = 0; h < 2; h++) {
            __m256i bits = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int s = 0; s < 4; s++, y += 32) {
                const __m256i q = _mm256_and_si256(bits, m3);
                bits = _mm256_srli_epi16(bits, 2);
                const uint8_t s0 = x[i].scales[8 * h + 2 * s], s1 = x[i].scales[8 * h + 2 * s + 1];
                store16_u8(y, _mm256_castsi256_si128(q), d * (float)(s0 & 0x0F), dmin * (float)(s0 >> 4));
                store16_u8(y + 16, _mm256_extracti128_si256(q, 1), d * (float)(s1 & 0x0F), dmin * (float)(s1 >> 4));
            }
        }
    }
}

CK_AVX2 static void dequant_q3_K_avx2(const ck_block_q3_K *x, float *y, size_t nb) {
    const __m256i m3 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1), four = _mm256_set1_epi8(4);
    for (size_t i = 0; i < nb; i++) {
        const float d = h2f(x[i].d);
        int8_t sc[16];
        ck_unpack_q3_K_scales(x[i].scales, sc);
        __m256i hbits = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        for (int h = 0; h < 2; h++) {
            __m256i bits = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int s = 0; s < 4; s++, y += 32) {
                const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(hbits, m1), 2);
                const __m256i v = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(bits, m3), hi), four);
                bits = _mm256_srli_epi16(bits, 2);
                hbits = _mm256_srli_epi16(hbits, 1);
                store16_i8(y, _mm256_castsi256_si128(v), d * (float)sc[8 * h + 2 * s]);
                store16_i8(y + 16, _mm256_extracti128_si256(v, 1), d * (float)sc[8 * h + 2 * s + 1]);
            }
        }
    }
}

CK_AVX2 static void dequant_q4_K_avx2(const ck_block_q4_K *x, float *y, size_t nb) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (size_t i = 0; i < nb; i++, y += 256) {
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        uint8_t sc[8], mn[8];
        ck_unpack_k4_scales(x[i].scales, sc, mn);
        for (int c = 0; c < 4; c++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
            store32_u8(y + 64 * c, _mm256_and_si256(bits, m4), d * (float)sc[2 * c], dmin * (float)mn[2 * c]);
            store32_u8(y + 64 * c + 32, _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), d * (float)sc[2 * c + 1],
                       dmin * (float)mn[2 * c + 1]);
        }
    }
}

CK_AVX2 static void dequant_q5_K_avx2(const ck_block_q5_K *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++, y += 256) {
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        uint8_t sc[8], mn[8];
        ck_unpack_k4_scales(x[i].scales, sc, mn);
        __m256i hbits = _mm256_loadu_si256((const __m256i *)x[i].qh);
        for (int c = 0; c < 4; c++) {
            __m256i lo, hi;
            q5_K_chunk(x[i].qs + 32 * c, &hbits, &lo, &hi);
            store32_u8(y + 64 * c, lo, d * (float)sc[2 * c], dmin * (float)mn[2 * c]);
            store32_u8(y + 64 * c + 32, hi, d * (float)sc[2 * c + 1], dmin * (float)mn[2 * c + 1]);
        }
    }
}

CK_AVX2 static void dequant_q6_K_avx2(const ck_block_q6_K *x, float *y, size_t nb) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3), m32 = _mm256_set1_epi8(32);
    for (size_t i = 0; i < nb; i++, y += 256) {
        const float d = h2f(x[i].d);
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4)),
                _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4)),
            };
            for (int k = 0; k < 4; k++) {
                const __m256i v = _mm256_sub_epi8(q[k], m32);
                float *out = y + 128 * h + 32 * k;
                store16_i8(out, _mm256_castsi256_si128(v), d * (float)x[i].scales[8 * h + 2 * k]);
                store16_i8(out + 16, _mm256_extracti128_si256(v, 1), d * (float)x[i].scales[8 * h + 2 * k + 1]);
            }
        }
    }
}

CK_AVX2 static void dequant_iq4_avx2(const uint8_t *qs, float dl, __m128i table, float *y) {
    const __m256i v = iq4_values32(qs, table);
    store16_i8(y, _mm256_castsi256_si128(v), dl);
    store16_i8(y + 16, _mm256_extracti128_si256(v, 1), dl);
}

CK_AVX2 int ck_dequantize_kq_avx2(int type, const void *vx, float *y, size_t n) {
    const __m128i table = _mm_loadu_si128((const __m128i *)ck_iq4nl_values);
    switch (type) {
    case CK_Q2_K: dequant_q2_K_avx2(vx, y, n / CK_QK_K); return 0;
    case CK_Q3_K: dequant_q3_K_avx2(vx, y, n / CK_QK_K); return 0;
    case CK_Q4_K: dequant_q4_K_avx2(vx, y, n / CK_QK_K); return 0;
    case CK_Q5_K: dequant_q5_K_avx2(vx, y, n / CK_QK_K); return 0;
    case CK_Q6_K: dequant_q6_K_avx2(vx, y, n / CK_QK_K); return 0;
    case CK_IQ4_NL: {
        const ck_block_iq4_nl *x = vx;
        for (size_t i = 0; i < n / CK_QK; i++) dequant_iq4_avx2(x[i].qs, h2f(x[i].d), table, y + 32 * i);
        return 0;
    }
    case CK_IQ4_XS: {
        const ck_block_iq4_xs *x = vx;
        for (size_t i = 0; i < n / CK_QK_K; i++) {
            const float d = h2f(x[i].d);
            for (int ib = 0; ib < 8; ib++) {
                dequant_iq4_avx2(x[i].qs + 16 * ib, d * (float)ck_iq4_xs_scale(&x[i], ib), table, y + 256 * i + 32 * ib);
            }
        }
        return 0;
    }
    default: return ck_dequantize_kq_scalar(type, vx, y, n); // Q8_K: the scalar loop
    }
}

#else
// Not x86: the dispatcher never selects these; they forward to the scalar twins.
float ck_dot_q2_K_q8_K_avx2(const void *x, const void *y, size_t n) { return ck_dot_q2_K_q8_K_scalar(x, y, n); }
float ck_dot_q3_K_q8_K_avx2(const void *x, const void *y, size_t n) { return ck_dot_q3_K_q8_K_scalar(x, y, n); }
float ck_dot_q4_K_q8_K_avx2(const void *x, const void *y, size_t n) { return ck_dot_q4_K_q8_K_scalar(x, y, n); }
float ck_dot_q5_K_q8_K_avx2(const void *x, const void *y, size_t n) { return ck_dot_q5_K_q8_K_scalar(x, y, n); }
float ck_dot_q6_K_q8_K_avx2(const void *x, const void *y, size_t n) { return ck_dot_q6_K_q8_K_scalar(x, y, n); }
float ck_dot_iq4_xs_q8_K_avx2(const void *x, const void *y, size_t n) { return ck_dot_iq4_xs_q8_K_scalar(x, y, n); }
void ck_quantize_q8_K_avx2(const float *x, void *y, size_t n) { ck_quantize_q8_K_scalar(x, y, n); }
int ck_dequantize_kq_avx2(int type, const void *x, float *y, size_t n) { return ck_dequantize_kq_scalar(type, x, y, n); }
#endif
