/* scatter.c — index-driven copies: ScatterND (Swin's window masks), ScatterElements and GatherND. Elements move as
 * dtype_size bytes, so any fixed-size dtype works; indices are int64 or int32, negative ones count from the end and
 * out-of-range ones are errors. Touches only the tensors of its call. */
#include <string.h>

#include "ops.h"

static lens_status need_inputs(const op_call *call, const char *op, int n) {
    if (call->n_inputs < n || call->n_outputs < 1)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: expects %d inputs and 1 output", op, n);
    for (int i = 0; i < n; i++)
        if (!call->inputs[i]) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: input %d is missing", op, i);
    if (!dtype_size(call->inputs[0]->dtype))
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: element type %s is not supported", op, dtype_name(call->inputs[0]->dtype));
    const tensor *indices = call->inputs[1];
    if (indices->dtype != LENS_DTYPE_INT64 && indices->dtype != LENS_DTYPE_INT32)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: indices must be int64 or int32, not %s", op, dtype_name(indices->dtype));
    return LENS_OK;
}

/* Reduction attribute: 0 none, 1 add, 2 mul, 3 max, 4 min. Only float32 supports the arithmetic ones. */
static lens_status reduction_of(const op_call *call, const char *op, int *out) {
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    const char *r = op_attr_string(call->node, "reduction", "none");
    for (int i = 0; i < 5; i++)
        if (!strcmp(r, names[i])) {
            *out = i;
            if (i && call->inputs[0]->dtype != LENS_DTYPE_FLOAT32)
                return core_fail(LENS_ERR_UNSUPPORTED, "%s: reduction '%s' needs float32 data", op, r);
            return LENS_OK;
        }
    return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: unknown reduction '%s'", op, r);
}

static void combine(int reduction, float *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        switch (reduction) {
        case 1: dst[i] += src[i]; break;
        case 2: dst[i] *= src[i]; break;
        case 3: dst[i] = dst[i] > src[i] ? dst[i] : src[i]; break;
        default: dst[i] = dst[i] < src[i] ? dst[i] : src[i]; break;
        }
    }
}

static lens_status bounded_index(int64_t index, int64_t dim, const char *op, int64_t *out) {
    if (index < 0) index += dim;
    if (index < 0 || index >= dim) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: index out of range", op);
    *out = index;
    return LENS_OK;
}

/* ---- ScatterND ---------------------------------------------------------------------------------------------------- */

static lens_status scatter_nd_infer(op_call *call) {
    lens_status st = need_inputs(call, "ScatterND", 3);
    int reduction;
    if (st || (st = reduction_of(call, "ScatterND", &reduction))) return st;
    const tensor *data = call->inputs[0], *indices = call->inputs[1], *updates = call->inputs[2];
    int q = indices->rank;
    int64_t k = q ? indices->dims[q - 1] : -1;
    if (q < 1 || k < 0 || k > data->rank || updates->dtype != data->dtype || updates->rank != q - 1 + data->rank - k)
        return core_fail(LENS_ERR_SHAPE, "ScatterND: data, indices and updates shapes do not fit");
    for (int i = 0; i < q - 1; i++)
        if (updates->dims[i] != indices->dims[i]) return core_fail(LENS_ERR_SHAPE, "ScatterND: updates shape mismatch");
    for (int i = (int)k; i < data->rank; i++)
        if (updates->dims[q - 1 + i - k] != data->dims[i]) return core_fail(LENS_ERR_SHAPE, "ScatterND: updates shape mismatch");
    ops_set_shape(call->outputs[0], data->dtype, data->rank, data->dims);
    return LENS_OK;
}

static lens_status scatter_nd_run(op_call *call) {
    const tensor *data = call->inputs[0], *indices = call->inputs[1], *updates = call->inputs[2];
    tensor *y = call->outputs[0];
    int reduction;
    reduction_of(call, "ScatterND", &reduction);
    size_t es = dtype_size(data->dtype);
    memcpy(y->data, data->data, tensor_bytes(data));
    int q = indices->rank, k = (int)indices->dims[q - 1];
    int64_t slice = 1, n_updates = 1;
    for (int i = k; i < data->rank; i++) slice *= data->dims[i];
    for (int i = 0; i < q - 1; i++) n_updates *= indices->dims[i];
    for (int64_t u = 0; u < n_updates; u++) {
        int64_t offset = 0;
        for (int j = 0; j < k; j++) {
            int64_t index = 0;
            lens_status st = bounded_index(tensor_get_int(indices, u * k + j), data->dims[j], "ScatterND", &index);
            if (st) return st;
            offset = offset * data->dims[j] + index;
        }
        offset *= slice;
        const char *src = (const char *)updates->data + (size_t)(u * slice) * es;
        char *dst = (char *)y->data + (size_t)offset * es;
        if (!reduction) memcpy(dst, src, (size_t)slice * es);
        else combine(reduction, (float *)dst, (const float *)src, slice);
    }
    return LENS_OK;
}

/* ---- ScatterElements ------------------------------------------------------------------------------------------------ */

static lens_status scatter_elements_infer(op_call *call) {
    lens_status st = need_inputs(call, "ScatterElements", 3);
    int reduction, axis;
    if (st || (st = reduction_of(call, "ScatterElements", &reduction))) return st;
    const tensor *data = call->inputs[0], *indices = call->inputs[1], *updates = call->inputs[2];
    if ((st = ops_normalize_axis(op_attr_int(call->node, "axis", 0), data->rank, &axis))) return st;
    if (indices->rank != data->rank || !tensor_same_shape(indices, updates) || updates->dtype != data->dtype)
        return core_fail(LENS_ERR_SHAPE, "ScatterElements: indices and updates must have data's rank and one shape");
    ops_set_shape(call->outputs[0], data->dtype, data->rank, data->dims);
    return LENS_OK;
}

static lens_status scatter_elements_run(op_call *call) {
    const tensor *data = call->inputs[0], *indices = call->inputs[1], *updates = call->inputs[2];
    tensor *y = call->outputs[0];
    int reduction, axis;
    reduction_of(call, "ScatterElements", &reduction);
    ops_normalize_axis(op_attr_int(call->node, "axis", 0), data->rank, &axis);
    size_t es = dtype_size(data->dtype);
    memcpy(y->data, data->data, tensor_bytes(data));
    int64_t n = tensor_numel(indices), coord[TENSOR_MAX_RANK] = {0};
    for (int64_t i = 0; i < n; i++) {
        int64_t offset = 0;
        for (int d = 0; d < data->rank; d++) {
            int64_t c = coord[d];
            if (d == axis) {
                lens_status st = bounded_index(tensor_get_int(indices, i), data->dims[d], "ScatterElements", &c);
                if (st) return st;
            }
            offset = offset * data->dims[d] + c;
        }
        const char *src = (const char *)updates->data + (size_t)i * es;
        char *dst = (char *)y->data + (size_t)offset * es;
        if (!reduction) memcpy(dst, src, es);
        else combine(reduction, (float *)dst, (const float *)src, 1);
        for (int d = indices->rank - 1; d >= 0 && ++coord[d] == indices->dims[d]; d--) coord[d] = 0;
    }
    return LENS_OK;
}

/* ---- GatherND ------------------------------------------------------------------------------------------------------- */

static lens_status gather_nd_infer(op_call *call) {
    lens_status st = need_inputs(call, "GatherND", 2);
    if (st) return st;
    const tensor *data = call->inputs[0], *indices = call->inputs[1];
    int64_t b = op_attr_int(call->node, "batch_dims", 0);
    int q = indices->rank;
    int64_t k = q ? indices->dims[q - 1] : -1;
    if (q < 1 || b < 0 || b >= q || k < 1 || b + k > data->rank)
        return core_fail(LENS_ERR_SHAPE, "GatherND: indices and batch_dims do not fit the data");
    for (int i = 0; i < b; i++)
        if (indices->dims[i] != data->dims[i]) return core_fail(LENS_ERR_SHAPE, "GatherND: batch dims differ");
    tensor *y = call->outputs[0];
    int rank = 0;
    for (int i = 0; i < q - 1; i++) y->dims[rank++] = indices->dims[i];
    for (int i = (int)(b + k); i < data->rank; i++) y->dims[rank++] = data->dims[i];
    if (rank > TENSOR_MAX_RANK) return core_fail(LENS_ERR_UNSUPPORTED, "GatherND: output rank %d is too high", rank);
    y->rank = rank;
    y->dtype = data->dtype;
    return LENS_OK;
}

static lens_status gather_nd_run(op_call *call) {
    const tensor *data = call->inputs[0], *indices = call->inputs[1];
    size_t es = dtype_size(data->dtype);
    int b = (int)op_attr_int(call->node, "batch_dims", 0), q = indices->rank, k = (int)indices->dims[q - 1];
    int64_t batches = 1, per_batch = 1, slice = 1, batch_stride = 1;
    for (int i = 0; i < b; i++) batches *= indices->dims[i];
    for (int i = b; i < q - 1; i++) per_batch *= indices->dims[i];
    for (int i = b + k; i < data->rank; i++) slice *= data->dims[i];
    for (int i = b; i < data->rank; i++) batch_stride *= data->dims[i];
    char *out = call->outputs[0]->data;
    for (int64_t bi = 0; bi < batches; bi++)
        for (int64_t j = 0; j < per_batch; j++) {
            int64_t row = bi * per_batch + j, offset = 0;
            for (int t = 0; t < k; t++) {
                int64_t index = 0;
                lens_status st = bounded_index(tensor_get_int(indices, row * k + t), data->dims[b + t], "GatherND", &index);
                if (st) return st;
                offset = offset * data->dims[b + t] + index;
            }
            const char *src = (const char *)data->data + (size_t)(bi * batch_stride + offset * slice) * es;
            memcpy(out + (size_t)(row * slice) * es, src, (size_t)slice * es);
        }
    return LENS_OK;
}

const op_def ops_table_scatter[] = {
    {"", "ScatterND", scatter_nd_infer, scatter_nd_run, NULL, NULL, NULL},
    {"", "ScatterElements", scatter_elements_infer, scatter_elements_run, NULL, NULL, NULL},
    {"", "GatherND", gather_nd_infer, gather_nd_run, NULL, NULL, NULL},
    {0},
};
