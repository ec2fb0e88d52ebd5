/* reduce.c — reductions over a set of axes (ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
 * ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp) and ArgMax / ArgMin. Axes come from the attribute (older
 * opsets) or the optional second input (ReduceSum from 13, the rest from 18). Dims are collapsed into alternating
 * kept/reduced groups; [rows, reduced] and [outer, reduced, inner] get contiguous loops, anything else a general
 * walk. Touches only the tensors of the call. */
#include <math.h>
#include <string.h>

#include "ops.h"

typedef enum red_op {
    RED_SUM, RED_MEAN, RED_MAX, RED_MIN, RED_PROD, RED_L1, RED_L2, RED_SUMSQ, RED_LOGSUM, RED_LSE
} red_op;

static const struct {
    const char *name;
    red_op op;
} red_names[] = {
    {"ReduceSum", RED_SUM}, {"ReduceMean", RED_MEAN}, {"ReduceMax", RED_MAX},       {"ReduceMin", RED_MIN},
    {"ReduceProd", RED_PROD}, {"ReduceL1", RED_L1},   {"ReduceL2", RED_L2},         {"ReduceSumSquare", RED_SUMSQ},
    {"ReduceLogSum", RED_LOGSUM}, {"ReduceLogSumExp", RED_LSE},
};

static red_op red_op_of(const op_node *node) {
    for (size_t i = 0; i < sizeof red_names / sizeof *red_names; i++)
        if (!strcmp(red_names[i].name, node->op_type)) return red_names[i].op;
    return RED_SUM;
}

/* Float types take every reduction; integer types those that stay integers. */
static int red_dtype_ok(red_op op, lens_dtype dtype) {
    if (dtype == LENS_DTYPE_FLOAT32 || dtype == LENS_DTYPE_FLOAT64) return 1;
    if (dtype == LENS_DTYPE_INT32 || dtype == LENS_DTYPE_INT64)
        return op != RED_L2 && op != RED_LOGSUM && op != RED_LSE;
    return 0;
}

/* ---- Axes -------------------------------------------------------------------------------------------------------- */

typedef struct red_axes {
    uint8_t reduce[TENSOR_MAX_RANK];
    int keepdims, noop;
} red_axes;

static lens_status red_parse_axes(const op_call *call, red_axes *ax) {
    const op_node *node = call->node;
    const tensor *x = call->inputs[0];
    int64_t buf[TENSOR_MAX_RANK];
    const int64_t *axes = NULL;
    size_t count;
    if (call->n_inputs > 1 && call->inputs[1]) {
        const tensor *a = call->inputs[1];
        if (a->dtype != LENS_DTYPE_INT64 && a->dtype != LENS_DTYPE_INT32)
            return core_fail(LENS_ERR_UNSUPPORTED, "%s: axes must be int64, not %s", node->op_type,
                             dtype_name(a->dtype));
        int64_t n = tensor_numel(a);
        if (a->rank > 1 || n < 0) return core_fail(LENS_ERR_SHAPE, "%s: axes must be a 1-D tensor", node->op_type);
        if (n > (x->rank > 0 ? x->rank : 1))
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: %lld axes for rank %d", node->op_type, (long long)n,
                             x->rank);
        if (n > 0 && !a->data) return core_fail(LENS_ERR_UNSUPPORTED, "%s: axes must be constant", node->op_type);
        for (int64_t i = 0; i < n; i++) buf[i] = tensor_get_int(a, i);
        axes = buf;
        count = (size_t)n;
    } else {
        count = op_attr_ints(node, "axes", &axes);
        if (count > (size_t)(x->rank > 0 ? x->rank : 1))
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: %zu axes for rank %d", node->op_type, count, x->rank);
    }
    ax->keepdims = op_attr_int(node, "keepdims", 1) != 0;
    ax->noop = 0;
    memset(ax->reduce, 0, sizeof ax->reduce);
    if (count == 0) {
        if (op_attr_int(node, "noop_with_empty_axes", 0)) ax->noop = 1;
        else memset(ax->reduce, 1, sizeof ax->reduce);
        return LENS_OK;
    }
    for (size_t i = 0; i < count; i++) {
        int a;
        lens_status st = ops_normalize_axis(axes[i], x->rank, &a);
        if (st) return core_fail_context(st, "%s", node->op_type);
        if (ax->reduce[a])
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: axis %lld is repeated", node->op_type, (long long)axes[i]);
        ax->reduce[a] = 1;
    }
    return LENS_OK;
}

static lens_status infer_reduce(op_call *call) {
    if (call->n_inputs < 1 || call->n_inputs > 2 || !call->inputs[0] || call->n_outputs < 1 || !call->outputs[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s expects 1 or 2 inputs and one output", call->node->op_type);
    const tensor *x = call->inputs[0];
    if (!red_dtype_ok(red_op_of(call->node), x->dtype))
        return core_fail(LENS_ERR_UNSUPPORTED, "%s does not support dtype %s", call->node->op_type,
                         dtype_name(x->dtype));
    red_axes ax;
    lens_status st = red_parse_axes(call, &ax);
    if (st) return st;
    int64_t dims[TENSOR_MAX_RANK];
    int rank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (ax.noop || !ax.reduce[i]) dims[rank++] = x->dims[i];
        else if (ax.keepdims) dims[rank++] = 1;
    }
    ops_set_shape(call->outputs[0], x->dtype, rank, dims);
    return LENS_OK;
}

/* ---- Plan -------------------------------------------------------------------------------------------------------- */

/* The input's dims without size-1 dims, adjacent dims of the same kind merged; strides in elements. Output elements
 * run over the kept groups in order (keepdims only inserts 1s, which do not move memory). */
typedef struct red_plan {
    int n_kept, n_red;
    int64_t kept_size[TENSOR_MAX_RANK], kept_stride[TENSOR_MAX_RANK];
    int64_t red_size[TENSOR_MAX_RANK], red_stride[TENSOR_MAX_RANK];
    int last_reduced; /* the innermost group is reduced */
    int64_t out_numel, count;
} red_plan;

static void red_plan_build(red_plan *p, const tensor *x, const red_axes *ax) {
    int64_t size[TENSOR_MAX_RANK];
    int reduced[TENSOR_MAX_RANK], n = 0;
    for (int i = 0; i < x->rank; i++) {
        if (x->dims[i] == 1) continue;
        if (n > 0 && reduced[n - 1] == ax->reduce[i]) {
            size[n - 1] *= x->dims[i];
        } else {
            size[n] = x->dims[i];
            reduced[n++] = ax->reduce[i];
        }
    }
    p->n_kept = p->n_red = 0;
    p->out_numel = p->count = 1;
    p->last_reduced = n > 0 && reduced[n - 1];
    int64_t stride = 1;
    for (int g = n - 1; g >= 0; g--) {
        if (reduced[g]) {
            p->red_size[p->n_red] = size[g];
            p->red_stride[p->n_red++] = stride;
            p->count *= size[g];
        } else {
            p->kept_size[p->n_kept] = size[g];
            p->kept_stride[p->n_kept++] = stride;
            p->out_numel *= size[g];
        }
        stride *= size[g];
    }
    /* Collected innermost first; the walkers want outermost first. */
    for (int a = 0, b = p->n_red - 1; a < b; a++, b--) {
        int64_t s = p->red_size[a], t = p->red_stride[a];
        p->red_size[a] = p->red_size[b], p->red_stride[a] = p->red_stride[b];
        p->red_size[b] = s, p->red_stride[b] = t;
    }
    for (int a = 0, b = p->n_kept - 1; a < b; a++, b--) {
        int64_t s = p->kept_size[a], t = p->kept_stride[a];
        p->kept_size[a] = p->kept_size[b], p->kept_stride[a] = p->kept_stride[b];
        p->kept_size[b] = s, p->kept_stride[b] = t;
    }
}

typedef struct red_job {
    const red_plan *plan;
    red_op op;
    const void *x;
    void *y;
    int64_t per_task;            /* general path: outputs per task */
    int64_t outer, rows, inner;  /* column path: [outer, rows (reduced), inner] */
    int64_t tile, tiles;
} red_job;

/* ---- Float32 fast sums ------------------------------------------------------------------------------------------- */

/* Vector extensions (four floats, every x86-64 and arm64 target has them) so the row sums of ReduceMean over H*W or
 * the last axis vectorise at any optimisation level; eight lanes also round better than one running sum. */
typedef float red_v4f __attribute__((vector_size(16)));

static float red_sum_f32(const float *x, int64_t n, int squares) {
    red_v4f a = {0, 0, 0, 0}, b = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        red_v4f u, v;
        memcpy(&u, x + i, sizeof u);
        memcpy(&v, x + i + 4, sizeof v);
        if (squares) {
            u *= u;
            v *= v;
        }
        a += u;
        b += v;
    }
    a += b;
    float s = (a[0] + a[1]) + (a[2] + a[3]);
    for (; i < n; i++) s += squares ? x[i] * x[i] : x[i];
    return s;
}

/* ---- Typed kernels ----------------------------------------------------------------------------------------------- */

/* Integer accumulation wraps through uint64_t instead of overflowing. */
#define RED_ADD_F(a, v) ((a) + (v))
#define RED_ADD_I(a, v) ((int64_t)((uint64_t)(a) + (uint64_t)(v)))
#define RED_MUL_F(a, v) ((a) * (v))
#define RED_MUL_I(a, v) ((int64_t)((uint64_t)(a) * (uint64_t)(v)))
#define RED_SQ_F(v) ((v) * (v))
#define RED_SQ_I(v) ((int64_t)((uint64_t)(v) * (uint64_t)(v)))
#define RED_ABS_F(v) fabs(v)
#define RED_ABS_I(v) ((v) < 0 ? (int64_t)(0 - (uint64_t)(v)) : (int64_t)(v))
/* NaN wins, as in numpy. */
#define RED_MAX_F(a, v) ((v) > (a) || (v) != (v) ? (v) : (a))
#define RED_MAX_I(a, v) ((v) > (a) ? (v) : (a))
#define RED_MIN_F(a, v) ((v) < (a) || (v) != (v) ? (v) : (a))
#define RED_MIN_I(a, v) ((v) < (a) ? (v) : (a))
#define RED_EXP_F(v, m) exp((v) - (m))
#define RED_EXP_I(v, m) ((void)(v), (void)(m), 0)
#define RED_MEAN_F(a, n) ((a) / (n))
#define RED_MEAN_I(a, n) ((n) ? (a) / (n) : 0)
#define RED_SQRT_F(a) sqrt(a)
#define RED_SQRT_I(a) (a)
#define RED_LOG_F(a) log(a)
#define RED_LOG_I(a) (a)

#define RED_HOOK_F32(op, x, n, s, acc)                                                               \
    if (s == 1 && (op == RED_SUM || op == RED_MEAN || op == RED_LOGSUM))                              \
        return acc + red_sum_f32((const float *)(x), n, 0);                                           \
    if (s == 1 && (op == RED_SUMSQ || op == RED_L2)) return acc + red_sum_f32((const float *)(x), n, 1);
#define RED_HOOK_NONE(op, x, n, s, acc)

/* NAME, element type, accumulator type, K (F float, I integer), lowest and highest values, fast-segment hook. */
#define RED_KERNELS(NAME, T, ACC, K, LOWEST, HIGHEST, HOOK)                                          \
    static ACC red_init_##NAME(red_op op) {                                                           \
        return op == RED_PROD ? (ACC)1 : op == RED_MAX ? (ACC)(LOWEST) : op == RED_MIN ? (ACC)(HIGHEST) : (ACC)0; \
    }                                                                                                 \
    static ACC red_final_##NAME(red_op op, ACC acc, ACC m, int64_t count) {                           \
        switch (op) {                                                                                 \
        case RED_MEAN: return (ACC)RED_MEAN_##K(acc, (ACC)count);                                     \
        case RED_L2: return (ACC)RED_SQRT_##K(acc);                                                   \
        case RED_LOGSUM: return (ACC)RED_LOG_##K(acc);                                                \
        case RED_LSE: return m == (ACC)(LOWEST) ? m : (ACC)(m + RED_LOG_##K(acc));                    \
        default: return acc;                                                                          \
        }                                                                                             \
    }                                                                                                 \
    /* acc combined with n elements x[0], x[s], ... */                                                \
    static ACC red_segment_##NAME(red_op op, const T *x, int64_t n, int64_t s, ACC acc, ACC m) {      \
        HOOK(op, x, n, s, acc)                                                                        \
        switch (op) {                                                                                 \
        case RED_SUM: case RED_MEAN: case RED_LOGSUM:                                                 \
            for (int64_t i = 0; i < n; i++) acc = RED_ADD_##K(acc, x[i * s]);                         \
            break;                                                                                    \
        case RED_SUMSQ: case RED_L2:                                                                  \
            for (int64_t i = 0; i < n; i++) acc = RED_ADD_##K(acc, RED_SQ_##K(x[i * s]));             \
            break;                                                                                    \
        case RED_L1:                                                                                  \
            for (int64_t i = 0; i < n; i++) acc = RED_ADD_##K(acc, RED_ABS_##K(x[i * s]));            \
            break;                                                                                    \
        case RED_PROD:                                                                                \
            for (int64_t i = 0; i < n; i++) acc = RED_MUL_##K(acc, x[i * s]);                         \
            break;                                                                                    \
        case RED_MAX:                                                                                 \
            for (int64_t i = 0; i < n; i++) acc = RED_MAX_##K(acc, x[i * s]);                         \
            break;                                                                                    \
        case RED_MIN:                                                                                 \
            for (int64_t i = 0; i < n; i++) acc = RED_MIN_##K(acc, x[i * s]);                         \
            break;                                                                                    \
        case RED_LSE:                                                                                 \
            for (int64_t i = 0; i < n; i++) acc = (ACC)(acc + RED_EXP_##K(x[i * s], m));              \
            break;                                                                                    \
        }                                                                                             \
        return acc;                                                                                   \
    }                                                                                                 \
    /* Every element of the reduced groups starting at x. */                                         \
    static ACC red_walk_##NAME(red_op op, const T *x, const red_plan *p, ACC acc, ACC m) {             \
        int last = p->n_red - 1;                                                                      \
        if (last < 0) return red_segment_##NAME(op, x, 1, 0, acc, m);                                 \
        int64_t idx[TENSOR_MAX_RANK] = {0}, off = 0;                                                  \
        for (;;) {                                                                                    \
            acc = red_segment_##NAME(op, x + off, p->red_size[last], p->red_stride[last], acc, m);    \
            int g = last - 1;                                                                         \
            for (; g >= 0; g--) {                                                                     \
                off += p->red_stride[g];                                                              \
                if (++idx[g] < p->red_size[g]) break;                                                 \
                off -= p->red_size[g] * p->red_stride[g];                                             \
                idx[g] = 0;                                                                           \
            }                                                                                         \
            if (g < 0) return acc;                                                                    \
        }                                                                                             \
    }                                                                                                 \
    /* Outputs [o0, o1), each from its own walk. */                                                   \
    static void red_general_##NAME(const red_job *j, int64_t o0, int64_t o1) {                        \
        const red_plan *p = j->plan;                                                                  \
        const T *x = j->x;                                                                            \
        T *y = j->y;                                                                                  \
        for (int64_t o = o0; o < o1; o++) {                                                           \
            int64_t base = 0, rem = o;                                                                \
            for (int g = p->n_kept - 1; g >= 0; g--) {                                                \
                base += rem % p->kept_size[g] * p->kept_stride[g];                                    \
                rem /= p->kept_size[g];                                                               \
            }                                                                                         \
            ACC m = 0;                                                                                \
            if (j->op == RED_LSE) m = red_walk_##NAME(RED_MAX, x + base, p, red_init_##NAME(RED_MAX), 0); \
            ACC acc = p->count ? red_walk_##NAME(j->op, x + base, p, red_init_##NAME(j->op), m)        \
                               : red_init_##NAME(j->op);                                              \
            y[o] = (T)red_final_##NAME(j->op, acc, m, p->count);                                      \
        }                                                                                             \
    }                                                                                                 \
    /* [outer, rows, inner]: output columns [k0, k0 + kt) of outer index o, accumulated in place. */  \
    static void red_columns_##NAME(const red_job *j, int64_t o, int64_t k0, int64_t kt) {              \
        const T *x = (const T *)j->x + o * j->rows * j->inner + k0;                                   \
        T *y = (T *)j->y + o * j->inner + k0;                                                         \
        red_op op = j->op;                                                                            \
        ACC init = red_init_##NAME(op);                                                               \
        for (int64_t k = 0; k < kt; k++) y[k] = (T)init;                                              \
        for (int64_t r = 0; r < j->rows; r++) {                                                       \
            const T *row = x + r * j->inner;                                                          \
            switch (op) {                                                                             \
            case RED_SUMSQ: case RED_L2:                                                              \
                for (int64_t k = 0; k < kt; k++) y[k] = (T)RED_ADD_##K(y[k], RED_SQ_##K(row[k]));     \
                break;                                                                                \
            case RED_L1:                                                                              \
                for (int64_t k = 0; k < kt; k++) y[k] = (T)RED_ADD_##K(y[k], RED_ABS_##K(row[k]));    \
                break;                                                                                \
            case RED_PROD:                                                                            \
                for (int64_t k = 0; k < kt; k++) y[k] = (T)RED_MUL_##K(y[k], row[k]);                 \
                break;                                                                                \
            case RED_MAX:                                                                             \
                for (int64_t k = 0; k < kt; k++) y[k] = (T)RED_MAX_##K(y[k], row[k]);                 \
                break;                                                                                \
            case RED_MIN:                                                                             \
                for (int64_t k = 0; k < kt; k++) y[k] = (T)RED_MIN_##K(y[k], row[k]);                 \
                break;                                                                                \
            default: /* sums; log-sum-exp never takes this path */                                     \
                for (int64_t k = 0; k < kt; k++) y[k] = (T)RED_ADD_##K(y[k], row[k]);                 \
                break;                                                                                \
            }                                                                                         \
        }                                                                                             \
        if (op == RED_MEAN || op == RED_L2 || op == RED_LOGSUM)                                       \
            for (int64_t k = 0; k < kt; k++) y[k] = (T)red_final_##NAME(op, (ACC)y[k], 0, j->rows);   \
    }

RED_KERNELS(F32, float, float, F, -INFINITY, INFINITY, RED_HOOK_F32)
RED_KERNELS(F64, double, double, F, -INFINITY, INFINITY, RED_HOOK_NONE)
RED_KERNELS(I32, int32_t, int64_t, I, INT32_MIN, INT32_MAX, RED_HOOK_NONE)
RED_KERNELS(I64, int64_t, int64_t, I, INT64_MIN, INT64_MAX, RED_HOOK_NONE)

typedef struct red_kernels {
    void (*general)(const red_job *j, int64_t o0, int64_t o1);
    void (*columns)(const red_job *j, int64_t o, int64_t k0, int64_t kt);
} red_kernels;

static red_kernels red_kernels_for(lens_dtype dtype) {
    switch (dtype) {
    case LENS_DTYPE_FLOAT64: return (red_kernels){red_general_F64, red_columns_F64};
    case LENS_DTYPE_INT32: return (red_kernels){red_general_I32, red_columns_I32};
    case LENS_DTYPE_INT64: return (red_kernels){red_general_I64, red_columns_I64};
    default: return (red_kernels){red_general_F32, red_columns_F32};
    }
}

/* ---- Run --------------------------------------------------------------------------------------------------------- */

typedef struct red_task_ctx {
    red_job job;
    red_kernels k;
} red_task_ctx;

static void red_general_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const red_task_ctx *c = ctx;
    int64_t o0 = task * c->job.per_task, o1 = o0 + c->job.per_task;
    c->k.general(&c->job, o0, o1 < c->job.plan->out_numel ? o1 : c->job.plan->out_numel);
}

static void red_columns_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const red_task_ctx *c = ctx;
    int64_t o = task / c->job.tiles, k0 = task % c->job.tiles * c->job.tile;
    int64_t kt = c->job.inner - k0 < c->job.tile ? c->job.inner - k0 : c->job.tile;
    c->k.columns(&c->job, o, k0, kt);
}

/* Below this many input elements one thread wins. */
#define RED_PARALLEL_MIN 65536
#define RED_TASK_MIN 16384

static lens_status run_reduce(op_call *call) {
    const tensor *x = call->inputs[0];
    tensor *y = call->outputs[0];
    red_axes ax;
    lens_status st = red_parse_axes(call, &ax);
    if (st) return st;
    if (ax.noop) {
        size_t bytes = tensor_bytes(x);
        if (bytes && y->data != x->data) memcpy(y->data, x->data, bytes);
        return LENS_OK;
    }
    red_plan plan;
    red_plan_build(&plan, x, &ax);
    if (plan.out_numel == 0) return LENS_OK;
    red_task_ctx c = {{&plan, red_op_of(call->node), x->data, y->data, 1, 1, 1, 1, 1, 1}, red_kernels_for(x->dtype)};
    int64_t in_numel = plan.out_numel * plan.count;
    int parallel = core_pool_size(call->pool) > 1 && in_numel >= RED_PARALLEL_MIN;
    /* One reduced group followed by one kept group: [outer, rows, inner] with contiguous inner loops. */
    int columns = plan.n_red == 1 && !plan.last_reduced && plan.n_kept >= 1 && plan.n_kept <= 2 && plan.count > 0 &&
                  c.job.op != RED_LSE && (plan.n_kept == 1 || plan.kept_stride[0] > plan.red_stride[0]);
    if (columns) {
        c.job.inner = plan.kept_size[plan.n_kept - 1];
        c.job.outer = plan.n_kept == 2 ? plan.kept_size[0] : 1;
        c.job.rows = plan.count;
        c.job.tile = parallel && c.job.outer < 2 * core_pool_size(call->pool) ? 256 : c.job.inner;
        if (c.job.tile > c.job.inner) c.job.tile = c.job.inner;
        c.job.tiles = (c.job.inner + c.job.tile - 1) / c.job.tile;
        int64_t tasks = c.job.outer * c.job.tiles;
        if (parallel) core_pool_run(call->pool, tasks, red_columns_task, &c);
        else
            for (int64_t t = 0; t < tasks; t++) red_columns_task(&c, t, 0);
        return LENS_OK;
    }
    if (parallel) {
        int64_t per = plan.count > 0 ? RED_TASK_MIN / plan.count : plan.out_numel;
        c.job.per_task = per < 1 ? 1 : per;
        core_pool_run(call->pool, (plan.out_numel + c.job.per_task - 1) / c.job.per_task, red_general_task, &c);
    } else {
        c.k.general(&c.job, 0, plan.out_numel);
    }
    return LENS_OK;
}

/* ---- ArgMax, ArgMin ---------------------------------------------------------------------------------------------- */

static lens_status arg_shape(const op_call *call, int *axis, int64_t *outer, int64_t *n, int64_t *inner) {
    const tensor *x = call->inputs[0];
    int64_t a = op_attr_int(call->node, "axis", 0);
    if (x->rank == 0) {
        *axis = 0;
        *outer = *n = *inner = 1;
        return a == 0 || a == -1 ? LENS_OK : ops_normalize_axis(a, 0, axis);
    }
    lens_status st = ops_normalize_axis(a, x->rank, axis);
    if (st) return core_fail_context(st, "%s", call->node->op_type);
    *outer = *n = *inner = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < *axis) *outer *= x->dims[i];
        else if (i == *axis) *n = x->dims[i];
        else *inner *= x->dims[i];
    }
    return LENS_OK;
}

static int arg_dtype_ok(lens_dtype d) {
    return d == LENS_DTYPE_FLOAT32 || d == LENS_DTYPE_FLOAT64 || d == LENS_DTYPE_INT32 || d == LENS_DTYPE_INT64 ||
           d == LENS_DTYPE_INT8 || d == LENS_DTYPE_UINT8;
}

static lens_status infer_arg(op_call *call) {
    if (call->n_inputs != 1 || !call->inputs[0] || call->n_outputs < 1 || !call->outputs[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s expects one input and one output", call->node->op_type);
    const tensor *x = call->inputs[0];
    if (!arg_dtype_ok(x->dtype))
        return core_fail(LENS_ERR_UNSUPPORTED, "%s does not support dtype %s", call->node->op_type,
                         dtype_name(x->dtype));
    int axis;
    int64_t outer, n, inner;
    lens_status st = arg_shape(call, &axis, &outer, &n, &inner);
    if (st) return st;
    if (n == 0 && outer * inner > 0)
        return core_fail(LENS_ERR_SHAPE, "%s: axis %d has no elements", call->node->op_type, axis);
    int keepdims = op_attr_int(call->node, "keepdims", 1) != 0;
    int64_t dims[TENSOR_MAX_RANK];
    int rank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (i != axis) dims[rank++] = x->dims[i];
        else if (keepdims) dims[rank++] = 1;
    }
    ops_set_shape(call->outputs[0], LENS_DTYPE_INT64, rank, dims);
    return LENS_OK;
}

/* First (or with select_last, last) index of the extreme along the axis. */
#define ARG_KERNEL(NAME, T)                                                                          \
    static void arg_##NAME(const T *x, int64_t *y, int64_t outer, int64_t n, int64_t inner, int is_max, \
                           int select_last) {                                                         \
        for (int64_t o = 0; o < outer; o++) {                                                         \
            for (int64_t k = 0; k < inner; k++) {                                                     \
                const T *p = x + o * n * inner + k;                                                   \
                T best = p[0];                                                                        \
                int64_t at = 0;                                                                       \
                for (int64_t j = 1; j < n; j++) {                                                     \
                    T v = p[j * inner];                                                               \
                    int better = is_max ? (select_last ? v >= best : v > best)                        \
                                        : (select_last ? v <= best : v < best);                       \
                    if (better) {                                                                     \
                        best = v;                                                                     \
                        at = j;                                                                       \
                    }                                                                                 \
                }                                                                                     \
                y[o * inner + k] = at;                                                                \
            }                                                                                         \
        }                                                                                             \
    }
ARG_KERNEL(F32, float)
ARG_KERNEL(F64, double)
ARG_KERNEL(I32, int32_t)
ARG_KERNEL(I64, int64_t)
ARG_KERNEL(I8, int8_t)
ARG_KERNEL(U8, uint8_t)

static lens_status run_arg(op_call *call) {
    const tensor *x = call->inputs[0];
    int axis;
    int64_t outer, n, inner;
    lens_status st = arg_shape(call, &axis, &outer, &n, &inner);
    if (st) return st;
    if (n == 0) return LENS_OK;
    int is_max = !strcmp(call->node->op_type, "ArgMax");
    int last = op_attr_int(call->node, "select_last_index", 0) != 0;
    int64_t *y = call->outputs[0]->data;
    switch (x->dtype) {
    case LENS_DTYPE_FLOAT32: arg_F32(x->data, y, outer, n, inner, is_max, last); break;
    case LENS_DTYPE_FLOAT64: arg_F64(x->data, y, outer, n, inner, is_max, last); break;
    case LENS_DTYPE_INT32: arg_I32(x->data, y, outer, n, inner, is_max, last); break;
    case LENS_DTYPE_INT64: arg_I64(x->data, y, outer, n, inner, is_max, last); break;
    case LENS_DTYPE_INT8: arg_I8(x->data, y, outer, n, inner, is_max, last); break;
    case LENS_DTYPE_UINT8: arg_U8(x->data, y, outer, n, inner, is_max, last); break;
    default:
        return core_fail(LENS_ERR_UNSUPPORTED, "%s does not support dtype %s", call->node->op_type,
                         dtype_name(x->dtype));
    }
    return LENS_OK;
}

/* ---- Table ------------------------------------------------------------------------------------------------------- */

#define RED_DEF(NAME) {"", NAME, infer_reduce, run_reduce, NULL, NULL, NULL}

const op_def ops_table_reduce[] = {
    RED_DEF("ReduceSum"),  RED_DEF("ReduceMean"), RED_DEF("ReduceMax"),       RED_DEF("ReduceMin"),
    RED_DEF("ReduceProd"), RED_DEF("ReduceL1"),   RED_DEF("ReduceL2"),        RED_DEF("ReduceSumSquare"),
    RED_DEF("ReduceLogSum"), RED_DEF("ReduceLogSumExp"),
    {"", "ArgMax", infer_arg, run_arg, NULL, NULL, NULL},
    {"", "ArgMin", infer_arg, run_arg, NULL, NULL, NULL},
    {0},
};
