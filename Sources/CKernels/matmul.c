// Matrix products over weights in their file format: rows of W split across the pool's threads,
// each row dotted with every (pre-quantized) activation row while it is hot in cache.
#include "ck_internal.h"
#include <stdlib.h>

// From this many tokens the packed-token kernels (VNNI) beat one row tile per token.
#ifndef CK_TOK_MIN
#define CK_TOK_MIN 3
#endif

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
        case CK_Q4_K: return ck_dot_q4_K_q8_K_vnni;
        case CK_Q6_K: return ck_dot_q6_K_q8_K_vnni;
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

typedef struct {
    const ck_matmul_args *a;
    ck_dot_fn dot;
    ck_tile_fn tile;
    ck_tok_fn tok;
    const uint8_t *pk; // activations packed for tok, groups of 8 tokens
    size_t groups;
    size_t pack_bytes; // per block and group: CK_PACK_BYTES, or CK_PACKK_BYTES for the K-quants
    size_t chunk;      // rows per work item
} ck_matmul_ctx;

// Packs Q8_0 / Q8_1 activation rows for the ck_tok_fn kernels of weight type wtype (layout: see
// CK_PACK_BYTES); tokens past n_tokens in the last group are zeros.
static void ck_pack_act(int wtype, const ck_matmul_args *a, size_t groups, uint8_t *pk) {
    const int q81 = ck_vec_dot_type(wtype) == CK_Q8_1;
    const size_t yb = q81 ? sizeof(ck_block_q8_1) : sizeof(ck_block_q8_0), yoff = q81 ? 4 : 2;
    const int off = ck_u_offset(wtype);
    const size_t nb = a->cols / CK_QK;
    memset(pk, 0, nb * groups * CK_PACK_BYTES);
    for (size_t t = 0; t < a->n_tokens; t++) {
        const uint8_t *row = (const uint8_t *)a->act + t * a->act_row_bytes;
        const size_t g = t / 8, i = t % 8;
        for (size_t b = 0; b < nb; b++) {
            const uint8_t *blk = row + b * yb;
            uint8_t *p = pk + (b * groups + g) * CK_PACK_BYTES;
            uint16_t h[2];
            memcpy(h, blk, 4);
            const float d = ck_fp16_to_fp32(h[0]), s = q81 ? ck_fp16_to_fp32(h[1]) : 0.0f;
            for (int k = 0; k < 8; k++) {
                memcpy(p + 32 * k + 4 * i, blk + yoff + 4 * k, 4);
                int32_t sk = 0;
                for (int j = 4 * k; j < 4 * k + 4; j++) sk += (int8_t)blk[yoff + j];
                const int32_t kcorr = -off * sk;
                memcpy(p + CK_PACK_KCORR + 32 * k + 4 * i, &kcorr, 4);
            }
            memcpy(p + CK_PACK_D + 4 * i, &d, 4);
            memcpy(p + CK_PACK_S + 4 * i, &s, 4);
        }
    }
}

// Packs Q8_K activation rows for the K-quant ck_tok_fn kernels (layout: see CK_PACKK_BYTES);
// tokens past n_tokens in the last group are zeros.
static void ck_pack_act_k(const ck_matmul_args *a, size_t groups, uint8_t *pk) {
    const size_t nb = a->cols / CK_QK_K;
    memset(pk, 0, nb * groups * CK_PACKK_BYTES);
    for (size_t t = 0; t < a->n_tokens; t++) {
        const ck_block_q8_K *row = (const ck_block_q8_K *)((const uint8_t *)a->act + t * a->act_row_bytes);
        const size_t g = t / 8, i = t % 8;
        for (size_t b = 0; b < nb; b++) {
            const ck_block_q8_K *blk = &row[b];
            uint8_t *p = pk + (b * groups + g) * CK_PACKK_BYTES;
            for (int k = 0; k < CK_QK_K / 4; k++) memcpy(p + 32 * k + 4 * i, blk->qs + 4 * k, 4);
            memcpy(p + CK_PACKK_D + 4 * i, &blk->d, 4);
            for (int q = 0; q < 8; q++) memcpy(p + CK_PACKK_BS + 32 * q + 4 * i, &blk->bsums[2 * q], 4);
            for (int q = 0; q < 4; q++) {
                const int16_t ys[2] = { (int16_t)(blk->bsums[4 * q] + blk->bsums[4 * q + 1]),
                                        (int16_t)(blk->bsums[4 * q + 2] + blk->bsums[4 * q + 3]) };
                memcpy(p + CK_PACKK_YS + 32 * q + 4 * i, ys, 4);
            }
        }
    }
}

// Packed tokens: tiles of 4 rows × 16 tokens (each weight dword meets 8 tokens per vpdpbusd; the
// weight rows stay in L1 while every token group passes), edges in smaller tiles.
static void ck_matmul_tok(const ck_matmul_ctx *c, size_t r0, size_t r1) {
    const ck_matmul_args *a = c->a;
    const char *w = a->w;
    const size_t pstride = c->groups * c->pack_bytes;
    for (size_t r = r0; r < r1; r += 4) {
        const int nr = r1 - r < 4 ? (int)(r1 - r) : 4;
        const char *row = w + r * a->w_row_bytes;
        for (size_t g = 0; g < c->groups; g += 2) {
            const int ng = c->groups - g < 2 ? 1 : 2;
            const size_t t0 = g * 8;
            const int nt = a->n_tokens - t0 < (size_t)ng * 8 ? (int)(a->n_tokens - t0) : ng * 8;
            c->tok(nr, ng, row, a->w_row_bytes, c->pk + g * c->pack_bytes, pstride, a->cols, nt,
                   a->out + t0 * a->ld_out + r, a->ld_out);
        }
    }
}

// Tiles: 4 rows × 1 token for a single token (each activation block loaded once per 4 rows),
// 2 rows × 2 tokens otherwise (each weight block loaded once per 2 tokens; the VNNI row kernels
// take one token, so there every token gets its own 4 × 1 tiles); edges in smaller tiles.
static void ck_matmul_tiled(const ck_matmul_ctx *c, size_t r0, size_t r1) {
    const ck_matmul_args *a = c->a;
    const char *w = a->w;
    const char *act = a->act;
    const size_t nt = a->n_tokens;
    const int tt = c->tok ? 1 : 2;
    const int rb = nt == 1 || tt == 1 ? 4 : 2;
    size_t r = r0;
    while (r < r1) {
        int nr = rb;
        while ((size_t)nr > r1 - r) nr /= 2;
        const char *row = w + r * a->w_row_bytes;
        size_t t = 0;
        for (; tt == 2 && t + 2 <= nt; t += 2) {
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

// One chunk of rows (a multiple of 4, so that tiles stay whole).
static void ck_matmul_task(void *p, size_t item, int ith) {
    (void)ith;
    const ck_matmul_ctx *c = p;
    const ck_matmul_args *a = c->a;
    const size_t r0 = item * c->chunk < a->rows ? item * c->chunk : a->rows;
    const size_t r1 = r0 + c->chunk < a->rows ? r0 + c->chunk : a->rows;
    if (c->pk) { ck_matmul_tok(c, r0, r1); return; }
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
    ck_matmul_ctx ctx = { args, dot, ck_resolve_tile(args->type), ck_resolve_tok(args->type), NULL, 0, 0, args->rows };
    uint8_t *pk = NULL;
    if (ctx.tok && args->n_tokens >= CK_TOK_MIN) {
        const int k = ck_vec_dot_type(args->type) == CK_Q8_K;
        ctx.groups = (args->n_tokens + 7) / 8;
        ctx.pack_bytes = k ? CK_PACKK_BYTES : CK_PACK_BYTES;
        const size_t blocks = args->cols / (k ? CK_QK_K : CK_QK);
        pk = aligned_alloc(64, (blocks * ctx.groups * ctx.pack_bytes + 63) & ~(size_t)63);
        if (!pk) return -1;
        if (k) ck_pack_act_k(args, ctx.groups, pk);
        else ck_pack_act(args->type, args, ctx.groups, pk);
        ctx.pk = pk;
    }
    if (!pool || args->rows * args->n_tokens < 64) {
        ck_matmul_task(&ctx, 0, 0);
    } else {
        // About 8 items per thread: fine enough to balance threads (and to absorb one the OS did
        // not schedule), coarse enough that claiming costs nothing.
        const size_t items = (size_t)ck_pool_size(pool) * 8;
        ctx.chunk = ((args->rows + items - 1) / items + 3) & ~(size_t)3;
        ck_pool_for(pool, (args->rows + ctx.chunk - 1) / ctx.chunk, ck_matmul_task, &ctx);
    }
    free(pk);
    return 0;
}
