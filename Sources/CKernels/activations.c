// Float activations: SiLU-gated products and softmax, with a vectorized exp.
//
// exp(x) uses the range reduction and polynomial of Arm's optimized-routines single-precision
// expf (also what ggml uses): n = round(x / ln 2), r = x - n·ln 2 (in two parts), exp(r) by a
// degree-5 polynomial, scaled by 2^n. Max error about 1.5 ulp; |x| > 126·ln 2 takes the careful
// path (overflow to inf, underflow to 0). Using the same algorithm as llama.cpp keeps Verity's
// activations bit-identical to llama.cpp's where it matters (every SiLU of every layer).
#include "ck_internal.h"

#define C_SHIFT 0x1.8p23f
#define C_INVLN2 0x1.715476p+0f
#define C_LN2HI 0x1.62e4p-1f
#define C_LN2LO 0x1.7f7d1cp-20f
#define C_P0 0x1.0e4020p-7f
#define C_P1 0x1.573e2ep-5f
#define C_P2 0x1.555e66p-3f
#define C_P3 0x1.fffdb6p-2f
#define C_P4 0x1.ffffecp-1f

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/// Scalar twin of the vector exp: same operations, same roundings (fmaf for each fused step).
float ck_expf_poly(float x) {
    const float z = fmaf(x, C_INVLN2, C_SHIFT);
    const float n = z - C_SHIFT;
    const float b = fmaf(-n, C_LN2LO, fmaf(-n, C_LN2HI, x));
    const uint32_t e = f2u(z) << 23;
    const float k = u2f(e + f2u(1.0f));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(C_P0, b, C_P1), u, fmaf(C_P2, b, C_P3)), u, C_P4 * b);
    if (!(fabsf(n) > 126.0f)) return fmaf(j, k, k);
    const uint32_t g = (n <= 0.0f) ? 0x82000000u : 0u;
    const float s1 = u2f(g + 0x7f000000u);
    const float s2 = u2f(e - g);
    if (fabsf(n) > 192.0f) return s1 * s1;
    return fmaf(s2, j, s2) * s1;
}

void ck_silu_mul_scalar(float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const float g = gate[i];
        gate[i] = g / (1.0f + ck_expf_poly(-g)) * up[i];
    }
}

double ck_softmax_scalar(float *x, size_t n) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float v = ck_expf_poly(x[i] - m);
        x[i] = v;
        sum += (double)v;
    }
    const float inv = (float)(1.0 / sum);
    for (size_t i = 0; i < n; i++) x[i] *= inv;
    return sum;
}

#if defined(__x86_64__) || defined(__i386__)
#include "ck_avx2.h"

CK_AVX2 static inline __m256 v_expf(__m256 x) {
    const __m256 r = _mm256_set1_ps(C_SHIFT);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(C_INVLN2), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(C_LN2LO), _mm256_fnmadd_ps(n, _mm256_set1_ps(C_LN2HI), x));
    const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1.0f))));
    const __m256 absn = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    const __m256 big = _mm256_cmp_ps(absn, _mm256_set1_ps(126.0f), _CMP_GT_OQ);
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(C_P0), b, _mm256_set1_ps(C_P1)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(C_P2), b, _mm256_set1_ps(C_P3))),
        u, _mm256_mul_ps(_mm256_set1_ps(C_P4), b));
    if (!_mm256_movemask_ps(big)) return _mm256_fmadd_ps(j, k, k);
    // Rare: lanes near overflow/underflow; the scalar twin handles them exactly the same way.
    float xs[8], out[8];
    _mm256_storeu_ps(xs, x);
    for (int i = 0; i < 8; i++) out[i] = ck_expf_poly(xs[i]);
    return _mm256_loadu_ps(out);
}

CK_AVX2 static void silu_mul_avx2(float *gate, const float *up, size_t n) {
    size_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = v_expf(_mm256_sub_ps(_mm256_setzero_ps(), g));
        const __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
    ck_silu_mul_scalar(gate + i, up + i, n - i);
}

CK_AVX2 static double softmax_avx2(float *x, size_t n) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    double sum = 0.0;
    size_t i = 0;
    const __m256 vm = _mm256_set1_ps(m);
    for (; i + 8 <= n; i += 8) {
        const __m256 v = v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, v);
        __m128 s = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        sum += (double)_mm_cvtss_f32(s);
    }
    for (; i < n; i++) {
        const float v = ck_expf_poly(x[i] - m);
        x[i] = v;
        sum += (double)v;
    }
    const __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
    i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    const float invs = (float)(1.0 / sum);
    for (; i < n; i++) x[i] *= invs;
    return sum;
}
#endif

void ck_silu_mul(float *gate, const float *up, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    if (ck_active_isa() >= CK_ISA_AVX2) { silu_mul_avx2(gate, up, n); return; }
#endif
    ck_silu_mul_scalar(gate, up, n);
}

void ck_softmax(float *x, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    if (ck_active_isa() >= CK_ISA_AVX2) { softmax_avx2(x, n); return; }
#endif
    ck_softmax_scalar(x, n);
}
