// Scalar reference kernels for the K-quants (Q2_K…Q6_K, activations Q8_K) and the non-linear 4-bit
// types (IQ4_NL with Q8_0 activations, IQ4_XS with Q8_K). Block layouts and the float arithmetic
// (the order of the multiplications, the eight float lanes of the Q3_K…Q6_K dot products) follow
// ggml's reference dequantize_row_* / quantize_row_q8_K_ref / ggml_vec_dot_*_generic, so the
// dequantized values and Q8_K activations are bit-identical to llama.cpp's. The Q4_K, Q6_K and
// IQ4_NL dot products instead follow the order of llama.cpp's x86 kernels for prompts (see each),
// which every SIMD path shares bit for bit. These are the twins of quants_k_avx2.c.
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
// Integer sums are exact in any order; the float steps are ggml's generic ones.

float ck_dot_q2_K_q8_K_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_q2_K *x = vx;
    const ck_block_q8_K *y = vy;
    float sumf = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        int summs = 0;
        for (int j = 0; j < 16; j++) summs += y[i].bsums[j] * (x[i].scales[j] >> 4);
        const float dall = y[i].d * H2F(x[i].d);
        const float dmin = y[i].d * H2F(x[i].dmin);
        int isum = 0;
        const int8_t *q8 = y[i].qs;
        for (int h = 0; h < 2; h++) {
            const uint8_t *q = x[i].qs + 32 * h;
            for (int s = 0; s < 4; s++) {
                for (int g = 0; g < 2; g++) {
                    int isuml = 0;
                    for (int l = 16 * g; l < 16 * g + 16; l++) isuml += q8[l] * ((q[l] >> (2 * s)) & 3);
                    isum += (x[i].scales[8 * h + 2 * s + g] & 0x0F) * isuml;
                }
                q8 += 32;
            }
        }
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

// Q3_K…Q6_K: ggml's generic kernels keep eight integer lanes (element index mod 8) per block and
// eight float lanes across blocks; the same here, so the rounding is the same.
static inline float finish_lanes(const float sums[8], float sumf) {
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

float ck_dot_q3_K_q8_K_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_q3_K *x = vx;
    const ck_block_q8_K *y = vy;
    float sums[8] = { 0 };
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        int8_t sc[16];
        ck_unpack_q3_K_scales(x[i].scales, sc);
        int32_t lanes[8] = { 0 };
        int e = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *q = x[i].qs + 32 * h;
            for (int s = 0; s < 4; s++) {
                const uint8_t m = (uint8_t)(1u << (4 * h + s));
                for (int l = 0; l < 32; l++, e++) {
                    const int v = ((q[l] >> (2 * s)) & 3) - ((x[i].hmask[l] & m) ? 0 : 4);
                    lanes[e & 7] += sc[e >> 4] * (v * y[i].qs[e]);
                }
            }
        }
        const float d = H2F(x[i].d) * y[i].d;
        for (int l = 0; l < 8; l++) sums[l] += d * (float)lanes[l];
    }
    return finish_lanes(sums, 0.0f);
}

static float dot_q45_K(const uint8_t *scales12, uint16_t xd, uint16_t xdmin, const uint8_t *qs, const uint8_t *qh,
                       const ck_block_q8_K *yb, float sums[8]) {
    uint8_t sc[8], mn[8];
    ck_unpack_k4_scales(scales12, sc, mn);
    int sumi = 0;
    for (int j = 0; j < 16; j++) sumi += yb->bsums[j] * mn[j / 2];
    int32_t lanes[8] = { 0 };
    for (int c = 0; c < 4; c++) {
        for (int half = 0; half < 2; half++) {
            const int sub = 2 * c + half;
            for (int l = 0; l < 32; l++) {
                int v = half ? (qs[32 * c + l] >> 4) : (qs[32 * c + l] & 0x0F);
                if (qh) v |= ((qh[l] >> sub) & 1) << 4;
                const int e = 32 * sub + l;
                lanes[e & 7] += sc[sub] * (v * yb->qs[e]);
            }
        }
    }
    const float d = H2F(xd) * yb->d;
    for (int l = 0; l < 8; l++) sums[l] += d * (float)lanes[l];
    const float dmin = H2F(xdmin) * yb->d;
    return dmin * (float)sumi;
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

float ck_dot_q5_K_q8_K_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_q5_K *x = vx;
    const ck_block_q8_K *y = vy;
    float sums[8] = { 0 };
    float sumf = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        sumf -= dot_q45_K(x[i].scales, x[i].d, x[i].dmin, x[i].qs, x[i].qh, &y[i], sums);
    }
    return finish_lanes(sums, sumf);
}

// Q6_K in llama.cpp's order (its tiled K-quant GEMM, what prompts go through): per super-block the
// exact integer sum S = Σ sc_s·Σ q·y (q signed), then acc = fma((float)S·d, dy, acc).
float ck_dot_q6_K_q8_K_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_q6_K *x = vx;
    const ck_block_q8_K *y = vy;
    float acc = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        int32_t s = 0;
        for (int e = 0; e < 256; e++) s += x[i].scales[e >> 4] * (q6_K_value(&x[i], e) * y[i].qs[e]);
        const float r = (float)s * H2F(x[i].d);
        acc = fmaf(r, y[i].d, acc);
    }
    return acc;
}

float ck_dot_iq4_nl_q8_0_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_iq4_nl *x = vx;
    const ck_block_q8_0 *y = vy;
    float acc[8] = { 0 };
    for (size_t i = 0; i < n / CK_QK; i++) {
        int8_t q[32];
        for (int j = 0; j < 16; j++) {
            q[j] = ck_iq4nl_values[x[i].qs[j] & 0x0F];
            q[j + 16] = ck_iq4nl_values[x[i].qs[j] >> 4];
        }
        lanes8(acc, H2F(x[i].d) * H2F(y[i].d), q, y[i].qs);
    }
    return ck_hsum8(acc);
}

float ck_dot_iq4_xs_q8_K_scalar(const void *vx, const void *vy, size_t n) {
    const ck_block_iq4_xs *x = vx;
    const ck_block_q8_K *y = vy;
    float sumf = 0.0f;
    for (size_t i = 0; i < n / CK_QK_K; i++) {
        const float d4d8 = H2F(x[i].d) * y[i].d;
        for (int ib = 0; ib < 8; ib++) {
            const float dl = d4d8 * (float)ck_iq4_xs_scale(&x[i], ib);
            const uint8_t *q = x[i].qs + 16 * ib;
            const int8_t *q8 = y[i].qs + 32 * ib;
            int sumi1 = 0, sumi2 = 0;
            for (int j = 0; j < 16; j++) {
                sumi1 += q8[j] * ck_iq4nl_values[q[j] & 0x0F];
                sumi2 += q8[j + 16] * ck_iq4nl_values[q[j] >> 4];
            }
            sumf += dl * (float)(sumi1 + sumi2);
        }
    }
    return sumf;
}
