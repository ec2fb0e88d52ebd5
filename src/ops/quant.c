/* quant.c — the quantized ops. ai.onnx: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearConv,
 * ConvInteger, QLinearMatMul, MatMulInteger. com.microsoft: QLinearAdd, QLinearMul, QLinearGlobalAveragePool,
 * QLinearSigmoid, QLinearLeakyRelu, QLinearConcat. The arithmetic follows ONNX Runtime's CPU kernels (float
 * requantization multipliers, round half to even, saturation) so quantized models reproduce its outputs; convolutions
 * and matrix products run on the int32-accumulating kernels of kernels/qgemm.h. Touches only its call's tensors. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/qgemm.h"
#include "ops.h"

/* ==== Shared helpers ============================================================================================= */

static const tensor *input_at(const op_call *call, int i) { return i < call->n_inputs ? call->inputs[i] : NULL; }

static lens_status require_input(const op_call *call, int i, const char *name, const tensor **out) {
    const tensor *t = input_at(call, i);
    if (!t) return core_fail(LENS_ERR_INVALID_ARGUMENT, "input %d (%s) is required", i, name);
    *out = t;
    return LENS_OK;
}

static lens_status require_outputs(const op_call *call, int n) {
    if (call->n_outputs < n) return core_fail(LENS_ERR_INVALID_ARGUMENT, "expected %d outputs, got %d", n, call->n_outputs);
    for (int i = 0; i < n; i++)
        if (!call->outputs[i]) return core_fail(LENS_ERR_INVALID_ARGUMENT, "output %d is missing", i);
    return LENS_OK;
}

static int is_q8(lens_dtype t) { return t == LENS_DTYPE_UINT8 || t == LENS_DTYPE_INT8; }

/* The representable range of an integer quantized type; 0 when the type is not one. */
static int quant_range(lens_dtype t, int32_t *lo, int32_t *hi) {
    switch (t) {
    case LENS_DTYPE_UINT8: *lo = 0, *hi = 255; return 1;
    case LENS_DTYPE_INT8: *lo = -128, *hi = 127; return 1;
    case LENS_DTYPE_UINT16: *lo = 0, *hi = 65535; return 1;
    case LENS_DTYPE_INT16: *lo = -32768, *hi = 32767; return 1;
    default: return 0;
    }
}

/* Reads a per-tensor scale: a float32 tensor of one element whose value is known. */
static lens_status read_scale(const tensor *t, const char *name, float *out) {
    if (!t) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s is required", name);
    if (t->dtype != LENS_DTYPE_FLOAT32)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s has type %s; only float32 scales are supported", name,
                         dtype_name(t->dtype));
    if (tensor_numel(t) != 1) return core_fail(LENS_ERR_UNSUPPORTED, "%s must be a scalar", name);
    if (!t->data) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s has no data", name);
    *out = ((const float *)t->data)[0];
    return LENS_OK;
}

/* Reads a per-tensor zero point of type expect (any 8-bit type when UNDEFINED); 0 when the input is omitted. */
static lens_status read_zero_point(const tensor *t, lens_dtype expect, const char *name, int32_t *out) {
    *out = 0;
    if (!t) return LENS_OK;
    if (expect != LENS_DTYPE_UNDEFINED ? t->dtype != expect : !is_q8(t->dtype))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s has type %s, expected %s", name, dtype_name(t->dtype),
                         dtype_name(expect != LENS_DTYPE_UNDEFINED ? expect : LENS_DTYPE_UINT8));
    if (tensor_numel(t) != 1) return core_fail(LENS_ERR_UNSUPPORTED, "%s must be a scalar", name);
    if (!t->data) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s has no data", name);
    *out = (int32_t)tensor_get_int(t, 0);
    return LENS_OK;
}

/* Checks a quantization parameter's type and that it has 1 or `count` elements (per-tensor or per-channel). */
static lens_status check_param(const tensor *t, lens_dtype dtype, int64_t count, const char *name) {
    if (!t) return LENS_OK;
    if (t->dtype != dtype)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s has type %s, expected %s", name, dtype_name(t->dtype),
                         dtype_name(dtype));
    int64_t n = tensor_numel(t);
    if (n != 1 && n != count)
        return core_fail(LENS_ERR_SHAPE, "%s has %lld elements, expected 1 or %lld", name, (long long)n,
                         (long long)count);
    return LENS_OK;
}

/* ONNX Runtime's quantization of one value: x / scale, clamped to the range, rounded half to even, plus zero point. */
static inline int32_t quantize_one(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
    float f = x / scale;
    float fl = (float)(lo - zp), fh = (float)(hi - zp);
    if (!(f >= fl)) f = fl; /* NaN included */
    if (f > fh) f = fh;
    return (int32_t)nearbyintf(f) + zp;
}

static void store_int(void *data, lens_dtype t, size_t i, int32_t v) {
    switch (t) {
    case LENS_DTYPE_UINT8: ((uint8_t *)data)[i] = (uint8_t)v; break;
    case LENS_DTYPE_INT8: ((int8_t *)data)[i] = (int8_t)v; break;
    case LENS_DTYPE_UINT16: ((uint16_t *)data)[i] = (uint16_t)v; break;
    case LENS_DTYPE_INT16: ((int16_t *)data)[i] = (int16_t)v; break;
    default: ((int32_t *)data)[i] = v; break;
    }
}

static int32_t load_int(const void *data, lens_dtype t, size_t i) {
    switch (t) {
    case LENS_DTYPE_UINT8: return ((const uint8_t *)data)[i];
    case LENS_DTYPE_INT8: return ((const int8_t *)data)[i];
    case LENS_DTYPE_UINT16: return ((const uint16_t *)data)[i];
    case LENS_DTYPE_INT16: return ((const int16_t *)data)[i];
    default: return ((const int32_t *)data)[i];
    }
}

/* Scratch memory: the call's own when big enough, else a heap block the caller frees with scratch_release. */
static void *scratch_take(const op_call *call, size_t bytes, int *owned) {
    *owned = 0;
    if (bytes == 0) bytes = 64;
    if (call->scratch && call->scratch_bytes >= bytes) return call->scratch;
    *owned = 1;
    return core_aligned_alloc(bytes);
}

static void scratch_release(void *p, int owned) {
    if (owned) core_aligned_free(p);
}

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Bytes of a per-op scratch area: shared part plus one slice per thread; 0 on overflow. */
static size_t scratch_total(size_t shared, size_t per_thread, int threads) {
    size_t total;
    if (!core_mul_size(round_up(per_thread, 64), (size_t)(threads > 0 ? threads : 1), &total) ||
        !core_add_size(total, round_up(shared, 64), &total))
        return 0;
    return total;
}

/* ==== QuantizeLinear / DequantizeLinear ========================================================================== */

/* Resolves the per-tensor or per-axis layout of scale against x: count == 1 for per-tensor, else x is viewed as
 * [outer, count, inner]. */
static lens_status axis_layout(const op_call *call, const tensor *x, const tensor *scale, size_t *outer,
                               size_t *count, size_t *inner) {
    int64_t n = tensor_numel(scale);
    if (op_attr_int(call->node, "block_size", 0) > 0)
        return core_fail(LENS_ERR_UNSUPPORTED, "blocked quantization (block_size) is not supported");
    int64_t numel = tensor_numel(x);
    if (numel < 0) return core_fail(LENS_ERR_SHAPE, "input has invalid dimensions");
    if (n == 1) {
        *outer = 1, *count = 1, *inner = (size_t)numel;
        return LENS_OK;
    }
    if (scale->rank != 1)
        return core_fail(LENS_ERR_SHAPE, "scale must be a scalar or a 1-D tensor, got rank %d", scale->rank);
    int axis;
    lens_status st = ops_normalize_axis(op_attr_int(call->node, "axis", 1), x->rank, &axis);
    if (st) return st;
    if (x->rank == 0 || x->dims[axis] != n)
        return core_fail(LENS_ERR_SHAPE, "scale has %lld elements but axis %d of the input has %lld", (long long)n,
                         axis, x->rank ? (long long)x->dims[axis] : 0LL);
    size_t o = 1, in = 1;
    for (int i = 0; i < axis; i++) o *= (size_t)x->dims[i];
    for (int i = axis + 1; i < x->rank; i++) in *= (size_t)x->dims[i];
    *outer = o, *count = (size_t)n, *inner = in;
    return LENS_OK;
}

static lens_status quantize_out_type(const op_call *call, lens_dtype *out) {
    const tensor *zp = input_at(call, 2);
    lens_dtype t = zp ? zp->dtype : (lens_dtype)op_attr_int(call->node, "output_dtype", LENS_DTYPE_UINT8);
    if (t == LENS_DTYPE_UNDEFINED) t = LENS_DTYPE_UINT8;
    int32_t lo = 0, hi = 0;
    if (!quant_range(t, &lo, &hi))
        return core_fail(LENS_ERR_UNSUPPORTED, "quantizing to %s is not supported", dtype_name(t));
    *out = t;
    return LENS_OK;
}

static lens_status quantize_infer(op_call *call) {
    const tensor *x = NULL, *scale = NULL;
    lens_status st;
    if ((st = require_input(call, 0, "x", &x)) || (st = require_input(call, 1, "y_scale", &scale)) ||
        (st = require_outputs(call, 1)))
        return st;
    if (x->dtype != LENS_DTYPE_FLOAT32)
        return core_fail(LENS_ERR_UNSUPPORTED, "QuantizeLinear of %s is not supported", dtype_name(x->dtype));
    lens_dtype t = LENS_DTYPE_UNDEFINED;
    if ((st = quantize_out_type(call, &t))) return st;
    size_t outer, count, inner;
    if ((st = check_param(scale, LENS_DTYPE_FLOAT32, tensor_numel(scale), "y_scale")) ||
        (st = axis_layout(call, x, scale, &outer, &count, &inner)) ||
        (st = check_param(input_at(call, 2), t, (int64_t)count, "y_zero_point")))
        return st;
    if (input_at(call, 2) && tensor_numel(input_at(call, 2)) != (int64_t)count)
        return core_fail(LENS_ERR_SHAPE, "y_zero_point and y_scale differ in size");
    ops_set_shape(call->outputs[0], t, x->rank, x->dims);
    return LENS_OK;
}

static lens_status quantize_run(op_call *call) {
    lens_status st = quantize_infer(call);
    if (st) return st;
    const tensor *x = call->inputs[0], *scale = call->inputs[1], *zp = input_at(call, 2);
    tensor *y = call->outputs[0];
    if (!scale->data || (zp && !zp->data)) return core_fail(LENS_ERR_INVALID_ARGUMENT, "quantization parameters have no data");
    size_t outer, count, inner;
    if ((st = axis_layout(call, x, scale, &outer, &count, &inner))) return st;
    int32_t lo = 0, hi = 0;
    quant_range(y->dtype, &lo, &hi);
    const float *xs = x->data, *sc = scale->data;
    size_t i = 0;
    for (size_t o = 0; o < outer; o++)
        for (size_t c = 0; c < count; c++, i += inner) {
            float s = sc[c];
            int32_t z = zp ? load_int(zp->data, zp->dtype, c) : 0;
            if (is_q8(y->dtype)) {
                kern_quantize_f32(xs + i, inner, s, z, lo, hi, (uint8_t *)y->data + i);
                continue;
            }
            for (size_t k = 0; k < inner; k++) store_int(y->data, y->dtype, i + k, quantize_one(xs[i + k], s, z, lo, hi));
        }
    return LENS_OK;
}

static lens_status dequantize_infer(op_call *call) {
    const tensor *x = NULL, *scale = NULL;
    lens_status st;
    if ((st = require_input(call, 0, "x", &x)) || (st = require_input(call, 1, "x_scale", &scale)) ||
        (st = require_outputs(call, 1)))
        return st;
    int32_t lo = 0, hi = 0;
    if (!quant_range(x->dtype, &lo, &hi) && x->dtype != LENS_DTYPE_INT32)
        return core_fail(LENS_ERR_UNSUPPORTED, "DequantizeLinear of %s is not supported", dtype_name(x->dtype));
    size_t outer, count, inner;
    if ((st = check_param(scale, LENS_DTYPE_FLOAT32, tensor_numel(scale), "x_scale")) ||
        (st = axis_layout(call, x, scale, &outer, &count, &inner)) ||
        (st = check_param(input_at(call, 2), x->dtype, (int64_t)count, "x_zero_point")))
        return st;
    if (input_at(call, 2) && tensor_numel(input_at(call, 2)) != (int64_t)count)
        return core_fail(LENS_ERR_SHAPE, "x_zero_point and x_scale differ in size");
    ops_set_shape(call->outputs[0], LENS_DTYPE_FLOAT32, x->rank, x->dims);
    return LENS_OK;
}

static lens_status dequantize_run(op_call *call) {
    lens_status st = dequantize_infer(call);
    if (st) return st;
    const tensor *x = call->inputs[0], *scale = call->inputs[1], *zp = input_at(call, 2);
    if (!scale->data || (zp && !zp->data)) return core_fail(LENS_ERR_INVALID_ARGUMENT, "quantization parameters have no data");
    size_t outer, count, inner;
    if ((st = axis_layout(call, x, scale, &outer, &count, &inner))) return st;
    const float *sc = scale->data;
    float *y = call->outputs[0]->data;
    size_t i = 0;
    for (size_t o = 0; o < outer; o++)
        for (size_t c = 0; c < count; c++) {
            float s = sc[c];
            int64_t z = zp ? load_int(zp->data, zp->dtype, c) : 0;
            for (size_t k = 0; k < inner; k++, i++) y[i] = (float)((int64_t)load_int(x->data, x->dtype, i) - z) * s;
        }
    return LENS_OK;
}

/* ==== DynamicQuantizeLinear ====================================================================================== */

static lens_status dynquant_infer(op_call *call) {
    const tensor *x = NULL;
    lens_status st;
    if ((st = require_input(call, 0, "x", &x)) || (st = require_outputs(call, 3))) return st;
    if (x->dtype != LENS_DTYPE_FLOAT32)
        return core_fail(LENS_ERR_UNSUPPORTED, "DynamicQuantizeLinear of %s is not supported", dtype_name(x->dtype));
    if (tensor_numel(x) < 0) return core_fail(LENS_ERR_SHAPE, "input has invalid dimensions");
    ops_set_shape(call->outputs[0], LENS_DTYPE_UINT8, x->rank, x->dims);
    ops_set_shape(call->outputs[1], LENS_DTYPE_FLOAT32, 0, NULL);
    ops_set_shape(call->outputs[2], LENS_DTYPE_UINT8, 0, NULL);
    return LENS_OK;
}

static lens_status dynquant_run(op_call *call) {
    lens_status st = dynquant_infer(call);
    if (st) return st;
    const tensor *x = call->inputs[0];
    size_t n = (size_t)tensor_numel(x);
    const float *xs = x->data;
    /* As ONNX Runtime: the range always includes 0; an empty or all-zero range gives scale 1. */
    float mn = 0.0f, mx = 0.0f;
    for (size_t i = 0; i < n; i++) {
        mn = xs[i] < mn ? xs[i] : mn;
        mx = xs[i] > mx ? xs[i] : mx;
    }
    float scale = mx == mn ? 1.0f : (mx - mn) / 255.0f;
    float zpf = 0.0f - mn / scale;
    zpf = zpf < 0.0f ? 0.0f : zpf > 255.0f ? 255.0f : zpf;
    int32_t zp = (int32_t)nearbyintf(zpf);
    kern_quantize_f32(xs, n, scale, zp, 0, 255, call->outputs[0]->data);
    *(float *)call->outputs[1]->data = scale;
    *(uint8_t *)call->outputs[2]->data = (uint8_t)zp;
    return LENS_OK;
}

/* ==== Convolution geometry (QLinearConv, ConvInteger) ============================================================ */

typedef struct conv_geom {
    int64_t batch, in_c, in_h, in_w, out_c, out_h, out_w;
    int64_t kernel_h, kernel_w, stride_h, stride_w, dil_h, dil_w, pad_t, pad_l;
    int64_t group, in_cg, out_cg, k; /* k = in_cg * kernel_h * kernel_w: the GEMM depth */
} conv_geom;

/* One spatial dimension: output size and leading padding. */
static lens_status conv_dim(int64_t in, int64_t k, int64_t s, int64_t d, const char *auto_pad, const int64_t *pads,
                            int spatial, int i, int64_t *pad_begin, int64_t *out) {
    if (k < 1 || s < 1 || d < 1) return core_fail(LENS_ERR_INVALID_ARGUMENT, "kernel, strides and dilations must be positive");
    if (k > (INT64_C(1) << 24) || d > (INT64_C(1) << 24) || s > (INT64_C(1) << 24))
        return core_fail(LENS_ERR_LIMIT, "kernel, strides or dilations too large");
    int64_t span = (k - 1) * d + 1, pb = 0, pe = 0;
    if (!strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) {
        int64_t o = (in + s - 1) / s;
        int64_t total = (o - 1) * s + span - in;
        if (total < 0) total = 0;
        pb = !strcmp(auto_pad, "SAME_UPPER") ? total / 2 : total - total / 2;
        pe = total - pb;
    } else if (!strcmp(auto_pad, "VALID")) {
        pb = pe = 0;
    } else if (!strcmp(auto_pad, "NOTSET") || !*auto_pad) {
        if (pads) pb = pads[i], pe = pads[i + spatial];
        if (pb < 0 || pe < 0) return core_fail(LENS_ERR_UNSUPPORTED, "negative pads are not supported");
        if (pb > (INT64_C(1) << 24) || pe > (INT64_C(1) << 24)) return core_fail(LENS_ERR_LIMIT, "pads too large");
    } else {
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "unknown auto_pad '%s'", auto_pad);
    }
    int64_t o = in + pb + pe - span;
    if (o < 0) return core_fail(LENS_ERR_SHAPE, "kernel extent %lld exceeds padded input %lld", (long long)span,
                                (long long)(in + pb + pe));
    *pad_begin = pb;
    *out = o / s + 1;
    return LENS_OK;
}

static lens_status conv_geometry(const op_node *node, const tensor *x, const tensor *w, conv_geom *g) {
    if (x->rank != 3 && x->rank != 4)
        return core_fail(LENS_ERR_UNSUPPORTED, "only 1-D and 2-D convolutions are supported (input rank %d)", x->rank);
    if (w->rank != x->rank)
        return core_fail(LENS_ERR_SHAPE, "weight rank %d does not match input rank %d", w->rank, x->rank);
    if (tensor_numel(x) < 0 || tensor_numel(w) <= 0) return core_fail(LENS_ERR_SHAPE, "invalid input or weight dimensions");
    int spatial = x->rank - 2;
    for (int i = 1; i < x->rank; i++)
        if (x->dims[i] <= 0) return core_fail(LENS_ERR_SHAPE, "input dimension %d is %lld", i, (long long)x->dims[i]);
    memset(g, 0, sizeof *g);
    g->batch = x->dims[0];
    g->in_c = x->dims[1];
    g->in_h = spatial == 2 ? x->dims[2] : 1;
    g->in_w = x->dims[x->rank - 1];
    g->out_c = w->dims[0];
    g->kernel_h = spatial == 2 ? w->dims[2] : 1;
    g->kernel_w = w->dims[w->rank - 1];
    g->group = op_attr_int(node, "group", 1);
    if (g->group < 1 || g->group > g->in_c || g->in_c % g->group || g->out_c % g->group)
        return core_fail(LENS_ERR_SHAPE, "group %lld does not divide %lld input and %lld output channels",
                         (long long)g->group, (long long)g->in_c, (long long)g->out_c);
    g->in_cg = g->in_c / g->group;
    g->out_cg = g->out_c / g->group;
    if (w->dims[1] != g->in_cg)
        return core_fail(LENS_ERR_SHAPE, "weight has %lld input channels per group, expected %lld", (long long)w->dims[1],
                         (long long)g->in_cg);
    const int64_t *ks, *strides, *dils, *pads;
    size_t nk = op_attr_ints(node, "kernel_shape", &ks), ns = op_attr_ints(node, "strides", &strides);
    size_t nd = op_attr_ints(node, "dilations", &dils), np = op_attr_ints(node, "pads", &pads);
    if ((nk && nk != (size_t)spatial) || (ns && ns != (size_t)spatial) || (nd && nd != (size_t)spatial) ||
        (np && np != 2 * (size_t)spatial))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "kernel_shape, strides, dilations or pads have the wrong length");
    if (nk && (ks[0] != (spatial == 2 ? g->kernel_h : g->kernel_w) || ks[spatial - 1] != g->kernel_w))
        return core_fail(LENS_ERR_SHAPE, "kernel_shape does not match the weight");
    const char *auto_pad = op_attr_string(node, "auto_pad", "NOTSET");
    lens_status st;
    if (spatial == 2) {
        g->stride_h = ns ? strides[0] : 1, g->stride_w = ns ? strides[1] : 1;
        g->dil_h = nd ? dils[0] : 1, g->dil_w = nd ? dils[1] : 1;
        if ((st = conv_dim(g->in_h, g->kernel_h, g->stride_h, g->dil_h, auto_pad, np ? pads : NULL, 2, 0, &g->pad_t,
                           &g->out_h)) ||
            (st = conv_dim(g->in_w, g->kernel_w, g->stride_w, g->dil_w, auto_pad, np ? pads : NULL, 2, 1, &g->pad_l,
                           &g->out_w)))
            return st;
    } else {
        g->stride_h = g->dil_h = 1, g->out_h = 1;
        g->stride_w = ns ? strides[0] : 1, g->dil_w = nd ? dils[0] : 1;
        if ((st = conv_dim(g->in_w, g->kernel_w, g->stride_w, g->dil_w, auto_pad, np ? pads : NULL, 1, 0, &g->pad_l,
                           &g->out_w)))
            return st;
    }
    g->k = g->in_cg * g->kernel_h * g->kernel_w;
    /* Everything below indexes with size_t; keep every extent well inside it and int32 sums. */
    if (g->k > (INT64_C(1) << 24) || g->out_h > (INT64_C(1) << 30) || g->out_w > (INT64_C(1) << 30))
        return core_fail(LENS_ERR_LIMIT, "convolution too large");
    size_t out_elems;
    if (!core_mul_size((size_t)g->batch, (size_t)g->out_c, &out_elems) ||
        !core_mul_size(out_elems, (size_t)g->out_h, &out_elems) || !core_mul_size(out_elems, (size_t)g->out_w, &out_elems) ||
        out_elems > (SIZE_MAX >> 4))
        return core_fail(LENS_ERR_LIMIT, "convolution output too large");
    return LENS_OK;
}

static void conv_output_shape(const tensor *x, const conv_geom *g, lens_dtype t, tensor *y) {
    int64_t dims[4] = {g->batch, g->out_c, g->out_h, g->out_w};
    if (x->rank == 3) dims[2] = g->out_w;
    ops_set_shape(y, t, x->rank, dims);
}

static int conv_is_depthwise(const conv_geom *g) { return g->in_cg == 1 && g->out_cg == 1; }

static int conv_is_pointwise(const conv_geom *g) {
    return g->kernel_h == 1 && g->kernel_w == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_t == 0 &&
           g->pad_l == 0 && g->out_h == g->in_h && g->out_w == g->in_w;
}

/* ==== The parallel GEMM driver =================================================================================== */

/* One GEMM of a batch: the packed left operand, where the right operand comes from, where the output goes, and the
 * first row of the shared per-row arrays (row_bias, row_zp, scale) it uses. */
typedef struct gemm_job {
    const int8_t *left;
    const uint8_t *src;
    void *out;
    size_t row0;
} gemm_job;

typedef void (*gemm_job_fn)(const void *ctx, size_t job, gemm_job *out);

typedef struct gemm_driver {
    size_t M, N, K, jobs;
    gemm_job_fn job;
    const void *job_ctx;
    /* The right operand: element (k, n) at src[k * k_stride + n * n_stride], or gathered by im2col. */
    ptrdiff_t k_stride, n_stride;
    const conv_geom *im2col; /* non-NULL: src is one group's input planes */
    uint8_t pad_byte;        /* what padding reads as (the raw input zero point) */
    int flip;                /* right source is int8 */
    int need_col_sums;
    kern_qgemm_out out;      /* row arrays indexed from row 0; out, col_sums set per task */
    size_t out_elem;         /* bytes per output element */
    /* Tiling. */
    size_t tile_n, n_tiles, chunk_rows, m_chunks;
    size_t per_thread, cols_bytes, packed_bytes;
    uint8_t *scratch; /* per-thread slices */
} gemm_driver;

/* Chooses column tiles (bounded so a packed tile stays in L2) and, when there are too few of them to keep the threads
 * busy, splits the rows too. */
static void gemm_plan(gemm_driver *d, int threads) {
    size_t kp = kern_qgemm_k4(d->K) * 4;
    size_t nt_max = (64 * 1024) / kp / KERN_QGEMM_NR * KERN_QGEMM_NR;
    if (nt_max < KERN_QGEMM_NR) nt_max = KERN_QGEMM_NR;
    if (nt_max > 480) nt_max = 480;
    size_t n_tiles = (d->N + nt_max - 1) / nt_max;
    if (n_tiles == 0) n_tiles = 1;
    size_t want = 1;
    if (threads > 1 && (double)d->M * (double)d->N * (double)d->K * (double)d->jobs > 1e5) {
        want = 2 * (size_t)threads;
        want = (want + d->jobs - 1) / d->jobs; /* per job */
    }
    if (n_tiles < want) {
        size_t target = min_size(want, (d->N + 47) / 48); /* keep tiles at least 48 columns wide */
        if (target > n_tiles) n_tiles = target;
    }
    size_t tile = (d->N + n_tiles - 1) / n_tiles;
    tile = tile > 32 ? round_up(tile, 48) : round_up(tile, KERN_QGEMM_NR);
    if (tile == 0) tile = KERN_QGEMM_NR;
    d->tile_n = tile;
    d->n_tiles = (d->N + tile - 1) / tile;
    if (d->n_tiles == 0) d->n_tiles = 1;
    size_t blocks = (d->M + KERN_QGEMM_MR - 1) / KERN_QGEMM_MR, chunks = 1;
    if (d->n_tiles < want) chunks = (want + d->n_tiles - 1) / d->n_tiles;
    if (chunks > blocks) chunks = blocks;
    if (chunks == 0) chunks = 1;
    size_t chunk_blocks = (blocks + chunks - 1) / chunks;
    if (chunk_blocks == 0) chunk_blocks = 1;
    d->chunk_rows = chunk_blocks * KERN_QGEMM_MR;
    d->m_chunks = (d->M + d->chunk_rows - 1) / d->chunk_rows;
    if (d->m_chunks == 0) d->m_chunks = 1;
    d->cols_bytes = d->im2col ? round_up(d->K * d->tile_n, 64) : 0;
    d->packed_bytes = round_up(kern_qgemm_right_bytes(d->K, d->tile_n), 64);
    d->per_thread = d->cols_bytes + d->packed_bytes + round_up(d->tile_n * sizeof(int32_t), 64);
}

/* Gathers columns [n0, n0 + nt) of one group's im2col matrix [k, out_h * out_w] into rows of nt bytes. */
static void im2col_tile(const conv_geom *g, const uint8_t *x, uint8_t pad, size_t n0, size_t nt, uint8_t *cols) {
    const size_t in_hw = (size_t)(g->in_h * g->in_w), ow = (size_t)g->out_w;
    size_t k = 0;
    for (int64_t c = 0; c < g->in_cg; c++)
        for (int64_t ky = 0; ky < g->kernel_h; ky++)
            for (int64_t kx = 0; kx < g->kernel_w; kx++, k++) {
                uint8_t *dst = cols + k * nt;
                const uint8_t *plane = x + (size_t)c * in_hw;
                size_t n = n0, end = n0 + nt;
                while (n < end) {
                    size_t oy = n / ow, ox = n % ow, run = min_size(ow - ox, end - n);
                    int64_t iy = (int64_t)oy * g->stride_h - g->pad_t + ky * g->dil_h;
                    if (iy < 0 || iy >= g->in_h) {
                        memset(dst, pad, run);
                    } else {
                        const uint8_t *row = plane + (size_t)iy * (size_t)g->in_w;
                        const int64_t s = g->stride_w, ix0 = (int64_t)ox * s - g->pad_l + kx * g->dil_w;
                        /* Outputs [t0, t1) of the run read inside the row; the rest read padding. */
                        int64_t t0 = ix0 >= 0 ? 0 : (-ix0 + s - 1) / s;
                        int64_t t1 = ix0 >= g->in_w ? 0 : (g->in_w - ix0 + s - 1) / s;
                        if (t0 > (int64_t)run) t0 = (int64_t)run;
                        if (t1 > (int64_t)run) t1 = (int64_t)run;
                        if (t1 < t0) t1 = t0;
                        memset(dst, pad, (size_t)t0);
                        if (t1 > t0) {
                            const uint8_t *from = row + (ix0 + t0 * s);
                            if (s == 1) memcpy(dst + t0, from, (size_t)(t1 - t0));
                            else
                                for (int64_t t = t0; t < t1; t++) dst[t] = from[(t - t0) * s];
                        }
                        memset(dst + t1, pad, run - (size_t)t1);
                    }
                    dst += run;
                    n += run;
                }
            }
}

static void gemm_task(void *vctx, int64_t task, int thread) {
    const gemm_driver *d = vctx;
    size_t per_job = d->n_tiles * d->m_chunks, t = (size_t)task;
    size_t job = t / per_job, r = t % per_job, tile = r / d->m_chunks, chunk = r % d->m_chunks;
    gemm_job j;
    d->job(d->job_ctx, job, &j);
    size_t n0 = tile * d->tile_n, m0 = chunk * d->chunk_rows;
    if (n0 >= d->N || m0 >= d->M) return;
    size_t nt = min_size(d->tile_n, d->N - n0), mt = min_size(d->chunk_rows, d->M - m0);
    uint8_t *base = d->scratch + (size_t)thread * d->per_thread;
    uint8_t *cols = base, *packed = base + d->cols_bytes;
    int32_t *col_sums = d->need_col_sums ? (int32_t *)(packed + d->packed_bytes) : NULL;
    if (d->im2col) {
        im2col_tile(d->im2col, j.src, d->pad_byte, n0, nt, cols);
        kern_qgemm_pack_right(cols, d->K, nt, (ptrdiff_t)nt, 1, d->flip, packed, col_sums);
    } else {
        kern_qgemm_pack_right(j.src + (ptrdiff_t)n0 * d->n_stride, d->K, nt, d->k_stride, d->n_stride, d->flip, packed,
                              col_sums);
    }
    kern_qgemm_out o = d->out;
    size_t row = j.row0 + m0;
    if (o.row_bias) o.row_bias += row;
    if (o.row_zp) o.row_zp += row;
    if (o.scale) o.scale += row;
    o.col_sums = col_sums;
    o.out = (uint8_t *)j.out + ((ptrdiff_t)m0 * o.row_stride + (ptrdiff_t)n0 * o.col_stride) * (ptrdiff_t)d->out_elem;
    kern_qgemm(mt, nt, d->K, kern_qgemm_left_at(j.left, d->K, m0), packed, &o);
}

/* Runs every job's GEMM over the pool. scratch holds core_pool_size(pool) slices of d->per_thread bytes. */
static void gemm_run(gemm_driver *d, core_pool *pool, uint8_t *scratch) {
    d->scratch = scratch;
    int64_t tasks = (int64_t)(d->jobs * d->n_tiles * d->m_chunks);
    if (tasks > 0) core_pool_run(pool, tasks, gemm_task, d);
}

/* ==== QLinearConv / ConvInteger ================================================================================== */

/* What prepare builds from the constant weights. */
typedef struct qconv_state {
    int64_t out_c, k, group, out_cg, taps;
    int depthwise;
    int8_t *packed;    /* GEMM path: group g's packed left operand [out_cg, k] at g * group_bytes */
    size_t group_bytes;
    int32_t *row_sums; /* [out_c]: Σk of the packed int8 weights */
    int32_t *w_zp;     /* [out_c]: weight zero points in the packed int8 domain */
    int any_w_zp;
    int16_t *dw;       /* depthwise path: [out_c][taps] weights minus their zero point */
} qconv_state;

static void qconv_release(void *p) {
    qconv_state *s = p;
    if (!s) return;
    core_aligned_free(s->packed);
    free(s->row_sums);
    free(s->w_zp);
    free(s->dw);
    free(s);
}

static lens_status qconv_build(const tensor *w, const tensor *w_zp, int64_t group, int depthwise, qconv_state **out) {
    *out = NULL;
    if (!w->data) return core_fail(LENS_ERR_UNSUPPORTED, "weights must be constant");
    if (w_zp && !w_zp->data) return core_fail(LENS_ERR_UNSUPPORTED, "weight zero point must be constant");
    qconv_state *s = calloc(1, sizeof *s);
    if (!s) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory");
    const int w_unsigned = w->dtype == LENS_DTYPE_UINT8;
    s->out_c = w->dims[0];
    s->k = tensor_numel(w) / s->out_c;
    s->group = group;
    s->out_cg = s->out_c / group;
    s->taps = s->k / w->dims[1];
    s->depthwise = depthwise;
    const size_t M = (size_t)s->out_c, K = (size_t)s->k;
    s->w_zp = malloc(M * sizeof *s->w_zp);
    if (!s->w_zp) goto oom;
    int64_t zn = w_zp ? tensor_numel(w_zp) : 0;
    for (size_t m = 0; m < M; m++) {
        int32_t raw = zn ? load_int(w_zp->data, w_zp->dtype, zn == 1 ? 0 : m) : 0;
        s->w_zp[m] = w_unsigned ? raw - 128 : raw;
        s->any_w_zp |= s->w_zp[m] != 0;
    }
    if (depthwise) {
        size_t total = M * (size_t)s->taps;
        s->dw = malloc(total * sizeof *s->dw);
        if (!s->dw) goto oom;
        for (size_t i = 0; i < total; i++) {
            size_t m = i / (size_t)s->taps;
            int32_t raw = load_int(w->data, w->dtype, i);
            int32_t zp = w_unsigned ? s->w_zp[m] + 128 : s->w_zp[m];
            s->dw[i] = (int16_t)(raw - zp);
        }
    } else {
        const size_t Mg = (size_t)s->out_cg;
        s->group_bytes = round_up(kern_qgemm_left_bytes(Mg, K), 64);
        size_t bytes;
        if (!s->group_bytes || !core_mul_size(s->group_bytes, (size_t)group, &bytes)) goto oom;
        s->packed = core_aligned_alloc(bytes);
        s->row_sums = malloc(M * sizeof *s->row_sums);
        if (!s->packed || !s->row_sums) goto oom;
        for (int64_t gi = 0; gi < group; gi++)
            kern_qgemm_pack_left((const uint8_t *)w->data + (size_t)gi * Mg * K, Mg, K, (ptrdiff_t)K, 1, w_unsigned,
                                 s->packed + (size_t)gi * s->group_bytes, s->row_sums + (size_t)gi * Mg);
    }
    *out = s;
    return LENS_OK;
oom:
    qconv_release(s);
    return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory packing convolution weights");
}

/* Input positions of the two ops. */
typedef struct qconv_io {
    int qlinear;
    int x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias;
} qconv_io;

static qconv_io qconv_inputs(const op_call *call) {
    if (!strcmp(call->node->op_type, "QLinearConv")) return (qconv_io){1, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    return (qconv_io){0, 0, -1, 2, 1, -1, 3, -1, -1, -1};
}

static const tensor *opt_input(const op_call *call, int i) { return i < 0 ? NULL : input_at(call, i); }

/* Validates types and shapes; sets the geometry and the output type. */
static lens_status qconv_check(const op_call *call, const qconv_io *io, conv_geom *g, lens_dtype *y_type) {
    const tensor *x = NULL, *w = NULL;
    lens_status st;
    if ((st = require_input(call, io->x, "x", &x)) || (st = require_input(call, io->w, "w", &w)) ||
        (st = require_outputs(call, 1)))
        return st;
    if (!is_q8(x->dtype) || !is_q8(w->dtype))
        return core_fail(LENS_ERR_UNSUPPORTED, "%s of %s input and %s weights is not supported", call->node->op_type,
                         dtype_name(x->dtype), dtype_name(w->dtype));
    if (op_attr_int(call->node, "channels_last", 0) != 0)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s with channels_last is not supported", call->node->op_type);
    if ((st = conv_geometry(call->node, x, w, g))) return st;
    const tensor *x_zp = opt_input(call, io->x_zp);
    if ((st = check_param(x_zp, x->dtype, 1, "x_zero_point")) ||
        (st = check_param(opt_input(call, io->w_zp), w->dtype, g->out_c, "w_zero_point")))
        return st;
    *y_type = LENS_DTYPE_INT32;
    if (io->qlinear) {
        const tensor *y_zp = opt_input(call, io->y_zp), *bias = opt_input(call, io->bias);
        if (!opt_input(call, io->x_scale) || !opt_input(call, io->w_scale) || !opt_input(call, io->y_scale))
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "QLinearConv needs x_scale, w_scale and y_scale");
        if ((st = check_param(opt_input(call, io->x_scale), LENS_DTYPE_FLOAT32, 1, "x_scale")) ||
            (st = check_param(opt_input(call, io->w_scale), LENS_DTYPE_FLOAT32, g->out_c, "w_scale")) ||
            (st = check_param(opt_input(call, io->y_scale), LENS_DTYPE_FLOAT32, 1, "y_scale")))
            return st;
        *y_type = y_zp ? y_zp->dtype : x->dtype;
        if (!is_q8(*y_type) || (st = check_param(y_zp, *y_type, 1, "y_zero_point"))) 
            return st ? st : core_fail(LENS_ERR_UNSUPPORTED, "output type %s is not supported", dtype_name(*y_type));
        if (bias && (bias->dtype != LENS_DTYPE_INT32 || tensor_numel(bias) != g->out_c))
            return core_fail(LENS_ERR_SHAPE, "bias must be int32 with %lld elements", (long long)g->out_c);
    }
    return LENS_OK;
}

/* Scratch layout: [scale[out_c], row_bias[out_c]] then per-thread slices. */
static size_t qconv_shared_bytes(const conv_geom *g) { return round_up((size_t)g->out_c * 8, 64); }

static kern_qdw_shape qconv_dw_shape(const conv_geom *g) {
    kern_qdw_shape s = {(size_t)g->in_h, (size_t)g->in_w, (size_t)g->out_h, (size_t)g->out_w,
                        (size_t)g->kernel_h, (size_t)g->kernel_w, (size_t)g->stride_h, (size_t)g->stride_w,
                        (size_t)g->dil_h, (size_t)g->dil_w, (size_t)g->pad_t, (size_t)g->pad_l};
    return s;
}

static void qconv_driver_init(gemm_driver *d, const conv_geom *g) {
    memset(d, 0, sizeof *d);
    d->M = (size_t)g->out_cg;
    d->N = (size_t)(g->out_h * g->out_w);
    d->K = (size_t)g->k;
    d->jobs = (size_t)(g->batch * g->group);
    if (conv_is_pointwise(g)) {
        d->k_stride = (ptrdiff_t)(g->in_h * g->in_w);
        d->n_stride = 1;
    } else {
        d->im2col = g;
    }
}

static size_t qconv_scratch(const conv_geom *g, int threads) {
    size_t per_thread;
    if (conv_is_depthwise(g)) {
        kern_qdw_shape s = qconv_dw_shape(g);
        per_thread = kern_qdw_scratch_bytes(&s);
    } else {
        gemm_driver d;
        qconv_driver_init(&d, g);
        gemm_plan(&d, threads);
        per_thread = d.per_thread;
    }
    return scratch_total(qconv_shared_bytes(g), per_thread, threads);
}

static lens_status qconv_infer(op_call *call) {
    qconv_io io = qconv_inputs(call);
    conv_geom g;
    lens_dtype t = LENS_DTYPE_UNDEFINED;
    lens_status st = qconv_check(call, &io, &g, &t);
    if (st) return st;
    conv_output_shape(call->inputs[io.x], &g, t, call->outputs[0]);
    call->scratch_bytes = qconv_scratch(&g, core_pool_size(call->pool));
    return LENS_OK;
}

static lens_status qconv_prepare(op_call *call, void **state) {
    *state = NULL;
    qconv_io io = qconv_inputs(call);
    conv_geom g;
    lens_dtype t = LENS_DTYPE_UNDEFINED;
    lens_status st = qconv_check(call, &io, &g, &t);
    if (st) return st;
    const tensor *w = call->inputs[io.w], *w_zp = opt_input(call, io.w_zp);
    if (!w->data || (w_zp && !w_zp->data)) return LENS_OK; /* built per run instead */
    qconv_state *s;
    if ((st = qconv_build(w, w_zp, g.group, conv_is_depthwise(&g), &s))) return st;
    *state = s;
    /* run reads the weights and their zero points only through the state (qconv_check reads their shapes) */
    call->taken_inputs |= 1u << io.w;
    if (w_zp) call->taken_inputs |= 1u << io.w_zp;
    return LENS_OK;
}

typedef struct qconv_job_ctx {
    const conv_geom *g;
    const qconv_state *s;
    const uint8_t *x;
    uint8_t *y;
    size_t y_elem;
} qconv_job_ctx;

static void qconv_job(const void *vctx, size_t job, gemm_job *out) {
    const qconv_job_ctx *c = vctx;
    const conv_geom *g = c->g;
    size_t n = job / (size_t)g->group, gi = job % (size_t)g->group;
    out->left = c->s->packed + gi * c->s->group_bytes;
    out->src = c->x + (n * (size_t)g->in_c + gi * (size_t)g->in_cg) * (size_t)(g->in_h * g->in_w);
    out->out = c->y + (n * (size_t)g->out_c + gi * (size_t)g->out_cg) * (size_t)(g->out_h * g->out_w) * c->y_elem;
    out->row0 = gi * (size_t)g->out_cg;
}

typedef struct qconv_dw_ctx {
    const conv_geom *g;
    kern_qdw_shape shape;
    const qconv_state *s;
    const uint8_t *x;
    uint8_t *y;
    size_t y_elem;
    int flip;
    int32_t x_zp;
    const int32_t *bias;
    const float *scale;
    int32_t y_zp, qmin, qmax;
    uint8_t *scratch;
    size_t per_thread, planes, planes_per_task;
} qconv_dw_ctx;

/* One task is a run of planes (image, channel), enough of them to outweigh the cost of handing out a task. */
static void qconv_dw_task(void *vctx, int64_t task, int thread) {
    const qconv_dw_ctx *c = vctx;
    const conv_geom *g = c->g;
    size_t first = (size_t)task * c->planes_per_task, end = min_size(first + c->planes_per_task, c->planes);
    for (size_t p = first; p < end; p++) {
        size_t n = p / (size_t)g->in_c, ch = p % (size_t)g->in_c;
        kern_qdw_out o = {c->bias ? c->bias[ch] : 0, c->scale ? c->scale + ch : NULL, c->y_zp, c->qmin, c->qmax,
                          c->y + (n * (size_t)g->out_c + ch) * (size_t)(g->out_h * g->out_w) * c->y_elem};
        kern_qdwconv(&c->shape, c->x + (n * (size_t)g->in_c + ch) * (size_t)(g->in_h * g->in_w), c->flip, c->x_zp,
                     c->s->dw + ch * (size_t)c->s->taps, &o, c->scratch + (size_t)thread * c->per_thread);
    }
}

static lens_status qconv_run(op_call *call) {
    qconv_io io = qconv_inputs(call);
    conv_geom g;
    lens_dtype y_type;
    lens_status st = qconv_check(call, &io, &g, &y_type);
    if (st) return st;
    const tensor *x = call->inputs[io.x], *w = call->inputs[io.w];
    tensor *y = call->outputs[0];
    if (g.batch == 0) return LENS_OK;

    float x_scale = 1, y_scale = 1;
    int32_t x_zp, y_zp = 0, qmin = 0, qmax = 0;
    const float *w_scale = NULL;
    const int32_t *bias = NULL;
    int64_t w_scale_n = 0;
    if ((st = read_zero_point(opt_input(call, io.x_zp), x->dtype, "x_zero_point", &x_zp))) return st;
    if (io.qlinear) {
        const tensor *ws = call->inputs[io.w_scale], *b = opt_input(call, io.bias);
        if ((st = read_scale(call->inputs[io.x_scale], "x_scale", &x_scale)) ||
            (st = read_scale(call->inputs[io.y_scale], "y_scale", &y_scale)) ||
            (st = read_zero_point(opt_input(call, io.y_zp), y_type, "y_zero_point", &y_zp)))
            return st;
        if (!ws->data || (b && !b->data)) return core_fail(LENS_ERR_INVALID_ARGUMENT, "w_scale or bias has no data");
        w_scale = ws->data;
        w_scale_n = tensor_numel(ws);
        bias = b ? b->data : NULL;
        quant_range(y_type, &qmin, &qmax);
    }
    const int flip = x->dtype == LENS_DTYPE_INT8;
    const int32_t x_zp_packed = flip ? x_zp + 128 : x_zp;

    qconv_state *temp = NULL;
    const qconv_state *s = call->state;
    if (!s) {
        if ((st = qconv_build(w, opt_input(call, io.w_zp), g.group, conv_is_depthwise(&g), &temp))) return st;
        s = temp;
    }
    const int threads = core_pool_size(call->pool);
    const size_t total = qconv_scratch(&g, threads);
    int owned;
    uint8_t *scratch = total ? scratch_take(call, total, &owned) : NULL;
    if (!scratch) {
        qconv_release(temp);
        return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory for convolution scratch");
    }
    float *scale = (float *)scratch;
    int32_t *row_bias = (int32_t *)(scratch + (size_t)g.out_c * 4);
    uint8_t *slices = scratch + qconv_shared_bytes(&g);
    const size_t M = (size_t)g.out_c;
    for (size_t m = 0; m < M; m++) {
        if (io.qlinear) scale[m] = x_scale * w_scale[w_scale_n == 1 ? 0 : m] / y_scale;
        if (!s->depthwise) {
            uint32_t b = bias ? (uint32_t)bias[m] : 0;
            b -= (uint32_t)x_zp_packed * (uint32_t)s->row_sums[m];
            b += (uint32_t)g.k * (uint32_t)x_zp_packed * (uint32_t)s->w_zp[m];
            row_bias[m] = (int32_t)b;
        }
    }
    const size_t y_elem = io.qlinear ? 1 : 4;

    if (s->depthwise) {
        qconv_dw_ctx c = {&g, qconv_dw_shape(&g), s, x->data, y->data, y_elem, flip, x_zp_packed, bias,
                          io.qlinear ? scale : NULL, y_zp, qmin, qmax, slices, 0, 0, 0};
        c.per_thread = round_up(kern_qdw_scratch_bytes(&c.shape), 64);
        c.planes = (size_t)(g.batch * g.in_c);
        size_t work = (size_t)(g.out_h * g.out_w * g.kernel_h * g.kernel_w);
        c.planes_per_task = work >= 16384 ? 1 : 16384 / work;
        /* ...but never so few tasks that a thread idles. */
        size_t per_thread_share = (c.planes + (size_t)threads * 4 - 1) / ((size_t)threads * 4);
        if (c.planes_per_task > per_thread_share) c.planes_per_task = per_thread_share ? per_thread_share : 1;
        core_pool_run(call->pool, (int64_t)((c.planes + c.planes_per_task - 1) / c.planes_per_task), qconv_dw_task, &c);
    } else {
        gemm_driver d;
        qconv_driver_init(&d, &g);
        gemm_plan(&d, threads);
        qconv_job_ctx jc = {&g, s, x->data, y->data, y_elem};
        d.job = qconv_job;
        d.job_ctx = &jc;
        d.pad_byte = (uint8_t)x_zp;
        d.flip = flip;
        d.need_col_sums = s->any_w_zp;
        d.out_elem = y_elem;
        d.out = (kern_qgemm_out){.row_bias = row_bias, .row_zp = s->any_w_zp ? s->w_zp : NULL, .col_sums = NULL,
                                 .scale = io.qlinear ? scale : NULL, .zero_point = y_zp, .qmin = qmin, .qmax = qmax,
                                 .out = NULL, .row_stride = (ptrdiff_t)(g.out_h * g.out_w), .col_stride = 1};
        gemm_run(&d, call->pool, slices);
    }
    scratch_release(scratch, owned);
    qconv_release(temp);
    return LENS_OK;
}

/* ==== QLinearMatMul / MatMulInteger ============================================================================== */

/* Y[..., M, N] = A[..., M, K] · B[..., K, N] with numpy batch broadcasting. The GEMM runs transposed: B's columns are
 * the packed left rows (constant weights are packed once) and A's rows are the right columns, so per-column
 * quantization of B becomes the kernels' per-row scale and zero point. */
typedef struct mm_geom {
    size_t M, K, N;
    int out_rank;
    int64_t out_dims[TENSOR_MAX_RANK];
    int batch_rank;
    int64_t out_b[TENSOR_MAX_RANK], a_b[TENSOR_MAX_RANK], b_b[TENSOR_MAX_RANK];
    size_t batches, a_batches, b_batches;
} mm_geom;

static lens_status mm_geometry(const tensor *a, const tensor *b, mm_geom *g) {
    memset(g, 0, sizeof *g);
    if (a->rank < 1 || b->rank < 1) return core_fail(LENS_ERR_SHAPE, "matrix product operands must have rank >= 1");
    if (tensor_numel(a) < 0 || tensor_numel(b) < 0) return core_fail(LENS_ERR_SHAPE, "invalid operand dimensions");
    int64_t M = a->rank == 1 ? 1 : a->dims[a->rank - 2], K = a->dims[a->rank - 1];
    int64_t K2 = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2], N = b->rank == 1 ? 1 : b->dims[b->rank - 1];
    if (K != K2)
        return core_fail(LENS_ERR_SHAPE, "inner dimensions differ: %lld and %lld", (long long)K, (long long)K2);
    if (K > (INT64_C(1) << 24)) return core_fail(LENS_ERR_LIMIT, "inner dimension too large");
    int ar = a->rank > 2 ? a->rank - 2 : 0, br = b->rank > 2 ? b->rank - 2 : 0;
    g->batch_rank = ar > br ? ar : br;
    g->batches = g->a_batches = g->b_batches = 1;
    for (int i = 0; i < g->batch_rank; i++) {
        int ia = i - (g->batch_rank - ar), ib = i - (g->batch_rank - br);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return core_fail(LENS_ERR_SHAPE, "batch dimensions %lld and %lld cannot be broadcast", (long long)da,
                             (long long)db);
        g->a_b[i] = da, g->b_b[i] = db, g->out_b[i] = da == 1 ? db : da;
        g->batches *= (size_t)g->out_b[i];
        g->a_batches *= (size_t)da;
        g->b_batches *= (size_t)db;
    }
    int r = 0;
    for (int i = 0; i < g->batch_rank; i++) g->out_dims[r++] = g->out_b[i];
    if (a->rank > 1) g->out_dims[r++] = M;
    if (b->rank > 1) g->out_dims[r++] = N;
    g->out_rank = r;
    g->M = (size_t)M, g->K = (size_t)K, g->N = (size_t)N;
    size_t elems;
    if (!core_mul_size(g->batches, g->M, &elems) || !core_mul_size(elems, g->N, &elems) || elems > (SIZE_MAX >> 4))
        return core_fail(LENS_ERR_LIMIT, "matrix product too large");
    return LENS_OK;
}

/* The A and B batch indices of output batch o. */
static void mm_batch_index(const mm_geom *g, size_t o, size_t *ai, size_t *bi) {
    size_t a = 0, b = 0, as = 1, bs = 1;
    for (int d = g->batch_rank - 1; d >= 0; d--) {
        size_t i = o % (size_t)g->out_b[d];
        o /= (size_t)g->out_b[d];
        if (g->a_b[d] != 1) a += i * as;
        if (g->b_b[d] != 1) b += i * bs;
        as *= (size_t)g->a_b[d];
        bs *= (size_t)g->b_b[d];
    }
    *ai = a, *bi = b;
}

typedef struct qmm_io {
    int qlinear;
    int a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp;
} qmm_io;

static qmm_io qmm_inputs(const op_call *call) {
    if (!strcmp(call->node->op_type, "QLinearMatMul")) return (qmm_io){1, 0, 1, 2, 3, 4, 5, 6, 7};
    return (qmm_io){0, 0, -1, 2, 1, -1, 3, -1, -1};
}

typedef struct qmm_state {
    size_t b_batches, N, K;
    int8_t *packed; /* b_batches packed left operands [N, K] of matrix_bytes each */
    size_t matrix_bytes;
    int32_t *row_sums; /* [b_batches * N] */
    int32_t *b_zp;     /* [N] in the packed int8 domain */
    int any_b_zp;
} qmm_state;

static void qmm_release(void *p) {
    qmm_state *s = p;
    if (!s) return;
    core_aligned_free(s->packed);
    free(s->row_sums);
    free(s->b_zp);
    free(s);
}

static lens_status qmm_build(const tensor *b, const tensor *b_zp, const mm_geom *g, qmm_state **out) {
    *out = NULL;
    if (!b->data || (b_zp && !b_zp->data)) return core_fail(LENS_ERR_INVALID_ARGUMENT, "B has no data");
    qmm_state *s = calloc(1, sizeof *s);
    if (!s) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory");
    const int b_unsigned = b->dtype == LENS_DTYPE_UINT8;
    s->b_batches = g->b_batches, s->N = g->N, s->K = g->K;
    s->matrix_bytes = round_up(kern_qgemm_left_bytes(g->N, g->K), 64);
    size_t bytes, sums;
    if (!s->matrix_bytes || !core_mul_size(s->matrix_bytes, s->b_batches, &bytes) ||
        !core_mul_size(s->b_batches, g->N * sizeof(int32_t), &sums))
        goto oom;
    s->packed = core_aligned_alloc(bytes);
    s->row_sums = malloc(sums ? sums : 1);
    s->b_zp = malloc(g->N * sizeof(int32_t) + 1);
    if (!s->packed || !s->row_sums || !s->b_zp) goto oom;
    int64_t zn = b_zp ? tensor_numel(b_zp) : 0;
    for (size_t n = 0; n < g->N; n++) {
        int32_t raw = zn ? load_int(b_zp->data, b_zp->dtype, zn == 1 ? 0 : n) : 0;
        s->b_zp[n] = b_unsigned ? raw - 128 : raw;
        s->any_b_zp |= s->b_zp[n] != 0;
    }
    for (size_t i = 0; i < s->b_batches; i++)
        kern_qgemm_pack_left((const uint8_t *)b->data + i * g->K * g->N, g->N, g->K, 1, (ptrdiff_t)g->N, b_unsigned,
                             s->packed + i * s->matrix_bytes, s->row_sums + i * g->N);
    *out = s;
    return LENS_OK;
oom:
    qmm_release(s);
    return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory packing matrix B");
}

static lens_status qmm_check(const op_call *call, const qmm_io *io, mm_geom *g, lens_dtype *y_type) {
    const tensor *a = NULL, *b = NULL;
    lens_status st;
    if ((st = require_input(call, io->a, "A", &a)) || (st = require_input(call, io->b, "B", &b)) ||
        (st = require_outputs(call, 1)))
        return st;
    if (!is_q8(a->dtype) || !is_q8(b->dtype))
        return core_fail(LENS_ERR_UNSUPPORTED, "%s of %s and %s is not supported", call->node->op_type,
                         dtype_name(a->dtype), dtype_name(b->dtype));
    if ((st = mm_geometry(a, b, g))) return st;
    const tensor *a_zp = opt_input(call, io->a_zp), *b_zp = opt_input(call, io->b_zp);
    if ((st = check_param(a_zp, a->dtype, io->qlinear ? 1 : (int64_t)g->M, "a_zero_point")) ||
        (st = check_param(b_zp, b->dtype, (int64_t)g->N, "b_zero_point")))
        return st;
    *y_type = LENS_DTYPE_INT32;
    if (io->qlinear) {
        const tensor *y_zp = opt_input(call, io->y_zp);
        if (!opt_input(call, io->a_scale) || !opt_input(call, io->b_scale) || !opt_input(call, io->y_scale))
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "QLinearMatMul needs a_scale, b_scale and y_scale");
        if ((st = check_param(opt_input(call, io->a_scale), LENS_DTYPE_FLOAT32, 1, "a_scale")) ||
            (st = check_param(opt_input(call, io->b_scale), LENS_DTYPE_FLOAT32, (int64_t)g->N, "b_scale")) ||
            (st = check_param(opt_input(call, io->y_scale), LENS_DTYPE_FLOAT32, 1, "y_scale")))
            return st;
        *y_type = y_zp ? y_zp->dtype : a->dtype;
        if (!is_q8(*y_type)) return core_fail(LENS_ERR_UNSUPPORTED, "output type %s is not supported", dtype_name(*y_type));
        if ((st = check_param(y_zp, *y_type, 1, "y_zero_point"))) return st;
    }
    return LENS_OK;
}

static void qmm_driver_init(gemm_driver *d, const mm_geom *g) {
    memset(d, 0, sizeof *d);
    d->M = g->N; /* left rows: columns of B */
    d->N = g->M; /* right columns: rows of A */
    d->K = g->K;
    d->jobs = g->batches;
    d->k_stride = 1;
    d->n_stride = (ptrdiff_t)g->K;
}

/* Shared scratch: scale, row_bias and row_zp for every B matrix's columns. */
static size_t qmm_shared_bytes(const mm_geom *g) { return round_up(g->b_batches * g->N * 12, 64); }

static size_t qmm_scratch(const mm_geom *g, int threads) {
    gemm_driver d;
    qmm_driver_init(&d, g);
    gemm_plan(&d, threads);
    return scratch_total(qmm_shared_bytes(g), d.per_thread, threads);
}

static lens_status qmm_infer(op_call *call) {
    qmm_io io = qmm_inputs(call);
    mm_geom g;
    lens_dtype t = LENS_DTYPE_UNDEFINED;
    lens_status st = qmm_check(call, &io, &g, &t);
    if (st) return st;
    ops_set_shape(call->outputs[0], t, g.out_rank, g.out_dims);
    call->scratch_bytes = qmm_scratch(&g, core_pool_size(call->pool));
    return LENS_OK;
}

static lens_status qmm_prepare(op_call *call, void **state) {
    *state = NULL;
    qmm_io io = qmm_inputs(call);
    mm_geom g;
    lens_dtype t = LENS_DTYPE_UNDEFINED;
    lens_status st = qmm_check(call, &io, &g, &t);
    if (st) return st;
    const tensor *b = call->inputs[io.b], *b_zp = opt_input(call, io.b_zp);
    if (!b->data || (b_zp && !b_zp->data)) return LENS_OK;
    qmm_state *s;
    if ((st = qmm_build(b, b_zp, &g, &s))) return st;
    *state = s;
    /* B's shape is constant, so run always finds a state that matches it and reads B and its zero points only
     * through the state */
    call->taken_inputs |= 1u << io.b;
    if (b_zp) call->taken_inputs |= 1u << io.b_zp;
    return LENS_OK;
}

typedef struct qmm_job_ctx {
    const mm_geom *g;
    const qmm_state *s;
    const uint8_t *a;
    uint8_t *y;
    size_t y_elem;
} qmm_job_ctx;

static void qmm_job(const void *vctx, size_t job, gemm_job *out) {
    const qmm_job_ctx *c = vctx;
    size_t ai, bi;
    mm_batch_index(c->g, job, &ai, &bi);
    out->left = c->s->packed + bi * c->s->matrix_bytes;
    out->src = c->a + ai * c->g->M * c->g->K;
    out->out = c->y + job * c->g->M * c->g->N * c->y_elem;
    out->row0 = bi * c->g->N;
}

static lens_status qmm_run(op_call *call) {
    qmm_io io = qmm_inputs(call);
    mm_geom g;
    lens_dtype y_type;
    lens_status st = qmm_check(call, &io, &g, &y_type);
    if (st) return st;
    const tensor *a = call->inputs[io.a], *b = call->inputs[io.b], *a_zp_t = opt_input(call, io.a_zp);
    tensor *y = call->outputs[0];
    if (g.batches == 0 || g.M == 0 || g.N == 0) return LENS_OK;

    float a_scale = 1, y_scale = 1;
    int32_t y_zp = 0, qmin = 0, qmax = 0, a_zp = 0;
    const float *b_scale = NULL;
    int64_t b_scale_n = 0;
    const int per_row_a_zp = a_zp_t && tensor_numel(a_zp_t) > 1;
    if (per_row_a_zp) {
        if (!a_zp_t->data) return core_fail(LENS_ERR_INVALID_ARGUMENT, "a_zero_point has no data");
    } else if ((st = read_zero_point(a_zp_t, a->dtype, "a_zero_point", &a_zp))) {
        return st;
    }
    if (io.qlinear) {
        const tensor *bs = call->inputs[io.b_scale];
        if ((st = read_scale(call->inputs[io.a_scale], "a_scale", &a_scale)) ||
            (st = read_scale(call->inputs[io.y_scale], "y_scale", &y_scale)) ||
            (st = read_zero_point(opt_input(call, io.y_zp), y_type, "y_zero_point", &y_zp)))
            return st;
        if (!bs->data) return core_fail(LENS_ERR_INVALID_ARGUMENT, "b_scale has no data");
        b_scale = bs->data;
        b_scale_n = tensor_numel(bs);
        quant_range(y_type, &qmin, &qmax);
    }
    const int flip = a->dtype == LENS_DTYPE_INT8;
    /* A per-row zero point is applied after the GEMM instead. */
    const int32_t a_zp_packed = per_row_a_zp ? 0 : flip ? a_zp + 128 : a_zp;

    qmm_state *temp = NULL;
    const qmm_state *s = call->state;
    if (!s || s->b_batches != g.b_batches || s->N != g.N || s->K != g.K) {
        if ((st = qmm_build(b, opt_input(call, io.b_zp), &g, &temp))) return st;
        s = temp;
    }
    const int threads = core_pool_size(call->pool);
    const size_t total = qmm_scratch(&g, threads);
    int owned;
    uint8_t *scratch = total ? scratch_take(call, total, &owned) : NULL;
    if (!scratch) {
        qmm_release(temp);
        return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory for matrix product scratch");
    }
    const size_t rows = g.b_batches * g.N;
    float *scale = (float *)scratch;
    int32_t *row_bias = (int32_t *)(scratch + rows * 4), *row_zp = (int32_t *)(scratch + rows * 8);
    for (size_t r = 0; r < rows; r++) {
        size_t n = r % g.N;
        if (io.qlinear) scale[r] = a_scale * b_scale[b_scale_n == 1 ? 0 : n] / y_scale;
        uint32_t v = (uint32_t)g.K * (uint32_t)a_zp_packed * (uint32_t)s->b_zp[n];
        v -= (uint32_t)a_zp_packed * (uint32_t)s->row_sums[r];
        row_bias[r] = (int32_t)v;
        row_zp[r] = s->b_zp[n];
    }
    const size_t y_elem = io.qlinear ? 1 : 4;
    gemm_driver d;
    qmm_driver_init(&d, &g);
    gemm_plan(&d, threads);
    qmm_job_ctx jc = {&g, s, a->data, y->data, y_elem};
    d.job = qmm_job;
    d.job_ctx = &jc;
    d.flip = flip;
    d.need_col_sums = s->any_b_zp;
    d.out_elem = y_elem;
    d.out = (kern_qgemm_out){.row_bias = row_bias, .row_zp = s->any_b_zp ? row_zp : NULL, .col_sums = NULL,
                             .scale = io.qlinear ? scale : NULL, .zero_point = y_zp, .qmin = qmin, .qmax = qmax,
                             .out = NULL, .row_stride = 1, .col_stride = (ptrdiff_t)g.N};
    gemm_run(&d, call->pool, scratch + qmm_shared_bytes(&g));

    if (per_row_a_zp) {
        /* MatMulInteger with one zero point per row of A: subtract a_zp[m] · Σk (B[k, n] - b_zp[n]). */
        int32_t *out = y->data;
        for (size_t o = 0; o < g.batches; o++) {
            size_t ai, bi;
            mm_batch_index(&g, o, &ai, &bi);
            for (size_t m = 0; m < g.M; m++) {
                uint32_t zp = (uint32_t)(load_int(a_zp_t->data, a_zp_t->dtype, m) + (flip ? 128 : 0));
                for (size_t n = 0; n < g.N; n++) {
                    uint32_t colsum = (uint32_t)s->row_sums[bi * g.N + n] - (uint32_t)g.K * (uint32_t)s->b_zp[n];
                    size_t at = (o * g.M + m) * g.N + n;
                    out[at] = (int32_t)((uint32_t)out[at] - zp * colsum);
                }
            }
        }
    }
    scratch_release(scratch, owned);
    qmm_release(temp);
    return LENS_OK;
}

/* ==== QLinearAdd / QLinearMul (com.microsoft) ==================================================================== */

/* A broadcast walk over an output: dims of size 1 dropped, adjacent dims merged, the last one left as a run with
 * steps 0 or 1 through a and b. */
typedef struct bcast_walk {
    int rank; /* outer dims */
    int64_t dims[TENSOR_MAX_RANK];
    size_t a_stride[TENSOR_MAX_RANK], b_stride[TENSOR_MAX_RANK];
    size_t inner, a_step, b_step, outer;
} bcast_walk;

static void bcast_plan(const tensor *a, const tensor *b, const tensor *out, bcast_walk *w) {
    int r = out->rank, n = 0;
    int64_t dims[TENSOR_MAX_RANK];
    size_t sa[TENSOR_MAX_RANK], sb[TENSOR_MAX_RANK];
    size_t ca = 1, cb = 1;
    int64_t ad[TENSOR_MAX_RANK], bd[TENSOR_MAX_RANK];
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        ad[i] = ia >= 0 ? a->dims[ia] : 1;
        bd[i] = ib >= 0 ? b->dims[ib] : 1;
    }
    size_t fa[TENSOR_MAX_RANK], fb[TENSOR_MAX_RANK];
    for (int i = r - 1; i >= 0; i--) {
        fa[i] = ad[i] == 1 ? 0 : ca;
        fb[i] = bd[i] == 1 ? 0 : cb;
        ca *= (size_t)ad[i];
        cb *= (size_t)bd[i];
    }
    for (int i = 0; i < r; i++) {
        if (out->dims[i] == 1) continue;
        if (n > 0 && sa[n - 1] == fa[i] * (size_t)out->dims[i] && sb[n - 1] == fb[i] * (size_t)out->dims[i]) {
            dims[n - 1] *= out->dims[i];
            sa[n - 1] = fa[i], sb[n - 1] = fb[i];
            continue;
        }
        dims[n] = out->dims[i], sa[n] = fa[i], sb[n] = fb[i];
        n++;
    }
    if (n == 0) dims[0] = 1, sa[0] = sb[0] = 0, n = 1;
    w->inner = (size_t)dims[n - 1];
    w->a_step = sa[n - 1], w->b_step = sb[n - 1];
    w->rank = n - 1;
    w->outer = 1;
    for (int i = 0; i < n - 1; i++) {
        w->dims[i] = dims[i], w->a_stride[i] = sa[i], w->b_stride[i] = sb[i];
        w->outer *= (size_t)dims[i];
    }
}

/* Offsets into a and b of outer row o. */
static void bcast_offsets(const bcast_walk *w, size_t o, size_t *ao, size_t *bo) {
    size_t a = 0, b = 0;
    for (int d = w->rank - 1; d >= 0; d--) {
        size_t i = o % (size_t)w->dims[d];
        o /= (size_t)w->dims[d];
        a += i * w->a_stride[d];
        b += i * w->b_stride[d];
    }
    *ao = a, *bo = b;
}

enum { QBIN_A, QBIN_A_SCALE, QBIN_A_ZP, QBIN_B, QBIN_B_SCALE, QBIN_B_ZP, QBIN_C_SCALE, QBIN_C_ZP };

static lens_status qbinary_infer(op_call *call) {
    const tensor *a = NULL, *b = NULL;
    lens_status st;
    if ((st = require_input(call, QBIN_A, "A", &a)) || (st = require_input(call, QBIN_B, "B", &b)) ||
        (st = require_outputs(call, 1)))
        return st;
    if (!is_q8(a->dtype) || b->dtype != a->dtype)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s of %s and %s is not supported", call->node->op_type,
                         dtype_name(a->dtype), dtype_name(b->dtype));
    if (!input_at(call, QBIN_A_SCALE) || !input_at(call, QBIN_B_SCALE) || !input_at(call, QBIN_C_SCALE))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s needs A_scale, B_scale and C_scale", call->node->op_type);
    if ((st = check_param(input_at(call, QBIN_A_SCALE), LENS_DTYPE_FLOAT32, 1, "A_scale")) ||
        (st = check_param(input_at(call, QBIN_B_SCALE), LENS_DTYPE_FLOAT32, 1, "B_scale")) ||
        (st = check_param(input_at(call, QBIN_C_SCALE), LENS_DTYPE_FLOAT32, 1, "C_scale")) ||
        (st = check_param(input_at(call, QBIN_A_ZP), a->dtype, 1, "A_zero_point")) ||
        (st = check_param(input_at(call, QBIN_B_ZP), a->dtype, 1, "B_zero_point")) ||
        (st = check_param(input_at(call, QBIN_C_ZP), a->dtype, 1, "C_zero_point")))
        return st;
    if (tensor_numel(a) < 0 || tensor_numel(b) < 0) return core_fail(LENS_ERR_SHAPE, "invalid operand dimensions");
    tensor shape = {0};
    if ((st = ops_broadcast_shape(a, b, &shape))) return st;
    ops_set_shape(call->outputs[0], a->dtype, shape.rank, shape.dims);
    return LENS_OK;
}

typedef struct qbinary_ctx {
    const kern_qbinary *p;
    const bcast_walk *w;
    const uint8_t *a, *b;
    uint8_t *out;
    size_t chunk; /* same-shape case: elements per task */
    size_t total;
} qbinary_ctx;

static void qbinary_task(void *vctx, int64_t task, int thread) {
    (void)thread;
    const qbinary_ctx *c = vctx;
    const bcast_walk *w = c->w;
    if (c->chunk) {
        size_t i0 = (size_t)task * c->chunk, n = min_size(c->chunk, c->total - i0);
        kern_qbinary_run(c->p, c->a + i0 * w->a_step, w->a_step, c->b + i0 * w->b_step, w->b_step, c->out + i0, n);
        return;
    }
    size_t o = (size_t)task, ao, bo;
    bcast_offsets(w, o, &ao, &bo);
    kern_qbinary_run(c->p, c->a + ao, w->a_step, c->b + bo, w->b_step, c->out + o * w->inner, w->inner);
}

static lens_status qbinary_run(op_call *call) {
    lens_status st = qbinary_infer(call);
    if (st) return st;
    const tensor *a = call->inputs[QBIN_A], *b = call->inputs[QBIN_B];
    tensor *y = call->outputs[0];
    kern_qbinary p = {.mul = !strcmp(call->node->op_type, "QLinearMul")};
    if ((st = read_scale(input_at(call, QBIN_A_SCALE), "A_scale", &p.a_scale)) ||
        (st = read_scale(input_at(call, QBIN_B_SCALE), "B_scale", &p.b_scale)) ||
        (st = read_scale(input_at(call, QBIN_C_SCALE), "C_scale", &p.c_scale)) ||
        (st = read_zero_point(input_at(call, QBIN_A_ZP), a->dtype, "A_zero_point", &p.a_zp)) ||
        (st = read_zero_point(input_at(call, QBIN_B_ZP), a->dtype, "B_zero_point", &p.b_zp)) ||
        (st = read_zero_point(input_at(call, QBIN_C_ZP), a->dtype, "C_zero_point", &p.c_zp)))
        return st;
    quant_range(a->dtype, &p.qmin, &p.qmax);
    if (tensor_numel(y) == 0) return LENS_OK;
    bcast_walk w;
    bcast_plan(a, b, y, &w);
    qbinary_ctx c = {&p, &w, a->data, b->data, y->data, 0, w.inner};
    if (w.rank == 0) {
        /* One run over everything: split it in chunks for the pool. */
        size_t chunk = w.inner > 32768 ? 16384 : w.inner;
        c.chunk = chunk;
        core_pool_run(call->pool, (int64_t)((w.inner + chunk - 1) / chunk), qbinary_task, &c);
    } else {
        core_pool_run(call->pool, (int64_t)w.outer, qbinary_task, &c);
    }
    return LENS_OK;
}

/* ==== QLinearGlobalAveragePool (com.microsoft) =================================================================== */

static lens_status qgap_infer(op_call *call) {
    const tensor *x = NULL;
    lens_status st;
    if ((st = require_input(call, 0, "X", &x)) || (st = require_outputs(call, 1))) return st;
    if (!is_q8(x->dtype))
        return core_fail(LENS_ERR_UNSUPPORTED, "QLinearGlobalAveragePool of %s is not supported", dtype_name(x->dtype));
    if (x->rank < 3) return core_fail(LENS_ERR_SHAPE, "input rank must be at least 3, got %d", x->rank);
    if (tensor_numel(x) < 0) return core_fail(LENS_ERR_SHAPE, "invalid input dimensions");
    if ((st = check_param(input_at(call, 1), LENS_DTYPE_FLOAT32, 1, "x_scale")) ||
        (st = check_param(input_at(call, 2), x->dtype, 1, "x_zero_point")) ||
        (st = check_param(input_at(call, 3), LENS_DTYPE_FLOAT32, 1, "y_scale")) ||
        (st = check_param(input_at(call, 4), x->dtype, 1, "y_zero_point")))
        return st;
    int channels_last = op_attr_int(call->node, "channels_last", 0) != 0;
    int64_t dims[TENSOR_MAX_RANK];
    for (int i = 0; i < x->rank; i++) dims[i] = x->dims[i];
    int first = channels_last ? 1 : 2, last = channels_last ? x->rank - 2 : x->rank - 1;
    int64_t image = 1;
    for (int i = first; i <= last; i++) image *= x->dims[i], dims[i] = 1;
    if (image <= 0) return core_fail(LENS_ERR_SHAPE, "empty spatial dimensions");
    if (image >= (INT64_C(1) << 23))
        return core_fail(LENS_ERR_LIMIT, "image of %lld positions is too large to average", (long long)image);
    ops_set_shape(call->outputs[0], x->dtype, x->rank, dims);
    return LENS_OK;
}

static lens_status qgap_run(op_call *call) {
    lens_status st = qgap_infer(call);
    if (st) return st;
    const tensor *x = call->inputs[0];
    float xs, ys;
    int32_t xz, yz, lo = 0, hi = 0;
    if ((st = read_scale(input_at(call, 1), "x_scale", &xs)) || (st = read_scale(input_at(call, 3), "y_scale", &ys)) ||
        (st = read_zero_point(input_at(call, 2), x->dtype, "x_zero_point", &xz)) ||
        (st = read_zero_point(input_at(call, 4), x->dtype, "y_zero_point", &yz)))
        return st;
    quant_range(x->dtype, &lo, &hi);
    int channels_last = op_attr_int(call->node, "channels_last", 0) != 0;
    size_t n = (size_t)x->dims[0], c = (size_t)(channels_last ? x->dims[x->rank - 1] : x->dims[1]);
    if (n == 0 || c == 0) return LENS_OK;
    size_t image = (size_t)tensor_numel(x) / (n * c);
    /* As ONNX Runtime: the integer sum minus zero point times count, scaled by x_scale / (y_scale * count). */
    const float scale = xs / (ys * (float)image);
    const int32_t bias = -xz * (int32_t)image;
    const int is_signed = x->dtype == LENS_DTYPE_INT8;
    const uint8_t *in = x->data;
    uint8_t *out = call->outputs[0]->data;
    for (size_t b = 0; b < n; b++) {
        for (size_t ch = 0; ch < c; ch++) {
            int32_t sum = bias;
            if (channels_last) {
                const uint8_t *p = in + b * image * c + ch;
                for (size_t i = 0; i < image; i++) sum += is_signed ? (int8_t)p[i * c] : p[i * c];
            } else {
                const uint8_t *p = in + (b * c + ch) * image;
                for (size_t i = 0; i < image; i++) sum += is_signed ? (int8_t)p[i] : p[i];
            }
            out[b * c + ch] = (uint8_t)kern_requantize(sum, scale, yz, lo, hi);
        }
    }
    return LENS_OK;
}

/* ==== QLinearSigmoid / QLinearLeakyRelu (com.microsoft): 256-entry tables ======================================== */

/* The table ONNX Runtime builds: dequantize each of the 256 codes, apply f, quantize. Indexed by the raw byte. */
static void lookup_table_build(lens_dtype t, float xs, int32_t xz, float ys, int32_t yz, int op, float alpha,
                               uint8_t table[256]) {
    int32_t lo = 0, hi = 0;
    quant_range(t, &lo, &hi);
    for (int i = 0; i < 256; i++) {
        int32_t q = t == LENS_DTYPE_INT8 ? (int32_t)(int8_t)(uint8_t)i : i;
        float v = xs * (float)(q - xz);
        if (op == 1) v = 1.0f / (1.0f + expf(-v));
        else if (op == 2) v = v >= 0 ? v : v * alpha;
        table[i] = (uint8_t)quantize_one(v, ys, yz, lo, hi);
    }
}

static lens_status qlut_infer(op_call *call) {
    const tensor *x = NULL;
    lens_status st;
    if ((st = require_input(call, 0, "X", &x)) || (st = require_outputs(call, 1))) return st;
    if (!is_q8(x->dtype))
        return core_fail(LENS_ERR_UNSUPPORTED, "%s of %s is not supported", call->node->op_type, dtype_name(x->dtype));
    if (tensor_numel(x) < 0) return core_fail(LENS_ERR_SHAPE, "invalid input dimensions");
    if (!input_at(call, 1) || !input_at(call, 3))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s needs X_scale and Y_scale", call->node->op_type);
    if ((st = check_param(input_at(call, 1), LENS_DTYPE_FLOAT32, 1, "X_scale")) ||
        (st = check_param(input_at(call, 2), x->dtype, 1, "X_zero_point")) ||
        (st = check_param(input_at(call, 3), LENS_DTYPE_FLOAT32, 1, "Y_scale")) ||
        (st = check_param(input_at(call, 4), x->dtype, 1, "Y_zero_point")))
        return st;
    ops_set_shape(call->outputs[0], x->dtype, x->rank, x->dims);
    return LENS_OK;
}

static lens_status qlut_run(op_call *call) {
    lens_status st = qlut_infer(call);
    if (st) return st;
    const tensor *x = call->inputs[0];
    float xs, ys;
    int32_t xz, yz;
    if ((st = read_scale(input_at(call, 1), "X_scale", &xs)) || (st = read_scale(input_at(call, 3), "Y_scale", &ys)) ||
        (st = read_zero_point(input_at(call, 2), x->dtype, "X_zero_point", &xz)) ||
        (st = read_zero_point(input_at(call, 4), x->dtype, "Y_zero_point", &yz)))
        return st;
    int op = !strcmp(call->node->op_type, "QLinearSigmoid") ? 1 : 2;
    uint8_t table[256];
    lookup_table_build(x->dtype, xs, xz, ys, yz, op, op_attr_float(call->node, "alpha", 0.01f), table);
    size_t n = (size_t)tensor_numel(x);
    const uint8_t *in = x->data;
    uint8_t *out = call->outputs[0]->data;
    for (size_t i = 0; i < n; i++) out[i] = table[in[i]];
    return LENS_OK;
}

/* ==== QLinearConcat (com.microsoft) ============================================================================== */

/* Inputs: Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) for each piece. */
static lens_status qconcat_check(const op_call *call, int *axis_out) {
    lens_status st;
    if ((st = require_outputs(call, 1))) return st;
    if (call->n_inputs < 5 || (call->n_inputs - 2) % 3)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "QLinearConcat needs Y_scale, Y_zero_point and triples of inputs");
    const tensor *first = input_at(call, 2);
    if (!first || !is_q8(first->dtype))
        return core_fail(LENS_ERR_UNSUPPORTED, "QLinearConcat needs 8-bit inputs");
    if (!op_attr_find(call->node, "axis")) return core_fail(LENS_ERR_INVALID_ARGUMENT, "QLinearConcat needs axis");
    int axis;
    if ((st = ops_normalize_axis(op_attr_int(call->node, "axis", 0), first->rank, &axis))) return st;
    if ((st = check_param(input_at(call, 0), LENS_DTYPE_FLOAT32, 1, "Y_scale")) ||
        (st = check_param(input_at(call, 1), first->dtype, 1, "Y_zero_point")))
        return st;
    if (!input_at(call, 0)) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Y_scale is required");
    for (int i = 2; i < call->n_inputs; i += 3) {
        const tensor *x = input_at(call, i);
        if (!x || x->dtype != first->dtype || x->rank != first->rank || tensor_numel(x) < 0)
            return core_fail(LENS_ERR_SHAPE, "QLinearConcat input %d does not match the first", i);
        for (int d = 0; d < x->rank; d++)
            if (d != axis && x->dims[d] != first->dims[d])
                return core_fail(LENS_ERR_SHAPE, "QLinearConcat input %d differs in dimension %d", i, d);
        if (!input_at(call, i + 1)) return core_fail(LENS_ERR_INVALID_ARGUMENT, "input %d has no scale", i);
        if ((st = check_param(input_at(call, i + 1), LENS_DTYPE_FLOAT32, 1, "X_scale")) ||
            (st = check_param(input_at(call, i + 2), first->dtype, 1, "X_zero_point")))
            return st;
    }
    *axis_out = axis;
    return LENS_OK;
}

static lens_status qconcat_infer(op_call *call) {
    int axis;
    lens_status st = qconcat_check(call, &axis);
    if (st) return st;
    const tensor *first = call->inputs[2];
    int64_t dims[TENSOR_MAX_RANK];
    for (int d = 0; d < first->rank; d++) dims[d] = first->dims[d];
    dims[axis] = 0;
    for (int i = 2; i < call->n_inputs; i += 3) dims[axis] += call->inputs[i]->dims[axis];
    ops_set_shape(call->outputs[0], first->dtype, first->rank, dims);
    return LENS_OK;
}

static lens_status qconcat_run(op_call *call) {
    lens_status st = qconcat_infer(call);
    if (st) return st;
    int axis;
    qconcat_check(call, &axis);
    const tensor *first = call->inputs[2];
    tensor *y = call->outputs[0];
    float ys;
    int32_t yz;
    if ((st = read_scale(input_at(call, 0), "Y_scale", &ys)) ||
        (st = read_zero_point(input_at(call, 1), first->dtype, "Y_zero_point", &yz)))
        return st;
    size_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= (size_t)y->dims[d];
    for (int d = axis + 1; d < y->rank; d++) inner *= (size_t)y->dims[d];
    const size_t out_row = (size_t)y->dims[axis] * inner;
    size_t offset = 0;
    uint8_t *out = y->data;
    for (int i = 2; i < call->n_inputs; i += 3) {
        const tensor *x = call->inputs[i];
        float xs;
        int32_t xz;
        if ((st = read_scale(input_at(call, i + 1), "X_scale", &xs)) ||
            (st = read_zero_point(input_at(call, i + 2), x->dtype, "X_zero_point", &xz)))
            return st;
        const size_t row = (size_t)x->dims[axis] * inner;
        const uint8_t *in = x->data;
        int same = xs == ys && xz == yz;
        uint8_t table[256];
        if (!same) lookup_table_build(x->dtype, xs, xz, ys, yz, 0, 0, table);
        for (size_t o = 0; o < outer; o++) {
            uint8_t *dst = out + o * out_row + offset;
            const uint8_t *src = in + o * row;
            if (same) memcpy(dst, src, row);
            else
                for (size_t k = 0; k < row; k++) dst[k] = table[src[k]];
        }
        offset += row;
    }
    return LENS_OK;
}

/* ==== The table ================================================================================================== */

const op_def ops_table_quant[] = {
    {"", "QuantizeLinear", quantize_infer, quantize_run, NULL, NULL, NULL},
    {"", "DequantizeLinear", dequantize_infer, dequantize_run, NULL, NULL, NULL},
    {"", "DynamicQuantizeLinear", dynquant_infer, dynquant_run, NULL, NULL, NULL},
    {"", "QLinearConv", qconv_infer, qconv_run, qconv_prepare, qconv_release, NULL},
    {"", "ConvInteger", qconv_infer, qconv_run, qconv_prepare, qconv_release, NULL},
    {"", "QLinearMatMul", qmm_infer, qmm_run, qmm_prepare, qmm_release, NULL},
    {"", "MatMulInteger", qmm_infer, qmm_run, qmm_prepare, qmm_release, NULL},
    {"com.microsoft", "QLinearAdd", qbinary_infer, qbinary_run, NULL, NULL, NULL},
    {"com.microsoft", "QLinearMul", qbinary_infer, qbinary_run, NULL, NULL, NULL},
    {"com.microsoft", "QLinearGlobalAveragePool", qgap_infer, qgap_run, NULL, NULL, NULL},
    {"com.microsoft", "QLinearSigmoid", qlut_infer, qlut_run, NULL, NULL, NULL},
    {"com.microsoft", "QLinearLeakyRelu", qlut_infer, qlut_run, NULL, NULL, NULL},
    {"com.microsoft", "QLinearConcat", qconcat_infer, qconcat_run, NULL, NULL, NULL},
    {"com.microsoft", "QuantizeLinear", quantize_infer, quantize_run, NULL, NULL, NULL},
    {"com.microsoft", "DequantizeLinear", dequantize_infer, dequantize_run, NULL, NULL, NULL},
    {"com.microsoft", "QLinearConv", qconv_infer, qconv_run, qconv_prepare, qconv_release, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
