// ck_matmul harness: times SmolLM2-135M shapes (n_tokens 1, 8, 16, 64, 13; the minimum of repeated calls)
// and checks that batched results equal n_tokens = 1 results bit for bit (exit 1 otherwise).
// Usage: matmul_bench [threads=2] [seconds per case=0.3] [shape filter]
#include "ckernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
static uint64_t rs = 88172645463325252ull;
static uint32_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (uint32_t)rs; }
static float frnd(void) { return (rnd() >> 8) / 16777216.0f * 2 - 1; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
// Byte offset of a block's fp16 scale (d) and of its second fp16 (m or dmin; -1: none).
static void scale_offsets(int type, int *d, int *m) {
    *m = -1;
    switch (type) {
    case CK_Q4_1: case CK_Q5_1: *d = 0; *m = 2; break;
    case CK_Q2_K: *d = 80; *m = 82; break;
    case CK_Q3_K: *d = 108; break;
    case CK_Q4_K: case CK_Q5_K: *d = 0; *m = 2; break;
    case CK_Q6_K: *d = 208; break;
    default: *d = 0; break; // Q4_0, Q5_0, Q8_0, IQ4_NL, IQ4_XS
    }
}
// Random blocks: scales sane fp16, quants random.
static void *mkw(int type, size_t rows, size_t cols) {
    size_t rb = ck_row_bytes(type, cols), nb = cols / (size_t)ck_block_size(type), bb = ck_block_bytes(type);
    int od, om;
    scale_offsets(type, &od, &om);
    const float dscale = ck_block_size(type) == 256 ? 0.0005f : 0.01f;
    uint8_t *w = aligned_alloc(64, (rows * rb + 63) / 64 * 64);
    for (size_t i = 0; i < rows * rb; i++) w[i] = (uint8_t)rnd();
    for (size_t r = 0; r < rows; r++)
        for (size_t b = 0; b < nb; b++) {
            uint8_t *p = w + r * rb + b * bb;
            uint16_t d = ck_fp32_to_fp16(dscale * (0.1f + frnd() + 1)), m = ck_fp32_to_fp16(om == 2 && type <= CK_Q5_1 ? 0.05f * frnd() : dscale * (frnd() + 1));
            memcpy(p + od, &d, 2);
            if (om >= 0) memcpy(p + om, &m, 2);
            if (type == CK_Q8_0) for (int j = 0; j < 32; j++) if (p[2 + j] == 0x80) p[2 + j] = 0x81;
        }
    return w;
}
int main(int argc, char **argv) {
    int nth = argc > 1 ? atoi(argv[1]) : 2;
    double tmin = argc > 2 ? atof(argv[2]) : 0.3;
    const char *only = argc > 3 ? argv[3] : NULL;
    ck_pool *pool = ck_pool_create(nth);
    struct { const char *name; int type; size_t rows, cols; } M[] = {
        { "q4_1 576x576", CK_Q4_1, 576, 576 }, { "q4_1 192x576", CK_Q4_1, 192, 576 },
        { "q4_1 1536x576", CK_Q4_1, 1536, 576 }, { "q4_1 576x1536", CK_Q4_1, 576, 1536 },
        { "q8_0 49152x576", CK_Q8_0, 49152, 576 },
        { "q4_0 1536x576", CK_Q4_0, 1536, 576 }, { "q5_0 1536x576", CK_Q5_0, 1536, 576 },
        { "q5_1 1536x576", CK_Q5_1, 1536, 576 }, { "iq4_nl 1536x576", CK_IQ4_NL, 1536, 576 },
        { "q8_0 1536x576", CK_Q8_0, 1536, 576 },
        { "q2_K 576x1536", CK_Q2_K, 576, 1536 }, { "q3_K 576x1536", CK_Q3_K, 576, 1536 },
        { "q4_K 576x1536", CK_Q4_K, 576, 1536 }, { "q5_K 576x1536", CK_Q5_K, 576, 1536 },
        { "q6_K 576x1536", CK_Q6_K, 576, 1536 }, { "iq4_xs 576x1536", CK_IQ4_XS, 576, 1536 },
    };
    size_t NT[] = { 1, 8, 16, 64, 13 };
    printf("isa %d features %d threads %d\n", ck_active_isa(), ck_active_features(), nth);
    int bad = 0;
    for (size_t m = 0; m < sizeof M / sizeof M[0]; m++) {
        if (only && !strstr(M[m].name, only)) continue;
        size_t rows = M[m].rows, cols = M[m].cols;
        int at = ck_vec_dot_type(M[m].type);
        void *w = mkw(M[m].type, rows, cols);
        size_t arb = ck_row_bytes(at, cols);
        float *x = malloc(64 * cols * 4);
        for (size_t i = 0; i < 64 * cols; i++) x[i] = frnd();
        uint8_t *act = malloc(64 * arb);
        for (int t = 0; t < 64; t++) ck_quantize_row(at, x + t * cols, act + t * arb, cols);
        float *out = malloc(64 * rows * 4), *ref = malloc(64 * rows * 4);
        // Reference: each token alone (n_tokens = 1), and the scalar dot.
        for (int t = 0; t < 64; t++) {
            ck_matmul_args a = { M[m].type, w, ck_row_bytes(M[m].type, cols), rows, cols, act + t * arb, arb, 1, ref + t * rows, rows };
            ck_matmul(pool, &a);
        }
        double maxrel = 0;
        for (int t = 0; t < 64; t += 7)
            for (size_t r = 0; r < rows; r += 13) {
                float s = ck_vec_dot_scalar(M[m].type, (uint8_t *)w + r * ck_row_bytes(M[m].type, cols), act + t * arb, cols);
                float v = ck_vec_dot(M[m].type, (uint8_t *)w + r * ck_row_bytes(M[m].type, cols), act + t * arb, cols);
                if (memcmp(&v, &ref[t * rows + r], 4)) { bad++; if (bad < 5) printf("  DOT MISMATCH t%d r%zu\n", t, r); }
                double e = fabs(s - ref[t * rows + r]) / (fabs(s) + 1e-3);
                if (e > maxrel) maxrel = e;
            }
        printf("%-16s maxrel vs scalar %.2e\n", M[m].name, maxrel);
        for (size_t k = 0; k < sizeof NT / sizeof NT[0]; k++) {
            size_t nt = NT[k];
            ck_matmul_args a = { M[m].type, w, ck_row_bytes(M[m].type, cols), rows, cols, act, arb, nt, out, rows };
            memset(out, 0xff, 64 * rows * 4);
            ck_matmul(pool, &a);
            if (memcmp(out, ref, nt * rows * 4)) { bad++; printf("  BIT MISMATCH nt=%zu\n", nt); }
            double t0 = now(), s = 1e9;
            do { double c0 = now(); ck_matmul(pool, &a); double c1 = now(); if (c1 - c0 < s) s = c1 - c0; } while (now() - t0 < tmin);
            printf("  nt=%-3zu %9.1f us  %7.1f GMAC/s  %9.0f tok/s\n", nt, s * 1e6, rows * cols * nt / s * 1e-9, nt / s);
        }
        free(w); free(x); free(act); free(out); free(ref);
    }
    printf(bad ? "FAILURES %d\n" : "all bit-identical\n", bad);
    ck_pool_destroy(pool);
    return bad != 0;
}
