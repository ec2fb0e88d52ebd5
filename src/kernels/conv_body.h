/* conv_body.h — the bodies of the convolution kernels (conv.h), written once with GCC/Clang vector extensions and
 * included by conv.c (16-byte vectors: SSE2 or NEON) and x86/conv_avx2.c, x86/conv_avx512.c (32- and 64-byte
 * vectors), each compiled with its own ISA flags. The includer defines CONV_VBYTES and CONV_SUFFIX. */
#include <float.h>

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
/* x in every lane (an initializer, not {0} + x: the compiler may not drop the + 0, which would cost a scalar add
 * per tap instead of a broadcast folded into the FMA). */
static inline conv_vec conv_splat(float x) {
#if CONV_VLEN == 16
    return (conv_vec){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
#elif CONV_VLEN == 8
    return (conv_vec){x, x, x, x, x, x, x, x};
#else
    return (conv_vec){x, x, x, x};
#endif
}

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
#elif CONV_VLEN == 8
#define CONV_EVEN_MASK {0, 2, 4, 6, 8, 10, 12, 14}
#else
#define CONV_EVEN_MASK {0, 2, 4, 6}
#endif

/* The even elements of the 2 * CONV_VLEN floats in a, b (what a stride-2 tap reads). */
#if defined(__clang__)
static inline conv_vec conv_even2(conv_vec a, conv_vec b) {
#if CONV_VLEN == 16
    return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
#elif CONV_VLEN == 8
    return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
#else
    return __builtin_shufflevector(a, b, 0, 2, 4, 6);
#endif
}
#else
static inline conv_vec conv_even2(conv_vec a, conv_vec b) {
    const conv_mask m = CONV_EVEN_MASK;
    return __builtin_shuffle(a, b, m);
}
#endif
/* The same of the 2 * CONV_VLEN floats at p. */
static inline conv_vec conv_even(const float *p) { return conv_even2(conv_load(p), conv_load(p + CONV_VLEN)); }

/* min(max(v, lo), hi) lane by lane; a NaN lane stays NaN. */
static inline conv_vec conv_clamp(conv_vec v, conv_vec lo, conv_vec hi) {
#if CONV_VBYTES == 64 && defined(__AVX512F__)
    return (conv_vec)_mm512_min_ps((__m512)hi, _mm512_max_ps((__m512)lo, (__m512)v));
#elif CONV_VBYTES == 32 && defined(__AVX2__)
    return (conv_vec)_mm256_min_ps((__m256)hi, _mm256_max_ps((__m256)lo, (__m256)v));
#else
    conv_mask below = v < lo, above = v > hi;
    return (conv_vec)(((conv_mask)v & ~(below | above)) | ((conv_mask)lo & below) | ((conv_mask)hi & above));
#endif
}

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

/* When stride_h == stride_w == S, the input is copied into S * S zero-padded phase planes: plane (a, b) holds the
 * padded input's rows r == a and columns c == b (mod S) at [r / S][c / S], rows of pitch Q. Output q = oh * Q + ow
 * then reads, for tap (i, j), plane ((i * dh) % S, (j * dw) % S) at q + (i * dh / S) * Q + j * dw / S: the 2-D conv
 * becomes a stride-1 1-D one over flat indices, with contiguous loads for every stride. Columns ow >= out_w are
 * computed and thrown away (a few per row); in exchange every vector is full, there are no borders, and narrow
 * planes (7x7) vectorise as well as wide ones. Large planes go in strips of rows, which bounds the scratch. */
typedef struct conv_dw_flat {
    int64_t S;            /* stride: S * S phase planes */
    int64_t pitch;        /* Q: of the phase planes' rows and of the flat outputs */
    int64_t strip;        /* output rows per strip */
    int64_t in_rows;      /* padded input rows one strip reads */
    int64_t n_out;        /* flat outputs per strip: strip * pitch rounded up to CONV_DW_BLOCK */
    int64_t plane_floats; /* per phase plane, with zero slack after it for the last block's reads; multiple of 16 */
} conv_dw_flat;

#define CONV_DW_BLOCK 64          /* four vectors of the widest build, a multiple of four vectors of every build */
#define CONV_DW_STRIP_FLOATS 32768 /* phase planes + flat outputs of a strip: 128 KiB bounds the scratch */
#define CONV_DW_MAX_STRIDE 4       /* larger strides (rare) take the direct loop: S * S planes would be mostly pad */
#define CONV_DW_MAX_TAPS 121       /* and so do kernels larger than 11x11 */

static inline int conv_dw_flat_layout(const kern_conv_shape *s, conv_dw_flat *f) {
    const int64_t S = s->stride[2];
    if (s->stride[1] != S || S > CONV_DW_MAX_STRIDE || s->kernel[1] * s->kernel[2] > CONV_DW_MAX_TAPS) return 0;
    const int64_t rh = (s->kernel[1] - 1) * s->dilation[1] / S, rw = (s->kernel[2] - 1) * s->dilation[2] / S;
    const int64_t need = s->out[2] + rw, data = (s->pad[2] + s->in[2] - 1) / S + 1;
    f->S = S;
    f->pitch = need > data ? need : data;
    f->strip = CONV_DW_STRIP_FLOATS / (f->pitch * (S * S + 1));
    if (f->strip < 1) f->strip = 1;
    if (f->strip > s->out[1]) f->strip = s->out[1];
    f->in_rows = (f->strip - 1) * S + (s->kernel[1] - 1) * s->dilation[1] + 1;
    f->n_out = conv_div_ceil(f->strip * f->pitch, CONV_DW_BLOCK) * CONV_DW_BLOCK;
    /* plane rows: (in_rows - 1) / S + 1 == strip + rh; the last block reads up to n_out - 1 + the furthest tap */
    int64_t rows = (f->strip + rh) * f->pitch, last = f->n_out + rh * f->pitch + rw;
    f->plane_floats = conv_div_ceil(rows > last ? rows : last, 16) * 16; /* keeps every plane 64-byte aligned */
    return 1;
}

/* ---- Pooling rows ---------------------------------------------------------------------------------------------- */

/* y + v, or v > y ? v : y: x86's max instruction is exactly that (the second operand where either is NaN) */
static inline conv_vec conv_pool_step(int is_max, conv_vec y, conv_vec v) {
    if (!is_max) return y + v;
#if CONV_VBYTES == 64 && defined(__AVX512F__)
    return (conv_vec)_mm512_max_ps((__m512)v, (__m512)y);
#elif CONV_VBYTES == 32 && defined(__AVX2__)
    return (conv_vec)_mm256_max_ps((__m256)v, (__m256)y);
#else
    conv_mask gt = v > y;
    return (conv_vec)(((conv_mask)v & gt) | ((conv_mask)y & ~gt));
#endif
}

/* The even elements of the 2k - 1 floats at p (0 < k <= CONV_VLEN) in the first k lanes: reads no float past them. */
static inline conv_vec conv_even_n(const float *p, int64_t k) {
    int64_t m = 2 * k - 1;
    conv_vec lo = m >= CONV_VLEN ? conv_load(p) : conv_load_n(p, m), hi = {0};
    if (m > CONV_VLEN) hi = conv_load_n(p + CONV_VLEN, m - CONV_VLEN);
    return conv_even2(lo, hi);
}

void CONV_FN(kern_pool_row_)(int is_max, float *y, const float *x, size_t n, size_t stride, size_t taps,
                             size_t step) {
    const float init = is_max ? -FLT_MAX : 0.0f;
    size_t i = 0;
    if (stride == 1) {
        for (; i + CONV_VLEN <= n; i += CONV_VLEN) {
            conv_vec acc = conv_splat(init);
            for (size_t t = 0; t < taps; t++) acc = conv_pool_step(is_max, acc, conv_load(x + i + t * step));
            conv_store(y + i, acc);
        }
        if (i < n) {
            conv_vec acc = conv_splat(init);
            for (size_t t = 0; t < taps; t++)
                acc = conv_pool_step(is_max, acc, conv_load_n(x + i + t * step, (int64_t)(n - i)));
            conv_store_n(y + i, acc, (int64_t)(n - i));
        }
        return;
    }
    if (stride == 2) {
        /* a whole vector also reads the odd partner of its last element: there while another vector follows */
        for (; i + CONV_VLEN < n; i += CONV_VLEN) {
            conv_vec acc = conv_splat(init);
            for (size_t t = 0; t < taps; t++) acc = conv_pool_step(is_max, acc, conv_even(x + 2 * i + t * step));
            conv_store(y + i, acc);
        }
        if (i < n) { /* the last vector: the last tap's partner may lie past x's end */
            conv_vec acc = conv_splat(init);
            for (size_t t = 0; t < taps; t++)
                acc = conv_pool_step(is_max, acc, conv_even_n(x + 2 * i + t * step, (int64_t)(n - i)));
            conv_store_n(y + i, acc, (int64_t)(n - i));
        }
        return;
    }
    for (; i < n; i++) {
        float acc = init;
        for (size_t t = 0; t < taps; t++) {
            float v = x[i * stride + t * step];
            acc = is_max ? (v > acc ? v : acc) : acc + v;
        }
        y[i] = acc;
    }
}

/* ---- im2col ------------------------------------------------------------------------------------------------------ */

/* dst[i] = src[2 * i] for i in [0, n). Whole vectors read 2 * CONV_VLEN floats, the odd partner of the last one
 * included, so they run only while that stays below limit (the floats readable at src). */
static inline void conv_gather2(float *dst, const float *src, int64_t n, int64_t limit) {
    int64_t i = 0;
    for (; i + CONV_VLEN <= n && 2 * (i + CONV_VLEN) <= limit; i += CONV_VLEN)
        conv_store(dst + i, conv_even(src + 2 * i));
#if CONV_VBYTES >= 32
    /* the rest with masked loads of the floats that exist (a narrow plane's whole row) */
    for (; i < n; i += CONV_VLEN) {
        int64_t k = n - i < CONV_VLEN ? n - i : CONV_VLEN;
        conv_store_n(dst + i, conv_even_n(src + 2 * i, k), k);
    }
#else
    for (; i < n; i++) dst[i] = src[2 * i];
#endif
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

#if CONV_VLEN == 16 && defined(__AVX512F__)
/* Stride-2 rows, whole output rows at a time. An output row's 16-column chunk q reads at most 32 consecutive input
 * floats from start (two masked loads that touch only the row's own floats) and picks its columns with one
 * two-source permute; lanes whose tap falls in the padding are zeroed by the permute's mask. The chunk layout
 * depends only on the kernel column j, so it is worked out once per call for every j. Replaces a per-row set-up
 * (tap range, zero runs, gather with a masked tail) that cost more than the copy on 28- and 14-wide rows: ResNet-50
 * layer2.0.conv2 (3x3 s2, 56 -> 28) spent 23% of its time in im2col. */
/* Only for rows of up to 32 columns: on wider rows the plain gather's whole unmasked vectors win (im2col alone, hot:
 * 3x3 on 56 -> 28 0.289 -> 0.254 ms, 28 -> 14 0.198 -> 0.170, 14 -> 7 0.150 -> 0.126, 1x1 56 -> 28 0.069 -> 0.063;
 * but 112 -> 56 0.465 -> 0.493 and conv1's 7x7 224 -> 112 0.369 -> 0.41). */
#define CONV_S2_MAX_CHUNKS 2
#define CONV_S2_MAX_KW 8
typedef struct conv_s2_chunk {
    __m512i idx;                  /* lane l: the float of the 32 loaded from start that output column 16 q + l reads */
    int64_t start;                /* first input float loaded, >= 0 */
    __mmask16 load0, load1, keep; /* the loads' lanes inside the row; the output lanes with a tap inside it */
    __mmask16 store;              /* the lanes that are columns of the row */
} conv_s2_chunk;

/* Fills plan[j * chunks + q] for every kernel column j and chunk q; 0 when the shape is not one it handles. */
static int conv_s2_plan(const kern_conv_shape *s, conv_s2_chunk *plan) {
    const int64_t KW = s->kernel[2], IW = s->in[2], OW = s->out[2], chunks = conv_div_ceil(OW, 16);
    if (s->stride[2] != 2 || KW > CONV_S2_MAX_KW || chunks > CONV_S2_MAX_CHUNKS) return 0;
    for (int64_t j = 0; j < KW; j++) {
        int64_t off = j * s->dilation[2] - s->pad[2], lo, hi;
        conv_tap_columns(off, 2, IW, OW, &lo, &hi);
        for (int64_t q = 0; q < chunks; q++) {
            conv_s2_chunk *c = plan + j * chunks + q;
            int64_t base = 32 * q + off, start = base < 0 ? 0 : base >= IW ? 0 : base;
            _Alignas(64) int32_t idx[16];
            unsigned load0 = 0, load1 = 0, keep = 0, store = 0;
            for (int64_t l = 0; l < 16; l++) {
                int64_t ow = 16 * q + l;
                int valid = ow >= lo && ow < hi; /* then 0 <= base + 2 l - start <= 30 */
                idx[l] = valid ? (int32_t)(base + 2 * l - start) : 0;
                keep |= (unsigned)valid << l;
                store |= (unsigned)(ow < OW) << l;
                load0 |= (unsigned)(start + l < IW) << l;
                load1 |= (unsigned)(start + 16 + l < IW) << l;
            }
            c->idx = _mm512_load_si512(idx);
            c->start = start;
            c->load0 = (__mmask16)load0, c->load1 = (__mmask16)load1;
            c->keep = (__mmask16)keep, c->store = (__mmask16)store;
        }
    }
    return 1;
}
#endif

void CONV_FN(kern_im2col_)(const kern_conv_shape *s, const float *x, int64_t col0, int64_t ncols, int64_t row0,
                           int64_t row1, float *dst) {
    const int64_t KD = s->kernel[0], KH = s->kernel[1], KW = s->kernel[2];
    const int64_t ID = s->in[0], IH = s->in[1], IW = s->in[2], OH = s->out[1], OW = s->out[2];
    const int64_t sw = s->stride[2], in_size = ID * IH * IW;
    /* Everything a row needs that does not depend on its channel is worked out once here: narrow planes make
     * thousands of rows of 7 or 14 columns, and a dozen divisions per row cost more than moving its floats (ResNet-50
     * layer4.0.conv2's im2col, 4608 rows of 49 columns: 0.169 -> 0.127 ms alone, hot). */
    const int64_t p_ow0 = col0 % OW, p_oh = (col0 / OW) % OH, p_od = col0 / (OW * OH);
    int64_t j = row0 % KW, i = (row0 / KW) % KH, a = (row0 / (KW * KH)) % KD, c = row0 / (KW * KH * KD);
#define CONV_TAPS_CACHED 16 /* kernel columns whose tap ranges are kept */
    int64_t tap_lo[CONV_TAPS_CACHED], tap_hi[CONV_TAPS_CACHED];
    for (int64_t jj = 0; jj < KW && jj < CONV_TAPS_CACHED; jj++)
        conv_tap_columns(jj * s->dilation[2] - s->pad[2], sw, IW, OW, &tap_lo[jj], &tap_hi[jj]);
#if CONV_VLEN == 16 && defined(__AVX512F__)
    conv_s2_chunk s2_plan[CONV_S2_MAX_KW * CONV_S2_MAX_CHUNKS];
    /* worth its set-up only when the window holds whole output rows */
    const int s2 = ncols >= OW && conv_s2_plan(s, s2_plan);
    const int64_t s2_chunks = conv_div_ceil(OW, 16);
    /* Narrow stride-2 planes (layer3/4 of a ResNet: 14 and 7 wide): where every column's tap lies inside the input
     * row (lo == 0, hi == OW), a whole output row is one or two masked loads and one two-source permute, and rows of
     * 8 or fewer make two per vector. */
    const int narrow = sw == 2 && OW <= 16 ? (2 * OW <= 16 ? 2 : 1) : 0;
    __m512i narrow_idx = _mm512_setzero_si512();
    __mmask16 narrow_lo = 0, narrow_hi = 0, narrow_out = 0;
    if (narrow) {
        _Alignas(64) int32_t idx[16];
        for (int l = 0; l < 16; l++) idx[l] = narrow == 2 ? (l < OW ? 2 * l : 16 + 2 * (l - (int)OW)) : 2 * l;
        narrow_idx = _mm512_load_si512(idx);
        int64_t need = 2 * OW - 1; /* floats one output row reads, from xr + off */
        narrow_lo = (__mmask16)((1u << (need < 16 ? need : 16)) - 1);
        narrow_hi = (__mmask16)(need > 16 ? (1u << (need - 16)) - 1 : 0);
        narrow_out = (__mmask16)((1u << (narrow * OW)) - 1);
    }
#endif
    for (int64_t r = row0; r < row1; r++) {
        const float *xc = x + c * in_size;
        float *d = dst + (r - row0) * ncols;
        int64_t off = j * s->dilation[2] - s->pad[2], lo, hi;
        if (j < CONV_TAPS_CACHED) lo = tap_lo[j], hi = tap_hi[j];
        else conv_tap_columns(off, sw, IW, OW, &lo, &hi);
        int64_t p = col0, end = col0 + ncols;
        int64_t ow0 = p_ow0, oh = p_oh, od = p_od;
#if CONV_VLEN == 16 && defined(__AVX512F__)
        const int rows_per = lo == 0 && hi == OW ? narrow : 0;
#endif
        while (p < end) {
            int64_t n = OW - ow0 < end - p ? OW - ow0 : end - p;
            int64_t id = od * s->stride[0] - s->pad[0] + a * s->dilation[0];
            int64_t ih = oh * s->stride[1] - s->pad[1] + i * s->dilation[1];
#if CONV_VLEN == 16 && defined(__AVX512F__)
            if (rows_per && ow0 == 0 && end - p >= rows_per * OW && oh + rows_per <= OH && id >= 0 && id < ID &&
                ih >= 0 && ih + (rows_per - 1) * s->stride[1] < IH) {
                const float *x0 = xc + (id * IH + ih) * IW + off;
                __m512 v0 = _mm512_maskz_loadu_ps(narrow_lo, x0), v1;
                if (rows_per == 2) v1 = _mm512_maskz_loadu_ps(narrow_lo, x0 + s->stride[1] * IW);
                else v1 = _mm512_maskz_loadu_ps(narrow_hi, x0 + 16);
                _mm512_mask_storeu_ps(d, narrow_out, _mm512_permutex2var_ps(v0, narrow_idx, v1));
                d += rows_per * OW;
                p += rows_per * OW;
                oh += rows_per;
                if (oh == OH) {
                    oh = 0;
                    od++;
                }
                continue;
            }
            if (s2 && ow0 == 0 && n == OW) {
                if (id < 0 || id >= ID || ih < 0 || ih >= IH) {
                    conv_zero(d, n);
                } else {
                    const float *xr = xc + (id * IH + ih) * IW;
                    const conv_s2_chunk *ch = s2_plan + j * s2_chunks;
                    for (int64_t q = 0; q < s2_chunks; q++, ch++) {
                        __m512 v0 = _mm512_maskz_loadu_ps(ch->load0, xr + ch->start);
                        __m512 v1 = _mm512_maskz_loadu_ps(ch->load1, xr + ch->start + 16);
                        _mm512_mask_storeu_ps(d + 16 * q, ch->store,
                                              _mm512_maskz_permutex2var_ps(ch->keep, v0, ch->idx, v1));
                    }
                }
                d += n;
                p += n;
                if (++oh == OH) {
                    oh = 0;
                    od++;
                }
                continue;
            }
#endif
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
        if (++j == KW) {
            j = 0;
            if (++i == KH) {
                i = 0;
                if (++a == KD) {
                    a = 0;
                    c++;
                }
            }
        }
    }
#undef CONV_TAPS_CACHED
}

/* ---- Depthwise --------------------------------------------------------------------------------------------------- */

#define CONV_DW_HOIST 25 /* taps whose weights stay in registers across the loop (5x5) */

/* The hot loop of the flat layout (conv_dw_flat_layout): out[q] = sum over taps t of w[t] * xp[off[t] + q] for q in
 * [0, n_out), four vectors at a time (independent accumulators hide the FMA latency). A constant T after inlining
 * unrolls the taps of the common kernels. */
static inline __attribute__((always_inline)) void conv_dw_flat_loop(const float *xp, const int64_t *off,
                                                                    const float *w, float *out, int64_t n_out,
                                                                    const int64_t T) {
    conv_vec wv[CONV_DW_HOIST];
    /* splatting the weights once pays only over several blocks; small planes broadcast them from memory per tap */
    const int hoist = T <= CONV_DW_HOIST && n_out >= 4 * 4 * CONV_VLEN;
    if (hoist)
        for (int64_t t = 0; t < T; t++) wv[t] = conv_splat(w[t]);
    for (int64_t q = 0; q < n_out; q += 4 * CONV_VLEN) {
        conv_vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
#pragma GCC unroll 25
        for (int64_t t = 0; t < T; t++) {
            const float *p = xp + off[t] + q;
            conv_vec v = hoist ? wv[t] : conv_splat(w[t]);
            a0 += v * conv_load(p);
            a1 += v * conv_load(p + CONV_VLEN);
            a2 += v * conv_load(p + 2 * CONV_VLEN);
            a3 += v * conv_load(p + 3 * CONV_VLEN);
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
        v = conv_clamp(v, vlo, vhi);
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

/* Zeroes what conv_dw_fill_planes never writes: the pad columns of every phase plane row and the slack after them. */
static void conv_dw_clear_pads(const conv_dw_flat *f, int64_t rows, const int64_t *n, const int64_t *col,
                               float *planes) {
    const int64_t Q = f->pitch;
    for (int64_t a = 0; a < f->S; a++)
        for (int64_t b = 0; b < f->S; b++) {
            float *p = planes + (a * f->S + b) * f->plane_floats;
            for (int64_t r = 0; r < rows; r++) {
                conv_zero(p + r * Q, col[b]);
                conv_zero(p + r * Q + col[b] + n[b], Q - col[b] - n[b]);
            }
            conv_zero(p + rows * Q, f->plane_floats - rows * Q);
        }
}

/* Copies the padded input rows [0, f->in_rows) of the strip starting at output row oh0 into the phase planes (all
 * zero where no input lands: rows outside the image are cleared here, the pad columns and the slack after the rows
 * once per call by conv_dw_clear_pads).
 * Column phase b takes x[iw0[b] + k * S] for k < n[b] to its row at offset col[b]. S is a constant after inlining. */
static inline __attribute__((always_inline)) void conv_dw_fill_planes(const kern_conv_shape *s, const conv_dw_flat *f,
                                                                      const float *x, int64_t oh0, const int64_t *iw0,
                                                                      const int64_t *n, const int64_t *col,
                                                                      float *planes, const int64_t S) {
    const int64_t Q = f->pitch, IH = s->in[1], IW = s->in[2], pf = f->plane_floats;
    int64_t ih = oh0 * S - s->pad[1];
    for (int64_t r = 0, a = 0, rr = 0; r < f->in_rows; r++, ih++) {
        float *row = planes + a * S * pf + rr * Q; /* in plane (a, 0) == (r % S, 0), row r / S */
        if (++a == S) a = 0, rr++;
        if (ih < 0 || ih >= IH) {
            for (int64_t b = 0; b < S; b++) conv_zero(row + b * pf, Q);
            continue;
        }
        const float *xr = x + ih * IW;
        for (int64_t b = 0; b < S; b++) {
            float *d = row + b * pf + col[b];
            if (S == 1) conv_copy(d, xr, n[b]);
            else if (S == 2) conv_gather2(d, xr + iw0[b], n[b], IW - iw0[b]);
            else
                for (int64_t k = 0; k < n[b]; k++) d[k] = xr[iw0[b] + k * S];
        }
    }
}

/* ---- Depthwise, channels blocked ------------------------------------------------------------------------------- */

/* Small planes (and 7x7 kernels) run CONV_VLEN channels at a time in a channels-last tile: tile[(r * pitch + c) *
 * CONV_VLEN + lane] holds padded input row r, column c of channel lane. Every output pixel is then a sum over taps of
 * a weight vector (one weight per lane) times an aligned input vector: pure vector FMAs, no horizontal work, no
 * copies of short rows. The blocks go in and out of NCHW with in-register transposes (conv_transpose) over the flat
 * plane, so a 7x7 plane costs four transposes, not seven row copies per channel. Stride 1 or 2, dilation 1, square
 * kernels of 3, 5 or 7. Layout for V lanes (kern_dwconv2d_scratch covers both 8 and 16): */
typedef struct conv_dwcl {
    int64_t B;         /* output columns per register block */
    int64_t pitch;     /* tile columns: the padded input's, and what the last column block reads */
    int64_t rows;      /* tile rows */
    int64_t strip;     /* output rows per pass of the output tile */
    int64_t out_pix;   /* pixels of the output tile: strip rows, the last block's overrun, rounded to vectors */
    int64_t band;      /* 1: the tile holds only the padded input rows of one strip, packed again per strip */
} conv_dwcl;

#define CONV_DWCL_STRIP_PIX 1024 /* output pixels per strip (64 KiB at 16 lanes) */
#define CONV_DWCL_MAX_TILE 4096  /* padded input pixels: 256 KiB of tile at 16 lanes; larger planes go in bands */
/* Output columns per register block for V lanes: 7 fits the 32 registers of AVX-512 and divides the widths of
 * MobileNet and EfficientNet (7 .. 112); 4 fits AVX2's 16. */
#define CONV_DWCL_B_OF(V) ((V) >= 16 ? 7 : 4)

static inline int conv_dwcl_layout(const kern_conv_shape *s, int64_t V, conv_dwcl *L) {
    const int64_t K = s->kernel[2], S = s->stride[2];
    if (s->kernel[1] != K || s->stride[1] != S || s->dilation[1] != 1 || s->dilation[2] != 1 || S > 2 ||
        (K != 3 && K != 5 && K != 7))
        return 0;
    const int64_t OH = s->out[1], OW = s->out[2];
    L->B = CONV_DWCL_B_OF(V);
    int64_t cols = conv_div_ceil(OW, L->B) * L->B; /* computed columns, some spill into the next row's slots */
    int64_t need_c = (cols - 1) * S + K, have_c = s->pad[2] + s->in[2];
    int64_t need_r = (OH - 1) * S + K, have_r = s->pad[1] + s->in[1];
    L->pitch = need_c > have_c ? need_c : have_c;
    L->rows = need_r > have_r ? need_r : have_r;
    L->strip = CONV_DWCL_STRIP_PIX / OW;
    if (L->strip < 1) L->strip = 1;
    if (L->strip > OH) L->strip = OH;
    L->band = L->rows * L->pitch > CONV_DWCL_MAX_TILE;
    if (L->band) {
        /* a large plane: the tile holds one strip's (strip - 1) * S + K input rows, within the cap */
        int64_t fit = (CONV_DWCL_MAX_TILE / L->pitch - K) / S + 1;
        if (fit < 1) return 0;
        if (L->strip > fit) L->strip = fit;
        L->rows = (L->strip - 1) * S + K;
    }
    L->out_pix = conv_div_ceil(L->strip * OW + L->B, 16) * 16;
    return 1;
}

/* Whether the channel-blocked kernel runs s (in builds of 8 or 16 lanes). Measured on Zen 4 (one thread, against the
 * flat kernel): faster on every shape it takes, 1.1x (3x3 s1 on 56x56) to 4x (5x5 on 7x7, 3x3 s2 on 14x14) with
 * AVX-512, 1.1x to 5x with AVX2. Planes past the tile cap run in bands (one strip's input rows packed at a time, so
 * the scratch stays bounded): on 112x112, 3x3 s2 went 1.6-2x faster (MobileNetV2's and EfficientNet's 96-channel
 * layer, 0.51 -> 0.26-0.30 ms), 3x3 s1 about 1.2x. */
static inline int conv_dwcl_wanted(const kern_conv_shape *s) {
    conv_dwcl L;
    if (!conv_dwcl_layout(s, 16, &L)) return 0;
    return 1;
}

/* Floats of scratch: the input tile, the output tile, the weights (49 taps at most), for the larger of the 8- and
 * 16-lane layouts; 0 where s does not fit the kernel. */
static inline int64_t conv_dwcl_scratch(const kern_conv_shape *s) {
    int64_t most = 0;
    for (int64_t V = 8; V <= 16; V *= 2) {
        conv_dwcl L;
        if (!conv_dwcl_layout(s, V, &L)) return 0;
        int64_t n = (L.rows * L.pitch + L.out_pix + 49) * V;
        if (n > most) most = n;
    }
    return most;
}

#if CONV_VLEN >= 8 /* the portable build keeps the flat kernel */
#if CONV_VLEN == 16
#define CONV_ZIP_LO 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23
#define CONV_ZIP_HI 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31
#else
#define CONV_ZIP_LO 0, 8, 1, 9, 2, 10, 3, 11
#define CONV_ZIP_HI 4, 12, 5, 13, 6, 14, 7, 15
#endif

/* The lanes of a, b (indices 0 .. 2 * CONV_VLEN - 1) listed in the index macro. */
#if defined(__clang__)
#define CONV_SHUFFLE2(a, b, IDX) __builtin_shufflevector(a, b, IDX)
#else
#define CONV_SHUFFLE2(a, b, IDX) __builtin_shuffle(a, b, (conv_mask){IDX})
#endif

/* Lanes of the first halves of a and b interleaved (a0 b0 a1 b1 ...), and of the second halves. */
static inline conv_vec conv_zip_lo(conv_vec a, conv_vec b) { return CONV_SHUFFLE2(a, b, CONV_ZIP_LO); }
static inline conv_vec conv_zip_hi(conv_vec a, conv_vec b) { return CONV_SHUFFLE2(a, b, CONV_ZIP_HI); }

/* Transposes the CONV_VLEN x CONV_VLEN matrix whose rows are r[0..CONV_VLEN). With AVX-512 and AVX2: pairs of rows
 * interleaved by floats, then by float pairs (within 128-bit lanes), then the 128-bit lanes gathered; each step
 * one cheap non-destructive shuffle per row. Elsewhere log2(CONV_VLEN) rounds of zips of row i with row
 * i + CONV_VLEN / 2 (a perfect shuffle of the element indices each round). */
static inline __attribute__((always_inline)) void conv_transpose(conv_vec *r) {
#if CONV_VLEN == 16 && defined(__AVX512F__)
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps((__m512)r[2 * i], (__m512)r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps((__m512)r[2 * i], (__m512)r[2 * i + 1]);
    }
    /* u[4j + k], 128-bit lane L: column 4L + k of rows 4j .. 4j + 3 */
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m512d a = _mm512_castps_pd(t[4 * j]), b = _mm512_castps_pd(t[4 * j + 1]);
        __m512d c = _mm512_castps_pd(t[4 * j + 2]), d = _mm512_castps_pd(t[4 * j + 3]);
        u[4 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * j + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * j + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        __m512 x0 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x44), x1 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xEE);
        __m512 y0 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x44);
        __m512 y1 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xEE);
        r[k] = (conv_vec)_mm512_shuffle_f32x4(x0, y0, 0x88);
        r[4 + k] = (conv_vec)_mm512_shuffle_f32x4(x0, y0, 0xDD);
        r[8 + k] = (conv_vec)_mm512_shuffle_f32x4(x1, y1, 0x88);
        r[12 + k] = (conv_vec)_mm512_shuffle_f32x4(x1, y1, 0xDD);
    }
#elif CONV_VLEN == 8 && defined(__AVX2__)
    __m256 t[8], u[8];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps((__m256)r[2 * i], (__m256)r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps((__m256)r[2 * i], (__m256)r[2 * i + 1]);
    }
#pragma GCC unroll 2
    for (int j = 0; j < 2; j++) {
        __m256d a = _mm256_castps_pd(t[4 * j]), b = _mm256_castps_pd(t[4 * j + 1]);
        __m256d c = _mm256_castps_pd(t[4 * j + 2]), d = _mm256_castps_pd(t[4 * j + 3]);
        u[4 * j] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c));
        u[4 * j + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
        u[4 * j + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, d));
        u[4 * j + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, d));
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        r[k] = (conv_vec)_mm256_permute2f128_ps(u[k], u[4 + k], 0x20);
        r[4 + k] = (conv_vec)_mm256_permute2f128_ps(u[k], u[4 + k], 0x31);
    }
#else
#pragma GCC unroll 4
    for (int round = 1; round < CONV_VLEN; round *= 2) {
        conv_vec t[CONV_VLEN];
#pragma GCC unroll 8
        for (int i = 0; i < CONV_VLEN / 2; i++) {
            t[2 * i] = conv_zip_lo(r[i], r[i + CONV_VLEN / 2]);
            t[2 * i + 1] = conv_zip_hi(r[i], r[i + CONV_VLEN / 2]);
        }
#pragma GCC unroll 16
        for (int i = 0; i < CONV_VLEN; i++) r[i] = t[i];
    }
#endif
}

/* Packs n flat pixels of nc <= CONV_VLEN planes (x + c * plane) into tile vectors: pixel p goes to
 * tile[((p / width + r0) * pitch + p % width + c0) * CONV_VLEN]; lanes of missing channels are zero. */
static void conv_dwcl_pack(const float *x, int64_t plane, int64_t nc, int64_t n, int64_t width, float *tile,
                           int64_t pitch, int64_t r0, int64_t c0) {
    int64_t row = r0, col = 0;
    for (int64_t p = 0; p < n; p += CONV_VLEN) {
        int64_t m = n - p < CONV_VLEN ? n - p : CONV_VLEN;
        conv_vec r[CONV_VLEN];
#pragma GCC unroll 16
        for (int c = 0; c < CONV_VLEN; c++)
            r[c] = c >= nc          ? (conv_vec){0}
                   : m == CONV_VLEN ? conv_load(x + c * plane + p)
                                    : conv_load_n(x + c * plane + p, m);
        conv_transpose(r);
#pragma GCC unroll 16
        for (int k = 0; k < CONV_VLEN; k++) {
            if (k == m) break;
            conv_store(tile + (row * pitch + col + c0) * CONV_VLEN, r[k]);
            if (++col == width) col = 0, row++;
        }
    }
}

/* The other way, for n output pixels in out (pixel p at out[p * CONV_VLEN], read in whole vectors of pixels): y[c, p]
 * = clamp(out[p, c] + res[c, p]) for c < nc; res may be NULL. */
static void conv_dwcl_unpack(const float *out, int64_t n, int64_t nc, float *y, int64_t plane, const float *res,
                             float lo, float hi) {
    const conv_vec vlo = conv_splat(lo), vhi = conv_splat(hi);
    for (int64_t p = 0; p < n; p += CONV_VLEN) {
        int64_t m = n - p < CONV_VLEN ? n - p : CONV_VLEN;
        conv_vec r[CONV_VLEN];
#pragma GCC unroll 16
        for (int k = 0; k < CONV_VLEN; k++) r[k] = conv_load(out + (p + k) * CONV_VLEN);
        conv_transpose(r);
#pragma GCC unroll 16
        for (int c = 0; c < CONV_VLEN; c++) {
            if (c == nc) break;
            conv_vec v = r[c];
            if (m == CONV_VLEN) {
                if (res) v += conv_load(res + c * plane + p);
                conv_store(y + c * plane + p, conv_clamp(v, vlo, vhi));
            } else {
                if (res) v += conv_load_n(res + c * plane + p, m);
                conv_store_n(y + c * plane + p, conv_clamp(v, vlo, vhi), m);
            }
        }
    }
}

/* Output rows [oh0, oh0 + rows) of one channel block into out (row oh at out + (oh - oh0) * OW pixels), B columns at
 * a time from K tap rows of B * S + K - S input vectors each, loaded once and reused across the row's taps. Blocks
 * past OW spill into the next row's slots (rewritten after) or the tile's slack. K, S, B constant after inlining.
 * Each weight vector is loaded once per tap and block (holding all nine of a 3x3 in registers spilled: slower). */
static inline __attribute__((always_inline)) void conv_dwcl_rows(const float *tile, int64_t pitch, const float *wt,
                                                                 conv_vec vb, float *out, int64_t oh0, int64_t rows,
                                                                 int64_t OW, const int K, const int S, const int B) {
    for (int64_t oh = oh0; oh < oh0 + rows; oh++) {
        float *o = out + (oh - oh0) * OW * CONV_VLEN;
        for (int64_t ow0 = 0; ow0 < OW; ow0 += B) {
            conv_vec acc[CONV_DWCL_B_OF(CONV_VLEN)];
            for (int k = 0; k < B; k++) acc[k] = vb;
            for (int i = 0; i < K; i++) {
                const float *xr = tile + ((oh * S + i) * pitch + ow0 * S) * CONV_VLEN;
                conv_vec xv[(CONV_DWCL_B_OF(CONV_VLEN) - 1) * 2 + 7];
#pragma GCC unroll 21
                for (int m = 0; m < (B - 1) * S + K; m++) xv[m] = conv_load(xr + m * CONV_VLEN);
#pragma GCC unroll 7
                for (int j = 0; j < K; j++) {
                    conv_vec wv = conv_load(wt + (i * K + j) * CONV_VLEN);
#pragma GCC unroll 8
                    for (int k = 0; k < B; k++) acc[k] += wv * xv[k * S + j];
                }
            }
            for (int k = 0; k < B; k++) conv_store(o + (ow0 + k) * CONV_VLEN, acc[k]);
        }
    }
}

#define CONV_DWCL_B CONV_DWCL_B_OF(CONV_VLEN)
/* The channel-blocked kernel (conv_dwcl): blocks of CONV_VLEN channels, each packed, convolved strip by strip and
 * unpacked with the clamp and residual; bias rides in the accumulators. Other activations are applied per strip. */
static void conv_dwcl_run(const kern_conv_shape *s, const conv_dwcl *L, int64_t channels, const float *x,
                          const float *w, const float *bias, const float *residual, const kern_activation *act,
                          int clamp, float lo, float hi, float *y, float *scratch) {
    const int64_t K = s->kernel[2], S = s->stride[2], T = K * K, IH = s->in[1], IW = s->in[2];
    const int64_t OH = s->out[1], OW = s->out[2], in_size = IH * IW, out_size = OH * OW, pt = s->pad[1],
                  pl = s->pad[2], Q = L->pitch;
    float *tile = scratch, *out = tile + L->rows * Q * CONV_VLEN, *wt = out + L->out_pix * CONV_VLEN;
    /* the pad rows and columns stay zero: packing writes only the image (a band's pad rows are zeroed per strip) */
    for (int64_t r = 0; r < L->rows; r++) {
        if (!L->band && (r < pt || r >= pt + IH)) {
            conv_zero(tile + r * Q * CONV_VLEN, Q * CONV_VLEN);
        } else {
            conv_zero(tile + r * Q * CONV_VLEN, pl * CONV_VLEN);
            conv_zero(tile + (r * Q + pl + IW) * CONV_VLEN, (Q - pl - IW) * CONV_VLEN);
        }
    }
    for (int64_t c0 = 0; c0 < channels; c0 += CONV_VLEN) {
        int64_t nc = channels - c0 < CONV_VLEN ? channels - c0 : CONV_VLEN;
        conv_dwcl_pack(w + c0 * T, T, nc, T, T, wt, T, 0, 0);
        if (!L->band) conv_dwcl_pack(x + c0 * in_size, in_size, nc, in_size, IW, tile, Q, pt, pl);
        conv_vec vb = {0};
        if (bias)
            for (int64_t c = 0; c < nc; c++) vb[c] = bias[c0 + c];
        for (int64_t oh0 = 0; oh0 < OH; oh0 += L->strip) {
            int64_t rows = OH - oh0 < L->strip ? OH - oh0 : L->strip;
            /* the tile's row 0 is padded input row t0: 0 for a whole plane, oh0 * S for a band */
            int64_t t0 = 0;
            if (L->band) {
                /* padded rows [t0, t0 + n) hold image rows [lo, hi), the rest are zero */
                int64_t n = (rows - 1) * S + K, lo = oh0 * S - pt, hi = lo + n;
                t0 = oh0 * S;
                if (lo < 0) lo = 0;
                if (hi > IH) hi = IH;
                if (hi < lo) hi = lo;
                for (int64_t r = 0; r < n; r++)
                    if (r + t0 < lo + pt || r + t0 >= hi + pt) conv_zero(tile + r * Q * CONV_VLEN, Q * CONV_VLEN);
                if (hi > lo)
                    conv_dwcl_pack(x + c0 * in_size + lo * IW, in_size, nc, (hi - lo) * IW, IW, tile, Q,
                                   lo + pt - t0, pl);
            }
            int64_t r0 = oh0 - t0 / S; /* the strip's first output row, counted from the tile's */
            if (K == 3 && S == 1) conv_dwcl_rows(tile, Q, wt, vb, out, r0, rows, OW, 3, 1, CONV_DWCL_B);
            else if (K == 3) conv_dwcl_rows(tile, Q, wt, vb, out, r0, rows, OW, 3, 2, CONV_DWCL_B);
            else if (K == 5 && S == 1) conv_dwcl_rows(tile, Q, wt, vb, out, r0, rows, OW, 5, 1, CONV_DWCL_B);
            else if (K == 5) conv_dwcl_rows(tile, Q, wt, vb, out, r0, rows, OW, 5, 2, CONV_DWCL_B);
            else if (S == 1) conv_dwcl_rows(tile, Q, wt, vb, out, r0, rows, OW, 7, 1, CONV_DWCL_B);
            else conv_dwcl_rows(tile, Q, wt, vb, out, r0, rows, OW, 7, 2, CONV_DWCL_B);
            int64_t p0 = oh0 * OW;
            /* without a residual the activation goes on the strip's output tile while it is in L1, in one long run
             * (the lanes of missing channels are finite and never stored) */
            if (!clamp && !residual) kern_activation_apply(act, out, (size_t)(rows * OW * CONV_VLEN));
            conv_dwcl_unpack(out, rows * OW, nc, y + c0 * out_size + p0, out_size,
                             residual ? residual + c0 * out_size + p0 : NULL, lo, hi);
            if (!clamp && residual)
                for (int64_t c = 0; c < nc; c++)
                    kern_activation_apply(act, y + (c0 + c) * out_size + p0, (size_t)(rows * OW));
        }
    }
}
#endif

#if CONV_VBYTES == 64 && defined(__AVX512F__)
/* ---- Depthwise, stride 1 on the plain planes (AVX-512) ---------------------------------------------------------- */

/* Stride-1 "same" 3x3 convs (pad 1 on every side) read the NCHW planes as they lie: a vector is 16
 * consecutive pixels of the flattened plane, whatever rows they span, and tap (i, j) is the vector at the same
 * pixels shifted by (i - K/2) rows and (j - K/2) columns, loaded with a mask that zeroes the lanes whose tap falls in
 * the padding (AVX-512 masked loads never touch, or fault on, masked-off lanes). Every lane of every FMA is an output
 * pixel and nothing is copied: the channel-blocked kernel spent about half of a 14x14 conv in its transposes in and
 * out of its layout (and, on two threads, its stores into lines the other core had just read). The masks depend on
 * the pixels only, so they are built once per strip of vectors and serve every channel. Measured on Zen 4 against
 * the channel-blocked kernel (MobileNetV2's stride-1 3x3 layers, 7x7 to 112x112): 14x14x576 0.073 -> 0.056 ms on
 * one thread, 62 -> 35 us on two; chains of eight convs on 112x112x32 and 56x56x144 10-15% faster on one and two
 * threads. The masks are a few bit operations per vector (one division): built lane by lane they cost as much as
 * the convolution itself on the 16 channels per thread of a 112x112 layer. 5x5 kernels stay blocked: 25 masked
 * loads per vector, where the blocked kernel reuses each loaded vector across a row of taps, ran EfficientNet's 5x5
 * layers 20-35% slower. */
#define CONV_DWM_STRIP 64 /* vectors (1024 pixels) per strip of masks */

static inline int conv_dwm_wanted(const kern_conv_shape *s) {
    const int64_t K = s->kernel[2];
    return s->in[0] == 1 && s->kernel[0] == 1 && s->kernel[1] == K && K == 3 && s->stride[1] == 1 &&
           s->stride[2] == 1 && s->dilation[1] == 1 && s->dilation[2] == 1 && s->pad[1] == K / 2 &&
           s->pad[2] == K / 2 && s->out[1] == s->in[1] && s->out[2] == s->in[2];
}

static inline __attribute__((always_inline)) void conv_dwm_run_k(const kern_conv_shape *s, int64_t channels,
                                                                 const float *x, const float *w, const float *bias,
                                                                 const float *residual, const kern_activation *act,
                                                                 int clamp, float lo, float hi, float *y,
                                                                 const int K) {
    const int64_t H = s->in[1], W = s->in[2], P = H * W, R = K / 2;
    const int64_t nvec = conv_div_ceil(P, 16);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    __mmask16 masks[CONV_DWM_STRIP][9], valid[CONV_DWM_STRIP];
    for (int64_t v0 = 0; v0 < nvec; v0 += CONV_DWM_STRIP) {
        const int64_t nv = nvec - v0 < CONV_DWM_STRIP ? nvec - v0 : CONV_DWM_STRIP;
        for (int64_t v = 0; v < nv; v++) {
            /* lane l is pixel q0 + l: out of the plane past P; in the first row (no row above) while q < W, the
             * last (none below) from (H - 1) * W; in column 0 (none left) where (c0 + l) % W == 0, column W - 1
             * (none right) where it is W - 1 */
            const int64_t q0 = (v0 + v) * 16, c0 = q0 % W, last = (H - 1) * W;
            unsigned in = P - q0 >= 16 ? 0xffffu : (1u << (P - q0)) - 1, top = 0, bottom = 0, left = 0, right = 0;
            if (q0 < W) top = W - q0 >= 16 ? 0xffffu : (1u << (W - q0)) - 1;
            if (last - q0 < 16) bottom = last - q0 <= 0 ? 0xffffu : 0xffffu & ~((1u << (last - q0)) - 1);
            for (int64_t l = c0 ? W - c0 : 0; l < 16; l += W) left |= 1u << l;
            for (int64_t l = W - 1 - c0; l < 16; l += W) right |= 1u << l;
            const unsigned rowm[3] = {in & ~top, in, in & ~bottom}, colm[3] = {~left, 0xffffu, ~right};
            valid[v] = (__mmask16)in;
            for (int i = 0; i < K; i++)
                for (int j = 0; j < K; j++) masks[v][i * K + j] = (__mmask16)(rowm[i] & colm[j]);
        }
        const int64_t p0 = v0 * 16, n = (v0 + nv) * 16 < P ? nv * 16 : P - p0;
        for (int64_t c = 0; c < channels; c++) {
            const float *xc = x + c * P, *rc = residual ? residual + c * P : NULL;
            float *yc = y + c * P;
            __m512 wv[9];
#pragma GCC unroll 9
            for (int t = 0; t < K * K; t++) wv[t] = _mm512_set1_ps(w[c * K * K + t]);
            const __m512 vb = _mm512_set1_ps(bias ? bias[c] : 0.0f);
            for (int64_t v = 0; v < nv; v++) {
                const int64_t p = p0 + v * 16;
                __m512 acc0 = vb, acc1 = _mm512_setzero_ps(); /* two chains of additions */
#pragma GCC unroll 5
                for (int i = 0; i < K; i++) {
                    const float *xr = xc + p + (i - R) * W - R;
#pragma GCC unroll 5
                    for (int j = 0; j < K; j++) {
                        __m512 xv = _mm512_maskz_loadu_ps(masks[v][i * K + j], xr + j);
                        if ((i * K + j) & 1) acc1 = _mm512_fmadd_ps(xv, wv[i * K + j], acc1);
                        else acc0 = _mm512_fmadd_ps(xv, wv[i * K + j], acc0);
                    }
                }
                acc0 = _mm512_add_ps(acc0, acc1);
                if (rc) acc0 = _mm512_add_ps(acc0, _mm512_maskz_loadu_ps(valid[v], rc + p));
                if (clamp) acc0 = (__m512)conv_clamp((conv_vec)acc0, (conv_vec)vlo, (conv_vec)vhi);
                _mm512_mask_storeu_ps(yc + p, valid[v], acc0);
            }
            /* the strip of this channel, still in L1 */
            if (!clamp) kern_activation_apply(act, yc + p0, (size_t)n);
        }
    }
}

static void conv_dwm_run(const kern_conv_shape *s, int64_t channels, const float *x, const float *w,
                         const float *bias, const float *residual, const kern_activation *act, int clamp, float lo,
                         float hi, float *y) {
    conv_dwm_run_k(s, channels, x, w, bias, residual, act, clamp, lo, hi, y, 3);
}

/* ---- Depthwise, 3x3 stride 2 on the plain planes (AVX-512) ------------------------------------------------------ */

/* 3x3 stride-2 convs with pad 1 (out = (in - 1) / 2 + 1 each way) read the NCHW planes as they lie, one output row
 * at a time: the 16 outputs of a vector at columns ow0.. need input columns 2 * ow0 - 1 .. 2 * ow0 + 31 of each of
 * the three input rows, loaded as two masked vectors (lanes past the row read zero, which is the right padding) and
 * split into the even columns (the centre tap) and the odd ones (the right tap) by one two-source permute each; the
 * left tap is the odd vector moved up one lane, its lane 0 carried from the previous vector's odd lane 15 (zero at
 * the row's start: the left padding). Input rows outside the plane are loaded with an empty mask. Planes of at most
 * 8 output columns (at most 16 input ones) put two output rows in a vector, as they lie in y, from two 16-float
 * loads. Nothing is copied, against the channel-blocked kernel's transposes into and out of its layout (about half
 * of its time on small planes). Measured on Zen 4 against the channel-blocked kernel, per layer inside MobileNetV2
 * (min over runs), one thread: 112x112x96 269 -> 186 us, 56x56x144 85 -> 47, 28x28x192 30 -> 19, 14x14x576 27 -> 20;
 * two threads: 112x112x96 152 -> 109 us, 56x56x144 52 -> 34. The blocked kernel still takes these shapes in the
 * AVX2 build, and its scratch is still reserved for them. */
static inline int conv_dws2_wanted(const kern_conv_shape *s) {
    return s->in[0] == 1 && s->kernel[0] == 1 && s->kernel[1] == 3 && s->kernel[2] == 3 && s->stride[1] == 2 &&
           s->stride[2] == 2 && s->dilation[1] == 1 && s->dilation[2] == 1 && s->pad[1] == 1 && s->pad[2] == 1 &&
           s->out[1] == (s->in[1] - 1) / 2 + 1 && s->out[2] == (s->in[2] - 1) / 2 + 1;
}

static inline __mmask16 conv_dws2_mask(int64_t n) {
    return n >= 16 ? (__mmask16)0xffffu : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* Output rows oh and oh + 1 (the second only if two) from input rows r[k] = 2 * oh - 1 + k, k < 5, loaded under
 * m[k] (empty in the padding): row 2 * oh + 1 serves both, so its loads and permutes are shared (15 permutes for two
 * vectors, not 18). Called with constant full masks for the rows inside the plane. */
static inline __attribute__((always_inline)) void conv_dws2_row2(const float *const *r, const __mmask16 *m, int two,
                                                                 int64_t W, int64_t OW, const __m512 *wv, __m512 vb,
                                                                 const float *res, int clamp, __m512 vlo,
                                                                 __m512 vhi, float *yr) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    __m512i prev[5];
#pragma GCC unroll 5
    for (int k = 0; k < 5; k++) prev[k] = _mm512_setzero_si512();
    for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
        const int64_t c0 = 2 * ow0;
        const __mmask16 ma = conv_dws2_mask(W - c0), mb = conv_dws2_mask(W - c0 - 16), mo = conv_dws2_mask(OW - ow0);
        __m512 acc[6]; /* a chain of additions per tap row and output row */
#pragma GCC unroll 5
        for (int k = 0; k < 5; k++) {
            if (k >= 3 && !two) break;
            const __m512 a = _mm512_maskz_loadu_ps(ma & m[k], r[k] + c0);
            const __m512 b = _mm512_maskz_loadu_ps(mb & m[k], r[k] + c0 + 16);
            const __m512 e = _mm512_permutex2var_ps(a, even, b), o = _mm512_permutex2var_ps(a, odd, b);
            const __m512 l = (__m512)_mm512_alignr_epi32((__m512i)o, prev[k], 15);
            prev[k] = (__m512i)o;
            if (k < 3) {
                acc[k] = _mm512_fmadd_ps(l, wv[k * 3], k == 1 ? vb : _mm512_setzero_ps());
                acc[k] = _mm512_fmadd_ps(e, wv[k * 3 + 1], acc[k]);
                acc[k] = _mm512_fmadd_ps(o, wv[k * 3 + 2], acc[k]);
            }
            if (k >= 2 && two) {
                const int i = k - 2;
                acc[3 + i] = _mm512_fmadd_ps(l, wv[i * 3], i == 1 ? vb : _mm512_setzero_ps());
                acc[3 + i] = _mm512_fmadd_ps(e, wv[i * 3 + 1], acc[3 + i]);
                acc[3 + i] = _mm512_fmadd_ps(o, wv[i * 3 + 2], acc[3 + i]);
            }
        }
#pragma GCC unroll 2
        for (int q = 0; q < 2; q++) {
            if (q && !two) break;
            __m512 v = _mm512_add_ps(_mm512_add_ps(acc[3 * q], acc[3 * q + 2]), acc[3 * q + 1]);
            if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mo, res + q * OW + ow0));
            if (clamp) v = (__m512)conv_clamp((conv_vec)v, (conv_vec)vlo, (conv_vec)vhi);
            _mm512_mask_storeu_ps(yr + q * OW + ow0, mo, v);
        }
    }
}

/* Input rows 2 oh - 1 .. 2 oh + 3 of a plane for output rows oh and oh + 1, at the plane's first or last rows: those
 * outside it (the padding), and the last two when there is no second output row (!second), get an empty mask. */
static inline void conv_dws2_edge_rows(const float *xc, int64_t H, int64_t W, int64_t oh, int second, __mmask16 in,
                                       const float *rows[5], __mmask16 m[5]) {
    for (int k = 0; k < 5; k++) {
        const int64_t ih = 2 * oh - 1 + k;
        const int ok = ih >= 0 && ih < H && (k < 3 || second);
        rows[k] = xc + (ok ? ih : 0) * W;
        m[k] = ok ? in : 0;
    }
}

/* channel c's nine taps and bias, broadcast */
static inline void conv_dws2_weights(const float *w, const float *bias, int64_t c, __m512 wv[9], __m512 *vb) {
#pragma GCC unroll 9
    for (int t = 0; t < 9; t++) wv[t] = _mm512_set1_ps(w[c * 9 + t]);
    *vb = _mm512_set1_ps(bias ? bias[c] : 0.0f);
}

/* planes of more than 8 output columns: one output row per vector, two rows at a time */
static __attribute__((noinline)) void conv_dws2_rows(const kern_conv_shape *s, int64_t channels, const float *x,
                                                     const float *w, const float *bias, const float *residual,
                                                     const kern_activation *act, int clamp, float lo, float hi,
                                                     float *y) {
    const int64_t H = s->in[1], W = s->in[2], OH = s->out[1], OW = s->out[2], P = H * W, OP = OH * OW;
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const __mmask16 full[5] = {0xffffu, 0xffffu, 0xffffu, 0xffffu, 0xffffu};
    for (int64_t c = 0; c < channels; c++) {
        const float *xc = x + c * P, *rc = residual ? residual + c * OP : NULL;
        float *yc = y + c * OP;
        __m512 wv[9], vb;
        conv_dws2_weights(w, bias, c, wv, &vb);
        for (int64_t oh = 0; oh < OH; oh += 2) {
            const float *ro = rc ? rc + oh * OW : NULL;
            if (oh > 0 && 2 * oh + 3 < H) {
                const float *r0 = xc + (2 * oh - 1) * W;
                const float *r[5] = {r0, r0 + W, r0 + 2 * W, r0 + 3 * W, r0 + 4 * W};
                conv_dws2_row2(r, full, 1, W, OW, wv, vb, ro, clamp, vlo, vhi, yc + oh * OW);
            } else { /* the first pair (row -1 is padding), the last (rows from H on are), or a last single row */
                const float *r[5];
                __mmask16 m[5];
                conv_dws2_edge_rows(xc, H, W, oh, 1, 0xffffu, r, m);
                conv_dws2_row2(r, m, oh + 1 < OH, W, OW, wv, vb, ro, clamp, vlo, vhi, yc + oh * OW);
            }
        }
        /* the channel's plane, still in L1 */
        if (!clamp) kern_activation_apply(act, yc, (size_t)OP);
    }
}

/* Output rows oh and oh + 1 of a plane at most 8 wide, which lie one after the other in y, in lanes [0, OW) and
 * [OW, 2 * OW) of one vector: tap row i reads input row 2 * oh - 1 + i (rows[i], the permutes' first source) and
 * 2 * oh + 1 + i (rows[i + 2], the second), five rows in all, rows[k] loaded under m[k]. */
static inline __attribute__((always_inline)) void conv_dws2_pair(const float *const *rows, const __mmask16 *m,
                                                                 __m512i il, __mmask16 ml, __m512i ie, __m512i io,
                                                                 const __m512 *wv, __m512 vb, const float *res,
                                                                 __mmask16 mo, int clamp, __m512 vlo, __m512 vhi,
                                                                 float *yr) {
    __m512 v[5];
#pragma GCC unroll 5
    for (int k = 0; k < 5; k++) v[k] = _mm512_maskz_loadu_ps(m[k], rows[k]);
    __m512 acc0 = vb, acc1 = _mm512_setzero_ps();
#pragma GCC unroll 3
    for (int i = 0; i < 3; i++) {
        acc0 = _mm512_fmadd_ps(_mm512_maskz_permutex2var_ps(ml, v[i], il, v[i + 2]), wv[i * 3], acc0);
        acc1 = _mm512_fmadd_ps(_mm512_permutex2var_ps(v[i], ie, v[i + 2]), wv[i * 3 + 1], acc1);
        acc0 = _mm512_fmadd_ps(_mm512_permutex2var_ps(v[i], io, v[i + 2]), wv[i * 3 + 2], acc0);
    }
    acc0 = _mm512_add_ps(acc0, acc1);
    if (res) acc0 = _mm512_add_ps(acc0, _mm512_maskz_loadu_ps(mo, res));
    if (clamp) acc0 = (__m512)conv_clamp((conv_vec)acc0, (conv_vec)vlo, (conv_vec)vhi);
    _mm512_mask_storeu_ps(yr, mo, acc0);
}

/* planes of at most 8 output columns (at most 16 input ones): two output rows per vector */
static __attribute__((noinline)) void conv_dws2_pairs(const kern_conv_shape *s, int64_t channels, const float *x,
                                                      const float *w, const float *bias, const float *residual,
                                                      const kern_activation *act, int clamp, float lo, float hi,
                                                      float *y) {
    const int64_t H = s->in[1], W = s->in[2], OH = s->out[1], OW = s->out[2], P = H * W, OP = OH * OW;
    int32_t idx[3][16];
    for (int64_t l = 0; l < 16; l++) {
        const int64_t src = l < OW ? 2 * l : l < 2 * OW ? 16 + 2 * (l - OW) : 0;
        for (int j = 0; j < 3; j++) idx[j][l] = (int32_t)(src + j - 1 < 0 ? 0 : src + j - 1);
    }
    const __m512i il = _mm512_loadu_si512(idx[0]), ie = _mm512_loadu_si512(idx[1]), io = _mm512_loadu_si512(idx[2]);
    /* column -1 of either row is the padding */
    const __mmask16 ml = (__mmask16)(0xffffu & ~1u & ~(1u << OW)), in = conv_dws2_mask(W);
    const __mmask16 full[5] = {in, in, in, in, in}, two = conv_dws2_mask(2 * OW);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int64_t c = 0; c < channels; c++) {
        const float *xc = x + c * P, *rc = residual ? residual + c * OP : NULL;
        float *yc = y + c * OP;
        __m512 wv[9], vb;
        conv_dws2_weights(w, bias, c, wv, &vb);
        for (int64_t oh = 0; oh < OH; oh += 2) {
            const float *ro = rc ? rc + oh * OW : NULL;
            if (oh > 0 && 2 * oh + 3 < H) {
                const float *r = xc + (2 * oh - 1) * W, *rows[5] = {r, r + W, r + 2 * W, r + 3 * W, r + 4 * W};
                conv_dws2_pair(rows, full, il, ml, ie, io, wv, vb, ro, two, clamp, vlo, vhi, yc + oh * OW);
            } else { /* the first pair, and the last: rows outside the plane, or no second output row */
                const float *rows[5];
                __mmask16 m[5];
                conv_dws2_edge_rows(xc, H, W, oh, oh + 1 < OH, in, rows, m);
                conv_dws2_pair(rows, m, il, ml, ie, io, wv, vb, ro, oh + 1 < OH ? two : conv_dws2_mask(OW), clamp,
                               vlo, vhi, yc + oh * OW);
            }
        }
        if (!clamp) kern_activation_apply(act, yc, (size_t)OP);
    }
}
#endif

void CONV_FN(kern_dwconv2d_)(const kern_conv_shape *s, int64_t channels, const float *x, const float *w,
                             const float *bias, const float *residual, const kern_activation *act, float *y,
                             float *scratch) {
    const int64_t OH = s->out[1], OW = s->out[2], KH = s->kernel[1], KW = s->kernel[2], T = KH * KW;
    const int64_t in_size = s->in[1] * s->in[2], out_size = OH * OW;
    conv_dw_flat f;
    /* Relu and Clip are applied while finishing each row; anything else afterwards, per strip of rows. */
    int clamp = !act || act->kind == KERN_ACT_NONE || act->kind == KERN_ACT_RELU || act->kind == KERN_ACT_CLIP;
    float lo = -__builtin_inff(), hi = __builtin_inff();
    if (act && act->kind == KERN_ACT_RELU) lo = 0.0f;
    if (act && act->kind == KERN_ACT_CLIP) lo = act->alpha, hi = act->beta;
#if CONV_VBYTES == 64 && defined(__AVX512F__)
    if (conv_dwm_wanted(s)) {
        conv_dwm_run(s, channels, x, w, bias, residual, act, clamp, lo, hi, y);
        return;
    }
    if (conv_dws2_wanted(s)) {
        if (s->out[2] <= 8) conv_dws2_pairs(s, channels, x, w, bias, residual, act, clamp, lo, hi, y);
        else conv_dws2_rows(s, channels, x, w, bias, residual, act, clamp, lo, hi, y);
        return;
    }
#endif
#if CONV_VLEN >= 8
    conv_dwcl L;
    if (conv_dwcl_wanted(s) && conv_dwcl_layout(s, CONV_VLEN, &L)) {
        conv_dwcl_run(s, &L, channels, x, w, bias, residual, act, clamp, lo, hi, y, scratch);
        return;
    }
#endif
    if (!conv_dw_flat_layout(s, &f)) {
        for (int64_t c = 0; c < channels; c++) {
            float *yc = y + c * out_size;
            conv_dw_direct(s, x + c * in_size, w + c * T, bias ? bias[c] : 0.0f,
                           residual ? residual + c * out_size : NULL, yc);
            if (clamp) conv_dw_finish_row(yc, yc, 0.0f, NULL, out_size, lo, hi);
            else kern_activation_apply(act, yc, (size_t)out_size);
        }
        return;
    }
    const int64_t S = f.S, Q = f.pitch;
    float *planes = scratch, *out = scratch + S * S * f.plane_floats;
    /* tap (i, j) reads plane ((i * dh) % S, (j * dw) % S) at (i * dh / S) * Q + j * dw / S */
    int64_t off[CONV_DW_MAX_TAPS];
    for (int64_t i = 0; i < KH; i++)
        for (int64_t j = 0; j < KW; j++) {
            int64_t u = i * s->dilation[1], v = j * s->dilation[2];
            off[i * KW + j] = ((u % S) * S + v % S) * f.plane_floats + (u / S) * Q + v / S;
        }
    /* column phase b: padded columns c == b (mod S) from c0 = pl + ((b - pl) mod S) on hold x[c - pl] */
    int64_t iw0[CONV_DW_MAX_STRIDE], nb[CONV_DW_MAX_STRIDE], col[CONV_DW_MAX_STRIDE];
    for (int64_t b = 0; b < S; b++) {
        int64_t pl = s->pad[2], c0 = pl + ((b - pl % S) % S + S) % S;
        iw0[b] = c0 - pl;
        nb[b] = iw0[b] < s->in[2] ? (s->in[2] - 1 - iw0[b]) / S + 1 : 0;
        col[b] = c0 / S;
    }
    conv_dw_clear_pads(&f, f.strip + (KH - 1) * s->dilation[1] / S, nb, col, planes);
    for (int64_t c = 0; c < channels; c++) {
        const float *wc = w + c * T, *rc = residual ? residual + c * out_size : NULL;
        float *yc = y + c * out_size, bc = bias ? bias[c] : 0.0f;
        for (int64_t oh0 = 0; oh0 < OH; oh0 += f.strip) {
            int64_t rows = OH - oh0 < f.strip ? OH - oh0 : f.strip;
            if (S == 1) conv_dw_fill_planes(s, &f, x + c * in_size, oh0, iw0, nb, col, planes, 1);
            else if (S == 2) conv_dw_fill_planes(s, &f, x + c * in_size, oh0, iw0, nb, col, planes, 2);
            else conv_dw_fill_planes(s, &f, x + c * in_size, oh0, iw0, nb, col, planes, S);
            /* constant tap counts for the common kernels, so their taps unroll */
            if (T == 9) conv_dw_flat_loop(planes, off, wc, out, f.n_out, 9);
            else if (T == 25) conv_dw_flat_loop(planes, off, wc, out, f.n_out, 25);
            else if (T == 49) conv_dw_flat_loop(planes, off, wc, out, f.n_out, 49);
            else conv_dw_flat_loop(planes, off, wc, out, f.n_out, T);
            for (int64_t r = 0; r < rows; r++) {
                int64_t oh = oh0 + r;
                conv_dw_finish_row(yc + oh * OW, out + r * Q, bc, rc ? rc + oh * OW : NULL, OW, lo, hi);
            }
            /* the strip's rows, still in L1 */
            if (!clamp) kern_activation_apply(act, yc + oh0 * OW, (size_t)(rows * OW));
        }
    }
}
#include "conv_rows_body.h"
