/* act.c — the portable build of the activation kernels (act_body.h with 16-byte vectors: SSE2 or NEON) and the
 * entry points of kernels.h, which run the AVX-512 or AVX2 build instead when the CPU has it. */
#define ACT_VBYTES 16
#define ACT_SUFFIX generic
#include "act_body.h"

#if defined(LENS_X86)
void kern_activation_map_avx512(const kern_activation *a, const float *x, float *y, size_t n);
void kern_activation_apply_rows_avx512(const kern_activation *a, float *x, size_t ld, size_t rows, size_t n);
void kern_softmax_row_avx512(const float *x, float *y, size_t n, int log_form);
float kern_softmax_exp_row_avx512(const float *x, float *y, size_t n);
void kern_layernorm_row_avx512(const float *x, float *y, size_t n, const float *scale, const float *bias,
                               float epsilon, float *mean_out, float *inv_out);
void kern_activation_map_avx2(const kern_activation *a, const float *x, float *y, size_t n);
void kern_activation_apply_rows_avx2(const kern_activation *a, float *x, size_t ld, size_t rows, size_t n);
void kern_softmax_row_avx2(const float *x, float *y, size_t n, int log_form);
float kern_softmax_exp_row_avx2(const float *x, float *y, size_t n);
void kern_layernorm_row_avx2(const float *x, float *y, size_t n, const float *scale, const float *bias, float epsilon,
                             float *mean_out, float *inv_out);
#endif

static kern_act_isa forced_isa;

static kern_act_isa active_isa(void) {
    if (forced_isa) return forced_isa;
#if defined(LENS_X86)
    const core_cpu *cpu = core_cpu_features();
    if (cpu->avx512f) return KERN_ACT_ISA_AVX512;
    if (cpu->avx2 && cpu->fma) return KERN_ACT_ISA_AVX2;
#endif
    return KERN_ACT_ISA_GENERIC;
}

bool kern_activation_force_isa(kern_act_isa isa) {
    if (isa == KERN_ACT_ISA_AVX512 || isa == KERN_ACT_ISA_AVX2) {
#if defined(LENS_X86)
        const core_cpu *cpu = core_cpu_features();
        if (isa == KERN_ACT_ISA_AVX512 ? !cpu->avx512f : !(cpu->avx2 && cpu->fma)) return false;
#else
        return false;
#endif
    }
    forced_isa = isa;
    return true;
}

void kern_activation_map(const kern_activation *a, const float *x, float *y, size_t n) {
    switch (active_isa()) {
#if defined(LENS_X86)
    case KERN_ACT_ISA_AVX512: kern_activation_map_avx512(a, x, y, n); return;
    case KERN_ACT_ISA_AVX2: kern_activation_map_avx2(a, x, y, n); return;
#endif
    default: kern_activation_map_generic(a, x, y, n); return;
    }
}

void kern_activation_apply(const kern_activation *a, float *x, size_t n) {
    if (a->kind != KERN_ACT_NONE) kern_activation_map(a, x, x, n);
}

void kern_activation_apply_rows(const kern_activation *a, float *x, size_t ld, size_t rows, size_t n) {
    if (a->kind == KERN_ACT_NONE) return;
    switch (active_isa()) {
#if defined(LENS_X86)
    case KERN_ACT_ISA_AVX512: kern_activation_apply_rows_avx512(a, x, ld, rows, n); return;
    case KERN_ACT_ISA_AVX2: kern_activation_apply_rows_avx2(a, x, ld, rows, n); return;
#endif
    default: kern_activation_apply_rows_generic(a, x, ld, rows, n); return;
    }
}

void kern_softmax_row(const float *x, float *y, size_t n, int log_form) {
    if (!n) return;
    switch (active_isa()) {
#if defined(LENS_X86)
    case KERN_ACT_ISA_AVX512: kern_softmax_row_avx512(x, y, n, log_form); return;
    case KERN_ACT_ISA_AVX2: kern_softmax_row_avx2(x, y, n, log_form); return;
#endif
    default: kern_softmax_row_generic(x, y, n, log_form); return;
    }
}

float kern_softmax_exp_row(const float *x, float *y, size_t n) {
    if (!n) return 0.0f;
    switch (active_isa()) {
#if defined(LENS_X86)
    case KERN_ACT_ISA_AVX512: return kern_softmax_exp_row_avx512(x, y, n);
    case KERN_ACT_ISA_AVX2: return kern_softmax_exp_row_avx2(x, y, n);
#endif
    default: return kern_softmax_exp_row_generic(x, y, n);
    }
}

void kern_layernorm_row(const float *x, float *y, size_t n, const float *scale, const float *bias, float epsilon,
                        float *mean_out, float *inv_out) {
    if (!n) {
        *mean_out = 0.0f;
        *inv_out = 1.0f / sqrtf(epsilon);
        return;
    }
    switch (active_isa()) {
#if defined(LENS_X86)
    case KERN_ACT_ISA_AVX512: kern_layernorm_row_avx512(x, y, n, scale, bias, epsilon, mean_out, inv_out); return;
    case KERN_ACT_ISA_AVX2: kern_layernorm_row_avx2(x, y, n, scale, bias, epsilon, mean_out, inv_out); return;
#endif
    default: kern_layernorm_row_generic(x, y, n, scale, bias, epsilon, mean_out, inv_out); return;
    }
}
