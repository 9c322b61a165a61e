// Matrix products over weights in their file format: rows of W split across the pool's threads,
// each row dotted with every (pre-quantized) activation row while it is hot in cache.
#include "ck_internal.h"

typedef float (*ck_dot_fn)(const void *, const void *, size_t);

static float dot_f32_adapter(const void *x, const void *y, size_t n) { return ck_dot_f32(x, y, n); }

static ck_dot_fn ck_resolve_dot(int type) {
    const int avx2 = ck_active_isa() >= CK_ISA_AVX2;
    switch (type) {
    case CK_F32: return dot_f32_adapter;
    case CK_F16: return avx2 ? ck_dot_f16_f16_avx2 : ck_dot_f16_f16_scalar;
    case CK_BF16: return ck_dot_bf16_bf16_scalar;
    case CK_Q4_0: return avx2 ? ck_dot_q4_0_q8_0_avx2 : ck_dot_q4_0_q8_0_scalar;
    case CK_Q4_1: return avx2 ? ck_dot_q4_1_q8_1_avx2 : ck_dot_q4_1_q8_1_scalar;
    case CK_Q5_0: return avx2 ? ck_dot_q5_0_q8_0_avx2 : ck_dot_q5_0_q8_0_scalar;
    case CK_Q5_1: return avx2 ? ck_dot_q5_1_q8_1_avx2 : ck_dot_q5_1_q8_1_scalar;
    case CK_Q8_0: return avx2 ? ck_dot_q8_0_q8_0_avx2 : ck_dot_q8_0_q8_0_scalar;
    case CK_Q2_K: return avx2 ? ck_dot_q2_K_q8_K_avx2 : ck_dot_q2_K_q8_K_scalar;
    case CK_Q3_K: return avx2 ? ck_dot_q3_K_q8_K_avx2 : ck_dot_q3_K_q8_K_scalar;
    case CK_Q4_K: return avx2 ? ck_dot_q4_K_q8_K_avx2 : ck_dot_q4_K_q8_K_scalar;
    case CK_Q5_K: return avx2 ? ck_dot_q5_K_q8_K_avx2 : ck_dot_q5_K_q8_K_scalar;
    case CK_Q6_K: return avx2 ? ck_dot_q6_K_q8_K_avx2 : ck_dot_q6_K_q8_K_scalar;
    case CK_IQ4_NL: return avx2 ? ck_dot_iq4_nl_q8_0_avx2 : ck_dot_iq4_nl_q8_0_scalar;
    case CK_IQ4_XS: return avx2 ? ck_dot_iq4_xs_q8_K_avx2 : ck_dot_iq4_xs_q8_K_scalar;
    default: return NULL;
    }
}

typedef struct { const ck_matmul_args *a; ck_dot_fn dot; } ck_matmul_ctx;

static void ck_matmul_task(void *p, int ith, int nth) {
    const ck_matmul_ctx *c = p;
    const ck_matmul_args *a = c->a;
    const size_t per = (a->rows + (size_t)nth - 1) / (size_t)nth;
    const size_t r0 = per * (size_t)ith;
    const size_t r1 = r0 + per < a->rows ? r0 + per : a->rows;
    const char *w = a->w;
    const char *act = a->act;
    for (size_t r = r0; r < r1; r++) {
        const void *row = w + r * a->w_row_bytes;
        for (size_t t = 0; t < a->n_tokens; t++) {
            a->out[t * a->ld_out + r] = c->dot(row, act + t * a->act_row_bytes, a->cols);
        }
    }
}

int ck_matmul(ck_pool *pool, const ck_matmul_args *args) {
    ck_dot_fn dot = ck_resolve_dot(args->type);
    if (!dot) return -1;
    ck_matmul_ctx ctx = { args, dot };
    if (!pool || args->rows * args->n_tokens < 64) {
        ck_matmul_task(&ctx, 0, 1);
    } else {
        ck_pool_run(pool, ck_matmul_task, &ctx);
    }
    return 0;
}
