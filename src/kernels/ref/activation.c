/* activation.c — the scalar reference of the elementwise activations (kern_activation_apply_ref): libm's expf,
 * tanhf and erff, one element at a time. The oracle the vector kernels (act_body.h) are tested against. */
#include <math.h>

#include "../kernels.h"

/* Plain comparisons: fminf/fmaxf stay libm calls at -O2 and block vectorisation. */
static inline float clamp01(float t) {
    t = t < 0.0f ? 0.0f : t;
    return t > 1.0f ? 1.0f : t;
}

void kern_activation_apply_ref(const kern_activation *a, float *x, size_t n) {
    switch (a->kind) {
    case KERN_ACT_NONE: return;
    case KERN_ACT_RELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        return;
    case KERN_ACT_CLIP:
        for (size_t i = 0; i < n; i++) x[i] = x[i] < a->alpha ? a->alpha : x[i] > a->beta ? a->beta : x[i];
        return;
    case KERN_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] < 0 ? a->alpha * x[i] : x[i];
        return;
    case KERN_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
        return;
    case KERN_ACT_HARD_SIGMOID:
        for (size_t i = 0; i < n; i++) x[i] = clamp01(a->alpha * x[i] + a->beta);
        return;
    case KERN_ACT_HARD_SWISH:
        for (size_t i = 0; i < n; i++) x[i] = x[i] * clamp01(x[i] / 6.0f + 0.5f);
        return;
    case KERN_ACT_TANH:
        for (size_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
        return;
    case KERN_ACT_GELU:
        for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        return;
    case KERN_ACT_SILU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
        return;
    case KERN_ACT_ERF:
        for (size_t i = 0; i < n; i++) x[i] = erff(x[i]);
        return;
    case KERN_ACT_EXP:
        for (size_t i = 0; i < n; i++) x[i] = expf(x[i]);
        return;
    case KERN_ACT_GELU_TANH:
        for (size_t i = 0; i < n; i++)
            x[i] = 0.5f * x[i] * (1.0f + tanhf(0.7978845608028654f * (x[i] + 0.044715f * x[i] * x[i] * x[i])));
        return;
    case KERN_ACT_QUICK_GELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-a->alpha * x[i]));
        return;
    }
}
