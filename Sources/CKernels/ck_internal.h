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
void ck_fp16_to_fp32_row_avx2(const uint16_t *x, float *y, size_t n);
void ck_fp32_to_fp16_row_avx2(const float *x, uint16_t *y, size_t n);

#endif
