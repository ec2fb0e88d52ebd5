/* conv_ref.c — the scalar reference 2-D convolution (direct loops, double accumulation). The oracle for the fast
 * Conv op; never used on a hot path. */
#include "../conv_ref.h"

void kern_conv2d_ref(const kern_conv2d_params *p, const float *x, const float *w, const float *bias,
                     const float *residual, const kern_activation *act, float *y) {
    int64_t cin_g = p->in_channels / p->group, cout_g = p->out_channels / p->group;
    for (int64_t n = 0; n < p->batch; n++)
        for (int64_t m = 0; m < p->out_channels; m++) {
            int64_t g = m / cout_g;
            float *yplane = y + (n * p->out_channels + m) * p->out_h * p->out_w;
            for (int64_t oh = 0; oh < p->out_h; oh++)
                for (int64_t ow = 0; ow < p->out_w; ow++) {
                    double sum = bias ? bias[m] : 0.0;
                    for (int64_t c = 0; c < cin_g; c++) {
                        const float *xplane = x + (n * p->in_channels + g * cin_g + c) * p->in_h * p->in_w;
                        const float *wk = w + (m * cin_g + c) * p->kernel_h * p->kernel_w;
                        for (int64_t i = 0; i < p->kernel_h; i++) {
                            int64_t ih = oh * p->stride_h - p->pad_top + i * p->dilation_h;
                            if (ih < 0 || ih >= p->in_h) continue;
                            for (int64_t j = 0; j < p->kernel_w; j++) {
                                int64_t iw = ow * p->stride_w - p->pad_left + j * p->dilation_w;
                                if (iw < 0 || iw >= p->in_w) continue;
                                sum += (double)wk[i * p->kernel_w + j] * xplane[ih * p->in_w + iw];
                            }
                        }
                    }
                    int64_t o = oh * p->out_w + ow;
                    if (residual) sum += residual[(n * p->out_channels + m) * p->out_h * p->out_w + o];
                    yplane[o] = (float)sum;
                }
            if (act) kern_activation_apply_ref(act, yplane, (size_t)(p->out_h * p->out_w));
        }
}
