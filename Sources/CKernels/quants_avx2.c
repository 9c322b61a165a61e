// AVX2 + FMA + F16C kernels. Compiled with function target attributes, never -march, and only
// called after ck_cpu_isa() confirmed the CPU has them. Each has a scalar twin in quants_scalar.c.
#include "ck_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include "ck_avx2.h"


// 16 bytes of nibbles -> 32 bytes: lanes 0..15 low nibbles, lanes 16..31 high nibbles.
CK_AVX2 static inline __m256i nibbles32(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i b = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

// 32 bits -> 32 bytes, 0xFF where the bit is set.
CK_AVX2 static inline __m256i bits32(const uint8_t qh[4]) {
    uint32_t x;
    memcpy(&x, qh, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                           0x0101010101010101LL, 0x0000000000000000LL);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfeLL));
    return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

// Sums of products of unsigned bytes u and signed bytes s: 8 int32 lanes (AVX2: pmaddubsw, whose
// int16 pair sums cannot saturate for these operands except |x| = 128 paired with s = -128 twice).
CK_AVX2 static inline __m256i dot_us_avx2(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

#define CK_SFX avx2
#define CK_TGT CK_AVX2
#define CK_DOTI(u, s) dot_us_avx2(u, s)
#include "quants_tile_impl.h"
#undef CK_SFX
#undef CK_TGT
#undef CK_DOTI

// AVX-VNNI (VEX-encoded vpdpbusd, 256-bit): Alder Lake / Sapphire Rapids and later.
#define CK_VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define CK_SFX vnni
#define CK_TGT CK_VNNI
#define CK_DP(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
#include "quants_tile_vnni.h"
#undef CK_SFX
#undef CK_TGT
#undef CK_DP

// AVX-512 VNNI (512-bit vpdpbusd): 16 tokens per instruction in the tokens layout.
#include "quants_tok_avx512.h"

CK_AVX2 float ck_dot_f16_f16_avx2(const void *vx, const void *vy, size_t n) {
    const uint16_t *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(y + i))), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8))),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(y + i + 8))), a1);
    }
    for (; i + 8 <= n; i += 8) {
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(y + i))), a0);
    }
    float sum = hsum_ps(_mm256_add_ps(a0, a1));
    for (; i < n; i++) sum += h2f(x[i]) * h2f(y[i]);
    return sum;
}

CK_AVX2 float ck_dot_f32_avx2(const float *x, const float *y, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = hsum_ps(_mm256_add_ps(a0, a1));
    for (; i < n; i++) sum += x[i] * y[i];
    return sum;
}

// Quantizes one block of 32 floats to int8 lanes; returns the scale d and the int sum.
CK_AVX2 static inline float quantize_block(const float *x, int8_t *qs, int *sum) {
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sign, v0);
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v1));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v2));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v3));
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f;
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
#define rnd (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
    __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, id), rnd));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, id), rnd));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, id), rnd));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, id), rnd));
    if (sum) *sum = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
    i0 = _mm256_packs_epi32(i0, i1);
    i2 = _mm256_packs_epi32(i2, i3);
    i0 = _mm256_packs_epi16(i0, i2);
    i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)qs, i0);
    return d;
}
#undef rnd

CK_AVX2 void ck_quantize_q8_0_avx2(const float *x, void *vy, size_t n) {
    ck_block_q8_0 *y = vy;
    for (size_t i = 0; i < n / CK_QK; i++) {
        const float d = quantize_block(x + i * 32, y[i].qs, NULL);
        y[i].d = _cvtss_sh(d, 0);
    }
}

CK_AVX2 void ck_quantize_q8_1_avx2(const float *x, void *vy, size_t n) {
    ck_block_q8_1 *y = vy;
    for (size_t i = 0; i < n / CK_QK; i++) {
        int sum = 0;
        const float d = quantize_block(x + i * 32, y[i].qs, &sum);
        y[i].d = _cvtss_sh(d, 0);
        y[i].s = _cvtss_sh(d * (float)sum, 0);
    }
}

CK_AVX2 void ck_fp16_to_fp32_row_avx2(const uint16_t *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = _cvtsh_ss(x[i]);
}

CK_AVX2 void ck_fp32_to_fp16_row_avx2(const float *x, uint16_t *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), 0));
    for (; i < n; i++) y[i] = _cvtss_sh(x[i], 0);
}

#else
// Not x86: the dispatcher never selects these; they forward to the scalar twins.
float ck_dot_q4_0_q8_0_avx2(const void *x, const void *y, size_t n) { return ck_dot_q4_0_q8_0_scalar(x, y, n); }
float ck_dot_q4_1_q8_1_avx2(const void *x, const void *y, size_t n) { return ck_dot_q4_1_q8_1_scalar(x, y, n); }
float ck_dot_q5_0_q8_0_avx2(const void *x, const void *y, size_t n) { return ck_dot_q5_0_q8_0_scalar(x, y, n); }
float ck_dot_q5_1_q8_1_avx2(const void *x, const void *y, size_t n) { return ck_dot_q5_1_q8_1_scalar(x, y, n); }
float ck_dot_q8_0_q8_0_avx2(const void *x, const void *y, size_t n) { return ck_dot_q8_0_q8_0_scalar(x, y, n); }
float ck_dot_iq4_nl_q8_0_avx2(const void *x, const void *y, size_t n) { return ck_dot_iq4_nl_q8_0_scalar(x, y, n); }
float ck_dot_q4_0_q8_0_vnni(const void *x, const void *y, size_t n) { return ck_dot_q4_0_q8_0_scalar(x, y, n); }
float ck_dot_q4_1_q8_1_vnni(const void *x, const void *y, size_t n) { return ck_dot_q4_1_q8_1_scalar(x, y, n); }
float ck_dot_q5_0_q8_0_vnni(const void *x, const void *y, size_t n) { return ck_dot_q5_0_q8_0_scalar(x, y, n); }
float ck_dot_q5_1_q8_1_vnni(const void *x, const void *y, size_t n) { return ck_dot_q5_1_q8_1_scalar(x, y, n); }
float ck_dot_q8_0_q8_0_vnni(const void *x, const void *y, size_t n) { return ck_dot_q8_0_q8_0_scalar(x, y, n); }
float ck_dot_iq4_nl_q8_0_vnni(const void *x, const void *y, size_t n) { return ck_dot_iq4_nl_q8_0_scalar(x, y, n); }
ck_tile_fn ck_resolve_tile_avx2(int type) { (void)type; return NULL; }
ck_tile_fn ck_resolve_tile_vnni(int type) { (void)type; return NULL; }
ck_tok_fn ck_resolve_tok_vnni(int type) { (void)type; return NULL; }
float ck_dot_f16_f16_avx2(const void *x, const void *y, size_t n) { return ck_dot_f16_f16_scalar(x, y, n); }
float ck_dot_f32_avx2(const float *x, const float *y, size_t n) { return ck_dot_f32_scalar(x, y, n); }
void ck_quantize_q8_0_avx2(const float *x, void *y, size_t n) { ck_quantize_q8_0_scalar(x, y, n); }
void ck_quantize_q8_1_avx2(const float *x, void *y, size_t n) { ck_quantize_q8_1_scalar(x, y, n); }
void ck_fp16_to_fp32_row_avx2(const uint16_t *x, float *y, size_t n) { for (size_t i = 0; i < n; i++) y[i] = ck_fp16_to_fp32(x[i]); }
void ck_fp32_to_fp16_row_avx2(const float *x, uint16_t *y, size_t n) { for (size_t i = 0; i < n; i++) y[i] = ck_fp32_to_fp16(x[i]); }
#endif
