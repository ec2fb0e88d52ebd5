/* softmax.c — in-place softmax of contiguous rows, the hot loop of lens.Attention: the portable version (GCC/Clang
 * vector extensions, SSE2 or NEON without ISA flags) and the dispatch to x86/softmax_rows_avx512.c. Touches only its
 * arguments. */
#include <stdint.h>
#include <string.h>

#include "kernels.h"

/* Four floats as a GCC/Clang vector (one SSE or NEON register): it vectorises without ISA flags, where scalar
 * compare-and-select loops would not. Loads and stores go through memcpy (no alignment assumed). */
typedef float softmax_vec __attribute__((vector_size(16)));
typedef int32_t softmax_ivec __attribute__((vector_size(16)));
#define SOFTMAX_LANES 4
#define SOFTMAX_SPLAT(c) ((softmax_vec){(c), (c), (c), (c)})

static inline softmax_vec softmax_max(softmax_vec a, softmax_vec b) {
    softmax_ivec a_wins = a > b;
    return (softmax_vec)(((softmax_ivec)a & a_wins) | ((softmax_ivec)b & ~a_wins));
}

/* e^x for the x <= 0 that softmax makes. Below -87 the result is clamped to about 1e-38, negligible next to a row
 * sum of at least 1. x = n ln 2 + r (n rounded by the 1.5 * 2^23 trick, ln 2 split in two for an exact product),
 * e^r by its Taylor series to r^6 (|r| <= ln2 / 2: error below 2e-7), 2^n written into the exponent bits. */
static inline softmax_vec softmax_exp(softmax_vec x) {
    const float round_magic = 12582912.0f;
    x = softmax_max(x, SOFTMAX_SPLAT(-87.0f));
    softmax_vec t = x * 1.44269504088896341f + round_magic;
    softmax_vec n = t - round_magic;
    softmax_vec r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
    softmax_vec p = r * (1.0f / 720) + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    softmax_ivec two_n = ((softmax_ivec)t - 0x4B400000 + 127) << 23;
    return p * (softmax_vec)two_n;
}

/* x[0..n) = softmax(x): the maximum, then exponentials and their sum in one pass, then one scaling pass. The ragged
 * tail goes through a vector padded with -inf-like values whose exponentials are negligible and never stored. */
static void softmax_row_portable(float *x, int64_t n) {
    int64_t full = n & ~(int64_t)(SOFTMAX_LANES - 1);
    softmax_vec tail = SOFTMAX_SPLAT(-1e30f), mv = SOFTMAX_SPLAT(-1e30f);
    memcpy(&tail, x + full, (size_t)(n - full) * sizeof(float));
    for (int64_t i = 0; i < full; i += SOFTMAX_LANES) {
        softmax_vec v;
        memcpy(&v, x + i, sizeof v);
        mv = softmax_max(mv, v);
    }
    mv = softmax_max(mv, tail);
    float m = mv[0];
    for (int k = 1; k < SOFTMAX_LANES; k++) m = mv[k] > m ? mv[k] : m;
    softmax_vec acc = SOFTMAX_SPLAT(0.0f);
    for (int64_t i = 0; i < full; i += SOFTMAX_LANES) {
        softmax_vec v;
        memcpy(&v, x + i, sizeof v);
        v = softmax_exp(v - m);
        memcpy(x + i, &v, sizeof v);
        acc += v;
    }
    tail = softmax_exp(tail - m);
    for (int64_t k = 0; k < n - full; k++) acc[k] += tail[k];
    memcpy(x + full, &tail, (size_t)(n - full) * sizeof(float));
    float sum = 0;
    for (int k = 0; k < SOFTMAX_LANES; k++) sum += acc[k];
    softmax_vec inv = SOFTMAX_SPLAT(1.0f / sum);
    for (int64_t i = 0; i < full; i += SOFTMAX_LANES) {
        softmax_vec v;
        memcpy(&v, x + i, sizeof v);
        v *= inv;
        memcpy(x + i, &v, sizeof v);
    }
    for (int64_t i = full; i < n; i++) x[i] *= inv[0];
}

void kern_softmax_rows_ref(float *x, size_t rows, size_t n) {
    for (size_t r = 0; r < rows; r++) softmax_row_portable(x + r * n, (int64_t)n);
}

void kern_softmax_rows(float *x, size_t rows, size_t n) {
    if (!n) return;
#if defined(LENS_X86)
    if (core_cpu_features()->avx512f) {
        kern_softmax_rows_avx512(x, rows, n);
        return;
    }
#endif
    kern_softmax_rows_ref(x, rows, n);
}
