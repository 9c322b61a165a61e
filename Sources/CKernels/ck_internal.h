// Internal declarations shared by the CKernels translation units.
#ifndef CK_INTERNAL_H
#define CK_INTERNAL_H
#include "ckernels.h"
#include <math.h>
#include <string.h>

#define CK_QK 32

typedef struct { uint16_t d; uint8_t qs[16]; } ck_block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } ck_block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } ck_block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } ck_block_q5_1;
typedef struct { uint16_t d; int8_t qs[32]; } ck_block_q8_0;
typedef struct { uint16_t d, s; int8_t qs[32]; } ck_block_q8_1;

_Static_assert(sizeof(ck_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(ck_block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(ck_block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(ck_block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(ck_block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(ck_block_q8_1) == 36, "q8_1 layout");

// K-quants (super-blocks of 256) and the 4-bit non-linear types; field order is ggml's.
#define CK_QK_K 256
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } ck_block_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } ck_block_q3_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } ck_block_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } ck_block_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } ck_block_q6_K;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } ck_block_q8_K;
typedef struct { uint16_t d; uint8_t qs[16]; } ck_block_iq4_nl;
typedef struct { uint16_t d; uint16_t scales_h; uint8_t scales_l[4]; uint8_t qs[128]; } ck_block_iq4_xs;

_Static_assert(sizeof(ck_block_q2_K) == 84, "q2_K layout");
_Static_assert(sizeof(ck_block_q3_K) == 110, "q3_K layout");
_Static_assert(sizeof(ck_block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(ck_block_q5_K) == 176, "q5_K layout");
_Static_assert(sizeof(ck_block_q6_K) == 210, "q6_K layout");
_Static_assert(sizeof(ck_block_q8_K) == 292, "q8_K layout");
_Static_assert(sizeof(ck_block_iq4_nl) == 18, "iq4_nl layout");
_Static_assert(sizeof(ck_block_iq4_xs) == 136, "iq4_xs layout");

/// IQ4_NL / IQ4_XS code book (ggml's kvalues_iq4nl).
static const int8_t ck_iq4nl_values[16] = { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 };

/// Q4_K / Q5_K: the 12 packed bytes hold eight 6-bit scales and eight 6-bit mins.
/// Bytes 0-3: scale j low 6 bits (top 2 bits: scale j+4 bits 4-5); bytes 4-7: the same for mins;
/// bytes 8-11: low nibble = scale j+4 bits 0-3, high nibble = min j+4 bits 0-3.
static inline void ck_unpack_k4_scales(const uint8_t q[12], uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = q[j] & 63;
        mn[j] = q[j + 4] & 63;
        sc[j + 4] = (uint8_t)((q[j + 8] & 0x0F) | ((q[j] >> 6) << 4));
        mn[j + 4] = (uint8_t)((q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4));
    }
}

/// Q3_K: sixteen 6-bit scales, returned with their -32 offset applied (-32…31).
/// Low nibbles: bytes 0-7 (scale k < 8: low nibble of byte k; k ≥ 8: high nibble of byte k-8);
/// bits 4-5 of scale k: bits 2*(k/4) of byte 8 + k%4.
static inline void ck_unpack_q3_K_scales(const uint8_t q[12], int8_t sc[16]) {
    for (int k = 0; k < 16; k++) {
        const int lo = k < 8 ? (q[k] & 0x0F) : (q[k - 8] >> 4);
        const int hi = (q[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
        sc[k] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

/// IQ4_XS: scale of 32-element sub-block ib (0-7), with its -32 offset applied.
static inline int ck_iq4_xs_scale(const ck_block_iq4_xs *b, int ib) {
    return (((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((b->scales_h >> (2 * ib)) & 3) << 4)) - 32;
}

/// One block of llama.cpp's repacked 8×8 GEMMs (Q4_0 and IQ4_NL on x86 when the row count is a
/// multiple of 8, as in practically every model): acc = fma((float)Σ q·y, dx·dy, acc).
static inline float ck_block_step(float acc, const int8_t q[32], const int8_t y[32], float d) {
    int32_t s = 0;
    for (int i = 0; i < 32; i++) s += q[i] * y[i];
    return fmaf((float)s, d, acc);
}

/// One block's 8 lanes in llama.cpp's x86 order (its vec_dot and tinyBLAS): acc[k] = fma(d, Σ_{i=4k}^{4k+3} q[i]·y[i], acc[k]).
static inline void lanes8(float acc[8], float d, const int8_t q[32], const int8_t y[32]) {
    for (int k = 0; k < 8; k++) {
        int32_t s = 0;
        for (int i = 4 * k; i < 4 * k + 4; i++) s += q[i] * y[i];
        acc[k] = fmaf(d, (float)s, acc[k]);
    }
}

// One super-block of llama.cpp's tiled K-quant GEMM (ggml-cpu/tiled; Q3_K, Q5_K, Q6_K and IQ4_XS
// on x86): from the exact integer sums S = Σ scale·Σ q·y and M = Σ min·bsum, r = (float)S·d, then
// r − dmin·(float)M fused, then acc = fma(r, dy, acc). Shared by the scalar and SIMD twins.
static inline float ck_tiled_step(float acc, int32_t s, float d, float dy) {
    return fmaf((float)s * d, dy, acc);
}

static inline float ck_tiled_step_min(float acc, int32_t s, int32_t m, float d, float dmin, float dy) {
    return fmaf(fmaf(-dmin, (float)m, (float)s * d), dy, acc);
}

/// The 8 lanes summed as llama.cpp's hsum_float_8: ((a0+a4)+(a2+a6))+((a1+a5)+(a3+a7)).
static inline float ck_hsum8(const float a[8]) {
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

static inline float ck_bf16_to_fp32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t ck_fp32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 64); // quiet NaN
    return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);              // round to nearest even
}

// Scalar kernels (the reference twins).
float ck_dot_q4_0_q8_0_scalar(const void *x, const void *y, size_t n);
float ck_dot_q4_1_q8_1_scalar(const void *x, const void *y, size_t n);
float ck_dot_q5_0_q8_0_scalar(const void *x, const void *y, size_t n);
float ck_dot_q5_1_q8_1_scalar(const void *x, const void *y, size_t n);
float ck_dot_q8_0_q8_0_scalar(const void *x, const void *y, size_t n);
float ck_dot_f16_f16_scalar(const void *x, const void *y, size_t n);
float ck_dot_bf16_bf16_scalar(const void *x, const void *y, size_t n);
void ck_quantize_q8_0_scalar(const float *x, void *y, size_t n);
void ck_quantize_q8_1_scalar(const float *x, void *y, size_t n);
float ck_dot_q2_K_q8_K_scalar(const void *x, const void *y, size_t n);
float ck_dot_q3_K_q8_K_scalar(const void *x, const void *y, size_t n);
float ck_dot_q4_K_q8_K_scalar(const void *x, const void *y, size_t n);
float ck_dot_q5_K_q8_K_scalar(const void *x, const void *y, size_t n);
float ck_dot_q6_K_q8_K_scalar(const void *x, const void *y, size_t n);
float ck_dot_iq4_nl_q8_0_scalar(const void *x, const void *y, size_t n);
float ck_dot_iq4_xs_q8_K_scalar(const void *x, const void *y, size_t n);
void ck_quantize_q8_K_scalar(const float *x, void *y, size_t n);
/// Dequantizes a K-quant / IQ4 row (n a multiple of the type's block size); -1 if not such a type.
int ck_dequantize_kq_scalar(int type, const void *x, float *y, size_t n);

// AVX2 + FMA + F16C kernels.
float ck_dot_q4_0_q8_0_avx2(const void *x, const void *y, size_t n);
float ck_dot_q4_1_q8_1_avx2(const void *x, const void *y, size_t n);
float ck_dot_q5_0_q8_0_avx2(const void *x, const void *y, size_t n);
float ck_dot_q5_1_q8_1_avx2(const void *x, const void *y, size_t n);
float ck_dot_q8_0_q8_0_avx2(const void *x, const void *y, size_t n);
float ck_dot_f16_f16_avx2(const void *x, const void *y, size_t n);
float ck_dot_f32_avx2(const float *x, const float *y, size_t n);
void ck_quantize_q8_0_avx2(const float *x, void *y, size_t n);
void ck_quantize_q8_1_avx2(const float *x, void *y, size_t n);
float ck_dot_q2_K_q8_K_avx2(const void *x, const void *y, size_t n);
float ck_dot_q3_K_q8_K_avx2(const void *x, const void *y, size_t n);
float ck_dot_q4_K_q8_K_avx2(const void *x, const void *y, size_t n);
float ck_dot_q5_K_q8_K_avx2(const void *x, const void *y, size_t n);
float ck_dot_q6_K_q8_K_avx2(const void *x, const void *y, size_t n);
float ck_dot_iq4_nl_q8_0_avx2(const void *x, const void *y, size_t n);
float ck_dot_iq4_xs_q8_K_avx2(const void *x, const void *y, size_t n);
void ck_quantize_q8_K_avx2(const float *x, void *y, size_t n);
int ck_dequantize_kq_avx2(int type, const void *x, float *y, size_t n);
void ck_fp16_to_fp32_row_avx2(const uint16_t *x, float *y, size_t n);
void ck_fp32_to_fp16_row_avx2(const float *x, uint16_t *y, size_t n);


/// An nr×nt tile of dot products (nr in 1, 2, 4; nt in 1, 2): out[t * ld + r] = dot(x row r, y row t),
/// rows x_stride / y_stride bytes apart, n elements. The VNNI ones take nt = 1 only.
typedef void (*ck_tile_fn)(int nr, int nt, const void *x, size_t x_stride, const void *y, size_t y_stride,
                           size_t n, float *out, size_t ld);
/// Kernels over activations packed by ck_pack_act, groups of 8 tokens: an nr×(8·ng) tile (nr 1..4,
/// ng 1..2) of the packed groups at pk (block b at pk + b * pstride), first nt tokens written.
typedef void (*ck_tok_fn)(int nr, int ng, const void *x, size_t x_stride, const void *pk, size_t pstride,
                          size_t n, int nt, float *out, size_t ld);
/// Packed activations, per block and group of 8 tokens: the 8 dwords of quants (dword k of the 8
/// tokens together), the scales d and s as floats, and per dword k the correction −ck_u_offset·Σ
/// of its 4 quants (int32: the share of the weights' unsigned offset in each of the 8 lanes).
#define CK_PACK_D 256
#define CK_PACK_S 288
#define CK_PACK_KCORR 320
#define CK_PACK_BYTES 576
/// K-packed activations (Q8_K, for the Q4_K / Q6_K token kernels), per 256-element block and group
/// of 8 tokens: 64 × 8 token dwords of quants, the 8 scales d as floats, the 16 block sums as 8
/// int16 pairs per token (bsums[2p], bsums[2p+1]), and the 8 sums of 32 as 4 int16 pairs per token.
#define CK_PACKK_D 2048
#define CK_PACKK_BS 2080
#define CK_PACKK_YS 2336
#define CK_PACKK_BYTES 2464
/// What the VNNI kernels add to a weight type's quants to make them unsigned.
static inline int ck_u_offset(int type) {
    switch (type) {
    case CK_Q4_0: return 8;
    case CK_Q5_0: return 16;
    case CK_Q8_0: case CK_IQ4_NL: return 128;
    default: return 0;
    }
}
ck_tok_fn ck_resolve_tok_vnni(int type);
ck_tok_fn ck_resolve_tok_avx512(int type);
/// The packed-tokens kernel the dispatcher selects now (NULL: none).
ck_tok_fn ck_resolve_tok(int type);
/// Tile kernels of the 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL); NULL otherwise.
ck_tile_fn ck_resolve_tile_avx2(int type);
ck_tile_fn ck_resolve_tile_vnni(int type);
/// The tile kernel the dispatcher selects now (NULL: use the dot kernel row by row).
ck_tile_fn ck_resolve_tile(int type);

// AVX-VNNI kernels (quants_tile_vnni.h: exact per-block sums, rows or packed-token layouts).
float ck_dot_q4_0_q8_0_vnni(const void *x, const void *y, size_t n);
float ck_dot_q4_1_q8_1_vnni(const void *x, const void *y, size_t n);
float ck_dot_q5_0_q8_0_vnni(const void *x, const void *y, size_t n);
float ck_dot_q5_1_q8_1_vnni(const void *x, const void *y, size_t n);
float ck_dot_q8_0_q8_0_vnni(const void *x, const void *y, size_t n);
float ck_dot_iq4_nl_q8_0_vnni(const void *x, const void *y, size_t n);
// (quants_k_vnni.h: the same scheme for the K-quants of Q4_K_M files.)
float ck_dot_q4_K_q8_K_vnni(const void *x, const void *y, size_t n);
float ck_dot_q6_K_q8_K_vnni(const void *x, const void *y, size_t n);

#endif
