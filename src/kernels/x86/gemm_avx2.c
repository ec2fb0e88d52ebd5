/* gemm_avx2.c — the AVX2/FMA fp32 GEMM micro-kernel: a 6 x 16 tile of C held in 12 ymm accumulators, fed from
 * panels packed by gemm.c, or with B read straight from its rows and packed on the way. Edge tiles get their own
 * row count and masked column loads/stores. Compiled with -mavx2 -mfma; only called after a CPU check. */
#include <immintrin.h>

#include "../gemm_internal.h"

#define MR KERN_GEMM_AVX2_MR
#define NR KERN_GEMM_AVX2_NR

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Lane mask with the first n (0..8) lanes set. */
ALWAYS_INLINE __m256i lane_mask(size_t n) {
    static const int32_t ramp[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(ramp + 8 - n));
}

/* full: all 8 lanes valid, so plain loads and stores (vmaskmovps is microcoded and slow on AMD) */
ALWAYS_INLINE __m256 finish(__m256 x, const float *cp, int full, __m256i mask, const kern_gemm_tile *t, __m256 bias,
                            __m256 beta, __m256 lo, __m256 hi) {
    if (t->load_c) x = _mm256_fmadd_ps(beta, full ? _mm256_loadu_ps(cp) : _mm256_maskload_ps(cp, mask), x);
    x = _mm256_add_ps(x, bias);
    switch (t->act) {
    case KERN_GEMM_TILE_ACT_RELU: x = _mm256_max_ps(x, _mm256_setzero_ps()); break; /* NaN -> 0, as the reference */
    case KERN_GEMM_TILE_ACT_CLIP: x = _mm256_min_ps(hi, _mm256_max_ps(lo, x)); break; /* NaN passes through */
    case KERN_GEMM_TILE_ACT_LEAKY: {
        __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
        x = _mm256_blendv_ps(x, _mm256_mul_ps(x, lo), neg);
        break;
    }
    default: break;
    }
    return x;
}

/* Loads step k's B vectors (and in direct mode copies them to the packed panel). */
ALWAYS_INLINE void load_b(const int vecs, const int direct, const float *b, float *copy, int full, __m256i m0,
                          __m256i m1, __m256 *b0, __m256 *b1) {
    if (!direct) {
        *b0 = _mm256_loadu_ps(b);
        *b1 = vecs > 1 ? _mm256_loadu_ps(b + 8) : *b0;
        return;
    }
    *b0 = full ? _mm256_loadu_ps(b) : _mm256_maskload_ps(b, m0);
    *b1 = vecs > 1 ? (full ? _mm256_loadu_ps(b + 8) : _mm256_maskload_ps(b + 8, m1)) : _mm256_setzero_ps();
    if (copy) {
        _mm256_storeu_ps(copy, *b0);
        _mm256_storeu_ps(copy + 8, *b1);
    }
}

/* rows, vecs and direct are compile-time constants after inlining, so acc lives in registers. The hot loop. */
ALWAYS_INLINE void tile_body(const int rows, const int vecs, const int direct, size_t kc, const float *restrict a,
                             const kern_gemm_b *bsrc, float *restrict c, size_t ldc, size_t n,
                             const kern_gemm_tile *t) {
    const float *b = bsrc->b;
    float *copy = direct ? bsrc->copy : NULL;
    const size_t b_step = direct ? bsrc->ldb : NR;
    __m256i m0 = lane_mask(n >= 8 ? 8 : n), m1 = lane_mask(n >= 16 ? 8 : n > 8 ? n - 8 : 0);
    const int full = n == NR;
    __m256 acc[MR][2];
#pragma GCC unroll 8
    for (int i = 0; i < rows; i++) {
        acc[i][0] = _mm256_setzero_ps();
        acc[i][1] = _mm256_setzero_ps();
    }
#pragma GCC unroll 4
    for (size_t k = 0; k < kc; k++) {
        __m256 b0, b1;
        load_b(vecs, direct, b, copy, full, m0, m1, &b0, &b1);
#pragma GCC unroll 8
        for (int i = 0; i < rows; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            if (vecs > 1) acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += MR;
        b += b_step;
        if (copy) copy += NR;
    }

    __m256 beta = _mm256_set1_ps(t->beta);
    __m256 lo = _mm256_set1_ps(t->act_alpha), hi = _mm256_set1_ps(t->act_beta);
    __m256 bc0 = _mm256_setzero_ps(), bc1 = _mm256_setzero_ps();
    if (t->bias_col) {
        bc0 = _mm256_maskload_ps(t->bias_col, m0);
        if (vecs > 1) bc1 = _mm256_maskload_ps(t->bias_col + 8, m1);
    }
    const float *ci = t->c_in ? t->c_in : c;
    const size_t ldi = t->c_in ? t->ldc_in : ldc;
#pragma GCC unroll 8
    for (int i = 0; i < rows; i++) {
        float *cp = c + (size_t)i * ldc;
        const float *ip = ci + (size_t)i * ldi;
        __m256 br = t->bias_row ? _mm256_set1_ps(t->bias_row[i]) : _mm256_setzero_ps();
        __m256 x0 = finish(acc[i][0], ip, full, m0, t, _mm256_add_ps(bc0, br), beta, lo, hi);
        if (full) _mm256_storeu_ps(cp, x0);
        else _mm256_maskstore_ps(cp, m0, x0);
        if (vecs > 1) {
            __m256 x1 = finish(acc[i][1], ip + 8, full, m1, t, _mm256_add_ps(bc1, br), beta, lo, hi);
            if (full) _mm256_storeu_ps(cp + 8, x1);
            else _mm256_maskstore_ps(cp + 8, m1, x1);
        }
    }
}

#define VARIANT(R, V, D)                                                                                               \
    static void tile_##R##_##V##_##D(size_t kc, const float *a, const kern_gemm_b *b, float *c, size_t ldc, size_t n,  \
                                     const kern_gemm_tile *t) {                                                        \
        tile_body(R, V, D, kc, a, b, c, ldc, n, t);                                                                    \
    }
#define VARIANTS(R) VARIANT(R, 1, 0) VARIANT(R, 2, 0) VARIANT(R, 1, 1) VARIANT(R, 2, 1)
#define ROW(R) {{tile_##R##_1_0, tile_##R##_1_1}, {tile_##R##_2_0, tile_##R##_2_1}}

VARIANTS(1)
VARIANTS(2)
VARIANTS(3)
VARIANTS(4)
VARIANTS(5)
VARIANTS(6)

typedef void (*tile_fn)(size_t, const float *, const kern_gemm_b *, float *, size_t, size_t, const kern_gemm_tile *);

/* [rows - 1][n > 8][direct] */
static const tile_fn tiles[MR][2][2] = {ROW(1), ROW(2), ROW(3), ROW(4), ROW(5), ROW(6)};
_Static_assert(MR == 6 && NR == 16, "the variant table above is written for a 6 x 16 tile");

void kern_gemm_ukernel_avx2(size_t kc, const float *a, const kern_gemm_b *b, float *c, size_t ldc, size_t m,
                            size_t n, const kern_gemm_tile *tile) {
    tiles[m - 1][n > 8][b->ldb != 0](kc, a, b, c, ldc, n, tile);
}

/* ---- Packing ---------------------------------------------------------------------------------------------------- */

/* 8 x 8 transpose: on return r[j] holds column j of the input rows. */
ALWAYS_INLINE void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* Stores the first lanes (1..8) of v without vmaskmovps, which is microcoded and slow on AMD. */
ALWAYS_INLINE void store_lanes(float *d, __m256 v, size_t lanes) {
    if (lanes == 8) {
        _mm256_storeu_ps(d, v);
        return;
    }
    __m128 part = _mm256_castps256_ps128(v);
    if (lanes >= 4) {
        _mm_storeu_ps(d, part);
        part = _mm256_extractf128_ps(v, 1);
        d += 4;
        lanes -= 4;
    }
    if (lanes >= 2) {
        _mm_storel_pi((__m64 *)d, part);
        part = _mm_movehl_ps(part, part);
        d += 2;
        lanes -= 2;
    }
    if (lanes) _mm_store_ss(d, part);
}

void kern_gemm_pack_rows_avx2(const float *src, size_t ld, size_t rows, size_t kc, float scale, float *dst,
                              size_t width) {
    const __m256 s = _mm256_set1_ps(scale);
    for (size_t g = 0; g < width; g += 8) {
        size_t lanes = width - g < 8 ? width - g : 8, valid = rows > g ? (rows - g < lanes ? rows - g : lanes) : 0;
        size_t k = 0;
        for (; k + 8 <= kc; k += 8) {
            __m256 r[8];
#pragma GCC unroll 8
            for (size_t i = 0; i < 8; i++)
                r[i] = i < valid ? _mm256_mul_ps(s, _mm256_loadu_ps(src + (g + i) * ld + k)) : _mm256_setzero_ps();
            transpose8(r);
#pragma GCC unroll 8
            for (size_t kk = 0; kk < 8; kk++) store_lanes(dst + (k + kk) * width + g, r[kk], lanes);
        }
        for (; k < kc; k++)
            for (size_t i = 0; i < lanes; i++)
                dst[k * width + g + i] = i < valid ? scale * src[(g + i) * ld + k] : 0.0f;
    }
}
