/* gemv_avx512.c — y = A x over A packed in 12-row GEMM panels (K groups of 12 floats), for GEMMs with N == 1.
 * Broadcasting x[k] against one 12-float group would leave 4 of 16 lanes idle; instead the panel is read as a flat
 * stream, 3 full zmm loads per 4 k, each multiplied by x arranged to match it (lane p of the flat 48-float block
 * holds row p % 12 of step p / 12, so it needs x[k + p / 12]: built by one permute per vector). Flat lane p
 * accumulates row p % 12, so the four 12-float quarters of the 48-lane sum add up to y. Compiled with -mavx512f;
 * only called after a CPU check. */
#include <immintrin.h>

#include "../gemv_internal.h"

#define MR KERN_GEMM_AVX512_MR

_Static_assert(MR == 12, "the flat-stream layout assumes 12-row panels: 3 vectors per 4 steps");

/* x[k + p / 12] for flat lanes p = 16v .. 16v+15 of vector v, with x[k..k+3] in lanes 0..3 (+4: x[k+4..k+7]). */
#define XIDX(v, s) \
    _mm512_set_epi32(((16 * (v) + 15) / 12) + (s), ((16 * (v) + 14) / 12) + (s), ((16 * (v) + 13) / 12) + (s),      \
                     ((16 * (v) + 12) / 12) + (s), ((16 * (v) + 11) / 12) + (s), ((16 * (v) + 10) / 12) + (s),      \
                     ((16 * (v) + 9) / 12) + (s), ((16 * (v) + 8) / 12) + (s), ((16 * (v) + 7) / 12) + (s),         \
                     ((16 * (v) + 6) / 12) + (s), ((16 * (v) + 5) / 12) + (s), ((16 * (v) + 4) / 12) + (s),         \
                     ((16 * (v) + 3) / 12) + (s), ((16 * (v) + 2) / 12) + (s), ((16 * (v) + 1) / 12) + (s),         \
                     ((16 * (v) + 0) / 12) + (s))

/* Lanes 0..15 of vector v within 12r flat floats (r <= 4): the part of the tail that exists. */
static __mmask16 tail_mask(size_t r, int v) {
    long n = (long)(12 * r) - 16 * v;
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* The 12 row sums of one panel, in lanes 0..11. */
static __m512 panel_dot(size_t K, const float *a, const float *x) {
    const __m512i i0 = XIDX(0, 0), i1 = XIDX(1, 0), i2 = XIDX(2, 0);
    const __m512i j0 = XIDX(0, 4), j1 = XIDX(1, 4), j2 = XIDX(2, 4);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, t0 = s0, t1 = s0, t2 = s0;
    size_t k = 0;
    for (; k + 8 <= K; k += 8, a += 8 * MR) { /* two independent sets of 3 chains hide the FMA latency */
        __m512 xv = _mm512_castps256_ps512(_mm256_loadu_ps(x + k));
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a), _mm512_permutexvar_ps(i0, xv), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + 16), _mm512_permutexvar_ps(i1, xv), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + 32), _mm512_permutexvar_ps(i2, xv), s2);
        t0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + 48), _mm512_permutexvar_ps(j0, xv), t0);
        t1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + 64), _mm512_permutexvar_ps(j1, xv), t1);
        t2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + 80), _mm512_permutexvar_ps(j2, xv), t2);
    }
    if (k < K) { /* 1..7 steps left: up to two masked groups of 4 (lanes past K are zero in both x and a) */
        size_t r = K - k;
        __m512 xv = _mm512_maskz_loadu_ps((__mmask16)((1u << r) - 1), x + k); /* AVX-512F only */
        size_t r0 = r < 4 ? r : 4, r1 = r - r0;
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail_mask(r0, 0), a), _mm512_permutexvar_ps(i0, xv), s0);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail_mask(r0, 1), a + 16), _mm512_permutexvar_ps(i1, xv), s1);
        s2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail_mask(r0, 2), a + 32), _mm512_permutexvar_ps(i2, xv), s2);
        if (r1) {
            t0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail_mask(r1, 0), a + 48), _mm512_permutexvar_ps(j0, xv), t0);
            t1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail_mask(r1, 1), a + 64), _mm512_permutexvar_ps(j1, xv), t1);
            t2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail_mask(r1, 2), a + 80), _mm512_permutexvar_ps(j2, xv), t2);
        }
    }
    s0 = _mm512_add_ps(s0, t0);
    s1 = _mm512_add_ps(s1, t1);
    s2 = _mm512_add_ps(s2, t2);
    /* quarters of the flat 48 lanes: s0[0:12], s0[12:16]+s1[0:8], s1[8:16]+s2[0:4], s2[4:16] */
    const __m512i q1 = _mm512_set_epi32(0, 0, 0, 0, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12);
    const __m512i q2 = _mm512_set_epi32(0, 0, 0, 0, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8);
    const __m512i q3 = _mm512_set_epi32(0, 0, 0, 0, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4);
    __m512 y = _mm512_add_ps(s0, _mm512_permutex2var_ps(s0, q1, s1));
    return _mm512_add_ps(y, _mm512_add_ps(_mm512_permutex2var_ps(s1, q2, s2), _mm512_permutexvar_ps(q3, s2)));
}

void kern_gemv_panels_avx512(size_t K, const float *a, const float *x, size_t m, float *y, const kern_gemv_tail *t) {
    const __m512 beta = _mm512_set1_ps(t->beta), bias_all = _mm512_set1_ps(t->bias_all);
    for (size_t r0 = 0; r0 < m; r0 += MR, a += K * MR) {
        size_t rows = m - r0 < MR ? m - r0 : MR;
        __mmask16 mask = (__mmask16)((1u << rows) - 1);
        __m512 v = _mm512_add_ps(panel_dot(K, a, x), bias_all);
        if (t->load_y) v = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(mask, y + r0), v);
        if (t->bias_row) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, t->bias_row + r0));
        _mm512_mask_storeu_ps(y + r0, mask, v);
    }
}
