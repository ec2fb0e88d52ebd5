/* softmax_rows_avx512.c — kern_softmax_rows for AVX-512: sixteen lanes, masked row tails, and e^x as 2^(x log2 e)
 * with the integer part applied by vscalefps. Compiled with AVX-512 flags; called only when the CPU has them. */
#include <immintrin.h>
#include <math.h>

#include "../kernels.h"

/* e^x for x <= 0 (clamped at -100, where it is 0 next to a row sum of at least 1): t = x log2 e split into the
 * nearest integer n and f in [-1/2, 1/2], 2^f by its Taylor series to f^6 (relative error below 2e-7), times 2^n. */
static inline __m512 exp_nonpositive(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-100.0f));
    __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(1.5403530393381608e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146428443e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618129107628477e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550410866482158e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402265069591007e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931471805599453e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

void kern_softmax_rows_avx512(float *x, size_t rows, size_t n) {
    const size_t full = n & ~(size_t)15;
    const __mmask16 tail = (__mmask16)((1u << (n - full)) - 1u);
    for (size_t r = 0; r < rows; r++, x += n) {
        __m512 mv = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail, x + full);
        for (size_t i = 0; i < full; i += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(x + i));
        __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mv)), sum = _mm512_setzero_ps();
        for (size_t i = 0; i < full; i += 16) {
            __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(x + i), m));
            _mm512_storeu_ps(x + i, e);
            sum = _mm512_add_ps(sum, e);
        }
        if (tail) {
            __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + full), m));
            _mm512_mask_storeu_ps(x + full, tail, e);
            sum = _mm512_mask_add_ps(sum, tail, sum, e);
        }
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (size_t i = 0; i < full; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
        if (tail) _mm512_mask_storeu_ps(x + full, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, x + full), inv));
    }
}
