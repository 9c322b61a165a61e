// Scalar reference kernels: dequantization, activation quantization and dot products.
// These are the twins every SIMD kernel is tested against, and the fallback on CPUs without AVX2.
#include "ck_internal.h"

#define H2F ck_fp16_to_fp32

static inline uint32_t ck_load_qh(const uint8_t qh[4]) {
    uint32_t v;
    memcpy(&v, qh, 4);
    return v;
}

static void dequant_q4_0(const ck_block_q4_0 *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < 16; j++) {
            y[i * 32 + j] = ((x[i].qs[j] & 0x0F) - 8) * d;
            y[i * 32 + j + 16] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequant_q4_1(const ck_block_q4_1 *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d), m = H2F(x[i].m);
        for (int j = 0; j < 16; j++) {
            y[i * 32 + j] = (x[i].qs[j] & 0x0F) * d + m;
            y[i * 32 + j + 16] = (x[i].qs[j] >> 4) * d + m;
        }
    }
}

static void dequant_q5_0(const ck_block_q5_0 *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        const uint32_t qh = ck_load_qh(x[i].qh);
        for (int j = 0; j < 16; j++) {
            const int h0 = ((qh >> j) << 4) & 0x10;
            const int h1 = (qh >> (j + 12)) & 0x10;
            y[i * 32 + j] = (((x[i].qs[j] & 0x0F) | h0) - 16) * d;
            y[i * 32 + j + 16] = (((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

static void dequant_q5_1(const ck_block_q5_1 *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d), m = H2F(x[i].m);
        const uint32_t qh = ck_load_qh(x[i].qh);
        for (int j = 0; j < 16; j++) {
            const int h0 = ((qh >> j) << 4) & 0x10;
            const int h1 = (qh >> (j + 12)) & 0x10;
            y[i * 32 + j] = ((x[i].qs[j] & 0x0F) | h0) * d + m;
            y[i * 32 + j + 16] = ((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

static void dequant_q8_0(const ck_block_q8_0 *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < 32; j++) y[i * 32 + j] = x[i].qs[j] * d;
    }
}

static void dequant_q8_1(const ck_block_q8_1 *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < 32; j++) y[i * 32 + j] = x[i].qs[j] * d;
    }
}

int ck_dequantize_row_scalar(int type, const void *x, float *y, size_t n) {
    const size_t nb = n / CK_QK;
    switch (type) {
    case CK_F32: memcpy(y, x, n * sizeof(float)); return 0;
    case CK_F16: for (size_t i = 0; i < n; i++) y[i] = H2F(((const uint16_t *)x)[i]); return 0;
    case CK_BF16: for (size_t i = 0; i < n; i++) y[i] = ck_bf16_to_fp32(((const uint16_t *)x)[i]); return 0;
    case CK_Q4_0: dequant_q4_0(x, y, nb); return 0;
    case CK_Q4_1: dequant_q4_1(x, y, nb); return 0;
    case CK_Q5_0: dequant_q5_0(x, y, nb); return 0;
    case CK_Q5_1: dequant_q5_1(x, y, nb); return 0;
    case CK_Q8_0: dequant_q8_0(x, y, nb); return 0;
    case CK_Q8_1: dequant_q8_1(x, y, nb); return 0;
    default: return ck_dequantize_kq_scalar(type, x, y, n);
    }
}

void ck_quantize_q8_0_scalar(const float *x, void *vy, size_t n) {
    ck_block_q8_0 *y = vy;
    for (size_t i = 0; i < n / CK_QK; i++) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[i * 32 + j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f; // as the SIMD path
        y[i].d = ck_fp32_to_fp16(d);
        for (int j = 0; j < 32; j++) y[i].qs[j] = (int8_t)nearbyintf(x[i * 32 + j] * id);
    }
}

void ck_quantize_q8_1_scalar(const float *x, void *vy, size_t n) {
    ck_block_q8_1 *y = vy;
    for (size_t i = 0; i < n / CK_QK; i++) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[i * 32 + j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f; // as the SIMD path
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            const int q = (int)nearbyintf(x[i * 32 + j] * id);
            y[i].qs[j] = (int8_t)q;
            sum += q;
        }
        y[i].d = ck_fp32_to_fp16(d);
        y[i].s = ck_fp32_to_fp16((float)sum * d);
    }
}

int ck_quantize_row_scalar(int type, const float *x, void *y, size_t n) {
    switch (type) {
    case CK_F32: memcpy(y, x, n * sizeof(float)); return 0;
    case CK_F16: for (size_t i = 0; i < n; i++) ((uint16_t *)y)[i] = ck_fp32_to_fp16(x[i]); return 0;
    case CK_BF16: for (size_t i = 0; i < n; i++) ((uint16_t *)y)[i] = ck_fp32_to_bf16(x[i]); return 0;
    case CK_Q8_0: if (n % CK_QK) return -1; ck_quantize_q8_0_scalar(x, y, n); return 0;
    case CK_Q8_1: if (n % CK_QK) return -1; ck_quantize_q8_1_scalar(x, y, n); return 0;
    case CK_Q8_K: if (n % CK_QK_K) return -1; ck_quantize_q8_K_scalar(x, y, n); return 0;
    default: return ck_quantize_row_ref(type, x, y, n); // weight types: ggml's reference quantizers
    }
}

// The 32-element types (IQ4_NL in quants_k_scalar.c) in the order of the kernel llama.cpp's x86
// build runs for a prompt. Q5_0, Q8_0, Q4_1 and Q5_1 (its vec_dot and tinyBLAS kernels): 8 lanes,
// lane k the exact integer dot of elements 4k..4k+3 of each block, acc_k = fma(d, lane_k, acc_k)
// over the blocks, then ck_hsum8; Q4_1 / Q5_1 add the chain summs = fma(m, s, summs). Q4_0 (its
// repacked 8×8 GEMM): one exact sum per block, acc = fma(sum, d, acc).
float ck_dot_q4_0_q8_0_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_q4_0 *x = vx;
    const ck_block_q8_0 *y = vy;
    float acc = 0.0f;
    for (size_t i = 0; i < n / CK_QK; i++) {
        int8_t q[32];
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)((x[i].qs[j] & 0x0F) - 8);
            q[j + 16] = (int8_t)((x[i].qs[j] >> 4) - 8);
        }
        acc = ck_block_step(acc, q, y[i].qs, H2F(x[i].d) * H2F(y[i].d));
    }
    return acc;
}

float ck_dot_q4_1_q8_1_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_q4_1 *x = vx;
    const ck_block_q8_1 *y = vy;
    float acc[8] = { 0 }, summs = 0.0f;
    for (size_t i = 0; i < n / CK_QK; i++) {
        int8_t q[32];
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)(x[i].qs[j] & 0x0F);
            q[j + 16] = (int8_t)(x[i].qs[j] >> 4);
        }
        lanes8(acc, H2F(x[i].d) * H2F(y[i].d), q, y[i].qs);
        summs = fmaf(H2F(x[i].m), H2F(y[i].s), summs);
    }
    return ck_hsum8(acc) + summs;
}

float ck_dot_q5_0_q8_0_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_q5_0 *x = vx;
    const ck_block_q8_0 *y = vy;
    float acc[8] = { 0 };
    for (size_t i = 0; i < n / CK_QK; i++) {
        const uint32_t qh = ck_load_qh(x[i].qh);
        int8_t q[32];
        for (int j = 0; j < 16; j++) {
            const int h0 = ((qh >> j) << 4) & 0x10;
            const int h1 = (qh >> (j + 12)) & 0x10;
            q[j] = (int8_t)(((x[i].qs[j] & 0x0F) | h0) - 16);
            q[j + 16] = (int8_t)(((x[i].qs[j] >> 4) | h1) - 16);
        }
        lanes8(acc, H2F(x[i].d) * H2F(y[i].d), q, y[i].qs);
    }
    return ck_hsum8(acc);
}

float ck_dot_q5_1_q8_1_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_q5_1 *x = vx;
    const ck_block_q8_1 *y = vy;
    float acc[8] = { 0 }, summs = 0.0f;
    for (size_t i = 0; i < n / CK_QK; i++) {
        const uint32_t qh = ck_load_qh(x[i].qh);
        int8_t q[32];
        for (int j = 0; j < 16; j++) {
            const int h0 = ((qh >> j) << 4) & 0x10;
            const int h1 = (qh >> (j + 12)) & 0x10;
            q[j] = (int8_t)((x[i].qs[j] & 0x0F) | h0);
            q[j + 16] = (int8_t)((x[i].qs[j] >> 4) | h1);
        }
        lanes8(acc, H2F(x[i].d) * H2F(y[i].d), q, y[i].qs);
        summs = fmaf(H2F(x[i].m), H2F(y[i].s), summs);
    }
    return ck_hsum8(acc) + summs;
}

float ck_dot_q8_0_q8_0_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_q8_0 *x = vx;
    const ck_block_q8_0 *y = vy;
    float acc[8] = { 0 };
    for (size_t i = 0; i < n / CK_QK; i++) lanes8(acc, H2F(x[i].d) * H2F(y[i].d), x[i].qs, y[i].qs);
    return ck_hsum8(acc);
}

float ck_dot_f16_f16_scalar(const void *vx, const void *vy, size_t n) {
    const uint16_t *x = vx, *y = vy;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)(H2F(x[i]) * H2F(y[i]));
    return (float)sum;
}

float ck_dot_bf16_bf16_scalar(const void *vx, const void *vy, size_t n) {
    const uint16_t *x = vx, *y = vy;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)(ck_bf16_to_fp32(x[i]) * ck_bf16_to_fp32(y[i]));
    return (float)sum;
}

float ck_dot_f32_scalar(const float *x, const float *y, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)(x[i] * y[i]);
    return (float)sum;
}

float ck_vec_dot_scalar(int type, const void *x, const void *y, size_t n) {
    switch (type) {
    case CK_F32: return ck_dot_f32_scalar(x, y, n);
    case CK_F16: return ck_dot_f16_f16_scalar(x, y, n);
    case CK_BF16: return ck_dot_bf16_bf16_scalar(x, y, n);
    case CK_Q4_0: return ck_dot_q4_0_q8_0_scalar(x, y, n);
    case CK_Q4_1: return ck_dot_q4_1_q8_1_scalar(x, y, n);
    case CK_Q5_0: return ck_dot_q5_0_q8_0_scalar(x, y, n);
    case CK_Q5_1: return ck_dot_q5_1_q8_1_scalar(x, y, n);
    case CK_Q8_0: return ck_dot_q8_0_q8_0_scalar(x, y, n);
    case CK_Q2_K: return ck_dot_q2_K_q8_K_scalar(x, y, n);
    case CK_Q3_K: return ck_dot_q3_K_q8_K_scalar(x, y, n);
    case CK_Q4_K: return ck_dot_q4_K_q8_K_scalar(x, y, n);
    case CK_Q5_K: return ck_dot_q5_K_q8_K_scalar(x, y, n);
    case CK_Q6_K: return ck_dot_q6_K_q8_K_scalar(x, y, n);
    case CK_IQ4_NL: return ck_dot_iq4_nl_q8_0_scalar(x, y, n);
    case CK_IQ4_XS: return ck_dot_iq4_xs_q8_K_scalar(x, y, n);
    default: return NAN;
    }
}
