// Weight quantizers: ggml's reference quantizers without an importance matrix, byte for byte.
//
// These are what llama.cpp's llama-quantize runs through ggml_quantize_chunk(type, …, imatrix=NULL):
// quantize_row_{q4_0,q4_1,q5_0,q5_1,q8_0,q2_K,q3_K,q4_K,q5_K,q6_K}_ref, and for IQ4_NL / IQ4_XS
// quantize_iq4_nl / quantize_iq4_xs (the scale search with ntry = 7, not their *_ref twins).
// Byte-exactness rests on doing the same float operations in the same order as ggml's C: every
// expression below keeps ggml's shape (a*b*c is (a*b)*c, integers converted where ggml converts
// them), the target is compiled with -ffp-contract=off (no fused multiply-adds) and without
// -ffast-math, and rounding goes through nearest_int's float-adder trick. Scalar only: these run
// at load or export time, and the result is the same on every CPU tier.
//
// Block layouts: see include/ckernels.h.
#include "ck_internal.h"
#include <float.h>

#define H2F ck_fp16_to_fp32
#define F2H ck_fp32_to_fp16

/// ggml's group-max threshold below which a group counts as all zero.
#define CK_GROUP_MAX_EPS 1e-15f

static inline int ck_imin(int a, int b) { return a < b ? a : b; }
static inline int ck_imax(int a, int b) { return a > b ? a : b; }

/// ggml's nearest_int: adding 1.5·2^23 leaves round-half-to-even of v in the low mantissa bits
/// (|v| <= 2^22; outside that the bits are garbage, but the same garbage as ggml's).
static inline int ck_nearest_int(float v) {
    const float val = v + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}

/// A float converted to an 8-bit integer as ggml's x86-64 build does it (cvttss2si / cvttps2dq,
/// then the low byte): truncation toward zero, NaN and out-of-range values giving INT32_MIN, whose
/// low byte is 0. Plain C casts leave those cases undefined, and a vectorizing compiler may
/// saturate instead; they only arise when a block's scale is subnormal (its reciprocal infinite).
static inline uint8_t ck_cvt_u8(float f) {
    const int32_t i = (f >= -2147483648.0f && f < 2147483648.0f) ? (int32_t)f : INT32_MIN;
    return (uint8_t)(uint32_t)i;
}
static inline int8_t ck_cvt_i8(float f) { return (int8_t)ck_cvt_u8(f); }

// ---- 32-element blocks -------------------------------------------------------------------------

static void quantize_q4_0_ref(const float *x, ck_block_q4_0 *y, size_t nb) {
    for (size_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f, max = 0.0f; // the element of largest magnitude, with its sign (first on ties)
        for (int j = 0; j < 32; j++) {
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        for (int j = 0; j < 16; j++) {
            const float x0 = x[j] * id, x1 = x[j + 16] * id;
            const uint8_t q0 = (uint8_t)ck_imin(15, ck_cvt_i8(x0 + 8.5f));
            const uint8_t q1 = (uint8_t)ck_imin(15, ck_cvt_i8(x1 + 8.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void quantize_q4_1_ref(const float *x, ck_block_q4_1 *y, size_t nb) {
    for (size_t i = 0; i < nb; i++, x += 32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / ((1 << 4) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        y[i].m = F2H(min);
        for (int j = 0; j < 16; j++) {
            const float x0 = (x[j] - min) * id, x1 = (x[j + 16] - min) * id;
            const uint8_t q0 = (uint8_t)ck_imin(15, ck_cvt_i8(x0 + 0.5f));
            const uint8_t q1 = (uint8_t)ck_imin(15, ck_cvt_i8(x1 + 0.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void quantize_q5_0_ref(const float *x, ck_block_q5_0 *y, size_t nb) {
    for (size_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++) {
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const float x0 = x[j] * id, x1 = x[j + 16] * id;
            const uint8_t q0 = (uint8_t)ck_imin(31, ck_cvt_i8(x0 + 16.5f));
            const uint8_t q1 = (uint8_t)ck_imin(31, ck_cvt_i8(x1 + 16.5f));
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= ((q0 & 0x10u) >> 4) << j;
            qh |= ((q1 & 0x10u) >> 4) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void quantize_q5_1_ref(const float *x, ck_block_q5_1 *y, size_t nb) {
    for (size_t i = 0; i < nb; i++, x += 32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        y[i].m = F2H(min);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const float x0 = (x[j] - min) * id, x1 = (x[j + 16] - min) * id;
            const uint8_t q0 = ck_cvt_u8(x0 + 0.5f);
            const uint8_t q1 = ck_cvt_u8(x1 + 0.5f);
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= ((q0 & 0x10u) >> 4) << j;
            qh |= ((q1 & 0x10u) >> 4) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

// Unlike the activation quantizer (ck_quantize_row: 127/amax, round half to even, as llama.cpp's
// x86 quantize_row_q8_0), the reference multiplies by 1/d and rounds half away from zero.
static void quantize_q8_0_ref(const float *x, ck_block_q8_0 *y, size_t nb) {
    for (size_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        for (int j = 0; j < 32; j++) y[i].qs[j] = ck_cvt_i8(roundf(x[j] * id));
    }
}

// ---- scale searches (ggml's make_*_quants) -----------------------------------------------------

/// make_qx_quants with rmse_type 1 and no importance weights (w = x²): a symmetric scale for n
/// values in [-nmax, nmax-1], tried at 19 reciprocal scales around -nmax/max. L gets l + nmax.
static float make_qx_quants_rmse1(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < CK_GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = ck_nearest_int(iscale * x[i]);
        l = ck_imax(-nmax, ck_imin(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = ck_nearest_int(iscale * x[i]);
            l = ck_imax(-nmax, ck_imin(nmax - 1, l));
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                const int l = ck_nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + ck_imax(-nmax, ck_imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/// make_q3_quants with do_rmse: start at -nmax/max, then up to 5 passes moving single values to
/// the level that improves the weighted (w = x²) fit. L gets l + nmax.
static float make_q3_quants_rmse(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < CK_GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = ck_nearest_int(iscale * x[i]);
        l = ck_imax(-nmax, ck_imin(nmax - 1, l));
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = ck_nearest_int(x[i] * sl2 / slx);
                new_l = ck_imax(-nmax, ck_imin(nmax - 1, new_l));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; ++i) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/// make_qkx2_quants: an affine fit x ≈ scale·l - the_min for l in [0, nmax], searched over
/// nstep+1 reciprocal scales (rmin + rdelta·is + nmax)/(max - min), keeping the least weighted
/// error (absolute when use_mad, else squared). Returns the scale; *the_min gets the (positive) min.
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        const int l = ck_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)ck_imax(0, ck_imin(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = ck_nearest_int(iscale * (x[i] - min));
            l = ck_imax(0, ck_imin(nmax, l));
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

// ---- K-quants (super-blocks of 256) ------------------------------------------------------------

/// Packs 256 2-bit values: byte 32h + l holds L[128h + l + 32s] at bits 2s (s = 0…3).
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < CK_QK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
        }
    }
}

static void quantize_q2_K_ref(const float *x, ck_block_q2_K *y, size_t nb) {
    uint8_t L[CK_QK_K], Laux[16];
    float weights[16], mins[16], scales[16];
    const float q4scale = 15.f;
    for (size_t i = 0; i < nb; i++, x += CK_QK_K) {
        float max_scale = 0, max_min = 0; // scales are positive: the min has been deducted
        for (int j = 0; j < 16; ++j) {
            for (int l = 0; l < 16; ++l) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, 1);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < 16; ++j) y[i].scales[j] = (uint8_t)ck_nearest_int(iscale * scales[j]);
            y[i].d = F2H(max_scale / q4scale);
        } else {
            for (int j = 0; j < 16; ++j) y[i].scales[j] = 0;
            y[i].d = F2H(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < 16; ++j) {
                const int l = ck_nearest_int(iscale * mins[j]);
                y[i].scales[j] = (uint8_t)(y[i].scales[j] | (l << 4));
            }
            y[i].dmin = F2H(max_min / q4scale);
        } else {
            y[i].dmin = F2H(0.f);
        }
        for (int j = 0; j < 16; ++j) {
            const float d = H2F(y[i].d) * (y[i].scales[j] & 0xF);
            if (!d) continue; // keeps the search's levels
            const float dm = H2F(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ++ii) {
                const int l = ck_nearest_int((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = (uint8_t)ck_imax(0, ck_imin(3, l));
            }
        }
        pack_2bit(L, y[i].qs);
    }
}

static void quantize_q3_K_ref(const float *x, ck_block_q3_K *y, size_t nb) {
    int8_t L[CK_QK_K];
    float scales[16];
    for (size_t i = 0; i < nb; i++, x += CK_QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; ++j) {
            scales[j] = make_q3_quants_rmse(16, 4, x + 16 * j, L + 16 * j);
            const float scale = fabsf(scales[j]);
            if (scale > amax) { amax = scale; max_scale = scales[j]; }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; ++j) {
                int8_t l = (int8_t)ck_nearest_int(iscale * scales[j]);
                l = (int8_t)(ck_imax(-32, ck_imin(31, l)) + 32);
                if (j < 8) y[i].scales[j] = (uint8_t)(l & 0xF);
                else y[i].scales[j - 8] = (uint8_t)(y[i].scales[j - 8] | ((l & 0xF) << 4));
                l >>= 4;
                y[i].scales[j % 4 + 8] = (uint8_t)(y[i].scales[j % 4 + 8] | (l << (2 * (j / 4))));
            }
            y[i].d = F2H(1 / iscale);
        } else {
            y[i].d = F2H(0.f);
        }
        int8_t sc[16];
        ck_unpack_q3_K_scales(y[i].scales, sc);
        for (int j = 0; j < 16; ++j) {
            const float d = H2F(y[i].d) * sc[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                const int l = ck_nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(ck_imax(-4, ck_imin(3, l)) + 4);
            }
        }
        // The high bit of element j goes to bit j/32 of hmask[j % 32].
        memset(y[i].hmask, 0, 32);
        uint8_t lo[CK_QK_K];
        for (int j = 0; j < CK_QK_K; ++j) {
            if (L[j] > 3) y[i].hmask[j % 32] = (uint8_t)(y[i].hmask[j % 32] | (1u << (j / 32)));
            lo[j] = (uint8_t)(L[j] & 3);
        }
        pack_2bit(lo, y[i].qs);
    }
}

/// Q4_K / Q5_K: one sub-block's affine fit with ggml's weights av_x + |x| (av_x the RMS of the 32).
static float fit_k_sub_block(const float *x, int nmax, uint8_t *L, float *min, float rmin, int nstep) {
    float weights[32];
    uint8_t Laux[32];
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[l] * x[l];
    const float av_x = sqrtf(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[l]);
    return make_qkx2_quants(32, nmax, x, weights, L, min, Laux, rmin, 0.1f, nstep, 0);
}

/// Q4_K / Q5_K: fits the 8 sub-blocks, stores the 6-bit scales and mins and d / dmin, and leaves
/// in L each element's level requantized against the stored (fp16) scales.
static void quantize_k4_scales(const float *x, int nmax, float rmin, int nstep, uint8_t scales12[12], uint16_t *dh,
                               uint16_t *dminh, uint8_t L[CK_QK_K]) {
    float mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        scales[j] = fit_k_sub_block(x + 32 * j, nmax, L + 32 * j, &mins[j], rmin, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; ++j) {
        uint8_t ls = (uint8_t)ck_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)ck_nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            scales12[j] = ls;
            scales12[j + 4] = lm;
        } else {
            scales12[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales12[j - 4] = (uint8_t)(scales12[j - 4] | ((ls >> 4) << 6));
            scales12[j] = (uint8_t)(scales12[j] | ((lm >> 4) << 6));
        }
    }
    *dh = F2H(max_scale / 63.f);
    *dminh = F2H(max_min / 63.f);
    uint8_t sc[8], mn[8];
    ck_unpack_k4_scales(scales12, sc, mn);
    for (int j = 0; j < 8; ++j) {
        const float d = H2F(*dh) * sc[j];
        if (!d) continue;
        const float dm = H2F(*dminh) * mn[j];
        for (int ii = 0; ii < 32; ++ii) {
            const int l = ck_nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)ck_imax(0, ck_imin(nmax, l));
        }
    }
}

static void quantize_q4_K_ref(const float *x, ck_block_q4_K *y, size_t nb) {
    uint8_t L[CK_QK_K];
    for (size_t i = 0; i < nb; i++, x += CK_QK_K) {
        quantize_k4_scales(x, 15, -1.f, 20, y[i].scales, &y[i].d, &y[i].dmin, L);
        // Four chunks of 64: byte 32c + l holds element 64c + l (low nibble) and 64c + 32 + l.
        uint8_t *q = y[i].qs;
        for (int j = 0; j < CK_QK_K; j += 64, q += 32) {
            for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        }
    }
}

static void quantize_q5_K_ref(const float *x, ck_block_q5_K *y, size_t nb) {
    uint8_t L[CK_QK_K];
    for (size_t i = 0; i < nb; i++, x += CK_QK_K) {
        quantize_k4_scales(x, 31, -0.5f, 15, y[i].scales, &y[i].d, &y[i].dmin, L);
        // As Q4_K's nibbles; the fifth bit of elements 64c + l and 64c + 32 + l is bit 2c and 2c+1
        // of qh[l].
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, 32);
        uint8_t m1 = 1, m2 = 2;
        for (int n = 0; n < CK_QK_K; n += 64, ql += 32) {
            for (int j = 0; j < 32; ++j) {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
        }
    }
}

static void quantize_q6_K_ref(const float *x, ck_block_q6_K *y, size_t nb) {
    int8_t L[CK_QK_K];
    float scales[16];
    for (size_t i = 0; i < nb; i++, x += CK_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ++ib) {
            const float scale = make_qx_quants_rmse1(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) { max_abs_scale = abs_scale; max_scale = scale; }
        }
        if (max_abs_scale < CK_GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = F2H(1 / iscale);
        for (int ib = 0; ib < 16; ++ib) y[i].scales[ib] = (int8_t)ck_imin(127, ck_nearest_int(iscale * scales[ib]));
        for (int j = 0; j < 16; ++j) {
            const float d = H2F(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                const int l = ck_nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(ck_imax(-32, ck_imin(31, l)) + 32);
            }
        }
        // Per half of 128: ql[64h + l] = low nibbles of elements l and l+64, ql[64h + 32 + l] of l+32
        // and l+96; qh[32h + l] = the top 2 bits of l, l+32, l+64, l+96 at bits 0, 2, 4, 6.
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < CK_QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; ++l) {
                const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                  ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

// ---- IQ4_NL / IQ4_XS ---------------------------------------------------------------------------

/// The code-book index for x: ggml's best_index_int8 as the reference build has it (bisection over
/// the sorted 16 values, then the nearer neighbour by float differences, the upper one on ties; NaN
/// gives 15). Newer ggml compares x+x with the pair sums instead, which differs only for NaN.
static inline int iq4_best_index(float x) {
    const int8_t *val = ck_iq4nl_values;
    if (x <= val[0]) return 0;
    if (x >= val[15]) return 15;
    int ml = 0, mu = 15;
    while (mu - ml > 1) {
        const int mav = (ml + mu) / 2;
        if (x < val[mav]) mu = mav;
        else ml = mav;
    }
    return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

/// ggml's quantize_row_iq4_nl_impl without importance weights (w = x²) and with ntry = 7, as
/// quantize_iq4_nl / quantize_iq4_xs call it: per 32-element block a scale searched over 15
/// reciprocal scales; IQ4_XS (super_block 256) then stores 6-bit block scales against one d.
/// Fills *dh, q4 (super_block/2 bytes) and, for IQ4_XS, *scales_h and scales_l.
static void quantize_iq4_impl(int super_block, const float *x, uint16_t *dh, uint8_t *q4, uint16_t *scales_h,
                              uint8_t *scales_l) {
    const int ntry = 7;
    const int8_t *values = ck_iq4nl_values;
    float scales[CK_QK_K / 32], weight[32];
    uint8_t L[CK_QK_K];
    memset(q4, 0, (size_t)super_block / 2);
    *dh = F2H(0.f);
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < super_block / 32; ++ib) {
        const float *xb = x + ib * 32;
        uint8_t *Lb = L + ib * 32;
        for (int j = 0; j < 32; ++j) weight[j] = xb[j] * xb[j];
        float amax = 0, max = 0;
        for (int j = 0; j < 32; ++j) {
            const float ax = fabsf(xb[j]);
            if (ax > amax) { amax = ax; max = xb[j]; }
        }
        if (amax < CK_GROUP_MAX_EPS) {
            scales[ib] = 0;
            memset(Lb, 0, 32);
            continue;
        }
        float d = -max / values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < 32; ++j) {
            const int l = iq4_best_index(id * xb[j]);
            Lb[j] = (uint8_t)l;
            const float q = values[l], w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
        float best = d * sumqx;
        for (int itry = -ntry; itry <= ntry; ++itry) {
            id = (itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < 32; ++j) {
                const int l = iq4_best_index(id * xb[j]);
                const float q = values[l], w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        const float abs_d = fabsf(d);
        if (abs_d > amax_scale) { amax_scale = abs_d; max_scale = d; }
    }
    if (super_block / 32 > 1) {
        *scales_h = 0;
        const float d = -max_scale / 32;
        *dh = F2H(d);
        const float id = d ? 1 / d : 0.f;
        for (int ib = 0; ib < super_block / 32; ++ib) {
            int l = ck_nearest_int(id * scales[ib]);
            l = ck_imax(-32, ck_imin(31, l));
            const float dl = d * l;
            const float idl = dl ? 1 / dl : 0.f;
            for (int j = 0; j < 32; ++j) L[ib * 32 + j] = (uint8_t)iq4_best_index(idl * x[ib * 32 + j]);
            l += 32;
            const uint8_t l_l = (uint8_t)(l & 0xf), l_h = (uint8_t)(l >> 4);
            if (ib % 2 == 0) scales_l[ib / 2] = l_l;
            else scales_l[ib / 2] = (uint8_t)(scales_l[ib / 2] | (l_l << 4));
            *scales_h = (uint16_t)(*scales_h | (l_h << 2 * (ib % 8)));
        }
    } else {
        *dh = F2H(scales[0]);
        const float id = scales[0] ? 1 / scales[0] : 0;
        for (int j = 0; j < super_block; ++j) L[j] = (uint8_t)iq4_best_index(id * x[j]);
    }
    for (int i = 0; i < super_block / 32; ++i) {
        for (int j = 0; j < 16; ++j) q4[16 * i + j] = (uint8_t)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
    }
}

static void quantize_iq4_nl(const float *x, ck_block_iq4_nl *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) quantize_iq4_impl(32, x + 32 * i, &y[i].d, y[i].qs, NULL, NULL);
}

static void quantize_iq4_xs(const float *x, ck_block_iq4_xs *y, size_t nb) {
    for (size_t i = 0; i < nb; i++) {
        quantize_iq4_impl(CK_QK_K, x + CK_QK_K * i, &y[i].d, y[i].qs, &y[i].scales_h, y[i].scales_l);
    }
}

// ---- entry point -------------------------------------------------------------------------------

int ck_quantize_weights_supported(int type) {
    switch (type) {
    case CK_F32: case CK_F16: case CK_BF16:
    case CK_Q4_0: case CK_Q4_1: case CK_Q5_0: case CK_Q5_1: case CK_Q8_0:
    case CK_Q2_K: case CK_Q3_K: case CK_Q4_K: case CK_Q5_K: case CK_Q6_K:
    case CK_IQ4_NL: case CK_IQ4_XS:
        return 1;
    default:
        return 0;
    }
}

int ck_quantize_row_ref(int type, const float *x, void *y, size_t n) {
    if (!ck_quantize_weights_supported(type)) return -1;
    const size_t bs = (size_t)ck_block_size(type);
    if (n % bs) return -1;
    const size_t nb = n / bs;
    switch (type) {
    case CK_F32: memcpy(y, x, n * sizeof(float)); return 0;
    case CK_F16: for (size_t i = 0; i < n; i++) ((uint16_t *)y)[i] = F2H(x[i]); return 0;
    case CK_BF16: for (size_t i = 0; i < n; i++) ((uint16_t *)y)[i] = ck_fp32_to_bf16(x[i]); return 0;
    case CK_Q4_0: quantize_q4_0_ref(x, y, nb); return 0;
    case CK_Q4_1: quantize_q4_1_ref(x, y, nb); return 0;
    case CK_Q5_0: quantize_q5_0_ref(x, y, nb); return 0;
    case CK_Q5_1: quantize_q5_1_ref(x, y, nb); return 0;
    case CK_Q8_0: quantize_q8_0_ref(x, y, nb); return 0;
    case CK_Q2_K: quantize_q2_K_ref(x, y, nb); return 0;
    case CK_Q3_K: quantize_q3_K_ref(x, y, nb); return 0;
    case CK_Q4_K: quantize_q4_K_ref(x, y, nb); return 0;
    case CK_Q5_K: quantize_q5_K_ref(x, y, nb); return 0;
    case CK_Q6_K: quantize_q6_K_ref(x, y, nb); return 0;
    case CK_IQ4_NL: quantize_iq4_nl(x, y, nb); return 0;
    case CK_IQ4_XS: quantize_iq4_xs(x, y, nb); return 0;
    default: return -1;
    }
}
