// IEEE binary16 <-> binary32 conversion, scalar (bit manipulation, round-to-nearest-even).
#include "ck_internal.h"

static inline float ck_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t ck_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

float ck_fp16_to_fp32(uint16_t h) {
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    const uint32_t exp_offset = 0xE0u << 23;
    const float exp_scale = 0x1.0p-112f;
    const float normalized = ck_from_bits((two_w >> 4) + exp_offset) * exp_scale;
    const uint32_t magic_mask = 126u << 23;
    const float magic_bias = 0.5f;
    const float denormalized = ck_from_bits((two_w >> 17) | magic_mask) - magic_bias;
    const uint32_t denormalized_cutoff = 1u << 27;
    const uint32_t result = sign | (two_w < denormalized_cutoff ? ck_to_bits(denormalized) : ck_to_bits(normalized));
    return ck_from_bits(result);
}

uint16_t ck_fp32_to_fp16(float f) {
    const float scale_to_inf = 0x1.0p+112f;
    const float scale_to_zero = 0x1.0p-110f;
    float base = (fabsf(f) * scale_to_inf) * scale_to_zero;
    const uint32_t w = ck_to_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = ck_from_bits((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = ck_to_bits(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

void ck_fp16_to_fp32_row(const uint16_t *x, float *y, size_t n) {
    if (ck_active_isa() >= CK_ISA_AVX2) { ck_fp16_to_fp32_row_avx2(x, y, n); return; }
    for (size_t i = 0; i < n; i++) y[i] = ck_fp16_to_fp32(x[i]);
}

void ck_fp32_to_fp16_row(const float *x, uint16_t *y, size_t n) {
    if (ck_active_isa() >= CK_ISA_AVX2) { ck_fp32_to_fp16_row_avx2(x, y, n); return; }
    for (size_t i = 0; i < n; i++) y[i] = ck_fp32_to_fp16(x[i]);
}
