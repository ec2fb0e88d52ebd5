/* act.c — activations (Relu, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Gelu, Erf, Elu, Selu, Celu, Softplus,
 * Softsign, ThresholdedRelu, Shrink, Clip; com.microsoft Gelu, FastGelu, BiasGelu, QuickGelu; lens Silu, which the
 * optimizer makes of Sigmoid + Mul) and Softmax, LogSoftmax, Hardmax. Float32 except Clip, which takes every numeric dtype. Large tensors are cut into chunks for
 * the pool. Touches only the tensors of the call. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "ops.h"

/* ---- Chunked driver ---------------------------------------------------------------------------------------------- */

/* Computes y[0..n) from x[0..n); start is the offset of x in the whole tensor (for per-channel parameters). x and y
 * may be the same buffer. */
typedef void (*act_chunk_fn)(const void *ctx, const float *x, float *y, int64_t start, size_t n);

typedef struct act_job {
    act_chunk_fn fn;
    const void *ctx;
    const float *x;
    float *y;
    int64_t n, chunk;
} act_job;

static void act_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const act_job *job = ctx;
    int64_t start = task * job->chunk, end = start + job->chunk < job->n ? start + job->chunk : job->n;
    job->fn(job->ctx, job->x + start, job->y + start, start, (size_t)(end - start));
}

/* Below this many elements one thread wins. */
#define ACT_PARALLEL_MIN 32768
#define ACT_CHUNK_MIN 8192

static void act_map(core_pool *pool, act_chunk_fn fn, const void *ctx, const float *x, float *y, int64_t n) {
    if (n <= 0) return;
    int threads = core_pool_size(pool);
    if (threads == 1 || n < ACT_PARALLEL_MIN) {
        fn(ctx, x, y, 0, (size_t)n);
        return;
    }
    int64_t chunk = (n + threads * 4 - 1) / (threads * 4);
    if (chunk < ACT_CHUNK_MIN) chunk = ACT_CHUNK_MIN;
    chunk = (chunk + 15) & ~(int64_t)15;
    act_job job = {fn, ctx, x, y, n, chunk};
    core_pool_run(pool, (n + chunk - 1) / chunk, act_task, &job);
}

/* ---- Kernels ----------------------------------------------------------------------------------------------------- */

typedef struct act_params {
    float alpha, beta, gamma;
    const float *bias; /* FastGelu / BiasGelu: bias[bias_len] along the last axis, or NULL */
    int64_t bias_len;
    kern_activation act; /* FastGelu / BiasGelu: applied after the bias */
} act_params;

/* The hot activations: the kernel layer's vector loops (ctx is a kern_activation). */
static void chunk_kern(const void *ctx, const float *x, float *y, int64_t start, size_t n) {
    (void)start;
    kern_activation_map(ctx, x, y, n);
}

#define ACT_CHUNK(NAME, EXPR)                                                                        \
    static void chunk_##NAME(const void *ctx, const float *x, float *y, int64_t start, size_t n) {   \
        const act_params *prm = ctx;                                                                  \
        (void)prm;                                                                                    \
        (void)start;                                                                                  \
        for (size_t i = 0; i < n; i++) {                                                              \
            float v = x[i];                                                                           \
            y[i] = (EXPR);                                                                            \
        }                                                                                             \
    }

ACT_CHUNK(elu, v < 0 ? prm->alpha * expm1f(v) : v)
ACT_CHUNK(selu, v > 0 ? prm->gamma * v : prm->gamma * (prm->alpha * expf(v) - prm->alpha))
ACT_CHUNK(celu, fmaxf(0.0f, v) + fminf(0.0f, prm->alpha * expm1f(v / prm->alpha)))
/* log(1 + e^v) without overflow for large v. */
ACT_CHUNK(softplus, v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v)))
ACT_CHUNK(softsign, v / (1.0f + fabsf(v)))
ACT_CHUNK(thresholded_relu, v > prm->alpha ? v : 0.0f)
ACT_CHUNK(shrink, v < -prm->alpha ? v + prm->beta : v > prm->alpha ? v - prm->beta : 0.0f)

/* com.microsoft FastGelu and BiasGelu add a bias along the last axis first: one run of the bias at a time, then the
 * vector activation over that run. */
static void chunk_bias_gelu(const void *ctx, const float *x, float *y, int64_t start, size_t n) {
    const act_params *prm = ctx;
    if (!prm->bias) {
        kern_activation_map(&prm->act, x, y, n);
        return;
    }
    int64_t len = prm->bias_len, j = start % len;
    for (size_t i = 0; i < n;) {
        size_t run = (size_t)(len - j) < n - i ? (size_t)(len - j) : n - i;
        for (size_t k = 0; k < run; k++) y[i + k] = x[i + k] + prm->bias[j + (int64_t)k];
        kern_activation_apply(&prm->act, y + i, run);
        i += run;
        j = 0;
    }
}

/* ---- Float activations ------------------------------------------------------------------------------------------- */

static lens_status act_check_io(const op_call *call, int min_in, int max_in) {
    if (call->n_inputs < min_in || call->n_inputs > max_in || !call->inputs[0] || call->n_outputs < 1 ||
        !call->outputs[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s expects %d to %d inputs and one output, got %d inputs",
                         call->node->op_type, min_in, max_in, call->n_inputs);
    return LENS_OK;
}

static lens_status act_infer_f32(op_call *call) {
    lens_status st = act_check_io(call, 1, 1);
    if (st) return st;
    const tensor *x = call->inputs[0];
    if (x->dtype != LENS_DTYPE_FLOAT32)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s does not support dtype %s", call->node->op_type,
                         dtype_name(x->dtype));
    ops_set_shape(call->outputs[0], x->dtype, x->rank, x->dims);
    return LENS_OK;
}

static lens_status act_run_kern(op_call *call, kern_act_kind kind, float alpha, float beta) {
    const kern_activation act = {kind, alpha, beta};
    act_map(call->pool, chunk_kern, &act, call->inputs[0]->data, call->outputs[0]->data,
            tensor_numel(call->inputs[0]));
    return LENS_OK;
}

static lens_status act_run_chunk(op_call *call, act_chunk_fn fn, const act_params *prm) {
    act_map(call->pool, fn, prm, call->inputs[0]->data, call->outputs[0]->data, tensor_numel(call->inputs[0]));
    return LENS_OK;
}

/* The hot ones run the kernel layer's vector loops; the rare ones above are plain loops over libm. */
static lens_status run_Relu(op_call *call) { return act_run_kern(call, KERN_ACT_RELU, 0, 0); }
static lens_status run_LeakyRelu(op_call *call) {
    return act_run_kern(call, KERN_ACT_LEAKY_RELU, op_attr_float(call->node, "alpha", 0.01f), 0);
}
static lens_status run_Sigmoid(op_call *call) { return act_run_kern(call, KERN_ACT_SIGMOID, 0, 0); }
static lens_status run_HardSigmoid(op_call *call) {
    return act_run_kern(call, KERN_ACT_HARD_SIGMOID, op_attr_float(call->node, "alpha", 0.2f),
                        op_attr_float(call->node, "beta", 0.5f));
}
static lens_status run_HardSwish(op_call *call) { return act_run_kern(call, KERN_ACT_HARD_SWISH, 0, 0); }
static lens_status run_Tanh(op_call *call) { return act_run_kern(call, KERN_ACT_TANH, 0, 0); }
static lens_status run_Erf(op_call *call) { return act_run_kern(call, KERN_ACT_ERF, 0, 0); }
/* lens::Silu: what the optimizer makes of Sigmoid followed by Mul(x, sigmoid(x)). */
static lens_status run_Silu(op_call *call) { return act_run_kern(call, KERN_ACT_SILU, 0, 0); }
static lens_status run_Elu(op_call *call) {
    act_params prm = {.alpha = op_attr_float(call->node, "alpha", 1.0f)};
    return act_run_chunk(call, chunk_elu, &prm);
}
static lens_status run_Selu(op_call *call) {
    act_params prm = {.alpha = op_attr_float(call->node, "alpha", 1.67326319217681884765625f),
                      .gamma = op_attr_float(call->node, "gamma", 1.05070102214813232421875f)};
    return act_run_chunk(call, chunk_selu, &prm);
}
static lens_status run_Celu(op_call *call) {
    act_params prm = {.alpha = op_attr_float(call->node, "alpha", 1.0f)};
    return act_run_chunk(call, chunk_celu, &prm);
}
static lens_status run_Softplus(op_call *call) { return act_run_chunk(call, chunk_softplus, NULL); }
static lens_status run_Softsign(op_call *call) { return act_run_chunk(call, chunk_softsign, NULL); }
static lens_status run_ThresholdedRelu(op_call *call) {
    act_params prm = {.alpha = op_attr_float(call->node, "alpha", 1.0f)};
    return act_run_chunk(call, chunk_thresholded_relu, &prm);
}
static lens_status run_Shrink(op_call *call) {
    act_params prm = {.alpha = op_attr_float(call->node, "lambd", 0.5f),
                      .beta = op_attr_float(call->node, "bias", 0.0f)};
    return act_run_chunk(call, chunk_shrink, &prm);
}

/* Gelu (opset 20): approximate is "none" (erf) or "tanh". */
static lens_status infer_Gelu(op_call *call) {
    lens_status st = act_infer_f32(call);
    if (st) return st;
    const char *approx = op_attr_string(call->node, "approximate", "none");
    if (strcmp(approx, "none") && strcmp(approx, "tanh"))
        return core_fail(LENS_ERR_UNSUPPORTED, "Gelu: approximate \"%s\" is not supported", approx);
    return LENS_OK;
}
static lens_status run_Gelu(op_call *call) {
    int tanh_form = !strcmp(op_attr_string(call->node, "approximate", "none"), "tanh");
    return act_run_kern(call, tanh_form ? KERN_ACT_GELU_TANH : KERN_ACT_GELU, 0, 0);
}

static lens_status run_QuickGelu(op_call *call) {
    return act_run_kern(call, KERN_ACT_QUICK_GELU, op_attr_float(call->node, "alpha", 1.702f), 0);
}

/* com.microsoft FastGelu (X, optional bias) and BiasGelu (A, B): the bias runs along the last axis. */
static lens_status infer_bias_gelu(op_call *call) {
    int bias_required = !strcmp(call->node->op_type, "BiasGelu");
    lens_status st = act_check_io(call, 1 + bias_required, 2);
    if (st) return st;
    const tensor *x = call->inputs[0], *b = call->n_inputs > 1 ? call->inputs[1] : NULL;
    if (x->dtype != LENS_DTYPE_FLOAT32 || (b && b->dtype != LENS_DTYPE_FLOAT32))
        return core_fail(LENS_ERR_UNSUPPORTED, "%s supports float32 only", call->node->op_type);
    if (b && (x->rank < 1 || b->rank != 1 || b->dims[0] != x->dims[x->rank - 1])) {
        char sx[128], sb[128];
        return core_fail(LENS_ERR_SHAPE, "%s: bias %s does not match the last axis of %s", call->node->op_type,
                         tensor_shape_string(b, sb, sizeof sb), tensor_shape_string(x, sx, sizeof sx));
    }
    ops_set_shape(call->outputs[0], x->dtype, x->rank, x->dims);
    return LENS_OK;
}
static lens_status run_bias_gelu(op_call *call) {
    const tensor *b = call->n_inputs > 1 ? call->inputs[1] : NULL;
    act_params prm = {.act = {strcmp(call->node->op_type, "FastGelu") ? KERN_ACT_GELU : KERN_ACT_GELU_TANH, 0, 0}};
    if (b && b->dims[0] > 0) {
        prm.bias = b->data;
        prm.bias_len = b->dims[0];
    }
    return act_run_chunk(call, chunk_bias_gelu, &prm);
}

/* ---- Clip -------------------------------------------------------------------------------------------------------- */

#define LD_ID(v) (v)
#define ST_ID(v) (v)

/* lo and hi point at one element of the input's type, or are NULL for "no bound". */
#define ACT_CLIP_KERNEL(NAME, ST, CT, LD, STO, LOWEST, HIGHEST)                                      \
    static void clip_##NAME(const void *in, void *out, size_t n, const void *lo_p, const void *hi_p) { \
        const ST *x = in;                                                                             \
        ST *y = out;                                                                                  \
        CT lo = lo_p ? LD(*(const ST *)lo_p) : (LOWEST), hi = hi_p ? LD(*(const ST *)hi_p) : (HIGHEST); \
        for (size_t i = 0; i < n; i++) {                                                              \
            CT v = LD(x[i]);                                                                          \
            v = v < lo ? lo : v;                                                                      \
            y[i] = STO(v > hi ? hi : v);                                                              \
        }                                                                                             \
    }

ACT_CLIP_KERNEL(F64, double, double, LD_ID, ST_ID, -INFINITY, INFINITY)
ACT_CLIP_KERNEL(F16, uint16_t, float, core_f16_to_f32, core_f32_to_f16, -INFINITY, INFINITY)
ACT_CLIP_KERNEL(BF16, uint16_t, float, core_bf16_to_f32, core_f32_to_bf16, -INFINITY, INFINITY)
ACT_CLIP_KERNEL(I8, int8_t, int8_t, LD_ID, ST_ID, INT8_MIN, INT8_MAX)
ACT_CLIP_KERNEL(I16, int16_t, int16_t, LD_ID, ST_ID, INT16_MIN, INT16_MAX)
ACT_CLIP_KERNEL(I32, int32_t, int32_t, LD_ID, ST_ID, INT32_MIN, INT32_MAX)
ACT_CLIP_KERNEL(I64, int64_t, int64_t, LD_ID, ST_ID, INT64_MIN, INT64_MAX)
ACT_CLIP_KERNEL(U8, uint8_t, uint8_t, LD_ID, ST_ID, 0, UINT8_MAX)
ACT_CLIP_KERNEL(U16, uint16_t, uint16_t, LD_ID, ST_ID, 0, UINT16_MAX)
ACT_CLIP_KERNEL(U32, uint32_t, uint32_t, LD_ID, ST_ID, 0, UINT32_MAX)
ACT_CLIP_KERNEL(U64, uint64_t, uint64_t, LD_ID, ST_ID, 0, UINT64_MAX)

typedef void (*act_clip_fn)(const void *in, void *out, size_t n, const void *lo, const void *hi);

static act_clip_fn act_clip_kernel(lens_dtype dtype) {
    switch (dtype) {
    case LENS_DTYPE_FLOAT64: return clip_F64;
    case LENS_DTYPE_FLOAT16: return clip_F16;
    case LENS_DTYPE_BFLOAT16: return clip_BF16;
    case LENS_DTYPE_INT8: return clip_I8;
    case LENS_DTYPE_INT16: return clip_I16;
    case LENS_DTYPE_INT32: return clip_I32;
    case LENS_DTYPE_INT64: return clip_I64;
    case LENS_DTYPE_UINT8: return clip_U8;
    case LENS_DTYPE_UINT16: return clip_U16;
    case LENS_DTYPE_UINT32: return clip_U32;
    case LENS_DTYPE_UINT64: return clip_U64;
    default: return NULL;
    }
}

/* The optional min (k = 1) or max (k = 2) input of opset >= 11, or NULL. */
static const tensor *act_clip_bound(const op_call *call, int k) {
    return call->node->opset >= 11 && call->n_inputs > k ? call->inputs[k] : NULL;
}

static lens_status infer_Clip(op_call *call) {
    lens_status st = act_check_io(call, 1, 3);
    if (st) return st;
    const tensor *x = call->inputs[0];
    if (x->dtype != LENS_DTYPE_FLOAT32 && !act_clip_kernel(x->dtype))
        return core_fail(LENS_ERR_UNSUPPORTED, "Clip does not support dtype %s", dtype_name(x->dtype));
    if (call->node->opset < 11 && x->dtype != LENS_DTYPE_FLOAT32)
        return core_fail(LENS_ERR_UNSUPPORTED, "Clip (opset %d) supports float32 only", call->node->opset);
    for (int k = 1; k <= 2; k++) {
        const tensor *b = act_clip_bound(call, k);
        if (!b) continue;
        if (b->dtype != x->dtype)
            return core_fail(LENS_ERR_UNSUPPORTED, "Clip: %s has dtype %s, input has %s", k == 1 ? "min" : "max",
                             dtype_name(b->dtype), dtype_name(x->dtype));
        if (b->rank > 1 || tensor_numel(b) != 1) {
            char s[128];
            return core_fail(LENS_ERR_SHAPE, "Clip: %s must be a scalar, got shape %s", k == 1 ? "min" : "max",
                             tensor_shape_string(b, s, sizeof s));
        }
    }
    ops_set_shape(call->outputs[0], x->dtype, x->rank, x->dims);
    return LENS_OK;
}

static lens_status run_Clip(op_call *call) {
    const tensor *x = call->inputs[0], *lo = act_clip_bound(call, 1), *hi = act_clip_bound(call, 2);
    if (x->dtype == LENS_DTYPE_FLOAT32) {
        act_params prm = {0};
        if (call->node->opset < 11) {
            prm.alpha = op_attr_float(call->node, "min", -FLT_MAX);
            prm.beta = op_attr_float(call->node, "max", FLT_MAX);
        } else {
            prm.alpha = lo ? *(const float *)lo->data : -INFINITY;
            prm.beta = hi ? *(const float *)hi->data : INFINITY;
        }
        return act_run_kern(call, KERN_ACT_CLIP, prm.alpha, prm.beta);
    }
    act_clip_fn fn = act_clip_kernel(x->dtype);
    if (!fn) return core_fail(LENS_ERR_UNSUPPORTED, "Clip does not support dtype %s", dtype_name(x->dtype));
    fn(x->data, call->outputs[0]->data, (size_t)tensor_numel(x), lo ? lo->data : NULL, hi ? hi->data : NULL);
    return LENS_OK;
}

/* ---- Softmax, LogSoftmax, Hardmax -------------------------------------------------------------------------------- */

#define ACT_TILE 64

/* Softmax over n rows of stride inner at kt <= ACT_TILE adjacent positions (x and y point at the first): maxima and
 * sums per position live in stack tiles, and every inner loop runs over contiguous memory. */
static void act_softmax_tile(const float *x, float *y, int64_t n, int64_t inner, int64_t kt, int log_form) {
    float mx[ACT_TILE], sum[ACT_TILE];
    memcpy(mx, x, (size_t)kt * sizeof *mx);
    for (int64_t j = 1; j < n; j++) {
        const float *row = x + j * inner;
        for (int64_t k = 0; k < kt; k++) mx[k] = row[k] > mx[k] ? row[k] : mx[k];
    }
    memset(sum, 0, sizeof sum);
    const kern_activation exp_act = {KERN_ACT_EXP, 0, 0};
    for (int64_t j = 0; j < n; j++) {
        const float *row = x + j * inner;
        float *out = y + j * inner, e[ACT_TILE];
        for (int64_t k = 0; k < kt; k++) e[k] = row[k] - mx[k];
        kern_activation_apply(&exp_act, e, (size_t)kt);
        for (int64_t k = 0; k < kt; k++) sum[k] += e[k];
        if (!log_form) memcpy(out, e, (size_t)kt * sizeof *e);
    }
    for (int64_t k = 0; k < kt; k++) sum[k] = log_form ? logf(sum[k]) : 1.0f / sum[k];
    for (int64_t j = 0; j < n; j++) {
        const float *row = x + j * inner;
        float *out = y + j * inner;
        if (log_form) {
            for (int64_t k = 0; k < kt; k++) out[k] = (row[k] - mx[k]) - sum[k];
        } else {
            for (int64_t k = 0; k < kt; k++) out[k] *= sum[k];
        }
    }
}

/* One-hot of the first maximum along n rows of stride inner. */
static void act_hardmax(const float *x, float *y, int64_t outer, int64_t n, int64_t inner) {
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t k = 0; k < inner; k++) {
            const float *p = x + o * n * inner + k;
            float *q = y + o * n * inner + k;
            int64_t at = 0;
            for (int64_t j = 1; j < n; j++)
                if (p[j * inner] > p[at * inner]) at = j;
            for (int64_t j = 0; j < n; j++) q[j * inner] = j == at ? 1.0f : 0.0f;
        }
    }
}

typedef struct act_softmax_job {
    const float *x;
    float *y;
    int64_t outer, n, inner;
    int64_t rows_per_task; /* inner == 1 */
    int64_t tiles;         /* inner > 1: tiles per outer index */
    int log_form;
} act_softmax_job;

static void act_softmax_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const act_softmax_job *j = ctx;
    if (j->inner == 1) {
        int64_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task < j->outer ? r0 + j->rows_per_task : j->outer;
        for (int64_t r = r0; r < r1; r++) kern_softmax_row(j->x + r * j->n, j->y + r * j->n, (size_t)j->n, j->log_form);
    } else {
        int64_t o = task / j->tiles, k0 = (task % j->tiles) * ACT_TILE;
        int64_t kt = j->inner - k0 < ACT_TILE ? j->inner - k0 : ACT_TILE;
        int64_t block = j->n * j->inner;
        act_softmax_tile(j->x + o * block + k0, j->y + o * block + k0, j->n, j->inner, kt, j->log_form);
    }
}

static lens_status act_softmax_axis(const op_call *call, int *axis) {
    const tensor *x = call->inputs[0];
    int64_t a = op_attr_int(call->node, "axis", call->node->opset >= 13 ? -1 : 1);
    if (x->rank == 0) { /* a scalar is its own one-element row */
        *axis = 0;
        return a == 0 || a == -1 ? LENS_OK : ops_normalize_axis(a, 0, axis);
    }
    return ops_normalize_axis(a, x->rank, axis);
}

static lens_status infer_softmax(op_call *call) {
    lens_status st = act_infer_f32(call);
    if (st) return st;
    int axis;
    return act_softmax_axis(call, &axis);
}

static lens_status run_softmax(op_call *call) {
    const tensor *x = call->inputs[0];
    int axis;
    lens_status st = act_softmax_axis(call, &axis);
    if (st) return st;
    /* opset < 13 flattens to 2-D at axis; later opsets normalise along that one axis. */
    int64_t outer = 1, n = 1, inner = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < axis) outer *= x->dims[i];
        else if (i == axis || call->node->opset < 13) n *= x->dims[i];
        else inner *= x->dims[i];
    }
    if (outer == 0 || n == 0 || inner == 0) return LENS_OK;
    if (!strcmp(call->node->op_type, "Hardmax")) {
        act_hardmax(x->data, call->outputs[0]->data, outer, n, inner);
        return LENS_OK;
    }
    act_softmax_job job = {x->data, call->outputs[0]->data, outer, n, inner, 1, 1,
                           !strcmp(call->node->op_type, "LogSoftmax")};
    int64_t tasks;
    if (inner == 1) {
        job.rows_per_task = n >= ACT_CHUNK_MIN ? 1 : ACT_CHUNK_MIN / n;
        tasks = (outer + job.rows_per_task - 1) / job.rows_per_task;
    } else {
        job.tiles = (inner + ACT_TILE - 1) / ACT_TILE;
        tasks = outer * job.tiles;
    }
    if (outer * n * inner < ACT_PARALLEL_MIN) {
        for (int64_t t = 0; t < tasks; t++) act_softmax_task(&job, t, 0);
    } else {
        core_pool_run(call->pool, tasks, act_softmax_task, &job);
    }
    return LENS_OK;
}

/* ---- Table ------------------------------------------------------------------------------------------------------- */

#define ACT_DEF(NAME) {"", #NAME, act_infer_f32, run_##NAME, NULL, NULL, NULL}

const op_def ops_table_act[] = {
    ACT_DEF(Relu), ACT_DEF(LeakyRelu), ACT_DEF(Sigmoid), ACT_DEF(HardSigmoid), ACT_DEF(HardSwish), ACT_DEF(Tanh),
    ACT_DEF(Erf), ACT_DEF(Elu), ACT_DEF(Selu), ACT_DEF(Celu), ACT_DEF(Softplus), ACT_DEF(Softsign),
    ACT_DEF(ThresholdedRelu), ACT_DEF(Shrink),
    {"", "Gelu", infer_Gelu, run_Gelu, NULL, NULL, NULL},
    {"", "Clip", infer_Clip, run_Clip, NULL, NULL, NULL},
    {"", "Softmax", infer_softmax, run_softmax, NULL, NULL, NULL},
    {"", "LogSoftmax", infer_softmax, run_softmax, NULL, NULL, NULL},
    {"", "Hardmax", infer_softmax, run_softmax, NULL, NULL, NULL},
    {"lens", "Silu", act_infer_f32, run_Silu, NULL, NULL, NULL},
    {"com.microsoft", "Gelu", act_infer_f32, run_Gelu, NULL, NULL, NULL},
    {"com.microsoft", "QuickGelu", act_infer_f32, run_QuickGelu, NULL, NULL, NULL},
    {"com.microsoft", "FastGelu", infer_bias_gelu, run_bias_gelu, NULL, NULL, NULL},
    {"com.microsoft", "BiasGelu", infer_bias_gelu, run_bias_gelu, NULL, NULL, NULL},
    {0},
};
