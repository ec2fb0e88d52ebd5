/* gemv_avx2.c — y = A x over A packed in 6-row GEMM panels (K groups of 6 floats), for GEMMs with N == 1. The AVX2
 * form of gemv_avx512.c's flat stream: 3 full ymm loads per 4 k, x permuted to match (flat lane p needs
 * x[k + p / 6]), and the four 6-float quarters of the 24-lane sum add up to y. Compiled with -mavx2 -mfma; only
 * called after a CPU check. */
#include <immintrin.h>

#include "../gemv_internal.h"

#define MR KERN_GEMM_AVX2_MR

_Static_assert(MR == 6, "the flat-stream layout assumes 6-row panels: 3 vectors per 4 steps");

/* x[k + p / 6] for flat lanes p = 8v .. 8v+7 of vector v, with x[k..k+3] in lanes 0..3 (+4: x[k+4..k+7]). */
#define XIDX(v, s) \
    _mm256_set_epi32(((8 * (v) + 7) / 6) + (s), ((8 * (v) + 6) / 6) + (s), ((8 * (v) + 5) / 6) + (s),              \
                     ((8 * (v) + 4) / 6) + (s), ((8 * (v) + 3) / 6) + (s), ((8 * (v) + 2) / 6) + (s),              \
                     ((8 * (v) + 1) / 6) + (s), ((8 * (v) + 0) / 6) + (s))

/* All-ones in lanes below n (n may be <= 0 or >= 8). */
static __m256i lanes_below(long n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 0 ? 0 : n > 8 ? 8 : n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The masked loads of one tail group of r <= 4 steps into three accumulators. */
static void tail_group(size_t r, const float *a, __m256 xv, __m256i i0, __m256i i1, __m256i i2, __m256 *s) {
    long n = (long)(MR * r);
    s[0] = _mm256_fmadd_ps(_mm256_maskload_ps(a, lanes_below(n)), _mm256_permutevar8x32_ps(xv, i0), s[0]);
    s[1] = _mm256_fmadd_ps(_mm256_maskload_ps(a + 8, lanes_below(n - 8)), _mm256_permutevar8x32_ps(xv, i1), s[1]);
    s[2] = _mm256_fmadd_ps(_mm256_maskload_ps(a + 16, lanes_below(n - 16)), _mm256_permutevar8x32_ps(xv, i2), s[2]);
}

void kern_gemv_panels_avx2(size_t K, const float *a, const float *x, size_t m, float *y, const kern_gemv_tail *t) {
    const __m256i i0 = XIDX(0, 0), i1 = XIDX(1, 0), i2 = XIDX(2, 0);
    const __m256i j0 = XIDX(0, 4), j1 = XIDX(1, 4), j2 = XIDX(2, 4);
    const __m256 beta = _mm256_set1_ps(t->beta), bias_all = _mm256_set1_ps(t->bias_all);
    for (size_t r0 = 0; r0 < m; r0 += MR, a += K * MR) {
        __m256 s[3] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}, u[3] = {s[0], s[0], s[0]};
        const float *ap = a;
        size_t k = 0;
        for (; k + 8 <= K; k += 8, ap += 8 * MR) { /* two independent sets of 3 chains hide the FMA latency */
            __m256 xv = _mm256_loadu_ps(x + k);
            s[0] = _mm256_fmadd_ps(_mm256_loadu_ps(ap), _mm256_permutevar8x32_ps(xv, i0), s[0]);
            s[1] = _mm256_fmadd_ps(_mm256_loadu_ps(ap + 8), _mm256_permutevar8x32_ps(xv, i1), s[1]);
            s[2] = _mm256_fmadd_ps(_mm256_loadu_ps(ap + 16), _mm256_permutevar8x32_ps(xv, i2), s[2]);
            u[0] = _mm256_fmadd_ps(_mm256_loadu_ps(ap + 24), _mm256_permutevar8x32_ps(xv, j0), u[0]);
            u[1] = _mm256_fmadd_ps(_mm256_loadu_ps(ap + 32), _mm256_permutevar8x32_ps(xv, j1), u[1]);
            u[2] = _mm256_fmadd_ps(_mm256_loadu_ps(ap + 40), _mm256_permutevar8x32_ps(xv, j2), u[2]);
        }
        if (k < K) { /* 1..7 steps left (lanes past K are zero in both x and a) */
            size_t r = K - k, r0s = r < 4 ? r : 4;
            __m256 xv = _mm256_maskload_ps(x + k, lanes_below((long)r));
            tail_group(r0s, ap, xv, i0, i1, i2, s);
            if (r > 4) tail_group(r - 4, ap + 4 * MR, xv, j0, j1, j2, u);
        }
        _Alignas(32) float flat[4 * MR];
        _mm256_store_ps(flat, _mm256_add_ps(s[0], u[0]));
        _mm256_store_ps(flat + 8, _mm256_add_ps(s[1], u[1]));
        _mm256_store_ps(flat + 16, _mm256_add_ps(s[2], u[2]));
        size_t rows = m - r0 < MR ? m - r0 : MR;
        __m256i mask = lanes_below((long)rows), m6 = lanes_below(MR);
        __m256 v = _mm256_add_ps(_mm256_add_ps(_mm256_maskload_ps(flat, m6), _mm256_maskload_ps(flat + 6, m6)),
                                 _mm256_add_ps(_mm256_maskload_ps(flat + 12, m6), _mm256_maskload_ps(flat + 18, m6)));
        v = _mm256_add_ps(v, bias_all);
        if (t->load_y) v = _mm256_fmadd_ps(beta, _mm256_maskload_ps(y + r0, mask), v);
        if (t->bias_row) v = _mm256_add_ps(v, _mm256_maskload_ps(t->bias_row + r0, mask));
        _mm256_maskstore_ps(y + r0, mask, v);
    }
}
