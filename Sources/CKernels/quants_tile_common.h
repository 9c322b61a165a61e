// Helpers both tile templates share (quants_tile_impl.h, quants_tile_vnni.h), instantiated per
// variant: included after CK_SFX, CK_TGT and CK_FN are defined, once per including template.

// 32 bits at p (unaligned).
CK_TGT static inline uint32_t CK_FN(ld32)(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

// fp16 pairs at the start of up to 4 blocks (stride bytes apart) → 8 floats; lanes of absent
// blocks are 0. `pair` keeps the second half (m or s); otherwise odd lanes are 0.
CK_TGT static inline __m256 CK_FN(scales4)(const uint8_t *p, size_t stride, int count, int pair) {
    __m128i v = _mm_cvtsi32_si128((int)CK_FN(ld32)(p));
    if (count > 1) v = _mm_insert_epi32(v, (int)CK_FN(ld32)(p + stride), 1);
    if (count > 2) v = _mm_insert_epi32(v, (int)CK_FN(ld32)(p + 2 * stride), 2);
    if (count > 3) v = _mm_insert_epi32(v, (int)CK_FN(ld32)(p + 3 * stride), 3);
    if (!pair) v = _mm_and_si128(v, _mm_set1_epi32(0xFFFF));
    return _mm256_cvtph_ps(v);
}

static inline int CK_FN(has_min)(int type) { return type == CK_Q4_1 || type == CK_Q5_1; }

// Types llama.cpp's x86 build repacks (Q4_0, IQ4_NL: its 8×8 GEMM): per block one exact integer
// sum and acc = fma(sum, dx·dy, acc), instead of the 8 float lanes of the others.
static inline int CK_FN(block_form)(int type) { return type == CK_Q4_0 || type == CK_IQ4_NL; }


static inline size_t CK_FN(xbytes)(int type) {
    switch (type) {
    case CK_Q4_0: return sizeof(ck_block_q4_0);
    case CK_Q4_1: return sizeof(ck_block_q4_1);
    case CK_Q5_0: return sizeof(ck_block_q5_0);
    case CK_Q5_1: return sizeof(ck_block_q5_1);
    case CK_IQ4_NL: return sizeof(ck_block_iq4_nl);
    default: return sizeof(ck_block_q8_0);
    }
}

// The tile kernel of a 32-element block type (NULL for other types), by the names both templates
// give them (the VNNI ones take one token at a time). Expanded once per template, after its kernels.
#ifndef CK_RESOLVE_TILE
#define CK_RESOLVE_TILE                                                                              \
    ck_tile_fn CK_FN(ck_resolve_tile)(int type) {                                                    \
        switch (type) {                                                                              \
        case CK_Q4_0: return CK_FN(tile_q4_0_q8_0);                                                  \
        case CK_Q4_1: return CK_FN(tile_q4_1_q8_1);                                                  \
        case CK_Q5_0: return CK_FN(tile_q5_0_q8_0);                                                  \
        case CK_Q5_1: return CK_FN(tile_q5_1_q8_1);                                                  \
        case CK_Q8_0: return CK_FN(tile_q8_0_q8_0);                                                  \
        case CK_IQ4_NL: return CK_FN(tile_iq4_nl_q8_0);                                              \
        default: return NULL;                                                                        \
        }                                                                                            \
    }
#endif
