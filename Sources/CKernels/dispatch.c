// Run-time CPU feature detection and dispatch of the dequantize / quantize / dot entry points.
#include "ck_internal.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int ck_isa_forced = -1;
static _Atomic int ck_features_on = 0;

int ck_cpu_features(void) {
    int f = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avxvnni") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) f |= CK_FEAT_AVXVNNI;
    // The 512-bit kernels also use AVX-VNNI's 256-bit ones (for a lone group of tokens).
    if ((f & CK_FEAT_AVXVNNI) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni"))
        f |= CK_FEAT_AVX512VNNI;
#endif
    return f;
}

static int ck_features_for(int level) { return level >= CK_ISA_AVX2 ? ck_cpu_features() : 0; }

int ck_active_features(void) {
    (void)ck_active_isa();
    return atomic_load_explicit(&ck_features_on, memory_order_relaxed);
}

int ck_cpu_isa(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma")) {
        return CK_ISA_AVX512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CK_ISA_AVX2;
#endif
    return CK_ISA_SCALAR;
}

int ck_active_isa(void) {
    const int forced = atomic_load_explicit(&ck_isa_forced, memory_order_relaxed);
    if (forced >= 0) return forced;
    // VERITY_ISA=scalar|avx2|avx512 caps the level (to test the fallbacks on a capable CPU).
    // VERITY_ISA=avx2 also turns AVX-VNNI off (plain AVX2 kernels); VERITY_VNNI=0 turns only the VNNI
    // kernels off (256- and 512-bit); below avx512 the 512-bit ones are off.
    int level = ck_cpu_isa();
    int features = ck_features_for(level);
    const char *env = getenv("VERITY_ISA");
    if (env) {
        int cap = level;
        if (strcmp(env, "scalar") == 0) cap = CK_ISA_SCALAR;
        else if (strcmp(env, "avx2") == 0) { cap = CK_ISA_AVX2; features = 0; }
        else if (strcmp(env, "avx512") == 0) cap = CK_ISA_AVX512;
        if (cap < level) level = cap;
        if (level < CK_ISA_AVX2) features = 0;
        if (level < CK_ISA_AVX512) features &= ~CK_FEAT_AVX512VNNI;
    }
    const char *vnni = getenv("VERITY_VNNI");
    if (vnni && strcmp(vnni, "0") == 0) features &= ~(CK_FEAT_AVXVNNI | CK_FEAT_AVX512VNNI);
    atomic_store_explicit(&ck_features_on, features, memory_order_relaxed);
    atomic_store_explicit(&ck_isa_forced, level, memory_order_relaxed);
    return level;
}

int ck_set_isa(int isa) {
    const int best = ck_cpu_isa();
    if (isa < 0 || isa > best) isa = best;
    atomic_store_explicit(&ck_features_on, ck_features_for(isa), memory_order_relaxed);
    atomic_store_explicit(&ck_isa_forced, isa, memory_order_relaxed);
    return isa;
}

int ck_block_size(int type) {
    switch (type) {
    case CK_F32: case CK_F16: case CK_BF16: return 1;
    case CK_Q4_0: case CK_Q4_1: case CK_Q5_0: case CK_Q5_1: case CK_Q8_0: case CK_Q8_1: case CK_IQ4_NL: return CK_QK;
    case CK_Q2_K: case CK_Q3_K: case CK_Q4_K: case CK_Q5_K: case CK_Q6_K: case CK_Q8_K: case CK_IQ4_XS: return CK_QK_K;
    default: return -1;
    }
}

int ck_block_bytes(int type) {
    switch (type) {
    case CK_F32: return 4;
    case CK_F16: case CK_BF16: return 2;
    case CK_Q4_0: return (int)sizeof(ck_block_q4_0);
    case CK_Q4_1: return (int)sizeof(ck_block_q4_1);
    case CK_Q5_0: return (int)sizeof(ck_block_q5_0);
    case CK_Q5_1: return (int)sizeof(ck_block_q5_1);
    case CK_Q8_0: return (int)sizeof(ck_block_q8_0);
    case CK_Q8_1: return (int)sizeof(ck_block_q8_1);
    case CK_Q2_K: return (int)sizeof(ck_block_q2_K);
    case CK_Q3_K: return (int)sizeof(ck_block_q3_K);
    case CK_Q4_K: return (int)sizeof(ck_block_q4_K);
    case CK_Q5_K: return (int)sizeof(ck_block_q5_K);
    case CK_Q6_K: return (int)sizeof(ck_block_q6_K);
    case CK_Q8_K: return (int)sizeof(ck_block_q8_K);
    case CK_IQ4_NL: return (int)sizeof(ck_block_iq4_nl);
    case CK_IQ4_XS: return (int)sizeof(ck_block_iq4_xs);
    default: return -1;
    }
}

int ck_vec_dot_type(int type) {
    switch (type) {
    case CK_F32: return CK_F32;
    case CK_F16: return CK_F16;
    case CK_BF16: return CK_BF16;
    case CK_Q4_0: case CK_Q5_0: case CK_Q8_0: case CK_IQ4_NL: return CK_Q8_0;
    case CK_Q2_K: case CK_Q3_K: case CK_Q4_K: case CK_Q5_K: case CK_Q6_K: case CK_IQ4_XS: return CK_Q8_K;
    case CK_Q4_1: case CK_Q5_1: return CK_Q8_1;
    default: return -1;
    }
}

size_t ck_row_bytes(int type, size_t n) {
    const int bs = ck_block_size(type), bb = ck_block_bytes(type);
    if (bs <= 0 || bb <= 0) return 0;
    return n / (size_t)bs * (size_t)bb;
}

int ck_dequantize_row(int type, const void *x, float *y, size_t n) {
    if (type == CK_F16) { ck_fp16_to_fp32_row(x, y, n); return 0; }
    if (ck_active_isa() >= CK_ISA_AVX2) {
        switch (type) {
        case CK_Q2_K: case CK_Q3_K: case CK_Q4_K: case CK_Q5_K: case CK_Q6_K: case CK_Q8_K: case CK_IQ4_NL: case CK_IQ4_XS:
            return ck_dequantize_kq_avx2(type, x, y, n);
        default: break;
        }
    }
    return ck_dequantize_row_scalar(type, x, y, n);
}

int ck_quantize_row(int type, const float *x, void *y, size_t n) {
    if (ck_active_isa() >= CK_ISA_AVX2) {
        switch (type) {
        case CK_Q8_0: if (n % CK_QK) return -1; ck_quantize_q8_0_avx2(x, y, n); return 0;
        case CK_Q8_1: if (n % CK_QK) return -1; ck_quantize_q8_1_avx2(x, y, n); return 0;
        case CK_Q8_K: if (n % CK_QK_K) return -1; ck_quantize_q8_K_avx2(x, y, n); return 0;
        case CK_F16: ck_fp32_to_fp16_row_avx2(x, y, n); return 0;
        default: break;
        }
    }
    return ck_quantize_row_scalar(type, x, y, n);
}

ck_tile_fn ck_resolve_tile(int type) {
    if (ck_active_isa() < CK_ISA_AVX2) return NULL;
    if (ck_active_features() & CK_FEAT_AVXVNNI) return ck_resolve_tile_vnni(type);
    return ck_resolve_tile_avx2(type);
}

ck_tok_fn ck_resolve_tok(int type) {
    if (ck_active_isa() >= CK_ISA_AVX512 && (ck_active_features() & CK_FEAT_AVX512VNNI)) return ck_resolve_tok_avx512(type);
    if (ck_active_isa() >= CK_ISA_AVX2 && (ck_active_features() & CK_FEAT_AVXVNNI)) return ck_resolve_tok_vnni(type);
    return NULL;
}

static float ck_vec_dot_vnni(int type, const void *x, const void *y, size_t n) {
    switch (type) {
    case CK_Q4_0: return ck_dot_q4_0_q8_0_vnni(x, y, n);
    case CK_Q4_1: return ck_dot_q4_1_q8_1_vnni(x, y, n);
    case CK_Q5_0: return ck_dot_q5_0_q8_0_vnni(x, y, n);
    case CK_Q5_1: return ck_dot_q5_1_q8_1_vnni(x, y, n);
    case CK_Q8_0: return ck_dot_q8_0_q8_0_vnni(x, y, n);
    case CK_IQ4_NL: return ck_dot_iq4_nl_q8_0_vnni(x, y, n);
    case CK_Q4_K: return ck_dot_q4_K_q8_K_vnni(x, y, n);
    case CK_Q6_K: return ck_dot_q6_K_q8_K_vnni(x, y, n);
    default: return ck_vec_dot_variant(CK_VARIANT_AVX2, type, x, y, n);
    }
}

int ck_variant_available(int variant) {
    switch (variant) {
    case CK_VARIANT_SCALAR: return 1;
    case CK_VARIANT_AVX2: return ck_cpu_isa() >= CK_ISA_AVX2;
    case CK_VARIANT_AVXVNNI: return ck_cpu_isa() >= CK_ISA_AVX2 && (ck_cpu_features() & CK_FEAT_AVXVNNI);
    default: return 0;
    }
}

float ck_vec_dot(int type, const void *x, const void *y, size_t n) {
    const int isa = ck_active_isa();
    if (isa < CK_ISA_AVX2) return ck_vec_dot_scalar(type, x, y, n);
    if (ck_active_features() & CK_FEAT_AVXVNNI) return ck_vec_dot_vnni(type, x, y, n);
    return ck_vec_dot_variant(CK_VARIANT_AVX2, type, x, y, n);
}

float ck_vec_dot_variant(int variant, int type, const void *x, const void *y, size_t n) {
    if (!ck_variant_available(variant)) return NAN;
    if (variant == CK_VARIANT_AVXVNNI) return ck_vec_dot_vnni(type, x, y, n);
    if (variant == CK_VARIANT_AVX2) {
        switch (type) {
        case CK_F32: return ck_dot_f32_avx2(x, y, n);
        case CK_F16: return ck_dot_f16_f16_avx2(x, y, n);
        case CK_Q4_0: return ck_dot_q4_0_q8_0_avx2(x, y, n);
        case CK_Q4_1: return ck_dot_q4_1_q8_1_avx2(x, y, n);
        case CK_Q5_0: return ck_dot_q5_0_q8_0_avx2(x, y, n);
        case CK_Q5_1: return ck_dot_q5_1_q8_1_avx2(x, y, n);
        case CK_Q8_0: return ck_dot_q8_0_q8_0_avx2(x, y, n);
        case CK_Q2_K: return ck_dot_q2_K_q8_K_avx2(x, y, n);
        case CK_Q3_K: return ck_dot_q3_K_q8_K_avx2(x, y, n);
        case CK_Q4_K: return ck_dot_q4_K_q8_K_avx2(x, y, n);
        case CK_Q5_K: return ck_dot_q5_K_q8_K_avx2(x, y, n);
        case CK_Q6_K: return ck_dot_q6_K_q8_K_avx2(x, y, n);
        case CK_IQ4_NL: return ck_dot_iq4_nl_q8_0_avx2(x, y, n);
        case CK_IQ4_XS: return ck_dot_iq4_xs_q8_K_avx2(x, y, n);
        default: break;
        }
    }
    return ck_vec_dot_scalar(type, x, y, n);
}

float ck_dot_f32(const float *x, const float *y, size_t n) {
    if (ck_active_isa() >= CK_ISA_AVX2) return ck_dot_f32_avx2(x, y, n);
    return ck_dot_f32_scalar(x, y, n);
}
