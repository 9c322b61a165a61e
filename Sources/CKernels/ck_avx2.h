// Small AVX2 helpers shared by the x86 kernel files. Only included inside
// `#if defined(__x86_64__) || defined(__i386__)`; every function carries the AVX2 target attribute.
#ifndef CK_AVX2_H
#define CK_AVX2_H
#include <immintrin.h>

#define CK_AVX2 __attribute__((target("avx2,fma,f16c")))

/// Sum of the 8 float lanes.
CK_AVX2 static inline float hsum_ps(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/// One fp16 value to float. vmovd + vcvtph2ps: no false dependency on a live register
/// (_cvtsh_ss inserts into one, which chained every block onto the previous FMA).
CK_AVX2 static inline float h2f(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

#endif
