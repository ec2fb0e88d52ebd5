/* resize.c — Pillow-exact resampling of RGB8 images (Image.resize with no box and no reducing_gap).
 *
 * BILINEAR and BICUBIC are Pillow's separable convolution: for each output column (then row) a window of input
 * pixels is weighted by the filter evaluated at ((i - center + 0.5) / filterscale), where filterscale is the
 * downscale factor (at least 1, so downscaling antialiases); the weights are normalised in double, rounded to 22-bit
 * fixed point, and every pass rounds and clamps back to uint8. The horizontal pass runs first, over only the input
 * rows the vertical pass reads. NEAREST is Pillow's affine scale: the source index is the truncated running sum
 * step / 2 + step + step + ..., accumulated in double one step at a time. Any deviation in these steps (order of operations included) changes pixels, so they are kept as Pillow
 * does them. Touches only the images it is given. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

/* The coefficient arithmetic must not be contracted into fused multiply-adds, or pixels drift from Pillow's on
 * targets that have FMA. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define PRECISION_BITS (32 - 8 - 2)

typedef struct resample_filter {
    double (*weight)(double x);
    double support;
} resample_filter;

static double bilinear_weight(double x) {
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

static double bicubic_weight(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* For output positions [start, start + n) of out_size: the first input index, the number of taps, and ksize
 * fixed-point weights each. */
typedef struct coefficients {
    int ksize;
    int *first, *count;
    int32_t *weights; /* [n][ksize] */
} coefficients;

static void coefficients_free(coefficients *c) {
    free(c->first);
    free(c->count);
    free(c->weights);
}

static lens_status coefficients_make(int in_size, int out_size, int start, int n, const resample_filter *filter,
                                     coefficients *c) {
    memset(c, 0, sizeof *c);
    /* Pillow passes the box as floats, so in1 - in0 is a float before it becomes a double. */
    const float in0 = 0.0f, in1 = (float)in_size;
    double scale = (double)(in1 - in0) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = filter->support * filterscale;
    double ceil_support = ceil(support);
    if (ceil_support > (INT_MAX - 1) / 2) return core_fail(LENS_ERR_LIMIT, "resize: filter support too large");
    int ksize = (int)ceil_support * 2 + 1;
    size_t total;
    if (!core_mul_size((size_t)n, (size_t)ksize, &total) || total > SIZE_MAX / sizeof *c->weights)
        return core_fail(LENS_ERR_LIMIT, "resize: coefficient table too large");
    double *k = malloc(sizeof *k * (size_t)ksize);
    c->first = malloc(sizeof *c->first * (size_t)n);
    c->count = malloc(sizeof *c->count * (size_t)n);
    c->weights = malloc(sizeof *c->weights * total);
    if (!k || !c->first || !c->count || !c->weights) {
        free(k);
        coefficients_free(c);
        return core_fail(LENS_ERR_OUT_OF_MEMORY, "resize: out of memory");
    }
    c->ksize = ksize;
    for (int i = 0; i < n; i++) {
        int xx = start + i;
        double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0;
        double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5); /* truncation toward zero, as Pillow */
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax > ksize) xmax = ksize; /* cannot happen; keeps the table write in bounds regardless */
        if (xmax < 0) xmax = 0;
        for (int x = 0; x < xmax; x++) {
            double w = filter->weight((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        int32_t *out = c->weights + (size_t)i * ksize;
        for (int x = 0; x < ksize; x++) {
            double v = x < xmax ? k[x] : 0.0;
            out[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        c->first[i] = xmin;
        c->count[i] = xmax;
    }
    free(k);
    return LENS_OK;
}

/* Pillow's clip8: the accumulator (with its 0.5 rounding bias) shifted down, clamped to 0..255.
 *
 * Accumulators are int32, as in Pillow, and cannot overflow: the weights of one output pixel sum to 1 (2^22), and
 * their absolute values to less than 2 (2^23): bilinear weights are never negative, and bicubic's negative lobes
 * are small next to the taps near the centre (the largest sum found over all sizes up to 160 -> 400 is 1.27), so
 * |sum| < 255 * 2^23 + 2^21 < 2^31. */
static inline uint8_t clip8(int32_t acc) {
    if (acc < 0) return 0;
    acc >>= PRECISION_BITS;
    return acc > 255 ? 255 : (uint8_t)acc;
}

/* out (c's n columns x rows) from input rows [row0, row0 + rows). */
static void resample_horizontal(const img_image *in, int row0, int rows, const coefficients *c, uint8_t *out,
                                int out_w) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *src = in->rgb + (size_t)(row0 + y) * in->width * 3;
        uint8_t *dst = out + (size_t)y * out_w * 3;
        for (int xx = 0; xx < out_w; xx++) {
            const int32_t *k = c->weights + (size_t)xx * c->ksize;
            const uint8_t *p = src + (size_t)c->first[xx] * 3;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < c->count[xx]; x++) {
                s0 += p[3 * x] * k[x];
                s1 += p[3 * x + 1] * k[x];
                s2 += p[3 * x + 2] * k[x];
            }
            dst[3 * xx] = clip8(s0);
            dst[3 * xx + 1] = clip8(s1);
            dst[3 * xx + 2] = clip8(s2);
        }
    }
}

/* out (w x out_h) from columns [col0, col0 + w) of in, whose row 0 is input row row0. Accumulates whole rows at a
 * time (contiguous, so the compiler vectorises it); acc holds w * 3 sums. */
static void resample_vertical(const img_image *in, int row0, int col0, const coefficients *c, uint8_t *out, int w,
                              int out_h, int32_t *acc) {
    const size_t in_row = (size_t)in->width * 3, out_row = (size_t)w * 3;
    for (int yy = 0; yy < out_h; yy++) {
        const int32_t *k = c->weights + (size_t)yy * c->ksize;
        const uint8_t *src = in->rgb + (size_t)(c->first[yy] - row0) * in_row + (size_t)col0 * 3;
        for (size_t i = 0; i < out_row; i++) acc[i] = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < c->count[yy]; y++) {
            const uint8_t *row = src + (size_t)y * in_row;
            const int32_t ky = k[y];
            for (size_t i = 0; i < out_row; i++) acc[i] += row[i] * ky;
        }
        uint8_t *dst = out + (size_t)yy * out_row;
        for (size_t i = 0; i < out_row; i++) dst[i] = clip8(acc[i]);
    }
}

static lens_status resample(const img_image *in, int out_w, int out_h, int x0, int y0, int win_w, int win_h,
                            const resample_filter *filter, img_image *out) {
    const int need_horizontal = out_w != in->width, need_vertical = out_h != in->height;
    coefficients vert = {0}, horiz = {0};
    img_image temp = {0};
    lens_status st = LENS_OK;
    /* Input rows the vertical pass reads (all of the window's rows when there is no vertical pass). */
    int row_first = y0, row_last = y0 + win_h;
    if (need_vertical) {
        st = coefficients_make(in->height, out_h, y0, win_h, filter, &vert);
        if (st != LENS_OK) return st;
        row_first = vert.first[0];
        row_last = vert.first[win_h - 1] + vert.count[win_h - 1];
        if (row_last <= row_first) {
            st = core_fail(LENS_ERR_INVALID_ARGUMENT, "resize: empty filter window");
            goto done;
        }
    }
    const img_image *src = in;
    int src_row0 = 0, src_col0 = x0;
    if (need_horizontal) {
        st = coefficients_make(in->width, out_w, x0, win_w, filter, &horiz);
        if (st == LENS_OK) st = img_alloc(&temp, win_w, row_last - row_first);
        if (st != LENS_OK) goto done;
        resample_horizontal(in, row_first, row_last - row_first, &horiz, temp.rgb, win_w);
        src = &temp;
        src_row0 = row_first;
        src_col0 = 0;
    }
    if (need_vertical) {
        int32_t *acc = malloc(sizeof *acc * 3 * (size_t)win_w);
        st = acc ? img_alloc(out, win_w, win_h) : core_fail(LENS_ERR_OUT_OF_MEMORY, "resize: out of memory");
        if (st == LENS_OK) resample_vertical(src, src_row0, src_col0, &vert, out->rgb, win_w, win_h, acc);
        free(acc);
        if (st != LENS_OK) goto done;
    } else {
        *out = temp; /* the horizontal pass produced exactly the window's rows */
        temp.rgb = NULL;
    }
done:
    img_free(&temp);
    coefficients_free(&vert);
    coefficients_free(&horiz);
    return st;
}

static lens_status resize_nearest(const img_image *in, int out_w, int out_h, int x0, int y0, int win_w, int win_h,
                                  img_image *out) {
    lens_status st = img_alloc(out, win_w, win_h);
    if (st != LENS_OK) return st;
    int *xin = malloc(sizeof *xin * (size_t)win_w);
    if (!xin) {
        img_free(out);
        return core_fail(LENS_ERR_OUT_OF_MEMORY, "resize: out of memory");
    }
    /* Pillow's affine matrix: (float box extent) / size per step, starting at the centre of the first output pixel,
     * accumulated step by step (not multiplied), so the rounding matches. */
    const double step_x = (double)((float)in->width - 0.0f) / out_w;
    const double step_y = (double)((float)in->height - 0.0f) / out_h;
    double xo = 0.0 + step_x * 0.5;
    for (int x = 0; x < x0 + win_w; x++) {
        if (x >= x0) {
            int v = xo < 0.0 ? -1 : (int)xo;
            xin[x - x0] = v < 0 ? 0 : v >= in->width ? in->width - 1 : v; /* in range for all sizes in practice */
        }
        xo += step_x;
    }
    double yo = 0.0 + step_y * 0.5;
    for (int y = 0; y < y0 + win_h; y++) {
        if (y >= y0) {
            int v = yo < 0.0 ? -1 : (int)yo;
            int sy = v < 0 ? 0 : v >= in->height ? in->height - 1 : v;
            const uint8_t *src = in->rgb + (size_t)sy * in->width * 3;
            uint8_t *dst = out->rgb + (size_t)(y - y0) * win_w * 3;
            for (int x = 0; x < win_w; x++) memcpy(dst + 3 * (size_t)x, src + 3 * (size_t)xin[x], 3);
        }
        yo += step_y;
    }
    free(xin);
    return LENS_OK;
}

lens_status img_resize_window(const img_image *in, int out_w, int out_h, int x0, int y0, int win_w, int win_h,
                              lens_interpolation interp, img_image *out) {
    static const resample_filter bilinear = {bilinear_weight, 1.0}, bicubic = {bicubic_weight, 2.0};
    if (!out) return core_fail(LENS_ERR_INVALID_ARGUMENT, "resize: no output image");
    out->width = out->height = 0;
    out->rgb = NULL;
    if (!in || !in->rgb || in->width <= 0 || in->height <= 0)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "resize: empty input image");
    if (out_w <= 0 || out_h <= 0)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "resize: invalid output size %dx%d", out_w, out_h);
    if (x0 < 0 || y0 < 0 || win_w <= 0 || win_h <= 0 || win_w > out_w - x0 || win_h > out_h - y0)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "resize: window %dx%d at (%d,%d) is outside %dx%d", win_w, win_h, x0,
                         y0, out_w, out_h);
    if (interp != LENS_INTERP_NEAREST && interp != LENS_INTERP_BILINEAR && interp != LENS_INTERP_BICUBIC)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "resize: unknown interpolation %d", (int)interp);
    if (out_w == in->width && out_h == in->height) {
        lens_status st = img_alloc(out, win_w, win_h);
        if (st != LENS_OK) return st;
        for (int y = 0; y < win_h; y++)
            memcpy(out->rgb + (size_t)y * win_w * 3, in->rgb + ((size_t)(y0 + y) * in->width + x0) * 3,
                   (size_t)win_w * 3);
        return LENS_OK;
    }
    if (interp == LENS_INTERP_NEAREST) return resize_nearest(in, out_w, out_h, x0, y0, win_w, win_h, out);
    return resample(in, out_w, out_h, x0, y0, win_w, win_h, interp == LENS_INTERP_BICUBIC ? &bicubic : &bilinear,
                    out);
}

lens_status img_resize(const img_image *in, int out_w, int out_h, lens_interpolation interp, img_image *out) {
    return img_resize_window(in, out_w, out_h, 0, 0, out_w, out_h, interp, out);
}
