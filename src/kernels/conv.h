/* conv.h — the convolution kernels behind the Conv op: im2col for the GEMM path, the rows kernel of dense convs and
 * the direct depthwise kernel.
 * Each is written once (conv_body.h) and compiled per ISA (portable, AVX2, AVX-512); the entry points here pick one
 * by CPU features. Kernels layer: includes only kernels.h. */
#ifndef LENS_KERNELS_CONV_H
#define LENS_KERNELS_CONV_H

#include "kernels.h"

/* Spatial geometry of one convolution, right-aligned into (D, H, W): a 2-D conv has D == 1 (kernel, stride,
 * dilation 1, pad 0 there), a 1-D conv also H == 1. pad is the leading padding; the trailing padding is implied by
 * out. All values are positive (pad >= 0) and small enough that products of two of them fit in int64. */
typedef struct kern_conv_shape {
    int64_t in[3], out[3], kernel[3], stride[3], dilation[3], pad[3];
} kern_conv_shape;

/* Writes rows [row0, row1) and columns [col0, col0 + ncols) of the im2col matrix of x (channels planes of
 * in[0]*in[1]*in[2] floats) into dst[(row - row0) * ncols + (col - col0)]. Row r is (channel, kd, kh, kw) in C order,
 * column c is the output position (od, oh, ow) in C order. Taps outside the input read zero. */
void kern_im2col(const kern_conv_shape *s, const float *x, int64_t col0, int64_t ncols, int64_t row0, int64_t row1,
                 float *dst);

/* Rows: a 2-D convolution (group 1, stride_w 1, 2 or 4) computed output row by output row, without an im2col matrix. A
 * tile is up to 14 pixels of an output row (6 on AVX2, 3 with 16-byte vectors) by 32 output channels (16): each step
 * (input channel, kh, kw) loads the channels' weights as vectors and multiplies them by the broadcast input values the
 * pixels read, which lie stride_w floats apart in one input row. Output rows go in blocks (kern_conv_rows_block);
 * a block whose taps all fall inside the input reads it in place (a 1x1 stride-2 downsample), the others a
 * zero-padded copy of the input rows the block reads. Weights come in blocks of KERN_CONV_ROWS_OB output channels. */
#define KERN_CONV_ROWS_OB 16
typedef struct kern_conv_rows_params {
    kern_conv_shape shape; /* 2-D: in[0] == out[0] == 1 */
    int64_t cin, cout;
    const float *x;        /* [cin, in_h, in_w] */
    const float *w;        /* per block of KERN_CONV_ROWS_OB output channels, per step (c, kh, kw) in C order, the
                            * block's weights (zero past cout) */
    const float *bias;     /* [cout] or NULL */
    const float *residual; /* y's shape or NULL: added before the activation */
    kern_activation act;
    float *y;     /* [cout, out_h, out_w] */
    int prefetch; /* fetch each channel group's weights into L2 while the group before runs: weights from memory */
} kern_conv_rows_params;

/* The input columns one output row reads, counted from the first padding column. */
static inline int64_t kern_conv_rows_span(const kern_conv_shape *s) {
    return (s->out[2] - 1) * s->stride[2] + (s->kernel[2] - 1) * s->dilation[2] + 1;
}
/* Floats of scratch the step offsets take (two tables of cin * kernel area int64), a multiple of 16. */
static inline int64_t kern_conv_rows_tap_floats(const kern_conv_shape *s, int64_t cin) {
    return (cin * s->kernel[1] * s->kernel[2] * 4 + 15) / 16 * 16;
}
/* Output rows per block: as many as keep the block's input (cin x the rows they read x span floats) within 512 KiB,
 * so that it stays in L2 while every channel group reads it (half of Zen 4's; 256 KiB measured the same). */
static inline int64_t kern_conv_rows_block(const kern_conv_shape *s, int64_t cin) {
    const int64_t row = cin * kern_conv_rows_span(s), most = 131072 / (row > 0 ? row : 1);
    const int64_t reach = (s->kernel[1] - 1) * s->dilation[1] + 1; /* the rows the first output row reads */
    int64_t r = most > reach ? (most - reach) / s->stride[1] + 1 : 1;
    return r < s->out[1] ? r : s->out[1];
}
/* Floats of scratch a kern_conv_rows call needs (64-byte aligned): the offsets, then a block's padded input; -1 when
 * that does not fit in int64 (the caller then takes another path). Sizes as kern_conv_shape promises. */
static inline int64_t kern_conv_rows_scratch(const kern_conv_shape *s, int64_t cin) {
    const int64_t rows_in = (kern_conv_rows_block(s, cin) - 1) * s->stride[1] + (s->kernel[1] - 1) * s->dilation[1] + 1;
    int64_t copy;
    if (__builtin_mul_overflow(cin * kern_conv_rows_span(s), rows_in, &copy) || copy > INT64_MAX / 8) return -1;
    return kern_conv_rows_tap_floats(s, cin) + copy + 16;
}

/* Output rows [oh0, oh1), channel blocks [cb0, cb1) (of KERN_CONV_ROWS_OB; cb1 may be the last, partial one). */
void kern_conv_rows(const kern_conv_rows_params *p, int64_t oh0, int64_t oh1, int64_t cb0, int64_t cb1, void *scratch);

/* A row of a pooling window (ops/pool.c): y[i] = the max (is_max) or the sum of x[i * stride + t * step] over
 * t < taps, for i < n; x is read up to x[(n - 1) * stride + (taps - 1) * step] and not past it. Max starts from
 * -FLT_MAX and skips NaN (v > m ? v : m); sums add the taps in order from 0. Strides 1 and 2 run as vectors, others
 * one by one. */
void kern_pool_row(int is_max, float *y, const float *x, size_t n, size_t stride, size_t taps, size_t step);

/* channels depthwise channels of a 2-D conv (s->in[0] == s->out[0] == 1), planes stored one after another: for each
 * channel c, y[c, out_h, out_w] = act(conv(x[c, in_h, in_w], w[c, kernel_h, kernel_w]) + bias[c] + residual[c]).
 * bias, residual (y's shape) and act may be NULL. scratch holds kern_dwconv2d_scratch(s) floats, 64-byte aligned,
 * whatever the channel count (more channels per call amortise the per-call set-up). Fast for any kernel up to 11x11
 * and dilation when stride_h == stride_w <= 4; correct for everything. */
void kern_dwconv2d(const kern_conv_shape *s, int64_t channels, const float *x, const float *w, const float *bias,
                   const float *residual, const kern_activation *act, float *y, float *scratch);
/* Floats of scratch kern_dwconv2d needs for s (the same for every build). */
size_t kern_dwconv2d_scratch(const kern_conv_shape *s);
/* Channels per call the kernel prefers a multiple of for s: 16 where it runs blocks of channels (small planes,
 * 7x7 kernels), else 1. */
int64_t kern_dwconv2d_channel_block(const kern_conv_shape *s);

/* Test hook: makes later calls use one build (generic, or the x86 AVX2 / AVX-512 ones). Returns false, changing
 * nothing, when this CPU or build cannot run it. Not thread-safe: call while no convolution runs. */
typedef enum kern_conv_isa {
    KERN_CONV_ISA_AUTO = 0,
    KERN_CONV_ISA_GENERIC,
    KERN_CONV_ISA_AVX2,
    KERN_CONV_ISA_AVX512
} kern_conv_isa;
bool kern_conv_force_isa(kern_conv_isa isa);

#endif
