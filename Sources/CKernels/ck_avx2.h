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

/// Four rows' scale vectors as scales4 lays them out (block j's first value in lane 2j, its
/// second in lane 2j + 1), transposed per block: even[j] = (v0[2j], v1[2j], v2[2j], v3[2j]), odd[j]
/// the same of lanes 2j + 1.
CK_AVX2 static inline void transpose_pairs4(const __m256 v[4], __m128 even[4], __m128 odd[4]) {
    const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    const __m256 e02 = _mm256_shuffle_ps(t0, t2, 0x44), e13 = _mm256_shuffle_ps(t1, t3, 0x44);
    const __m256 o02 = _mm256_shuffle_ps(t0, t2, 0xEE), o13 = _mm256_shuffle_ps(t1, t3, 0xEE);
    even[0] = _mm256_castps256_ps128(e02);
    even[1] = _mm256_castps256_ps128(e13);
    even[2] = _mm256_extractf128_ps(e02, 1);
    even[3] = _mm256_extractf128_ps(e13, 1);
    odd[0] = _mm256_castps256_ps128(o02);
    odd[1] = _mm256_castps256_ps128(o13);
    odd[2] = _mm256_extractf128_ps(o02, 1);
    odd[3] = _mm256_extractf128_ps(o13, 1);
}

/// One fp16 value to float. vmovd + vcvtph2ps: no false dependency on a live register
/// (_cvtsh_ss inserts into one, which chained every block onto the previous FMA).
CK_AVX2 static inline float h2f(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

#endif
