/* norm.c — BatchNormalization (inference), LayerNormalization (with optional Mean / InvStdDev outputs; for graph
 * passes also over the channels of NCHW input, "lens.channels_first") and InstanceNormalization, each followed by an
 * optional fused activation. Statistics use two passes over rows in float with several partial sums. Parallel over
 * rows or planes. May touch only its inputs and outputs. */
#include <math.h>
#include <string.h>

#include "ops.h"

/* Tasks cover at least this many elements so small tensors are not split into slivers. */
#define NORM_TASK_ELEMENTS 16384

static lens_status norm_float(const tensor *t, const char *op, const char *what) {
    if (t->dtype != LENS_DTYPE_FLOAT32)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s input %s has dtype %s; only float32 is supported", op, what,
                         dtype_name(t->dtype));
    return LENS_OK;
}

static int64_t rows_per_task(int64_t row_size) {
    return row_size >= NORM_TASK_ELEMENTS ? 1 : NORM_TASK_ELEMENTS / (row_size > 0 ? row_size : 1);
}

static float row_sum(const float *x, int64_t n) {
    float part[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) part[k] += x[i + k];
    float s = 0;
    for (; i < n; i++) s += x[i];
    for (int k = 0; k < 8; k++) s += part[k];
    return s;
}

/* Mean and biased variance of n floats (two passes, so no cancellation from E[x²] - E[x]²). */
static void row_stats(const float *x, int64_t n, float *mean, float *var) {
    float m = n ? row_sum(x, n) / (float)n : 0.0f;
    float part[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            float d = x[i + k] - m;
            part[k] += d * d;
        }
    float s = 0;
    for (; i < n; i++) s += (x[i] - m) * (x[i] - m);
    for (int k = 0; k < 8; k++) s += part[k];
    *mean = m;
    *var = n ? s / (float)n : 0.0f;
}

/* ---- BatchNormalization ------------------------------------------------------------------------------------------ */

static lens_status batchnorm_check(const op_call *call) {
    const char *op = "BatchNormalization";
    if (call->n_inputs < 5 || call->n_outputs < 1 || !call->outputs[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s needs inputs X, scale, B, mean, var and output Y", op);
    static const char *names[5] = {"X", "scale", "B", "input_mean", "input_var"};
    for (int i = 0; i < 5; i++) {
        if (!call->inputs[i]) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s input %s is missing", op, names[i]);
        lens_status st = norm_float(call->inputs[i], op, names[i]);
        if (st) return st;
    }
    if (op_attr_int(call->node, "training_mode", 0) != 0)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s with training_mode=1 is not supported (inference only)", op);
    if (op_attr_int(call->node, "spatial", 1) != 1)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s with spatial=0 is not supported", op);
    for (int i = 1; i < call->n_outputs; i++)
        if (call->outputs[i])
            return core_fail(LENS_ERR_UNSUPPORTED, "%s training outputs (running mean/var) are not supported", op);
    const tensor *x = call->inputs[0];
    char sx[96], sp[96];
    if (x->rank < 2 || x->dims[0] < 0 || x->dims[1] < 0)
        return core_fail(LENS_ERR_SHAPE, "%s input X %s needs rank >= 2 (N, C, ...)", op,
                         tensor_shape_string(x, sx, sizeof sx));
    for (int i = 1; i < 5; i++) {
        const tensor *p = call->inputs[i];
        if (p->rank != 1 || p->dims[0] != x->dims[1])
            return core_fail(LENS_ERR_SHAPE, "%s input %s %s must be [C] for X %s", op, names[i],
                             tensor_shape_string(p, sp, sizeof sp), tensor_shape_string(x, sx, sizeof sx));
    }
    return LENS_OK;
}

static lens_status batchnorm_infer(op_call *call) {
    lens_status st = batchnorm_check(call);
    if (st) return st;
    const tensor *x = call->inputs[0];
    ops_set_shape(call->outputs[0], LENS_DTYPE_FLOAT32, x->rank, x->dims);
    return LENS_OK;
}

typedef struct norm_job {
    const float *x, *scale, *bias, *mean, *var;
    float *y, *mean_out, *inv_out;
    int64_t rows, row_size, per_task, channels, scale_size, bias_size;
    float epsilon;
    kern_activation act;
} norm_job;

static void batchnorm_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const norm_job *j = ctx;
    int64_t r0 = task * j->per_task, r1 = r0 + j->per_task < j->rows ? r0 + j->per_task : j->rows;
    for (int64_t r = r0; r < r1; r++) {
        int64_t c = r % j->channels;
        float a = j->scale[c] / sqrtf(j->var[c] + j->epsilon), b = j->bias[c] - j->mean[c] * a;
        const float *x = j->x + r * j->row_size;
        float *y = j->y + r * j->row_size;
        for (int64_t i = 0; i < j->row_size; i++) y[i] = x[i] * a + b;
        kern_activation_apply(&j->act, y, (size_t)j->row_size);
    }
}

static lens_status batchnorm_run(op_call *call) {
    lens_status st = batchnorm_check(call);
    if (st) return st;
    const tensor *x = call->inputs[0];
    norm_job j = {0};
    j.x = x->data, j.scale = call->inputs[1]->data, j.bias = call->inputs[2]->data;
    j.mean = call->inputs[3]->data, j.var = call->inputs[4]->data, j.y = call->outputs[0]->data;
    if (!j.x || !j.scale || !j.bias || !j.mean || !j.var || !j.y)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "BatchNormalization: missing tensor data");
    j.channels = x->dims[1];
    j.rows = x->dims[0] * x->dims[1];
    j.row_size = 1;
    for (int i = 2; i < x->rank; i++) j.row_size *= x->dims[i];
    j.epsilon = op_attr_float(call->node, "epsilon", 1e-5f);
    j.act = op_fused_activation(call->node);
    j.per_task = rows_per_task(j.row_size);
    if (j.channels) core_pool_run(call->pool, (j.rows + j.per_task - 1) / j.per_task, batchnorm_task, &j);
    return LENS_OK;
}

/* ---- LayerNormalization ------------------------------------------------------------------------------------------ */

typedef struct layernorm_geom {
    int axis;
    int64_t rows, row_size, scale_size, bias_size;
    /* "lens.channels_first" (set by graph passes): X is [N, C, spatial...] and each pixel is normalised over C;
     * Y is [N, spatial..., C], or [N, C, spatial...] with "lens.channels_first_output". */
    int channels_first, nchw_out;
    int64_t images, pixels;
} layernorm_geom;

/* Scale and B apply along the normalised dims and broadcast from the left: their shape, leading 1s dropped, must
 * be a suffix of X's dims from axis on; element i of a row then uses element i % numel. */
static lens_status layernorm_param(const tensor *p, const tensor *x, int axis, const char *what, int64_t *size) {
    char sp[96], sx[96];
    lens_status st = norm_float(p, "LayerNormalization", what);
    if (st) return st;
    int lead = 0;
    while (lead < p->rank && p->dims[lead] == 1) lead++;
    int rank = p->rank - lead, ok = rank <= x->rank - axis;
    for (int i = 0; ok && i < rank; i++) ok = p->dims[lead + i] == x->dims[x->rank - rank + i];
    if (!ok)
        return core_fail(LENS_ERR_SHAPE, "LayerNormalization %s %s does not match X %s from axis %d", what,
                         tensor_shape_string(p, sp, sizeof sp), tensor_shape_string(x, sx, sizeof sx), axis);
    *size = tensor_numel(p);
    return LENS_OK;
}

static lens_status layernorm_parse_channels_first(const op_call *call, layernorm_geom *g) {
    const tensor *x = call->inputs[0], *b = call->n_inputs > 2 ? call->inputs[2] : NULL;
    char sx[96], sp[96];
    if (x->rank < 3)
        return core_fail(LENS_ERR_SHAPE, "LayerNormalization with lens.channels_first needs X of rank >= 3, not %s",
                         tensor_shape_string(x, sx, sizeof sx));
    g->nchw_out = op_attr_int(call->node, "lens.channels_first_output", 0) != 0;
    g->axis = 1;
    g->images = x->dims[0];
    g->row_size = x->dims[1];
    g->pixels = 1;
    for (int i = 2; i < x->rank; i++) g->pixels *= x->dims[i];
    g->rows = g->images * g->pixels;
    for (int k = 1; k < 3; k++) {
        const tensor *p = k == 1 ? call->inputs[1] : b;
        if (!p) continue;
        lens_status st = norm_float(p, "LayerNormalization", k == 1 ? "Scale" : "B");
        if (st) return st;
        int lead = 0;
        while (lead < p->rank && p->dims[lead] == 1) lead++;
        if (tensor_numel(p) != g->row_size || p->rank - lead > 1)
            return core_fail(LENS_ERR_SHAPE, "LayerNormalization %s %s does not match the channels of X %s",
                             k == 1 ? "Scale" : "B", tensor_shape_string(p, sp, sizeof sp),
                             tensor_shape_string(x, sx, sizeof sx));
    }
    g->scale_size = g->row_size;
    g->bias_size = b ? g->row_size : 0;
    return LENS_OK;
}

static lens_status layernorm_parse(const op_call *call, layernorm_geom *g) {
    const char *op = "LayerNormalization";
    if (call->n_inputs < 2 || !call->inputs[0] || !call->inputs[1] || call->n_outputs < 1 || !call->outputs[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s needs inputs X and Scale and output Y", op);
    const tensor *x = call->inputs[0], *b = call->n_inputs > 2 ? call->inputs[2] : NULL;
    lens_status st = norm_float(x, op, "X");
    if (st) return st;
    if (x->rank < 1) return core_fail(LENS_ERR_SHAPE, "%s input X must have rank >= 1", op);
    g->channels_first = op_attr_int(call->node, "lens.channels_first", 0) != 0;
    if (g->channels_first) return layernorm_parse_channels_first(call, g);
    if ((st = ops_normalize_axis(op_attr_int(call->node, "axis", -1), x->rank, &g->axis))) return st;
    g->rows = g->row_size = 1;
    for (int i = 0; i < x->rank; i++) {
        if (x->dims[i] < 0) return core_fail(LENS_ERR_SHAPE, "%s input X has a negative dim", op);
        if (i < g->axis) g->rows *= x->dims[i];
        else g->row_size *= x->dims[i];
    }
    if ((st = layernorm_param(call->inputs[1], x, g->axis, "Scale", &g->scale_size))) return st;
    g->bias_size = 0;
    if (b && (st = layernorm_param(b, x, g->axis, "B", &g->bias_size))) return st;
    return LENS_OK;
}

static lens_status layernorm_infer(op_call *call) {
    layernorm_geom g;
    lens_status st = layernorm_parse(call, &g);
    if (st) return st;
    const tensor *x = call->inputs[0];
    ops_set_shape(call->outputs[0], LENS_DTYPE_FLOAT32, x->rank, x->dims);
    if (g.channels_first) {
        if (!g.nchw_out) { /* NHWC */
            tensor *y = call->outputs[0];
            for (int i = 1; i + 1 < x->rank; i++) y->dims[i] = x->dims[i + 1];
            y->dims[x->rank - 1] = x->dims[1];
        }
        for (int o = 1; o < call->n_outputs; o++)
            if (call->outputs[o])
                return core_fail(LENS_ERR_UNSUPPORTED, "LayerNormalization with lens.channels_first has one output");
        return LENS_OK;
    }
    int64_t dims[TENSOR_MAX_RANK];
    for (int i = 0; i < x->rank; i++) dims[i] = i < g.axis ? x->dims[i] : 1;
    for (int o = 1; o < 3 && o < call->n_outputs; o++)
        if (call->outputs[o]) ops_set_shape(call->outputs[o], LENS_DTYPE_FLOAT32, x->rank, dims);
    return LENS_OK;
}

static void layernorm_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const norm_job *j = ctx;
    int64_t r0 = task * j->per_task, r1 = r0 + j->per_task < j->rows ? r0 + j->per_task : j->rows;
    const int64_t n = j->row_size;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->x + r * n;
        float *y = j->y + r * n;
        float mean, inv;
        if (j->scale_size == n && (j->bias_size == n || !j->bias)) { /* the usual: one Scale and B per element */
            kern_layernorm_row(x, y, (size_t)n, j->scale, j->bias, j->epsilon, &mean, &inv);
        } else {
            float var;
            row_stats(x, n, &mean, &var);
            inv = 1.0f / sqrtf(var + j->epsilon);
            for (int64_t i = 0; i < n; i++) {
                float b = j->bias ? j->bias[i % j->bias_size] : 0.0f;
                y[i] = (x[i] - mean) * inv * j->scale[i % j->scale_size] + b;
            }
        }
        kern_activation_apply(&j->act, y, (size_t)n);
        if (j->mean_out) j->mean_out[r] = mean;
        if (j->inv_out) j->inv_out[r] = inv;
    }
}

/* Pixels normalised together over channels-first input: one 64-byte line per channel. For NHWC output, channels
 * are written out through a 4 KiB tile. */
#define LAYERNORM_PIXEL_BLOCK 16
#define LAYERNORM_CHANNEL_TILE 64

typedef struct layernorm_cf_job {
    const norm_job *j;
    int64_t pixels, chunk; /* pixels per image and per task */
    int nchw_out;
} layernorm_cf_job;

/* Pixels [p0, p0 + n) of one image, n <= LAYERNORM_PIXEL_BLOCK: x and y point at the image. The block's lines stay
 * in L1 across the three passes (sum, squared deviations, output). */
static inline __attribute__((always_inline)) void layernorm_cf_block(const layernorm_cf_job *cf, const float *x,
                                                                     float *y, int64_t p0, int64_t n) {
    const norm_job *j = cf->j;
    const int64_t C = j->row_size, P = cf->pixels;
    float mean[LAYERNORM_PIXEL_BLOCK] = {0}, inv[LAYERNORM_PIXEL_BLOCK] = {0};
    for (int64_t c = 0; c < C; c++)
        for (int64_t p = 0; p < n; p++) mean[p] += x[c * P + p0 + p];
    for (int64_t p = 0; p < n; p++) mean[p] /= (float)C;
    for (int64_t c = 0; c < C; c++)
        for (int64_t p = 0; p < n; p++) {
            float d = x[c * P + p0 + p] - mean[p];
            inv[p] += d * d;
        }
    for (int64_t p = 0; p < n; p++) inv[p] = 1.0f / sqrtf(inv[p] / (float)C + j->epsilon);
    if (cf->nchw_out) {
        for (int64_t c = 0; c < C; c++) {
            float s = j->scale[c], b = j->bias ? j->bias[c] : 0.0f;
            const float *xc = x + c * P + p0;
            float *yc = y + c * P + p0;
            for (int64_t p = 0; p < n; p++) yc[p] = (xc[p] - mean[p]) * inv[p] * s + b;
            if (j->act.kind != KERN_ACT_NONE) kern_activation_apply(&j->act, yc, (size_t)n);
        }
        return;
    }
    /* NHWC: normalise a few channels at a time into a tile in channel-major order, then transpose it out */
    float tile[LAYERNORM_CHANNEL_TILE * LAYERNORM_PIXEL_BLOCK];
    for (int64_t c0 = 0; c0 < C; c0 += LAYERNORM_CHANNEL_TILE) {
        int64_t channels = C - c0 < LAYERNORM_CHANNEL_TILE ? C - c0 : LAYERNORM_CHANNEL_TILE;
        for (int64_t c = 0; c < channels; c++) {
            float s = j->scale[c0 + c], b = j->bias ? j->bias[c0 + c] : 0.0f;
            const float *xc = x + (c0 + c) * P + p0;
            float *t = tile + c * LAYERNORM_PIXEL_BLOCK;
            for (int64_t p = 0; p < n; p++) t[p] = (xc[p] - mean[p]) * inv[p] * s + b;
        }
        kern_transpose_f32(tile, LAYERNORM_PIXEL_BLOCK, y + p0 * C + c0, (size_t)C, (size_t)channels, (size_t)n, NULL);
    }
    if (j->act.kind != KERN_ACT_NONE) kern_activation_apply(&j->act, y + p0 * C, (size_t)(n * C));
}

/* The block's loops run across its 16 pixels, one AVX-512 vector; this file is built without ISA flags, so the
 * compiler also builds an AVX-512 copy of the task, which the loader picks on CPUs that have it. ConvNeXt-T's
 * channels-first LayerNorms (in the network, 2 threads): stage 1 0.115 -> 0.060 ms, the stem's 0.169 -> 0.104. */
#if defined(LENS_X86)
__attribute__((target_clones("avx512f", "default")))
#endif
static void layernorm_cf_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const layernorm_cf_job *cf = ctx;
    int64_t chunks = (cf->pixels + cf->chunk - 1) / cf->chunk, image = task / chunks;
    int64_t p0 = task % chunks * cf->chunk, p1 = p0 + cf->chunk < cf->pixels ? p0 + cf->chunk : cf->pixels;
    size_t image_size = (size_t)(cf->pixels * cf->j->row_size);
    const float *x = cf->j->x + (size_t)image * image_size;
    float *y = cf->j->y + (size_t)image * image_size;
    int64_t p = p0;
    for (; p + LAYERNORM_PIXEL_BLOCK <= p1; p += LAYERNORM_PIXEL_BLOCK) /* a constant width the compiler vectorises */
        layernorm_cf_block(cf, x, y, p, LAYERNORM_PIXEL_BLOCK);
    if (p < p1) layernorm_cf_block(cf, x, y, p, p1 - p);
}

static lens_status layernorm_run(op_call *call) {
    layernorm_geom g;
    lens_status st = layernorm_parse(call, &g);
    if (st) return st;
    norm_job j = {0};
    j.x = call->inputs[0]->data;
    j.scale = call->inputs[1]->data;
    j.bias = g.bias_size ? call->inputs[2]->data : NULL;
    j.bias_size = g.bias_size;
    j.scale_size = g.scale_size;
    j.y = call->outputs[0]->data;
    j.mean_out = call->n_outputs > 1 && call->outputs[1] ? call->outputs[1]->data : NULL;
    j.inv_out = call->n_outputs > 2 && call->outputs[2] ? call->outputs[2]->data : NULL;
    if (!j.x || !j.scale || !j.y || (g.bias_size && !j.bias))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "LayerNormalization: missing tensor data");
    j.rows = g.rows, j.row_size = g.row_size;
    j.epsilon = op_attr_float(call->node, "epsilon", 1e-5f);
    j.act = op_fused_activation(call->node);
    j.per_task = rows_per_task(j.row_size);
    if (g.channels_first) {
        if (!g.pixels || !g.images) return LENS_OK;
        int64_t chunk = j.per_task < LAYERNORM_PIXEL_BLOCK ? LAYERNORM_PIXEL_BLOCK : j.per_task;
        layernorm_cf_job cf = {&j, g.pixels, (chunk + LAYERNORM_PIXEL_BLOCK - 1) / LAYERNORM_PIXEL_BLOCK *
                                                 LAYERNORM_PIXEL_BLOCK, g.nchw_out};
        core_pool_run(call->pool, g.images * ((g.pixels + cf.chunk - 1) / cf.chunk), layernorm_cf_task, &cf);
        return LENS_OK;
    }
    core_pool_run(call->pool, (j.rows + j.per_task - 1) / j.per_task, layernorm_task, &j);
    return LENS_OK;
}

/* ---- InstanceNormalization --------------------------------------------------------------------------------------- */

static lens_status instnorm_check(const op_call *call) {
    const char *op = "InstanceNormalization";
    if (call->n_inputs < 3 || !call->inputs[0] || !call->inputs[1] || !call->inputs[2] || call->n_outputs < 1 ||
        !call->outputs[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s needs inputs input, scale, B and output Y", op);
    static const char *names[3] = {"input", "scale", "B"};
    for (int i = 0; i < 3; i++) {
        lens_status st = norm_float(call->inputs[i], op, names[i]);
        if (st) return st;
    }
    const tensor *x = call->inputs[0];
    char sx[96], sp[96];
    if (x->rank < 3 || x->dims[0] < 0 || x->dims[1] < 0)
        return core_fail(LENS_ERR_SHAPE, "%s input %s needs rank >= 3 (N, C, spatial...)", op,
                         tensor_shape_string(x, sx, sizeof sx));
    for (int i = 1; i < 3; i++) {
        const tensor *p = call->inputs[i];
        if (p->rank != 1 || p->dims[0] != x->dims[1])
            return core_fail(LENS_ERR_SHAPE, "%s input %s %s must be [C] for input %s", op, names[i],
                             tensor_shape_string(p, sp, sizeof sp), tensor_shape_string(x, sx, sizeof sx));
    }
    return LENS_OK;
}

static lens_status instnorm_infer(op_call *call) {
    lens_status st = instnorm_check(call);
    if (st) return st;
    const tensor *x = call->inputs[0];
    ops_set_shape(call->outputs[0], LENS_DTYPE_FLOAT32, x->rank, x->dims);
    return LENS_OK;
}

static void instnorm_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const norm_job *j = ctx;
    int64_t r0 = task * j->per_task, r1 = r0 + j->per_task < j->rows ? r0 + j->per_task : j->rows;
    for (int64_t r = r0; r < r1; r++) {
        int64_t c = r % j->channels;
        const float *x = j->x + r * j->row_size;
        float *y = j->y + r * j->row_size;
        float mean, var;
        row_stats(x, j->row_size, &mean, &var);
        float a = j->scale[c] / sqrtf(var + j->epsilon), b = j->bias[c] - mean * a;
        for (int64_t i = 0; i < j->row_size; i++) y[i] = x[i] * a + b;
        kern_activation_apply(&j->act, y, (size_t)j->row_size);
    }
}

static lens_status instnorm_run(op_call *call) {
    lens_status st = instnorm_check(call);
    if (st) return st;
    const tensor *x = call->inputs[0];
    norm_job j = {0};
    j.x = x->data, j.scale = call->inputs[1]->data, j.bias = call->inputs[2]->data, j.y = call->outputs[0]->data;
    if (!j.x || !j.scale || !j.bias || !j.y)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "InstanceNormalization: missing tensor data");
    j.channels = x->dims[1];
    j.rows = x->dims[0] * x->dims[1];
    j.row_size = 1;
    for (int i = 2; i < x->rank; i++) j.row_size *= x->dims[i];
    j.epsilon = op_attr_float(call->node, "epsilon", 1e-5f);
    j.act = op_fused_activation(call->node);
    j.per_task = rows_per_task(j.row_size);
    if (j.channels) core_pool_run(call->pool, (j.rows + j.per_task - 1) / j.per_task, instnorm_task, &j);
    return LENS_OK;
}

const op_def ops_table_norm[] = {
    {"", "BatchNormalization", batchnorm_infer, batchnorm_run, NULL, NULL, NULL},
    {"", "LayerNormalization", layernorm_infer, layernorm_run, NULL, NULL, NULL},
    {"", "InstanceNormalization", instnorm_infer, instnorm_run, NULL, NULL, NULL},
    {0},
};
