/* test_shape_ops.c — every op of src/ops/shape.c and src/ops/resize.c through its op_def (infer, then run) against
 * hand-computed outputs; Resize cases against numbers from the ONNX reference implementation (backend test data). */
#include <stdint.h>
#include <string.h>

#include "ops/ops.h"
#include "test.h"

/* ---- Harness ------------------------------------------------------------------------------------------------- */

#define MAX_IO 8

static core_pool *pool2;

static op_attr attr_int(const char *name, int64_t v) { return (op_attr){.name = name, .type = OP_ATTR_INT, .i = v}; }
static op_attr attr_float(const char *name, float v) { return (op_attr){.name = name, .type = OP_ATTR_FLOAT, .f = v}; }
static op_attr attr_str(const char *name, const char *s) {
    return (op_attr){.name = name, .type = OP_ATTR_STRING, .s = s, .s_len = strlen(s)};
}
static op_attr attr_ints(const char *name, const int64_t *v, size_t n) {
    return (op_attr){.name = name, .type = OP_ATTR_INTS, .ints = v, .count = n};
}
static op_attr attr_floats(const char *name, const float *v, size_t n) {
    return (op_attr){.name = name, .type = OP_ATTR_FLOATS, .floats = v, .count = n};
}
static op_attr attr_tensor(const char *name, const tensor *t) {
    return (op_attr){.name = name, .type = OP_ATTR_TENSOR, .t = t};
}

static tensor tens(lens_dtype dtype, int rank, const int64_t *dims, const void *data) {
    tensor t = {.dtype = dtype, .rank = rank, .data = (void *)data};
    for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
    return t;
}
#define T1(dtype, n, ...) tens(dtype, 1, (int64_t[]){n}, __VA_ARGS__)
#define DIMS(...) (int64_t[]){__VA_ARGS__}

typedef struct op_case {
    const char *op;
    int opset;
    op_attr attrs[8];
    int n_attrs;
    const tensor *in[MAX_IO];
    int n_in;
    tensor out[MAX_IO];
    int n_out;
    bool omit_out[MAX_IO];
    core_pool *pool;
} op_case;

/* Runs infer, allocates outputs, runs. Outputs stay allocated until case_free. */
static lens_status case_run(op_case *c) {
    const op_def *def = ops_lookup("", c->op);
    if (!def) {
        fprintf(stderr, "op %s is not registered\n", c->op);
        return LENS_ERR_UNSUPPORTED;
    }
    op_node node = {.name = "", .op_type = c->op, .domain = "", .opset = c->opset ? c->opset : 17,
                    .n_attrs = c->n_attrs, .attrs = c->attrs};
    tensor *outs[MAX_IO];
    for (int i = 0; i < c->n_out; i++) {
        memset(&c->out[i], 0, sizeof c->out[i]);
        outs[i] = c->omit_out[i] ? NULL : &c->out[i];
    }
    op_call call = {.node = &node, .n_inputs = c->n_in, .inputs = c->in, .n_outputs = c->n_out, .outputs = outs,
                    .pool = c->pool};
    lens_status st = def->infer(&call);
    if (st) return st;
    for (int i = 0; i < c->n_out; i++) {
        if (!outs[i]) continue;
        size_t bytes = tensor_bytes(outs[i]);
        if (bytes == SIZE_MAX) return LENS_ERR_SHAPE;
        outs[i]->data = core_aligned_alloc(bytes ? bytes : 1);
        memset(outs[i]->data, 0xAB, bytes); /* garbage that a missed element would show */
    }
    return def->run(&call);
}

static void case_free(op_case *c) {
    for (int i = 0; i < c->n_out; i++) {
        core_aligned_free(c->out[i].data);
        c->out[i].data = NULL;
    }
}

/* Infer only, with whatever data the inputs carry (NULL for unknown). */
static lens_status case_infer(op_case *c) {
    const op_def *def = ops_lookup("", c->op);
    if (!def) return LENS_ERR_UNSUPPORTED;
    op_node node = {.name = "", .op_type = c->op, .domain = "", .opset = c->opset ? c->opset : 17,
                    .n_attrs = c->n_attrs, .attrs = c->attrs};
    tensor *outs[MAX_IO];
    for (int i = 0; i < c->n_out; i++) outs[i] = &c->out[i];
    op_call call = {.node = &node, .n_inputs = c->n_in, .inputs = c->in, .n_outputs = c->n_out, .outputs = outs};
    return def->infer(&call);
}

static bool dims_are(const tensor *t, int rank, const int64_t *dims) {
    if (t->rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (t->dims[i] != dims[i]) return false;
    return true;
}
#define CHECK_DIMS(t, rank, ...) CHECK_MSG(dims_are(t, rank, (int64_t[]){__VA_ARGS__}), "shape %s", shape_of(t))

static const char *shape_of(const tensor *t) {
    static char buf[128];
    return tensor_shape_string(t, buf, sizeof buf);
}

static void check_floats(const tensor *t, const float *expect, int64_t n, float tol, const char *what) {
    CHECK_MSG(t->dtype == LENS_DTYPE_FLOAT32 && tensor_numel(t) == n, "%s: %s numel %lld", what, dtype_name(t->dtype),
              (long long)tensor_numel(t));
    if (tensor_numel(t) != n) return;
    const float *d = t->data;
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (!(fabsf(d[i] - expect[i]) <= tol)) {
            if (bad++ < 5) fprintf(stderr, "%s: [%lld] = %.7g, expected %.7g\n", what, (long long)i, d[i], expect[i]);
        }
    CHECK_MSG(bad == 0, "%s: %d mismatches", what, bad);
}

static void check_ints(const tensor *t, const int64_t *expect, int64_t n, const char *what) {
    CHECK_MSG(tensor_numel(t) == n, "%s: numel %lld, expected %lld", what, (long long)tensor_numel(t), (long long)n);
    if (tensor_numel(t) != n) return;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = tensor_get_int(t, i);
        if (v != expect[i] && bad++ < 5)
            fprintf(stderr, "%s: [%lld] = %lld, expected %lld\n", what, (long long)i, (long long)v, (long long)expect[i]);
    }
    CHECK_MSG(bad == 0, "%s: %d mismatches", what, bad);
}

static float iota_f[4096];
static int64_t iota_i64[4096];

/* ---- Reshape family ------------------------------------------------------------------------------------------ */

static void test_reshape(void) {
    tensor x = tens(LENS_DTYPE_FLOAT32, 3, DIMS(2, 3, 4), iota_f);
    int64_t shape_a[] = {2, 0, -1}, shape_b[] = {-1}, shape_c[] = {4, 0, 1, -1}, shape_bad[] = {5, -1};
    tensor sa = T1(LENS_DTYPE_INT64, 3, shape_a), sb = T1(LENS_DTYPE_INT64, 1, shape_b);
    tensor sc = T1(LENS_DTYPE_INT64, 4, shape_c), sbad = T1(LENS_DTYPE_INT64, 2, shape_bad);

    op_case c = {.op = "Reshape", .in = {&x, &sa}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&c) == LENS_OK);
    CHECK_DIMS(&c.out[0], 3, 2, 3, 4);
    check_floats(&c.out[0], iota_f, 24, 0, "reshape 0/-1");
    case_free(&c);

    c.in[1] = &sb;
    CHECK(case_run(&c) == LENS_OK);
    CHECK_DIMS(&c.out[0], 1, 24);
    case_free(&c);

    /* the 0 copies input dim 1 (3), so -1 = 24 / (4 * 3) = 2 */
    c.in[1] = &sc;
    CHECK(case_run(&c) == LENS_OK);
    CHECK_DIMS(&c.out[0], 4, 4, 3, 1, 2);
    case_free(&c);

    c.in[1] = &sbad;
    CHECK(case_run(&c) == LENS_ERR_SHAPE);
    case_free(&c);

    /* allowzero: 0 is a real zero */
    tensor empty = tens(LENS_DTYPE_FLOAT32, 2, DIMS(0, 3), NULL);
    int64_t shape_z[] = {3, 0};
    tensor sz = T1(LENS_DTYPE_INT64, 2, shape_z);
    op_case z = {.op = "Reshape", .opset = 14, .attrs = {attr_int("allowzero", 1)}, .n_attrs = 1, .in = {&empty, &sz},
                 .n_in = 2, .n_out = 1};
    CHECK(case_run(&z) == LENS_OK);
    CHECK_DIMS(&z.out[0], 2, 3, 0);
    case_free(&z);

    /* shape unknown at plan time */
    tensor unknown = T1(LENS_DTYPE_INT64, 2, NULL);
    c.in[1] = &unknown;
    CHECK(case_infer(&c) == LENS_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(core_last_error(), "Reshape: shape input must be constant") != NULL, "%s", core_last_error());

    /* opset 1: shape attribute */
    int64_t attr_shape[] = {6, 4};
    op_case old = {.op = "Reshape", .opset = 1, .attrs = {attr_ints("shape", attr_shape, 2)}, .n_attrs = 1,
                   .in = {&x}, .n_in = 1, .n_out = 1};
    CHECK(case_run(&old) == LENS_OK);
    CHECK_DIMS(&old.out[0], 2, 6, 4);
    case_free(&old);
}

static void test_flatten_squeeze(void) {
    tensor x = tens(LENS_DTYPE_INT64, 4, DIMS(2, 3, 4, 5), iota_i64);
    int64_t axes[] = {0, 2, 4, -1, -4};
    int64_t expect[][2] = {{1, 120}, {6, 20}, {120, 1}, {24, 5}, {1, 120}};
    for (int i = 0; i < 5; i++) {
        op_case c = {.op = "Flatten", .attrs = {attr_int("axis", axes[i])}, .n_attrs = 1, .in = {&x}, .n_in = 1, .n_out = 1};
        CHECK(case_run(&c) == LENS_OK);
        CHECK_DIMS(&c.out[0], 2, expect[i][0], expect[i][1]);
        check_ints(&c.out[0], iota_i64, 120, "flatten");
        case_free(&c);
    }
    op_case bad = {.op = "Flatten", .attrs = {attr_int("axis", 5)}, .n_attrs = 1, .in = {&x}, .n_in = 1, .n_out = 1};
    CHECK(case_run(&bad) == LENS_ERR_INVALID_ARGUMENT);

    tensor y = tens(LENS_DTYPE_FLOAT32, 4, DIMS(1, 3, 1, 5), iota_f);
    /* opset 11: axes attribute */
    int64_t sq_axes[] = {-2};
    op_case s11 = {.op = "Squeeze", .opset = 11, .attrs = {attr_ints("axes", sq_axes, 1)}, .n_attrs = 1, .in = {&y},
                   .n_in = 1, .n_out = 1};
    CHECK(case_run(&s11) == LENS_OK);
    CHECK_DIMS(&s11.out[0], 3, 1, 3, 5);
    check_floats(&s11.out[0], iota_f, 15, 0, "squeeze");
    case_free(&s11);
    /* opset 13: axes input; none means every unit axis */
    tensor ax = T1(LENS_DTYPE_INT64, 1, (int64_t[]){0});
    op_case s13 = {.op = "Squeeze", .opset = 13, .in = {&y, &ax}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&s13) == LENS_OK);
    CHECK_DIMS(&s13.out[0], 3, 3, 1, 5);
    case_free(&s13);
    s13.n_in = 1;
    CHECK(case_run(&s13) == LENS_OK);
    CHECK_DIMS(&s13.out[0], 2, 3, 5);
    case_free(&s13);
    tensor ax_bad = T1(LENS_DTYPE_INT64, 1, (int64_t[]){1});
    s13.in[1] = &ax_bad;
    s13.n_in = 2;
    CHECK(case_run(&s13) == LENS_ERR_SHAPE);
    case_free(&s13);

    tensor z = tens(LENS_DTYPE_FLOAT32, 3, DIMS(3, 4, 5), iota_f);
    int64_t un_axes_attr[] = {3};
    op_case u11 = {.op = "Unsqueeze", .opset = 11, .attrs = {attr_ints("axes", un_axes_attr, 1)}, .n_attrs = 1,
                   .in = {&z}, .n_in = 1, .n_out = 1};
    CHECK(case_run(&u11) == LENS_OK);
    CHECK_DIMS(&u11.out[0], 4, 3, 4, 5, 1);
    check_floats(&u11.out[0], iota_f, 60, 0, "unsqueeze");
    case_free(&u11);
    tensor un = T1(LENS_DTYPE_INT64, 3, (int64_t[]){5, 4, 2});
    op_case u13 = {.op = "Unsqueeze", .opset = 13, .in = {&z, &un}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&u13) == LENS_OK);
    CHECK_DIMS(&u13.out[0], 6, 3, 4, 1, 5, 1, 1);
    case_free(&u13);
    tensor un_neg = T1(LENS_DTYPE_INT64, 1, (int64_t[]){-1});
    u13.in[1] = &un_neg;
    CHECK(case_run(&u13) == LENS_OK);
    CHECK_DIMS(&u13.out[0], 4, 3, 4, 5, 1);
    case_free(&u13);
    tensor un_dup = T1(LENS_DTYPE_INT64, 2, (int64_t[]){1, 1});
    u13.in[1] = &un_dup;
    CHECK(case_run(&u13) == LENS_ERR_INVALID_ARGUMENT);
    case_free(&u13);

    /* Identity and Dropout copy; Dropout's mask is all true */
    op_case id = {.op = "Identity", .in = {&z}, .n_in = 1, .n_out = 1};
    CHECK(case_run(&id) == LENS_OK);
    check_floats(&id.out[0], iota_f, 60, 0, "identity");
    case_free(&id);
    op_case dr = {.op = "Dropout", .opset = 13, .in = {&z}, .n_in = 1, .n_out = 2};
    CHECK(case_run(&dr) == LENS_OK);
    check_floats(&dr.out[0], iota_f, 60, 0, "dropout");
    CHECK(dr.out[1].dtype == LENS_DTYPE_BOOL);
    int64_t ones[60];
    for (int i = 0; i < 60; i++) ones[i] = 1;
    check_ints(&dr.out[1], ones, 60, "dropout mask");
    case_free(&dr);
    /* training mode is refused unless the ratio is 0 */
    bool yes = true;
    float ratio_half = 0.5f, ratio_zero = 0;
    tensor tm = tens(LENS_DTYPE_BOOL, 0, NULL, &yes), rh = tens(LENS_DTYPE_FLOAT32, 0, NULL, &ratio_half),
           rz = tens(LENS_DTYPE_FLOAT32, 0, NULL, &ratio_zero);
    op_case tr = {.op = "Dropout", .opset = 13, .in = {&z, &rh, &tm}, .n_in = 3, .n_out = 1};
    CHECK(case_run(&tr) == LENS_ERR_UNSUPPORTED);
    case_free(&tr);
    tr.in[1] = &rz;
    CHECK(case_run(&tr) == LENS_OK);
    check_floats(&tr.out[0], iota_f, 60, 0, "dropout ratio 0");
    case_free(&tr);
}

/* ---- Transpose ----------------------------------------------------------------------------------------------- */

/* Checks Transpose of a tensor of `dims` against index arithmetic, for element size es (uint8/int16/float/int64). */
static void check_transpose(int rank, const int64_t *dims, const int64_t *perm, lens_dtype dtype, core_pool *pool) {
    size_t es = dtype_size(dtype);
    tensor x = tens(dtype, rank, dims, NULL);
    int64_t n = tensor_numel(&x);
    uint8_t *data = malloc((size_t)n * es);
    for (int64_t i = 0; i < n; i++)
        for (size_t b = 0; b < es; b++) data[(size_t)i * es + b] = (uint8_t)((i * 7 + (int64_t)b * 13 + (i >> 8)) & 0xff);
    x.data = data;
    op_case c = {.op = "Transpose", .attrs = {attr_ints("perm", perm, (size_t)rank)}, .n_attrs = perm ? 1 : 0,
                 .in = {&x}, .n_in = 1, .n_out = 1, .pool = pool};
    CHECK(case_run(&c) == LENS_OK);
    int64_t in_strides[TENSOR_MAX_RANK], s = 1, out_dims[TENSOR_MAX_RANK], idx[TENSOR_MAX_RANK] = {0};
    for (int k = rank - 1; k >= 0; k--) {
        in_strides[k] = s;
        s *= dims[k];
    }
    for (int k = 0; k < rank; k++) out_dims[k] = dims[perm ? perm[k] : rank - 1 - k];
    CHECK(dims_are(&c.out[0], rank, out_dims));
    int bad = 0;
    const uint8_t *out = c.out[0].data;
    for (int64_t o = 0; o < n; o++) {
        int64_t src = 0;
        for (int k = 0; k < rank; k++) src += idx[k] * in_strides[perm ? perm[k] : rank - 1 - k];
        if (memcmp(out + (size_t)o * es, data + (size_t)src * es, es)) bad++;
        for (int k = rank - 1; k >= 0; k--) {
            if (++idx[k] < out_dims[k]) break;
            idx[k] = 0;
        }
    }
    CHECK_MSG(bad == 0, "transpose rank %d %s: %d wrong elements", rank, dtype_name(dtype), bad);
    case_free(&c);
    free(data);
}

static void test_transpose(void) {
    /* the 2-D example, by hand */
    float m[6] = {1, 2, 3, 4, 5, 6};
    tensor x = tens(LENS_DTYPE_FLOAT32, 2, DIMS(2, 3), m);
    op_case c = {.op = "Transpose", .in = {&x}, .n_in = 1, .n_out = 1};
    CHECK(case_run(&c) == LENS_OK);
    CHECK_DIMS(&c.out[0], 2, 3, 2);
    check_floats(&c.out[0], (float[]){1, 4, 2, 5, 3, 6}, 6, 0, "transpose 2x3");
    case_free(&c);

    static const int64_t p0231[] = {0, 2, 3, 1}, p0312[] = {0, 3, 1, 2}, p0213[] = {0, 2, 1, 3}, p10[] = {1, 0};
    static const int64_t p6[] = {4, 0, 5, 2, 1, 3}, p3[] = {2, 0, 1}, p1032[] = {1, 0, 3, 2};
    lens_dtype types[] = {LENS_DTYPE_UINT8, LENS_DTYPE_FLOAT16, LENS_DTYPE_FLOAT32, LENS_DTYPE_INT64};
    for (int t = 0; t < 4; t++) {
        check_transpose(4, DIMS(2, 37, 19, 5), p0231, types[t], NULL);
        check_transpose(4, DIMS(2, 19, 5, 37), p0312, types[t], NULL);
        check_transpose(4, DIMS(2, 7, 33, 9), p0213, types[t], NULL);
        check_transpose(2, DIMS(67, 45), p10, types[t], NULL);
        check_transpose(2, DIMS(1, 45), NULL, types[t], NULL);
        check_transpose(6, DIMS(2, 3, 1, 4, 5, 3), p6, types[t], NULL);
        check_transpose(3, DIMS(4, 1, 6), p3, types[t], NULL);
        check_transpose(4, DIMS(3, 5, 7, 2), p1032, types[t], NULL);
    }
    /* large enough for the pool to split the work */
    check_transpose(4, DIMS(1, 64, 56, 56), p0231, LENS_DTYPE_FLOAT32, pool2);
    check_transpose(4, DIMS(1, 56, 56, 64), p0312, LENS_DTYPE_FLOAT32, pool2);
    check_transpose(4, DIMS(2, 12, 197, 64), p0213, LENS_DTYPE_FLOAT32, pool2);
    /* from 128 KiB up (ConvNeXt-T's later stages, a ragged one) */
    check_transpose(4, DIMS(1, 14, 14, 384), p0312, LENS_DTYPE_FLOAT32, pool2);
    check_transpose(4, DIMS(1, 7, 7, 768), p0312, LENS_DTYPE_FLOAT32, pool2);
    check_transpose(4, DIMS(1, 13, 11, 233), p0312, LENS_DTYPE_FLOAT32, pool2);
    check_transpose(4, DIMS(1, 233, 13, 11), p0231, LENS_DTYPE_FLOAT32, pool2);
    check_transpose(2, DIMS(513, 300), p10, LENS_DTYPE_INT64, pool2);

    int64_t bad_perm[] = {0, 0};
    op_case b = {.op = "Transpose", .attrs = {attr_ints("perm", bad_perm, 2)}, .n_attrs = 1, .in = {&x}, .n_in = 1,
                 .n_out = 1};
    CHECK(case_run(&b) == LENS_ERR_INVALID_ARGUMENT);
}

/* ---- Concat, Split ------------------------------------------------------------------------------------------- */

static void test_concat_split(void) {
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6};
    tensor ta = tens(LENS_DTYPE_FLOAT32, 2, DIMS(2, 2), a), tb = tens(LENS_DTYPE_FLOAT32, 2, DIMS(2, 1), b);
    tensor te = tens(LENS_DTYPE_FLOAT32, 2, DIMS(2, 0), NULL);
    op_case c = {.op = "Concat", .attrs = {attr_int("axis", -1)}, .n_attrs = 1, .in = {&ta, &te, &tb}, .n_in = 3, .n_out = 1};
    CHECK(case_run(&c) == LENS_OK);
    CHECK_DIMS(&c.out[0], 2, 2, 3);
    check_floats(&c.out[0], (float[]){1, 2, 5, 3, 4, 6}, 6, 0, "concat axis -1");
    case_free(&c);
    tensor tb2 = tens(LENS_DTYPE_FLOAT32, 2, DIMS(1, 2), b);
    op_case c0 = {.op = "Concat", .attrs = {attr_int("axis", 0)}, .n_attrs = 1, .in = {&ta, &tb2}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&c0) == LENS_OK);
    CHECK_DIMS(&c0.out[0], 2, 3, 2);
    check_floats(&c0.out[0], (float[]){1, 2, 3, 4, 5, 6}, 6, 0, "concat axis 0");
    case_free(&c0);
    c0.in[1] = &tb; /* [2,1] does not fit [2,2] on axis 1 */
    CHECK(case_run(&c0) == LENS_ERR_SHAPE);
    case_free(&c0);
    /* int64 shape vectors, the usual Concat of a shape subgraph */
    int64_t s1[] = {1}, s2[] = {-1, 768};
    tensor ts1 = T1(LENS_DTYPE_INT64, 1, s1), ts2 = T1(LENS_DTYPE_INT64, 2, s2);
    op_case ci = {.op = "Concat", .attrs = {attr_int("axis", 0)}, .n_attrs = 1, .in = {&ts1, &ts2}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&ci) == LENS_OK);
    check_ints(&ci.out[0], (int64_t[]){1, -1, 768}, 3, "concat int64");
    case_free(&ci);

    float v[7] = {1, 2, 3, 4, 5, 6, 7};
    tensor x6 = T1(LENS_DTYPE_FLOAT32, 6, v), x7 = T1(LENS_DTYPE_FLOAT32, 7, v);
    op_case s = {.op = "Split", .opset = 13, .in = {&x6}, .n_in = 1, .n_out = 3};
    CHECK(case_run(&s) == LENS_OK);
    check_floats(&s.out[0], (float[]){1, 2}, 2, 0, "split equal 0");
    check_floats(&s.out[2], (float[]){5, 6}, 2, 0, "split equal 2");
    case_free(&s);
    tensor sizes = T1(LENS_DTYPE_INT64, 2, (int64_t[]){2, 4});
    op_case sv = {.op = "Split", .opset = 13, .in = {&x6, &sizes}, .n_in = 2, .n_out = 2};
    CHECK(case_run(&sv) == LENS_OK);
    check_floats(&sv.out[0], (float[]){1, 2}, 2, 0, "split var 0");
    check_floats(&sv.out[1], (float[]){3, 4, 5, 6}, 4, 0, "split var 1");
    case_free(&sv);
    int64_t split_attr[] = {1, 5};
    op_case s11 = {.op = "Split", .opset = 11, .attrs = {attr_ints("split", split_attr, 2)}, .n_attrs = 1, .in = {&x6},
                   .n_in = 1, .n_out = 2};
    CHECK(case_run(&s11) == LENS_OK);
    check_floats(&s11.out[1], (float[]){2, 3, 4, 5, 6}, 5, 0, "split attr");
    case_free(&s11);
    /* opset 18: num_outputs, the last part smaller */
    op_case s18 = {.op = "Split", .opset = 18, .attrs = {attr_int("num_outputs", 3)}, .n_attrs = 1, .in = {&x7},
                   .n_in = 1, .n_out = 3};
    CHECK(case_run(&s18) == LENS_OK);
    CHECK_DIMS(&s18.out[0], 1, 3);
    CHECK_DIMS(&s18.out[2], 1, 1);
    check_floats(&s18.out[1], (float[]){4, 5, 6}, 3, 0, "split 18 middle");
    check_floats(&s18.out[2], (float[]){7}, 1, 0, "split 18 last");
    case_free(&s18);
    /* 2-D along axis 1 */
    tensor m = tens(LENS_DTYPE_FLOAT32, 2, DIMS(2, 3), v);
    op_case s2d = {.op = "Split", .opset = 13, .attrs = {attr_int("axis", 1)}, .n_attrs = 1,
                   .in = {&m, &(tensor){.dtype = LENS_DTYPE_INT64, .rank = 1, .dims = {2}, .data = (int64_t[]){2, 1}}},
                   .n_in = 2, .n_out = 2};
    CHECK(case_run(&s2d) == LENS_OK);
    check_floats(&s2d.out[0], (float[]){1, 2, 4, 5}, 4, 0, "split 2d 0");
    check_floats(&s2d.out[1], (float[]){3, 6}, 2, 0, "split 2d 1");
    case_free(&s2d);
    tensor wrong = T1(LENS_DTYPE_INT64, 2, (int64_t[]){2, 3});
    sv.in[1] = &wrong;
    CHECK(case_run(&sv) == LENS_ERR_SHAPE);
    case_free(&sv);
}

/* ---- Slice --------------------------------------------------------------------------------------------------- */

/* Slices [0..9] along axis 0 with one start/end/step and compares. */
static void check_slice_1d(int64_t start, int64_t end, int64_t step, const int64_t *expect, int64_t n) {
    tensor x = T1(LENS_DTYPE_INT64, 10, iota_i64);
    tensor ts = T1(LENS_DTYPE_INT64, 1, &start), te = T1(LENS_DTYPE_INT64, 1, &end), tp = T1(LENS_DTYPE_INT64, 1, &step);
    tensor ta = T1(LENS_DTYPE_INT64, 1, (int64_t[]){0});
    op_case c = {.op = "Slice", .opset = 13, .in = {&x, &ts, &te, &ta, &tp}, .n_in = 5, .n_out = 1};
    CHECK(case_run(&c) == LENS_OK);
    char what[96];
    snprintf(what, sizeof what, "slice %lld:%lld:%lld", (long long)start, (long long)end, (long long)step);
    CHECK_MSG(dims_are(&c.out[0], 1, &n), "%s: shape %s", what, shape_of(&c.out[0]));
    check_ints(&c.out[0], expect, n, what);
    case_free(&c);
}

static void test_slice(void) {
    check_slice_1d(-1, INT64_MIN, -1, (int64_t[]){9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, 10);
    check_slice_1d(8, 1, -3, (int64_t[]){8, 5, 2}, 3);
    check_slice_1d(1, INT64_MAX, 2, (int64_t[]){1, 3, 5, 7, 9}, 5);
    check_slice_1d(-100, 3, 1, (int64_t[]){0, 1, 2}, 3);
    check_slice_1d(100, 1000, 1, NULL, 0);
    check_slice_1d(-1, -100, -4, (int64_t[]){9, 5, 1}, 3);
    check_slice_1d(5, -1, -1, NULL, 0); /* end -1 means 9, not "before 0" */
    check_slice_1d(INT64_MAX, INT64_MIN, INT64_MIN, (int64_t[]){9}, 1);
    check_slice_1d(0, INT64_MAX, INT64_MAX, (int64_t[]){0}, 1);
    check_slice_1d(20, 0, -1, (int64_t[]){9, 8, 7, 6, 5, 4, 3, 2, 1}, 9);
    check_slice_1d(3, 3, 1, NULL, 0);

    /* [20, 10, 5] with steps -1, -3, -2 (ONNX's slice_neg_steps): out[i][j][k] = x[19 - i][9 - 3j][4 - 2k] */
    tensor x = tens(LENS_DTYPE_FLOAT32, 3, DIMS(20, 10, 5), iota_f);
    tensor ts = T1(LENS_DTYPE_INT64, 3, (int64_t[]){20, 10, 4}), te = T1(LENS_DTYPE_INT64, 3, (int64_t[]){0, 0, 1});
    tensor ta = T1(LENS_DTYPE_INT64, 3, (int64_t[]){0, 1, 2}), tp = T1(LENS_DTYPE_INT64, 3, (int64_t[]){-1, -3, -2});
    op_case c = {.op = "Slice", .opset = 13, .in = {&x, &ts, &te, &ta, &tp}, .n_in = 5, .n_out = 1};
    CHECK(case_run(&c) == LENS_OK);
    CHECK_DIMS(&c.out[0], 3, 19, 3, 2);
    if (tensor_numel(&c.out[0]) == 114) {
        const float *o = c.out[0].data;
        int bad = 0;
        for (int i = 0; i < 19; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 2; k++)
                    bad += o[(i * 3 + j) * 2 + k] != (float)((19 - i) * 50 + (9 - 3 * j) * 5 + 4 - 2 * k);
        CHECK_MSG(bad == 0, "slice neg steps: %d wrong", bad);
    }
    case_free(&c);

    /* negative axes, default steps, int32 indices: x[:, 1:-1, -2:] */
    tensor ts32 = T1(LENS_DTYPE_INT32, 2, (int32_t[]){1, -2}), te32 = T1(LENS_DTYPE_INT32, 2, (int32_t[]){-1, 100});
    tensor ta32 = T1(LENS_DTYPE_INT32, 2, (int32_t[]){-2, -1});
    tensor small = tens(LENS_DTYPE_FLOAT32, 3, DIMS(2, 4, 3), iota_f);
    op_case c2 = {.op = "Slice", .opset = 13, .in = {&small, &ts32, &te32, &ta32}, .n_in = 4, .n_out = 1};
    CHECK(case_run(&c2) == LENS_OK);
    CHECK_DIMS(&c2.out[0], 3, 2, 2, 2);
    check_floats(&c2.out[0], (float[]){4, 5, 7, 8, 16, 17, 19, 20}, 8, 0, "slice axes -2 -1");
    case_free(&c2);

    /* opset 9: attributes; axes default to 0..n-1 */
    int64_t starts[] = {1}, ends[] = {3};
    op_case c9 = {.op = "Slice", .opset = 9, .attrs = {attr_ints("starts", starts, 1), attr_ints("ends", ends, 1)},
                  .n_attrs = 2, .in = {&small}, .n_in = 1, .n_out = 1};
    CHECK(case_run(&c9) == LENS_OK);
    CHECK_DIMS(&c9.out[0], 3, 1, 4, 3);
    check_floats(&c9.out[0], iota_f + 12, 12, 0, "slice opset 9");
    case_free(&c9);

    /* errors: step 0, repeated axis, unknown starts */
    tensor zero = T1(LENS_DTYPE_INT64, 1, (int64_t[]){0}), one = T1(LENS_DTYPE_INT64, 1, (int64_t[]){1});
    op_case e = {.op = "Slice", .opset = 13, .in = {&small, &zero, &one, &zero, &zero}, .n_in = 5, .n_out = 1};
    CHECK(case_run(&e) == LENS_ERR_INVALID_ARGUMENT);
    case_free(&e);
    tensor dup = T1(LENS_DTYPE_INT64, 2, (int64_t[]){1, -2}), z2 = T1(LENS_DTYPE_INT64, 2, (int64_t[]){0, 0}),
           o2 = T1(LENS_DTYPE_INT64, 2, (int64_t[]){1, 1});
    op_case e2 = {.op = "Slice", .opset = 13, .in = {&small, &z2, &o2, &dup}, .n_in = 4, .n_out = 1};
    CHECK(case_run(&e2) == LENS_ERR_INVALID_ARGUMENT);
    case_free(&e2);
    tensor unknown = T1(LENS_DTYPE_INT64, 1, NULL);
    op_case e3 = {.op = "Slice", .opset = 13, .in = {&small, &unknown, &one}, .n_in = 3, .n_out = 1};
    CHECK(case_infer(&e3) == LENS_ERR_UNSUPPORTED);
}

/* ---- Gather, GatherElements ---------------------------------------------------------------------------------- */

static void test_gather(void) {
    tensor x = T1(LENS_DTYPE_FLOAT32, 10, iota_f);
    tensor idx = T1(LENS_DTYPE_INT64, 3, (int64_t[]){0, -9, -10});
    op_case c = {.op = "Gather", .attrs = {attr_int("axis", 0)}, .n_attrs = 1, .in = {&x, &idx}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&c) == LENS_OK);
    check_floats(&c.out[0], (float[]){0, 1, 0}, 3, 0, "gather negative");
    case_free(&c);

    tensor m = tens(LENS_DTYPE_FLOAT32, 2, DIMS(3, 3), iota_f);
    tensor idx2 = tens(LENS_DTYPE_INT32, 2, DIMS(1, 2), (int32_t[]){0, 2});
    op_case c1 = {.op = "Gather", .attrs = {attr_int("axis", 1)}, .n_attrs = 1, .in = {&m, &idx2}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&c1) == LENS_OK);
    CHECK_DIMS(&c1.out[0], 3, 3, 1, 2);
    check_floats(&c1.out[0], (float[]){0, 2, 3, 5, 6, 8}, 6, 0, "gather axis 1");
    case_free(&c1);

    /* scalar index: the rank drops (shape[1] of a Shape output) */
    int64_t shape[] = {1, 3, 224, 224}, one = 1;
    tensor ts = T1(LENS_DTYPE_INT64, 4, shape), scalar = tens(LENS_DTYPE_INT64, 0, NULL, &one);
    op_case c2 = {.op = "Gather", .in = {&ts, &scalar}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&c2) == LENS_OK);
    CHECK(c2.out[0].rank == 0);
    check_ints(&c2.out[0], (int64_t[]){3}, 1, "gather scalar");
    case_free(&c2);

    tensor far = T1(LENS_DTYPE_INT64, 1, (int64_t[]){10});
    c.in[1] = &far;
    CHECK(case_run(&c) == LENS_ERR_INVALID_ARGUMENT);
    case_free(&c);

    float d[4] = {1, 2, 3, 4};
    tensor data = tens(LENS_DTYPE_FLOAT32, 2, DIMS(2, 2), d);
    tensor ge_idx = tens(LENS_DTYPE_INT64, 2, DIMS(2, 2), (int64_t[]){0, 0, 1, 0});
    op_case ge = {.op = "GatherElements", .attrs = {attr_int("axis", 1)}, .n_attrs = 1, .in = {&data, &ge_idx},
                  .n_in = 2, .n_out = 1};
    CHECK(case_run(&ge) == LENS_OK);
    check_floats(&ge.out[0], (float[]){1, 1, 4, 3}, 4, 0, "gather elements axis 1");
    case_free(&ge);
    /* axis 0, negative indices, indices smaller than data */
    float d9[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    tensor data9 = tens(LENS_DTYPE_FLOAT32, 2, DIMS(3, 3), d9);
    tensor ge_neg = tens(LENS_DTYPE_INT32, 2, DIMS(2, 2), (int32_t[]){-1, -2, 0, 2});
    op_case ge0 = {.op = "GatherElements", .attrs = {attr_int("axis", 0)}, .n_attrs = 1, .in = {&data9, &ge_neg},
                   .n_in = 2, .n_out = 1};
    CHECK(case_run(&ge0) == LENS_OK);
    check_floats(&ge0.out[0], (float[]){7, 5, 1, 8}, 4, 0, "gather elements axis 0");
    case_free(&ge0);
}

/* ---- Expand, Tile -------------------------------------------------------------------------------------------- */

static void test_expand_tile(void) {
    float d[3] = {1, 2, 3};
    tensor x = tens(LENS_DTYPE_FLOAT32, 2, DIMS(3, 1), d);
    tensor shape = T1(LENS_DTYPE_INT64, 3, (int64_t[]){2, 1, 6});
    op_case c = {.op = "Expand", .in = {&x, &shape}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&c) == LENS_OK);
    CHECK_DIMS(&c.out[0], 3, 2, 3, 6);
    float e[36];
    for (int i = 0; i < 36; i++) e[i] = (float)((i / 6) % 3 + 1);
    check_floats(&c.out[0], e, 36, 0, "expand");
    case_free(&c);
    /* a shape smaller than the input keeps the input's dims */
    tensor shape2 = T1(LENS_DTYPE_INT64, 1, (int64_t[]){4});
    c.in[1] = &shape2;
    CHECK(case_run(&c) == LENS_OK);
    CHECK_DIMS(&c.out[0], 2, 3, 4);
    check_floats(&c.out[0], (float[]){1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, 12, 0, "expand bidirectional");
    case_free(&c);
    tensor shape_bad = T1(LENS_DTYPE_INT64, 2, (int64_t[]){2, 4});
    c.in[1] = &shape_bad;
    CHECK(case_run(&c) == LENS_ERR_SHAPE);
    case_free(&c);
    /* a row broadcast down: [1, 3] -> [2, 3], uint8 */
    uint8_t row[3] = {7, 8, 9};
    tensor r = tens(LENS_DTYPE_UINT8, 2, DIMS(1, 3), row);
    tensor s23 = T1(LENS_DTYPE_INT64, 2, (int64_t[]){2, 3});
    op_case cr = {.op = "Expand", .in = {&r, &s23}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&cr) == LENS_OK);
    check_ints(&cr.out[0], (int64_t[]){7, 8, 9, 7, 8, 9}, 6, "expand row");
    case_free(&cr);

    /* a column broadcast across [5, 6] (stride 0 along the last axis, the transpose-tiled path) */
    tensor col = tens(LENS_DTYPE_FLOAT32, 2, DIMS(5, 1), iota_f);
    tensor s56 = T1(LENS_DTYPE_INT64, 2, (int64_t[]){5, 6});
    op_case cc = {.op = "Expand", .in = {&col, &s56}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&cc) == LENS_OK);
    float ecol[30];
    for (int i = 0; i < 30; i++) ecol[i] = (float)(i / 6);
    check_floats(&cc.out[0], ecol, 30, 0, "expand column");
    case_free(&cc);

    float t[4] = {0, 1, 2, 3};
    tensor tx = tens(LENS_DTYPE_FLOAT32, 2, DIMS(2, 2), t);
    tensor reps = T1(LENS_DTYPE_INT64, 2, (int64_t[]){2, 2});
    op_case ct = {.op = "Tile", .in = {&tx, &reps}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&ct) == LENS_OK);
    CHECK_DIMS(&ct.out[0], 2, 4, 4);
    check_floats(&ct.out[0], (float[]){0, 1, 0, 1, 2, 3, 2, 3, 0, 1, 0, 1, 2, 3, 2, 3}, 16, 0, "tile");
    case_free(&ct);
    tensor reps2 = T1(LENS_DTYPE_INT64, 2, (int64_t[]){1, 3});
    ct.in[1] = &reps2;
    CHECK(case_run(&ct) == LENS_OK);
    check_floats(&ct.out[0], (float[]){0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3}, 12, 0, "tile 1x3");
    case_free(&ct);
    tensor reps_bad = T1(LENS_DTYPE_INT64, 1, (int64_t[]){2});
    ct.in[1] = &reps_bad;
    CHECK(case_run(&ct) == LENS_ERR_INVALID_ARGUMENT);
    case_free(&ct);
}

/* ---- Pad ----------------------------------------------------------------------------------------------------- */

static void check_pad_1d(const char *mode, const int64_t *pads, const float *expect, int64_t n) {
    float d[3] = {1, 2, 3};
    tensor x = T1(LENS_DTYPE_FLOAT32, 3, d), tp = T1(LENS_DTYPE_INT64, 2, pads);
    op_case c = {.op = "Pad", .opset = 13, .attrs = {attr_str("mode", mode)}, .n_attrs = 1, .in = {&x, &tp}, .n_in = 2,
                 .n_out = 1};
    CHECK(case_run(&c) == LENS_OK);
    char what[64];
    snprintf(what, sizeof what, "pad %s %lld %lld", mode, (long long)pads[0], (long long)pads[1]);
    check_floats(&c.out[0], expect, n, 0, what);
    case_free(&c);
}

static void test_pad(void) {
    int64_t p23[] = {2, 3};
    check_pad_1d("constant", p23, (float[]){0, 0, 1, 2, 3, 0, 0, 0}, 8);
    check_pad_1d("reflect", p23, (float[]){3, 2, 1, 2, 3, 2, 1, 2}, 8);
    check_pad_1d("edge", p23, (float[]){1, 1, 1, 2, 3, 3, 3, 3}, 8);
    check_pad_1d("wrap", p23, (float[]){2, 3, 1, 2, 3, 1, 2, 3}, 8);
    /* reflect further than the axis folds again (numpy) */
    check_pad_1d("reflect", (int64_t[]){5, 5}, (float[]){2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3, 2}, 13);
    /* negative pads crop */
    check_pad_1d("constant", (int64_t[]){-1, 1}, (float[]){2, 3, 0}, 3);
    check_pad_1d("edge", (int64_t[]){-2, -1}, NULL, 0);

    /* 2-D with a constant_value input, int32 */
    int32_t m[6] = {1, 2, 3, 4, 5, 6}, value = 9;
    tensor x = tens(LENS_DTYPE_INT32, 2, DIMS(2, 3), m);
    tensor pads = T1(LENS_DTYPE_INT64, 4, (int64_t[]){1, 0, 0, 2}), tv = tens(LENS_DTYPE_INT32, 0, NULL, &value);
    op_case c = {.op = "Pad", .opset = 13, .in = {&x, &pads, &tv}, .n_in = 3, .n_out = 1};
    CHECK(case_run(&c) == LENS_OK);
    CHECK_DIMS(&c.out[0], 2, 3, 5);
    check_ints(&c.out[0], (int64_t[]){9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 4, 5, 6, 9, 9}, 15, "pad 2d constant");
    case_free(&c);
    /* reflect on the first axis: rows 1, 0, 1 */
    op_case r = {.op = "Pad", .opset = 13, .attrs = {attr_str("mode", "reflect")}, .n_attrs = 1,
                 .in = {&x, &(tensor){.dtype = LENS_DTYPE_INT64, .rank = 1, .dims = {4}, .data = (int64_t[]){1, 1, 0, 1}}},
                 .n_in = 2, .n_out = 1};
    CHECK(case_run(&r) == LENS_OK);
    CHECK_DIMS(&r.out[0], 2, 3, 5);
    check_ints(&r.out[0], (int64_t[]){5, 4, 5, 6, 5, 2, 1, 2, 3, 2, 5, 4, 5, 6, 5}, 15, "pad 2d reflect");
    case_free(&r);
    /* opset 2: pads and value as attributes */
    float f[6] = {1, 2, 3, 4, 5, 6};
    tensor xf = tens(LENS_DTYPE_FLOAT32, 2, DIMS(2, 3), f);
    int64_t pad_attr[] = {0, 1, 0, 0};
    op_case c2 = {.op = "Pad", .opset = 2, .attrs = {attr_ints("pads", pad_attr, 4), attr_float("value", 1.5f)},
                  .n_attrs = 2, .in = {&xf}, .n_in = 1, .n_out = 1};
    CHECK(case_run(&c2) == LENS_OK);
    check_floats(&c2.out[0], (float[]){1.5f, 1, 2, 3, 1.5f, 4, 5, 6}, 8, 0, "pad opset 2");
    case_free(&c2);
    /* opset 18: axes input */
    tensor ax = T1(LENS_DTYPE_INT64, 1, (int64_t[]){-1}), p2 = T1(LENS_DTYPE_INT64, 2, (int64_t[]){0, 1});
    op_case c18 = {.op = "Pad", .opset = 18, .attrs = {attr_str("mode", "edge")}, .n_attrs = 1,
                   .in = {&xf, &p2, NULL, &ax}, .n_in = 4, .n_out = 1};
    CHECK(case_run(&c18) == LENS_OK);
    check_floats(&c18.out[0], (float[]){1, 2, 3, 3, 4, 5, 6, 6}, 8, 0, "pad opset 18 axes");
    case_free(&c18);
    /* errors */
    tensor short_pads = T1(LENS_DTYPE_INT64, 2, (int64_t[]){1, 1});
    op_case e = {.op = "Pad", .opset = 13, .in = {&xf, &short_pads}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&e) == LENS_ERR_INVALID_ARGUMENT);
    tensor empty = tens(LENS_DTYPE_FLOAT32, 1, DIMS(0), NULL);
    op_case e2 = {.op = "Pad", .opset = 13, .attrs = {attr_str("mode", "reflect")}, .n_attrs = 1,
                  .in = {&empty, &short_pads}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&e2) == LENS_ERR_SHAPE);
    tensor crop_all = T1(LENS_DTYPE_INT64, 4, (int64_t[]){0, -2, 0, -2});
    op_case e3 = {.op = "Pad", .opset = 13, .in = {&xf, &crop_all}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&e3) == LENS_ERR_SHAPE);
}

/* ---- Shape, Size, Constant, ConstantOfShape, Range ----------------------------------------------------------- */

static void test_shape_size_constants(void) {
    tensor x = tens(LENS_DTYPE_FLOAT32, 3, DIMS(3, 4, 5), NULL); /* shape ops never read data */
    struct { int64_t start, end; bool has_start, has_end; int64_t expect[3]; int n; } cases[] = {
        {0, 0, false, false, {3, 4, 5}, 3}, {0, 10, false, true, {3, 4, 5}, 3}, {-10, 0, true, false, {3, 4, 5}, 3},
        {0, 1, false, true, {3}, 1},        {0, -1, false, true, {3, 4}, 2},    {1, 2, true, true, {4}, 1},
        {-1, 0, true, false, {5}, 1},       {2, 1, true, true, {0}, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        op_case c = {.op = "Shape", .opset = 15, .in = {&x}, .n_in = 1, .n_out = 1};
        if (cases[i].has_start) c.attrs[c.n_attrs++] = attr_int("start", cases[i].start);
        if (cases[i].has_end) c.attrs[c.n_attrs++] = attr_int("end", cases[i].end);
        CHECK(case_run(&c) == LENS_OK);
        CHECK(c.out[0].dtype == LENS_DTYPE_INT64 && c.out[0].rank == 1);
        check_ints(&c.out[0], cases[i].expect, cases[i].n, "shape");
        case_free(&c);
    }
    op_case s = {.op = "Size", .in = {&x}, .n_in = 1, .n_out = 1};
    CHECK(case_run(&s) == LENS_OK);
    CHECK(s.out[0].rank == 0 && s.out[0].dtype == LENS_DTYPE_INT64);
    check_ints(&s.out[0], (int64_t[]){60}, 1, "size");
    case_free(&s);

    float v[4] = {1.5f, -2, 3, 4};
    tensor val = tens(LENS_DTYPE_FLOAT32, 2, DIMS(2, 2), v);
    op_case k = {.op = "Constant", .attrs = {attr_tensor("value", &val)}, .n_attrs = 1, .n_out = 1};
    CHECK(case_run(&k) == LENS_OK);
    CHECK_DIMS(&k.out[0], 2, 2, 2);
    check_floats(&k.out[0], v, 4, 0, "constant tensor");
    case_free(&k);
    k.attrs[0] = attr_float("value_float", 2.5f);
    CHECK(case_run(&k) == LENS_OK);
    CHECK(k.out[0].rank == 0);
    check_floats(&k.out[0], (float[]){2.5f}, 1, 0, "constant float");
    case_free(&k);
    int64_t ints[3] = {7, -8, 9};
    k.attrs[0] = attr_ints("value_ints", ints, 3);
    CHECK(case_run(&k) == LENS_OK);
    CHECK(k.out[0].dtype == LENS_DTYPE_INT64);
    check_ints(&k.out[0], ints, 3, "constant ints");
    case_free(&k);
    k.attrs[0] = attr_int("value_int", -3);
    CHECK(case_run(&k) == LENS_OK);
    check_ints(&k.out[0], (int64_t[]){-3}, 1, "constant int");
    case_free(&k);
    float fl[2] = {0.5f, 0.25f};
    k.attrs[0] = attr_floats("value_floats", fl, 2);
    CHECK(case_run(&k) == LENS_OK);
    check_floats(&k.out[0], fl, 2, 0, "constant floats");
    case_free(&k);
    k.attrs[0] = attr_tensor("sparse_value", &val);
    CHECK(case_run(&k) == LENS_ERR_UNSUPPORTED);
    case_free(&k);

    tensor shape = T1(LENS_DTYPE_INT64, 3, (int64_t[]){4, 3, 2});
    op_case cs = {.op = "ConstantOfShape", .opset = 9, .in = {&shape}, .n_in = 1, .n_out = 1};
    CHECK(case_run(&cs) == LENS_OK);
    CHECK_DIMS(&cs.out[0], 3, 4, 3, 2);
    float zeros[24] = {0};
    check_floats(&cs.out[0], zeros, 24, 0, "constant of shape default");
    case_free(&cs);
    int32_t seven = 7;
    tensor tv = tens(LENS_DTYPE_INT32, 1, DIMS(1), &seven);
    cs.attrs[0] = attr_tensor("value", &tv);
    cs.n_attrs = 1;
    CHECK(case_run(&cs) == LENS_OK);
    CHECK(cs.out[0].dtype == LENS_DTYPE_INT32);
    int64_t sevens[24];
    for (int i = 0; i < 24; i++) sevens[i] = 7;
    check_ints(&cs.out[0], sevens, 24, "constant of shape int32");
    case_free(&cs);
    tensor zero_shape = T1(LENS_DTYPE_INT64, 1, (int64_t[]){0});
    cs.in[0] = &zero_shape;
    CHECK(case_run(&cs) == LENS_OK);
    CHECK_DIMS(&cs.out[0], 1, 0);
    case_free(&cs);

    float f1 = 1, f5 = 5, f2 = 2;
    tensor s1 = tens(LENS_DTYPE_FLOAT32, 0, NULL, &f1), s5 = tens(LENS_DTYPE_FLOAT32, 0, NULL, &f5),
           s2 = tens(LENS_DTYPE_FLOAT32, 0, NULL, &f2);
    op_case rf = {.op = "Range", .in = {&s1, &s5, &s2}, .n_in = 3, .n_out = 1};
    CHECK(case_run(&rf) == LENS_OK);
    check_floats(&rf.out[0], (float[]){1, 3}, 2, 0, "range float");
    case_free(&rf);
    int32_t i10 = 10, i6 = 6, im3 = -3;
    tensor r10 = tens(LENS_DTYPE_INT32, 0, NULL, &i10), r6 = tens(LENS_DTYPE_INT32, 0, NULL, &i6),
           rm3 = tens(LENS_DTYPE_INT32, 0, NULL, &im3);
    op_case ri = {.op = "Range", .in = {&r10, &r6, &rm3}, .n_in = 3, .n_out = 1};
    CHECK(case_run(&ri) == LENS_OK);
    CHECK(ri.out[0].dtype == LENS_DTYPE_INT32);
    check_ints(&ri.out[0], (int64_t[]){10, 7}, 2, "range int32 negative");
    case_free(&ri);
    int64_t l0 = 0, l10 = 10, l3 = 3, lz = 0;
    tensor a0 = tens(LENS_DTYPE_INT64, 0, NULL, &l0), a10 = tens(LENS_DTYPE_INT64, 0, NULL, &l10),
           a3 = tens(LENS_DTYPE_INT64, 0, NULL, &l3), az = tens(LENS_DTYPE_INT64, 0, NULL, &lz);
    op_case rl = {.op = "Range", .in = {&a0, &a10, &a3}, .n_in = 3, .n_out = 1};
    CHECK(case_run(&rl) == LENS_OK);
    check_ints(&rl.out[0], (int64_t[]){0, 3, 6, 9}, 4, "range int64");
    case_free(&rl);
    rl.in[0] = &a10; /* 10 .. 0 step 3: empty */
    rl.in[1] = &a0;
    CHECK(case_run(&rl) == LENS_OK);
    CHECK_DIMS(&rl.out[0], 1, 0);
    case_free(&rl);
    rl.in[2] = &az;
    CHECK(case_run(&rl) == LENS_ERR_INVALID_ARGUMENT);
    case_free(&rl);
    tensor unknown = tens(LENS_DTYPE_INT64, 0, NULL, NULL);
    rl.in[2] = &unknown;
    CHECK(case_infer(&rl) == LENS_ERR_UNSUPPORTED);
}

/* ---- Cast ---------------------------------------------------------------------------------------------------- */

static void test_cast(void) {
    float f[8] = {1.7f, -1.7f, 0.0f, 300.0f, -0.5f, 65504.0f, 1e-8f, NAN};
    tensor x = T1(LENS_DTYPE_FLOAT32, 8, f);
    op_case c = {.op = "Cast", .attrs = {attr_int("to", LENS_DTYPE_INT32)}, .n_attrs = 1, .in = {&x}, .n_in = 1, .n_out = 1};
    CHECK(case_run(&c) == LENS_OK);
    CHECK(c.out[0].dtype == LENS_DTYPE_INT32);
    check_ints(&c.out[0], (int64_t[]){1, -1, 0, 300, 0, 65504, 0, 0}, 8, "cast float->int32 truncates");
    case_free(&c);
    c.attrs[0] = attr_int("to", LENS_DTYPE_BOOL);
    CHECK(case_run(&c) == LENS_OK);
    check_ints(&c.out[0], (int64_t[]){1, 1, 0, 1, 1, 1, 1, 1}, 8, "cast float->bool");
    case_free(&c);
    c.attrs[0] = attr_int("to", LENS_DTYPE_FLOAT16);
    CHECK(case_run(&c) == LENS_OK);
    if (c.out[0].data) {
        const uint16_t *h = c.out[0].data;
        CHECK(h[0] == 0x3ECD); /* 1.7 -> 1.7002 */
        CHECK(h[1] == 0xBECD);
        CHECK(h[4] == 0xB800); /* -0.5 */
        CHECK(h[5] == 0x7BFF); /* 65504, the largest half */
    }
    /* and back to float */
    tensor half = c.out[0];
    half.dims[0] = 6; /* leave out 1e-8 and NaN */
    op_case back = {.op = "Cast", .attrs = {attr_int("to", LENS_DTYPE_FLOAT32)}, .n_attrs = 1, .in = {&half}, .n_in = 1,
                    .n_out = 1};
    CHECK(case_run(&back) == LENS_OK);
    check_floats(&back.out[0], (float[]){1.7001953f, -1.7001953f, 0, 300, -0.5f, 65504}, 6, 0, "cast half->float");
    case_free(&back);
    case_free(&c);
    c.attrs[0] = attr_int("to", LENS_DTYPE_BFLOAT16);
    CHECK(case_run(&c) == LENS_OK);
    if (c.out[0].data) {
        const uint16_t *b = c.out[0].data;
        CHECK(b[0] == 0x3FDA); /* 1.7 = 0x3FD9999A rounds up */
        CHECK(b[3] == 0x4396); /* 300 */
    }
    case_free(&c);
    c.attrs[0] = attr_int("to", LENS_DTYPE_FLOAT64);
    CHECK(case_run(&c) == LENS_OK);
    if (c.out[0].data) CHECK(((double *)c.out[0].data)[0] == (double)1.7f);
    case_free(&c);
    c.attrs[0] = attr_int("to", LENS_DTYPE_STRING);
    CHECK(case_run(&c) == LENS_ERR_UNSUPPORTED);
    case_free(&c);

    int64_t big[4] = {300, -1, INT64_MAX, -129};
    tensor xi = T1(LENS_DTYPE_INT64, 4, big);
    op_case ci = {.op = "Cast", .attrs = {attr_int("to", LENS_DTYPE_INT8)}, .n_attrs = 1, .in = {&xi}, .n_in = 1, .n_out = 1};
    CHECK(case_run(&ci) == LENS_OK);
    check_ints(&ci.out[0], (int64_t[]){44, -1, -1, 127}, 4, "cast int64->int8 wraps");
    case_free(&ci);
    ci.attrs[0] = attr_int("to", LENS_DTYPE_UINT16);
    CHECK(case_run(&ci) == LENS_OK);
    check_ints(&ci.out[0], (int64_t[]){300, 65535, 65535, 65407}, 4, "cast int64->uint16");
    case_free(&ci);
    ci.attrs[0] = attr_int("to", LENS_DTYPE_FLOAT32);
    CHECK(case_run(&ci) == LENS_OK);
    check_floats(&ci.out[0], (float[]){300, -1, 9223372036854775808.0f, -129}, 4, 0, "cast int64->float");
    case_free(&ci);

    uint8_t b[3] = {0, 1, 255};
    tensor xb = T1(LENS_DTYPE_UINT8, 3, b);
    op_case cb = {.op = "Cast", .attrs = {attr_int("to", LENS_DTYPE_FLOAT32)}, .n_attrs = 1, .in = {&xb}, .n_in = 1, .n_out = 1};
    CHECK(case_run(&cb) == LENS_OK);
    check_floats(&cb.out[0], (float[]){0, 1, 255}, 3, 0, "cast uint8->float");
    case_free(&cb);
    uint64_t u[2] = {UINT64_MAX, 5};
    tensor xu = T1(LENS_DTYPE_UINT64, 2, u);
    cb.in[0] = &xu;
    cb.attrs[0] = attr_int("to", LENS_DTYPE_FLOAT64);
    CHECK(case_run(&cb) == LENS_OK);
    if (cb.out[0].data) CHECK(((double *)cb.out[0].data)[0] == 18446744073709551616.0);
    case_free(&cb);
    double dd[3] = {-2.9, 1e30, -1e30};
    tensor xd = T1(LENS_DTYPE_FLOAT64, 3, dd);
    cb.in[0] = &xd;
    cb.attrs[0] = attr_int("to", LENS_DTYPE_INT64);
    CHECK(case_run(&cb) == LENS_OK);
    check_ints(&cb.out[0], (int64_t[]){-2, INT64_MAX, INT64_MIN}, 3, "cast double->int64 saturates");
    case_free(&cb);

    /* CastLike takes the type of its second input */
    int16_t like = 0;
    tensor tl = tens(LENS_DTYPE_INT16, 0, NULL, &like);
    op_case cl = {.op = "CastLike", .in = {&x, &tl}, .n_in = 2, .n_out = 1};
    CHECK(case_run(&cl) == LENS_OK);
    CHECK(cl.out[0].dtype == LENS_DTYPE_INT16);
    check_ints(&cl.out[0], (int64_t[]){1, -1, 0, 300, 0, -32, 0, 0}, 8, "castlike int16"); /* 65504 = 0xFFE0 wraps */
    case_free(&cl);

    /* a large cast spreads over the pool */
    tensor xl = T1(LENS_DTYPE_FLOAT32, 4096, iota_f);
    op_case cp = {.op = "Cast", .attrs = {attr_int("to", LENS_DTYPE_INT64)}, .n_attrs = 1, .in = {&xl}, .n_in = 1,
                  .n_out = 1, .pool = pool2};
    CHECK(case_run(&cp) == LENS_OK);
    check_ints(&cp.out[0], iota_i64, 4096, "cast pooled");
    case_free(&cp);
}

/* ---- TopK ---------------------------------------------------------------------------------------------------- */

static void test_topk(void) {
    float d[12] = {0, 1, 2, 3, 4, 5, 6, 7, 11, 10, 9, 8};
    tensor x = tens(LENS_DTYPE_FLOAT32, 2, DIMS(3, 4), d);
    int64_t three = 3;
    tensor k = T1(LENS_DTYPE_INT64, 1, &three);
    op_case c = {.op = "TopK", .opset = 11, .attrs = {attr_int("axis", 1)}, .n_attrs = 1, .in = {&x, &k}, .n_in = 2, .n_out = 2};
    CHECK(case_run(&c) == LENS_OK);
    CHECK_DIMS(&c.out[0], 2, 3, 3);
    check_floats(&c.out[0], (float[]){3, 2, 1, 7, 6, 5, 11, 10, 9}, 9, 0, "topk values");
    check_ints(&c.out[1], (int64_t[]){3, 2, 1, 3, 2, 1, 0, 1, 2}, 9, "topk indices");
    case_free(&c);
    c.attrs[1] = attr_int("largest", 0);
    c.n_attrs = 2;
    CHECK(case_run(&c) == LENS_OK);
    check_floats(&c.out[0], (float[]){0, 1, 2, 4, 5, 6, 8, 9, 10}, 9, 0, "topk smallest");
    check_ints(&c.out[1], (int64_t[]){0, 1, 2, 0, 1, 2, 3, 2, 1}, 9, "topk smallest indices");
    case_free(&c);
    /* ties keep the lower index first; axis 0 */
    int64_t t[6] = {5, 7, 5, 7, 1, 7};
    tensor ti = tens(LENS_DTYPE_INT64, 2, DIMS(3, 2), t);
    int64_t two = 2;
    tensor k2 = T1(LENS_DTYPE_INT64, 1, &two);
    op_case ct = {.op = "TopK", .opset = 11, .attrs = {attr_int("axis", 0)}, .n_attrs = 1, .in = {&ti, &k2}, .n_in = 2,
                  .n_out = 2};
    CHECK(case_run(&ct) == LENS_OK);
    check_ints(&ct.out[0], (int64_t[]){5, 7, 5, 7}, 4, "topk ties values");
    check_ints(&ct.out[1], (int64_t[]){0, 0, 1, 1}, 4, "topk ties indices");
    case_free(&ct);
    int64_t five = 5;
    tensor k5 = T1(LENS_DTYPE_INT64, 1, &five);
    c.in[1] = &k5;
    CHECK(case_run(&c) == LENS_ERR_INVALID_ARGUMENT);
    case_free(&c);
}

/* ---- Resize -------------------------------------------------------------------------------------------------- */

static const float grid4[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const float grid2x4[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const float grid2[4] = {1, 2, 3, 4};

/* Resize at opset 13 of a [1,1,h,w] input with scales or sizes; attrs are (name, value) string pairs plus numbers. */
static void check_resize(const char *what, const float *in, int64_t h, int64_t w, const float *scales,
                         const int64_t *sizes, const op_attr *attrs, int n_attrs, const float *expect, int64_t oh,
                         int64_t ow, float tol) {
    tensor x = tens(LENS_DTYPE_FLOAT32, 4, DIMS(1, 1, h, w), in);
    tensor ts = T1(LENS_DTYPE_FLOAT32, 4, scales), tz = T1(LENS_DTYPE_INT64, 4, sizes);
    op_case c = {.op = "Resize", .opset = 13, .n_attrs = n_attrs, .in = {&x, NULL, scales ? &ts : NULL, sizes ? &tz : NULL},
                 .n_in = sizes ? 4 : 3, .n_out = 1};
    for (int i = 0; i < n_attrs; i++) c.attrs[i] = attrs[i];
    lens_status st = case_run(&c);
    CHECK_MSG(st == LENS_OK, "%s: %s", what, core_last_error());
    CHECK_MSG(dims_are(&c.out[0], 4, DIMS(1, 1, oh, ow)), "%s: shape %s", what, shape_of(&c.out[0]));
    if (st == LENS_OK) check_floats(&c.out[0], expect, oh * ow, tol, what);
    case_free(&c);
}

static void test_resize(void) {
    const float up2[4] = {1, 1, 2, 2}, up23[4] = {1, 1, 2, 3}, down06[4] = {1, 1, 0.6f, 0.6f}, down08[4] = {1, 1, 0.8f, 0.8f};
    op_attr linear = attr_str("mode", "linear"), cubic = attr_str("mode", "cubic");
    op_attr align = attr_str("coordinate_transformation_mode", "align_corners");

    check_resize("nearest up", grid2, 2, 2, up23, NULL, NULL, 0,
                 (float[]){1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4}, 4, 6, 0);
    check_resize("nearest down", grid2x4, 2, 4, down06, NULL, NULL, 0, (float[]){1, 3}, 1, 2, 0);
    check_resize("nearest sizes down", grid2x4, 2, 4, NULL, DIMS(1, 1, 1, 3), NULL, 0, (float[]){1, 2, 4}, 1, 3, 0);
    check_resize("linear up", grid2, 2, 2, up2, NULL, &linear, 1,
                 (float[]){1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4},
                 4, 4, 1e-6f);
    check_resize("linear up align_corners", grid2, 2, 2, up2, NULL, (op_attr[]){linear, align}, 2,
                 (float[]){1, 4 / 3.f, 5 / 3.f, 2, 5 / 3.f, 2, 7 / 3.f, 8 / 3.f, 7 / 3.f, 8 / 3.f, 3, 10 / 3.f, 3,
                           10 / 3.f, 11 / 3.f, 4},
                 4, 4, 1e-6f);
    check_resize("linear down", grid2x4, 2, 4, down06, NULL, &linear, 1, (float[]){2.6666665f, 4.3333331f}, 1, 2, 1e-6f);
    /* align_corners uses the unrounded length 4 * 0.6 = 2.4: x = 1 maps to 3 / 1.4 */
    check_resize("linear down align_corners", grid2x4, 2, 4, down06, NULL, (op_attr[]){linear, align}, 2,
                 (float[]){1, 3.142857f}, 1, 2, 1e-6f);
    check_resize("linear pytorch_half_pixel", grid4, 4, 4, NULL, DIMS(1, 1, 3, 1),
                 (op_attr[]){linear, attr_str("coordinate_transformation_mode", "pytorch_half_pixel")}, 2,
                 (float[]){1.6666666f, 7, 12.333333f}, 3, 1, 1e-5f);
    check_resize("cubic down", grid4, 4, 4, down08, NULL, &cubic, 1,
                 (float[]){1.47119141f, 2.78125f, 4.08251953f, 6.71142578f, 8.02148438f, 9.32275391f, 11.9165039f,
                           13.2265625f, 14.527832f},
                 3, 3, 1e-5f);
    check_resize("cubic down A=-0.5 exclude_outside", grid4, 4, 4, down08, NULL,
                 (op_attr[]){cubic, attr_float("cubic_coeff_a", -0.5f), attr_int("exclude_outside", 1)}, 3,
                 (float[]){1.36812675f, 2.6695013f, 4.01333666f, 6.57362509f, 7.875f, 9.21883488f, 11.948966f,
                           13.2503414f, 14.5941763f},
                 3, 3, 1e-5f);
    check_resize("cubic down align_corners", grid4, 4, 4, down08, NULL, (op_attr[]){cubic, align}, 2,
                 (float[]){1, 2.39519167f, 3.7903831f, 6.5807662f, 7.97595787f, 9.37114906f, 12.1615324f, 13.5567236f,
                           14.9519157f},
                 3, 3, 1e-5f);
    check_resize("cubic up asymmetric", grid4, 4, 4, up2, NULL,
                 (op_attr[]){cubic, attr_str("coordinate_transformation_mode", "asymmetric")}, 2,
                 (float[]){1,     1.40625f, 2,     2.5f,  3,     3.59375f, 4,     4.09375f, 2.625f, 3.03125f, 3.625f,
                           4.125f, 4.625f, 5.21875f, 5.625f, 5.71875f, 5, 5.40625f, 6, 6.5f, 7, 7.59375f, 8, 8.09375f,
                           7,     7.40625f, 8,     8.5f,  9,     9.59375f, 10,    10.09375f, 9,     9.40625f, 10,
                           10.5f, 11,    11.59375f, 12, 12.09375f, 11.375f, 11.78125f, 12.375f, 12.875f, 13.375f,
                           13.96875f, 14.375f, 14.46875f, 13, 13.40625f, 14, 14.5f, 15, 15.59375f, 16, 16.09375f,
                           13.375f, 13.78125f, 14.375f, 14.875f, 15.375f, 15.96875f, 16.375f, 16.46875f},
                 8, 8, 1e-5f);
    check_resize("nearest ceil half_pixel", grid4, 4, 4, NULL, DIMS(1, 1, 8, 8), (op_attr[]){attr_str("nearest_mode", "ceil")}, 1,
                 (float[]){1,  2,  2,  3,  3,  4,  4,  4,  5,  6,  6,  7,  7,  8,  8,  8,  5,  6,  6,  7,  7,  8,
                           8,  8,  9,  10, 10, 11, 11, 12, 12, 12, 9,  10, 10, 11, 11, 12, 12, 12, 13, 14, 14, 15,
                           15, 16, 16, 16, 13, 14, 14, 15, 15, 16, 16, 16, 13, 14, 14, 15, 15, 16, 16, 16},
                 8, 8, 0);
    check_resize("nearest floor align_corners", grid4, 4, 4, NULL, DIMS(1, 1, 8, 8),
                 (op_attr[]){attr_str("nearest_mode", "floor"), align}, 2,
                 (float[]){1, 1, 1, 2,  2,  3,  3,  4,  1,  1,  1,  2,  2,  3,  3,  4,  1,  1,  1,  2,  2,  3,
                           3, 4, 5, 5,  5,  6,  6,  7,  7,  8,  5,  5,  5,  6,  6,  7,  7,  8,  9,  9,  9,  10,
                           10, 11, 11, 12, 9, 9, 9, 10, 10, 11, 11, 12, 13, 13, 13, 14, 14, 15, 15, 16},
                 8, 8, 0);
    check_resize("nearest round_prefer_ceil asymmetric", grid4, 4, 4, NULL, DIMS(1, 1, 8, 8),
                 (op_attr[]){attr_str("nearest_mode", "round_prefer_ceil"),
                             attr_str("coordinate_transformation_mode", "asymmetric")},
                 2,
                 (float[]){1,  2,  2,  3,  3,  4,  4,  4,  5,  6,  6,  7,  7,  8,  8,  8,  5,  6,  6,  7,  7,  8,
                           8,  8,  9,  10, 10, 11, 11, 12, 12, 12, 9,  10, 10, 11, 11, 12, 12, 12, 13, 14, 14, 15,
                           15, 16, 16, 16, 13, 14, 14, 15, 15, 16, 16, 16, 13, 14, 14, 15, 15, 16, 16, 16},
                 8, 8, 0);

    /* tf_crop_and_resize with an extrapolation value: roi as an input */
    {
        tensor x = tens(LENS_DTYPE_FLOAT32, 4, DIMS(1, 1, 4, 4), grid4);
        float roi[8] = {0, 0, 0.4f, 0.6f, 1, 1, 1.2f, 1.7f};
        tensor troi = T1(LENS_DTYPE_FLOAT32, 8, roi), tz = T1(LENS_DTYPE_INT64, 4, DIMS(1, 1, 3, 3));
        op_case c = {.op = "Resize", .opset = 13,
                     .attrs = {linear, attr_str("coordinate_transformation_mode", "tf_crop_and_resize"),
                               attr_float("extrapolation_value", 10)},
                     .n_attrs = 3, .in = {&x, &troi, NULL, &tz}, .n_in = 4, .n_out = 1};
        CHECK(case_run(&c) == LENS_OK);
        check_floats(&c.out[0], (float[]){7.6f, 10, 10, 12.4f, 10, 10, 10, 10, 10}, 9, 1e-5f, "tf_crop_and_resize");
        case_free(&c);
        /* roi changes values, not the shape: planning works without its data */
        tensor roi_unknown = T1(LENS_DTYPE_FLOAT32, 8, NULL);
        c.in[1] = &roi_unknown;
        CHECK(case_infer(&c) == LENS_OK);
        CHECK_DIMS(&c.out[0], 4, 1, 1, 3, 3);
    }
    /* opset 11 with tf_half_pixel_for_nn; empty scales stand for "not given" */
    {
        tensor x = tens(LENS_DTYPE_FLOAT32, 4, DIMS(1, 1, 4, 4), grid4);
        tensor empty = tens(LENS_DTYPE_FLOAT32, 1, DIMS(0), NULL), tz = T1(LENS_DTYPE_INT64, 4, DIMS(1, 1, 3, 2));
        op_case c = {.op = "Resize", .opset = 11, .attrs = {attr_str("coordinate_transformation_mode", "tf_half_pixel_for_nn")},
                     .n_attrs = 1, .in = {&x, &empty, &empty, &tz}, .n_in = 4, .n_out = 1};
        CHECK(case_run(&c) == LENS_OK);
        check_floats(&c.out[0], (float[]){6, 8, 10, 12, 14, 16}, 6, 0, "tf_half_pixel_for_nn");
        case_free(&c);
    }
    /* opset 10: scales is input 1, asymmetric coordinates */
    {
        tensor x = tens(LENS_DTYPE_FLOAT32, 4, DIMS(1, 1, 2, 2), grid2);
        tensor ts = T1(LENS_DTYPE_FLOAT32, 4, up2);
        op_case c = {.op = "Resize", .opset = 10, .attrs = {linear}, .n_attrs = 1, .in = {&x, &ts}, .n_in = 2, .n_out = 1};
        CHECK(case_run(&c) == LENS_OK);
        check_floats(&c.out[0], (float[]){1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 3, 3.5f, 4, 4, 3, 3.5f, 4, 4}, 16, 1e-6f,
                     "resize opset 10 linear");
        case_free(&c);
        /* Upsample-9 nearest, and a uint8 input (nearest moves bytes) */
        uint8_t u[4] = {1, 2, 3, 4};
        tensor xu = tens(LENS_DTYPE_UINT8, 4, DIMS(1, 1, 2, 2), u);
        op_case up = {.op = "Upsample", .opset = 9, .in = {&xu, &(tensor){.dtype = LENS_DTYPE_FLOAT32, .rank = 1,
                                                                          .dims = {4}, .data = (void *)up23}},
                      .n_in = 2, .n_out = 1};
        CHECK(case_run(&up) == LENS_OK);
        CHECK_DIMS(&up.out[0], 4, 1, 1, 4, 6);
        check_ints(&up.out[0], (int64_t[]){1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4}, 24,
                   "upsample uint8");
        case_free(&up);
        /* Upsample-7: scales attribute */
        op_case up7 = {.op = "Upsample", .opset = 7, .attrs = {attr_floats("scales", up2, 4), linear}, .n_attrs = 2,
                       .in = {&x}, .n_in = 1, .n_out = 1};
        CHECK(case_run(&up7) == LENS_OK);
        check_floats(&up7.out[0], (float[]){1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 3, 3.5f, 4, 4, 3, 3.5f, 4, 4}, 16, 1e-6f,
                     "upsample 7 linear");
        case_free(&up7);
    }
    /* opset 18: axes and keep_aspect_ratio_policy. sizes [7, 8] on a 2x2 with not_larger: scale min(3.5, 4) = 3.5,
     * both axes become round(2 * 3.5) = 7. */
    {
        tensor x = tens(LENS_DTYPE_FLOAT32, 4, DIMS(1, 1, 2, 2), grid2);
        tensor tz = T1(LENS_DTYPE_INT64, 2, DIMS(7, 8));
        int64_t axes[2] = {2, 3};
        op_case c = {.op = "Resize", .opset = 18,
                     .attrs = {attr_ints("axes", axes, 2), attr_str("keep_aspect_ratio_policy", "not_larger")},
                     .n_attrs = 2, .in = {&x, NULL, NULL, &tz}, .n_in = 4, .n_out = 1};
        CHECK(case_run(&c) == LENS_OK);
        CHECK_DIMS(&c.out[0], 4, 1, 1, 7, 7);
        float e[49];
        /* half_pixel, round_prefer_floor: (i + 0.5) / 3.5 - 0.5 rounds to 0 for i <= 3 (i = 3 is 0.5: floor) */
        for (int i = 0; i < 7; i++)
            for (int j = 0; j < 7; j++) e[i * 7 + j] = grid2[(i > 3) * 2 + (j > 3)];
        check_floats(&c.out[0], e, 49, 0, "resize 18 not_larger");
        case_free(&c);
        c.attrs[1] = attr_str("keep_aspect_ratio_policy", "not_smaller");
        CHECK(case_run(&c) == LENS_OK);
        CHECK_DIMS(&c.out[0], 4, 1, 1, 8, 8);
        case_free(&c);
        /* axes [3] only: sizes has one value */
        int64_t axis3[1] = {-1};
        tensor tz1 = T1(LENS_DTYPE_INT64, 1, DIMS(3));
        op_case c1 = {.op = "Resize", .opset = 18, .attrs = {attr_ints("axes", axis3, 1), linear}, .n_attrs = 2,
                      .in = {&x, NULL, NULL, &tz1}, .n_in = 4, .n_out = 1};
        CHECK(case_run(&c1) == LENS_OK);
        CHECK_DIMS(&c1.out[0], 4, 1, 1, 2, 3);
        /* x' = (x + 0.5) / 1.5 - 0.5 = -1/6 (edge), 0.5, 7/6 (edge) */
        check_floats(&c1.out[0], (float[]){1, 1.5f, 2, 3, 3.5f, 4}, 6, 1e-6f,
                     "resize 18 one axis");
        case_free(&c1);
    }
    /* antialias (opset 18): 4 -> 2 linear on [0, 0, 12, 12] is a tent of half-width 2 around x' = 0.5 and 2.5:
     * taps -1..2 and 1..4 with weights 1/4, 3/4, 3/4, 1/4 (sum 2); out-of-range taps read the edge element. */
    {
        float v[4] = {0, 0, 12, 12};
        tensor x = tens(LENS_DTYPE_FLOAT32, 2, DIMS(1, 4), v);
        float sc[2] = {1, 0.5f};
        tensor ts = T1(LENS_DTYPE_FLOAT32, 2, sc);
        op_case c = {.op = "Resize", .opset = 18, .attrs = {linear, attr_int("antialias", 1)}, .n_attrs = 2,
                     .in = {&x, NULL, &ts}, .n_in = 3, .n_out = 1};
        CHECK(case_run(&c) == LENS_OK);
        check_floats(&c.out[0], (float[]){(0.25f * 0 + 0.75f * 0 + 0.75f * 0 + 0.25f * 12) / 2,
                                          (0.25f * 0 + 0.75f * 12 + 0.75f * 12 + 0.25f * 12) / 2},
                     2, 1e-5f, "antialias linear");
        case_free(&c);
        /* without antialias: x' = 0.5 and 2.5, plain interpolation */
        c.attrs[1] = attr_int("antialias", 0);
        CHECK(case_run(&c) == LENS_OK);
        check_floats(&c.out[0], (float[]){0, 12}, 2, 1e-6f, "no antialias linear");
        case_free(&c);
    }
    /* opset 18/19 cases with numbers from the ONNX reference implementation (onnx/reference/ops/op_resize.py) */
    {
        const float aa[4] = {1, 1, 0.6f, 0.6f}, sym[4] = {1, 1, 2.3f, 2.94f};
        op_attr antialias = attr_int("antialias", 1);
        check_resize("cubic antialias", grid4, 4, 4, aa, NULL, (op_attr[]){cubic, antialias}, 2,
                     (float[]){2.51807213f, 4.28588629f, 9.58932877f, 11.3571424f}, 2, 2, 1e-5f);
        check_resize("linear antialias", grid4, 4, 4, aa, NULL, (op_attr[]){linear, antialias}, 2,
                     (float[]){2.875f, 4.5f, 9.375f, 11}, 2, 2, 1e-5f);
        check_resize("linear antialias sizes", grid4, 4, 4, NULL, DIMS(1, 1, 3, 3), (op_attr[]){linear, antialias}, 2,
                     (float[]){2.36363626f, 3.590909f, 4.81818199f, 7.27272749f, 8.5f, 9.72727299f, 12.181818f,
                               13.409091f, 14.636364f},
                     3, 3, 1e-5f);
        check_resize("linear half_pixel_symmetric", grid2, 2, 2, sym, NULL,
                     (op_attr[]){linear, attr_str("coordinate_transformation_mode", "half_pixel_symmetric")}, 2,
                     (float[]){1, 1.15986395f, 1.5f, 1.84013605f, 2, 1.56521738f, 1.72508132f, 2.06521749f, 2.40535355f,
                               2.56521749f, 2.4347825f, 2.59464645f, 2.93478251f, 3.27491856f, 3.4347825f, 3, 3.15986395f,
                               3.5f, 3.84013605f, 4},
                     4, 5, 1e-5f);
    }
    /* N-D linear (the general path: the channel axis is resized too). With align_corners a linear function
     * f = 4z + 2y + x on a 2x2x2 grid resamples exactly: output (z, y, x) in 0..3 is (4z + 2y + x) / 3. */
    {
        float f[8] = {0, 1, 2, 3, 4, 5, 6, 7};
        tensor x = tens(LENS_DTYPE_FLOAT32, 4, DIMS(1, 2, 2, 2), f);
        tensor ts = T1(LENS_DTYPE_FLOAT32, 4, (float[]){1, 2, 2, 2});
        op_case c = {.op = "Resize", .opset = 13, .attrs = {linear, align}, .n_attrs = 2, .in = {&x, NULL, &ts},
                     .n_in = 3, .n_out = 1, .pool = pool2};
        CHECK(case_run(&c) == LENS_OK);
        CHECK_DIMS(&c.out[0], 4, 1, 4, 4, 4);
        float e[64];
        for (int z = 0; z < 4; z++)
            for (int yy = 0; yy < 4; yy++)
                for (int xx = 0; xx < 4; xx++) e[(z * 4 + yy) * 4 + xx] = (4.f * z + 2.f * yy + xx) / 3;
        check_floats(&c.out[0], e, 64, 1e-5f, "trilinear");
        case_free(&c);
        /* the same through tf_crop_and_resize with roi [0, 1] everywhere is the align_corners mapping */
        float roi[8] = {0, 0, 0, 0, 1, 1, 1, 1};
        tensor troi = T1(LENS_DTYPE_FLOAT32, 8, roi);
        op_case cr = {.op = "Resize", .opset = 13,
                      .attrs = {linear, attr_str("coordinate_transformation_mode", "tf_crop_and_resize")}, .n_attrs = 2,
                      .in = {&x, &troi, &ts}, .n_in = 3, .n_out = 1};
        CHECK(case_run(&cr) == LENS_OK);
        check_floats(&cr.out[0], e, 64, 1e-5f, "trilinear tf_crop_and_resize");
        case_free(&cr);
    }
    /* errors: linear on int8, neither scales nor sizes, scales unknown at plan time */
    {
        int8_t i8[4] = {0};
        tensor x8 = tens(LENS_DTYPE_INT8, 4, DIMS(1, 1, 2, 2), i8), ts = T1(LENS_DTYPE_FLOAT32, 4, up2);
        op_case c = {.op = "Resize", .opset = 13, .attrs = {linear}, .n_attrs = 1, .in = {&x8, NULL, &ts}, .n_in = 3, .n_out = 1};
        CHECK(case_run(&c) == LENS_ERR_UNSUPPORTED);
        case_free(&c);
        tensor x = tens(LENS_DTYPE_FLOAT32, 4, DIMS(1, 1, 2, 2), grid2);
        op_case none = {.op = "Resize", .opset = 13, .in = {&x}, .n_in = 1, .n_out = 1};
        CHECK(case_run(&none) == LENS_ERR_INVALID_ARGUMENT);
        case_free(&none);
        tensor unknown = T1(LENS_DTYPE_FLOAT32, 4, NULL);
        op_case u = {.op = "Resize", .opset = 13, .in = {&x, NULL, &unknown}, .n_in = 3, .n_out = 1};
        CHECK(case_infer(&u) == LENS_ERR_UNSUPPORTED);
        CHECK_MSG(strstr(core_last_error(), "scales input must be constant") != NULL, "%s", core_last_error());
    }
    /* a larger bilinear 2x upsample through the pool agrees with the single-threaded run */
    {
        static float big[3 * 40 * 50], single[3 * 80 * 100];
        for (int i = 0; i < 3 * 40 * 50; i++) big[i] = (float)((i * 37) % 101) / 7.f;
        tensor x = tens(LENS_DTYPE_FLOAT32, 4, DIMS(1, 3, 40, 50), big), ts = T1(LENS_DTYPE_FLOAT32, 4, up2);
        op_case c = {.op = "Resize", .opset = 13, .attrs = {linear}, .n_attrs = 1, .in = {&x, NULL, &ts}, .n_in = 3, .n_out = 1};
        CHECK(case_run(&c) == LENS_OK);
        if (c.out[0].data) memcpy(single, c.out[0].data, sizeof single);
        /* spot check by hand: out[0][0][5][7] sits at (2.25, 3.25): rows 2,3 weigh 0.75/0.25, cols 3,4 too */
        float r2 = 0.75f * big[2 * 50 + 3] + 0.25f * big[2 * 50 + 4], r3 = 0.75f * big[3 * 50 + 3] + 0.25f * big[3 * 50 + 4];
        CHECK_NEAR(single[5 * 100 + 7], 0.75f * r2 + 0.25f * r3, 1e-5);
        case_free(&c);
        c.pool = pool2;
        CHECK(case_run(&c) == LENS_OK);
        check_floats(&c.out[0], single, 3 * 80 * 100, 0, "resize pooled");
        case_free(&c);
    }
}

/* ---- Limits and random inputs -------------------------------------------------------------------------------- */

static void test_limits(void) {
    float one = 1;
    tensor x = tens(LENS_DTYPE_FLOAT32, 2, DIMS(1, 1), &one);
    tensor huge = T1(LENS_DTYPE_INT64, 2, (int64_t[]){(int64_t)1 << 40, (int64_t)1 << 40});
    op_case t = {.op = "Tile", .in = {&x, &huge}, .n_in = 2, .n_out = 1};
    CHECK(case_infer(&t) == LENS_ERR_LIMIT);
    op_case e = {.op = "Expand", .in = {&x, &huge}, .n_in = 2, .n_out = 1};
    CHECK(case_infer(&e) == LENS_ERR_LIMIT);
    tensor empty_big = tens(LENS_DTYPE_FLOAT32, 2, DIMS(0, INT64_MAX), NULL);
    tensor pads = T1(LENS_DTYPE_INT64, 4, (int64_t[]){1, 1, 1, 1});
    op_case pd = {.op = "Pad", .opset = 13, .in = {&empty_big, &pads}, .n_in = 2, .n_out = 1};
    CHECK(case_infer(&pd) == LENS_ERR_LIMIT);
    tensor cs = T1(LENS_DTYPE_INT64, 3, (int64_t[]){(int64_t)1 << 30, (int64_t)1 << 30, (int64_t)1 << 10});
    op_case c = {.op = "ConstantOfShape", .in = {&cs}, .n_in = 1, .n_out = 1};
    CHECK(case_infer(&c) == LENS_ERR_LIMIT);
    tensor x4 = tens(LENS_DTYPE_FLOAT32, 4, DIMS(1, 1, 2, 2), grid2);
    float nan_scales[4] = {1, 1, NAN, 2}, big_scales[4] = {1, 1, 1e30f, 1};
    tensor tn = T1(LENS_DTYPE_FLOAT32, 4, nan_scales), tb = T1(LENS_DTYPE_FLOAT32, 4, big_scales);
    op_case r = {.op = "Resize", .opset = 13, .in = {&x4, NULL, &tn}, .n_in = 3, .n_out = 1};
    CHECK(case_infer(&r) == LENS_ERR_INVALID_ARGUMENT);
    r.in[2] = &tb;
    CHECK(case_infer(&r) == LENS_ERR_LIMIT);
}

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static int64_t rng_in(int64_t lo, int64_t hi) { return lo + (int64_t)(rng() % (uint64_t)(hi - lo + 1)); }

/* Every op with random shapes, types, values and attributes: each call must return a status, never crash or read
 * out of bounds (CI runs this under AddressSanitizer and UBSan). */
static void test_random_inputs(void) {
    static const char *const ops[] = {"Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split",
                                      "Slice", "Gather", "GatherElements", "Expand", "Tile", "Pad", "Shape", "Size",
                                      "ConstantOfShape", "Range", "Cast", "CastLike", "Identity", "Dropout", "TopK",
                                      "Resize", "Upsample"};
    static const lens_dtype types[] = {LENS_DTYPE_FLOAT32, LENS_DTYPE_INT64, LENS_DTYPE_INT32, LENS_DTYPE_UINT8,
                                       LENS_DTYPE_BOOL, LENS_DTYPE_FLOAT16};
    static const char *const modes[] = {"constant", "reflect", "edge", "wrap", "nearest", "linear", "cubic", "bogus"};
    static const char *const coords[] = {"half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize",
                                         "pytorch_half_pixel", "half_pixel_symmetric"};
    static const int opsets[] = {7, 9, 10, 11, 13, 18};
    int ok = 0, calls = 0, bad_status = 0;
    for (int iter = 0; iter < 6000; iter++) {
        op_case c = {.op = ops[rng() % (sizeof ops / sizeof *ops)], .opset = opsets[rng() % 6], .n_out = 1 + (int)(rng() % 3)};
        tensor ins[5];
        static uint8_t data[5][4 * 4 * 4 * 4 * 8] __attribute__((aligned(16)));
        c.n_in = 1 + (int)(rng() % 5);
        for (int i = 0; i < c.n_in; i++) {
            lens_dtype dt = types[rng() % (sizeof types / sizeof *types)];
            if (i > 0 && rng() % 2) dt = LENS_DTYPE_INT64; /* most secondary inputs are int64 */
            int rank = (int)(rng() % 5);
            if (i > 0 && rng() % 2) rank = 1;
            int64_t dims[4];
            int64_t n = 1;
            for (int k = 0; k < rank; k++) {
                dims[k] = rng_in(0, 4);
                n *= dims[k];
            }
            ins[i] = tens(dt, rank, dims, data[i]);
            size_t es = dtype_size(dt);
            for (int64_t j = 0; j < n; j++) {
                int64_t v = rng_in(-6, 6);
                if (dt == LENS_DTYPE_FLOAT32) { float f = (float)v * 0.75f; memcpy(data[i] + j * 4, &f, 4); }
                else if (dt == LENS_DTYPE_FLOAT16) { uint16_t h = core_f32_to_f16((float)v); memcpy(data[i] + j * 2, &h, 2); }
                else memcpy(data[i] + (size_t)j * es, &v, es); /* little-endian low bytes */
            }
            c.in[i] = rng() % 10 ? &ins[i] : NULL;
        }
        if (!c.in[0]) c.in[0] = &ins[0];
        int64_t ints[4] = {rng_in(-5, 5), rng_in(-5, 5), rng_in(-5, 5), rng_in(-5, 5)};
        float floats[4] = {(float)rng_in(0, 8) * 0.5f, (float)rng_in(0, 8) * 0.5f, 1, 2};
        static float value_data = 2;
        static tensor value = {.dtype = LENS_DTYPE_FLOAT32, .rank = 1, .dims = {1}, .data = &value_data};
        op_attr pool_attrs[] = {
            attr_int("axis", rng_in(-5, 5)), attr_ints("axes", ints, (size_t)rng_in(0, 4)),
            attr_ints("perm", ints, (size_t)rng_in(0, 4)), attr_ints("starts", ints, (size_t)rng_in(0, 3)),
            attr_ints("ends", ints + 1, (size_t)rng_in(0, 3)), attr_ints("split", ints, (size_t)rng_in(0, 3)),
            attr_str("mode", modes[rng() % 8]), attr_str("coordinate_transformation_mode", coords[rng() % 6]),
            attr_int("to", rng_in(0, 17)), attr_ints("pads", ints, (size_t)rng_in(0, 4)),
            attr_floats("scales", floats, (size_t)rng_in(0, 4)), attr_tensor("value", &value),
            attr_int("allowzero", rng_in(0, 1)), attr_int("num_outputs", rng_in(0, 3)), attr_int("antialias", rng_in(0, 1)),
            attr_int("start", rng_in(-5, 5)), attr_int("end", rng_in(-5, 5)), attr_int("largest", rng_in(0, 1)),
            attr_int("exclude_outside", rng_in(0, 1)), attr_str("keep_aspect_ratio_policy", rng() % 2 ? "not_larger" : "stretch"),
        };
        int n_pool = (int)(sizeof pool_attrs / sizeof *pool_attrs);
        for (int a = 0; a < 8; a++) {
            op_attr at = pool_attrs[rng() % (uint64_t)n_pool];
            bool dup = false;
            for (int b = 0; b < c.n_attrs; b++) dup |= !strcmp(c.attrs[b].name, at.name);
            if (!dup && rng() % 2) c.attrs[c.n_attrs++] = at;
        }
        if (!strcmp(c.op, "ConstantOfShape")) c.n_in = 1;
        lens_status st = case_infer(&c);
        calls++;
        bad_status += st > LENS_ERR_LIMIT;
        if (st == LENS_OK) {
            bool small = true;
            for (int i = 0; i < c.n_out; i++) small &= tensor_bytes(&c.out[i]) <= ((size_t)1 << 20);
            if (small) {
                st = case_run(&c);
                bad_status += st > LENS_ERR_LIMIT;
                ok += st == LENS_OK;
                case_free(&c);
            }
        }
    }
    CHECK_MSG(bad_status == 0, "%d calls returned an unknown status", bad_status);
    CHECK_MSG(ok > 300, "only %d of %d random calls ran; the generator is too strict", ok, calls);
}

int main(void) {
    for (int i = 0; i < 4096; i++) {
        iota_f[i] = (float)i;
        iota_i64[i] = i;
    }
    CHECK(core_pool_create(2, &pool2) == LENS_OK);
    test_reshape();
    test_flatten_squeeze();
    test_transpose();
    test_concat_split();
    test_slice();
    test_gather();
    test_expand_tile();
    test_pad();
    test_shape_size_constants();
    test_cast();
    test_topk();
    test_resize();
    test_limits();
    test_random_inputs();
    core_pool_free(pool2);
    return test_finish("test_shape_ops");
}
