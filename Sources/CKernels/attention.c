// Attention's half-precision dot products in bulk: a few vectors (the queries of one KV group, or
// their probabilities) against many rows (keys, or value dimensions). Rows are taken 4 at a time
// and every vector passes over them while they are in L1, so a KV head's cache is read once for
// all the query heads sharing it. Each result is computed with exactly the operations of
// ck_dot_f16_f16_avx2, in the same order, so it is bit-identical to calling that per row.
#include "ck_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include "ck_avx2.h"

CK_AVX2 static void f16_rows_avx2(const uint16_t *rows, size_t stride, size_t count, const uint16_t *vs,
                                  size_t v_stride, size_t m, size_t n, float *outs, size_t ld_out) {
    for (size_t i = 0; i < count; i += 4)
    for (size_t vi = 0; vi < m; vi++) {
        const uint16_t *v = vs + vi * v_stride;
        float *out = outs + vi * ld_out;
        const int nr = count - i < 4 ? (int)(count - i) : 4;
        const uint16_t *x[4];
        __m256 a0[4], a1[4];
        for (int r = 0; r < nr; r++) {
            x[r] = rows + (i + (size_t)r) * stride;
            a0[r] = _mm256_setzero_ps();
            a1[r] = _mm256_setzero_ps();
        }
        size_t k = 0;
        for (; k + 16 <= n; k += 16) {
            const __m256 v0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + k)));
            const __m256 v1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + k + 8)));
            for (int r = 0; r < nr; r++) {
                a0[r] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x[r] + k))), v0, a0[r]);
                a1[r] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x[r] + k + 8))), v1, a1[r]);
            }
        }
        const size_t k8 = k;
        for (int r = 0; r < nr; r++) {
            size_t j = k8;
            for (; j + 8 <= n; j += 8) {
                a0[r] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x[r] + j))),
                                        _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + j))), a0[r]);
            }
            float sum = hsum_ps(_mm256_add_ps(a0[r], a1[r]));
            for (; j < n; j++) sum += h2f(x[r][j]) * h2f(v[j]);
            out[i + (size_t)r] = sum;
        }
    }
}
#endif

void ck_dot_f16_rows(const uint16_t *rows, size_t stride, size_t count, const uint16_t *vs, size_t v_stride, size_t m,
                     size_t n, float *out, size_t ld_out) {
#if defined(__x86_64__) || defined(__i386__)
    if (ck_active_isa() >= CK_ISA_AVX2) { f16_rows_avx2(rows, stride, count, vs, v_stride, m, n, out, ld_out); return; }
#endif
    for (size_t vi = 0; vi < m; vi++)
        for (size_t i = 0; i < count; i++) out[vi * ld_out + i] = ck_vec_dot(CK_F16, rows + i * stride, vs + vi * v_stride, n);
}
