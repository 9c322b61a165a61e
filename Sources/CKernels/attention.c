// Attention's half-precision dot products in bulk: a few vectors (the queries of one KV group, or
// their probabilities) against many rows (keys, or value dimensions). Rows are taken 4 at a time
// and every vector passes over them while they are in L1, so a KV head's cache is read once for
// all the query heads sharing it.
//
// Every result has the operations of llama.cpp's tinyBLAS F16 kernel (its non-flash attention on
// CPU): 16 float lanes, lane l accumulating products k ≡ l (mod 16) by FMA in k order, then the
// lanes summed as _mm512_reduce_add_ps does (ck_reduce16). Past `valid` a row reads as zeros, past
// n both sides do, so a product with zero is exact and a chunk may end early. On AVX2 the 16 lanes
// are two 8-float vectors (a0: lanes 0..7, a1: 8..15) and hsum_ps(a0 + a1) is the same reduction.
#include "ck_internal.h"
#include <pthread.h>
#include <stdlib.h>

// Halves k0..k0+15 of a row (zeros from `valid` on) into out; the fast paths load directly.
static inline void ck_f16_chunk16(const uint16_t *row, size_t k0, size_t valid, uint16_t out[16]) {
    for (size_t l = 0; l < 16; l++) out[l] = k0 + l < valid ? row[k0 + l] : 0;
}

void ck_dot_f16_rows_scalar(const uint16_t *rows, size_t stride, size_t count, size_t valid, const uint16_t *vs,
                            size_t v_stride, size_t m, size_t n, float *out, size_t ld_out) {
    if (valid > n) valid = n;
    for (size_t vi = 0; vi < m; vi++)
        for (size_t i = 0; i < count; i++) {
            const uint16_t *x = rows + i * stride, *v = vs + vi * v_stride;
            float acc[16] = { 0 };
            for (size_t k0 = 0; k0 < n; k0 += 16) {
                uint16_t xc[16], vc[16];
                ck_f16_chunk16(x, k0, valid, xc);
                ck_f16_chunk16(v, k0, n, vc);
                for (int l = 0; l < 16; l++) acc[l] = fmaf(ck_fp16_to_fp32(xc[l]), ck_fp16_to_fp32(vc[l]), acc[l]);
            }
            out[vi * ld_out + i] = ck_reduce16(acc);
        }
}

#if defined(__x86_64__) || defined(__i386__)
#include "ck_avx2.h"

// Elements of the 4 rows converted to float at a time (4 × 256 floats = 4 KiB, in L1).
#define CK_F16_CHUNK 256
// Most vectors whose accumulators the chunked path keeps (a KV group's query heads); more take the
// plain path.
#define CK_F16_MAXV 16

// 16 halves at k0 as two 8-float vectors; a chunk that crosses `valid` goes through a zeroed copy.
CK_AVX2 static inline void ck_load16(const uint16_t *row, size_t k0, size_t valid, __m256 *lo, __m256 *hi) {
    if (k0 + 16 <= valid) {
        *lo = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + k0)));
        *hi = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + k0 + 8)));
        return;
    }
    uint16_t c[16];
    ck_f16_chunk16(row, k0, valid, c);
    *lo = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)c));
    *hi = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(c + 8)));
}

// The plain path: every vector converts the rows again (used for one vector, many, or short rows).
CK_AVX2 static void f16_rows_plain(const uint16_t *rows, size_t stride, size_t count, size_t valid, const uint16_t *vs,
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
        for (size_t k = 0; k < n; k += 16) {
            __m256 v0, v1;
            ck_load16(v, k, n, &v0, &v1);
            for (int r = 0; r < nr; r++) {
                __m256 x0, x1;
                ck_load16(x[r], k, valid, &x0, &x1);
                a0[r] = _mm256_fmadd_ps(x0, v0, a0[r]);
                a1[r] = _mm256_fmadd_ps(x1, v1, a1[r]);
            }
        }
        for (int r = 0; r < nr; r++) out[i + (size_t)r] = hsum_ps(_mm256_add_ps(a0[r], a1[r]));
    }
}

// One chunk of nr (1..4) float rows against one float vector, 16 elements a step.
__attribute__((always_inline)) CK_AVX2 static inline void f16_chunk(const int nr, const float (*xf)[CK_F16_CHUNK],
                                                                 const float *v, size_t len, __m256 (*acc)[2]) {
    __m256 a0[4], a1[4];
    for (int r = 0; r < nr; r++) { a0[r] = acc[r][0]; a1[r] = acc[r][1]; }
    for (size_t k = 0; k < len; k += 16) {
        const __m256 v0 = _mm256_load_ps(v + k), v1 = _mm256_load_ps(v + k + 8);
        for (int r = 0; r < nr; r++) {
            a0[r] = _mm256_fmadd_ps(_mm256_load_ps(xf[r] + k), v0, a0[r]);
            a1[r] = _mm256_fmadd_ps(_mm256_load_ps(xf[r] + k + 8), v1, a1[r]);
        }
    }
    for (int r = 0; r < nr; r++) { acc[r][0] = a0[r]; acc[r][1] = a1[r]; }
}

// Each thread's float copy of the vectors, grown as needed (at most CK_F16_MAXV × the longest
// row) and freed when the thread exits (a pthread key's destructor).
static _Thread_local float *f16_vectors;
static _Thread_local size_t f16_vectors_cap;
static pthread_key_t f16_vectors_key;
static pthread_once_t f16_vectors_once = PTHREAD_ONCE_INIT;
static void f16_vectors_make_key(void) { pthread_key_create(&f16_vectors_key, free); }

// The plain path's operations, with the vectors converted to float once per call and each row
// chunk once for all vectors: conversions, not FMAs, bound the plain path (10 vcvtph2ps per
// 8 FMAs with 4 vectors). Halves are exact in float, so the results are bit-identical.
CK_AVX2 static void f16_rows_avx2(const uint16_t *rows, size_t stride, size_t count, size_t valid, const uint16_t *vs,
                                  size_t v_stride, size_t m, size_t n, float *outs, size_t ld_out) {
    const size_t n16 = (n + 15) & ~(size_t)15;
    if (m < 2 || m > CK_F16_MAXV || n < 64) { f16_rows_plain(rows, stride, count, valid, vs, v_stride, m, n, outs, ld_out); return; }
    if (m * n16 > f16_vectors_cap) {
        free(f16_vectors);
        f16_vectors_cap = 0;
        f16_vectors = aligned_alloc(32, m * n16 * sizeof(float));
        pthread_once(&f16_vectors_once, f16_vectors_make_key);
        pthread_setspecific(f16_vectors_key, f16_vectors);
        if (!f16_vectors) { f16_rows_plain(rows, stride, count, valid, vs, v_stride, m, n, outs, ld_out); return; }
        f16_vectors_cap = m * n16;
    }
    float *vf = f16_vectors;
    for (size_t vi = 0; vi < m; vi++)
        for (size_t k = 0; k < n16; k += 16) {
            __m256 lo, hi;
            ck_load16(vs + vi * v_stride, k, n, &lo, &hi);
            _mm256_store_ps(vf + vi * n16 + k, lo);
            _mm256_store_ps(vf + vi * n16 + k + 8, hi);
        }
    float xf[4][CK_F16_CHUNK] __attribute__((aligned(32)));
    __m256 acc[CK_F16_MAXV][4][2];
    for (size_t i = 0; i < count; i += 4) {
        const int nr = count - i < 4 ? (int)(count - i) : 4;
        const uint16_t *x[4];
        for (int r = 0; r < nr; r++) x[r] = rows + (i + (size_t)r) * stride;
        for (size_t vi = 0; vi < m; vi++)
            for (int r = 0; r < nr; r++) acc[vi][r][0] = acc[vi][r][1] = _mm256_setzero_ps();
        for (size_t k0 = 0; k0 < n16; k0 += CK_F16_CHUNK) {
            const size_t len = n16 - k0 < CK_F16_CHUNK ? n16 - k0 : CK_F16_CHUNK;
            for (int r = 0; r < nr; r++)
                for (size_t k = 0; k < len; k += 16) {
                    __m256 lo, hi;
                    ck_load16(x[r], k0 + k, valid, &lo, &hi);
                    _mm256_store_ps(xf[r] + k, lo);
                    _mm256_store_ps(xf[r] + k + 8, hi);
                }
            for (size_t vi = 0; vi < m; vi++) {
                if (nr == 4) f16_chunk(4, (const float (*)[CK_F16_CHUNK])xf, vf + vi * n16 + k0, len, acc[vi]);
                else f16_chunk(nr, (const float (*)[CK_F16_CHUNK])xf, vf + vi * n16 + k0, len, acc[vi]);
            }
        }
        for (size_t vi = 0; vi < m; vi++)
            for (int r = 0; r < nr; r++) outs[vi * ld_out + i + (size_t)r] = hsum_ps(_mm256_add_ps(acc[vi][r][0], acc[vi][r][1]));
    }
}
#endif

void ck_dot_f16_rows(const uint16_t *rows, size_t stride, size_t count, size_t valid, const uint16_t *vs, size_t v_stride,
                     size_t m, size_t n, float *out, size_t ld_out) {
    if (valid > n) valid = n;
#if defined(__x86_64__) || defined(__i386__)
    if (ck_active_isa() >= CK_ISA_AVX2) { f16_rows_avx2(rows, stride, count, valid, vs, v_stride, m, n, out, ld_out); return; }
#endif
    ck_dot_f16_rows_scalar(rows, stride, count, valid, vs, v_stride, m, n, out, ld_out);
}
