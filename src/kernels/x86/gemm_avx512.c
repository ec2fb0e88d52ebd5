/* gemm_avx512.c — the AVX-512 fp32 GEMM micro-kernel: a 12 x 32 tile of C held in 24 zmm accumulators, fed from
 * panels packed by gemm.c, or with B read straight from its rows and packed on the way. Edge tiles get their own
 * row count (no FMAs wasted on padding rows) and masked column loads/stores. Compiled with -mavx512f -mfma; only
 * called after a CPU check. */
#include <immintrin.h>

#include "../gemm_internal.h"

#define MR KERN_GEMM_AVX512_MR
#define NR KERN_GEMM_AVX512_NR

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define A_PREFETCH_BYTES (32 * MR * sizeof(float))

/* x Phi(x) in the lanes with x^2 < 2, as act_gelu computes them there (act_body.h's act_gelu_small_phi); the other
 * lanes keep x, for kern_gemm_gelu_rest_avx512, and are added to *raw where they are stored (mask). */
ALWAYS_INLINE __m512 gelu_small(__m512 x, __mmask16 mask, __mmask16 *raw) {
    __m512 x2 = _mm512_mul_ps(x, x);
    __mmask16 small = _mm512_cmp_ps_mask(x2, _mm512_set1_ps(2.0f), _CMP_LT_OQ);
    *raw |= (__mmask16)(~small & mask);
    __m512 p = _mm512_set1_ps(-6.221139756e-06f);
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(1.086596967e-04f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.180477440e-03f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(9.970359504e-03f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-6.648982316e-02f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(3.989422619e-01f));
    return _mm512_mask_mul_ps(x, small, x, _mm512_fmadd_ps(p, x, _mm512_set1_ps(0.5f)));
}

ALWAYS_INLINE __m512 finish(__m512 x, const float *cp, __mmask16 mask, const kern_gemm_tile *t, __m512 bias_col,
                            __m512 beta, __m512 lo, __m512 hi, __mmask16 *raw) {
    if (t->load_c) x = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(mask, cp), x);
    x = _mm512_add_ps(x, bias_col);
    switch (t->act) {
    case KERN_GEMM_TILE_ACT_RELU: x = _mm512_max_ps(x, _mm512_setzero_ps()); break; /* NaN -> 0, as the reference */
    case KERN_GEMM_TILE_ACT_CLIP: x = _mm512_min_ps(hi, _mm512_max_ps(lo, x)); break; /* NaN passes through */
    case KERN_GEMM_TILE_ACT_LEAKY: {
        __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        x = _mm512_mask_mul_ps(x, neg, x, lo);
        break;
    }
    case KERN_GEMM_TILE_ACT_GELU: x = gelu_small(x, mask, raw); break;
    default: break;
    }
    return x;
}

/* Loads step k's B vectors (and in direct mode copies them to the packed panel). */
ALWAYS_INLINE void load_b(const int vecs, const int direct, const float *b, float *copy, __mmask16 m0, __mmask16 m1,
                          __m512 *b0, __m512 *b1) {
    if (!direct) {
        *b0 = _mm512_loadu_ps(b);
        *b1 = vecs > 1 ? _mm512_loadu_ps(b + 16) : *b0;
        return;
    }
    /* The next panel's slice of this row, in cache by the time its first tile runs. Prefetches never fault; the
     * address is formed as an integer because it may lie past the end of B. */
    uintptr_t next = (uintptr_t)b + NR * sizeof(float);
    _mm_prefetch((const char *)next, _MM_HINT_T0);
    _mm_prefetch((const char *)(next + 64), _MM_HINT_T0);
    *b0 = _mm512_maskz_loadu_ps(m0, b);
    *b1 = vecs > 1 ? _mm512_maskz_loadu_ps(m1, b + 16) : _mm512_setzero_ps();
    if (copy) {
        _mm512_storeu_ps(copy, *b0);
        _mm512_storeu_ps(copy + 16, *b1);
    }
}

/* The body every variant shares; rows, vecs, direct and direct_a are compile-time constants after inlining, so the
 * accumulator array lives in registers. This is the hot loop of every convolution and fully connected layer. With
 * direct_a the A values are broadcast straight from op(A)'s rows (t->lda apart) instead of a packed panel: the rows
 * of a tile are as compact as their packed copy when K is short, and packing them cost a pass over A per block. */
ALWAYS_INLINE void tile_body(const int rows, const int vecs, const int direct, const int direct_a, size_t kc,
                             const float *restrict a, const kern_gemm_b *bsrc, float *restrict c, size_t ldc,
                             size_t n, const kern_gemm_tile *t) {
    const size_t a_row = direct_a ? t->lda : 1, a_step = direct_a ? 1 : MR; /* A's row and step strides */
    const float *b = bsrc->b;
    float *copy = direct ? bsrc->copy : NULL;
    const size_t b_step = direct ? bsrc->ldb : NR;
    __mmask16 m0 = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
    __mmask16 m1 = n >= 32 ? (__mmask16)0xffff : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
    __m512 acc[MR][2];
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
        /* C's lines start coming while the loop runs: a layer's output is rarely in cache, and missing on all of
         * them at the stores stalls the next tile */
        _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
        if (vecs > 1) _mm_prefetch((const char *)(c + (size_t)i * ldc + 16), _MM_HINT_T0);
        if (t->c_in) {
            _mm_prefetch((const char *)(t->c_in + (size_t)i * t->ldc_in), _MM_HINT_T0);
            if (vecs > 1) _mm_prefetch((const char *)(t->c_in + (size_t)i * t->ldc_in + 16), _MM_HINT_T0);
        }
        if (t->c_prefetch_next) { /* formed as integers: the next panel may be narrower than two lines */
            uintptr_t next = (uintptr_t)(c + (size_t)i * ldc) + NR * sizeof(float);
            _mm_prefetch((const char *)next, _MM_HINT_T1);
            _mm_prefetch((const char *)(next + 64), _MM_HINT_T1);
            if (t->c_in) {
                next = (uintptr_t)(t->c_in + (size_t)i * t->ldc_in) + NR * sizeof(float);
                _mm_prefetch((const char *)next, _MM_HINT_T1);
                _mm_prefetch((const char *)(next + 64), _MM_HINT_T1);
            }
        }
    }
    const size_t pf_l2 = direct_a ? 0 : t->a_prefetch_l2, pf_b = direct ? 0 : t->b_prefetch_l2;
    size_t k = 0;
    /* Short rows leave the FMA latency exposed; a second accumulator set over odd k hides it. */
    if (rows <= 2) {
        __m512 acc2[MR][2];
#pragma GCC unroll 16
        for (int i = 0; i < rows; i++) {
            acc2[i][0] = _mm512_setzero_ps();
            acc2[i][1] = _mm512_setzero_ps();
        }
        for (; k + 2 <= kc; k += 2) {
            __m512 b0, b1, b2, b3;
            load_b(vecs, direct, b, copy, m0, m1, &b0, &b1);
            load_b(vecs, direct, b + b_step, copy ? copy + NR : NULL, m0, m1, &b2, &b3);
#pragma GCC unroll 16
            for (int i = 0; i < rows; i++) {
                __m512 ai = _mm512_set1_ps(a[i * a_row]), aj = _mm512_set1_ps(a[a_step + i * a_row]);
                acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
                acc2[i][0] = _mm512_fmadd_ps(aj, b2, acc2[i][0]);
                if (vecs > 1) {
                    acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
                    acc2[i][1] = _mm512_fmadd_ps(aj, b3, acc2[i][1]);
                }
            }
            a += 2 * a_step;
            b += 2 * b_step;
            if (copy) copy += 2 * NR;
        }
#pragma GCC unroll 16
        for (int i = 0; i < rows; i++) {
            acc[i][0] = _mm512_add_ps(acc[i][0], acc2[i][0]);
            acc[i][1] = _mm512_add_ps(acc[i][1], acc2[i][1]);
        }
    }
    /* Direct A: the rows in groups of four, each read (i % 4) * lda from its group's pointer, so the addresses need
     * two index registers (lda and 3 lda) and three pointers; with one pointer and eleven row offsets the compiler
     * ran out of registers and reloaded offsets from the stack every step. Only rows the tile has are pointed at. */
    const float *a4 = direct_a && rows > 4 ? a + 4 * a_row : a, *a8 = direct_a && rows > 8 ? a + 8 * a_row : a;
#pragma GCC unroll 4
    for (; k < kc; k++) {
        __m512 b0, b1;
        /* Packed weights come from memory on their first sweep (a network's do not stay in cache) and each tile
         * jumps to a new panel, too soon for the hardware prefetcher: fetch 32 steps ahead (+25% on 512 x 49 x 4608,
         * flat elsewhere). The address is formed as an integer: it may lie past the panel. */
        if (!direct_a) _mm_prefetch((const char *)((uintptr_t)a + A_PREFETCH_BYTES), _MM_HINT_T0);
        if (pf_l2) _mm_prefetch((const char *)((uintptr_t)a + pf_l2), _MM_HINT_T1);
        if (pf_b) { /* one step of B is NR floats, two lines */
            _mm_prefetch((const char *)((uintptr_t)b + pf_b), _MM_HINT_T1);
            _mm_prefetch((const char *)((uintptr_t)b + pf_b + 64), _MM_HINT_T1);
        }
        load_b(vecs, direct, b, copy, m0, m1, &b0, &b1);
#pragma GCC unroll 16
        for (int i = 0; i < rows; i++) {
            const float *ar = !direct_a || i < 4 ? a : i < 8 ? a4 : a8;
            __m512 ai = _mm512_set1_ps(ar[direct_a ? (size_t)(i & 3) * a_row : (size_t)i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            if (vecs > 1) acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += a_step;
        if (direct_a) a4 += a_step, a8 += a_step;
        b += b_step;
        if (copy) copy += NR;
    }

    __m512 beta = _mm512_set1_ps(t->beta);
    __m512 lo = _mm512_set1_ps(t->act_alpha);
    __m512 hi = _mm512_set1_ps(t->act_beta);
    __m512 bc0 = _mm512_setzero_ps(), bc1 = _mm512_setzero_ps();
    if (t->bias_col) {
        bc0 = _mm512_maskz_loadu_ps(m0, t->bias_col);
        if (vecs > 1) bc1 = _mm512_maskz_loadu_ps(m1, t->bias_col + 16);
    }
    const float *ci = t->c_in ? t->c_in : c;
    const size_t ldi = t->c_in ? t->ldc_in : ldc;
    __mmask16 raw = 0;
#pragma GCC unroll 16
    for (int i = 0; i < rows; i++) {
        float *cp = c + (size_t)i * ldc;
        const float *ip = ci + (size_t)i * ldi;
        __m512 br = t->bias_row ? _mm512_set1_ps(t->bias_row[i]) : _mm512_setzero_ps();
        __m512 x0 = finish(acc[i][0], ip, m0, t, _mm512_add_ps(bc0, br), beta, lo, hi, &raw);
        _mm512_mask_storeu_ps(cp, m0, x0);
        if (vecs > 1) {
            __m512 x1 = finish(acc[i][1], ip + 16, m1, t, _mm512_add_ps(bc1, br), beta, lo, hi, &raw);
            _mm512_mask_storeu_ps(cp + 16, m1, x1);
        }
    }
    if (raw) *t->gelu_raw = 1;
}

#define VARIANT(R, V, D, DA)                                                                                           \
    static void tile_##R##_##V##_##D##DA(size_t kc, const float *a, const kern_gemm_b *b, float *c, size_t ldc,        \
                                         size_t n, const kern_gemm_tile *t) {                                          \
        tile_body(R, V, D, DA, kc, a, b, c, ldc, n, t);                                                                \
    }
/* direct A only with packed B (a MatMul by a weight): op(A) is then the layer's input, read in place */
#define VARIANTS(R) VARIANT(R, 1, 0, 0) VARIANT(R, 2, 0, 0) VARIANT(R, 1, 1, 0) VARIANT(R, 2, 1, 0) \
    VARIANT(R, 1, 0, 1) VARIANT(R, 2, 0, 1)
#define ROW(R) {{tile_##R##_1_00, tile_##R##_1_10}, {tile_##R##_2_00, tile_##R##_2_10}}
#define ROW_DIRECT_A(R) {tile_##R##_1_01, tile_##R##_2_01}

VARIANTS(1)
VARIANTS(2)
VARIANTS(3)
VARIANTS(4)
VARIANTS(5)
VARIANTS(6)
VARIANTS(7)
VARIANTS(8)
VARIANTS(9)
VARIANTS(10)
VARIANTS(11)
VARIANTS(12)

/* Column tails. A tile whose width n = 16q + r leaves r columns that would fill only r of 16 lanes (N = 49 in the
 * last ResNet stage, N = 1 for matrix-vector products). Those r columns are computed the other way round: one
 * vector over the tile's 12 rows (a's packed layout already holds them contiguously) times a broadcast of each
 * column's B value, so they cost r FMAs per step instead of 12, then get transposed on the way out. All 12 rows are
 * computed (padding rows of a are zero); only m are stored. */
#define TAIL_MAX 11

/* One step k of a tail tile: acc (q vectors of 12 rows) and tacc (r columns as vectors over rows). */
ALWAYS_INLINE void tail_step(const int q, const int r, const float *a, const float *b, float *copy, __m512 *acc,
                             __m512 *tacc) {
    const __mmask16 rows_mask = (__mmask16)((1u << MR) - 1), tail_mask = (__mmask16)((1u << r) - 1);
    __m512 b0 = _mm512_setzero_ps();
    if (q) b0 = _mm512_loadu_ps(b);
    if (copy) {
        _mm512_storeu_ps(copy, q ? b0 : _mm512_maskz_loadu_ps(tail_mask, b));
        _mm512_storeu_ps(copy + 16, q ? _mm512_maskz_loadu_ps(tail_mask, b + 16) : _mm512_setzero_ps());
    }
    __m512 av = _mm512_maskz_loadu_ps(rows_mask, a);
    if (q) {
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), b0, acc[i]);
    }
#pragma GCC unroll 16
    for (int j = 0; j < r; j++) tacc[j] = _mm512_fmadd_ps(av, _mm512_set1_ps(b[16 * q + j]), tacc[j]);
}

ALWAYS_INLINE void tail_body(const int q, const int r, const int direct, size_t kc, const float *restrict a,
                             const kern_gemm_b *bsrc, float *restrict c, size_t ldc, size_t m,
                             const kern_gemm_tile *t) {
    const float *b = bsrc->b;
    float *copy = direct ? bsrc->copy : NULL;
    const size_t b_step = direct ? bsrc->ldb : NR;
    const __mmask16 tail_mask = (__mmask16)((1u << r) - 1);
    /* with few accumulators the FMA latency would dominate: spread steps over independent sets */
    enum { SETS = 4 };
    const int sets = q ? 1 : r <= 2 ? 4 : r <= 5 ? 2 : 1;
    __m512 acc[MR], tacc[SETS][TAIL_MAX];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) acc[i] = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int s = 0; s < sets; s++)
#pragma GCC unroll 16
        for (int j = 0; j < r; j++) tacc[s][j] = _mm512_setzero_ps();
    size_t k = 0;
    if (sets > 1) {
        for (; k + (size_t)sets <= kc; k += (size_t)sets) {
#pragma GCC unroll 4
            for (int s = 0; s < sets; s++)
                tail_step(q, r, a + s * MR, b + (size_t)s * b_step, copy ? copy + s * NR : NULL, acc, tacc[s]);
            a += sets * MR;
            b += (size_t)sets * b_step;
            if (copy) copy += sets * NR;
        }
#pragma GCC unroll 4
        for (int s = 1; s < sets; s++)
#pragma GCC unroll 16
            for (int j = 0; j < r; j++) tacc[0][j] = _mm512_add_ps(tacc[0][j], tacc[s][j]);
    }
#pragma GCC unroll 2
    for (; k < kc; k++) {
        tail_step(q, r, a, b, copy, acc, tacc[0]);
        a += MR;
        b += b_step;
        if (copy) copy += NR;
    }

    __m512 beta = _mm512_set1_ps(t->beta);
    __m512 lo = _mm512_set1_ps(t->act_alpha), hi = _mm512_set1_ps(t->act_beta);
    __m512 bc0 = _mm512_setzero_ps(), bct = _mm512_setzero_ps();
    if (t->bias_col) {
        if (q) bc0 = _mm512_loadu_ps(t->bias_col);
        bct = _mm512_maskz_loadu_ps(tail_mask, t->bias_col + 16 * q);
    }
    _Alignas(64) float tails[TAIL_MAX * 16];
#pragma GCC unroll 16
    for (int j = 0; j < r; j++) _mm512_store_ps(tails + 16 * j, tacc[0][j]);
    /* lane j of the gather is column j of the tail: tails[16 j + row] */
    const __m512i column_base = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                                                     14, 15),
                                                   _mm512_set1_epi32(16));
    const float *ci = t->c_in ? t->c_in : c;
    const size_t ldi = t->c_in ? t->ldc_in : ldc;
    __mmask16 raw = 0;
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        if ((size_t)i >= m) break;
        float *cp = c + (size_t)i * ldc;
        const float *ip = ci + (size_t)i * ldi;
        __m512 br = t->bias_row ? _mm512_set1_ps(t->bias_row[i]) : _mm512_setzero_ps();
        if (q) _mm512_storeu_ps(cp, finish(acc[i], ip, 0xffff, t, _mm512_add_ps(bc0, br), beta, lo, hi, &raw));
        __m512 x = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), tail_mask,
                                            _mm512_add_epi32(column_base, _mm512_set1_epi32(i)), tails, 4);
        x = finish(x, ip + 16 * q, tail_mask, t, _mm512_add_ps(bct, br), beta, lo, hi, &raw);
        _mm512_mask_storeu_ps(cp + 16 * q, tail_mask, x);
    }
    if (raw) *t->gelu_raw = 1;
}

#define TAIL(Q, R, D)                                                                                                  \
    static void tail_##Q##_##R##_##D(size_t kc, const float *a, const kern_gemm_b *b, float *c, size_t ldc, size_t m,  \
                                     const kern_gemm_tile *t) {                                                        \
        tail_body(Q, R, D, kc, a, b, c, ldc, m, t);                                                                    \
    }
#define TAILS(R) TAIL(0, R, 0) TAIL(0, R, 1) TAIL(1, R, 0) TAIL(1, R, 1)
#define TAIL_ROW(R) {{tail_0_##R##_0, tail_0_##R##_1}, {tail_1_##R##_0, tail_1_##R##_1}}

TAILS(1)
TAILS(2)
TAILS(3)
TAILS(4)
TAILS(5)
TAILS(6)
TAILS(7)
TAILS(8)
TAILS(9)
TAILS(10)
TAILS(11)

typedef void (*tile_fn)(size_t, const float *, const kern_gemm_b *, float *, size_t, size_t, const kern_gemm_tile *);

/* [rows - 1][n > 16][direct] */
static const tile_fn tiles[MR][2][2] = {ROW(1), ROW(2), ROW(3), ROW(4),  ROW(5),  ROW(6),
                                        ROW(7), ROW(8), ROW(9), ROW(10), ROW(11), ROW(12)};
/* [rows - 1][n > 16], A read in place, B packed */
static const tile_fn tiles_direct_a[MR][2] = {ROW_DIRECT_A(1), ROW_DIRECT_A(2), ROW_DIRECT_A(3),  ROW_DIRECT_A(4),
                                              ROW_DIRECT_A(5), ROW_DIRECT_A(6), ROW_DIRECT_A(7),  ROW_DIRECT_A(8),
                                              ROW_DIRECT_A(9), ROW_DIRECT_A(10), ROW_DIRECT_A(11), ROW_DIRECT_A(12)};
/* [r - 1][q][direct], called with m */
static const tile_fn tail_tiles[TAIL_MAX][2][2] = {TAIL_ROW(1), TAIL_ROW(2), TAIL_ROW(3), TAIL_ROW(4),
                                                   TAIL_ROW(5), TAIL_ROW(6), TAIL_ROW(7), TAIL_ROW(8),
                                                   TAIL_ROW(9), TAIL_ROW(10), TAIL_ROW(11)};
_Static_assert(MR == 12 && NR == 32, "the variant tables above are written for a 12 x 32 tile");

void kern_gemm_ukernel_avx512(size_t kc, const float *a, const kern_gemm_b *b, float *c, size_t ldc, size_t m,
                              size_t n, const kern_gemm_tile *tile) {
    size_t q = n / 16, r = n % 16;
    if (tile->lda) { /* A in place (B packed): the plain form, whose rows read only the m rows that exist */
        tiles_direct_a[m - 1][n > 16](kc, a, b, c, ldc, n, tile);
        return;
    }
    /* FMAs per step: the tail form always computes 12 rows; the plain form m rows of ceil(n/16) vectors */
    if (r && r <= TAIL_MAX && MR * q + r < m * (q + 1)) tail_tiles[r - 1][q][b->ldb != 0](kc, a, b, c, ldc, m, tile);
    else tiles[m - 1][n > 16][b->ldb != 0](kc, a, b, c, ldc, n, tile);
}
