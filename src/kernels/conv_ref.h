/* conv_ref.h — the scalar reference 2-D convolution: the oracle the fast Conv op is tested against. Kernels layer;
 * includes only kernels.h. */
#ifndef LENS_KERNELS_CONV_REF_H
#define LENS_KERNELS_CONV_REF_H

#include "kernels.h"

/* Geometry of an NCHW convolution with weights [out_channels, in_channels / group, kernel_h, kernel_w]. Padding at
 * the bottom and right is implied by out_h and out_w (taps that fall outside the input read zero). */
typedef struct kern_conv2d_params {
    int64_t batch, in_channels, in_h, in_w;
    int64_t out_channels, out_h, out_w;
    int64_t kernel_h, kernel_w, group;
    int64_t stride_h, stride_w, dilation_h, dilation_w;
    int64_t pad_top, pad_left;
} kern_conv2d_params;

/* y[batch, out_channels, out_h, out_w] = act(conv(x, w) + bias + residual), accumulated in double, one thread.
 * bias ([out_channels]), residual (y's shape) and act may each be NULL. Slow on purpose: a direct 7-loop nest. */
void kern_conv2d_ref(const kern_conv2d_params *p, const float *x, const float *w, const float *bias,
                     const float *residual, const kern_activation *act, float *y);

#endif
