// Scalar reference kernels for the K-quants (Q2_K…Q6_K, activations Q8_K) and the non-linear 4-bit
// types (IQ4_NL with Q8_0 activations, IQ4_XS with Q8_K). Block layouts and the float arithmetic of
// dequantize_row_* and quantize_row_q8_K_ref follow ggml's reference C, so the dequantized values and
// Q8_K activations are bit-identical to llama.cpp's. The dot products follow the order of the kernel
// llama.cpp's x86 build runs for a prompt (see each), which every SIMD path shares bit for bit.
// These are the twins of quants_k_avx2.c.
#include "ck_internal.h"

#define H2F ck_fp16_to_fp32

// ---- dequantize --------------------------------------------------------------------------------

static void dequant_q2_K(const ck_block_q2_K *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d), dmin = H2F(x[i].dmin);
        // Two halves of 128: 32 bytes of quants each, 2 bits per element at shifts 0, 2, 4, 6;
        // each (half, shift) covers 32 elements with two 16-element scales.
        for (int h = 0; h < 2; h++) {
            const uint8_t *q = x[i].qs + 32 * h;
            for (int s = 0; s < 4; s++) {
                for (int g = 0; g < 2; g++) {
                    const uint8_t sc = x[i].scales[8 * h + 2 * s + g];
                    const float dl = d * (float)(sc & 0x0F), ml = dmin * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[16 * g + l] >> (2 * s)) & 3) - ml;
                }
            }
        }
    }
}

static void dequant_q3_K(const ck_block_q3_K *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        int8_t sc[16];
        ck_unpack_q3_K_scales(x[i].scales, sc);
        for (int h = 0; h < 2; h++) {
            const uint8_t *q = x[i].qs + 32 * h;
            for (int s = 0; s < 4; s++) {
                const uint8_t m = (uint8_t)(1u << (4 * h + s));
                for (int g = 0; g < 2; g++) {
                    const float dl = d * (float)sc[8 * h + 2 * s + g];
                    for (int l = 16 * g; l < 16 * g + 16; l++) {
                        const int v = ((q[l] >> (2 * s)) & 3) - ((x[i].hmask[l] & m) ? 0 : 4);
                        *y++ = dl * (float)v;
                    }
                }
            }
        }
    }
}

static void dequant_q4_K(const ck_block_q4_K *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d), dmin = H2F(x[i].dmin);
        uint8_t sc[8], mn[8];
        ck_unpack_k4_scales(x[i].scales, sc, mn);
        // Four chunks of 64: 32 bytes, low nibbles first (scale 2c), then high nibbles (scale 2c+1).
        for (int c = 0; c < 4; c++) {
            const uint8_t *q = x[i].qs + 32 * c;
            const float d1 = d * (float)sc[2 * c], m1 = dmin * (float)mn[2 * c];
            const float d2 = d * (float)sc[2 * c + 1], m2 = dmin * (float)mn[2 * c + 1];
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0x0F) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

static void dequant_q5_K(const ck_block_q5_K *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d), dmin = H2F(x[i].dmin);
        uint8_t sc[8], mn[8];
        ck_unpack_k4_scales(x[i].scales, sc, mn);
        // As Q4_K; the fifth bit of element 32k + l is bit k of qh[l].
        for (int c = 0; c < 4; c++) {
            const uint8_t *q = x[i].qs + 32 * c;
            const float d1 = d * (float)sc[2 * c], m1 = dmin * (float)mn[2 * c];
            const float d2 = d * (float)sc[2 * c + 1], m2 = dmin * (float)mn[2 * c + 1];
            for (int l = 0; l < 32; l++) {
                *y++ = d1 * (float)((q[l] & 0x0F) | (((x[i].qh[l] >> (2 * c)) & 1) << 4)) - m1;
            }
            for (int l = 0; l < 32; l++) {
                *y++ = d2 * (float)((q[l] >> 4) | (((x[i].qh[l] >> (2 * c + 1)) & 1) << 4)) - m2;
            }
        }
    }
}

// Q6_K element e (0-255) as a signed value -32…31: half h = e / 128, r = e % 128, quarter k = r / 32,
// l = r % 32. Low 4 bits: ql[64h + l + 32(k & 1)], low nibble for k < 2, else high nibble; top two
// bits: qh[32h + l] >> 2k. Scale: scales[8h + 2k + l / 16].
static inline int q6_K_value(const ck_block_q6_K *b, int e) {
    const int h = e >> 7, k = (e >> 5) & 3, l = e & 31;
    const uint8_t lo = b->ql[64 * h + l + 32 * (k & 1)];
    const int q4 = k < 2 ? (lo & 0x0F) : (lo >> 4);
    const int q2 = (b->qh[32 * h + l] >> (2 * k)) & 3;
    return (q4 | (q2 << 4)) - 32;
}

static void dequant_q6_K(const ck_block_q6_K *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        for (int e = 0; e < 256; e++) {
            const int h = e >> 7, k = (e >> 5) & 3, l = e & 31;
            y[e] = d * (float)x[i].scales[8 * h + 2 * k + l / 16] * (float)q6_K_value(&x[i], e);
        }
        y += 256;
    }
}

static void dequant_iq4_nl(const ck_block_iq4_nl *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)ck_iq4nl_values[x[i].qs[j] & 0x0F];
            y[j + 16] = d * (float)ck_iq4nl_values[x[i].qs[j] >> 4];
        }
        y += 32;
    }
}

static void dequant_iq4_xs(const ck_block_iq4_xs *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d);
        for (int ib = 0; ib < 8; ib++) {
            const float dl = d * (float)ck_iq4_xs_scale(&x[i], ib);
            const uint8_t *q = x[i].qs + 16 * ib;
            for (int j = 0; j < 16; j++) {
                y[j] = dl * (float)ck_iq4nl_values[q[j] & 0x0F];
                y[j + 16] = dl * (float)ck_iq4nl_values[q[j] >> 4];
            }
            y += 32;
        }
    }
}

static void dequant_q8_K(const ck_block_q8_K *x, float *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        for (int j = 0; j < 256; j++) *y++ = x[i].d * (float)x[i].qs[j];
    }
}

int ck_dequantize_kq_scalar(int type, const void *x, float *y, size_t n) {
    switch (type) {
    case CK_Q2_K: dequant_q2_K(x, y, n / CK_QK_K); return 0;
    case CK_Q3_K: dequant_q3_K(x, y, n / CK_QK_K); return 0;
    case CK_Q4_K: dequant_q4_K(x, y, n / CK_QK_K); return 0;
    case CK_Q5_K: dequant_q5_K(x, y, n / CK_QK_K); return 0;
    case CK_Q6_K: dequant_q6_K(x, y, n / CK_QK_K); return 0;
    case CK_Q8_K: dequant_q8_K(x, y, n / CK_QK_K); return 0;
    case CK_IQ4_NL: dequant_iq4_nl(x, y, n / CK_QK); return 0;
    case CK_IQ4_XS: dequant_iq4_xs(x, y, n / CK_QK_K); return 0;
    default: return -1;
    }
}

// ---- Q8_K activations --------------------------------------------------------------------------

// ggml's nearest_int: round half to even through the float adder (|v| <= 2^22).
static inline int nearest_int(float v) {
    const float f = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &f, 4);
    return (i & 0x007fffff) - 0x00400000;
}

void ck_quantize_q8_K_scalar(const float *x, void *vy, size_t n) {
    ck_block_q8_K *y = vy;
    for (size_t i = 0; i < n / CK_QK_K; i++, x += CK_QK_K) {
        // The element of largest magnitude, with its sign (the first one on ties).
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 256; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (amax == 0.0f) {
            // ggml leaves bsums unwritten here; zero them so the block is deterministic.
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < 256; j++) {
            const int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[i].qs[16 * g + l];
            y[i].bsums[g] = (int16_t)sum;
        }
        y[i].d = 1.0f / iscale;
    }
}

// ---- dot products ------------------------------------------------------------------------------
// Integer sums are exact in any order; the float steps follow the kernel llama.cpp's x86 build runs
// for a prompt's matrix products (batches of 8 tokens and more), so that Verity's logits equal
// llama.cpp's bit for bit. Each SIMD twin does the same float operations in the same order.

// Q2_K in llama.cpp's order (its repacked 8×8 GEMM on AVX-512, what prompts go through): per
// 128-element half h, exact sums isum_h = Σ sc·Σ q·y and imin_h = Σ m·bsum, then
// acc = fma(isum_h, d·dy, acc) and accm = fma(imin_h, dmin·dy, accm) in float; acc − accm.
float ck_dot_q2_K_q8_K_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_q2_K *x = vx;
    const ck_block_q8_K *y = vy;
    float acc = 0.0f, accm = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        const float dd = H2F(x[i].d) * y[i].d, dm = H2F(x[i].dmin) * y[i].d;
        const int8_t *q8 = y[i].qs;
        for (int h = 0; h < 2; h++) {
            const uint8_t *q = x[i].qs + 32 * h;
            int32_t isum = 0, imin = 0;
            for (int j = 8 * h; j < 8 * h + 8; j++) imin += y[i].bsums[j] * (x[i].scales[j] >> 4);
            for (int s = 0; s < 4; s++) {
                for (int g = 0; g < 2; g++) {
                    int32_t isuml = 0;
                    for (int l = 16 * g; l < 16 * g + 16; l++) isuml += q8[l] * ((q[l] >> (2 * s)) & 3);
                    isum += (x[i].scales[8 * h + 2 * s + g] & 0x0F) * isuml;
                }
                q8 += 32;
            }
            acc = fmaf((float)isum, dd, acc);
            accm = fmaf((float)imin, dm, accm);
        }
    }
    return acc - accm;
}

// Q3_K in llama.cpp's order (the tiled GEMM, see ck_tiled_step).
float ck_dot_q3_K_q8_K_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_q3_K *x = vx;
    const ck_block_q8_K *y = vy;
    float acc = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        int8_t sc[16];
        ck_unpack_q3_K_scales(x[i].scales, sc);
        int32_t s = 0;
        int e = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *q = x[i].qs + 32 * h;
            for (int k = 0; k < 4; k++) {
                const uint8_t m = (uint8_t)(1u << (4 * h + k));
                for (int l = 0; l < 32; l++, e++) {
                    const int v = ((q[l] >> (2 * k)) & 3) - ((x[i].hmask[l] & m) ? 0 : 4);
                    s += sc[e >> 4] * (v * y[i].qs[e]);
                }
            }
        }
        acc = ck_tiled_step(acc, s, H2F(x[i].d), y[i].d);
    }
    return acc;
}

// Q4_K in llama.cpp's order (its repacked 8×8 GEMM on x86, what prompts go through): per pair of
// 32-element sub-blocks p, exact integer sums isum_p = Σ sc_j·Σ q·y and imin_p = Σ m_j·ysum_j, then
// acc = fma(isum_p, d·dy, acc) and accm = fma(imin_p, dmin·dy, accm) in float; acc − accm.
float ck_dot_q4_K_q8_K_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_q4_K *x = vx;
    const ck_block_q8_K *y = vy;
    float acc = 0.0f, accm = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        uint8_t sc[8], mn[8];
        ck_unpack_k4_scales(x[i].scales, sc, mn);
        const float dd = H2F(x[i].d) * y[i].d, dm = H2F(x[i].dmin) * y[i].d;
        for (int p = 0; p < 4; p++) {
            int32_t isum = 0, imin = 0;
            for (int j = 2 * p; j < 2 * p + 2; j++) {
                const uint8_t *q = x[i].qs + 32 * p;
                int32_t s = 0;
                for (int l = 0; l < 32; l++) s += ((j & 1) ? (q[l] >> 4) : (q[l] & 0x0F)) * y[i].qs[32 * j + l];
                isum += sc[j] * s;
                imin += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
            }
            acc = fmaf((float)isum, dd, acc);
            accm = fmaf((float)imin, dm, accm);
        }
    }
    return acc - accm;
}

// Q5_K in llama.cpp's order (the tiled GEMM, see ck_tiled_step_min).
float ck_dot_q5_K_q8_K_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_q5_K *x = vx;
    const ck_block_q8_K *y = vy;
    float acc = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        uint8_t sc[8], mn[8];
        ck_unpack_k4_scales(x[i].scales, sc, mn);
        int32_t s = 0, m = 0;
        for (int j = 0; j < 8; j++) {
            const uint8_t *q = x[i].qs + 32 * (j / 2);
            int32_t sj = 0;
            for (int l = 0; l < 32; l++) {
                const int v = ((j & 1) ? (q[l] >> 4) : (q[l] & 0x0F)) | (((x[i].qh[l] >> j) & 1) << 4);
                sj += v * y[i].qs[32 * j + l];
            }
            s += sc[j] * sj;
            m += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        acc = ck_tiled_step_min(acc, s, m, H2F(x[i].d), H2F(x[i].dmin), y[i].d);
    }
    return acc;
}

// Q6_K in llama.cpp's order (the tiled GEMM, see ck_tiled_step).
float ck_dot_q6_K_q8_K_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_q6_K *x = vx;
    const ck_block_q8_K *y = vy;
    float acc = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        int32_t s = 0;
        for (int e = 0; e < 256; e++) s += x[i].scales[e >> 4] * (q6_K_value(&x[i], e) * y[i].qs[e]);
        acc = ck_tiled_step(acc, s, H2F(x[i].d), y[i].d);
    }
    return acc;
}

// IQ4_NL in llama.cpp's order (its repacked 8×8 GEMM, as Q4_0; see ck_block_step).
float ck_dot_iq4_nl_q8_0_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_iq4_nl *x = vx;
    const ck_block_q8_0 *y = vy;
    float acc = 0.0f;
    for (size_t i = 0; i < n / CK_QK; i++) {
        int8_t q[32];
        for (int j = 0; j < 16; j++) {
            q[j] = ck_iq4nl_values[x[i].qs[j] & 0x0F];
            q[j + 16] = ck_iq4nl_values[x[i].qs[j] >> 4];
        }
        acc = ck_block_step(acc, q, y[i].qs, H2F(x[i].d) * H2F(y[i].d));
    }
    return acc;
}

// IQ4_XS in llama.cpp's order (the tiled GEMM, see ck_tiled_step).
float ck_dot_iq4_xs_q8_K_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_iq4_xs *x = vx;
    const ck_block_q8_K *y = vy;
    float acc = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        int32_t s = 0;
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *q = x[i].qs + 16 * ib;
            const int8_t *q8 = y[i].qs + 32 * ib;
            int32_t sb = 0;
            for (int j = 0; j < 16; j++) {
                sb += q8[j] * ck_iq4nl_values[q[j] & 0x0F];
                sb += q8[j + 16] * ck_iq4nl_values[q[j] >> 4];
            }
            s += ck_iq4_xs_scale(&x[i], ib) * sb;
        }
        acc = ck_tiled_step(acc, s, H2F(x[i].d), y[i].d);
    }
    return acc;
}
