// Matrix products over weights in their file format: rows of W split across the pool's threads,
// each row dotted with every (pre-quantized) activation row while it is hot in cache.
#include "ck_internal.h"

typedef float (*ck_dot_fn)(const void *, const void *, size_t);

static float dot_f32_adapter(const void *x, const void *y, size_t n) { return ck_dot_f32(x, y, n); }

static ck_dot_fn ck_resolve_dot(int type) {
    const int avx2 = ck_active_isa() >= CK_ISA_AVX2;
    if (avx2 && (ck_active_features() & CK_FEAT_AVXVNNI)) {
        switch (type) {
        case CK_Q4_0: return ck_dot_q4_0_q8_0_vnni;
        case CK_Q4_1: return ck_dot_q4_1_q8_1_vnni;
        case CK_Q5_0: return ck_dot_q5_0_q8_0_vnni;
        case CK_Q5_1: return ck_dot_q5_1_q8_1_vnni;
        case CK_Q8_0: return ck_dot_q8_0_q8_0_vnni;
        case CK_IQ4_NL: return ck_dot_iq4_nl_q8_0_vnni;
        default: break;
        }
    }
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

typedef struct { const ck_matmul_args *a; ck_dot_fn dot; ck_tile_fn tile; } ck_matmul_ctx;

// Tiles: 4 rows × 1 token for a single token (each activation block loaded once per 4 rows),
// 2 rows × 2 tokens otherwise (each weight block loaded once per 2 tokens); edges in smaller tiles.
static void ck_matmul_tiled(const ck_matmul_ctx *c, size_t r0, size_t r1) {
    const ck_matmul_args *a = c->a;
    const char *w = a->w;
    const char *act = a->act;
    const size_t nt = a->n_tokens;
    const int rb = nt == 1 ? 4 : 2;
    size_t r = r0;
    while (r < r1) {
        int nr = rb;
        while ((size_t)nr > r1 - r) nr /= 2;
        const char *row = w + r * a->w_row_bytes;
        size_t t = 0;
        for (; t + 2 <= nt; t += 2) {
            c->tile(nr, 2, row, a->w_row_bytes, act + t * a->act_row_bytes, a->act_row_bytes, a->cols,
                    a->out + t * a->ld_out + r, a->ld_out);
        }
        for (; t < nt; t++) {
            c->tile(nr, 1, row, a->w_row_bytes, act + t * a->act_row_bytes, a->act_row_bytes, a->cols,
                    a->out + t * a->ld_out + r, a->ld_out);
        }
        r += (size_t)nr;
    }
}

static void ck_matmul_task(void *p, int ith, int nth) {
    const ck_matmul_ctx *c = p;
    const ck_matmul_args *a = c->a;
    // Split rows in multiples of 4 so that tiles stay whole.
    const size_t per = ((a->rows + (size_t)nth - 1) / (size_t)nth + 3) & ~(size_t)3;
    const size_t r0 = per * (size_t)ith < a->rows ? per * (size_t)ith : a->rows;
    const size_t r1 = r0 + per < a->rows ? r0 + per : a->rows;
    if (c->tile) { ck_matmul_tiled(c, r0, r1); return; }
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
    ck_matmul_ctx ctx = { args, dot, ck_resolve_tile(args->type) };
    if (!pool || args->rows * args->n_tokens < 64) {
        ck_matmul_task(&ctx, 0, 1);
    } else {
        ck_pool_run(pool, ck_matmul_task, &ctx);
    }
    return 0;
}
