/* pool.c — MaxPool (with optional Indices), AveragePool, GlobalAveragePool, GlobalMaxPool over any number of spatial
 * dims: pads, auto_pad, strides, dilations, ceil_mode, count_include_pad. 1-D and 2-D float pools take a row-wise
 * vector path; the rest walks windows generically. Parallel over (image, channel) planes. May touch only its inputs
 * and outputs. */
#include <float.h>
#include <string.h>

#include "../kernels/conv.h"
#include "ops.h"

#define POOL_MAX_SPATIAL (TENSOR_MAX_RANK - 2)
#define POOL_DIM_LIMIT ((int64_t)1 << 30)

typedef struct pool_geom {
    int spatial, is_max, count_include_pad, want_indices, column_major;
    lens_dtype dtype;
    int64_t planes; /* batch * channels */
    int64_t in[POOL_MAX_SPATIAL], out[POOL_MAX_SPATIAL], k[POOL_MAX_SPATIAL], stride[POOL_MAX_SPATIAL];
    int64_t dil[POOL_MAX_SPATIAL], pad_begin[POOL_MAX_SPATIAL], pad_end[POOL_MAX_SPATIAL];
    int64_t in_size, out_size;
} pool_geom;

static int64_t div_ceil(int64_t a, int64_t b) { return (a + b - 1) / b; }

static lens_status pool_parse(const op_call *call, int is_max, pool_geom *g) {
    const char *op = is_max ? "MaxPool" : "AveragePool";
    const op_node *node = call->node;
    memset(g, 0, sizeof *g);
    g->is_max = is_max;
    if (call->n_inputs < 1 || !call->inputs[0] || call->n_outputs < 1 || !call->outputs[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s needs input X and output Y", op);
    const tensor *x = call->inputs[0];
    g->dtype = x->dtype;
    int ok_dtype = x->dtype == LENS_DTYPE_FLOAT32 ||
                   (is_max && (x->dtype == LENS_DTYPE_UINT8 || x->dtype == LENS_DTYPE_INT8));
    if (!ok_dtype)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s input X has dtype %s; only float32%s is supported", op,
                         dtype_name(x->dtype), is_max ? " (and uint8, int8)" : "");
    char sx[96];
    tensor_shape_string(x, sx, sizeof sx);
    if (x->rank < 3) return core_fail(LENS_ERR_SHAPE, "%s input X %s needs rank >= 3 (N, C, spatial...)", op, sx);
    int s = x->rank - 2;
    g->spatial = s;
    g->planes = x->dims[0] * x->dims[1];
    if (x->dims[0] < 0 || x->dims[1] < 0) return core_fail(LENS_ERR_SHAPE, "%s input X %s is invalid", op, sx);
    g->want_indices = is_max && call->n_outputs > 1 && call->outputs[1];
    g->column_major = op_attr_int(node, "storage_order", 0) == 1;
    g->count_include_pad = op_attr_int(node, "count_include_pad", 0) != 0;
    int ceil_mode = op_attr_int(node, "ceil_mode", 0) != 0;
    const int64_t *ks, *strides, *dils, *pads;
    size_t n_ks = op_attr_ints(node, "kernel_shape", &ks), n_strides = op_attr_ints(node, "strides", &strides);
    size_t n_dils = op_attr_ints(node, "dilations", &dils), n_pads = op_attr_ints(node, "pads", &pads);
    if (n_ks != (size_t)s)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s kernel_shape has %zu values for input X %s", op, n_ks, sx);
    if ((n_strides && n_strides != (size_t)s) || (n_dils && n_dils != (size_t)s) || (n_pads && n_pads != 2 * (size_t)s))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s strides/dilations/pads have the wrong length for input X %s",
                         op, sx);
    const char *auto_pad = op_attr_string(node, "auto_pad", "NOTSET");
    int same_upper = !strcmp(auto_pad, "SAME_UPPER"), same_lower = !strcmp(auto_pad, "SAME_LOWER");
    int valid = !strcmp(auto_pad, "VALID");
    if (!same_upper && !same_lower && !valid && strcmp(auto_pad, "NOTSET") && auto_pad[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s auto_pad '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, "
                         "VALID", op, auto_pad);
    g->in_size = g->out_size = 1;
    for (int i = 0; i < s; i++) {
        g->in[i] = x->dims[2 + i];
        g->k[i] = ks[i];
        g->stride[i] = n_strides ? strides[i] : 1;
        g->dil[i] = n_dils ? dils[i] : 1;
        g->pad_begin[i] = n_pads && !valid ? pads[i] : 0;
        g->pad_end[i] = n_pads && !valid ? pads[s + i] : 0;
        if (g->in[i] < 1 || g->in[i] > POOL_DIM_LIMIT)
            return core_fail(LENS_ERR_SHAPE, "%s input X %s has an empty or oversized spatial dim", op, sx);
        if (g->k[i] < 1 || g->k[i] > POOL_DIM_LIMIT || g->stride[i] < 1 || g->stride[i] > POOL_DIM_LIMIT ||
            g->dil[i] < 1 || g->dil[i] > POOL_DIM_LIMIT || g->pad_begin[i] < 0 || g->pad_begin[i] > POOL_DIM_LIMIT ||
            g->pad_end[i] < 0 || g->pad_end[i] > POOL_DIM_LIMIT)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s kernel_shape, strides, dilations or pads out of range on "
                             "axis %d", op, i);
        int64_t span = (g->k[i] - 1) * g->dil[i] + 1;
        if (same_upper || same_lower) {
            g->out[i] = div_ceil(g->in[i], g->stride[i]);
            int64_t total = (g->out[i] - 1) * g->stride[i] + span - g->in[i];
            if (total < 0) total = 0;
            g->pad_begin[i] = same_upper ? total / 2 : total - total / 2;
            g->pad_end[i] = total - g->pad_begin[i];
        } else {
            int64_t padded = g->in[i] + g->pad_begin[i] + g->pad_end[i];
            if (padded < span)
                return core_fail(LENS_ERR_SHAPE, "%s input X %s is smaller than the window (%lld) on spatial axis %d",
                                 op, sx, (long long)span, i);
            g->out[i] = (ceil_mode ? div_ceil(padded - span, g->stride[i]) : (padded - span) / g->stride[i]) + 1;
            /* The last window must start inside the input or its leading padding. */
            if (ceil_mode && (g->out[i] - 1) * g->stride[i] >= g->in[i] + g->pad_begin[i]) g->out[i]--;
        }
        g->in_size *= g->in[i];
        g->out_size *= g->out[i];
        if (g->in_size > POOL_DIM_LIMIT * 64 || g->out_size > POOL_DIM_LIMIT * 64)
            return core_fail(LENS_ERR_SHAPE, "%s input X %s is too large", op, sx);
    }
    return LENS_OK;
}

static lens_status pool_infer_common(op_call *call, int is_max) {
    pool_geom g;
    lens_status st = pool_parse(call, is_max, &g);
    if (st) return st;
    const tensor *x = call->inputs[0];
    int64_t dims[TENSOR_MAX_RANK] = {x->dims[0], x->dims[1]};
    for (int i = 0; i < g.spatial; i++) dims[2 + i] = g.out[i];
    ops_set_shape(call->outputs[0], x->dtype, x->rank, dims);
    if (g.want_indices) ops_set_shape(call->outputs[1], LENS_DTYPE_INT64, x->rank, dims);
    return LENS_OK;
}

static lens_status maxpool_infer(op_call *call) { return pool_infer_common(call, 1); }
static lens_status avgpool_infer(op_call *call) { return pool_infer_common(call, 0); }

/* The taps j in [0, k) with 0 <= start + j * d < limit, as [*lo, *hi). */
static void tap_range(int64_t start, int64_t k, int64_t d, int64_t limit, int64_t *lo, int64_t *hi) {
    *lo = start >= 0 ? 0 : div_ceil(-start, d);
    *hi = start >= limit ? 0 : (limit - 1 - start) / d + 1;
    if (*hi > k) *hi = k;
    if (*lo > *hi) *lo = *hi;
}

/* The averaging divisor along one axis for the window starting at start. */
static int64_t avg_count(const pool_geom *g, int axis, int64_t start) {
    int64_t lo, hi;
    if (g->count_include_pad) {
        /* taps inside the padded input, shifted so that the leading pad starts at 0 */
        tap_range(start + g->pad_begin[axis], g->k[axis], g->dil[axis],
                  g->in[axis] + g->pad_begin[axis] + g->pad_end[axis], &lo, &hi);
    } else {
        tap_range(start, g->k[axis], g->dil[axis], g->in[axis], &lo, &hi);
    }
    return hi - lo;
}

typedef struct pool_job {
    const pool_geom *g;
    const void *x;
    void *y;
    int64_t *indices;
} pool_job;

/* 1-D and 2-D float planes, separably: for each output row, its window's input rows are first reduced into one row
 * (span), then the taps are taken along that row, each pass one kern_pool_row call over whole rows, as vectors. The
 * span holds the columns the windows reach, the padding included as -FLT_MAX (max) or 0 (sum), so every tap is in
 * range; the row is cut into chunks of output columns whose span fits POOL_SPAN floats. ResNet-50's 3x3 stride-2 max
 * pool on 64 x 112 x 112, in the network: on one thread 0.62-0.73 ms tap by tap on the input rows, 0.35-0.39 with a
 * pass per window row and tap; on two threads 0.164 ms so, 0.095 with one pass per window (and x86's max). Max
 * ignores NaN, as v > m ? v : m does in any order; sums change order against the tap-by-tap walk, within rounding. */
#define POOL_SPAN 1024

/* Whether pool_plane_2d can take these planes: a float 1-D or 2-D pool whose window fits a chunk. */
static int pool_rows_ok(const pool_geom *g) {
    int64_t kw = g->k[g->spatial - 1], dw = g->dil[g->spatial - 1];
    return g->spatial <= 2 && g->dtype == LENS_DTYPE_FLOAT32 && (kw - 1) * dw + 1 <= POOL_SPAN;
}

/* The window rows of output row oh reduced into span: the columns [v0, v1), of which [c0, c1) lie in the input. */
static void pool_span(const pool_geom *g, const float *x, int64_t oh, int64_t v0, int64_t v1, float *span) {
    int two = g->spatial == 2;
    const int64_t IH = two ? g->in[0] : 1, IW = g->in[two], KH = two ? g->k[0] : 1;
    const int64_t sh = two ? g->stride[0] : 1, dh = two ? g->dil[0] : 1, ph = two ? g->pad_begin[0] : 0;
    const float init = g->is_max ? -FLT_MAX : 0.0f;
    int64_t hstart = oh * sh - ph, i0, i1, c0 = v0 < 0 ? 0 : v0, c1 = v1 > IW ? IW : v1;
    tap_range(hstart, KH, dh, IH, &i0, &i1);
    if (i0 == i1 || c0 >= c1) c0 = c1 = v1; /* no input in the windows: all padding */
    else
        kern_pool_row(g->is_max, span + (c0 - v0), x + (hstart + i0 * dh) * IW + c0, (size_t)(c1 - c0), 1,
                      (size_t)(i1 - i0), (size_t)(dh * IW));
    for (int64_t c = v0; c < c0; c++) span[c - v0] = init;
    for (int64_t c = c1; c < v1; c++) span[c - v0] = init;
}

static void pool_plane_2d(const pool_geom *g, const float *x, float *y) {
    int two = g->spatial == 2;
    const int64_t OH = two ? g->out[0] : 1, OW = g->out[two], KW = g->k[two], sw = g->stride[two];
    const int64_t dw = g->dil[two], pw = g->pad_begin[two];
    const int64_t chunk = (POOL_SPAN - 1 - (KW - 1) * dw) / sw + 1; /* output columns per chunk */
    float span[POOL_SPAN];
    for (int64_t ow0 = 0; ow0 < OW; ow0 += chunk) {
        int64_t ow1 = OW - ow0 < chunk ? OW : ow0 + chunk;
        int64_t v0 = ow0 * sw - pw, v1 = (ow1 - 1) * sw - pw + (KW - 1) * dw + 1;
        for (int64_t oh = 0; oh < OH; oh++) {
            pool_span(g, x, oh, v0, v1, span);
            kern_pool_row(g->is_max, y + oh * OW + ow0, span, (size_t)(ow1 - ow0), (size_t)sw, (size_t)KW,
                          (size_t)dw);
        }
    }
    if (g->is_max) return;
    for (int64_t oh = 0; oh < OH; oh++) {
        int64_t ch = two ? avg_count(g, 0, oh * g->stride[0] - g->pad_begin[0]) : 1;
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t cnt = ch * avg_count(g, two, ow * sw - pw);
            y[oh * OW + ow] = cnt > 0 ? y[oh * OW + ow] / (float)cnt : 0.0f;
        }
    }
}

static double load_value(const void *p, lens_dtype t, int64_t i) {
    switch (t) {
    case LENS_DTYPE_UINT8: return ((const uint8_t *)p)[i];
    case LENS_DTYPE_INT8: return ((const int8_t *)p)[i];
    default: return ((const float *)p)[i];
    }
}

static void store_value(void *p, lens_dtype t, int64_t i, double v) {
    switch (t) {
    case LENS_DTYPE_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case LENS_DTYPE_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    default: ((float *)p)[i] = (float)v; break;
    }
}

/* Any rank, any dtype, with argmax: walks every window tap by tap. */
static void pool_plane_generic(const pool_geom *g, int64_t plane, const void *x, void *y, int64_t *indices) {
    const int s = g->spatial;
    int64_t o[POOL_MAX_SPATIAL] = {0}, in_stride[POOL_MAX_SPATIAL], col_stride[POOL_MAX_SPATIAL];
    int64_t st = 1;
    for (int d = s - 1; d >= 0; d--) in_stride[d] = st, st *= g->in[d];
    st = 1;
    for (int d = 0; d < s; d++) col_stride[d] = st, st *= g->in[d];
    const int64_t xbase = plane * g->in_size, ybase = plane * g->out_size;
    for (int64_t p = 0; p < g->out_size; p++) {
        int64_t start[POOL_MAX_SPATIAL], lo[POOL_MAX_SPATIAL], hi[POOL_MAX_SPATIAL], t[POOL_MAX_SPATIAL];
        int empty = 0;
        int64_t count = 1;
        for (int d = 0; d < s; d++) {
            start[d] = o[d] * g->stride[d] - g->pad_begin[d];
            tap_range(start[d], g->k[d], g->dil[d], g->in[d], &lo[d], &hi[d]);
            if (lo[d] == hi[d]) empty = 1;
            t[d] = lo[d];
            if (!g->is_max) count *= avg_count(g, d, start[d]);
        }
        double acc = g->is_max ? -DBL_MAX : 0.0;
        int64_t best = -1;
        while (!empty) {
            int64_t off = 0, coff = 0;
            for (int d = 0; d < s; d++) {
                int64_t idx = start[d] + t[d] * g->dil[d];
                off += idx * in_stride[d];
                coff += idx * col_stride[d];
            }
            double v = load_value(x, g->dtype, xbase + off);
            if (g->is_max) {
                if (v > acc || best < 0) acc = v, best = g->column_major ? coff : off;
            } else {
                acc += v;
            }
            int d = s - 1;
            for (; d >= 0; d--) {
                if (++t[d] < hi[d]) break;
                t[d] = lo[d];
            }
            if (d < 0) break;
        }
        if (!g->is_max) acc = count > 0 ? acc / (double)count : 0.0;
        if (g->is_max && best < 0) acc = g->dtype == LENS_DTYPE_FLOAT32 ? -FLT_MAX : 0.0;
        store_value(y, g->dtype, ybase + p, acc);
        if (indices) indices[ybase + p] = xbase + (best < 0 ? 0 : best);
        for (int d = s - 1; d >= 0; d--) {
            if (++o[d] < g->out[d]) break;
            o[d] = 0;
        }
    }
}

static void pool_task(void *ctx, int64_t plane, int thread) {
    (void)thread;
    const pool_job *job = ctx;
    const pool_geom *g = job->g;
    if (pool_rows_ok(g) && !job->indices)
        pool_plane_2d(g, (const float *)job->x + plane * g->in_size, (float *)job->y + plane * g->out_size);
    else
        pool_plane_generic(g, plane, job->x, job->y, job->indices);
}

static lens_status pool_run_common(op_call *call, int is_max) {
    pool_geom g;
    lens_status st = pool_parse(call, is_max, &g);
    if (st) return st;
    pool_job job = {&g, call->inputs[0]->data, call->outputs[0]->data,
                    g.want_indices ? call->outputs[1]->data : NULL};
    if (!job.x || !job.y || (g.want_indices && !job.indices))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: missing tensor data", is_max ? "MaxPool" : "AveragePool");
    core_pool_run(call->pool, g.planes, pool_task, &job);
    return LENS_OK;
}

static lens_status maxpool_run(op_call *call) { return pool_run_common(call, 1); }
static lens_status avgpool_run(op_call *call) { return pool_run_common(call, 0); }

/* ---- Global pools ------------------------------------------------------------------------------------------------ */

static lens_status global_infer(op_call *call, const char *op) {
    if (call->n_inputs < 1 || !call->inputs[0] || call->n_outputs < 1 || !call->outputs[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s needs input X and output Y", op);
    const tensor *x = call->inputs[0];
    if (x->dtype != LENS_DTYPE_FLOAT32)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s input X has dtype %s; only float32 is supported", op,
                         dtype_name(x->dtype));
    char sx[96];
    if (x->rank < 2 || x->dims[0] < 0 || x->dims[1] < 0)
        return core_fail(LENS_ERR_SHAPE, "%s input X %s needs rank >= 2 (N, C, spatial...)", op,
                         tensor_shape_string(x, sx, sizeof sx));
    int64_t dims[TENSOR_MAX_RANK];
    for (int i = 0; i < x->rank; i++) dims[i] = i < 2 ? x->dims[i] : 1;
    ops_set_shape(call->outputs[0], LENS_DTYPE_FLOAT32, x->rank, dims);
    return LENS_OK;
}

static lens_status global_avg_infer(op_call *call) { return global_infer(call, "GlobalAveragePool"); }
static lens_status global_max_infer(op_call *call) { return global_infer(call, "GlobalMaxPool"); }

typedef float pool_v4f __attribute__((vector_size(16)));

static inline pool_v4f pool_load(const float *p) {
    pool_v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The sum of x[0 .. n): 32 partial sums in eight 4-float vectors, eight independent add chains that keep the loads
 * coming (the two chains that eight scalar sums compile to left the SE blocks' pools latency-bound), and less
 * rounding drift on large planes. Named accumulators, not an array: an array is zeroed with rep stos per call,
 * which costs more than a 7x7 plane's adds. */
static float pool_sum(const float *x, int64_t n) {
    pool_v4f s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, s4 = {0}, s5 = {0}, s6 = {0}, s7 = {0};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 += pool_load(x + i), s1 += pool_load(x + i + 4), s2 += pool_load(x + i + 8);
        s3 += pool_load(x + i + 12), s4 += pool_load(x + i + 16), s5 += pool_load(x + i + 20);
        s6 += pool_load(x + i + 24), s7 += pool_load(x + i + 28);
    }
    for (; i + 8 <= n; i += 8) s0 += pool_load(x + i), s1 += pool_load(x + i + 4); /* most of a 7x7 plane */
    if (i + 4 <= n) s2 += pool_load(x + i), i += 4;
    float s = 0;
    for (; i < n; i++) s += x[i];
    s0 = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
    return s + ((s0[0] + s0[1]) + (s0[2] + s0[3]));
}

typedef struct global_job {
    const float *x;
    float *y;
    int64_t size, planes, per_task;
    int is_max;
} global_job;

static void global_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const global_job *job = ctx;
    int64_t p0 = task * job->per_task, p1 = p0 + job->per_task < job->planes ? p0 + job->per_task : job->planes;
    for (int64_t p = p0; p < p1; p++) {
        const float *x = job->x + p * job->size;
        if (job->is_max) {
            float m = job->size ? x[0] : -FLT_MAX;
            for (int64_t i = 1; i < job->size; i++) m = x[i] > m ? x[i] : m;
            job->y[p] = m;
        } else {
            job->y[p] = job->size ? pool_sum(x, job->size) / (float)job->size : 0.0f;
        }
    }
}

static lens_status global_run(op_call *call, int is_max) {
    lens_status st = global_infer(call, is_max ? "GlobalMaxPool" : "GlobalAveragePool");
    if (st) return st;
    const tensor *x = call->inputs[0];
    if (!x->data || !call->outputs[0]->data)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: missing tensor data", is_max ? "GlobalMaxPool" :
                         "GlobalAveragePool");
    global_job job = {x->data, call->outputs[0]->data, 1, x->dims[0] * x->dims[1], 1, is_max};
    for (int i = 2; i < x->rank; i++) job.size *= x->dims[i];
    /* Tasks of at least ~16K elements so tiny planes are not spread one per task. */
    job.per_task = job.size ? 16384 / job.size + 1 : job.planes;
    if (job.per_task < 1) job.per_task = 1;
    int64_t tasks = job.planes ? (job.planes + job.per_task - 1) / job.per_task : 0;
    core_pool_run(call->pool, tasks, global_task, &job);
    return LENS_OK;
}

static lens_status global_avg_run(op_call *call) { return global_run(call, 0); }
static lens_status global_max_run(op_call *call) { return global_run(call, 1); }

const op_def ops_table_pool[] = {
    {"", "MaxPool", maxpool_infer, maxpool_run, NULL, NULL, NULL},
    {"", "AveragePool", avgpool_infer, avgpool_run, NULL, NULL, NULL},
    {"", "GlobalAveragePool", global_avg_infer, global_avg_run, NULL, NULL, NULL},
    {"", "GlobalMaxPool", global_max_infer, global_max_run, NULL, NULL, NULL},
    {0},
};
