/* act_body.h — the bodies of the vector activations (kern_activation_map, kern_softmax_row), written once with
 * GCC/Clang vector extensions and included by act.c (16-byte vectors: SSE2 or NEON) and x86/act_avx2.c,
 * x86/act_avx512.c (32- and 64-byte vectors), each compiled with its own ISA flags. The includer defines ACT_VBYTES
 * and ACT_SUFFIX. Transcendentals are polynomial approximations fitted for this file (least squares on Chebyshev
 * nodes against 30-digit values, then checked in float); the error bounds are in kernels.h. */
#include <math.h>
#include <string.h>

#include "kernels.h"

#define ACT_VLEN (ACT_VBYTES / 4)
#define ACT_CAT2(a, b) a##b
#define ACT_CAT(a, b) ACT_CAT2(a, b)
#define ACT_FN(name) ACT_CAT(name, ACT_SUFFIX)

/* may_alias and aligned(4): a vector may be loaded from any float in a tensor. */
typedef float act_vec __attribute__((vector_size(ACT_VBYTES), aligned(4), may_alias));
typedef int32_t act_ivec __attribute__((vector_size(ACT_VBYTES), aligned(4), may_alias));

static inline act_vec act_load(const float *p) { return *(const act_vec *)p; }
static inline void act_store(float *p, act_vec v) { *(act_vec *)p = v; }
static inline act_vec act_splat(float c) { return (act_vec){0} + c; }
/* mask ? a : b, lane by lane (mask lanes are all ones or all zeros, as comparisons give). */
static inline act_vec act_select(act_ivec mask, act_vec a, act_vec b) {
    return (act_vec)(((act_ivec)a & mask) | ((act_ivec)b & ~mask));
}
static inline act_vec act_abs(act_vec x) { return (act_vec)((act_ivec)x & 0x7fffffff); }
/* |m| with the sign of s. */
static inline act_vec act_copysign(act_vec m, act_vec s) {
    return (act_vec)(((act_ivec)m & 0x7fffffff) | ((act_ivec)s & (int32_t)0x80000000u));
}
/* Clamps into [lo, hi]; NaN stays NaN (both comparisons are false). */
static inline act_vec act_clamp(act_vec x, float lo, float hi) {
    x = act_select(x < lo, act_splat(lo), x);
    return act_select(x > hi, act_splat(hi), x);
}
static inline act_vec act_max(act_vec a, act_vec b) { return act_select(a > b, a, b); }

/* ---- Transcendentals ---------------------------------------------------------------------------------------------- */

/* e^r for |r| <= ln2 / 2: 1 + r + r^2 P(r), P of degree 4 fitted for relative error (3.8e-9, 0.03 ulp, with these
 * float coefficients; degree 7 had precision float cannot hold), P in Estrin's order: a shorter dependency chain
 * than Horner's. SiLU and sigmoid are bound by their chains' latency: AVX-512 SiLU went 0.318 -> 0.289 ns a float
 * (Zen 4), with the same measured ulp maxima. */
static inline act_vec act_exp_reduced(act_vec r) {
    act_vec r2 = r * r;
    act_vec lo = r * 1.666652113e-1f + 4.999999404e-01f, hi = r * 8.368710056e-3f + 4.166838899e-2f;
    act_vec p = (r2 * 1.381461276e-3f + hi) * r2 + lo;
    return p * r2 + r + 1.0f;
}

/* x - n ln 2 (Cody-Waite: the high part of ln 2 has 9 bits, so n * high is exact for |n| < 2^15). */
static inline act_vec act_exp_reduce(act_vec x, act_vec n) {
    act_vec r = x - n * 0.693359375f;
    return r - n * -2.12194440e-4f;
}

#if ACT_VBYTES == 64 && defined(__AVX512F__)
#include <immintrin.h>
/* e^x = 2^n e^r with n = round(x / ln 2): vrndscaleps rounds, vscalefps applies 2^n with one rounding, gradual
 * underflow and overflow to inf. The clamp to [-110, 89] (beyond it e^x is 0 or inf in float) keeps r finite for
 * +-inf; min/max with x second pass NaN through. */
/* e^c for c already clamped. */
static inline act_vec act_exp_clamped(__m512 c) {
    act_vec n = (act_vec)_mm512_roundscale_ps(_mm512_mul_ps(c, _mm512_set1_ps(1.44269504088896341f)),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return (act_vec)_mm512_scalef_ps((__m512)act_exp_reduced(act_exp_reduce((act_vec)c, n)), (__m512)n);
}
static inline act_vec act_exp(act_vec x) {
    __m512 c = _mm512_max_ps(_mm512_set1_ps(-110.0f), (__m512)x);
    return act_exp_clamped(_mm512_min_ps(_mm512_set1_ps(89.0f), c));
}
/* e^x for x <= 0 (or NaN): the lower clamp only. */
static inline act_vec act_exp_nonpos(act_vec x) {
    return act_exp_clamped(_mm512_max_ps(_mm512_set1_ps(-110.0f), (__m512)x));
}
#else
/* e^x: x = n ln2 + r, e^r by the polynomial, then 2^n applied as two factors 2^(n/2) 2^(n - n/2) so results in the
 * denormal range come out gradual and results past FLT_MAX come out +inf. x is clamped to [-110, 89] first, beyond
 * which e^x is 0 or inf in float; NaN stays NaN. Adding 1.5 * 2^23 rounds x / ln 2 to the integer n in t's low
 * mantissa bits. */
static inline act_vec act_exp(act_vec x) {
    x = act_clamp(x, -110.0f, 89.0f);
    act_vec t = x * 1.44269504088896341f + 12582912.0f;
    act_vec p = act_exp_reduced(act_exp_reduce(x, t - 12582912.0f));
    act_ivec ni = (act_ivec)t - 0x4B400000;
    act_ivec n1 = ni >> 1, n2 = ni - n1;
    return (p * (act_vec)((n1 + 127) << 23)) * (act_vec)((n2 + 127) << 23);
}
static inline act_vec act_exp_nonpos(act_vec x) { return act_exp(x); }
#endif

#if ACT_VBYTES == 64 && defined(__AVX512F__)
/* 1 / d for d in [1, 2] (NaN stays NaN): vrcp14ps (relative error < 2^-14) and one Newton step r + r (1 - d r), whose
 * error ~2^-28 is below the float rounding; a fraction of a vdivps's cost, which dominated SiLU. */
static inline act_vec act_recip_1_2(act_vec d) {
    act_vec r = (act_vec)_mm512_rcp14_ps((__m512)d);
    return r + r * (1.0f - d * r);
}
#else
static inline act_vec act_recip_1_2(act_vec d) { return 1.0f / d; }
#endif

/* 1 / (1 + e^-x) from e = e^-|x| <= 1, so neither branch overflows and tiny results for x << 0 keep their
 * precision: x >= 0 gives 1 / (1 + e), x < 0 gives e / (1 + e). */
static inline act_vec act_sigmoid(act_vec x) {
    act_vec e = act_exp_nonpos((act_vec)((act_ivec)x | (int32_t)0x80000000u)); /* -|x| */
    act_vec r = act_recip_1_2(1.0f + e);
#if ACT_VBYTES == 64 && defined(__AVX512F__)
    /* one masked move (the generic select compiles to two masked xors here) */
    return (act_vec)_mm512_mask_mov_ps((__m512)r, _mm512_cmp_ps_mask((__m512)x, _mm512_setzero_ps(), _CMP_LT_OQ),
                                       (__m512)(e * r));
#else
    return act_select(x < 0.0f, e * r, r);
#endif
}

/* tanh: x P(x^2) below |x| = 0.625; above, 1 - 2 / (1 + e^2|x|) with |x| clamped at 10 (from about 9.01 on, tanh
 * rounds to 1), the sign copied from x. */
static inline act_vec act_tanh(act_vec x) {
    act_vec ax = act_abs(x), x2 = x * x;
    act_vec p = act_splat(-5.697522312e-3f);
    p = p * x2 + 2.063030750e-2f;
    p = p * x2 + -5.373586342e-2f;
    p = p * x2 + 1.333136559e-1f;
    p = p * x2 + -3.333327472e-1f;
    act_vec small = p * x2 * x + x;
    act_vec u = act_exp(2.0f * act_select(ax > 10.0f, act_splat(10.0f), ax));
    act_vec big = act_copysign(1.0f - 2.0f / (1.0f + u), x);
    return act_select(ax < 0.625f, small, big);
}

/* erf(z) for |z| < 1: z P(z^2). */
static inline act_vec act_erf_small(act_vec z, act_vec z2) {
    act_vec p = act_splat(7.898209878e-5f);
    p = p * z2 + -8.024353883e-4f;
    p = p * z2 + 5.190053489e-3f;
    p = p * z2 + -2.685480937e-2f;
    p = p * z2 + 1.128361225e-1f;
    p = p * z2 + -3.761262894e-1f;
    p = p * z2 + 1.128379226f;
    return p * z;
}

/* erfc(a) for a = |z| >= 1: e^-a^2 t Q(t) with t = 1 / (1 + a); relative error ~1e-7 up to a = 9 (erfc 9 ~ 4e-37),
 * and past that e^-a^2 underflows to 0, as erfc does. */
static inline act_vec act_erfc_big(act_vec a, act_vec z2) {
    act_vec t = 1.0f / (1.0f + a);
    act_vec q = act_splat(2.083114624f);
    q = q * t + -4.752417088f;
    q = q * t + 3.506683111f;
    q = q * t + -4.769083112e-2f;
    q = q * t + -8.839762807e-1f;
    q = q * t + -2.350710481e-1f;
    q = q * t + 2.760770321e-1f;
    q = q * t + 5.645811558e-1f;
    q = q * t + 5.641792417e-1f;
    return act_exp(-z2) * t * q;
}

static inline act_vec act_erf(act_vec z) {
    act_vec a = act_abs(z), z2 = z * z;
    act_vec big = act_copysign(1.0f - act_erfc_big(a, z2), z);
    return act_select(a < 1.0f, act_erf_small(z, z2), big);
}

/* Whether every lane of a comparison's mask is set. */
static inline int act_all(act_ivec mask) {
#if ACT_VBYTES == 64 && defined(__AVX512F__)
    return _mm512_test_epi32_mask((__m512i)mask, (__m512i)mask) == 0xffff;
#else
    int all = 1;
    for (int k = 0; k < ACT_VLEN; k++) all &= mask[k] != 0;
    return all;
#endif
}

#if ACT_VBYTES == 64 && defined(__AVX512F__)
/* GELU's middle range, 1.25 <= |x| < 5.25, without exp or a division: q(a) = Phi(-a) = erfc(a / sqrt 2) / 2 is a
 * polynomial of degree 5 on each of 16 intervals of a = |x|, a quarter wide, whose coefficients each lane picks
 * with vpermps from 16-float tables, one per power. From tools/gen_gelu_table.py 4 5 5 (fitted for relative error
 * of q, checked in float): absolute error < 6e-9, relative < 2.1e-6. */
static const float act_gelu_mid_coef[6][16] = {
    {8.456572145e-02f, 5.208127946e-02f, 3.039636090e-02f, 1.679330692e-02f, 8.774475195e-03f, 4.332448356e-03f, 2.020137385e-03f, 8.890253375e-04f, 3.690784797e-04f, 1.444807422e-04f, 5.331236025e-05f, 1.853674439e-05f, 6.071627013e-06f, 1.872993494e-06f, 5.440429049e-07f, 1.487691179e-07f},
    {-3.875306621e-02f, -2.663456649e-02f, -1.719656959e-02f, -1.043024659e-02f, -5.942975637e-03f, -3.181045409e-03f, -1.599530107e-03f, -7.555644261e-04f, -3.352796193e-04f, -1.397652959e-04f, -5.473284909e-05f, -2.013507583e-05f, -6.958489394e-06f, -2.259087751e-06f, -6.889815722e-07f, -1.973960337e-07f},
    {6.660684012e-03f, 5.410155281e-03f, 4.030457698e-03f, 2.770544263e-03f, 1.764327055e-03f, 1.043783035e-03f, 5.748310359e-04f, 2.951410133e-04f, 1.414445433e-04f, 6.332989142e-05f, 2.651038812e-05f, 1.038166556e-05f, 3.805175766e-06f, 1.305920364e-06f, 4.197998749e-07f, 1.264382803e-07f},
    {-3.595221206e-04f, -4.551738093e-04f, -4.506186524e-04f, -3.819608537e-04f, -2.872788755e-04f, -1.951900049e-04f, -1.210588525e-04f, -6.899106666e-05f, -3.629085768e-05f, -1.767673166e-05f, -7.991697203e-06f, -3.359671837e-06f, -1.315203690e-06f, -4.799778139e-07f, -1.634491440e-07f, -5.197672692e-08f},
    {-3.849383938e-05f, -1.022312608e-05f, 1.069713107e-05f, 2.176106864e-05f, 2.419685188e-05f, 2.112369293e-05f, 1.576620343e-05f, 1.041508767e-05f, 6.198791198e-06f, 3.359115908e-06f, 1.668662094e-06f, 7.634355939e-07f, 3.227818581e-07f, 1.264397156e-07f, 4.597795211e-08f, 1.554473705e-08f},
    {5.994057574e-06f, 5.062366654e-06f, 3.185316700e-06f, 1.240819415e-06f, -1.954081910e-07f, -9.460040360e-07f, -1.127013320e-06f, -9.725896462e-07f, -6.977660973e-07f, -4.367372810e-07f, -2.440775120e-07f, -1.234090092e-07f, -5.692258043e-08f, -2.408741651e-08f, -9.388976707e-09f, -3.381249947e-09f},
};
#define ACT_GELU_MID_LIMIT 5.25f /* (5 + 16) / 4, the end of the last interval */

/* Phi(x) for lanes with 1.25 <= |x| = ax < 5.25 (others get garbage). u = 4 ax - 5.5 in [-1/2, 15.5) is exact
 * (4 ax is, and 5.5 is a multiple of its ulp); its nearest integer i, in the low mantissa bits of u + 1.5 * 2^23
 * where vpermps reads its index, is the interval, and t = u - i in [-1/2, 1/2] is exact too. Phi = q for x < 0,
 * 1 - q otherwise. */
static inline act_vec act_gelu_mid_phi(act_vec x, act_vec ax) {
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 u = _mm512_fmsub_ps((__m512)ax, _mm512_set1_ps(4.0f), _mm512_set1_ps(5.5f));
    __m512 k = _mm512_add_ps(u, magic);
    __m512 t = _mm512_sub_ps(u, _mm512_sub_ps(k, magic));
    __m512i idx = _mm512_castps_si512(k);
    _Static_assert(sizeof act_gelu_mid_coef / sizeof *act_gelu_mid_coef == 6, "Horner below is for degree 5");
#define ACT_GELU_MID_C(j) _mm512_permutexvar_ps(idx, _mm512_loadu_ps(act_gelu_mid_coef[j]))
    /* written out: GCC keeps a loop over the powers as a loop */
    __m512 q = _mm512_fmadd_ps(ACT_GELU_MID_C(5), t, ACT_GELU_MID_C(4));
    q = _mm512_fmadd_ps(q, t, ACT_GELU_MID_C(3));
    q = _mm512_fmadd_ps(q, t, ACT_GELU_MID_C(2));
    q = _mm512_fmadd_ps(q, t, ACT_GELU_MID_C(1));
    q = _mm512_fmadd_ps(q, t, ACT_GELU_MID_C(0));
#undef ACT_GELU_MID_C
    return (act_vec)_mm512_mask_sub_ps(q, _mm512_cmp_ps_mask((__m512)x, _mm512_setzero_ps(), _CMP_GE_OQ),
                                       _mm512_set1_ps(1.0f), q);
}
#endif

/* Phi(x) for x^2 = x2 < 2: 1/2 + x R(x^2), R(w) = erf(sqrt(w / 2)) / (2 sqrt w) of degree 5 (relative error 4e-8),
 * from tools/gen_gelu_table.py; x Phi(x) is then within 9 ulp (at x ~ -1.39, where 1/2 + x R cancels by a factor 6).
 * Fewer operations than 1/2 + erf(x / sqrt 2) / 2 from act_erf_small (no x / sqrt 2, no product by z) and no less
 * accurate (that was 12 ulp). */
static inline act_vec act_gelu_small_phi(act_vec x, act_vec x2) {
    act_vec p = act_splat(-6.221139756e-06f);
    p = p * x2 + 1.086596967e-04f;
    p = p * x2 + -1.180477440e-03f;
    p = p * x2 + 9.970359504e-03f;
    p = p * x2 + -6.648982316e-02f;
    p = p * x2 + 3.989422619e-01f;
    return p * x + 0.5f;
}

/* x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2: for x << 0 Phi comes from erfc directly, without the cancellation
 * in 1 + erf, so the far negative tail keeps its relative precision. A vector whose lanes all have x^2 < 2 takes the
 * small range's polynomial alone (the same result): a fraction of the work of the other paths. Most are such in
 * ConvNeXt (99% of GELU vectors) and ViT (58%), where GELU cost 6% and 1.5% of the run. With AVX-512, a vector
 * whose lanes all have |x| < 5.25 (ViT: all the others) takes that polynomial or act_gelu_mid_phi lane by lane,
 * without exp or a division. On the GELU inputs of ViT-B/16 and ConvNeXt-T (replayed, Zen 4, 1 thread) this and
 * act_gelu_small_phi took 0.45 -> 0.30 and 0.25 -> 0.18 ns a float. */
static inline act_vec act_gelu(act_vec x) {
    act_vec x2 = x * x;
    act_ivec small = x2 < 2.0f;
    act_vec phi_small = act_gelu_small_phi(x, x2);
    if (__builtin_expect(act_all(small), 1)) return x * phi_small; /* ConvNeXt: 99% of vectors */
#if ACT_VBYTES == 64 && defined(__AVX512F__)
    /* lanes the small or the middle range covers (each lane's result depends on its x alone, whatever path its
     * vector takes; a lane with x^2 >= 2 has |x| > 1.41 > 1.25) */
    act_vec ax = act_abs(x);
    act_ivec near = ax < ACT_GELU_MID_LIMIT;
    act_vec phi_near = act_select(small, phi_small, act_gelu_mid_phi(x, ax));
    if (act_all(near)) return x * phi_near;
#else
    act_ivec near = small;
    act_vec phi_near = phi_small;
#endif
    act_vec z = x * 0.70710678118654752f, a = act_abs(z), z2 = z * z;
    act_vec half_erfc = 0.5f * act_erfc_big(a, z2);
    act_vec phi_big = act_select(z < 0.0f, half_erfc, 1.0f - half_erfc);
    return x * act_select(near, phi_near, phi_big);
}

/* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
static inline act_vec act_gelu_tanh(act_vec x) {
    return 0.5f * x * (1.0f + act_tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

static inline act_vec act_hard_sigmoid(act_vec x, float alpha, float beta) {
    return act_clamp(x * alpha + beta, 0.0f, 1.0f);
}

/* ---- Loops -------------------------------------------------------------------------------------------------------- */

#if ACT_VBYTES == 64 && defined(__AVX512F__)
/* The first m < 16 floats at p into a vector (the other lanes zero), and back: masked moves, which neither read nor
 * write (nor fault on) the lanes past m. Short rows (GEMM tiles' late activation, 7x7 planes) end in such a tail. */
static inline act_vec act_load_n(const float *p, size_t m) {
    return (act_vec)_mm512_maskz_loadu_ps((__mmask16)((1u << m) - 1), p);
}
static inline void act_store_n(float *p, act_vec v, size_t m) {
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << m) - 1), (__m512)v);
}
#else
/* The same through a zero-padded vector on the stack. */
static inline act_vec act_load_n(const float *p, size_t m) {
    float t[ACT_VLEN] = {0};
    memcpy(t, p, m * sizeof *t);
    return act_load(t);
}
static inline void act_store_n(float *p, act_vec v, size_t m) {
    float t[ACT_VLEN];
    act_store(t, v);
    memcpy(p, t, m * sizeof *t);
}
#endif

/* y = f(x) row by row (rows of n floats, x0 and y0 advancing by ldx and ldy): whole vectors, then the tail through
 * act_load_n / act_store_n (no lane past n is read or written). EXPR is in terms of the act_vec v. */
#define ACT_LOOP(EXPR)                                                                               \
    do {                                                                                             \
        for (size_t r = 0; r < rows; r++) {                                                          \
            const float *x = x0 + r * ldx;                                                           \
            float *y = y0 + r * ldy;                                                                 \
            size_t i = 0;                                                                            \
            for (; i + ACT_VLEN <= n; i += ACT_VLEN) {                                               \
                act_vec v = act_load(x + i);                                                         \
                act_store(y + i, (EXPR));                                                            \
            }                                                                                        \
            if (i < n) {                                                                             \
                act_vec v = act_load_n(x + i, n - i);                                                \
                act_store_n(y + i, (EXPR), n - i);                                                   \
            }                                                                                        \
        }                                                                                            \
    } while (0)

/* rows x n floats: x0 (row stride ldx) -> y0 (row stride ldy). One dispatch on the kind for all rows: a GEMM tile's
 * rows are short (<= 32 floats), so a call per row costs about as much as the activation. */
static inline void act_map_rows(const kern_activation *a, const float *x0, size_t ldx, float *y0, size_t ldy,
                                size_t rows, size_t n) {
    const float alpha = a->alpha, beta = a->beta;
    switch (a->kind) {
    case KERN_ACT_NONE:
        if (x0 != y0)
            for (size_t r = 0; r < rows; r++) memmove(y0 + r * ldy, x0 + r * ldx, n * sizeof *y0);
        return;
    case KERN_ACT_RELU: ACT_LOOP(act_select(v > 0.0f, v, act_splat(0.0f))); return;
    case KERN_ACT_CLIP: ACT_LOOP(act_clamp(v, alpha, beta)); return;
    case KERN_ACT_LEAKY_RELU: ACT_LOOP(act_select(v < 0.0f, v * alpha, v)); return;
    case KERN_ACT_SIGMOID: ACT_LOOP(act_sigmoid(v)); return;
    case KERN_ACT_HARD_SIGMOID: ACT_LOOP(act_hard_sigmoid(v, alpha, beta)); return;
    case KERN_ACT_HARD_SWISH: ACT_LOOP(v * act_clamp(v * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f)); return;
    case KERN_ACT_TANH: ACT_LOOP(act_tanh(v)); return;
    case KERN_ACT_GELU: ACT_LOOP(act_gelu(v)); return;
    case KERN_ACT_SILU: ACT_LOOP(v * act_sigmoid(v)); return;
    case KERN_ACT_ERF: ACT_LOOP(act_erf(v)); return;
    case KERN_ACT_EXP: ACT_LOOP(act_exp(v)); return;
    case KERN_ACT_GELU_TANH: ACT_LOOP(act_gelu_tanh(v)); return;
    case KERN_ACT_QUICK_GELU: ACT_LOOP(v * act_sigmoid(v * alpha)); return;
    }
}

void ACT_FN(kern_activation_map_)(const kern_activation *a, const float *x, float *y, size_t n) {
    act_map_rows(a, x, 0, y, 0, 1, n);
}

void ACT_FN(kern_activation_apply_rows_)(const kern_activation *a, float *x, size_t ld, size_t rows, size_t n) {
    act_map_rows(a, x, ld, x, ld, rows, n);
}

static inline float act_hmax(act_vec v) {
    float m = v[0];
    for (int k = 1; k < ACT_VLEN; k++) m = v[k] > m ? v[k] : m;
    return m;
}
static inline float act_hsum(act_vec v) {
    float s = 0;
    for (int k = 0; k < ACT_VLEN; k++) s += v[k];
    return s;
}

/* The exponentials of a softmax without its normalisation: y[i] = e^(x[i] - max x), returning their sum. Two passes
 * over the row: the maximum, then e^(x - max) stored and summed (in vector lanes, which is also more accurate than
 * one running sum). The tail is one vector padded with -inf: those lanes add e^-inf = 0. x and y may be the same
 * buffer; n >= 1. Attention applies 1 / sum to its output rows instead of to this row. */
#if ACT_VBYTES == 64 && defined(__AVX512F__)
/* AVX-512: the tail through masked loads and stores, and the reductions in registers (attention runs this on every
 * row of its scores, a few hundred floats each, where the portable tail and reductions cost a fifth of the time). */
float ACT_FN(kern_softmax_exp_row_)(const float *x, float *y, size_t n) {
    size_t nv = n / ACT_VLEN * ACT_VLEN, rest = n - nv;
    const __mmask16 tail_mask = (__mmask16)((1u << rest) - 1);
    const __m512 neg_inf = _mm512_set1_ps(-__builtin_inff());
    const __m512 tail = _mm512_mask_loadu_ps(neg_inf, tail_mask, x + nv);
    __m512 m0 = tail, m1 = neg_inf; /* two chains; a NaN x is skipped here (max returns its second operand) */
    size_t i = 0;
    for (; i + 2 * ACT_VLEN <= nv; i += 2 * ACT_VLEN) {
        m0 = _mm512_max_ps(_mm512_loadu_ps(x + i), m0);
        m1 = _mm512_max_ps(_mm512_loadu_ps(x + i + ACT_VLEN), m1);
    }
    if (i < nv) m0 = _mm512_max_ps(_mm512_loadu_ps(x + i), m0);
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_max_ps(m0, m1)));
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (i = 0; i + 2 * ACT_VLEN <= nv; i += 2 * ACT_VLEN) {
        __m512 e0 = (__m512)act_exp_nonpos((act_vec)_mm512_sub_ps(_mm512_loadu_ps(x + i), m));
        __m512 e1 = (__m512)act_exp_nonpos((act_vec)_mm512_sub_ps(_mm512_loadu_ps(x + i + ACT_VLEN), m));
        _mm512_storeu_ps(y + i, e0);
        _mm512_storeu_ps(y + i + ACT_VLEN, e1);
        acc0 = _mm512_add_ps(acc0, e0);
        acc1 = _mm512_add_ps(acc1, e1);
    }
    if (i < nv) {
        __m512 e = (__m512)act_exp_nonpos((act_vec)_mm512_sub_ps(_mm512_loadu_ps(x + i), m));
        _mm512_storeu_ps(y + i, e);
        acc0 = _mm512_add_ps(acc0, e);
    }
    if (rest) {
        __m512 e = (__m512)act_exp_nonpos((act_vec)_mm512_sub_ps(tail, m));
        _mm512_mask_storeu_ps(y + nv, tail_mask, e);
        acc1 = _mm512_add_ps(acc1, e);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}
#else
float ACT_FN(kern_softmax_exp_row_)(const float *x, float *y, size_t n) {
    size_t nv = n / ACT_VLEN * ACT_VLEN, rest = n - nv;
    act_vec tail = act_splat(-__builtin_inff());
    if (rest) memcpy(&tail, x + nv, rest * sizeof(float));
    act_vec mv = tail;
    for (size_t i = 0; i < nv; i += ACT_VLEN) mv = act_max(act_load(x + i), mv);
    const float m = act_hmax(mv);
    act_vec acc = act_splat(0.0f);
    for (size_t i = 0; i < nv; i += ACT_VLEN) {
        act_vec e = act_exp(act_load(x + i) - m);
        act_store(y + i, e);
        acc += e;
    }
    if (rest) {
        act_vec e = act_exp(tail - m);
        memcpy(y + nv, &e, rest * sizeof(float));
        acc += e;
    }
    return act_hsum(acc);
}
#endif

/* The hot loop of classifier heads. Softmax: the exponentials above, then the scale; LogSoftmax: the maximum, the
 * sum of e^(x - max), then x - max - log sum. x and y may be the same buffer. */
void ACT_FN(kern_softmax_row_)(const float *x, float *y, size_t n, int log_form) {
    if (!log_form) {
        const float inv = 1.0f / ACT_FN(kern_softmax_exp_row_)(x, y, n);
        size_t nv = n / ACT_VLEN * ACT_VLEN;
        for (size_t i = 0; i < nv; i += ACT_VLEN) act_store(y + i, act_load(y + i) * inv);
        for (size_t i = nv; i < n; i++) y[i] *= inv;
        return;
    }
    const act_vec neg_inf = act_splat(-__builtin_inff());
    size_t nv = n / ACT_VLEN * ACT_VLEN, rest = n - nv;
    act_vec tail = neg_inf;
    if (rest) memcpy(&tail, x + nv, rest * sizeof(float));
    act_vec mv = tail;
    for (size_t i = 0; i < nv; i += ACT_VLEN) mv = act_max(act_load(x + i), mv);
    const float m = act_hmax(mv);
    act_vec acc = act_splat(0.0f);
    for (size_t i = 0; i < nv; i += ACT_VLEN) acc += act_exp(act_load(x + i) - m);
    acc += act_exp(tail - m);
    const float l = logf(act_hsum(acc));
    for (size_t i = 0; i < nv; i += ACT_VLEN) act_store(y + i, (act_load(x + i) - m) - l);
    for (size_t i = nv; i < n; i++) y[i] = (x[i] - m) - l;
}

/* LayerNorm of one row of n >= 1 floats: y = (x - mean) / sqrt(var + epsilon) * scale + bias (bias may be NULL),
 * scale and bias n long; the mean and 1 / sqrt(var + epsilon) come back through mean_out and inv_out. Two passes for
 * the statistics (no cancellation from E[x²] - E[x]²), each with two vector accumulators, then the output. x and y
 * may be the same buffer. */
void ACT_FN(kern_layernorm_row_)(const float *x, float *y, size_t n, const float *scale, const float *bias,
                                 float epsilon, float *mean_out, float *inv_out) {
    const size_t nv = n / ACT_VLEN * ACT_VLEN;
    act_vec a0 = act_splat(0.0f), a1 = a0;
    size_t i = 0;
    for (; i + 2 * ACT_VLEN <= nv; i += 2 * ACT_VLEN) {
        a0 += act_load(x + i);
        a1 += act_load(x + i + ACT_VLEN);
    }
    if (i < nv) a0 += act_load(x + i);
    float sum = act_hsum(a0 + a1);
    for (i = nv; i < n; i++) sum += x[i];
    const float m = sum / (float)n;
    a0 = a1 = act_splat(0.0f);
    for (i = 0; i + 2 * ACT_VLEN <= nv; i += 2 * ACT_VLEN) {
        act_vec d0 = act_load(x + i) - m, d1 = act_load(x + i + ACT_VLEN) - m;
        a0 += d0 * d0;
        a1 += d1 * d1;
    }
    if (i < nv) {
        act_vec d = act_load(x + i) - m;
        a0 += d * d;
    }
    float dev = act_hsum(a0 + a1);
    for (i = nv; i < n; i++) dev += (x[i] - m) * (x[i] - m);
    const float inv = 1.0f / sqrtf(dev / (float)n + epsilon);
    for (i = 0; i < nv; i += ACT_VLEN) {
        act_vec v = (act_load(x + i) - m) * inv * act_load(scale + i);
        if (bias) v += act_load(bias + i);
        act_store(y + i, v);
    }
    for (i = nv; i < n; i++) y[i] = (x[i] - m) * inv * scale[i] + (bias ? bias[i] : 0.0f);
    *mean_out = m;
    *inv_out = inv;
}
