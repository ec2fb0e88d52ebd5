/* gemm_neon.c — the NEON fp32 GEMM micro-kernel for arm64: an 8 x 12 tile of C held in 24 of the 32 q registers
 * (8 rows x 3 vectors of 4), fed per step by two vectors of A (8 rows) and three of B (12 columns), 24 FMAs per
 * 5 loads. Each FMA takes its A value as a lane of a loaded vector (vfmaq_laneq_f32): no broadcasts. Panels come
 * packed by gemm.c, or B straight from its rows (direct) and packed on the way, as the AVX2 kernel does. Edge
 * tiles get their own row count and vector count; partial vectors go through a small buffer. NEON is part of the
 * arm64 base ISA, so this file needs no flags and no CPU check. */
#include <arm_neon.h>
#include <string.h>

#include "../gemm_internal.h"

#define MR KERN_GEMM_NEON_MR
#define NR KERN_GEMM_NEON_NR
#define NV (NR / 4) /* vectors per row of the tile */

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* acc + b * a[lane]. The lane must be an immediate: the switch folds away once lane is a constant (unrolled rows). */
ALWAYS_INLINE float32x4_t fma_lane(float32x4_t acc, float32x4_t b, float32x4_t a, int lane) {
    switch (lane) {
    case 0: return vfmaq_laneq_f32(acc, b, a, 0);
    case 1: return vfmaq_laneq_f32(acc, b, a, 1);
    case 2: return vfmaq_laneq_f32(acc, b, a, 2);
    default: return vfmaq_laneq_f32(acc, b, a, 3);
    }
}

/* The first lanes (0..4) of p, zero above; never reads past them. */
ALWAYS_INLINE float32x4_t load_lanes(const float *p, size_t lanes) {
    if (lanes >= 4) return vld1q_f32(p);
    float tmp[4] = {0, 0, 0, 0};
    memcpy(tmp, p, lanes * sizeof(float));
    return vld1q_f32(tmp);
}

ALWAYS_INLINE void store_lanes(float *p, float32x4_t v, size_t lanes) {
    if (lanes >= 4) {
        vst1q_f32(p, v);
        return;
    }
    float tmp[4];
    vst1q_f32(tmp, v);
    memcpy(p, tmp, lanes * sizeof(float));
}

/* Valid lanes of vector v of a row with n valid columns. */
ALWAYS_INLINE size_t lanes_of(int v, size_t n) {
    size_t lo = (size_t)v * 4;
    return n <= lo ? 0 : n - lo >= 4 ? 4 : n - lo;
}

ALWAYS_INLINE float32x4_t finish(float32x4_t x, const float *cp, size_t lanes, const kern_gemm_tile *t,
                                 float32x4_t bias, float32x4_t lo, float32x4_t hi) {
    if (t->load_c) x = vfmaq_n_f32(x, load_lanes(cp, lanes), t->beta);
    x = vaddq_f32(x, bias);
    switch (t->act) {
    case KERN_GEMM_TILE_ACT_RELU: x = vmaxnmq_f32(x, vdupq_n_f32(0)); break; /* NaN -> 0, as the reference */
    case KERN_GEMM_TILE_ACT_CLIP: x = vminq_f32(hi, vmaxq_f32(lo, x)); break; /* NaN passes through */
    case KERN_GEMM_TILE_ACT_LEAKY: x = vbslq_f32(vcltzq_f32(x), vmulq_f32(x, lo), x); break;
    default: break;
    }
    return x;
}

/* rows, vecs and direct are compile-time constants after inlining, so acc lives in registers. The hot loop. */
ALWAYS_INLINE void tile_body(const int rows, const int vecs, const int direct, size_t kc, const float *restrict a,
                             const kern_gemm_b *bsrc, float *restrict c, size_t ldc, size_t n,
                             const kern_gemm_tile *t) {
    const float *b = bsrc->b;
    float *copy = direct ? bsrc->copy : NULL;
    const size_t b_step = direct ? bsrc->ldb : NR;
    const int full = n == NR;
    float32x4_t acc[MR][NV];
#pragma GCC unroll 8
    for (int i = 0; i < rows; i++)
#pragma GCC unroll 3
        for (int v = 0; v < vecs; v++) acc[i][v] = vdupq_n_f32(0);

#pragma GCC unroll 2
    for (size_t k = 0; k < kc; k++) {
        float32x4_t bv[NV];
#pragma GCC unroll 3
        for (int v = 0; v < vecs; v++)
            bv[v] = direct && !full ? load_lanes(b + 4 * v, lanes_of(v, n)) : vld1q_f32(b + 4 * v);
        if (copy) { /* the packed panel is NR wide, zero padded */
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) vst1q_f32(copy + 4 * v, v < vecs ? bv[v] : vdupq_n_f32(0));
            copy += NR;
        }
        float32x4_t a0 = vld1q_f32(a), a1 = rows > 4 ? vld1q_f32(a + 4) : a0;
#pragma GCC unroll 8
        for (int i = 0; i < rows; i++)
#pragma GCC unroll 3
            for (int v = 0; v < vecs; v++) acc[i][v] = fma_lane(acc[i][v], bv[v], i < 4 ? a0 : a1, i & 3);
        a += MR;
        b += b_step;
    }

    float32x4_t lo = vdupq_n_f32(t->act_alpha), hi = vdupq_n_f32(t->act_beta);
    float32x4_t bc[NV];
#pragma GCC unroll 3
    for (int v = 0; v < vecs; v++)
        bc[v] = t->bias_col ? load_lanes(t->bias_col + 4 * v, lanes_of(v, n)) : vdupq_n_f32(0);
    const float *ci = t->c_in ? t->c_in : c;
    const size_t ldi = t->c_in ? t->ldc_in : ldc;
#pragma GCC unroll 8
    for (int i = 0; i < rows; i++) {
        float *cp = c + (size_t)i * ldc;
        const float *ip = ci + (size_t)i * ldi;
        float32x4_t br = vdupq_n_f32(t->bias_row ? t->bias_row[i] : 0.0f);
#pragma GCC unroll 3
        for (int v = 0; v < vecs; v++) {
            size_t lanes = full ? 4 : lanes_of(v, n);
            float32x4_t x = finish(acc[i][v], ip + 4 * v, lanes, t, vaddq_f32(bc[v], br), lo, hi);
            store_lanes(cp + 4 * v, x, lanes);
        }
    }
}

#define VARIANT(R, V, D)                                                                                               \
    static void tile_##R##_##V##_##D(size_t kc, const float *a, const kern_gemm_b *b, float *c, size_t ldc, size_t n,  \
                                     const kern_gemm_tile *t) {                                                        \
        tile_body(R, V, D, kc, a, b, c, ldc, n, t);                                                                    \
    }
#define VARIANTS(R)                                                                                                    \
    VARIANT(R, 1, 0) VARIANT(R, 2, 0) VARIANT(R, 3, 0) VARIANT(R, 1, 1) VARIANT(R, 2, 1) VARIANT(R, 3, 1)
#define ROW(R)                                                                                                         \
    {{tile_##R##_1_0, tile_##R##_1_1}, {tile_##R##_2_0, tile_##R##_2_1}, {tile_##R##_3_0, tile_##R##_3_1}}

VARIANTS(1)
VARIANTS(2)
VARIANTS(3)
VARIANTS(4)
VARIANTS(5)
VARIANTS(6)
VARIANTS(7)
VARIANTS(8)

typedef void (*tile_fn)(size_t, const float *, const kern_gemm_b *, float *, size_t, size_t, const kern_gemm_tile *);

/* [rows - 1][vectors - 1][direct] */
static const tile_fn tiles[MR][NV][2] = {ROW(1), ROW(2), ROW(3), ROW(4), ROW(5), ROW(6), ROW(7), ROW(8)};
_Static_assert(MR == 8 && NR == 12, "the variant table above is written for an 8 x 12 tile");

void kern_gemm_ukernel_neon(size_t kc, const float *a, const kern_gemm_b *b, float *c, size_t ldc, size_t m, size_t n,
                            const kern_gemm_tile *tile) {
    tiles[m - 1][(n + 3) / 4 - 1][b->ldb != 0](kc, a, b, c, ldc, n, tile);
}

/* ---- Packing ---------------------------------------------------------------------------------------------------- */

/* 4 x 4 transpose: on return r[j] holds column j of the input rows. */
ALWAYS_INLINE void transpose4(float32x4_t r[4]) {
    float32x4_t t0 = vtrn1q_f32(r[0], r[1]), t1 = vtrn2q_f32(r[0], r[1]);
    float32x4_t t2 = vtrn1q_f32(r[2], r[3]), t3 = vtrn2q_f32(r[2], r[3]);
    r[0] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[1] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
    r[2] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[3] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
}

void kern_gemm_pack_rows_neon(const float *src, size_t ld, size_t rows, size_t kc, float scale, float *dst,
                              size_t width) {
    for (size_t g = 0; g < width; g += 4) {
        size_t lanes = width - g < 4 ? width - g : 4, valid = rows > g ? (rows - g < lanes ? rows - g : lanes) : 0;
        size_t k = 0;
        for (; k + 4 <= kc; k += 4) {
            float32x4_t r[4];
#pragma GCC unroll 4
            for (size_t i = 0; i < 4; i++)
                r[i] = i < valid ? vmulq_n_f32(vld1q_f32(src + (g + i) * ld + k), scale) : vdupq_n_f32(0);
            transpose4(r);
#pragma GCC unroll 4
            for (size_t kk = 0; kk < 4; kk++) store_lanes(dst + (k + kk) * width + g, r[kk], lanes);
        }
        for (; k < kc; k++)
            for (size_t i = 0; i < lanes; i++)
                dst[k * width + g + i] = i < valid ? scale * src[(g + i) * ld + k] : 0.0f;
    }
}
