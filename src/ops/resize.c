/* resize.c — Resize (opsets 10 to 19) and the deprecated Upsample. Each resized axis gets a table of taps (input
 * index, weight) per output coordinate, from the coordinate transformation and the interpolation mode (nearest,
 * linear, cubic, antialiased linear/cubic); the output is the tensor product of those tables. Linear and cubic
 * compute in float32; nearest moves elements of any fixed-size type. Touches only the tensors of its call. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

typedef enum resize_mode { RESIZE_NEAREST, RESIZE_LINEAR, RESIZE_CUBIC } resize_mode;

typedef enum coord_mode {
    COORD_HALF_PIXEL,
    COORD_HALF_PIXEL_SYMMETRIC,
    COORD_PYTORCH_HALF_PIXEL,
    COORD_ALIGN_CORNERS,
    COORD_ASYMMETRIC,
    COORD_TF_HALF_PIXEL_FOR_NN,
    COORD_TF_CROP_AND_RESIZE
} coord_mode;

typedef enum nearest_mode {
    NEAREST_ROUND_PREFER_FLOOR,
    NEAREST_ROUND_PREFER_CEIL,
    NEAREST_FLOOR,
    NEAREST_CEIL,
    NEAREST_SIMPLE /* Resize-10 and Upsample: truncate when enlarging, ceil when shrinking (as ONNX Runtime) */
} nearest_mode;

typedef struct resize_params {
    resize_mode mode;
    coord_mode coord;
    nearest_mode nearest;
    double cubic_a;
    bool exclude_outside, antialias;
    float extrapolation;
    int rank;
    double scale[TENSOR_MAX_RANK];
    double roi_start[TENSOR_MAX_RANK], roi_end[TENSOR_MAX_RANK];
    int64_t out_dims[TENSOR_MAX_RANK];
} resize_params;

/* Antialiased taps grow as 1/scale; past this many per coordinate the request is refused. */
#define RESIZE_MAX_TAPS 4096

static const tensor *input_at(const op_call *call, int i) {
    const tensor *t = i < call->n_inputs ? call->inputs[i] : NULL;
    return t && tensor_numel(t) > 0 ? t : NULL; /* an empty tensor stands for an omitted input */
}

static bool is_float_dtype(lens_dtype d) {
    return d == LENS_DTYPE_FLOAT32 || d == LENS_DTYPE_FLOAT64 || d == LENS_DTYPE_FLOAT16 || d == LENS_DTYPE_BFLOAT16;
}

/* ==== Parameters and output shape ================================================================================ */

static lens_status parse_modes(const op_call *call, const char *op, bool legacy, resize_params *p) {
    const op_node *node = call->node;
    const char *mode = op_attr_string(node, "mode", "nearest");
    if (!strcmp(mode, "nearest")) p->mode = RESIZE_NEAREST;
    else if (!strcmp(mode, "linear") || (legacy && !strcmp(mode, "bilinear"))) p->mode = RESIZE_LINEAR;
    else if (!strcmp(mode, "cubic") && !legacy) p->mode = RESIZE_CUBIC;
    else return core_fail(LENS_ERR_UNSUPPORTED, "%s: mode '%s' is not supported", op, mode);
    p->cubic_a = op_attr_float(node, "cubic_coeff_a", -0.75f);
    p->exclude_outside = op_attr_int(node, "exclude_outside", 0) != 0;
    p->antialias = op_attr_int(node, "antialias", 0) != 0;
    p->extrapolation = op_attr_float(node, "extrapolation_value", 0.0f);
    if (legacy) { /* before opset 11 the coordinates were asymmetric and there was no nearest_mode */
        p->coord = COORD_ASYMMETRIC;
        p->nearest = NEAREST_SIMPLE;
        return LENS_OK;
    }
    static const struct { const char *name; coord_mode mode; } coords[] = {
        {"half_pixel", COORD_HALF_PIXEL},           {"half_pixel_symmetric", COORD_HALF_PIXEL_SYMMETRIC},
        {"pytorch_half_pixel", COORD_PYTORCH_HALF_PIXEL}, {"align_corners", COORD_ALIGN_CORNERS},
        {"asymmetric", COORD_ASYMMETRIC},           {"tf_half_pixel_for_nn", COORD_TF_HALF_PIXEL_FOR_NN},
        {"tf_crop_and_resize", COORD_TF_CROP_AND_RESIZE},
    };
    const char *coord = op_attr_string(node, "coordinate_transformation_mode", "half_pixel");
    size_t i;
    for (i = 0; i < sizeof coords / sizeof *coords; i++)
        if (!strcmp(coords[i].name, coord)) break;
    if (i == sizeof coords / sizeof *coords)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: coordinate_transformation_mode '%s' is not supported", op, coord);
    p->coord = coords[i].mode;
    static const char *const nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    const char *nm = op_attr_string(node, "nearest_mode", "round_prefer_floor");
    for (i = 0; i < sizeof nearest / sizeof *nearest; i++)
        if (!strcmp(nearest[i], nm)) break;
    if (i == sizeof nearest / sizeof *nearest)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: nearest_mode '%s' is not supported", op, nm);
    p->nearest = (nearest_mode)i;
    return LENS_OK;
}

/* Reads a float vector input (scales, roi) of exactly n values. */
static lens_status read_floats(const tensor *t, const char *op, const char *what, int n, double *out) {
    if (!t->data) return core_fail(LENS_ERR_UNSUPPORTED, "%s: %s input must be constant", op, what);
    if (!is_float_dtype(t->dtype))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: %s must be a float tensor, not %s", op, what,
                         dtype_name(t->dtype));
    if (tensor_numel(t) != n)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: %s has %lld values, expected %d", op, what,
                         (long long)tensor_numel(t), n);
    for (int i = 0; i < n; i++) out[i] = tensor_get_double(t, i);
    return LENS_OK;
}

/* for_run: read inputs that only affect values (roi); infer leaves them, since they may be unknown when planning. */
static lens_status resize_params_make(const op_call *call, bool for_run, resize_params *p) {
    const op_node *node = call->node;
    bool upsample = !strcmp(node->op_type, "Upsample");
    const char *op = upsample ? "Upsample" : "Resize";
    if (call->n_inputs < 1 || !call->inputs[0] || call->n_outputs < 1 || !call->outputs[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: input or output is missing", op);
    const tensor *x = call->inputs[0];
    if (x->rank < 1 || x->rank > TENSOR_MAX_RANK || tensor_numel(x) < 0)
        return core_fail(LENS_ERR_SHAPE, "%s: input must have rank 1 to %d", op, TENSOR_MAX_RANK);
    int r = x->rank;
    p->rank = r;
    bool legacy = upsample || node->opset < 11;
    lens_status st = parse_modes(call, op, legacy, p);
    if (st) return st;

    /* Which axes the scales/sizes/roi talk about (opset 18 "axes"; all of them otherwise). */
    int axes[TENSOR_MAX_RANK], n_axes = r;
    for (int k = 0; k < r; k++) axes[k] = k;
    const int64_t *attr_axes;
    size_t n_attr_axes = op_attr_ints(node, "axes", &attr_axes);
    if (attr_axes && !upsample) {
        if (n_attr_axes > (size_t)r) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: too many axes", op);
        bool seen[TENSOR_MAX_RANK] = {false};
        n_axes = (int)n_attr_axes;
        for (int i = 0; i < n_axes; i++) {
            if ((st = ops_normalize_axis(attr_axes[i], r, &axes[i]))) return core_fail_context(st, "%s", op);
            if (seen[axes[i]]) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: axis %d appears twice", op, axes[i]);
            seen[axes[i]] = true;
        }
    }
    for (int k = 0; k < r; k++) {
        p->scale[k] = 1;
        p->out_dims[k] = x->dims[k];
        p->roi_start[k] = 0;
        p->roi_end[k] = 1;
    }

    double values[2 * TENSOR_MAX_RANK];
    const tensor *scales = NULL, *sizes = NULL, *roi = NULL;
    if (upsample && node->opset < 7) {
        /* Upsample-1: height_scale and width_scale on the two innermost axes */
        if (r < 2) return core_fail(LENS_ERR_SHAPE, "Upsample: input must have rank >= 2");
        p->scale[r - 2] = op_attr_float(node, "height_scale", 1);
        p->scale[r - 1] = op_attr_float(node, "width_scale", 1);
    } else if (upsample && node->opset < 9) {
        const float *attr_scales;
        size_t n = op_attr_floats(node, "scales", &attr_scales);
        if (n != (size_t)r)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Upsample: scales has %zu values for rank %d", n, r);
        for (int k = 0; k < r; k++) p->scale[k] = attr_scales[k];
    } else {
        if (legacy) {
            scales = input_at(call, 1);
            if (!scales) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: scales input is missing", op);
        } else {
            roi = input_at(call, 1);
            scales = input_at(call, 2);
            sizes = input_at(call, 3);
            if (!scales == !sizes)
                return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: exactly one of scales and sizes must be given", op);
        }
        if (scales) {
            if ((st = read_floats(scales, op, "scales", n_axes, values))) return st;
            for (int i = 0; i < n_axes; i++) p->scale[axes[i]] = values[i];
        }
    }
    for (int k = 0; k < r; k++) {
        double s = p->scale[k];
        if (!(s > 0) || !isfinite(s) || (upsample && s < 1))
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: scale %g on axis %d is not valid", op, s, k);
        double out = floor((double)x->dims[k] * s);
        if (out > (double)((int64_t)1 << 48)) return core_fail(LENS_ERR_LIMIT, "%s: output is too large", op);
        p->out_dims[k] = (int64_t)out;
    }

    if (sizes) {
        if (!sizes->data) return core_fail(LENS_ERR_UNSUPPORTED, "%s: sizes input must be constant", op);
        if (sizes->dtype != LENS_DTYPE_INT64 || tensor_numel(sizes) != n_axes)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: sizes must hold %d int64 values", op, n_axes);
        const char *policy = op_attr_string(node, "keep_aspect_ratio_policy", "stretch");
        bool not_larger = !strcmp(policy, "not_larger"), not_smaller = !strcmp(policy, "not_smaller");
        if (!not_larger && !not_smaller && strcmp(policy, "stretch"))
            return core_fail(LENS_ERR_UNSUPPORTED, "%s: keep_aspect_ratio_policy '%s' is not supported", op, policy);
        double common = not_larger ? INFINITY : 0;
        for (int i = 0; i < n_axes; i++) {
            int64_t size = tensor_get_int(sizes, i), in = x->dims[axes[i]];
            if (size < 0 || size > ((int64_t)1 << 48))
                return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: size %lld is not valid", op, (long long)size);
            if (in == 0 && size != 0)
                return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: cannot resize an empty axis to %lld", op,
                                 (long long)size);
            double s = in ? (double)size / (double)in : 1;
            p->scale[axes[i]] = s;
            p->out_dims[axes[i]] = size;
            if (in && not_larger && s < common) common = s;
            if (in && not_smaller && s > common) common = s;
        }
        if (not_larger || not_smaller)
            for (int i = 0; i < n_axes; i++) {
                int64_t in = x->dims[axes[i]];
                if (!in) continue;
                p->scale[axes[i]] = common;
                p->out_dims[axes[i]] = (int64_t)floor(common * (double)in + 0.5);
            }
        for (int i = 0; i < n_axes; i++)
            if (p->scale[axes[i]] <= 0 && x->dims[axes[i]])
                return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: size 0 on a non-empty axis", op);
    }

    if (p->coord == COORD_TF_CROP_AND_RESIZE && roi && for_run) {
        if ((st = read_floats(roi, op, "roi", 2 * n_axes, values))) return st;
        for (int i = 0; i < n_axes; i++) {
            p->roi_start[axes[i]] = values[i];
            p->roi_end[axes[i]] = values[n_axes + i];
        }
    }
    return LENS_OK;
}

static lens_status resize_infer(op_call *call) {
    resize_params p;
    lens_status st = resize_params_make(call, false, &p);
    if (st) return st;
    const tensor *x = call->inputs[0];
    if (!dtype_size(x->dtype))
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: element type %s is not supported", call->node->op_type,
                         dtype_name(x->dtype));
    if (p.mode != RESIZE_NEAREST && x->dtype != LENS_DTYPE_FLOAT32)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: %s interpolation of %s is not supported", call->node->op_type,
                         p.mode == RESIZE_LINEAR ? "linear" : "cubic", dtype_name(x->dtype));
    ops_set_shape(call->outputs[0], x->dtype, x->rank, p.out_dims);
    if (tensor_bytes(call->outputs[0]) == SIZE_MAX)
        return core_fail(LENS_ERR_LIMIT, "%s: output is too large", call->node->op_type);
    return LENS_OK;
}

/* ==== Tap tables ================================================================================================= */

typedef struct axis_taps {
    int n;            /* taps per output coordinate */
    bool identity;    /* output coordinate o reads input o alone: the axis can be skipped */
    int64_t *index;   /* [out * n] input index, clamped into the axis */
    float *weight;    /* [out * n] */
    uint8_t *outside; /* [out] 1: the coordinate falls outside the crop (tf_crop_and_resize) */
} axis_taps;

/* Where output coordinate x lands in the input, per coordinate_transformation_mode. As in the ONNX reference (and
 * its backend test data), the resized length in align_corners and tf_crop_and_resize is scale * length, not the
 * rounded output size. */
static double original_coordinate(const resize_params *p, int axis, int64_t x_out, int64_t in_len) {
    double x = (double)x_out, s = p->scale[axis], len = (double)in_len, out_len = s * len;
    switch (p->coord) {
    case COORD_HALF_PIXEL: return (x + 0.5) / s - 0.5;
    case COORD_HALF_PIXEL_SYMMETRIC: {
        double adjustment = (double)p->out_dims[axis] / out_len, center = len / 2;
        return center * (1 - adjustment) + (x + 0.5) / s - 0.5;
    }
    case COORD_PYTORCH_HALF_PIXEL: return p->out_dims[axis] > 1 ? (x + 0.5) / s - 0.5 : 0;
    case COORD_ALIGN_CORNERS: return out_len > 1 ? x * (len - 1) / (out_len - 1) : 0;
    case COORD_ASYMMETRIC: return x / s;
    case COORD_TF_HALF_PIXEL_FOR_NN: return (x + 0.5) / s;
    case COORD_TF_CROP_AND_RESIZE: {
        double a = p->roi_start[axis], b = p->roi_end[axis];
        return out_len > 1 ? a * (len - 1) + x * (b - a) * (len - 1) / (out_len - 1) : 0.5 * (a + b) * (len - 1);
    }
    }
    return 0;
}

static double cubic_kernel(double x, double a) {
    x = fabs(x);
    if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
}

static int64_t nearest_index(double x, nearest_mode mode, double scale) {
    switch (mode) {
    case NEAREST_ROUND_PREFER_FLOOR: return (int64_t)(x == floor(x) + 0.5 ? floor(x) : floor(x + 0.5));
    case NEAREST_ROUND_PREFER_CEIL: return (int64_t)floor(x + 0.5);
    case NEAREST_FLOOR: return (int64_t)floor(x);
    case NEAREST_CEIL: return (int64_t)ceil(x);
    case NEAREST_SIMPLE: return scale < 1 ? (int64_t)ceil(x) : (int64_t)trunc(x);
    }
    return 0;
}

static int64_t clamp_index(int64_t i, int64_t len) { return i < 0 ? 0 : i >= len ? len - 1 : i; }

/* Taps for one coordinate: linear/cubic follow the ONNX reference, which takes the taps around
 * i = ceil(x) - 1 with ratio x - i in (0, 1]; antialiasing widens the kernel by 1/scale when shrinking. Out-of-range
 * taps read the edge, or are dropped and the rest renormalised with exclude_outside. */
static void coordinate_taps(const resize_params *p, int axis, double x, int64_t len, int n, int64_t *index,
                            float *weight) {
    double s = p->antialias && p->scale[axis] < 1 ? p->scale[axis] : 1;
    if (p->mode == RESIZE_NEAREST) {
        index[0] = clamp_index(nearest_index(x, p->nearest, p->scale[axis]), len);
        weight[0] = 1;
        return;
    }
    double w[RESIZE_MAX_TAPS], sum = 0, lead = p->mode == RESIZE_LINEAR ? 1 / s : 2 / s;
    int64_t base = (int64_t)ceil(x) - 1, first = (int64_t)floor(-lead) + 1;
    double ratio = x - (double)base;
    for (int t = 0; t < n; t++) {
        double arg = ((double)(first + t) - ratio) * s;
        w[t] = p->mode == RESIZE_LINEAR ? fmax(0, 1 - fabs(arg)) : cubic_kernel(arg, p->cubic_a);
        int64_t i = base + first + t;
        if (p->exclude_outside && (i < 0 || i >= len)) w[t] = 0;
        index[t] = clamp_index(i, len);
        sum += w[t];
    }
    bool normalise = s < 1 || p->exclude_outside;
    for (int t = 0; t < n; t++) weight[t] = (float)(normalise && sum != 0 ? w[t] / sum : w[t]);
}

static int taps_per_coordinate(const resize_params *p, int axis) {
    if (p->mode == RESIZE_NEAREST) return 1;
    double s = p->antialias && p->scale[axis] < 1 ? p->scale[axis] : 1;
    double lead = p->mode == RESIZE_LINEAR ? 1 / s : 2 / s;
    double n = 2 - 2 * (floor(-lead) + 1);
    return n > RESIZE_MAX_TAPS ? -1 : (int)n;
}

static void taps_free(axis_taps *t) {
    free(t->index);
    free(t->weight);
    free(t->outside);
}

/* Builds the table of one axis, then drops taps whose weight is 0 everywhere so that, for example, a linear
 * resize that hits input pixels exactly costs as much as a copy. */
static lens_status taps_build(const resize_params *p, int axis, int64_t in_len, axis_taps *t) {
    int64_t out = p->out_dims[axis];
    int n = taps_per_coordinate(p, axis);
    if (n < 0) return core_fail(LENS_ERR_LIMIT, "Resize: antialiasing scale on axis %d is too small", axis);
    memset(t, 0, sizeof *t);
    size_t count = (size_t)out * (size_t)n;
    t->index = malloc((count ? count : 1) * sizeof *t->index);
    t->weight = malloc((count ? count : 1) * sizeof *t->weight);
    t->outside = calloc(out ? (size_t)out : 1, 1);
    if (!t->index || !t->weight || !t->outside) {
        taps_free(t);
        return core_fail(LENS_ERR_OUT_OF_MEMORY, "Resize: out of memory");
    }
    int used = 1;
    for (int64_t o = 0; o < out; o++) {
        double x = original_coordinate(p, axis, o, in_len);
        /* a wild roi must not push indices past what int64 holds; NaN lands at the low end */
        if (!(x > -1e15)) x = -1e15;
        if (x > 1e15) x = 1e15;
        if (p->coord == COORD_TF_CROP_AND_RESIZE && (x < 0 || x > (double)(in_len - 1))) t->outside[o] = 1;
        int64_t *index = t->index + o * n;
        float *weight = t->weight + o * n;
        coordinate_taps(p, axis, x, in_len, n, index, weight);
        /* move the nonzero taps to the front */
        int k = 0;
        for (int j = 0; j < n; j++)
            if (weight[j] != 0) {
                index[k] = index[j];
                weight[k++] = weight[j];
            }
        for (int j = k; j < n; j++) {
            index[j] = index[0];
            weight[j] = 0;
        }
        if (k > used) used = k;
    }
    if (used < n) { /* compact to `used` taps per coordinate */
        for (int64_t o = 0; o < out; o++)
            for (int j = 0; j < used; j++) {
                t->index[o * used + j] = t->index[o * n + j];
                t->weight[o * used + j] = t->weight[o * n + j];
            }
        n = used;
    }
    t->n = n;
    t->identity = out == in_len && n == 1;
    for (int64_t o = 0; t->identity && o < out; o++)
        t->identity = t->index[o] == o && t->weight[o] == 1 && !t->outside[o];
    return LENS_OK;
}

/* ==== Run ======================================================================================================== */

/* h[o] = sum over taps of weight * src[index]: one row resampled along the last axis. The hot loop of linear and
 * cubic resizing. */
static void resample_row(float *restrict h, const float *restrict src, const axis_taps *tx, int64_t out_w) {
    const float *w = tx->weight;
    const int64_t *ix = tx->index;
    switch (tx->n) {
    case 1:
        for (int64_t o = 0; o < out_w; o++) h[o] = w[o] * src[ix[o]];
        break;
    case 2:
        for (int64_t o = 0; o < out_w; o++) h[o] = w[2 * o] * src[ix[2 * o]] + w[2 * o + 1] * src[ix[2 * o + 1]];
        break;
    case 4:
        for (int64_t o = 0; o < out_w; o++) {
            const float *wo = w + 4 * o;
            const int64_t *io = ix + 4 * o;
            h[o] = (wo[0] * src[io[0]] + wo[1] * src[io[1]]) + (wo[2] * src[io[2]] + wo[3] * src[io[3]]);
        }
        break;
    default: {
        int n = tx->n;
        for (int64_t o = 0; o < out_w; o++) {
            float sum = 0;
            for (int j = 0; j < n; j++) sum += w[o * n + j] * src[ix[o * n + j]];
            h[o] = sum;
        }
    }
    }
}

/* dst[o] = src[index[o]] for elements of es bytes; fixed-size memcpy compiles to single moves. */
static void gather_row(uint8_t *dst, const uint8_t *src, const int64_t *index, int64_t n, size_t es) {
    switch (es) {
    case 1: for (int64_t o = 0; o < n; o++) dst[o] = src[index[o]]; break;
    case 2: for (int64_t o = 0; o < n; o++) memcpy(dst + 2 * o, src + 2 * index[o], 2); break;
    case 4: for (int64_t o = 0; o < n; o++) memcpy(dst + 4 * o, src + 4 * index[o], 4); break;
    case 8: for (int64_t o = 0; o < n; o++) memcpy(dst + 8 * o, src + 8 * index[o], 8); break;
    default: for (int64_t o = 0; o < n; o++) memcpy(dst + (size_t)o * es, src + (size_t)index[o] * es, es); break;
    }
}

static void fill_row(uint8_t *dst, const uint8_t *value, int64_t n, size_t es) {
    for (int64_t o = 0; o < n; o++) memcpy(dst + (size_t)o * es, value, es);
}

typedef struct resize_job {
    const resize_params *p;
    const axis_taps *taps; /* [rank] */
    const tensor *x;
    tensor *y;
    int lead;              /* leading identity axes, folded into the row or plane index */
    size_t esize;
    uint8_t extrapolation[8];
    int64_t rows, rows_per_task, in_strides[TENSOR_MAX_RANK];
    float *buffers;        /* per thread: buffer_floats floats */
    size_t buffer_floats;
    /* plane path: tasks are (plane, chunk of output rows) */
    int64_t planes, chunks, chunk_rows;
} resize_job;

/* General path. Output rows are indexed over every axis but the last. For a row, the taps of the inner axes
 * (lead .. rank-2) form a product of input rows; each is resampled along the last axis and accumulated with its
 * weight. */
static void resize_rows(const resize_job *job, int64_t begin, int64_t end, int thread) {
    const resize_params *p = job->p;
    const tensor *x = job->x;
    int r = p->rank, last = r - 1;
    const axis_taps *tw = &job->taps[last];
    int64_t out_w = p->out_dims[last], previous = -1;
    size_t es = job->esize, row_bytes = (size_t)out_w * es;
    bool nearest = p->mode == RESIZE_NEAREST;
    float *acc = nearest ? NULL : job->buffers + (size_t)thread * job->buffer_floats, *h = acc ? acc + out_w : NULL;
    for (int64_t row = begin; row < end; row++) {
        uint8_t *dst = (uint8_t *)job->y->data + (size_t)row * row_bytes;
        /* coordinates of this row on axes 0 .. last-1 */
        int64_t coord[TENSOR_MAX_RANK], rest = row, base = 0;
        bool outside = false;
        for (int k = last - 1; k >= 0; k--) {
            coord[k] = rest % p->out_dims[k];
            rest /= p->out_dims[k];
            if (k < job->lead) base += coord[k] * job->in_strides[k];
            else outside |= job->taps[k].outside[coord[k]] != 0;
        }
        if (outside) {
            fill_row(dst, job->extrapolation, out_w, es);
            previous = -1;
            continue;
        }
        if (nearest) { /* one tap per axis: the row is a gather from one input row */
            int64_t offset = base;
            for (int k = job->lead; k < last; k++) offset += job->taps[k].index[coord[k]] * job->in_strides[k];
            if (offset == previous) { /* upsampling repeats input rows: copy the row just written */
                memcpy(dst, dst - row_bytes, row_bytes);
                continue;
            }
            const uint8_t *src = (const uint8_t *)x->data + (size_t)offset * es;
            if (tw->identity) memcpy(dst, src, row_bytes);
            else gather_row(dst, src, tw->index, out_w, es);
            for (int64_t o = 0; o < out_w; o++)
                if (tw->outside[o]) memcpy(dst + (size_t)o * es, job->extrapolation, es);
            previous = offset;
            continue;
        }
        /* odometer over the tap combinations of axes lead .. last-1 */
        int tap[TENSOR_MAX_RANK] = {0};
        memset(acc, 0, (size_t)out_w * sizeof *acc);
        for (;;) {
            int64_t offset = base;
            float w = 1;
            for (int k = job->lead; k < last; k++) {
                const axis_taps *t = &job->taps[k];
                size_t at = (size_t)coord[k] * (size_t)t->n + (size_t)tap[k];
                offset += t->index[at] * job->in_strides[k];
                w *= t->weight[at];
            }
            if (w != 0) {
                resample_row(h, (const float *)x->data + offset, tw, out_w);
                for (int64_t o = 0; o < out_w; o++) acc[o] += w * h[o];
            }
            int k = last - 1;
            for (; k >= job->lead; k--) {
                if (++tap[k] < job->taps[k].n) break;
                tap[k] = 0;
            }
            if (k < job->lead) break;
        }
        memcpy(dst, acc, row_bytes);
        for (int64_t o = 0; o < out_w; o++)
            if (tw->outside[o]) memcpy(dst + (size_t)o * es, job->extrapolation, es);
    }
}

/* Plane path (float, only the two innermost axes resized): each needed input row is resampled horizontally once
 * into a per-thread buffer, then output rows are weighted sums of those rows, a loop the compiler vectorises. */
static void resize_plane_rows(const resize_job *job, int64_t task, int thread) {
    const resize_params *p = job->p;
    int r = p->rank;
    const axis_taps *ty = &job->taps[r - 2], *tx = &job->taps[r - 1];
    int64_t in_h = job->x->dims[r - 2], in_w = job->x->dims[r - 1];
    int64_t out_h = p->out_dims[r - 2], out_w = p->out_dims[r - 1];
    int64_t plane = task / job->chunks, y0 = task % job->chunks * job->chunk_rows;
    int64_t y1 = y0 + job->chunk_rows < out_h ? y0 + job->chunk_rows : out_h;
    int n = ty->n;
    /* input rows this chunk reads */
    int64_t lo = in_h, hi = -1;
    for (int64_t y = y0; y < y1; y++)
        for (int j = 0; j < n; j++) {
            int64_t i = ty->index[y * n + j];
            if (i < lo) lo = i;
            if (i > hi) hi = i;
        }
    const float *src = (const float *)job->x->data + plane * in_h * in_w;
    float *out = (float *)job->y->data + plane * out_h * out_w;
    float *h = job->buffers + (size_t)thread * job->buffer_floats;
    for (int64_t i = lo; i <= hi; i++) resample_row(h + (i - lo) * out_w, src + i * in_w, tx, out_w);
    float extrapolation;
    memcpy(&extrapolation, job->extrapolation, sizeof extrapolation);
    for (int64_t y = y0; y < y1; y++) {
        float *restrict o = out + y * out_w;
        if (ty->outside[y]) {
            for (int64_t c = 0; c < out_w; c++) o[c] = extrapolation;
            continue;
        }
        const float *h0 = h + (ty->index[y * n] - lo) * out_w;
        float w0 = ty->weight[y * n];
        for (int64_t c = 0; c < out_w; c++) o[c] = w0 * h0[c];
        for (int j = 1; j < n; j++) {
            float w = ty->weight[y * n + j];
            if (w == 0) continue;
            const float *restrict hj = h + (ty->index[y * n + j] - lo) * out_w;
            for (int64_t c = 0; c < out_w; c++) o[c] += w * hj[c];
        }
        for (int64_t c = 0; c < out_w; c++)
            if (tx->outside[c]) o[c] = extrapolation;
    }
}

static void resize_task(void *ctx, int64_t task, int thread) {
    const resize_job *job = ctx;
    if (job->planes) {
        resize_plane_rows(job, task, thread);
        return;
    }
    int64_t begin = task * job->rows_per_task, end = begin + job->rows_per_task;
    resize_rows(job, begin, end < job->rows ? end : job->rows, thread);
}

/* The extrapolation value as one element of the output type. */
static void extrapolation_bytes(lens_dtype dtype, float value, uint8_t *out) {
    memset(out, 0, 8);
    switch (dtype) {
    case LENS_DTYPE_FLOAT32: memcpy(out, &value, 4); break;
    case LENS_DTYPE_FLOAT64: { double d = value; memcpy(out, &d, 8); } break;
    case LENS_DTYPE_FLOAT16: { uint16_t h = core_f32_to_f16(value); memcpy(out, &h, 2); } break;
    case LENS_DTYPE_BFLOAT16: { uint16_t h = core_f32_to_bf16(value); memcpy(out, &h, 2); } break;
    default: {
        /* integers: truncate, staying inside int32 so the conversion is defined */
        int64_t i = value != value ? 0 : value > 2e9f ? 2000000000 : value < -2e9f ? -2000000000 : (int64_t)value;
        size_t size = dtype_size(dtype);
        for (size_t b = 0; b < size && b < 8; b++) out[b] = (uint8_t)((uint64_t)i >> (8 * b));
        break;
    }
    }
}

#define RESIZE_PLANE_MAX_BYTES ((double)(1 << 26))
/* Below this many output bytes the pool is not worth waking. */
#define RESIZE_PARALLEL_MIN_BYTES ((size_t)1 << 18)

static lens_status resize_run(op_call *call) {
    resize_params p;
    lens_status st = resize_params_make(call, true, &p);
    if (st) return st;
    const tensor *x = call->inputs[0];
    tensor *y = call->outputs[0];
    size_t es = dtype_size(x->dtype);
    if (!es || (p.mode != RESIZE_NEAREST && x->dtype != LENS_DTYPE_FLOAT32))
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: element type %s is not supported here", call->node->op_type,
                         dtype_name(x->dtype));
    for (int k = 0; k < p.rank; k++)
        if (y->dims[k] != p.out_dims[k]) return core_fail(LENS_ERR_SHAPE, "Resize: output shape does not match");
    int64_t numel = tensor_numel(y);
    if (numel == 0) return LENS_OK;
    if (tensor_numel(x) == 0) return core_fail(LENS_ERR_SHAPE, "Resize: input is empty but output is not");

    axis_taps taps[TENSOR_MAX_RANK];
    int built = 0;
    for (; built < p.rank; built++)
        if ((st = taps_build(&p, built, x->dims[built], &taps[built]))) break;
    resize_job job = {.p = &p, .taps = taps, .x = x, .y = y, .esize = es};
    int r = p.rank, threads = core_pool_size(call->pool);
    bool parallel = threads > 1 && (size_t)numel * es >= RESIZE_PARALLEL_MIN_BYTES;
    int64_t tasks = 1, out_w = p.out_dims[r - 1];
    if (!st) {
        int64_t stride = 1;
        for (int k = r - 1; k >= 0; k--) {
            job.in_strides[k] = stride;
            stride *= x->dims[k];
        }
        while (job.lead < r - 1 && taps[job.lead].identity) job.lead++;
        extrapolation_bytes(x->dtype, p.extrapolation, job.extrapolation);
        /* the plane path buffers one resampled copy of the input rows per thread; past that size, go row by row */
        bool plane = p.mode != RESIZE_NEAREST && r >= 2 && job.lead >= r - 2 &&
                     (double)x->dims[r - 2] * (double)out_w * sizeof(float) <= RESIZE_PLANE_MAX_BYTES;
        if (plane) {
            int64_t out_h = p.out_dims[r - 2];
            job.planes = numel / (out_h * out_w);
            job.chunks = parallel && job.planes < 4 * threads ? (4 * threads + job.planes - 1) / job.planes : 1;
            if (job.chunks > out_h) job.chunks = out_h;
            job.chunk_rows = (out_h + job.chunks - 1) / job.chunks;
            job.chunks = (out_h + job.chunk_rows - 1) / job.chunk_rows;
            job.buffer_floats = (size_t)x->dims[r - 2] * (size_t)out_w;
            tasks = job.planes * job.chunks;
        } else {
            job.rows = numel / out_w;
            job.buffer_floats = p.mode == RESIZE_NEAREST ? 0 : 2 * (size_t)out_w;
            tasks = parallel ? (job.rows < 8 * threads ? job.rows : 8 * threads) : 1;
            job.rows_per_task = (job.rows + tasks - 1) / tasks;
            tasks = (job.rows + job.rows_per_task - 1) / job.rows_per_task;
        }
        if (job.buffer_floats) {
            size_t total;
            if (!core_mul_size(job.buffer_floats, (size_t)threads * sizeof(float), &total) ||
                !(job.buffers = malloc(total)))
                st = core_fail(LENS_ERR_OUT_OF_MEMORY, "Resize: out of memory");
        }
    }
    if (!st) core_pool_run(parallel ? call->pool : NULL, tasks, resize_task, &job);
    free(job.buffers);
    for (int k = 0; k < built; k++) taps_free(&taps[k]);
    return st;
}

const op_def ops_table_resize[] = {
    {"", "Resize", resize_infer, resize_run, NULL, NULL, NULL},
    {"", "Upsample", resize_infer, resize_run, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
