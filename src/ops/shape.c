/* shape.c — ONNX ops that rearrange, select or convert elements rather than compute with them: Reshape, Flatten,
 * Transpose, Squeeze, Unsqueeze, Concat, Split, Slice, Gather, GatherElements, Expand, Tile, Pad, Shape, Size,
 * Constant, ConstantOfShape, Range, Cast, CastLike, Identity, Dropout, TopK. Elements are moved as dtype_size bytes,
 * so every fixed-size dtype works. Touches only the tensors of its call. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Views split each axis in two (Tile), so they hold up to twice the tensor rank. */
#define VIEW_MAX_AXES (2 * TENSOR_MAX_RANK)
/* Below this many bytes a copy runs on the calling thread: waking the pool (tens of microseconds) costs more than it
 * saves. Plain copies are bound by memory bandwidth and gain little from a second thread, so they wait for more. */
#define PARALLEL_MIN_BYTES ((size_t)1 << 20)
#define PARALLEL_MIN_COPY_BYTES ((size_t)1 << 22)
/* A transpose from 128 KiB up is spread over the pool: between a model's ops the workers spin rather than sleep, so
 * handing them tasks costs microseconds, and a tensor a split GEMM just wrote lies half in each thread's cache.
 * ConvNeXt-T's NHWC -> NCHW permutes of 150 KiB - 600 KiB after each block on two threads: 1.00 -> 0.54 ms in all. */
#define PARALLEL_MIN_TRANSPOSE_BYTES ((size_t)1 << 17)

/* ==== Small helpers ============================================================================================== */

static const tensor *input_at(const op_call *call, int i) { return i < call->n_inputs ? call->inputs[i] : NULL; }
static tensor *output_at(const op_call *call, int i) { return i < call->n_outputs ? call->outputs[i] : NULL; }

/* Checks that the required inputs and outputs are present and that the first input is a tensor of known size. */
static lens_status need_io(const op_call *call, const char *op, int n_inputs, int n_outputs) {
    if (call->n_inputs < n_inputs)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: expects %d inputs, got %d", op, n_inputs, call->n_inputs);
    for (int i = 0; i < n_inputs; i++)
        if (!call->inputs[i]) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: input %d is missing", op, i);
    if (call->n_outputs < n_outputs)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: expects %d outputs, got %d", op, n_outputs, call->n_outputs);
    for (int i = 0; i < n_outputs; i++)
        if (!call->outputs[i]) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: output %d is missing", op, i);
    for (int i = 0; i < n_inputs; i++) {
        const tensor *t = call->inputs[i];
        if (t->rank < 0 || t->rank > TENSOR_MAX_RANK || tensor_numel(t) < 0)
            return core_fail(LENS_ERR_SHAPE, "%s: input %d has an invalid shape", op, i);
    }
    return LENS_OK;
}

static lens_status element_size(lens_dtype dtype, const char *op, size_t *out) {
    size_t size = dtype_size(dtype);
    if (!size) return core_fail(LENS_ERR_UNSUPPORTED, "%s: element type %s is not supported", op, dtype_name(dtype));
    *out = size;
    return LENS_OK;
}

static bool is_index_dtype(lens_dtype dtype) { return dtype == LENS_DTYPE_INT64 || dtype == LENS_DTYPE_INT32; }

/* Reads a 0-D or 1-D int32/int64 input whose values decide an output shape: it must be known when planning. */
static lens_status read_ints(const tensor *t, const char *op, const char *what, int64_t *values, int64_t max,
                             int64_t *count) {
    if (!t->data && tensor_numel(t) != 0)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: %s input must be constant", op, what);
    if (!is_index_dtype(t->dtype))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: %s must be int64 or int32, not %s", op, what,
                         dtype_name(t->dtype));
    if (t->rank > 1) return core_fail(LENS_ERR_SHAPE, "%s: %s must be 1-D, has rank %d", op, what, t->rank);
    int64_t n = tensor_numel(t);
    if (n < 0 || n > max)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: %s has %lld values, at most %lld are supported", op, what,
                         (long long)n, (long long)max);
    for (int64_t i = 0; i < n; i++) values[i] = tensor_get_int(t, i);
    *count = n;
    return LENS_OK;
}

/* Product of dims[0..n) with overflow check. */
static lens_status dims_product(const int64_t *dims, int n, const char *op, int64_t *out) {
    int64_t p = 1;
    for (int i = 0; i < n; i++) {
        if (dims[i] < 0) return core_fail(LENS_ERR_SHAPE, "%s: dimension %d is negative", op, i);
        if (__builtin_mul_overflow(p, dims[i], &p)) return core_fail(LENS_ERR_LIMIT, "%s: element count overflows", op);
    }
    *out = p;
    return LENS_OK;
}

/* Refuses an output whose size in bytes does not fit a size_t, so run never computes with overflowing sizes. */
static lens_status check_output(const tensor *y, const char *op) {
    if (tensor_bytes(y) != SIZE_MAX) return LENS_OK;
    char buf[128];
    return core_fail(LENS_ERR_LIMIT, "%s: output %s is too large", op, tensor_shape_string(y, buf, sizeof buf));
}

static void strides_of(const tensor *t, int64_t *strides) {
    int64_t s = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= t->dims[i];
    }
}

/* ==== Copies ===================================================================================================== */

typedef struct copy_job {
    uint8_t *dst;
    const uint8_t *src;
    size_t bytes, chunk;
} copy_job;

static void copy_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const copy_job *job = ctx;
    size_t begin = (size_t)task * job->chunk, n = job->bytes - begin < job->chunk ? job->bytes - begin : job->chunk;
    memcpy(job->dst + begin, job->src + begin, n);
}

/* memcpy, spread over the pool when large. Does nothing when dst == src (a pass aliased the buffers). */
static void copy_bytes(core_pool *pool, void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return;
    if (core_pool_size(pool) < 2 || bytes < PARALLEL_MIN_COPY_BYTES) {
        memcpy(dst, src, bytes);
        return;
    }
    copy_job job = {dst, src, bytes, PARALLEL_MIN_COPY_BYTES / 8};
    core_pool_run(pool, (int64_t)((bytes + job.chunk - 1) / job.chunk), copy_task, &job);
}

/* Writes n copies of one element by doubling, so the cost is a few large memcpys. */
static void fill_elements(uint8_t *dst, const uint8_t *element, size_t esize, size_t n) {
    if (!n) return;
    size_t total = n * esize, done = esize;
    memcpy(dst, element, esize);
    while (done < total) {
        size_t step = done < total - done ? done : total - done;
        memcpy(dst + done, dst, step);
        done += step;
    }
}

/* Copies n elements from s (stride in elements, may be 0 or negative) to contiguous d. The fixed-size memcpy
 * compiles to one load and one store and stays legal for unaligned buffers. */
static void copy_strided(uint8_t *d, const uint8_t *s, int64_t n, int64_t stride, size_t esize) {
    ptrdiff_t step = (ptrdiff_t)stride * (ptrdiff_t)esize;
    switch (esize) {
    case 1:
        for (int64_t i = 0; i < n; i++, s += step) d[i] = *s;
        break;
    case 2:
        for (int64_t i = 0; i < n; i++, s += step) memcpy(d + 2 * i, s, 2);
        break;
    case 4:
        for (int64_t i = 0; i < n; i++, s += step) memcpy(d + 4 * i, s, 4);
        break;
    case 8:
        for (int64_t i = 0; i < n; i++, s += step) memcpy(d + 8 * i, s, 8);
        break;
    default:
        for (int64_t i = 0; i < n; i++, s += step) memcpy(d + (size_t)i * esize, s, esize);
        break;
    }
}

/* A strided view of a source tensor, read into a contiguous destination in C order: destination element
 * (i0, ..., in-1) comes from source element base + sum(i_k * strides[k]). Slice, Transpose, Expand and Tile are
 * all such views. */
typedef struct view {
    int rank;
    int64_t dims[VIEW_MAX_AXES];
    int64_t strides[VIEW_MAX_AXES]; /* in elements */
} view;

/* Drops unit axes and merges neighbours that are contiguous in the source, so copies move the longest runs. */
static void view_simplify(view *v) {
    int r = 0;
    for (int k = 0; k < v->rank; k++) {
        if (v->dims[k] == 1) continue;
        if (r > 0 && v->strides[r - 1] == v->strides[k] * v->dims[k]) {
            v->dims[r - 1] *= v->dims[k];
            v->strides[r - 1] = v->strides[k];
        } else {
            v->dims[r] = v->dims[k];
            v->strides[r] = v->strides[k];
            r++;
        }
    }
    if (r == 0) { /* a single element */
        v->dims[0] = 1;
        v->strides[0] = 1;
        r = 1;
    }
    v->rank = r;
}

typedef struct view_job {
    view v;
    size_t esize;
    const uint8_t *src;
    uint8_t *dst;
    const float *residual; /* floats only: added to the copy, in dst's layout (may be dst itself), or NULL */
    int64_t rows, rows_per_task; /* rows: product of all dims but the last */
    /* Tiled transpose: the source-contiguous axis `tile_axis` is swapped with the last axis; each task takes
     * rows_per_task source rows (along the last axis) of one combination of the other axes. */
    int tile_axis;
    int64_t tiles_per_rest;
} view_job;

static void view_rows(const view_job *job, int64_t begin, int64_t end) {
    const view *v = &job->v;
    int r = v->rank;
    int64_t inner = v->dims[r - 1], inner_stride = v->strides[r - 1], idx[VIEW_MAX_AXES], offset = 0, rest = begin;
    for (int k = r - 2; k >= 0; k--) {
        idx[k] = rest % v->dims[k];
        rest /= v->dims[k];
        offset += idx[k] * v->strides[k];
    }
    size_t es = job->esize, row_bytes = (size_t)inner * es;
    uint8_t *d = job->dst + (size_t)begin * row_bytes;
    for (int64_t row = begin; row < end; row++, d += row_bytes) {
        const uint8_t *s = job->src + (ptrdiff_t)offset * (ptrdiff_t)es;
        if (job->residual) { /* each residual value read before its place in d is written: it may be d */
            const float *sf = (const float *)s, *r = job->residual + row * inner;
            float *df = (float *)d;
            for (int64_t j = 0; j < inner; j++) df[j] = sf[j * inner_stride] + r[j];
        } else if (inner_stride == 1) memcpy(d, s, row_bytes);
        else if (inner_stride == 0) fill_elements(d, s, es, (size_t)inner);
        else copy_strided(d, s, inner, inner_stride, es);
        for (int k = r - 2; k >= 0; k--) {
            offset += v->strides[k];
            if (++idx[k] < v->dims[k]) break;
            offset -= v->strides[k] * v->dims[k];
            idx[k] = 0;
        }
    }
}

/* Transpose tiles: 8 source rows (strided) by 32 source columns (contiguous). Short strided runs keep the lines in
 * flight per cache set below the associativity even for 4 KiB-multiple strides; measured best of the shapes tried. */
#define TILE_I 8
#define TILE_J 32

/* One tile: destination (..., j at tile_axis, ..., i last) = source i * stride + j. */
#define TRANSPOSE_TILES(T_SIZE)                                                                                      \
    for (int64_t i0 = i_begin; i0 < i_end; i0 += TILE_I) {                                                           \
        int64_t i1 = i0 + TILE_I < i_end ? i0 + TILE_I : i_end;                                                      \
        for (int64_t j0 = 0; j0 < nj; j0 += TILE_J) {                                                                \
            int64_t j1 = j0 + TILE_J < nj ? j0 + TILE_J : nj;                                                        \
            for (int64_t j = j0; j < j1; j++) {                                                                      \
                uint8_t *dd = d + (size_t)(j * dst_stride + i0) * T_SIZE;                                            \
                const uint8_t *ss = s + (ptrdiff_t)(i0 * src_stride + j) * T_SIZE;                                  \
                for (int64_t i = i0; i < i1; i++, dd += T_SIZE, ss += src_step) memcpy(dd, ss, T_SIZE);              \
            }                                                                                                        \
        }                                                                                                            \
    }

static void view_tiles(const view_job *job, int64_t task) {
    const view *v = &job->v;
    int r = v->rank, a = job->tile_axis;
    int64_t rest = task / job->tiles_per_rest, block = task % job->tiles_per_rest;
    int64_t src_offset = 0, dst_offset = 0, dst_stride_k = 1;
    /* Destination strides run over all axes; the rest index walks every axis except a and the last. */
    int64_t dst_strides[VIEW_MAX_AXES];
    for (int k = r - 1; k >= 0; k--) {
        dst_strides[k] = dst_stride_k;
        dst_stride_k *= v->dims[k];
    }
    for (int k = r - 2; k >= 0; k--) {
        if (k == a) continue;
        int64_t i = rest % v->dims[k];
        rest /= v->dims[k];
        src_offset += i * v->strides[k];
        dst_offset += i * dst_strides[k];
    }
    int64_t ni = v->dims[r - 1], nj = v->dims[a], src_stride = v->strides[r - 1], dst_stride = dst_strides[a];
    int64_t i_begin = block * job->rows_per_task, i_end = i_begin + job->rows_per_task;
    if (i_end > ni) i_end = ni;
    size_t es = job->esize;
    ptrdiff_t src_step = (ptrdiff_t)src_stride * (ptrdiff_t)es;
    const uint8_t *s = job->src + (ptrdiff_t)src_offset * (ptrdiff_t)es;
    uint8_t *d = job->dst + (size_t)dst_offset * es;
    switch (es) {
    case 1: TRANSPOSE_TILES(1); break;
    case 2: TRANSPOSE_TILES(2); break;
    case 4: /* floats: whole tiles through the 4 x 4 register transpose */
        for (int64_t i0 = i_begin; i0 < i_end; i0 += TILE_I) {
            int64_t rows = i0 + TILE_I < i_end ? TILE_I : i_end - i0;
            for (int64_t j0 = 0; j0 < nj; j0 += TILE_J) {
                int64_t at = dst_offset + j0 * dst_stride + i0;
                kern_transpose_f32((const float *)s + i0 * src_stride + j0, (size_t)src_stride,
                                   (float *)job->dst + at, (size_t)dst_stride, (size_t)rows,
                                   (size_t)(j0 + TILE_J < nj ? TILE_J : nj - j0),
                                   job->residual ? job->residual + at : NULL);
            }
        }
        break;
    case 8: TRANSPOSE_TILES(8); break;
    default: break; /* view_copy only tiles the sizes above */
    }
}

static void view_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const view_job *job = ctx;
    if (job->tile_axis >= 0) {
        view_tiles(job, task);
        return;
    }
    int64_t begin = task * job->rows_per_task, end = begin + job->rows_per_task;
    view_rows(job, begin, end < job->rows ? end : job->rows);
}

/* Copies the view of src into contiguous dst, adding residual (floats in dst's layout, possibly dst itself) when it
 * is not NULL. numel(view) must be > 0. */
static void view_copy(core_pool *pool, view v, size_t esize, const void *src, void *dst, const float *residual) {
    view_simplify(&v);
    view_job job = {.v = v, .esize = esize, .src = src, .dst = dst, .residual = residual, .tile_axis = -1};
    int r = v.rank;
    int64_t numel = 1;
    for (int k = 0; k < r; k++) numel *= v.dims[k];
    int threads = core_pool_size(pool);
    size_t bytes = (size_t)numel * esize;
    /* When the last axis is strided but another axis is contiguous in the source (a transpose), copying tile by
     * tile keeps both sides in cache. */
    int contiguous = -1;
    for (int k = 0; k < r - 1; k++)
        if (v.strides[k] == 1) contiguous = k;
    if (contiguous >= 0 && v.strides[r - 1] != 1 && v.dims[r - 1] >= 4 && v.dims[contiguous] >= 4 &&
        (esize == 1 || esize == 2 || esize == 4 || esize == 8)) {
        int64_t ni = v.dims[r - 1], n_rest = numel / (v.dims[contiguous] * ni);
        bool parallel = threads > 1 && bytes >= PARALLEL_MIN_TRANSPOSE_BYTES;
        /* enough tasks to balance the pool: split the rows when the other axes give too few */
        int64_t want = parallel ? 4 * threads : 1, blocks = n_rest >= want ? 1 : (want + n_rest - 1) / n_rest;
        int64_t rows = (ni + blocks - 1) / blocks;
        job.tile_axis = contiguous;
        job.rows_per_task = (rows + TILE_I - 1) / TILE_I * TILE_I;
        job.tiles_per_rest = (ni + job.rows_per_task - 1) / job.rows_per_task;
        core_pool_run(parallel ? pool : NULL, n_rest * job.tiles_per_rest, view_task, &job);
        return;
    }
    job.rows = numel / v.dims[r - 1];
    bool parallel = threads > 1 && bytes >= (v.strides[r - 1] == 1 ? PARALLEL_MIN_COPY_BYTES : PARALLEL_MIN_BYTES);
    if (!parallel || job.rows < 2) {
        view_rows(&job, 0, job.rows);
        return;
    }
    int64_t tasks = job.rows < 4 * threads ? job.rows : 4 * threads;
    job.rows_per_task = (job.rows + tasks - 1) / tasks;
    core_pool_run(pool, (job.rows + job.rows_per_task - 1) / job.rows_per_task, view_task, &job);
}

/* Copies input 0 to output 0 unchanged (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout). */
static lens_status copy_run(op_call *call) {
    const tensor *x = call->inputs[0];
    tensor *y = call->outputs[0];
    size_t bytes = tensor_bytes(x);
    if (bytes == SIZE_MAX || bytes != tensor_bytes(y))
        return core_fail(LENS_ERR_SHAPE, "%s: output size does not match input size", call->node->op_type);
    copy_bytes(call->pool, y->data, x->data, bytes);
    return LENS_OK;
}

/* Output 0 is input 0's bytes under another shape (the ops that copy_run serves, bar Dropout's mask). */
static bool same_bytes_view(const op_call *call) {
    const tensor *x = call->inputs[0], *y = call->outputs[0];
    return call->n_outputs == 1 && x && y && x->dtype == y->dtype && tensor_bytes(x) != SIZE_MAX &&
           tensor_bytes(x) == tensor_bytes(y);
}

/* ==== Numeric conversion (Cast, and constants given as float attributes) ========================================= */

typedef enum num_kind { NUM_INT, NUM_UINT, NUM_FLOAT } num_kind;

/* One element widened: signed ints and bool as int64, uint64 as uint64, floats as double. */
typedef struct number {
    num_kind kind;
    int64_t i;
    uint64_t u;
    double d;
} number;

static number load_number(lens_dtype dtype, const uint8_t *p) {
    number n = {NUM_INT, 0, 0, 0};
    switch (dtype) {
    case LENS_DTYPE_BOOL: n.i = *p != 0; break;
    case LENS_DTYPE_UINT8: n.i = *p; break;
    case LENS_DTYPE_INT8: { int8_t v; memcpy(&v, p, 1); n.i = v; } break;
    case LENS_DTYPE_UINT16: { uint16_t v; memcpy(&v, p, 2); n.i = v; } break;
    case LENS_DTYPE_INT16: { int16_t v; memcpy(&v, p, 2); n.i = v; } break;
    case LENS_DTYPE_UINT32: { uint32_t v; memcpy(&v, p, 4); n.i = v; } break;
    case LENS_DTYPE_INT32: { int32_t v; memcpy(&v, p, 4); n.i = v; } break;
    case LENS_DTYPE_INT64: memcpy(&n.i, p, 8); break;
    case LENS_DTYPE_UINT64: n.kind = NUM_UINT; memcpy(&n.u, p, 8); break;
    case LENS_DTYPE_FLOAT32: { float v; memcpy(&v, p, 4); n.kind = NUM_FLOAT; n.d = v; } break;
    case LENS_DTYPE_FLOAT64: n.kind = NUM_FLOAT; memcpy(&n.d, p, 8); break;
    case LENS_DTYPE_FLOAT16: { uint16_t v; memcpy(&v, p, 2); n.kind = NUM_FLOAT; n.d = core_f16_to_f32(v); } break;
    case LENS_DTYPE_BFLOAT16: { uint16_t v; memcpy(&v, p, 2); n.kind = NUM_FLOAT; n.d = core_bf16_to_f32(v); } break;
    case LENS_DTYPE_UNDEFINED: case LENS_DTYPE_STRING: break;
    }
    return n;
}

/* Float to integer truncates toward zero; out-of-range values saturate and NaN gives 0, so no conversion is UB. */
static int64_t double_to_int64(double d) {
    if (d != d) return 0;
    if (d >= 9223372036854775808.0) return INT64_MAX;
    if (d <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)d;
}

static int64_t number_as_int64(number n) {
    return n.kind == NUM_INT ? n.i : n.kind == NUM_UINT ? (int64_t)n.u : double_to_int64(n.d);
}

static uint64_t number_as_uint64(number n) {
    if (n.kind == NUM_INT) return (uint64_t)n.i;
    if (n.kind == NUM_UINT) return n.u;
    if (n.d >= 18446744073709551616.0) return UINT64_MAX;
    if (n.d >= 9223372036854775808.0) return (uint64_t)n.d;
    return (uint64_t)double_to_int64(n.d);
}

static float number_as_float(number n) {
    return n.kind == NUM_INT ? (float)n.i : n.kind == NUM_UINT ? (float)n.u : (float)n.d;
}

static double number_as_double(number n) {
    return n.kind == NUM_INT ? (double)n.i : n.kind == NUM_UINT ? (double)n.u : n.d;
}

/* Narrowing integer conversions wrap modulo 2^bits, as numpy and C compilers do. */
static void store_number(lens_dtype dtype, uint8_t *p, number n) {
    switch (dtype) {
    case LENS_DTYPE_BOOL:
        *p = n.kind == NUM_INT ? n.i != 0 : n.kind == NUM_UINT ? n.u != 0 : n.d != 0;
        break;
    case LENS_DTYPE_UINT8: case LENS_DTYPE_INT8: *p = (uint8_t)number_as_int64(n); break;
    case LENS_DTYPE_UINT16: case LENS_DTYPE_INT16: {
        uint16_t v = (uint16_t)number_as_int64(n);
        memcpy(p, &v, 2);
    } break;
    case LENS_DTYPE_UINT32: case LENS_DTYPE_INT32: {
        uint32_t v = (uint32_t)number_as_int64(n);
        memcpy(p, &v, 4);
    } break;
    case LENS_DTYPE_INT64: { int64_t v = number_as_int64(n); memcpy(p, &v, 8); } break;
    case LENS_DTYPE_UINT64: { uint64_t v = number_as_uint64(n); memcpy(p, &v, 8); } break;
    case LENS_DTYPE_FLOAT32: { float v = number_as_float(n); memcpy(p, &v, 4); } break;
    case LENS_DTYPE_FLOAT64: { double v = number_as_double(n); memcpy(p, &v, 8); } break;
    case LENS_DTYPE_FLOAT16: { uint16_t v = core_f32_to_f16(number_as_float(n)); memcpy(p, &v, 2); } break;
    case LENS_DTYPE_BFLOAT16: { uint16_t v = core_f32_to_bf16(number_as_float(n)); memcpy(p, &v, 2); } break;
    case LENS_DTYPE_UNDEFINED: case LENS_DTYPE_STRING: break;
    }
}

static void store_double(lens_dtype dtype, uint8_t *p, double value) {
    number n = {NUM_FLOAT, 0, 0, value};
    store_number(dtype, p, n);
}

typedef struct cast_job {
    lens_dtype from, to;
    const uint8_t *src;
    uint8_t *dst;
    size_t n, chunk;
} cast_job;

static void cast_range(const cast_job *job, size_t begin, size_t end) {
    lens_dtype from = job->from, to = job->to;
    size_t fs = dtype_size(from), ts = dtype_size(to);
    const uint8_t *s = job->src + begin * fs;
    uint8_t *d = job->dst + begin * ts;
    size_t n = end - begin;
    /* The conversions a float model meets on its hot path get loops of their own. */
    if (from == LENS_DTYPE_FLOAT32 && to == LENS_DTYPE_FLOAT16) {
        for (size_t i = 0; i < n; i++) {
            float f;
            memcpy(&f, s + 4 * i, 4);
            uint16_t h = core_f32_to_f16(f);
            memcpy(d + 2 * i, &h, 2);
        }
    } else if (from == LENS_DTYPE_FLOAT16 && to == LENS_DTYPE_FLOAT32) {
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            float f = core_f16_to_f32(h);
            memcpy(d + 4 * i, &f, 4);
        }
    } else if (from == LENS_DTYPE_FLOAT32 && to == LENS_DTYPE_BFLOAT16) {
        for (size_t i = 0; i < n; i++) {
            float f;
            memcpy(&f, s + 4 * i, 4);
            uint16_t h = core_f32_to_bf16(f);
            memcpy(d + 2 * i, &h, 2);
        }
    } else if (from == LENS_DTYPE_BFLOAT16 && to == LENS_DTYPE_FLOAT32) {
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            float f = core_bf16_to_f32(h);
            memcpy(d + 4 * i, &f, 4);
        }
    } else if (from == LENS_DTYPE_UINT8 && to == LENS_DTYPE_FLOAT32) {
        for (size_t i = 0; i < n; i++) {
            float f = s[i];
            memcpy(d + 4 * i, &f, 4);
        }
    } else {
        for (size_t i = 0; i < n; i++) store_number(to, d + i * ts, load_number(from, s + i * fs));
    }
}

static void cast_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const cast_job *job = ctx;
    size_t begin = (size_t)task * job->chunk, end = begin + job->chunk < job->n ? begin + job->chunk : job->n;
    cast_range(job, begin, end);
}

static void cast_elements(core_pool *pool, lens_dtype from, const void *src, lens_dtype to, void *dst, size_t n) {
    if (!n) return;
    if (from == to) {
        copy_bytes(pool, dst, src, n * dtype_size(from));
        return;
    }
    cast_job job = {from, to, src, dst, n, n};
    if (core_pool_size(pool) > 1 && n * dtype_size(to) >= PARALLEL_MIN_BYTES) {
        job.chunk = PARALLEL_MIN_BYTES / 8;
        core_pool_run(pool, (int64_t)((n + job.chunk - 1) / job.chunk), cast_task, &job);
    } else {
        cast_range(&job, 0, n);
    }
}

/* ==== Reshape, Flatten, Squeeze, Unsqueeze, Identity ============================================================= */

static lens_status flatten_infer(op_call *call) {
    lens_status st = need_io(call, "Flatten", 1, 1);
    if (st) return st;
    const tensor *x = call->inputs[0];
    int64_t axis = op_attr_int(call->node, "axis", 1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis > x->rank)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Flatten: axis %lld is out of range for rank %d",
                         (long long)op_attr_int(call->node, "axis", 1), x->rank);
    int64_t dims[2];
    if ((st = dims_product(x->dims, (int)axis, "Flatten", &dims[0]))) return st;
    if ((st = dims_product(x->dims + axis, x->rank - (int)axis, "Flatten", &dims[1]))) return st;
    ops_set_shape(call->outputs[0], x->dtype, 2, dims);
    return LENS_OK;
}

static lens_status reshape_infer(op_call *call) {
    lens_status st = need_io(call, "Reshape", 1, 1);
    if (st) return st;
    const tensor *x = call->inputs[0];
    int64_t shape[TENSOR_MAX_RANK], n;
    if (call->node->opset >= 5) {
        const tensor *s = input_at(call, 1);
        if (!s) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Reshape: shape input is missing");
        if ((st = read_ints(s, "Reshape", "shape", shape, TENSOR_MAX_RANK, &n))) return st;
    } else {
        const int64_t *values;
        n = (int64_t)op_attr_ints(call->node, "shape", &values);
        if (n > TENSOR_MAX_RANK)
            return core_fail(LENS_ERR_UNSUPPORTED, "Reshape: rank %lld is too large", (long long)n);
        if (n) memcpy(shape, values, (size_t)n * sizeof *shape);
    }
    bool allow_zero = op_attr_int(call->node, "allowzero", 0) != 0;
    int64_t dims[TENSOR_MAX_RANK], known = 1;
    int infer_at = -1;
    for (int i = 0; i < n; i++) {
        int64_t v = shape[i];
        if (v == 0 && !allow_zero) {
            if (i >= x->rank)
                return core_fail(LENS_ERR_SHAPE, "Reshape: shape[%d] is 0 but the input has rank %d", i, x->rank);
            v = x->dims[i];
        }
        if (v == -1) {
            if (infer_at >= 0) return core_fail(LENS_ERR_SHAPE, "Reshape: more than one -1 in shape");
            infer_at = i;
            continue;
        }
        if (v < 0) return core_fail(LENS_ERR_SHAPE, "Reshape: shape[%d] is %lld", i, (long long)v);
        if (__builtin_mul_overflow(known, v, &known)) return core_fail(LENS_ERR_SHAPE, "Reshape: shape overflows");
        dims[i] = v;
    }
    int64_t numel = tensor_numel(x);
    char a[128];
    if (infer_at >= 0) {
        if (known == 0 || numel % known)
            return core_fail(LENS_ERR_SHAPE, "Reshape: cannot infer the -1 dimension for input %s",
                             tensor_shape_string(x, a, sizeof a));
        dims[infer_at] = numel / known;
    } else if (known != numel) {
        tensor t = {.rank = (int)n};
        memcpy(t.dims, dims, (size_t)n * sizeof *dims);
        char b[128];
        return core_fail(LENS_ERR_SHAPE, "Reshape: cannot reshape %s to %s", tensor_shape_string(x, a, sizeof a),
                         tensor_shape_string(&t, b, sizeof b));
    }
    ops_set_shape(call->outputs[0], x->dtype, (int)n, dims);
    return LENS_OK;
}

/* Squeeze/Unsqueeze axes: an attribute before opset 13, an input from 13. Returns count -1 when absent. */
static lens_status read_axes(const op_call *call, const char *op, int64_t *axes, int64_t *count) {
    *count = -1;
    if (call->node->opset >= 13) {
        const tensor *a = input_at(call, 1);
        if (a) return read_ints(a, op, "axes", axes, TENSOR_MAX_RANK, count);
        return LENS_OK;
    }
    const int64_t *values;
    size_t n = op_attr_ints(call->node, "axes", &values);
    if (!op_attr_find(call->node, "axes")) return LENS_OK;
    if (n > TENSOR_MAX_RANK) return core_fail(LENS_ERR_UNSUPPORTED, "%s: too many axes", op);
    if (n) memcpy(axes, values, n * sizeof *axes);
    *count = (int64_t)n;
    return LENS_OK;
}

static lens_status squeeze_infer(op_call *call) {
    lens_status st = need_io(call, "Squeeze", 1, 1);
    if (st) return st;
    const tensor *x = call->inputs[0];
    int64_t axes[TENSOR_MAX_RANK], n_axes;
    if ((st = read_axes(call, "Squeeze", axes, &n_axes))) return st;
    bool drop[TENSOR_MAX_RANK] = {false};
    if (n_axes <= 0) { /* no axes (or an empty list, as ONNX Runtime reads it): every unit dimension goes */
        for (int k = 0; k < x->rank; k++) drop[k] = x->dims[k] == 1;
    }
    for (int i = 0; i < n_axes; i++) {
        int a;
        if ((st = ops_normalize_axis(axes[i], x->rank, &a))) return core_fail_context(st, "Squeeze");
        if (x->dims[a] != 1)
            return core_fail(LENS_ERR_SHAPE, "Squeeze: axis %d has size %lld, not 1", a, (long long)x->dims[a]);
        drop[a] = true;
    }
    int64_t dims[TENSOR_MAX_RANK];
    int r = 0;
    for (int k = 0; k < x->rank; k++)
        if (!drop[k]) dims[r++] = x->dims[k];
    ops_set_shape(call->outputs[0], x->dtype, r, dims);
    return LENS_OK;
}

static lens_status unsqueeze_infer(op_call *call) {
    lens_status st = need_io(call, "Unsqueeze", 1, 1);
    if (st) return st;
    const tensor *x = call->inputs[0];
    int64_t axes[TENSOR_MAX_RANK], n_axes;
    if ((st = read_axes(call, "Unsqueeze", axes, &n_axes))) return st;
    if (n_axes < 0) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Unsqueeze: axes are missing");
    if (x->rank + n_axes > TENSOR_MAX_RANK)
        return core_fail(LENS_ERR_UNSUPPORTED, "Unsqueeze: output rank %lld exceeds %d", (long long)(x->rank + n_axes),
                         TENSOR_MAX_RANK);
    int r = x->rank + (int)n_axes;
    bool inserted[TENSOR_MAX_RANK] = {false};
    for (int i = 0; i < n_axes; i++) {
        int a;
        if ((st = ops_normalize_axis(axes[i], r, &a))) return core_fail_context(st, "Unsqueeze");
        if (inserted[a]) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Unsqueeze: axis %d appears twice", a);
        inserted[a] = true;
    }
    int64_t dims[TENSOR_MAX_RANK];
    for (int k = 0, j = 0; k < r; k++) dims[k] = inserted[k] ? 1 : x->dims[j++];
    ops_set_shape(call->outputs[0], x->dtype, r, dims);
    return LENS_OK;
}

static lens_status identity_infer(op_call *call) {
    lens_status st = need_io(call, "Identity", 1, 1);
    if (st) return st;
    const tensor *x = call->inputs[0];
    ops_set_shape(call->outputs[0], x->dtype, x->rank, x->dims);
    return LENS_OK;
}

/* Dropout in inference copies; its optional mask is all true. Training mode is refused unless the ratio is 0. */
static lens_status dropout_check_training(const op_call *call, bool at_run) {
    const tensor *training = input_at(call, 2), *ratio = input_at(call, 1);
    if (!training || tensor_numel(training) < 1) return LENS_OK;
    if (!training->data) {
        if (at_run) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Dropout: training_mode has no data");
        return LENS_OK;
    }
    if (!tensor_get_int(training, 0)) return LENS_OK;
    if (ratio && tensor_numel(ratio) >= 1 && ratio->data && tensor_get_double(ratio, 0) == 0) return LENS_OK;
    if (!ratio && op_attr_float(call->node, "ratio", 0.5f) == 0) return LENS_OK;
    if (!at_run && ratio && !ratio->data) return LENS_OK; /* decided at run time */
    return core_fail(LENS_ERR_UNSUPPORTED, "Dropout: training mode with a nonzero ratio is not supported");
}

static lens_status dropout_infer(op_call *call) {
    lens_status st = need_io(call, "Dropout", 1, 1);
    if (st) return st;
    if ((st = dropout_check_training(call, false))) return st;
    const tensor *x = call->inputs[0];
    ops_set_shape(call->outputs[0], x->dtype, x->rank, x->dims);
    tensor *mask = output_at(call, 1);
    if (mask) ops_set_shape(mask, call->node->opset >= 10 ? LENS_DTYPE_BOOL : x->dtype, x->rank, x->dims);
    return LENS_OK;
}

static lens_status dropout_run(op_call *call) {
    lens_status st = dropout_check_training(call, true);
    if (st) return st;
    if ((st = copy_run(call))) return st;
    tensor *mask = output_at(call, 1);
    if (mask) {
        size_t es = dtype_size(mask->dtype);
        if (!es) return core_fail(LENS_ERR_UNSUPPORTED, "Dropout: mask type %s", dtype_name(mask->dtype));
        uint8_t one[8];
        store_double(mask->dtype, one, 1.0);
        int64_t n = tensor_numel(mask);
        if (n > 0) fill_elements(mask->data, one, es, (size_t)n);
    }
    return LENS_OK;
}

/* ==== Transpose ================================================================================================== */

static lens_status transpose_perm(const op_call *call, int *perm) {
    const tensor *x = call->inputs[0];
    const int64_t *values;
    size_t n = op_attr_ints(call->node, "perm", &values);
    if (!values) {
        for (int k = 0; k < x->rank; k++) perm[k] = x->rank - 1 - k;
        return LENS_OK;
    }
    if (n != (size_t)x->rank)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Transpose: perm has %zu entries for rank %d", n, x->rank);
    bool seen[TENSOR_MAX_RANK] = {false};
    for (int k = 0; k < x->rank; k++) {
        if (values[k] < 0 || values[k] >= x->rank || seen[values[k]])
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Transpose: perm is not a permutation");
        seen[values[k]] = true;
        perm[k] = (int)values[k];
    }
    return LENS_OK;
}

/* A Transpose with "lens.residual" (an Add fused by graph_optimize_with_shapes: ConvNeXt's block output, permuted
 * back to NCHW, plus the block's input) adds its input 1, of the output's shape, as it stores. */
static int transpose_residual(const op_call *call) { return op_attr_int(call->node, "lens.residual", 0) == 1; }

static lens_status transpose_infer(op_call *call) {
    int residual = transpose_residual(call);
    lens_status st = need_io(call, "Transpose", residual ? 2 : 1, 1);
    if (st) return st;
    const tensor *x = call->inputs[0];
    int perm[TENSOR_MAX_RANK];
    if ((st = transpose_perm(call, perm))) return st;
    int64_t dims[TENSOR_MAX_RANK];
    for (int k = 0; k < x->rank; k++) dims[k] = x->dims[perm[k]];
    ops_set_shape(call->outputs[0], x->dtype, x->rank, dims);
    if (residual) {
        const tensor *r = call->inputs[1];
        int same = x->dtype == LENS_DTYPE_FLOAT32 && r->dtype == x->dtype && r->rank == x->rank;
        for (int k = 0; same && k < x->rank; k++) same = r->dims[k] == dims[k];
        if (!same) return core_fail(LENS_ERR_SHAPE, "Transpose: the residual must be float32 of the output's shape");
    }
    return LENS_OK;
}

static lens_status transpose_run(op_call *call) {
    const tensor *x = call->inputs[0];
    const float *residual = transpose_residual(call) && call->n_inputs > 1 && call->inputs[1]
                                ? call->inputs[1]->data : NULL;
    size_t es = 0;
    lens_status st = element_size(x->dtype, "Transpose", &es);
    if (st) return st;
    int perm[TENSOR_MAX_RANK];
    if ((st = transpose_perm(call, perm))) return st;
    if (transpose_residual(call) && !residual) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Transpose: no residual");
    if (tensor_numel(x) == 0) return LENS_OK;
    int64_t strides[TENSOR_MAX_RANK];
    strides_of(x, strides);
    view v = {.rank = x->rank};
    for (int k = 0; k < x->rank; k++) {
        v.dims[k] = x->dims[perm[k]];
        v.strides[k] = strides[perm[k]];
    }
    view_copy(call->pool, v, es, x->data, call->outputs[0]->data, residual);
    return LENS_OK;
}

/* A Transpose that keeps the axes of size > 1 in their order (ViT's [1, S, C] <-> [S, 1, C] at batch 1) moves no
 * data: a view. */
/* The residual is read only where the same output goes (view_copy): the output may take its buffer. */
static int transpose_inplace_input(const op_call *call) { return ops_residual_inplace(call, 1); }

static bool transpose_is_view(const op_call *call) {
    const tensor *x = call->inputs[0];
    int perm[TENSOR_MAX_RANK], last = -1;
    if (call->n_inputs != 1 || call->n_outputs != 1 || !x || x->rank < 0 || x->rank > TENSOR_MAX_RANK ||
        transpose_perm(call, perm))
        return false;
    for (int k = 0; k < x->rank; k++) {
        if (x->dims[perm[k]] == 1) continue;
        if (perm[k] < last) return false;
        last = perm[k];
    }
    return true;
}

/* ==== Concat, Split ============================================================================================== */

static lens_status concat_axis(const op_call *call, int *axis) {
    const tensor *x = call->inputs[0];
    const op_attr *a = op_attr_find(call->node, "axis");
    int64_t value = a && a->type == OP_ATTR_INT ? a->i : 1;
    if (!a && call->node->opset >= 4) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Concat: axis attribute is missing");
    if (x->rank == 0) return core_fail(LENS_ERR_SHAPE, "Concat: inputs must have rank >= 1");
    lens_status st = ops_normalize_axis(value, x->rank, axis);
    return st ? core_fail_context(st, "Concat") : LENS_OK;
}

static lens_status concat_infer(op_call *call) {
    lens_status st = need_io(call, "Concat", call->n_inputs > 0 ? call->n_inputs : 1, 1);
    if (st) return st;
    const tensor *x = call->inputs[0];
    int axis;
    if ((st = concat_axis(call, &axis))) return st;
    int64_t dims[TENSOR_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < call->n_inputs; i++) {
        const tensor *t = call->inputs[i];
        bool same = t->rank == x->rank && t->dtype == x->dtype;
        for (int k = 0; same && k < x->rank; k++) same = k == axis || t->dims[k] == x->dims[k];
        if (!same) {
            char a[128], b[128];
            return core_fail(LENS_ERR_SHAPE, "Concat: input %d (%s %s) does not match input 0 (%s %s) on axis %d", i,
                             dtype_name(t->dtype), tensor_shape_string(t, a, sizeof a), dtype_name(x->dtype),
                             tensor_shape_string(x, b, sizeof b), axis);
        }
        if (__builtin_add_overflow(dims[axis], t->dims[axis], &dims[axis]))
            return core_fail(LENS_ERR_SHAPE, "Concat: output dimension overflows");
    }
    ops_set_shape(call->outputs[0], x->dtype, x->rank, dims);
    return check_output(call->outputs[0], "Concat");
}

typedef struct concat_job {
    const op_call *call;
    size_t out_row, inner_bytes;
    int axis;
    int64_t rows_per_task, outer;
} concat_job;

static void concat_rows(const concat_job *job, int64_t begin, int64_t end) {
    const op_call *call = job->call;
    uint8_t *out = call->outputs[0]->data;
    size_t offset = 0;
    for (int i = 0; i < call->n_inputs; i++) {
        const tensor *t = call->inputs[i];
        size_t chunk = (size_t)t->dims[job->axis] * job->inner_bytes;
        if (chunk)
            for (int64_t o = begin; o < end; o++)
                memcpy(out + (size_t)o * job->out_row + offset, (const uint8_t *)t->data + (size_t)o * chunk, chunk);
        offset += chunk;
    }
}

static void concat_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const concat_job *job = ctx;
    int64_t begin = task * job->rows_per_task, end = begin + job->rows_per_task;
    concat_rows(job, begin, end < job->outer ? end : job->outer);
}

static lens_status concat_run(op_call *call) {
    const tensor *x = call->inputs[0];
    tensor *y = call->outputs[0];
    size_t es = 0;
    int axis;
    lens_status st = element_size(x->dtype, "Concat", &es);
    if (st || (st = concat_axis(call, &axis))) return st;
    if (tensor_numel(y) == 0) return LENS_OK;
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < axis; k++) outer *= y->dims[k];
    for (int k = axis + 1; k < y->rank; k++) inner *= y->dims[k];
    concat_job job = {call, (size_t)(y->dims[axis] * inner) * es, (size_t)inner * es, axis, outer, outer};
    if (outer == 1) { /* one block per input: let each copy use the pool */
        size_t offset = 0;
        for (int i = 0; i < call->n_inputs; i++) {
            size_t chunk = (size_t)call->inputs[i]->dims[axis] * job.inner_bytes;
            copy_bytes(call->pool, (uint8_t *)y->data + offset, call->inputs[i]->data, chunk);
            offset += chunk;
        }
        return LENS_OK;
    }
    int threads = core_pool_size(call->pool);
    if (threads > 1 && tensor_bytes(y) >= PARALLEL_MIN_BYTES) {
        int64_t tasks = outer < 4 * threads ? outer : 4 * threads;
        job.rows_per_task = (outer + tasks - 1) / tasks;
        core_pool_run(call->pool, (outer + job.rows_per_task - 1) / job.rows_per_task, concat_task, &job);
    } else {
        concat_rows(&job, 0, outer);
    }
    return LENS_OK;
}

static lens_status split_infer(op_call *call) {
    lens_status st = need_io(call, "Split", 1, 0);
    if (st) return st;
    const tensor *x = call->inputs[0];
    int n = call->n_outputs, axis;
    if (n < 1) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Split: no outputs");
    if (x->rank == 0) return core_fail(LENS_ERR_SHAPE, "Split: input must have rank >= 1");
    if ((st = ops_normalize_axis(op_attr_int(call->node, "axis", 0), x->rank, &axis)))
        return core_fail_context(st, "Split");
    int64_t dim = x->dims[axis];
    const int64_t *attr_split = NULL;
    size_t n_attr = call->node->opset < 13 ? op_attr_ints(call->node, "split", &attr_split) : 0;
    const tensor *split = call->node->opset >= 13 ? input_at(call, 1) : NULL;
    if (split && tensor_numel(split) == 0) split = NULL;
    if (split && !split->data) return core_fail(LENS_ERR_UNSUPPORTED, "Split: split input must be constant");
    if (split && (!is_index_dtype(split->dtype) || split->rank != 1))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Split: split must be a 1-D int64 tensor");
    bool given = attr_split || split;
    if (given) {
        int64_t count = split ? tensor_numel(split) : (int64_t)n_attr;
        if (count != n)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Split: %lld split sizes for %d outputs", (long long)count, n);
    } else {
        int64_t num_outputs = op_attr_int(call->node, "num_outputs", n);
        if (num_outputs != n)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Split: num_outputs is %lld but the node has %d outputs",
                             (long long)num_outputs, n);
    }
    /* Without sizes the parts are equal; from opset 18 the last may be smaller. */
    int64_t chunk = (dim + n - 1) / n, total = 0;
    for (int i = 0; i < n; i++) {
        int64_t size = given ? (split ? tensor_get_int(split, i) : attr_split[i]) : (i < n - 1 ? chunk : dim - total);
        if (size < 0 || size > dim - total)
            return core_fail(LENS_ERR_SHAPE, "Split: cannot split a dimension of %lld into these parts",
                             (long long)dim);
        total += size;
        tensor *y = call->outputs[i];
        if (!y) continue;
        ops_set_shape(y, x->dtype, x->rank, x->dims);
        y->dims[axis] = size;
    }
    if (total != dim)
        return core_fail(LENS_ERR_SHAPE, "Split: parts sum to %lld, not %lld", (long long)total, (long long)dim);
    return LENS_OK;
}

static lens_status split_run(op_call *call) {
    const tensor *x = call->inputs[0];
    size_t es = 0;
    int axis;
    lens_status st = element_size(x->dtype, "Split", &es);
    if (st) return st;
    if ((st = ops_normalize_axis(op_attr_int(call->node, "axis", 0), x->rank, &axis)))
        return core_fail_context(st, "Split");
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < axis; k++) outer *= x->dims[k];
    for (int k = axis + 1; k < x->rank; k++) inner *= x->dims[k];
    size_t in_row = (size_t)(x->dims[axis] * inner) * es, offset = 0;
    for (int i = 0; i < call->n_outputs; i++) {
        tensor *y = call->outputs[i];
        if (!y) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Split: output %d is missing", i);
        size_t chunk = (size_t)(y->dims[axis] * inner) * es;
        if (!chunk) continue;
        if (outer == 1) copy_bytes(call->pool, y->data, (const uint8_t *)x->data + offset, chunk);
        else
            for (int64_t o = 0; o < outer; o++)
                memcpy((uint8_t *)y->data + (size_t)o * chunk, (const uint8_t *)x->data + (size_t)o * in_row + offset,
                       chunk);
        offset += chunk;
    }
    return LENS_OK;
}

/* ==== Slice ====================================================================================================== */

typedef struct slice_plan {
    int64_t start[TENSOR_MAX_RANK], step[TENSOR_MAX_RANK], count[TENSOR_MAX_RANK];
} slice_plan;

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static lens_status slice_plan_make(const op_call *call, slice_plan *p) {
    const tensor *x = call->inputs[0];
    int r = x->rank;
    int64_t starts[TENSOR_MAX_RANK], ends[TENSOR_MAX_RANK], axes[TENSOR_MAX_RANK], steps[TENSOR_MAX_RANK];
    int64_t n, n_ends, n_axes = -1, n_steps = -1;
    lens_status st;
    if (call->node->opset < 10) {
        const int64_t *s, *e, *a;
        n = (int64_t)op_attr_ints(call->node, "starts", &s);
        n_ends = (int64_t)op_attr_ints(call->node, "ends", &e);
        if (!s || !e) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Slice: starts and ends attributes are required");
        if (n > TENSOR_MAX_RANK || n_ends > TENSOR_MAX_RANK)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Slice: more starts than axes");
        memcpy(starts, s, (size_t)n * sizeof *s);
        memcpy(ends, e, (size_t)n_ends * sizeof *e);
        size_t count = op_attr_ints(call->node, "axes", &a);
        if (a) {
            if (count > TENSOR_MAX_RANK) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Slice: too many axes");
            n_axes = (int64_t)count;
            memcpy(axes, a, count * sizeof *a);
        }
    } else {
        const tensor *ts = input_at(call, 1), *te = input_at(call, 2), *ta = input_at(call, 3), *tp = input_at(call, 4);
        if (!ts || !te) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Slice: starts and ends inputs are required");
        if ((st = read_ints(ts, "Slice", "starts", starts, TENSOR_MAX_RANK, &n))) return st;
        if ((st = read_ints(te, "Slice", "ends", ends, TENSOR_MAX_RANK, &n_ends))) return st;
        if (ta && (st = read_ints(ta, "Slice", "axes", axes, TENSOR_MAX_RANK, &n_axes))) return st;
        if (tp && (st = read_ints(tp, "Slice", "steps", steps, TENSOR_MAX_RANK, &n_steps))) return st;
    }
    if (n_ends != n || (n_axes >= 0 && n_axes != n) || (n_steps >= 0 && n_steps != n))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Slice: starts, ends, axes and steps differ in length");
    for (int k = 0; k < r; k++) {
        p->start[k] = 0;
        p->step[k] = 1;
        p->count[k] = x->dims[k];
    }
    bool seen[TENSOR_MAX_RANK] = {false};
    for (int i = 0; i < n; i++) {
        int axis;
        if ((st = ops_normalize_axis(n_axes >= 0 ? axes[i] : i, r, &axis))) return core_fail_context(st, "Slice");
        if (seen[axis]) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Slice: axis %d appears twice", axis);
        seen[axis] = true;
        int64_t dim = x->dims[axis], start = starts[i], end = ends[i], step = n_steps >= 0 ? steps[i] : 1, count;
        if (step == 0) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Slice: step is 0 on axis %d", axis);
        /* Adding dim to a negative index cannot overflow; the clamps follow the ONNX spec. */
        if (start < 0) start += dim;
        if (end < 0) end += dim;
        if (dim == 0) {
            start = 0;
            count = 0;
        } else if (step > 0) {
            start = clamp64(start, 0, dim);
            end = clamp64(end, 0, dim);
            count = end > start ? (end - start - 1) / step + 1 : 0;
        } else {
            start = clamp64(start, 0, dim - 1);
            end = clamp64(end, -1, dim - 1);
            uint64_t magnitude = (uint64_t)0 - (uint64_t)step;
            count = start > end ? (int64_t)((uint64_t)(start - end - 1) / magnitude) + 1 : 0;
        }
        p->start[axis] = start;
        p->step[axis] = count > 1 ? step : 1; /* a step is only ever multiplied when two elements are taken */
        p->count[axis] = count;
    }
    return LENS_OK;
}

static lens_status slice_infer(op_call *call) {
    lens_status st = need_io(call, "Slice", 1, 1);
    if (st) return st;
    slice_plan p;
    if ((st = slice_plan_make(call, &p))) return st;
    const tensor *x = call->inputs[0];
    ops_set_shape(call->outputs[0], x->dtype, x->rank, p.count);
    return LENS_OK;
}

static lens_status slice_run(op_call *call) {
    const tensor *x = call->inputs[0];
    size_t es = 0;
    slice_plan p;
    lens_status st = element_size(x->dtype, "Slice", &es);
    if (st || (st = slice_plan_make(call, &p))) return st;
    int64_t strides[TENSOR_MAX_RANK], base = 0, numel = 1;
    strides_of(x, strides);
    view v = {.rank = x->rank};
    for (int k = 0; k < x->rank; k++) {
        numel *= p.count[k];
        if (p.count[k]) base += p.start[k] * strides[k];
        v.dims[k] = p.count[k];
        v.strides[k] = p.step[k] * strides[k];
    }
    if (numel == 0) return LENS_OK;
    view_copy(call->pool, v, es, (const uint8_t *)x->data + (size_t)base * es, call->outputs[0]->data, NULL);
    return LENS_OK;
}

/* ==== Gather, GatherElements ===================================================================================== */

static lens_status gather_axis(const op_call *call, const char *op, int *axis) {
    const tensor *x = call->inputs[0], *idx = call->inputs[1];
    if (!is_index_dtype(idx->dtype))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: indices must be int64 or int32, not %s", op,
                         dtype_name(idx->dtype));
    if (x->rank == 0) return core_fail(LENS_ERR_SHAPE, "%s: data must have rank >= 1", op);
    lens_status st = ops_normalize_axis(op_attr_int(call->node, "axis", 0), x->rank, axis);
    return st ? core_fail_context(st, "%s", op) : LENS_OK;
}

static lens_status gather_infer(op_call *call) {
    lens_status st = need_io(call, "Gather", 2, 1);
    int axis;
    if (st || (st = gather_axis(call, "Gather", &axis))) return st;
    const tensor *x = call->inputs[0], *idx = call->inputs[1];
    int r = x->rank - 1 + idx->rank;
    if (r > TENSOR_MAX_RANK)
        return core_fail(LENS_ERR_UNSUPPORTED, "Gather: output rank %d exceeds %d", r, TENSOR_MAX_RANK);
    int64_t dims[TENSOR_MAX_RANK];
    int j = 0;
    for (int k = 0; k < axis; k++) dims[j++] = x->dims[k];
    for (int k = 0; k < idx->rank; k++) dims[j++] = idx->dims[k];
    for (int k = axis + 1; k < x->rank; k++) dims[j++] = x->dims[k];
    ops_set_shape(call->outputs[0], x->dtype, r, dims);
    return check_output(call->outputs[0], "Gather");
}

static lens_status gather_run(op_call *call) {
    const tensor *x = call->inputs[0], *idx = call->inputs[1];
    size_t es = 0;
    int axis;
    lens_status st = element_size(x->dtype, "Gather", &es);
    if (st || (st = gather_axis(call, "Gather", &axis))) return st;
    int64_t outer = 1, inner = 1, dim = x->dims[axis], n = tensor_numel(idx);
    for (int k = 0; k < axis; k++) outer *= x->dims[k];
    for (int k = axis + 1; k < x->rank; k++) inner *= x->dims[k];
    for (int64_t i = 0; i < n; i++) {
        int64_t v = tensor_get_int(idx, i);
        if (v < -dim || v >= dim)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Gather: index %lld is out of range for axis %d of size %lld",
                             (long long)v, axis, (long long)dim);
    }
    size_t block = (size_t)inner * es;
    if (!block || !n || !outer) return LENS_OK;
    const uint8_t *src = x->data;
    uint8_t *dst = call->outputs[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < n; i++, dst += block) {
            int64_t v = tensor_get_int(idx, i);
            if (v < 0) v += dim;
            memcpy(dst, src + (size_t)(o * dim + v) * block, block);
        }
    return LENS_OK;
}

static lens_status gather_elements_infer(op_call *call) {
    lens_status st = need_io(call, "GatherElements", 2, 1);
    int axis;
    if (st || (st = gather_axis(call, "GatherElements", &axis))) return st;
    const tensor *x = call->inputs[0], *idx = call->inputs[1];
    if (idx->rank != x->rank)
        return core_fail(LENS_ERR_SHAPE, "GatherElements: indices rank %d differs from data rank %d", idx->rank,
                         x->rank);
    for (int k = 0; k < x->rank; k++)
        if (k != axis && idx->dims[k] > x->dims[k])
            return core_fail(LENS_ERR_SHAPE, "GatherElements: indices dimension %d (%lld) exceeds data's (%lld)", k,
                             (long long)idx->dims[k], (long long)x->dims[k]);
    ops_set_shape(call->outputs[0], x->dtype, idx->rank, idx->dims);
    return LENS_OK;
}

static lens_status gather_elements_run(op_call *call) {
    const tensor *x = call->inputs[0], *idx = call->inputs[1];
    size_t es = 0;
    int axis;
    lens_status st = element_size(x->dtype, "GatherElements", &es);
    if (st || (st = gather_axis(call, "GatherElements", &axis))) return st;
    int r = x->rank;
    int64_t n = tensor_numel(idx), dim = x->dims[axis], strides[TENSOR_MAX_RANK], pos[TENSOR_MAX_RANK] = {0}, base = 0;
    strides_of(x, strides);
    const uint8_t *src = x->data;
    uint8_t *dst = call->outputs[0]->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = tensor_get_int(idx, i);
        if (v < -dim || v >= dim)
            return core_fail(LENS_ERR_INVALID_ARGUMENT,
                             "GatherElements: index %lld is out of range for axis %d of size %lld",
                             (long long)v, axis, (long long)dim);
        if (v < 0) v += dim;
        memcpy(dst + (size_t)i * es, src + (size_t)(base + v * strides[axis]) * es, es);
        /* base walks the data offset of every axis except `axis`, following the indices' (smaller) shape. */
        for (int k = r - 1; k >= 0; k--) {
            if (++pos[k] < idx->dims[k]) {
                if (k != axis) base += strides[k];
                break;
            }
            if (k != axis) base -= strides[k] * (idx->dims[k] - 1);
            pos[k] = 0;
        }
    }
    return LENS_OK;
}

/* ==== Expand, Tile =============================================================================================== */

static lens_status expand_infer(op_call *call) {
    lens_status st = need_io(call, "Expand", 2, 1);
    if (st) return st;
    const tensor *x = call->inputs[0];
    tensor shape = {.dtype = LENS_DTYPE_INT64};
    int64_t n;
    if ((st = read_ints(call->inputs[1], "Expand", "shape", shape.dims, TENSOR_MAX_RANK, &n))) return st;
    shape.rank = (int)n;
    for (int k = 0; k < shape.rank; k++)
        if (shape.dims[k] < 0) return core_fail(LENS_ERR_SHAPE, "Expand: shape[%d] is negative", k);
    tensor out = {0};
    if ((st = ops_broadcast_shape(x, &shape, &out))) return core_fail_context(st, "Expand");
    ops_set_shape(call->outputs[0], x->dtype, out.rank, out.dims);
    return check_output(call->outputs[0], "Expand");
}

static lens_status expand_run(op_call *call) {
    const tensor *x = call->inputs[0];
    tensor *y = call->outputs[0];
    size_t es = 0;
    lens_status st = element_size(x->dtype, "Expand", &es);
    if (st) return st;
    if (y->rank < x->rank) return core_fail(LENS_ERR_SHAPE, "Expand: output rank is below input rank");
    if (tensor_numel(y) == 0) return LENS_OK;
    int64_t strides[TENSOR_MAX_RANK];
    strides_of(x, strides);
    view v = {.rank = y->rank};
    int lead = y->rank - x->rank;
    for (int k = 0; k < y->rank; k++) {
        v.dims[k] = y->dims[k];
        v.strides[k] = k < lead || x->dims[k - lead] == 1 ? 0 : strides[k - lead];
    }
    view_copy(call->pool, v, es, x->data, y->data, NULL);
    return LENS_OK;
}

static lens_status tile_repeats(const op_call *call, int64_t *repeats) {
    const tensor *x = call->inputs[0];
    int64_t n;
    lens_status st = read_ints(call->inputs[1], "Tile", "repeats", repeats, TENSOR_MAX_RANK, &n);
    if (st) return st;
    if (n != x->rank)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Tile: %lld repeats for rank %d", (long long)n, x->rank);
    for (int k = 0; k < n; k++)
        if (repeats[k] < 0) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Tile: repeats[%d] is negative", k);
    return LENS_OK;
}

static lens_status tile_infer(op_call *call) {
    lens_status st = need_io(call, "Tile", 2, 1);
    int64_t repeats[TENSOR_MAX_RANK], dims[TENSOR_MAX_RANK];
    if (st || (st = tile_repeats(call, repeats))) return st;
    const tensor *x = call->inputs[0];
    for (int k = 0; k < x->rank; k++)
        if (__builtin_mul_overflow(x->dims[k], repeats[k], &dims[k]))
            return core_fail(LENS_ERR_SHAPE, "Tile: output dimension overflows");
    ops_set_shape(call->outputs[0], x->dtype, x->rank, dims);
    return check_output(call->outputs[0], "Tile");
}

static lens_status tile_run(op_call *call) {
    const tensor *x = call->inputs[0];
    size_t es = 0;
    int64_t repeats[TENSOR_MAX_RANK], strides[TENSOR_MAX_RANK];
    lens_status st = element_size(x->dtype, "Tile", &es);
    if (st || (st = tile_repeats(call, repeats))) return st;
    if (tensor_numel(call->outputs[0]) == 0) return LENS_OK;
    strides_of(x, strides);
    /* Output axis k of size repeats[k] * dims[k] is the pair (repeat, index): C order is unchanged. */
    view v = {.rank = 2 * x->rank};
    for (int k = 0; k < x->rank; k++) {
        v.dims[2 * k] = repeats[k];
        v.strides[2 * k] = 0;
        v.dims[2 * k + 1] = x->dims[k];
        v.strides[2 * k + 1] = strides[k];
    }
    if (x->rank == 0) {
        v.rank = 1;
        v.dims[0] = 1;
        v.strides[0] = 1;
    }
    view_copy(call->pool, v, es, x->data, call->outputs[0]->data, NULL);
    return LENS_OK;
}

/* ==== Pad ======================================================================================================== */

typedef enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP } pad_mode;

typedef struct pad_plan {
    pad_mode mode;
    int64_t begin[TENSOR_MAX_RANK], end[TENSOR_MAX_RANK];
    uint8_t value[8]; /* the constant, one element of the input's type */
} pad_plan;

/* Pads beyond this are refused, which keeps every index computation far from overflow. */
#define PAD_LIMIT ((int64_t)1 << 40)

static lens_status pad_plan_make(const op_call *call, pad_plan *p, bool need_value) {
    const tensor *x = call->inputs[0];
    int r = x->rank;
    const char *mode = op_attr_string(call->node, "mode", "constant");
    if (!strcmp(mode, "constant")) p->mode = PAD_CONSTANT;
    else if (!strcmp(mode, "reflect")) p->mode = PAD_REFLECT;
    else if (!strcmp(mode, "edge")) p->mode = PAD_EDGE;
    else if (!strcmp(mode, "wrap")) p->mode = PAD_WRAP;
    else return core_fail(LENS_ERR_UNSUPPORTED, "Pad: mode '%s' is not supported", mode);
    int64_t pads[2 * TENSOR_MAX_RANK], n_pads, axes[TENSOR_MAX_RANK], n_axes = -1;
    lens_status st;
    memset(p->value, 0, sizeof p->value);
    if (call->node->opset < 11) {
        const int64_t *values;
        size_t n = op_attr_ints(call->node, call->node->opset < 2 ? "paddings" : "pads", &values);
        if (!values) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Pad: pads attribute is missing");
        if (n > 2 * TENSOR_MAX_RANK) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Pad: too many pads");
        memcpy(pads, values, n * sizeof *values);
        n_pads = (int64_t)n;
        store_double(x->dtype, p->value, op_attr_float(call->node, "value", 0));
    } else {
        const tensor *tp = input_at(call, 1), *tv = input_at(call, 2), *ta = input_at(call, 3);
        if (!tp) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Pad: pads input is missing");
        if ((st = read_ints(tp, "Pad", "pads", pads, 2 * TENSOR_MAX_RANK, &n_pads))) return st;
        if (ta && (st = read_ints(ta, "Pad", "axes", axes, TENSOR_MAX_RANK, &n_axes))) return st;
        if (tv && tensor_numel(tv) > 0 && need_value) {
            if (tv->dtype != x->dtype)
                return core_fail(LENS_ERR_INVALID_ARGUMENT, "Pad: constant_value is %s but the input is %s",
                                 dtype_name(tv->dtype), dtype_name(x->dtype));
            if (!tv->data) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Pad: constant_value has no data");
            memcpy(p->value, tv->data, dtype_size(x->dtype));
        }
    }
    int64_t n = n_axes >= 0 ? n_axes : r;
    if (n_pads != 2 * n)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Pad: %lld pads for %lld axes", (long long)n_pads, (long long)n);
    for (int k = 0; k < r; k++) p->begin[k] = p->end[k] = 0;
    for (int i = 0; i < n; i++) {
        int axis = i;
        if (n_axes >= 0 && (st = ops_normalize_axis(axes[i], r, &axis))) return core_fail_context(st, "Pad");
        int64_t b = pads[i], e = pads[n + i];
        if (b < -PAD_LIMIT || b > PAD_LIMIT || e < -PAD_LIMIT || e > PAD_LIMIT)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Pad: pad %lld/%lld on axis %d is too large", (long long)b,
                             (long long)e, axis);
        p->begin[axis] = b;
        p->end[axis] = e;
    }
    for (int k = 0; k < r; k++)
        if (p->mode != PAD_CONSTANT && x->dims[k] == 0 && (p->begin[k] > 0 || p->end[k] > 0))
            return core_fail(LENS_ERR_SHAPE, "Pad: cannot %s-pad the empty axis %d", mode, k);
    return LENS_OK;
}

/* The source index for output coordinate i (already shifted by the begin pad) along an axis of size dim, or -1
 * for the constant. Reflect mirrors without repeating the edge (numpy's "reflect") and folds repeatedly. */
static int64_t pad_source(int64_t i, int64_t dim, pad_mode mode) {
    if (i >= 0 && i < dim) return i;
    switch (mode) {
    case PAD_CONSTANT: return -1;
    case PAD_EDGE: return i < 0 ? 0 : dim - 1;
    case PAD_WRAP: { int64_t m = i % dim; return m < 0 ? m + dim : m; }
    case PAD_REFLECT: {
        if (dim == 1) return 0;
        int64_t period = 2 * (dim - 1), m = i % period;
        if (m < 0) m += period;
        return m < dim ? m : period - m;
    }
    }
    return -1;
}

static lens_status pad_infer(op_call *call) {
    lens_status st = need_io(call, "Pad", 1, 1);
    pad_plan p;
    if (st || (st = pad_plan_make(call, &p, false))) return st;
    const tensor *x = call->inputs[0];
    int64_t dims[TENSOR_MAX_RANK];
    for (int k = 0; k < x->rank; k++) {
        if (__builtin_add_overflow(x->dims[k], p.begin[k] + p.end[k], &dims[k]))
            return core_fail(LENS_ERR_LIMIT, "Pad: axis %d overflows", k);
        if (dims[k] < 0)
            return core_fail(LENS_ERR_SHAPE, "Pad: axis %d would have size %lld", k, (long long)dims[k]);
    }
    ops_set_shape(call->outputs[0], x->dtype, x->rank, dims);
    return check_output(call->outputs[0], "Pad");
}

typedef struct pad_job {
    const tensor *x;
    tensor *y;
    const pad_plan *p;
    size_t esize;
    int64_t rows, rows_per_task;
} pad_job;

static void pad_rows(const pad_job *job, int64_t begin, int64_t end) {
    const tensor *x = job->x, *y = job->y;
    const pad_plan *p = job->p;
    int r = y->rank, last = r - 1;
    size_t es = job->esize;
    int64_t strides[TENSOR_MAX_RANK], out_w = y->dims[last], in_w = x->dims[last], b = p->begin[last];
    strides_of(x, strides);
    /* The span of the row that maps straight onto the input row. */
    int64_t lo = clamp64(b, 0, out_w), hi = clamp64(b + in_w, 0, out_w);
    for (int64_t row = begin; row < end; row++) {
        uint8_t *d = (uint8_t *)y->data + (size_t)(row * out_w) * es;
        int64_t rest = row, offset = 0;
        bool constant = false;
        for (int k = last - 1; k >= 0; k--) {
            int64_t o = rest % y->dims[k];
            rest /= y->dims[k];
            int64_t i = pad_source(o - p->begin[k], x->dims[k], p->mode);
            if (i < 0) constant = true;
            else offset += i * strides[k];
        }
        if (constant) {
            fill_elements(d, p->value, es, (size_t)out_w);
            continue;
        }
        const uint8_t *s = (const uint8_t *)x->data + (size_t)offset * es;
        if (hi > lo) memcpy(d + (size_t)lo * es, s + (size_t)(lo - b) * es, (size_t)(hi - lo) * es);
        for (int64_t o = 0; o < out_w; o++) {
            if (o == lo && hi > lo) o = hi;
            if (o >= out_w) break;
            int64_t i = pad_source(o - b, in_w, p->mode);
            memcpy(d + (size_t)o * es, i < 0 ? p->value : s + (size_t)i * es, es);
        }
    }
}

static void pad_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const pad_job *job = ctx;
    int64_t begin = task * job->rows_per_task, end = begin + job->rows_per_task;
    pad_rows(job, begin, end < job->rows ? end : job->rows);
}

static lens_status pad_run(op_call *call) {
    const tensor *x = call->inputs[0];
    tensor *y = call->outputs[0];
    size_t es = 0;
    pad_plan p;
    lens_status st = element_size(x->dtype, "Pad", &es);
    if (st || (st = pad_plan_make(call, &p, true))) return st;
    if (tensor_numel(y) == 0) return LENS_OK;
    if (y->rank == 0) {
        memcpy(y->data, x->data, es);
        return LENS_OK;
    }
    pad_job job = {x, y, &p, es, tensor_numel(y) / y->dims[y->rank - 1], 0};
    int threads = core_pool_size(call->pool);
    if (threads > 1 && tensor_bytes(y) >= PARALLEL_MIN_BYTES && job.rows > 1) {
        int64_t tasks = job.rows < 4 * threads ? job.rows : 4 * threads;
        job.rows_per_task = (job.rows + tasks - 1) / tasks;
        core_pool_run(call->pool, (job.rows + job.rows_per_task - 1) / job.rows_per_task, pad_task, &job);
    } else {
        pad_rows(&job, 0, job.rows);
    }
    return LENS_OK;
}

/* ==== Shape, Size ================================================================================================ */

static void shape_range(const op_call *call, int64_t *start, int64_t *end) {
    int r = call->inputs[0]->rank;
    int64_t s = op_attr_int(call->node, "start", 0), e = op_attr_int(call->node, "end", r);
    if (s < 0) s += r;
    if (e < 0) e += r;
    *start = clamp64(s, 0, r);
    *end = clamp64(e, 0, r);
    if (*end < *start) *end = *start;
}

static lens_status shape_infer(op_call *call) {
    lens_status st = need_io(call, "Shape", 1, 1);
    if (st) return st;
    int64_t start, end;
    shape_range(call, &start, &end);
    int64_t dims[1] = {end - start};
    ops_set_shape(call->outputs[0], LENS_DTYPE_INT64, 1, dims);
    return LENS_OK;
}

static lens_status shape_run(op_call *call) {
    int64_t start, end;
    shape_range(call, &start, &end);
    if (end > start)
        memcpy(call->outputs[0]->data, call->inputs[0]->dims + start, (size_t)(end - start) * sizeof(int64_t));
    return LENS_OK;
}

static lens_status size_infer(op_call *call) {
    lens_status st = need_io(call, "Size", 1, 1);
    if (st) return st;
    ops_set_shape(call->outputs[0], LENS_DTYPE_INT64, 0, NULL);
    return LENS_OK;
}

static lens_status size_run(op_call *call) {
    int64_t n = tensor_numel(call->inputs[0]);
    memcpy(call->outputs[0]->data, &n, sizeof n);
    return LENS_OK;
}

/* ==== Constant, ConstantOfShape, Range =========================================================================== */

/* The attribute that holds a Constant's value. */
static lens_status constant_attr(const op_call *call, const op_attr **out) {
    static const char *const names[] = {"value", "value_float", "value_floats", "value_int", "value_ints"};
    static const char *const unsupported[] = {"sparse_value", "value_string", "value_strings"};
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++)
        if (op_attr_find(call->node, unsupported[i]))
            return core_fail(LENS_ERR_UNSUPPORTED, "Constant: attribute '%s' is not supported", unsupported[i]);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const op_attr *a = op_attr_find(call->node, names[i]);
        if (!a) continue;
        static const op_attr_type types[] = {OP_ATTR_TENSOR, OP_ATTR_FLOAT, OP_ATTR_FLOATS, OP_ATTR_INT, OP_ATTR_INTS};
        if (a->type != types[i] || (i == 0 && !a->t))
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Constant: attribute '%s' has the wrong type", names[i]);
        *out = a;
        return LENS_OK;
    }
    return core_fail(LENS_ERR_INVALID_ARGUMENT, "Constant: no value attribute");
}

static lens_status constant_infer(op_call *call) {
    lens_status st = need_io(call, "Constant", 0, 1);
    const op_attr *a;
    if (st || (st = constant_attr(call, &a))) return st;
    tensor *y = call->outputs[0];
    int64_t count = (int64_t)a->count;
    switch (a->type) {
    case OP_ATTR_TENSOR:
        if (a->t->rank < 0 || a->t->rank > TENSOR_MAX_RANK || tensor_bytes(a->t) == SIZE_MAX)
            return core_fail(LENS_ERR_SHAPE, "Constant: value has an invalid shape");
        if (!dtype_size(a->t->dtype))
            return core_fail(LENS_ERR_UNSUPPORTED, "Constant: element type %s is not supported",
                             dtype_name(a->t->dtype));
        ops_set_shape(y, a->t->dtype, a->t->rank, a->t->dims);
        break;
    case OP_ATTR_FLOAT: ops_set_shape(y, LENS_DTYPE_FLOAT32, 0, NULL); break;
    case OP_ATTR_INT: ops_set_shape(y, LENS_DTYPE_INT64, 0, NULL); break;
    case OP_ATTR_FLOATS: ops_set_shape(y, LENS_DTYPE_FLOAT32, 1, &count); break;
    default: ops_set_shape(y, LENS_DTYPE_INT64, 1, &count); break;
    }
    return LENS_OK;
}

static lens_status constant_run(op_call *call) {
    const op_attr *a;
    lens_status st = constant_attr(call, &a);
    if (st) return st;
    void *dst = call->outputs[0]->data;
    switch (a->type) {
    case OP_ATTR_TENSOR: {
        size_t bytes = tensor_bytes(a->t);
        if (bytes && !a->t->data) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Constant: value has no data");
        if (bytes) memcpy(dst, a->t->data, bytes);
        break;
    }
    case OP_ATTR_FLOAT: memcpy(dst, &a->f, sizeof a->f); break;
    case OP_ATTR_INT: memcpy(dst, &a->i, sizeof a->i); break;
    case OP_ATTR_FLOATS: if (a->count) memcpy(dst, a->floats, a->count * sizeof *a->floats); break;
    default: if (a->count) memcpy(dst, a->ints, a->count * sizeof *a->ints); break;
    }
    return LENS_OK;
}

/* ConstantOfShape's fill value: the one-element "value" tensor, or float 0. */
static lens_status constant_of_shape_value(const op_call *call, lens_dtype *dtype, uint8_t *value) {
    const op_attr *a = op_attr_find(call->node, "value");
    memset(value, 0, 8);
    *dtype = LENS_DTYPE_FLOAT32;
    if (!a) return LENS_OK;
    if (a->type != OP_ATTR_TENSOR || !a->t || tensor_numel(a->t) != 1 || !a->t->data)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "ConstantOfShape: value must be a one-element tensor");
    size_t es = 0;
    lens_status st = element_size(a->t->dtype, "ConstantOfShape", &es);
    if (st) return st;
    *dtype = a->t->dtype;
    memcpy(value, a->t->data, es);
    return LENS_OK;
}

static lens_status constant_of_shape_infer(op_call *call) {
    lens_status st = need_io(call, "ConstantOfShape", 1, 1);
    if (st) return st;
    int64_t dims[TENSOR_MAX_RANK], n, numel;
    lens_dtype dtype;
    uint8_t value[8];
    if ((st = constant_of_shape_value(call, &dtype, value))) return st;
    if ((st = read_ints(call->inputs[0], "ConstantOfShape", "shape", dims, TENSOR_MAX_RANK, &n))) return st;
    for (int k = 0; k < n; k++)
        if (dims[k] < 0) return core_fail(LENS_ERR_SHAPE, "ConstantOfShape: shape[%d] is negative", k);
    if ((st = dims_product(dims, (int)n, "ConstantOfShape", &numel))) return st;
    ops_set_shape(call->outputs[0], dtype, (int)n, dims);
    return check_output(call->outputs[0], "ConstantOfShape");
}

static lens_status constant_of_shape_run(op_call *call) {
    lens_dtype dtype;
    uint8_t value[8];
    lens_status st = constant_of_shape_value(call, &dtype, value);
    if (st) return st;
    tensor *y = call->outputs[0];
    int64_t n = tensor_numel(y);
    if (n > 0) fill_elements(y->data, value, dtype_size(dtype), (size_t)n);
    return LENS_OK;
}

static bool range_dtype_ok(lens_dtype d) {
    return d == LENS_DTYPE_FLOAT32 || d == LENS_DTYPE_FLOAT64 || d == LENS_DTYPE_INT16 || d == LENS_DTYPE_INT32 ||
           d == LENS_DTYPE_INT64;
}

/* Element count of Range: max(ceil((limit - start) / delta), 0), exact for integers. */
static lens_status range_count(const op_call *call, int64_t *count) {
    const tensor *t[3] = {call->inputs[0], call->inputs[1], call->inputs[2]};
    lens_dtype dtype = t[0]->dtype;
    for (int i = 0; i < 3; i++) {
        if (t[i]->dtype != dtype || tensor_numel(t[i]) != 1)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Range: start, limit and delta must be scalars of one type");
        if (!t[i]->data) return core_fail(LENS_ERR_UNSUPPORTED, "Range: inputs must be constant");
    }
    if (!range_dtype_ok(dtype))
        return core_fail(LENS_ERR_UNSUPPORTED, "Range: element type %s is not supported", dtype_name(dtype));
    int64_t n;
    if (dtype == LENS_DTYPE_FLOAT32 || dtype == LENS_DTYPE_FLOAT64) {
        double start = tensor_get_double(t[0], 0), limit = tensor_get_double(t[1], 0);
        double delta = tensor_get_double(t[2], 0);
        double span = dtype == LENS_DTYPE_FLOAT32 ? (double)((float)limit - (float)start) : limit - start;
        double c = ceil(span / delta);
        if (delta == 0 || !isfinite(c))
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Range: delta is 0 or a value is not finite");
        if (c > 9.0e15) return core_fail(LENS_ERR_LIMIT, "Range: too many elements");
        n = c > 0 ? (int64_t)c : 0;
    } else {
        int64_t start = tensor_get_int(t[0], 0), limit = tensor_get_int(t[1], 0), delta = tensor_get_int(t[2], 0), span;
        if (delta == 0) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Range: delta is 0");
        if (__builtin_sub_overflow(limit, start, &span)) return core_fail(LENS_ERR_LIMIT, "Range: too many elements");
        if ((span > 0) != (delta > 0) || span == 0) n = 0;
        else if (delta > 0) n = (span - 1) / delta + 1;
        else n = (span + 1) / delta + 1; /* both negative */
    }
    *count = n;
    return LENS_OK;
}

static lens_status range_infer(op_call *call) {
    lens_status st = need_io(call, "Range", 3, 1);
    int64_t n;
    if (st || (st = range_count(call, &n))) return st;
    ops_set_shape(call->outputs[0], call->inputs[0]->dtype, 1, &n);
    return check_output(call->outputs[0], "Range");
}

static lens_status range_run(op_call *call) {
    int64_t n;
    lens_status st = range_count(call, &n);
    if (st) return st;
    const tensor *start = call->inputs[0], *delta = call->inputs[2];
    lens_dtype dtype = start->dtype;
    uint8_t *dst = call->outputs[0]->data;
    size_t es = dtype_size(dtype);
    if (dtype == LENS_DTYPE_FLOAT32 || dtype == LENS_DTYPE_FLOAT64) {
        double s = tensor_get_double(start, 0), d = tensor_get_double(delta, 0);
        for (int64_t i = 0; i < n; i++) store_double(dtype, dst + (size_t)i * es, s + (double)i * d);
    } else {
        /* start + i * delta stays between start and limit, so it cannot overflow. */
        int64_t s = tensor_get_int(start, 0), d = tensor_get_int(delta, 0);
        for (int64_t i = 0; i < n; i++) {
            number v = {NUM_INT, s + i * d, 0, 0};
            store_number(dtype, dst + (size_t)i * es, v);
        }
    }
    return LENS_OK;
}

/* ==== Cast, CastLike ============================================================================================= */

static lens_status cast_target(const op_call *call, lens_dtype *to) {
    if (!strcmp(call->node->op_type, "CastLike")) {
        const tensor *like = input_at(call, 1);
        if (!like) return core_fail(LENS_ERR_INVALID_ARGUMENT, "CastLike: target_type input is missing");
        *to = like->dtype;
    } else {
        const op_attr *a = op_attr_find(call->node, "to");
        if (!a || a->type != OP_ATTR_INT)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Cast: 'to' attribute is missing");
        if (a->i < 0 || a->i > 64 || !dtype_size((lens_dtype)a->i))
            return core_fail(LENS_ERR_UNSUPPORTED, "Cast: target type %lld is not supported", (long long)a->i);
        *to = (lens_dtype)a->i;
    }
    size_t es = 0;
    lens_status st = element_size(*to, call->node->op_type, &es);
    if (st) return st;
    return element_size(call->inputs[0]->dtype, call->node->op_type, &es);
}

static lens_status cast_infer(op_call *call) {
    lens_status st = need_io(call, call->node->op_type, 1, 1);
    lens_dtype to;
    if (st || (st = cast_target(call, &to))) return st;
    const tensor *x = call->inputs[0];
    ops_set_shape(call->outputs[0], to, x->rank, x->dims);
    return check_output(call->outputs[0], call->node->op_type);
}

static lens_status cast_run(op_call *call) {
    lens_dtype to;
    lens_status st = cast_target(call, &to);
    if (st) return st;
    const tensor *x = call->inputs[0];
    cast_elements(call->pool, x->dtype, x->data, to, call->outputs[0]->data, (size_t)tensor_numel(x));
    return LENS_OK;
}

/* ==== TopK ======================================================================================================= */

typedef struct topk_item {
    union {
        double d;
        int64_t i;
        uint64_t u;
    } key;
    int64_t index;
} topk_item;

/* Orders put the wanted element first; ties keep the lower index first, as the spec asks. NaN counts as largest. */
static int topk_cmp_index(const topk_item *a, const topk_item *b) {
    return (a->index > b->index) - (a->index < b->index);
}
static int topk_cmp_double(const void *pa, const void *pb, int sign) {
    const topk_item *a = pa, *b = pb;
    double x = a->key.d, y = b->key.d;
    bool nx = x != x, ny = y != y;
    int c = nx || ny ? (nx && !ny) - (ny && !nx) : (x > y) - (x < y);
    return c ? -sign * c : topk_cmp_index(a, b);
}
static int topk_largest_double(const void *a, const void *b) { return topk_cmp_double(a, b, 1); }
static int topk_smallest_double(const void *a, const void *b) { return topk_cmp_double(a, b, -1); }
static int topk_cmp_int(const void *pa, const void *pb, int sign) {
    const topk_item *a = pa, *b = pb;
    int c = (a->key.i > b->key.i) - (a->key.i < b->key.i);
    return c ? -sign * c : topk_cmp_index(a, b);
}
static int topk_largest_int(const void *a, const void *b) { return topk_cmp_int(a, b, 1); }
static int topk_smallest_int(const void *a, const void *b) { return topk_cmp_int(a, b, -1); }
static int topk_cmp_uint(const void *pa, const void *pb, int sign) {
    const topk_item *a = pa, *b = pb;
    int c = (a->key.u > b->key.u) - (a->key.u < b->key.u);
    return c ? -sign * c : topk_cmp_index(a, b);
}
static int topk_largest_uint(const void *a, const void *b) { return topk_cmp_uint(a, b, 1); }
static int topk_smallest_uint(const void *a, const void *b) { return topk_cmp_uint(a, b, -1); }

static lens_status topk_params(const op_call *call, int *axis, int64_t *k) {
    const tensor *x = call->inputs[0];
    if (x->rank == 0) return core_fail(LENS_ERR_SHAPE, "TopK: input must have rank >= 1");
    lens_status st = ops_normalize_axis(op_attr_int(call->node, "axis", -1), x->rank, axis);
    if (st) return core_fail_context(st, "TopK");
    if (call->node->opset >= 10) {
        const tensor *tk = input_at(call, 1);
        int64_t values[1], n;
        if (!tk) return core_fail(LENS_ERR_INVALID_ARGUMENT, "TopK: K input is missing");
        if ((st = read_ints(tk, "TopK", "K", values, 1, &n))) return st;
        if (n != 1) return core_fail(LENS_ERR_INVALID_ARGUMENT, "TopK: K must have one value");
        *k = values[0];
    } else {
        *k = op_attr_int(call->node, "k", -1);
    }
    if (*k < 0 || *k > x->dims[*axis])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "TopK: k = %lld is out of range for a dimension of %lld",
                         (long long)*k, (long long)x->dims[*axis]);
    return LENS_OK;
}

static lens_status topk_infer(op_call *call) {
    lens_status st = need_io(call, "TopK", 1, 0);
    int axis;
    int64_t k;
    if (st || (st = topk_params(call, &axis, &k))) return st;
    const tensor *x = call->inputs[0];
    if (x->dtype == LENS_DTYPE_BOOL || !dtype_size(x->dtype))
        return core_fail(LENS_ERR_UNSUPPORTED, "TopK: element type %s is not supported", dtype_name(x->dtype));
    tensor *values = output_at(call, 0), *indices = output_at(call, 1);
    if (values) {
        ops_set_shape(values, x->dtype, x->rank, x->dims);
        values->dims[axis] = k;
    }
    if (indices) {
        ops_set_shape(indices, LENS_DTYPE_INT64, x->rank, x->dims);
        indices->dims[axis] = k;
    }
    return LENS_OK;
}

static lens_status topk_run(op_call *call) {
    int axis;
    int64_t k;
    lens_status st = topk_params(call, &axis, &k);
    if (st) return st;
    const tensor *x = call->inputs[0];
    tensor *values = output_at(call, 0), *indices = output_at(call, 1);
    int64_t dim = x->dims[axis], outer = 1, inner = 1;
    for (int j = 0; j < axis; j++) outer *= x->dims[j];
    for (int j = axis + 1; j < x->rank; j++) inner *= x->dims[j];
    if (k == 0 || outer * inner == 0) return LENS_OK;
    topk_item *items = malloc((size_t)dim * sizeof *items);
    if (!items) return core_fail(LENS_ERR_OUT_OF_MEMORY, "TopK: out of memory");
    bool largest = op_attr_int(call->node, "largest", 1) != 0;
    num_kind kind = x->dtype == LENS_DTYPE_UINT64 ? NUM_UINT
                    : (x->dtype == LENS_DTYPE_FLOAT32 || x->dtype == LENS_DTYPE_FLOAT64 ||
                       x->dtype == LENS_DTYPE_FLOAT16 || x->dtype == LENS_DTYPE_BFLOAT16)
                        ? NUM_FLOAT
                        : NUM_INT;
    int (*cmp)(const void *, const void *) =
        kind == NUM_FLOAT ? (largest ? topk_largest_double : topk_smallest_double)
        : kind == NUM_UINT ? (largest ? topk_largest_uint : topk_smallest_uint)
                           : (largest ? topk_largest_int : topk_smallest_int);
    size_t es = dtype_size(x->dtype);
    const uint8_t *src = x->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            for (int64_t j = 0; j < dim; j++) {
                number v = load_number(x->dtype, src + (size_t)((o * dim + j) * inner + in) * es);
                if (kind == NUM_FLOAT) items[j].key.d = v.d;
                else if (kind == NUM_UINT) items[j].key.u = v.u;
                else items[j].key.i = v.i;
                items[j].index = j;
            }
            qsort(items, (size_t)dim, sizeof *items, cmp);
            for (int64_t j = 0; j < k; j++) {
                size_t out = (size_t)((o * k + j) * inner + in);
                const uint8_t *chosen = src + (size_t)((o * dim + items[j].index) * inner + in) * es;
                if (values) memcpy((uint8_t *)values->data + out * es, chosen, es);
                if (indices) memcpy((uint8_t *)indices->data + out * 8, &items[j].index, 8);
            }
        }
    free(items);
    return LENS_OK;
}

/* ==== Table ====================================================================================================== */

bool ops_is_view(const op_call *call) {
    const char *op = call->node->op_type, *domain = call->node->domain;
    if ((domain[0] && strcmp(domain, "ai.onnx")) || call->n_inputs < 1 || call->n_outputs != 1) return false;
    if (!strcmp(op, "Transpose")) return transpose_is_view(call);
    if (!strcmp(op, "Reshape") || !strcmp(op, "Flatten") || !strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze") ||
        !strcmp(op, "Identity"))
        return same_bytes_view(call);
    return false;
}

const op_def ops_table_shape[] = {
    {"", "Flatten", flatten_infer, copy_run, NULL, NULL, NULL},
    {"", "Reshape", reshape_infer, copy_run, NULL, NULL, NULL},
    {"", "Squeeze", squeeze_infer, copy_run, NULL, NULL, NULL},
    {"", "Unsqueeze", unsqueeze_infer, copy_run, NULL, NULL, NULL},
    {"", "Identity", identity_infer, copy_run, NULL, NULL, NULL},
    {"", "Dropout", dropout_infer, dropout_run, NULL, NULL, NULL},
    {"", "Transpose", transpose_infer, transpose_run, NULL, NULL, transpose_inplace_input},
    {"", "Concat", concat_infer, concat_run, NULL, NULL, NULL},
    {"", "Split", split_infer, split_run, NULL, NULL, NULL},
    {"", "Slice", slice_infer, slice_run, NULL, NULL, NULL},
    {"", "Gather", gather_infer, gather_run, NULL, NULL, NULL},
    {"", "GatherElements", gather_elements_infer, gather_elements_run, NULL, NULL, NULL},
    {"", "Expand", expand_infer, expand_run, NULL, NULL, NULL},
    {"", "Tile", tile_infer, tile_run, NULL, NULL, NULL},
    {"", "Pad", pad_infer, pad_run, NULL, NULL, NULL},
    {"", "Shape", shape_infer, shape_run, NULL, NULL, NULL},
    {"", "Size", size_infer, size_run, NULL, NULL, NULL},
    {"", "Constant", constant_infer, constant_run, NULL, NULL, NULL},
    {"", "ConstantOfShape", constant_of_shape_infer, constant_of_shape_run, NULL, NULL, NULL},
    {"", "Range", range_infer, range_run, NULL, NULL, NULL},
    {"", "Cast", cast_infer, cast_run, NULL, NULL, NULL},
    {"", "CastLike", cast_infer, cast_run, NULL, NULL, NULL},
    {"", "TopK", topk_infer, topk_run, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
