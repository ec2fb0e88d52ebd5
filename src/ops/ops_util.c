/* ops_util.c — helpers shared by op families: broadcasting, axis normalisation, output shapes. */
#include <string.h>

#include "ops.h"

lens_status ops_broadcast_shape(const tensor *a, const tensor *b, tensor *out) {
    int rank = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < rank; i++) {
        int ia = i - (rank - a->rank), ib = i - (rank - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[128], sb[128];
            return core_fail(LENS_ERR_SHAPE, "shapes %s and %s cannot be broadcast", tensor_shape_string(a, sa, sizeof sa),
                             tensor_shape_string(b, sb, sizeof sb));
        }
        out->dims[i] = da == 1 ? db : da;
    }
    out->rank = rank;
    return LENS_OK;
}

int ops_residual_inplace(const op_call *call, int k) {
    const tensor *r = call->n_inputs > k ? call->inputs[k] : NULL;
    return op_attr_int(call->node, "lens.residual", 0) == 1 && r && tensor_bytes(r) == tensor_bytes(call->outputs[0])
               ? k : -1;
}

lens_status ops_normalize_axis(int64_t axis, int rank, int *out) {
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= (rank > 0 ? rank : 1))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "axis %lld is out of range for rank %d", (long long)axis, rank);
    *out = (int)a;
    return LENS_OK;
}

void ops_set_shape(tensor *out, lens_dtype dtype, int rank, const int64_t *dims) {
    out->dtype = dtype;
    out->rank = rank;
    if (rank > 0) memcpy(out->dims, dims, (size_t)rank * sizeof *dims);
}
