/* conv_body.h — the bodies of the convolution kernels (conv.h), written once with GCC/Clang vector extensions and
 * included by conv.c (16-byte vectors: SSE2 or NEON) and x86/conv_avx2.c, x86/conv_avx512.c (32- and 64-byte
 * vectors), each compiled with its own ISA flags. The includer defines CONV_VBYTES and CONV_SUFFIX. */
#include "conv.h"

#define CONV_VLEN (CONV_VBYTES / 4)
#define CONV_CAT2(a, b) a##b
#define CONV_CAT(a, b) CONV_CAT2(a, b)
#define CONV_FN(name) CONV_CAT(name, CONV_SUFFIX)

/* may_alias and aligned(4): a vector may be loaded from any float in a tensor. */
typedef float conv_vec __attribute__((vector_size(CONV_VBYTES), aligned(4), may_alias));
typedef int32_t conv_mask __attribute__((vector_size(CONV_VBYTES)));

static inline conv_vec conv_load(const float *p) { return *(const conv_vec *)p; }
static inline void conv_store(float *p, conv_vec v) { *(conv_vec *)p = v; }
static inline conv_vec conv_splat(float x) { return (conv_vec){0} + x; }

/* The first n (0 <= n <= CONV_VLEN) floats at p, the rest zero; and the store of v's first n lanes. Masked on AVX-512
 * and AVX2 so short rows (a 7-wide feature map) cost one vector, not n scalars; no lane past n is touched. */
#if CONV_VBYTES == 64 && defined(__AVX512F__)
#include <immintrin.h>
static inline conv_vec conv_load_n(const float *p, int64_t n) {
    return (conv_vec)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
}
static inline void conv_store_n(float *p, conv_vec v, int64_t n) {
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
}
#elif CONV_VBYTES == 32 && defined(__AVX2__)
#include <immintrin.h>
static inline __m256i conv_mask_n(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline conv_vec conv_load_n(const float *p, int64_t n) {
    return (conv_vec)_mm256_maskload_ps(p, conv_mask_n(n));
}
static inline void conv_store_n(float *p, conv_vec v, int64_t n) { _mm256_maskstore_ps(p, conv_mask_n(n), (__m256)v); }
#else
static inline conv_vec conv_load_n(const float *p, int64_t n) {
    float t[CONV_VLEN] = {0};
    for (int64_t i = 0; i < n; i++) t[i] = p[i];
    return conv_load(t);
}
static inline void conv_store_n(float *p, conv_vec v, int64_t n) {
    float t[CONV_VLEN];
    conv_store(t, v);
    for (int64_t i = 0; i < n; i++) p[i] = t[i];
}
#endif

#if CONV_VLEN == 16
#define CONV_EVEN_MASK {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30}
#define CONV_ODD_MASK {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31}
#elif CONV_VLEN == 8
#define CONV_EVEN_MASK {0, 2, 4, 6, 8, 10, 12, 14}
#define CONV_ODD_MASK {1, 3, 5, 7, 9, 11, 13, 15}
#else
#define CONV_EVEN_MASK {0, 2, 4, 6}
#define CONV_ODD_MASK {1, 3, 5, 7}
#endif

/* Even and odd elements of the 2 * CONV_VLEN floats at p (what a stride-2 tap reads). */
#if defined(__clang__)
static inline conv_vec conv_even(const float *p) {
    conv_vec a = conv_load(p), b = conv_load(p + CONV_VLEN);
#if CONV_VLEN == 16
    return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
#elif CONV_VLEN == 8
    return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
#else
    return __builtin_shufflevector(a, b, 0, 2, 4, 6);
#endif
}
static inline conv_vec conv_odd(const float *p) {
    conv_vec a = conv_load(p), b = conv_load(p + CONV_VLEN);
#if CONV_VLEN == 16
    return __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
#elif CONV_VLEN == 8
    return __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
#else
    return __builtin_shufflevector(a, b, 1, 3, 5, 7);
#endif
}
#else
static inline conv_vec conv_even(const float *p) {
    const conv_mask m = CONV_EVEN_MASK;
    return __builtin_shuffle(conv_load(p), conv_load(p + CONV_VLEN), m);
}
static inline conv_vec conv_odd(const float *p) {
    const conv_mask m = CONV_ODD_MASK;
    return __builtin_shuffle(conv_load(p), conv_load(p + CONV_VLEN), m);
}
#endif

static inline int64_t conv_div_ceil(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* The output columns [*lo, *hi) whose tap at offset off (ow * stride + off) lies in [0, width). */
static inline void conv_tap_columns(int64_t off, int64_t stride, int64_t width, int64_t out, int64_t *lo,
                                    int64_t *hi) {
    *lo = off >= 0 ? 0 : conv_div_ceil(-off, stride);
    *hi = width - off <= 0 ? 0 : conv_div_ceil(width - off, stride);
    if (*hi > out) *hi = out;
    if (*lo > *hi) *lo = *hi;
}

/* ---- Depthwise layout -------------------------------------------------------------------------------------------- */

/* When stride_h == stride_w == S in {1, 2}, the input copied into a zero-padded buffer with row pitch P turns the
 * 2-D conv into a 1-D one over flat indices: output q = oh * P + ow reads padded[S * q + i * dh * P + j * dw].
 * Columns ow >= out_w are computed and thrown away (about half the row at stride 2); in exchange every vector is
 * full, there are no borders, and narrow planes (7x7) vectorise as well as wide ones. Large planes go in strips of
 * rows, which bounds the scratch. */
typedef struct conv_dw_flat {
    int64_t pitch;         /* of the padded input rows and of the flat outputs */
    int64_t strip;         /* output rows per strip */
    int64_t in_rows;       /* padded input rows one strip reads */
    int64_t n_out;         /* flat outputs per strip: strip * pitch rounded up to CONV_DW_BLOCK */
    int64_t padded_floats; /* the padded strip with zero slack after it for the last block's reads */
} conv_dw_flat;

#define CONV_DW_BLOCK 64          /* four vectors of the widest build, a multiple of four vectors of every build */
#define CONV_DW_STRIP_FLOATS 65536 /* padded input + flat outputs of a strip: 256 KiB bounds the scratch */

static inline int conv_dw_flat_layout(const kern_conv_shape *s, conv_dw_flat *f) {
    const int64_t S = s->stride[2];
    if (s->stride[1] != S || (S != 1 && S != 2)) return 0;
    int64_t width = s->pad[2] + s->in[2], need = (s->out[2] - 1) * S + (s->kernel[2] - 1) * s->dilation[2] + 1;
    f->pitch = need > width ? need : width;
    f->strip = CONV_DW_STRIP_FLOATS / (f->pitch * (S + 1));
    if (f->strip < 1) f->strip = 1;
    if (f->strip > s->out[1]) f->strip = s->out[1];
    f->in_rows = (f->strip - 1) * S + (s->kernel[1] - 1) * s->dilation[1] + 1;
    f->n_out = conv_div_ceil(f->strip * f->pitch, CONV_DW_BLOCK) * CONV_DW_BLOCK;
    int64_t reach = (s->kernel[1] - 1) * s->dilation[1] * f->pitch + (s->kernel[2] - 1) * s->dilation[2];
    int64_t last = S * (f->n_out - 1) + reach + (S - 1); /* stride 2 also loads the odd partner of its last lane */
    f->padded_floats = f->in_rows * f->pitch > last + 1 ? f->in_rows * f->pitch : last + 1;
    f->padded_floats = conv_div_ceil(f->padded_floats, 16) * 16; /* keeps the outputs after it 64-byte aligned */
    return 1;
}

/* ---- im2col ------------------------------------------------------------------------------------------------------ */

/* dst[i] = src[2 * i] for i in [0, n). Whole vectors read 2 * CONV_VLEN floats, the odd partner of the last one
 * included, so they run only while that stays below limit (the floats readable at src). */
static inline void conv_gather2(float *dst, const float *src, int64_t n, int64_t limit) {
    int64_t i = 0;
    for (; i + CONV_VLEN <= n && 2 * (i + CONV_VLEN) <= limit; i += CONV_VLEN)
        conv_store(dst + i, conv_even(src + 2 * i));
#if !defined(__clang__)
    /* The rest (a 28-wide output row leaves 12) with masked loads of only the floats it needs: 2 r - 1 for r
     * outputs, never the odd partner of the last one. */
    const conv_mask even = CONV_EVEN_MASK;
    for (int64_t r; (r = n - i < CONV_VLEN ? n - i : CONV_VLEN) > 0; i += r) {
        int64_t m = 2 * r - 1;
        conv_vec a = conv_load_n(src + 2 * i, m < CONV_VLEN ? m : CONV_VLEN);
        conv_vec b = conv_load_n(src + 2 * i + CONV_VLEN, m > CONV_VLEN ? m - CONV_VLEN : 0);
        conv_store_n(dst + i, __builtin_shuffle(a, b, even), r);
    }
#endif
    for (; i < n; i++) dst[i] = src[2 * i];
}

/* Inline copies: im2col moves many short runs (a 7-wide output row), where a libc call costs more than the copy. */
static inline void conv_copy(float *d, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + CONV_VLEN <= n; i += CONV_VLEN) conv_store(d + i, conv_load(src + i));
    if (i < n) conv_store_n(d + i, conv_load_n(src + i, n - i), n - i);
}

static inline void conv_zero(float *d, int64_t n) {
    int64_t i = 0;
    for (; i + CONV_VLEN <= n; i += CONV_VLEN) conv_store(d + i, (conv_vec){0});
    if (i < n) conv_store_n(d + i, (conv_vec){0}, n - i);
}

void CONV_FN(kern_im2col_)(const kern_conv_shape *s, const float *x, int64_t col0, int64_t ncols, int64_t row0,
                           int64_t row1, float *dst) {
    const int64_t KD = s->kernel[0], KH = s->kernel[1], KW = s->kernel[2];
    const int64_t ID = s->in[0], IH = s->in[1], IW = s->in[2], OH = s->out[1], OW = s->out[2];
    const int64_t sw = s->stride[2], in_size = ID * IH * IW;
    for (int64_t r = row0; r < row1; r++) {
        int64_t j = r % KW, i = (r / KW) % KH, a = (r / (KW * KH)) % KD, c = r / (KW * KH * KD);
        const float *xc = x + c * in_size;
        float *d = dst + (r - row0) * ncols;
        int64_t off = j * s->dilation[2] - s->pad[2], lo, hi;
        conv_tap_columns(off, sw, IW, OW, &lo, &hi);
        int64_t p = col0, end = col0 + ncols;
        int64_t ow0 = p % OW, oh = (p / OW) % OH, od = p / (OW * OH);
        while (p < end) {
            int64_t n = OW - ow0 < end - p ? OW - ow0 : end - p;
            int64_t id = od * s->stride[0] - s->pad[0] + a * s->dilation[0];
            int64_t ih = oh * s->stride[1] - s->pad[1] + i * s->dilation[1];
            if (id < 0 || id >= ID || ih < 0 || ih >= IH) {
                conv_zero(d, n);
            } else {
                /* row of input: xr[iw] for iw in [0, IW); output column ow reads xr[ow * sw + off] */
                const float *xr = xc + (id * IH + ih) * IW;
                int64_t b0 = lo > ow0 ? lo : ow0, b1 = hi < ow0 + n ? hi : ow0 + n;
                if (b1 < b0) b1 = b0;
                float *dd = d - ow0;
                conv_zero(d, b0 - ow0);
                if (sw == 1) conv_copy(dd + b0, xr + b0 + off, b1 - b0);
                else if (sw == 2) conv_gather2(dd + b0, xr + 2 * b0 + off, b1 - b0, IW - (2 * b0 + off));
                else
                    for (int64_t ow = b0; ow < b1; ow++) dd[ow] = xr[ow * sw + off];
                conv_zero(dd + b1, ow0 + n - b1);
            }
            d += n;
            p += n;
            ow0 = 0;
            if (++oh == OH) {
                oh = 0;
                od++;
            }
        }
    }
}

/* ---- Depthwise --------------------------------------------------------------------------------------------------- */

/* The hot loop of the flat layout (conv_dw_flat_layout): out[q] = sum over taps of w[i][j] * xp[S * q + i * dh *
 * pitch + j * dw] for q in [0, n_out), four vectors at a time (independent accumulators hide the FMA latency).
 * Constant arguments after inlining unroll the taps of the common kernels. */
static inline __attribute__((always_inline)) void conv_dw_flat_loop(const float *xp, const float *w, float *out,
                                                                    int64_t n_out, int64_t pitch, const int64_t KH,
                                                                    const int64_t KW, const int64_t dh,
                                                                    const int64_t dw, const int64_t S) {
    for (int64_t q = 0; q < n_out; q += 4 * CONV_VLEN) {
        conv_vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        const float *b = xp + S * q;
        for (int64_t i = 0; i < KH; i++)
            for (int64_t j = 0; j < KW; j++) {
                const float *p = b + i * dh * pitch + j * dw;
                conv_vec wv = conv_splat(w[i * KW + j]);
                if (S == 1) {
                    a0 += wv * conv_load(p);
                    a1 += wv * conv_load(p + CONV_VLEN);
                    a2 += wv * conv_load(p + 2 * CONV_VLEN);
                    a3 += wv * conv_load(p + 3 * CONV_VLEN);
                } else {
                    a0 += wv * conv_even(p);
                    a1 += wv * conv_even(p + 2 * CONV_VLEN);
                    a2 += wv * conv_even(p + 4 * CONV_VLEN);
                    a3 += wv * conv_even(p + 6 * CONV_VLEN);
                }
            }
        conv_store(out + q, a0);
        conv_store(out + q + CONV_VLEN, a1);
        conv_store(out + q + 2 * CONV_VLEN, a2);
        conv_store(out + q + 3 * CONV_VLEN, a3);
    }
}

/* y[i] = act(src[i] + bias + res[i]) for the activations a clamp expresses (none, Relu, Clip); res may be NULL. */
static inline void conv_dw_finish_row(float *y, const float *src, float bias, const float *res, int64_t n, float lo,
                                      float hi) {
    const conv_vec vb = conv_splat(bias), vlo = conv_splat(lo), vhi = conv_splat(hi);
    for (int64_t i = 0; i < n; i += CONV_VLEN) {
        int64_t m = n - i < CONV_VLEN ? n - i : CONV_VLEN;
        conv_vec v = (m == CONV_VLEN ? conv_load(src + i) : conv_load_n(src + i, m)) + vb;
        if (res) v += m == CONV_VLEN ? conv_load(res + i) : conv_load_n(res + i, m);
        conv_mask below = v < vlo, above = v > vhi;
        v = (conv_vec)(((conv_mask)v & ~(below | above)) | ((conv_mask)vlo & below) | ((conv_mask)vhi & above));
        if (m == CONV_VLEN) conv_store(y + i, v);
        else conv_store_n(y + i, v, m);
    }
}

/* Strides the flat layout does not cover: y = bias + residual, then every tap added with bounds checks. */
static void conv_dw_direct(const kern_conv_shape *s, const float *x, const float *w, float bias, const float *res,
                           float *y) {
    const int64_t IH = s->in[1], IW = s->in[2], OH = s->out[1], OW = s->out[2], KH = s->kernel[1], KW = s->kernel[2];
    const int64_t sh = s->stride[1], sw = s->stride[2], dh = s->dilation[1], dw = s->dilation[2];
    for (int64_t oh = 0; oh < OH; oh++) {
        float *yr = y + oh * OW;
        for (int64_t ow = 0; ow < OW; ow++) yr[ow] = bias + (res ? res[oh * OW + ow] : 0.0f);
        for (int64_t i = 0; i < KH; i++) {
            int64_t ih = oh * sh - s->pad[1] + i * dh;
            if (ih < 0 || ih >= IH) continue;
            const float *xr = x + ih * IW;
            for (int64_t j = 0; j < KW; j++) {
                int64_t lo, hi, off = j * dw - s->pad[2];
                conv_tap_columns(off, sw, IW, OW, &lo, &hi);
                const float wv = w[i * KW + j];
                for (int64_t ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow * sw + off];
            }
        }
    }
}

void CONV_FN(kern_dwconv2d_)(const kern_conv_shape *s, const float *x, const float *w, float bias,
                             const float *residual, const kern_activation *act, float *y, float *scratch) {
    const int64_t IH = s->in[1], IW = s->in[2], OH = s->out[1], OW = s->out[2], KH = s->kernel[1], KW = s->kernel[2];
    const int64_t dh = s->dilation[1], dw = s->dilation[2], S = s->stride[2];
    conv_dw_flat f;
    /* Relu and Clip are applied while finishing each row; anything else afterwards. */
    int clamp = !act || act->kind == KERN_ACT_NONE || act->kind == KERN_ACT_RELU || act->kind == KERN_ACT_CLIP;
    float lo = -__builtin_inff(), hi = __builtin_inff();
    if (act && act->kind == KERN_ACT_RELU) lo = 0.0f;
    if (act && act->kind == KERN_ACT_CLIP) lo = act->alpha, hi = act->beta;
    if (!conv_dw_flat_layout(s, &f)) {
        conv_dw_direct(s, x, w, bias, residual, y);
        if (clamp) conv_dw_finish_row(y, y, 0.0f, NULL, OH * OW, lo, hi);
        else kern_activation_apply(act, y, (size_t)(OH * OW));
        return;
    }
    /* Per strip of output rows: the zero-padded copy of the input rows it reads, then its flat outputs. */
    float *xp = scratch, *out = scratch + f.padded_floats;
    const int64_t pt = s->pad[1], pl = s->pad[2], P = f.pitch;
    for (int64_t oh0 = 0; oh0 < OH; oh0 += f.strip) {
        int64_t rows = OH - oh0 < f.strip ? OH - oh0 : f.strip;
        for (int64_t t = 0; t < f.in_rows; t++) {
            int64_t ih = oh0 * S + t - pt;
            float *d = xp + t * P;
            if (ih < 0 || ih >= IH) {
                conv_zero(d, P);
                continue;
            }
            conv_zero(d, pl);
            conv_copy(d + pl, x + ih * IW, IW);
            conv_zero(d + pl + IW, P - pl - IW);
        }
        conv_zero(xp + f.in_rows * P, f.padded_floats - f.in_rows * P);
        /* constant kernels for the common shapes, so their taps unroll */
        const int unit = dh == 1 && dw == 1, k3 = unit && KH == 3 && KW == 3, k5 = unit && KH == 5 && KW == 5;
        if (k3 && S == 1) conv_dw_flat_loop(xp, w, out, f.n_out, P, 3, 3, 1, 1, 1);
        else if (k3) conv_dw_flat_loop(xp, w, out, f.n_out, P, 3, 3, 1, 1, 2);
        else if (k5 && S == 1) conv_dw_flat_loop(xp, w, out, f.n_out, P, 5, 5, 1, 1, 1);
        else if (k5) conv_dw_flat_loop(xp, w, out, f.n_out, P, 5, 5, 1, 1, 2);
        else if (unit && KH == 7 && KW == 7 && S == 1) conv_dw_flat_loop(xp, w, out, f.n_out, P, 7, 7, 1, 1, 1);
        else if (S == 1) conv_dw_flat_loop(xp, w, out, f.n_out, P, KH, KW, dh, dw, 1);
        else conv_dw_flat_loop(xp, w, out, f.n_out, P, KH, KW, dh, dw, 2);
        for (int64_t r = 0; r < rows; r++) {
            int64_t oh = oh0 + r;
            conv_dw_finish_row(y + oh * OW, out + r * P, bias, residual ? residual + oh * OW : NULL, OW, lo, hi);
        }
    }
    if (!clamp) kern_activation_apply(act, y, (size_t)(OH * OW));
}
