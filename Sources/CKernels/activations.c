// Float activations: SiLU-gated products, attention's softmax and RoPE, with a vectorized exp.
//
// exp(x) uses the range reduction and polynomial of Arm's optimized-routines single-precision
// expf, in the form ggml's AVX-512 code evaluates it (ggml_v_expf): n = round(x / ln 2),
// b = x - n·ln 2 (in two parts), j = 1 + b·P(b) by FMAs, then j·2^n with one rounding; 0 or inf
// past |n| > 192. Max error about 1.5 ulp. Computing it, and everything around it, with the same
// operations as llama.cpp's CPU build keeps Verity's activations bit-identical to llama.cpp's.
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


void ck_silu_mul_scalar(float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const float g = gate[i];
        gate[i] = g / (1.0f + ck_expf_scalef(-g)) * up[i];
    }
}

/// exp(x) in the form of ggml's AVX-512 ggml_v_expf: j = 1 + b·P(b) with the 1 inside the last
/// FMA, then j·2^n (vscalefps, one rounding), 0 / inf past |n| > 192.
float ck_expf_scalef(float x) {
    const float z = fmaf(x, C_INVLN2, C_SHIFT);
    const float n = z - C_SHIFT;
    const float b = fmaf(-n, C_LN2LO, fmaf(-n, C_LN2HI, x));
    if (fabsf(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(C_P0, b, C_P1), u, fmaf(C_P2, b, C_P3)), u, fmaf(C_P4, b, 1.0f));
    return ldexpf(j, (int)n);
}

float ck_reduce16(const float v[16]) {
    float t[8], q[4];
    for (int i = 0; i < 8; i++) t[i] = v[i + 8] + v[i];
    for (int i = 0; i < 4; i++) q[i] = t[i + 4] + t[i];
    return (q[0] + q[2]) + (q[1] + q[3]);
}

// The chunk sums of exps already in x (cells lead..lead+n), in double.
static double cell_sums(const float *x, size_t n, size_t lead) {
    double sum = 0.0;
    for (size_t c0 = 0; c0 < lead + n; c0 += 16) {
        float v[16];
        for (size_t l = 0; l < 16; l++) {
            const size_t cell = c0 + l;
            v[l] = cell >= lead && cell - lead < n ? x[cell - lead] : 0.0f;
        }
        sum += (double)ck_reduce16(v);
    }
    return sum;
}

void ck_softmax_cells_scalar(float *x, size_t n, size_t lead) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    for (size_t i = 0; i < n; i++) x[i] = ck_expf_scalef(x[i] - m);
    const float inv = (float)(1.0 / cell_sums(x, n, lead));
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

#if defined(__x86_64__) || defined(__i386__)
#include "ck_avx2.h"

// ck_expf_scalef on 8 lanes: j·2^n as a product with 2^n built from its bits (exact scaling, one
// rounding, as vscalefps) while |n| <= 126; rarer lanes take the scalar twin.
CK_AVX2 static inline __m256 v_expf_scalef(__m256 x) {
    const __m256 r = _mm256_set1_ps(C_SHIFT);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(C_INVLN2), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(C_LN2LO), _mm256_fnmadd_ps(n, _mm256_set1_ps(C_LN2HI), x));
    const __m256 absn = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    if (_mm256_movemask_ps(_mm256_cmp_ps(absn, _mm256_set1_ps(126.0f), _CMP_GT_OQ))) {
        float xs[8], out[8];
        _mm256_storeu_ps(xs, x);
        for (int i = 0; i < 8; i++) out[i] = ck_expf_scalef(xs[i]);
        return _mm256_loadu_ps(out);
    }
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(C_P0), b, _mm256_set1_ps(C_P1)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(C_P2), b, _mm256_set1_ps(C_P3))),
        u, _mm256_fmadd_ps(_mm256_set1_ps(C_P4), b, _mm256_set1_ps(1.0f)));
    // 2^n: the low bits of z hold n (z = 1.5·2^23 + n), so (z << 23) + bits(1.0) = bits(2^n).
    const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1.0f))));
    return _mm256_mul_ps(j, k);
}

CK_AVX2 static void silu_mul_avx2(float *gate, const float *up, size_t n) {
    size_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = v_expf_scalef(_mm256_sub_ps(_mm256_setzero_ps(), g));
        const __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
    ck_silu_mul_scalar(gate + i, up + i, n - i);
}

CK_AVX2 static void softmax_cells_avx2(float *x, size_t n, size_t lead) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    const __m256 vm = _mm256_set1_ps(m);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, v_expf_scalef(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
    for (; i < n; i++) x[i] = ck_expf_scalef(x[i] - m);
    // Chunk sums: the chunks cut by either end go through the scalar twin's loop; whole chunks as
    // two 8-float halves, hsum_ps(hi + lo) being exactly ck_reduce16.
    double sum = 0.0;
    const size_t head = lead ? 16 - lead : 0, whole = head < n ? (n - head) / 16 : 0;
    if (head) sum += cell_sums(x, head < n ? head : n, lead);
    for (size_t c = 0; c < whole; c++) {
        const float *v = x + head + 16 * c;
        sum += (double)hsum_ps(_mm256_add_ps(_mm256_loadu_ps(v + 8), _mm256_loadu_ps(v)));
    }
    const size_t done = head + 16 * whole;
    if (done < n) sum += cell_sums(x + done, n - done, 0);
    const float invs = (float)(1.0 / sum);
    const __m256 inv = _mm256_set1_ps(invs);
    i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++) x[i] *= invs;
}
#endif

void ck_softmax_cells(float *x, size_t n, size_t lead) {
#if defined(__x86_64__) || defined(__i386__)
    if (ck_active_isa() >= CK_ISA_AVX2) { softmax_cells_avx2(x, n, lead); return; }
#endif
    ck_softmax_cells_scalar(x, n, lead);
}

void ck_silu_mul(float *gate, const float *up, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    if (ck_active_isa() >= CK_ISA_AVX2) { silu_mul_avx2(gate, up, n); return; }
#endif
    ck_silu_mul_scalar(gate, up, n);
}

// ---- rotary position embedding -----------------------------------------------------------------
// x0' = x0·cos − x1·sin and x1' = x0·sin + x1·cos with the FMAs GCC forms from ggml's rope (the
// first product fused, the second rounded): what llama.cpp computes, bit for bit.
#define CK_ROPE_BODY                                                                                 \
    for (size_t h = 0; h < heads; h++) {                                                             \
        float *v = x + h * head_dim;                                                                 \
        for (size_t i = 0; i < half; i++) {                                                          \
            const size_t a = i * stride;                                                             \
            const float x0 = v[a], x1 = v[a + offset];                                               \
            v[a] = fmaf(x0, cos[i], -(x1 * sin[i]));                                                 \
            v[a + offset] = fmaf(x0, sin[i], x1 * cos[i]);                                           \
        }                                                                                            \
    }

static void rope_generic(float *x, size_t heads, size_t head_dim, size_t half, size_t stride, size_t offset,
                         const float *cos, const float *sin) {
    CK_ROPE_BODY
}

#if defined(__x86_64__) || defined(__i386__)
CK_AVX2 static void rope_fma(float *x, size_t heads, size_t head_dim, size_t half, size_t stride, size_t offset,
                             const float *cos, const float *sin) {
    CK_ROPE_BODY
}
#endif

void ck_rope(float *x, size_t heads, size_t head_dim, size_t half, size_t stride, size_t offset, const float *cos,
             const float *sin) {
#if defined(__x86_64__) || defined(__i386__)
    if (ck_active_isa() >= CK_ISA_AVX2) { rope_fma(x, heads, head_dim, half, stride, offset, cos, sin); return; }
#endif
    rope_generic(x, heads, head_dim, half, stride, offset, cos, sin);
}
