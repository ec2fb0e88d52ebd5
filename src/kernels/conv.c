/* conv.c — the portable build of the convolution kernels (conv_body.h with 16-byte vectors: SSE2 or NEON) and the
 * entry points of conv.h, which run the AVX-512 or AVX2 build instead when the CPU has it. */
#define CONV_VBYTES 16
#define CONV_SUFFIX generic
#include "conv_body.h"

#if defined(LENS_X86)
void kern_im2col_avx512(const kern_conv_shape *s, const float *x, int64_t col0, int64_t ncols, int64_t row0,
                        int64_t row1, float *dst);
void kern_dwconv2d_avx512(const kern_conv_shape *s, int64_t channels, const float *x, const float *w,
                          const float *bias, const float *residual, const kern_activation *act, float *y,
                          float *scratch);
void kern_pool_row_avx512(int is_max, float *y, const float *x, size_t n, size_t stride, size_t taps,
                          size_t step);
void kern_pool_row_avx2(int is_max, float *y, const float *x, size_t n, size_t stride, size_t taps, size_t step);
void kern_conv_rows_avx512(const kern_conv_rows_params *p, int64_t oh0, int64_t oh1, int64_t cb0, int64_t cb1,
                           void *scratch);
void kern_conv_rows_avx2(const kern_conv_rows_params *p, int64_t oh0, int64_t oh1, int64_t cb0, int64_t cb1,
                         void *scratch);
void kern_im2col_avx2(const kern_conv_shape *s, const float *x, int64_t col0, int64_t ncols, int64_t row0,
                      int64_t row1, float *dst);
void kern_dwconv2d_avx2(const kern_conv_shape *s, int64_t channels, const float *x, const float *w,
                        const float *bias, const float *residual, const kern_activation *act, float *y,
                        float *scratch);
#endif

static kern_conv_isa forced_isa;

static kern_conv_isa active_isa(void) {
    if (forced_isa) return forced_isa;
#if defined(LENS_X86)
    const core_cpu *cpu = core_cpu_features();
    if (cpu->avx512f) return KERN_CONV_ISA_AVX512;
    if (cpu->avx2 && cpu->fma) return KERN_CONV_ISA_AVX2;
#endif
    return KERN_CONV_ISA_GENERIC;
}

bool kern_conv_force_isa(kern_conv_isa isa) {
    if (isa == KERN_CONV_ISA_AVX512 || isa == KERN_CONV_ISA_AVX2) {
#if defined(LENS_X86)
        const core_cpu *cpu = core_cpu_features();
        if (isa == KERN_CONV_ISA_AVX512 ? !cpu->avx512f : !(cpu->avx2 && cpu->fma)) return false;
#else
        return false;
#endif
    }
    forced_isa = isa;
    return true;
}

void kern_im2col(const kern_conv_shape *s, const float *x, int64_t col0, int64_t ncols, int64_t row0, int64_t row1,
                 float *dst) {
    switch (active_isa()) {
#if defined(LENS_X86)
    case KERN_CONV_ISA_AVX512: kern_im2col_avx512(s, x, col0, ncols, row0, row1, dst); return;
    case KERN_CONV_ISA_AVX2: kern_im2col_avx2(s, x, col0, ncols, row0, row1, dst); return;
#endif
    default: kern_im2col_generic(s, x, col0, ncols, row0, row1, dst); return;
    }
}

void kern_conv_rows(const kern_conv_rows_params *p, int64_t oh0, int64_t oh1, int64_t cb0, int64_t cb1,
                    void *scratch) {
    switch (active_isa()) {
#if defined(LENS_X86)
    case KERN_CONV_ISA_AVX512: kern_conv_rows_avx512(p, oh0, oh1, cb0, cb1, scratch); return;
    case KERN_CONV_ISA_AVX2: kern_conv_rows_avx2(p, oh0, oh1, cb0, cb1, scratch); return;
#endif
    default: kern_conv_rows_generic(p, oh0, oh1, cb0, cb1, scratch); return;
    }
}

void kern_pool_row(int is_max, float *y, const float *x, size_t n, size_t stride, size_t taps, size_t step) {
    switch (active_isa()) {
#if defined(LENS_X86)
    case KERN_CONV_ISA_AVX512: kern_pool_row_avx512(is_max, y, x, n, stride, taps, step); return;
    case KERN_CONV_ISA_AVX2: kern_pool_row_avx2(is_max, y, x, n, stride, taps, step); return;
#endif
    default: kern_pool_row_generic(is_max, y, x, n, stride, taps, step); return;
    }
}

size_t kern_dwconv2d_scratch(const kern_conv_shape *s) {
    conv_dw_flat f;
    size_t n = conv_dw_flat_layout(s, &f) ? (size_t)(f.S * f.S * f.plane_floats + f.n_out) : 0;
    if (conv_dwcl_wanted(s) && (size_t)conv_dwcl_scratch(s) > n) n = (size_t)conv_dwcl_scratch(s);
    return n;
}

int64_t kern_dwconv2d_channel_block(const kern_conv_shape *s) { return conv_dwcl_wanted(s) ? 16 : 1; }

void kern_dwconv2d(const kern_conv_shape *s, int64_t channels, const float *x, const float *w, const float *bias,
                   const float *residual, const kern_activation *act, float *y, float *scratch) {
    switch (active_isa()) {
#if defined(LENS_X86)
    case KERN_CONV_ISA_AVX512: kern_dwconv2d_avx512(s, channels, x, w, bias, residual, act, y, scratch); return;
    case KERN_CONV_ISA_AVX2: kern_dwconv2d_avx2(s, channels, x, w, bias, residual, act, y, scratch); return;
#endif
    default: kern_dwconv2d_generic(s, channels, x, w, bias, residual, act, y, scratch); return;
    }
}
