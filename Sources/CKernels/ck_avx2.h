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

/// Sum of the 8 int32 lanes (exact while it fits).
CK_AVX2 static inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/// The sums of the 8 int32 lanes of each of v0..v3 (exact while they fit), as 4 lanes.
CK_AVX2 static inline __m128i hsum4_epi32(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/// One fp16 value to float. vmovd + vcvtph2ps: no false dependency on a live register
/// (_cvtsh_ss inserts into one, which chained every block onto the previous FMA).
CK_AVX2 static inline float h2f(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

#endif
