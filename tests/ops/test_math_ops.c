/* test_math_ops.c — the activation, elementwise and reduction ops (src/ops/act.c, eltwise.c, reduce.c) through their
 * op_def: infer then run, against values written out by hand or computed here with plain loops in double. Covers
 * broadcasting, scalars, zero-size dims, integer semantics, opset differences and multithreaded sizes. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "ops/ops.h"
#include "test.h"

static core_pool *pool;

/* ---- Helpers ------------------------------------------------------------------------------------------------ */

#define DIMS(...) ((const int64_t[]){__VA_ARGS__})

static tensor tn(lens_dtype dtype, const void *data, int rank, const int64_t *dims) {
    tensor t = {dtype, rank, {0}, (void *)data};
    for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
    return t;
}

static op_attr attr_int(const char *name, int64_t v) { return (op_attr){.name = name, .type = OP_ATTR_INT, .i = v}; }
static op_attr attr_float(const char *name, float v) {
    return (op_attr){.name = name, .type = OP_ATTR_FLOAT, .f = v};
}
static op_attr attr_string(const char *name, const char *s) {
    return (op_attr){.name = name, .type = OP_ATTR_STRING, .s = s, .s_len = strlen(s)};
}
static op_attr attr_ints(const char *name, const int64_t *v, size_t n) {
    return (op_attr){.name = name, .type = OP_ATTR_INTS, .ints = v, .count = n};
}

typedef struct op_spec {
    const char *domain, *op_type;
    int opset;
    int n_attrs;
    const op_attr *attrs;
} op_spec;

/* Infers and runs op on the given inputs (NULL entries are omitted optional inputs). On success out->data is
 * allocated (free with done()); it is filled with a poison pattern before run so unwritten elements show. */
static lens_status run_op(op_spec spec, int n_in, const tensor *const *in, tensor *out) {
    memset(out, 0, sizeof *out);
    const op_def *def = ops_lookup(spec.domain, spec.op_type);
    if (!def) return core_fail(LENS_ERR_UNSUPPORTED, "%s is not registered", spec.op_type);
    op_node node = {"test", spec.op_type, spec.domain, spec.opset, spec.n_attrs, spec.attrs};
    tensor *outs[1] = {out};
    op_call call = {&node, n_in, in, 1, outs, pool, NULL, NULL, 0, 0};
    lens_status st = def->infer(&call);
    if (st) return st;
    size_t bytes = tensor_bytes(out);
    if (bytes == SIZE_MAX) return core_fail(LENS_ERR_SHAPE, "bad output shape");
    out->data = core_aligned_alloc(bytes + 64);
    memset(out->data, 0xA5, bytes);
    return def->run(&call);
}

static void done(tensor *t) {
    core_aligned_free(t->data);
    t->data = NULL;
}

#define OP(type, opset) ((op_spec){"", type, opset, 0, NULL})
#define OPA(type, opset, ...)                                                                        \
    ((op_spec){"", type, opset, sizeof((op_attr[]){__VA_ARGS__}) / sizeof(op_attr), (op_attr[]){__VA_ARGS__}})
#define INPUTS(...) ((const tensor *const[]){__VA_ARGS__})
#define N_INPUTS(...) ((int)(sizeof((const tensor *const[]){__VA_ARGS__}) / sizeof(const tensor *)))
#define RUN(spec, out, ...) run_op(spec, N_INPUTS(__VA_ARGS__), INPUTS(__VA_ARGS__), out)

static int shape_is(const tensor *t, int rank, const int64_t *dims) {
    if (t->rank != rank) return 0;
    for (int i = 0; i < rank; i++)
        if (t->dims[i] != dims[i]) return 0;
    return 1;
}

/* Relative-or-absolute closeness; NaN matches NaN, infinities must match exactly. */
static int close_to(double got, double want, double tol) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= tol * (1.0 + fabs(want));
}

static int check_f32(const char *what, const tensor *t, const double *want, int64_t n, double tol) {
    const float *g = t->data;
    for (int64_t i = 0; i < n; i++) {
        if (!close_to(g[i], want[i], tol)) {
            CHECK_MSG(0, "%s: element %lld: got %.9g, want %.9g", what, (long long)i, g[i], want[i]);
            return 0;
        }
    }
    CHECK(1);
    return 1;
}

static int check_i64(const char *what, const tensor *t, const int64_t *want, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        int64_t g = tensor_get_int(t, i);
        if (g != want[i]) {
            CHECK_MSG(0, "%s: element %lld: got %lld, want %lld", what, (long long)i, (long long)g,
                      (long long)want[i]);
            return 0;
        }
    }
    CHECK(1);
    return 1;
}

static uint32_t rng_state = 12345;
static float rnd(float lo, float hi) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(rng_state >> 8) / 16777216.0f;
}
static void fill(float *x, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) x[i] = rnd(lo, hi);
}

/* ---- Binary broadcasting -------------------------------------------------------------------------------------- */

static void test_add_broadcast(void) {
    float a[24], b[3];
    fill(a, 24, -5, 5);
    fill(b, 3, -5, 5);
    tensor ta = tn(LENS_DTYPE_FLOAT32, a, 3, DIMS(2, 3, 4)), tb = tn(LENS_DTYPE_FLOAT32, b, 2, DIMS(3, 1)), out;
    CHECK(RUN(OP("Add", 14), &out, &ta, &tb) == LENS_OK);
    CHECK(shape_is(&out, 3, DIMS(2, 3, 4)) && out.dtype == LENS_DTYPE_FLOAT32);
    double want[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) want[i * 12 + j * 4 + k] = (double)a[i * 12 + j * 4 + k] + b[j];
    check_f32("Add [2,3,4]+[3,1]", &out, want, 24, 1e-6);
    done(&out);

    /* [3,1] - [2,3,4]: the broadcast operand first */
    CHECK(RUN(OP("Sub", 14), &out, &tb, &ta) == LENS_OK);
    for (int i = 0; i < 24; i++) want[i] = (double)b[(i / 4) % 3] - a[i];
    check_f32("Sub [3,1]-[2,3,4]", &out, want, 24, 1e-6);
    done(&out);

    /* [1] + [2,3] */
    float one[1] = {10}, m[6] = {1, 2, 3, 4, 5, 6};
    tensor t1 = tn(LENS_DTYPE_FLOAT32, one, 1, DIMS(1)), tm = tn(LENS_DTYPE_FLOAT32, m, 2, DIMS(2, 3));
    CHECK(RUN(OP("Add", 14), &out, &t1, &tm) == LENS_OK);
    CHECK(shape_is(&out, 2, DIMS(2, 3)));
    check_f32("Add [1]+[2,3]", &out, (double[]){11, 12, 13, 14, 15, 16}, 6, 0);
    done(&out);

    /* rank-0 scalar on either side, Div and Mul */
    float s = 2;
    tensor ts = tn(LENS_DTYPE_FLOAT32, &s, 0, NULL);
    CHECK(RUN(OP("Div", 14), &out, &tm, &ts) == LENS_OK);
    CHECK(shape_is(&out, 2, DIMS(2, 3)));
    check_f32("Div [2,3]/scalar", &out, (double[]){0.5, 1, 1.5, 2, 2.5, 3}, 6, 0);
    done(&out);
    CHECK(RUN(OP("Div", 14), &out, &ts, &tm) == LENS_OK);
    check_f32("Div scalar/[2,3]", &out, (double[]){2, 1, 2.0 / 3, 0.5, 0.4, 2.0 / 6}, 6, 1e-7);
    done(&out);
    CHECK(RUN(OP("Mul", 14), &out, &ts, &ts) == LENS_OK);
    CHECK(out.rank == 0 && ((float *)out.data)[0] == 4);
    done(&out);

    /* both sides broadcast: [2,1,4] * [1,3,1] */
    float p[8], q[3];
    fill(p, 8, -2, 2);
    fill(q, 3, -2, 2);
    tensor tp = tn(LENS_DTYPE_FLOAT32, p, 3, DIMS(2, 1, 4)), tq = tn(LENS_DTYPE_FLOAT32, q, 3, DIMS(1, 3, 1));
    CHECK(RUN(OP("Mul", 14), &out, &tp, &tq) == LENS_OK);
    CHECK(shape_is(&out, 3, DIMS(2, 3, 4)));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) want[i * 12 + j * 4 + k] = (double)p[i * 4 + k] * q[j];
    check_f32("Mul [2,1,4]*[1,3,1]", &out, want, 24, 1e-6);
    done(&out);

    /* per-channel: [2,3,2,2] + [3,1,1] */
    float x[24], c[3] = {100, 200, 300};
    fill(x, 24, 0, 1);
    tensor tx = tn(LENS_DTYPE_FLOAT32, x, 4, DIMS(2, 3, 2, 2)), tc = tn(LENS_DTYPE_FLOAT32, c, 3, DIMS(3, 1, 1));
    CHECK(RUN(OP("Add", 14), &out, &tx, &tc) == LENS_OK);
    for (int i = 0; i < 24; i++) want[i] = (double)x[i] + c[(i / 4) % 3];
    check_f32("Add per-channel", &out, want, 24, 1e-6);
    done(&out);
}

static void test_binary_large(void) {
    /* Big enough to be split over the pool, with a broadcast inner run that chunk borders cut through. */
    enum { R = 301, C = 1001 };
    float *a = malloc(sizeof(float) * R * C), *b = malloc(sizeof(float) * C);
    double *want = malloc(sizeof(double) * R * C);
    fill(a, R * C, -1, 1);
    fill(b, C, -1, 1);
    tensor ta = tn(LENS_DTYPE_FLOAT32, a, 2, DIMS(R, C)), tb = tn(LENS_DTYPE_FLOAT32, b, 1, DIMS(C)), out;
    CHECK(RUN(OP("Sub", 14), &out, &ta, &tb) == LENS_OK);
    for (int i = 0; i < R * C; i++) want[i] = (double)a[i] - b[i % C];
    check_f32("Sub large [R,C]-[C]", &out, want, R * C, 1e-6);
    done(&out);
    tensor tcol = tn(LENS_DTYPE_FLOAT32, a, 2, DIMS(R, 1));
    CHECK(RUN(OP("Mul", 14), &out, &ta, &tcol) == LENS_OK);
    for (int i = 0; i < R * C; i++) want[i] = (double)a[i] * a[i / C];
    check_f32("Mul large [R,C]*[R,1]", &out, want, R * C, 1e-6);
    done(&out);
    CHECK(RUN(OP("Add", 14), &out, &ta, &ta) == LENS_OK);
    for (int i = 0; i < R * C; i++) want[i] = 2.0 * a[i];
    check_f32("Add large equal shapes", &out, want, R * C, 0);
    done(&out);
    free(a);
    free(b);
    free(want);
}

static void test_binary_errors_and_empty(void) {
    float a[6] = {0}, b[4] = {0};
    int64_t i64[2] = {1, 2};
    tensor ta = tn(LENS_DTYPE_FLOAT32, a, 2, DIMS(2, 3)), tb = tn(LENS_DTYPE_FLOAT32, b, 1, DIMS(4)), out;
    CHECK(RUN(OP("Add", 14), &out, &ta, &tb) == LENS_ERR_SHAPE);
    CHECK(strstr(core_last_error(), "[2,3]") != NULL);
    tensor ti = tn(LENS_DTYPE_INT64, i64, 1, DIMS(2));
    CHECK(RUN(OP("Add", 14), &out, &ta, &ti) == LENS_ERR_UNSUPPORTED);
    tensor tstr = tn(LENS_DTYPE_STRING, a, 1, DIMS(2));
    CHECK(RUN(OP("Mul", 14), &out, &tstr, &tstr) == LENS_ERR_UNSUPPORTED);
    CHECK(RUN(OP("Sqrt", 13), &out, &ti) == LENS_ERR_UNSUPPORTED);
    CHECK(RUN(OP("Add", 14), &out, &ta) == LENS_ERR_INVALID_ARGUMENT);

    /* zero-size dims broadcast against 1 and against their own size */
    tensor tz = tn(LENS_DTYPE_FLOAT32, a, 2, DIMS(0, 3)), t3 = tn(LENS_DTYPE_FLOAT32, b, 1, DIMS(3));
    CHECK(RUN(OP("Add", 14), &out, &tz, &t3) == LENS_OK);
    CHECK(shape_is(&out, 2, DIMS(0, 3)));
    done(&out);
    tensor tz2 = tn(LENS_DTYPE_FLOAT32, a, 2, DIMS(2, 0)), t1 = tn(LENS_DTYPE_FLOAT32, b, 1, DIMS(1));
    CHECK(RUN(OP("Mul", 14), &out, &tz2, &t1) == LENS_OK);
    CHECK(shape_is(&out, 2, DIMS(2, 0)));
    done(&out);
    CHECK(RUN(OP("Where", 16), &out, &tz, &tz, &tz) == LENS_ERR_UNSUPPORTED); /* condition must be bool */
    tensor tzero = tn(LENS_DTYPE_FLOAT32, a, 1, DIMS(0));
    CHECK(RUN(OP("Add", 14), &out, &tzero, &t3) == LENS_ERR_SHAPE);
    CHECK(RUN(OP("Exp", 13), &out, &tz) == LENS_OK && shape_is(&out, 2, DIMS(0, 3)));
    done(&out);
    /* legacy axis-broadcast of opset 6 is refused, not misread */
    CHECK(RUN(OPA("Add", 6, attr_int("broadcast", 1), attr_int("axis", 1)), &out, &ta, &t3) ==
          LENS_ERR_UNSUPPORTED);
}

/* ---- Integer and bool semantics ----------------------------------------------------------------------------- */

static void test_int_ops(void) {
    int64_t a[6] = {7, -7, 7, -7, INT64_MAX, INT64_MIN}, b[6] = {2, 2, -2, -2, 1, -1}, zero[1] = {0};
    tensor ta = tn(LENS_DTYPE_INT64, a, 1, DIMS(6)), tb = tn(LENS_DTYPE_INT64, b, 1, DIMS(6)), out;
    CHECK(RUN(OP("Div", 14), &out, &ta, &tb) == LENS_OK && out.dtype == LENS_DTYPE_INT64);
    /* truncation toward zero; INT64_MIN / -1 wraps instead of trapping */
    check_i64("Div int64", &out, (int64_t[]){3, -3, -3, 3, INT64_MAX, INT64_MIN}, 6);
    done(&out);
    CHECK(RUN(OP("Add", 14), &out, &ta, &tb) == LENS_OK);
    check_i64("Add int64 (wraps)", &out, (int64_t[]){9, -5, 5, -9, INT64_MIN, INT64_MAX}, 6);
    done(&out);
    CHECK(RUN(OP("Sub", 14), &out, &ta, &tb) == LENS_OK);
    check_i64("Sub int64", &out, (int64_t[]){5, -9, 9, -5, INT64_MAX - 1, INT64_MIN + 1}, 6);
    done(&out);
    CHECK(RUN(OP("Mul", 14), &out, &ta, &tb) == LENS_OK);
    check_i64("Mul int64", &out, (int64_t[]){14, -14, -14, 14, INT64_MAX, INT64_MIN}, 6);
    done(&out);
    tensor tz = tn(LENS_DTYPE_INT64, zero, 0, NULL);
    CHECK(RUN(OP("Div", 14), &out, &ta, &tz) == LENS_OK); /* division by zero gives 0, never a trap */
    check_i64("Div int64 by zero", &out, (int64_t[]){0, 0, 0, 0, 0, 0}, 6);
    done(&out);
    CHECK(RUN(OP("Max", 13), &out, &ta, &tb) == LENS_OK);
    check_i64("Max int64", &out, (int64_t[]){7, 2, 7, -2, INT64_MAX, -1}, 6);
    done(&out);

    int32_t c[4] = {-3, 5, -2147483647 - 1, 0}, d[1] = {1};
    tensor tc = tn(LENS_DTYPE_INT32, c, 1, DIMS(4)), td = tn(LENS_DTYPE_INT32, d, 1, DIMS(1));
    CHECK(RUN(OP("Abs", 13), &out, &tc) == LENS_OK && out.dtype == LENS_DTYPE_INT32);
    check_i64("Abs int32", &out, (int64_t[]){3, 5, -2147483647 - 1, 0}, 4);
    done(&out);
    CHECK(RUN(OP("Neg", 13), &out, &tc) == LENS_OK);
    check_i64("Neg int32", &out, (int64_t[]){3, -5, -2147483647 - 1, 0}, 4);
    done(&out);
    CHECK(RUN(OP("Min", 13), &out, &tc, &td) == LENS_OK);
    check_i64("Min int32 broadcast", &out, (int64_t[]){-3, 1, -2147483647 - 1, 0}, 4);
    done(&out);
    CHECK(RUN(OP("Sign", 13), &out, &tc) == LENS_OK);
    check_i64("Sign int32", &out, (int64_t[]){-1, 1, -1, 0}, 4);
    done(&out);

    /* uint8 arithmetic wraps */
    uint8_t u[3] = {250, 3, 100}, v[3] = {10, 5, 3};
    tensor tu = tn(LENS_DTYPE_UINT8, u, 1, DIMS(3)), tv = tn(LENS_DTYPE_UINT8, v, 1, DIMS(3));
    CHECK(RUN(OP("Add", 14), &out, &tu, &tv) == LENS_OK);
    check_i64("Add uint8", &out, (int64_t[]){4, 8, 103}, 3);
    done(&out);
    CHECK(RUN(OP("Sub", 14), &out, &tu, &tv) == LENS_OK);
    check_i64("Sub uint8", &out, (int64_t[]){240, 254, 97}, 3);
    done(&out);
    CHECK(RUN(OP("Div", 14), &out, &tu, &tv) == LENS_OK);
    check_i64("Div uint8", &out, (int64_t[]){25, 0, 33}, 3);
    done(&out);
    CHECK(RUN(OPA("BitShift", 11, attr_string("direction", "LEFT")), &out, &tu, &tv) == LENS_OK);
    check_i64("BitShift left uint8", &out, (int64_t[]){0, 96, 32}, 3);
    done(&out);
    CHECK(RUN(OPA("BitShift", 11, attr_string("direction", "RIGHT")), &out, &tu, &tv) == LENS_OK);
    check_i64("BitShift right uint8", &out, (int64_t[]){0, 0, 12}, 3);
    done(&out);

    /* Mod: numpy sign rule by default, C's with fmod=1 */
    int64_t m1[4] = {-7, 7, -7, 7}, m2[4] = {3, -3, -3, 3};
    tensor tm1 = tn(LENS_DTYPE_INT64, m1, 1, DIMS(4)), tm2 = tn(LENS_DTYPE_INT64, m2, 1, DIMS(4));
    CHECK(RUN(OP("Mod", 13), &out, &tm1, &tm2) == LENS_OK);
    check_i64("Mod int64", &out, (int64_t[]){2, -2, -1, 1}, 4);
    done(&out);
    CHECK(RUN(OPA("Mod", 13, attr_int("fmod", 1)), &out, &tm1, &tm2) == LENS_OK);
    check_i64("Mod int64 fmod", &out, (int64_t[]){-1, 1, -1, 1}, 4);
    done(&out);
    float f1[3] = {5.5f, -5.5f, 4}, f2[3] = {-2, 2, 2};
    tensor tf1 = tn(LENS_DTYPE_FLOAT32, f1, 1, DIMS(3)), tf2 = tn(LENS_DTYPE_FLOAT32, f2, 1, DIMS(3));
    CHECK(RUN(OPA("Mod", 13, attr_int("fmod", 1)), &out, &tf1, &tf2) == LENS_OK);
    check_f32("Mod float fmod", &out, (double[]){1.5, -1.5, 0}, 3, 0);
    done(&out);
}

static void test_compare_logic_where(void) {
    int64_t a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {2, 2, 7};
    tensor ta = tn(LENS_DTYPE_INT64, a, 2, DIMS(2, 3)), tb = tn(LENS_DTYPE_INT64, b, 1, DIMS(3)), out;
    CHECK(RUN(OP("Equal", 13), &out, &ta, &tb) == LENS_OK && out.dtype == LENS_DTYPE_BOOL);
    CHECK(shape_is(&out, 2, DIMS(2, 3)));
    check_i64("Equal int64", &out, (int64_t[]){0, 1, 0, 0, 0, 0}, 6);
    done(&out);
    CHECK(RUN(OP("Less", 13), &out, &ta, &tb) == LENS_OK);
    check_i64("Less int64", &out, (int64_t[]){1, 0, 1, 0, 0, 1}, 6);
    done(&out);
    CHECK(RUN(OP("Greater", 13), &out, &tb, &ta) == LENS_OK);
    check_i64("Greater [3]>[2,3]", &out, (int64_t[]){1, 0, 1, 0, 0, 1}, 6);
    done(&out);
    float f[4] = {1, NAN, 3, -1}, g[1] = {1};
    tensor tf = tn(LENS_DTYPE_FLOAT32, f, 1, DIMS(4)), tg = tn(LENS_DTYPE_FLOAT32, g, 0, NULL);
    CHECK(RUN(OP("GreaterOrEqual", 16), &out, &tf, &tg) == LENS_OK);
    check_i64("GreaterOrEqual float", &out, (int64_t[]){1, 0, 1, 0}, 4);
    done(&out);
    CHECK(RUN(OP("LessOrEqual", 16), &out, &tf, &tg) == LENS_OK);
    check_i64("LessOrEqual float", &out, (int64_t[]){1, 0, 0, 1}, 4);
    done(&out);

    uint8_t p[4] = {0, 0, 1, 1}, q[2] = {0, 1};
    tensor tp = tn(LENS_DTYPE_BOOL, p, 2, DIMS(2, 2)), tq = tn(LENS_DTYPE_BOOL, q, 1, DIMS(2));
    CHECK(RUN(OP("And", 7), &out, &tp, &tq) == LENS_OK && out.dtype == LENS_DTYPE_BOOL);
    check_i64("And", &out, (int64_t[]){0, 0, 0, 1}, 4);
    done(&out);
    CHECK(RUN(OP("Or", 7), &out, &tp, &tq) == LENS_OK);
    check_i64("Or", &out, (int64_t[]){0, 1, 1, 1}, 4);
    done(&out);
    CHECK(RUN(OP("Xor", 7), &out, &tp, &tq) == LENS_OK);
    check_i64("Xor", &out, (int64_t[]){0, 1, 1, 0}, 4);
    done(&out);
    CHECK(RUN(OP("Not", 1), &out, &tp) == LENS_OK);
    check_i64("Not", &out, (int64_t[]){1, 1, 0, 0}, 4);
    done(&out);
    CHECK(RUN(OP("Equal", 13), &out, &tp, &tq) == LENS_OK);
    check_i64("Equal bool", &out, (int64_t[]){1, 0, 0, 1}, 4);
    done(&out);
    CHECK(RUN(OP("And", 7), &out, &ta, &tb) == LENS_ERR_UNSUPPORTED);

    /* Where: condition [2,1], x [1,3], y scalar -> [2,3] */
    uint8_t cond[2] = {1, 0};
    float x[3] = {1, 2, 3}, y = -1;
    tensor tc = tn(LENS_DTYPE_BOOL, cond, 2, DIMS(2, 1)), tx = tn(LENS_DTYPE_FLOAT32, x, 2, DIMS(1, 3)),
           ty = tn(LENS_DTYPE_FLOAT32, &y, 0, NULL);
    CHECK(RUN(OP("Where", 16), &out, &tc, &tx, &ty) == LENS_OK);
    CHECK(shape_is(&out, 2, DIMS(2, 3)) && out.dtype == LENS_DTYPE_FLOAT32);
    check_f32("Where 3-way broadcast", &out, (double[]){1, 2, 3, -1, -1, -1}, 6, 0);
    done(&out);
    int64_t xi[4] = {1, 2, 3, 4}, yi[4] = {9, 8, 7, 6};
    tensor txi = tn(LENS_DTYPE_INT64, xi, 2, DIMS(2, 2)), tyi = tn(LENS_DTYPE_INT64, yi, 2, DIMS(2, 2));
    CHECK(RUN(OP("Where", 16), &out, &tp, &txi, &tyi) == LENS_OK && out.dtype == LENS_DTYPE_INT64);
    check_i64("Where int64", &out, (int64_t[]){9, 8, 3, 4}, 4);
    done(&out);
    tensor tbad = tn(LENS_DTYPE_FLOAT32, x, 1, DIMS(2));
    CHECK(RUN(OP("Where", 16), &out, &tc, &tx, &tbad) == LENS_ERR_SHAPE);
}

static void test_variadic(void) {
    float a[3] = {1, 2, 3}, b[6] = {10, 20, 30, 40, 50, 60}, s = 100;
    tensor ta = tn(LENS_DTYPE_FLOAT32, a, 1, DIMS(3)), tb = tn(LENS_DTYPE_FLOAT32, b, 2, DIMS(2, 3)),
           ts = tn(LENS_DTYPE_FLOAT32, &s, 0, NULL), out;
    CHECK(RUN(OP("Sum", 13), &out, &ta, &tb, &ts) == LENS_OK);
    CHECK(shape_is(&out, 2, DIMS(2, 3)));
    check_f32("Sum 3 inputs", &out, (double[]){111, 122, 133, 141, 152, 163}, 6, 0);
    done(&out);
    CHECK(RUN(OP("Mean", 13), &out, &ta, &tb, &ts) == LENS_OK);
    check_f32("Mean 3 inputs", &out, (double[]){37, 122.0 / 3, 133.0 / 3, 47, 152.0 / 3, 163.0 / 3}, 6, 1e-6);
    done(&out);
    /* the first input smaller than the result: folding must still broadcast it */
    CHECK(RUN(OP("Max", 13), &out, &ts, &ta, &tb) == LENS_OK);
    check_f32("Max 3 inputs", &out, (double[]){100, 100, 100, 100, 100, 100}, 6, 0);
    done(&out);
    CHECK(RUN(OP("Min", 13), &out, &ta) == LENS_OK && shape_is(&out, 1, DIMS(3)));
    check_f32("Min one input", &out, (double[]){1, 2, 3}, 3, 0);
    done(&out);
    float n[3] = {NAN, 5, -1};
    tensor tn3 = tn(LENS_DTYPE_FLOAT32, n, 1, DIMS(3));
    CHECK(RUN(OP("Max", 13), &out, &ta, &tn3) == LENS_OK);
    check_f32("Max NaN propagates", &out, (double[]){NAN, 5, 3}, 3, 0);
    done(&out);
    CHECK(RUN(OP("Min", 13), &out, &tn3, &ta) == LENS_OK);
    check_f32("Min NaN propagates", &out, (double[]){NAN, 2, -1}, 3, 0);
    done(&out);
    int64_t i1[2] = {1, 2};
    tensor ti = tn(LENS_DTYPE_INT64, i1, 1, DIMS(2));
    CHECK(RUN(OP("Mean", 13), &out, &ti, &ti) == LENS_ERR_UNSUPPORTED);
    CHECK(RUN(OP("Sum", 13), &out, &ti, &ti, &ti) == LENS_OK);
    check_i64("Sum int64", &out, (int64_t[]){3, 6}, 2);
    done(&out);
}

static void test_pow(void) {
    float a[4] = {2, -3, 0.5f, 9}, e[4] = {3, 2, -1, 0.5f}, two = 2;
    tensor ta = tn(LENS_DTYPE_FLOAT32, a, 1, DIMS(4)), te = tn(LENS_DTYPE_FLOAT32, e, 1, DIMS(4)),
           t2 = tn(LENS_DTYPE_FLOAT32, &two, 0, NULL), out;
    CHECK(RUN(OP("Pow", 15), &out, &ta, &te) == LENS_OK);
    check_f32("Pow f32", &out, (double[]){8, 9, 2, 3}, 4, 1e-6);
    done(&out);
    CHECK(RUN(OP("Pow", 15), &out, &ta, &t2) == LENS_OK);
    check_f32("Pow f32 ^ 2", &out, (double[]){4, 9, 0.25, 81}, 4, 0);
    done(&out);
    int64_t ie[4] = {3, 2, -1, 0};
    tensor tie = tn(LENS_DTYPE_INT64, ie, 1, DIMS(4));
    CHECK(RUN(OP("Pow", 15), &out, &ta, &tie) == LENS_OK && out.dtype == LENS_DTYPE_FLOAT32);
    check_f32("Pow f32 ^ int64", &out, (double[]){8, 9, 2, 1}, 4, 1e-6);
    done(&out);
    int64_t ib[3] = {2, 3, -2};
    float fe[3] = {3, 0.5f, 3};
    tensor tib = tn(LENS_DTYPE_INT64, ib, 1, DIMS(3)), tfe = tn(LENS_DTYPE_FLOAT32, fe, 1, DIMS(3));
    CHECK(RUN(OP("Pow", 15), &out, &tib, &tfe) == LENS_OK && out.dtype == LENS_DTYPE_INT64);
    check_i64("Pow int64 ^ f32 truncates", &out, (int64_t[]){8, 1, -8}, 3);
    done(&out);
}

static void test_unary(void) {
    float x[8] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.7f, 4, 0.25f};
    tensor tx = tn(LENS_DTYPE_FLOAT32, x, 2, DIMS(2, 4)), out;
    CHECK(RUN(OP("Round", 11), &out, &tx) == LENS_OK);
    check_f32("Round half to even", &out, (double[]){0, 2, 2, -0.0, -2, -3, 4, 0}, 8, 0);
    done(&out);
    CHECK(RUN(OP("Floor", 13), &out, &tx) == LENS_OK);
    check_f32("Floor", &out, (double[]){0, 1, 2, -1, -2, -3, 4, 0}, 8, 0);
    done(&out);
    CHECK(RUN(OP("Ceil", 13), &out, &tx) == LENS_OK);
    check_f32("Ceil", &out, (double[]){1, 2, 3, -0.0, -1, -2, 4, 1}, 8, 0);
    done(&out);
    CHECK(RUN(OP("Abs", 13), &out, &tx) == LENS_OK);
    check_f32("Abs", &out, (double[]){0.5, 1.5, 2.5, 0.5, 1.5, 2.7, 4, 0.25}, 8, 1e-7);
    done(&out);
    CHECK(RUN(OP("Neg", 13), &out, &tx) == LENS_OK);
    check_f32("Neg", &out, (double[]){-0.5, -1.5, -2.5, 0.5, 1.5, 2.7, -4, -0.25}, 8, 1e-7);
    done(&out);
    CHECK(RUN(OP("Sign", 13), &out, &tx) == LENS_OK);
    check_f32("Sign", &out, (double[]){1, 1, 1, -1, -1, -1, 1, 1}, 8, 0);
    done(&out);
    CHECK(RUN(OP("Reciprocal", 13), &out, &tx) == LENS_OK);
    check_f32("Reciprocal", &out, (double[]){2, 1 / 1.5, 0.4, -2, -1 / 1.5, -1 / 2.7, 0.25, 4}, 8, 1e-6);
    done(&out);
    float p[4] = {4, 2.25f, 1, 0};
    tensor tp = tn(LENS_DTYPE_FLOAT32, p, 1, DIMS(4));
    CHECK(RUN(OP("Sqrt", 13), &out, &tp) == LENS_OK);
    check_f32("Sqrt", &out, (double[]){2, 1.5, 1, 0}, 4, 0);
    done(&out);
    CHECK(RUN(OP("Log", 13), &out, &tp) == LENS_OK);
    check_f32("Log", &out, (double[]){log(4.0), log(2.25), 0, -INFINITY}, 4, 1e-6);
    done(&out);
    CHECK(RUN(OP("Exp", 13), &out, &tx) == LENS_OK);
    double want[8];
    for (int i = 0; i < 8; i++) want[i] = exp((double)x[i]);
    check_f32("Exp", &out, want, 8, 1e-6);
    done(&out);
    CHECK(RUN(OP("Sin", 7), &out, &tx) == LENS_OK);
    for (int i = 0; i < 8; i++) want[i] = sin((double)x[i]);
    check_f32("Sin", &out, want, 8, 1e-6);
    done(&out);
    CHECK(RUN(OP("Cos", 7), &out, &tx) == LENS_OK);
    for (int i = 0; i < 8; i++) want[i] = cos((double)x[i]);
    check_f32("Cos", &out, want, 8, 1e-6);
    done(&out);

    float s[6] = {1, NAN, INFINITY, -INFINITY, 0, -2};
    tensor ts = tn(LENS_DTYPE_FLOAT32, s, 1, DIMS(6));
    CHECK(RUN(OP("IsNaN", 13), &out, &ts) == LENS_OK && out.dtype == LENS_DTYPE_BOOL);
    check_i64("IsNaN", &out, (int64_t[]){0, 1, 0, 0, 0, 0}, 6);
    done(&out);
    CHECK(RUN(OP("IsInf", 10), &out, &ts) == LENS_OK);
    check_i64("IsInf", &out, (int64_t[]){0, 0, 1, 1, 0, 0}, 6);
    done(&out);
    CHECK(RUN(OPA("IsInf", 10, attr_int("detect_positive", 0)), &out, &ts) == LENS_OK);
    check_i64("IsInf negative only", &out, (int64_t[]){0, 0, 0, 1, 0, 0}, 6);
    done(&out);

    float sc = -3;
    tensor tsc = tn(LENS_DTYPE_FLOAT32, &sc, 0, NULL);
    CHECK(RUN(OP("Abs", 13), &out, &tsc) == LENS_OK && out.rank == 0 && ((float *)out.data)[0] == 3);
    done(&out);
}

static void test_prelu(void) {
    float x[24], slope[3] = {0.1f, 0.2f, 0.3f};
    fill(x, 24, -1, 1);
    tensor tx = tn(LENS_DTYPE_FLOAT32, x, 4, DIMS(2, 3, 2, 2)), ts = tn(LENS_DTYPE_FLOAT32, slope, 3, DIMS(3, 1, 1)),
           out;
    CHECK(RUN(OP("PRelu", 16), &out, &tx, &ts) == LENS_OK);
    double want[24];
    for (int i = 0; i < 24; i++) want[i] = x[i] < 0 ? (double)x[i] * slope[(i / 4) % 3] : x[i];
    check_f32("PRelu per-channel", &out, want, 24, 1e-6);
    done(&out);
    /* slope must broadcast to X, not the other way round */
    tensor tsmall = tn(LENS_DTYPE_FLOAT32, x, 1, DIMS(3)), tbig = tn(LENS_DTYPE_FLOAT32, slope, 2, DIMS(2, 3));
    CHECK(RUN(OP("PRelu", 16), &out, &tsmall, &tbig) == LENS_ERR_SHAPE);
}

/* ---- Activations ------------------------------------------------------------------------------------------- */

static double ref_sigmoid(double v) { return 1 / (1 + exp(-v)); }

static void test_activations(void) {
    enum { N = 64 };
    float x[N];
    for (int i = 0; i < N; i++) x[i] = -8 + 16.0f * i / (N - 1);
    x[0] = -100; /* saturation */
    x[N - 1] = 100;
    tensor tx = tn(LENS_DTYPE_FLOAT32, x, 2, DIMS(8, 8)), out;
    double want[N];
#define ACT_CASE(spec, expr, tol)                                                                    \
    do {                                                                                              \
        CHECK(RUN(spec, &out, &tx) == LENS_OK);                                                       \
        CHECK(shape_is(&out, 2, DIMS(8, 8)) && out.dtype == LENS_DTYPE_FLOAT32);                      \
        for (int i = 0; i < N; i++) {                                                                 \
            double v = x[i];                                                                          \
            want[i] = (expr);                                                                         \
        }                                                                                             \
        check_f32(#spec, &out, want, N, tol);                                                         \
        done(&out);                                                                                   \
    } while (0)
    ACT_CASE(OP("Relu", 14), v > 0 ? v : 0, 0);
    ACT_CASE(OP("LeakyRelu", 16), v < 0 ? 0.01 * v : v, 1e-6);
    ACT_CASE(OPA("LeakyRelu", 16, attr_float("alpha", 0.3f)), v < 0 ? 0.3 * v : v, 1e-6);
    ACT_CASE(OP("Sigmoid", 13), ref_sigmoid(v), 1e-6);
    ACT_CASE(OP("HardSigmoid", 6), fmax(0, fmin(1, 0.2 * v + 0.5)), 1e-6);
    ACT_CASE(OPA("HardSigmoid", 6, attr_float("alpha", 0.5f), attr_float("beta", 0.6f)),
             fmax(0, fmin(1, 0.5 * v + 0.6)), 1e-6);
    ACT_CASE(OP("HardSwish", 14), v * fmax(0, fmin(1, v / 6 + 0.5)), 1e-6);
    ACT_CASE(OP("Tanh", 13), tanh(v), 1e-6);
    ACT_CASE(OP("Erf", 13), erf(v), 1e-6);
    ACT_CASE(OP("Gelu", 20), 0.5 * v * (1 + erf(v / sqrt(2.0))), 1e-6);
    ACT_CASE(OPA("Gelu", 20, attr_string("approximate", "tanh")),
             0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))), 1e-6);
    ACT_CASE(OP("Elu", 6), v < 0 ? exp(v) - 1 : v, 1e-6);
    ACT_CASE(OPA("Elu", 6, attr_float("alpha", 2)), v < 0 ? 2 * (exp(v) - 1) : v, 1e-6);
    ACT_CASE(OP("Selu", 6),
             v > 0 ? 1.0507009873554804934193349852946 * v
                   : 1.0507009873554804934193349852946 * 1.6732632423543772848170429916717 * (exp(v) - 1),
             1e-6);
    ACT_CASE(OP("Softplus", 1), v > 30 ? v : log(1 + exp(v)), 1e-6);
    ACT_CASE(OP("Softsign", 1), v / (1 + fabs(v)), 1e-6);
    ACT_CASE(OPA("Celu", 12, attr_float("alpha", 2)), fmax(0, v) + fmin(0, 2 * (exp(v / 2) - 1)), 1e-6);
    ACT_CASE(OP("ThresholdedRelu", 10), v > 1 ? v : 0, 0);
    ACT_CASE(OPA("Shrink", 9, attr_float("lambd", 1.5f), attr_float("bias", 1.5f)),
             v < -1.5 ? v + 1.5 : v > 1.5 ? v - 1.5 : 0, 1e-6);
    ACT_CASE(((op_spec){"com.microsoft", "FastGelu", 1, 0, NULL}),
             0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))), 1e-6);
    ACT_CASE(((op_spec){"com.microsoft", "QuickGelu", 1, 0, NULL}), v * ref_sigmoid(1.702 * v), 1e-6);
#undef ACT_CASE
    CHECK(RUN(OPA("Gelu", 20, attr_string("approximate", "fast")), &out, &tx) == LENS_ERR_UNSUPPORTED);
    int64_t ints[2] = {1, -1};
    tensor ti = tn(LENS_DTYPE_INT64, ints, 1, DIMS(2));
    CHECK(RUN(OP("Relu", 14), &out, &ti) == LENS_ERR_UNSUPPORTED);

    /* BiasGelu: bias along the last axis */
    float bias[8];
    fill(bias, 8, -1, 1);
    tensor tb = tn(LENS_DTYPE_FLOAT32, bias, 1, DIMS(8));
    CHECK(run_op((op_spec){"com.microsoft", "BiasGelu", 1, 0, NULL}, 2, INPUTS(&tx, &tb), &out) == LENS_OK);
    for (int i = 0; i < N; i++) {
        double v = (double)x[i] + bias[i % 8];
        want[i] = 0.5 * v * (1 + erf(v / sqrt(2.0)));
    }
    check_f32("BiasGelu", &out, want, N, 1e-5);
    done(&out);
    tensor tb5 = tn(LENS_DTYPE_FLOAT32, bias, 1, DIMS(5));
    CHECK(run_op((op_spec){"com.microsoft", "BiasGelu", 1, 0, NULL}, 2, INPUTS(&tx, &tb5), &out) == LENS_ERR_SHAPE);
}

static void test_activation_large(void) {
    /* Chunked over the pool: every chunk border must be right. */
    enum { N = 200003 };
    float *x = malloc(sizeof(float) * N);
    double *want = malloc(sizeof(double) * N);
    fill(x, N, -8, 8);
    tensor tx = tn(LENS_DTYPE_FLOAT32, x, 1, DIMS(N)), out;
    CHECK(RUN(OP("HardSwish", 14), &out, &tx) == LENS_OK);
    for (int i = 0; i < N; i++) want[i] = x[i] * fmax(0, fmin(1, x[i] / 6.0 + 0.5));
    check_f32("HardSwish large", &out, want, N, 1e-6);
    done(&out);
    float lo = -1, hi = 2;
    tensor tlo = tn(LENS_DTYPE_FLOAT32, &lo, 0, NULL), thi = tn(LENS_DTYPE_FLOAT32, &hi, 1, DIMS(1));
    CHECK(RUN(OP("Clip", 13), &out, &tx, &tlo, &thi) == LENS_OK);
    for (int i = 0; i < N; i++) want[i] = fmin(fmax(x[i], -1), 2);
    check_f32("Clip large", &out, want, N, 0);
    done(&out);
    free(x);
    free(want);
}

static void test_clip(void) {
    float x[5] = {-3, -1, 0, 2, 7};
    tensor tx = tn(LENS_DTYPE_FLOAT32, x, 1, DIMS(5)), out;
    /* opset 6: attributes */
    CHECK(RUN(OPA("Clip", 6, attr_float("min", -1), attr_float("max", 6)), &out, &tx) == LENS_OK);
    check_f32("Clip opset 6", &out, (double[]){-1, -1, 0, 2, 6}, 5, 0);
    done(&out);
    CHECK(RUN(OPA("Clip", 6, attr_float("max", 1)), &out, &tx) == LENS_OK);
    check_f32("Clip opset 6 max only", &out, (double[]){-3, -1, 0, 1, 1}, 5, 0);
    done(&out);
    /* opset 13: optional inputs */
    float lo = 0, hi = 6;
    tensor tlo = tn(LENS_DTYPE_FLOAT32, &lo, 0, NULL), thi = tn(LENS_DTYPE_FLOAT32, &hi, 0, NULL);
    CHECK(RUN(OP("Clip", 13), &out, &tx, &tlo, &thi) == LENS_OK);
    check_f32("Clip relu6", &out, (double[]){0, 0, 0, 2, 6}, 5, 0);
    done(&out);
    CHECK(RUN(OP("Clip", 13), &out, &tx, NULL, &thi) == LENS_OK);
    check_f32("Clip max only", &out, (double[]){-3, -1, 0, 2, 6}, 5, 0);
    done(&out);
    CHECK(RUN(OP("Clip", 13), &out, &tx, &tlo) == LENS_OK);
    check_f32("Clip min only", &out, (double[]){0, 0, 0, 2, 7}, 5, 0);
    done(&out);
    CHECK(RUN(OP("Clip", 13), &out, &tx) == LENS_OK);
    check_f32("Clip no bounds", &out, (double[]){-3, -1, 0, 2, 7}, 5, 0);
    done(&out);
    CHECK(RUN(OP("Clip", 13), &out, &tx, &thi, &tlo) == LENS_OK); /* min > max: everything becomes max */
    check_f32("Clip min > max", &out, (double[]){0, 0, 0, 0, 0}, 5, 0);
    done(&out);
    int8_t xi[4] = {-128, -5, 5, 127}, mi = -10, ma = 10;
    tensor txi = tn(LENS_DTYPE_INT8, xi, 1, DIMS(4)), tmi = tn(LENS_DTYPE_INT8, &mi, 0, NULL),
           tma = tn(LENS_DTYPE_INT8, &ma, 0, NULL);
    CHECK(RUN(OP("Clip", 13), &out, &txi, NULL, &tma) == LENS_OK && out.dtype == LENS_DTYPE_INT8);
    check_i64("Clip int8 max", &out, (int64_t[]){-128, -5, 5, 10}, 4);
    done(&out);
    CHECK(RUN(OP("Clip", 13), &out, &txi, &tmi, &tma) == LENS_OK);
    check_i64("Clip int8", &out, (int64_t[]){-10, -5, 5, 10}, 4);
    done(&out);
    CHECK(RUN(OP("Clip", 13), &out, &tx, &tmi) == LENS_ERR_UNSUPPORTED); /* bound dtype differs */
    tensor tvec = tn(LENS_DTYPE_FLOAT32, x, 1, DIMS(2));
    CHECK(RUN(OP("Clip", 13), &out, &tx, &tvec) == LENS_ERR_SHAPE);
}

/* ---- Softmax ------------------------------------------------------------------------------------------------- */

/* Softmax of x viewed as [outer, n, inner], along n, in double. */
static void ref_softmax(const float *x, double *y, int64_t outer, int64_t n, int64_t inner, int log_form) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < inner; k++) {
            double m = -INFINITY, s = 0;
            for (int64_t j = 0; j < n; j++) m = fmax(m, x[(o * n + j) * inner + k]);
            for (int64_t j = 0; j < n; j++) s += exp(x[(o * n + j) * inner + k] - m);
            for (int64_t j = 0; j < n; j++) {
                double v = x[(o * n + j) * inner + k] - m;
                y[(o * n + j) * inner + k] = log_form ? v - log(s) : exp(v) / s;
            }
        }
}

static void test_softmax(void) {
    float x[24];
    fill(x, 24, -3, 3);
    tensor tx = tn(LENS_DTYPE_FLOAT32, x, 3, DIMS(2, 3, 4)), out;
    double want[24];
    /* opset 11, axis 1: rows of the [2, 12] flattening */
    CHECK(RUN(OPA("Softmax", 11, attr_int("axis", 1)), &out, &tx) == LENS_OK);
    ref_softmax(x, want, 2, 12, 1, 0);
    check_f32("Softmax opset 11 axis 1", &out, want, 24, 1e-6);
    done(&out);
    /* opset 13, axis 1: along dim 1 only */
    CHECK(RUN(OPA("Softmax", 13, attr_int("axis", 1)), &out, &tx) == LENS_OK);
    ref_softmax(x, want, 2, 3, 4, 0);
    check_f32("Softmax opset 13 axis 1", &out, want, 24, 1e-6);
    done(&out);
    /* defaults: opset 11 axis 1, opset 13 axis -1 */
    CHECK(RUN(OP("Softmax", 11), &out, &tx) == LENS_OK);
    ref_softmax(x, want, 2, 12, 1, 0);
    check_f32("Softmax opset 11 default", &out, want, 24, 1e-6);
    done(&out);
    CHECK(RUN(OP("Softmax", 13), &out, &tx) == LENS_OK);
    ref_softmax(x, want, 6, 4, 1, 0);
    check_f32("Softmax opset 13 default", &out, want, 24, 1e-6);
    done(&out);
    CHECK(RUN(OPA("LogSoftmax", 13, attr_int("axis", 0)), &out, &tx) == LENS_OK);
    ref_softmax(x, want, 1, 2, 12, 1);
    check_f32("LogSoftmax opset 13 axis 0", &out, want, 24, 1e-6);
    done(&out);
    CHECK(RUN(OPA("LogSoftmax", 1, attr_int("axis", 0)), &out, &tx) == LENS_OK);
    ref_softmax(x, want, 1, 24, 1, 1);
    check_f32("LogSoftmax opset 1 axis 0", &out, want, 24, 1e-6);
    done(&out);
    CHECK(RUN(OPA("Softmax", 13, attr_int("axis", 3)), &out, &tx) == LENS_ERR_INVALID_ARGUMENT);

    /* large numbers stay finite, masked -inf entries become 0 */
    float big[8] = {1000, 1001, 1002, 1003, 0, -INFINITY, 1, -INFINITY};
    tensor tbig = tn(LENS_DTYPE_FLOAT32, big, 2, DIMS(2, 4));
    CHECK(RUN(OP("Softmax", 13), &out, &tbig) == LENS_OK);
    double e0 = 1 / (1 + exp(1) + exp(2) + exp(3)), e1 = 1 / (1 + exp(1));
    check_f32("Softmax large and -inf", &out,
              (double[]){e0, e0 * exp(1), e0 * exp(2), e0 * exp(3), e1, 0, e1 * exp(1), 0}, 8, 1e-6);
    done(&out);
    CHECK(RUN(OP("LogSoftmax", 13), &out, &tbig) == LENS_OK);
    check_f32("LogSoftmax large", &out, (double[]){log(e0), log(e0) + 1, log(e0) + 2, log(e0) + 3}, 4, 1e-6);
    done(&out);

    float sc = 5;
    tensor tsc = tn(LENS_DTYPE_FLOAT32, &sc, 0, NULL);
    CHECK(RUN(OP("Softmax", 13), &out, &tsc) == LENS_OK && out.rank == 0 && ((float *)out.data)[0] == 1);
    done(&out);

    CHECK(RUN(OP("Hardmax", 13), &out, &tx) == LENS_OK);
    for (int r = 0; r < 6; r++) {
        int at = 0;
        for (int j = 1; j < 4; j++)
            if (x[r * 4 + j] > x[r * 4 + at]) at = j;
        for (int j = 0; j < 4; j++) want[r * 4 + j] = j == at;
    }
    check_f32("Hardmax", &out, want, 24, 0);
    done(&out);
}

static void test_softmax_large(void) {
    /* rows of attention size, over the pool; and a strided axis whose inner size is not a multiple of the tile */
    enum { ROWS = 197, COLS = 197, O = 3, NN = 7, IN = 133 };
    float *x = malloc(sizeof(float) * ROWS * COLS * 4);
    double *want = malloc(sizeof(double) * ROWS * COLS * 4);
    fill(x, ROWS * COLS * 4, -10, 10);
    tensor tx = tn(LENS_DTYPE_FLOAT32, x, 3, DIMS(4, ROWS, COLS)), out;
    CHECK(RUN(OP("Softmax", 13), &out, &tx) == LENS_OK);
    ref_softmax(x, want, 4 * ROWS, COLS, 1, 0);
    check_f32("Softmax attention-size", &out, want, ROWS * COLS * 4, 1e-5);
    done(&out);
    CHECK(RUN(OP("LogSoftmax", 13), &out, &tx) == LENS_OK);
    ref_softmax(x, want, 4 * ROWS, COLS, 1, 1);
    check_f32("LogSoftmax attention-size", &out, want, ROWS * COLS * 4, 1e-5);
    done(&out);
    tensor ts = tn(LENS_DTYPE_FLOAT32, x, 3, DIMS(O, NN, IN));
    CHECK(RUN(OPA("Softmax", 13, attr_int("axis", -2)), &out, &ts) == LENS_OK);
    ref_softmax(x, want, O, NN, IN, 0);
    check_f32("Softmax strided axis", &out, want, O * NN * IN, 1e-5);
    done(&out);
    CHECK(RUN(OPA("LogSoftmax", 13, attr_int("axis", 1)), &out, &ts) == LENS_OK);
    ref_softmax(x, want, O, NN, IN, 1);
    check_f32("LogSoftmax strided axis", &out, want, O * NN * IN, 1e-5);
    done(&out);
    tensor tl = tn(LENS_DTYPE_FLOAT32, x, 3, DIMS(2, 300, 200)); /* strided and big enough for the pool */
    CHECK(RUN(OPA("Softmax", 13, attr_int("axis", 1)), &out, &tl) == LENS_OK);
    ref_softmax(x, want, 2, 300, 200, 0);
    check_f32("Softmax strided pooled", &out, want, 2 * 300 * 200, 1e-5);
    done(&out);
    free(x);
    free(want);
}

/* ---- Reductions ------------------------------------------------------------------------------------------------ */

typedef enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_SUMSQ, R_LOGSUM, R_LSE } ref_red;

/* Reduces a [d0,d1,d2] float tensor over the axes in mask into want (kept dims in order). */
static int64_t ref_reduce3(const float *x, const int64_t *d, const int *mask, ref_red op, double *want) {
    int64_t n = 0;
    for (int64_t i = 0; i < (mask[0] ? 1 : d[0]); i++)
        for (int64_t j = 0; j < (mask[1] ? 1 : d[1]); j++)
            for (int64_t k = 0; k < (mask[2] ? 1 : d[2]); k++) {
                double acc = op == R_PROD ? 1 : op == R_MAX ? -INFINITY : op == R_MIN ? INFINITY : 0, m = -INFINITY;
                int64_t count = 0;
                for (int pass = op == R_LSE ? 0 : 1; pass < 2; pass++)
                    for (int64_t a = mask[0] ? 0 : i; a < (mask[0] ? d[0] : i + 1); a++)
                        for (int64_t b = mask[1] ? 0 : j; b < (mask[1] ? d[1] : j + 1); b++)
                            for (int64_t c = mask[2] ? 0 : k; c < (mask[2] ? d[2] : k + 1); c++) {
                                double v = x[(a * d[1] + b) * d[2] + c];
                                if (pass == 0) {
                                    m = fmax(m, v);
                                    continue;
                                }
                                count++;
                                switch (op) {
                                case R_SUM: case R_MEAN: case R_LOGSUM: acc += v; break;
                                case R_MAX: acc = fmax(acc, v); break;
                                case R_MIN: acc = fmin(acc, v); break;
                                case R_PROD: acc *= v; break;
                                case R_L1: acc += fabs(v); break;
                                case R_L2: case R_SUMSQ: acc += v * v; break;
                                case R_LSE: acc += exp(v - m); break;
                                }
                            }
                want[n++] = op == R_MEAN ? acc / (double)count : op == R_L2 ? sqrt(acc) : op == R_LOGSUM ? log(acc)
                           : op == R_LSE ? m + log(acc) : acc;
            }
    return n;
}

static void test_reduce(void) {
    static const struct {
        const char *name;
        ref_red op;
    } ops[] = {{"ReduceSum", R_SUM}, {"ReduceMean", R_MEAN}, {"ReduceMax", R_MAX}, {"ReduceMin", R_MIN},
               {"ReduceProd", R_PROD}, {"ReduceL1", R_L1}, {"ReduceL2", R_L2}, {"ReduceSumSquare", R_SUMSQ},
               {"ReduceLogSum", R_LOGSUM}, {"ReduceLogSumExp", R_LSE}};
    /* Every subset of axes of a [2,3,4] tensor, keepdims 0 and 1, for every op; axes as attribute (opset 13). */
    float x[24];
    fill(x, 24, 0.5f, 1.5f); /* positive, so ReduceLogSum is defined and ReduceProd stays moderate */
    tensor tx = tn(LENS_DTYPE_FLOAT32, x, 3, DIMS(2, 3, 4)), out;
    const int64_t d[3] = {2, 3, 4};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++) {
        for (int subset = 1; subset < 8; subset++) {
            for (int keep = 0; keep < 2; keep++) {
                int mask[3] = {subset & 1, (subset >> 1) & 1, (subset >> 2) & 1};
                int64_t axes[3];
                size_t n_axes = 0;
                for (int a = 0; a < 3; a++)
                    if (mask[a]) axes[n_axes++] = a == 2 && keep ? -1 : a; /* a negative axis now and then */
                double want[24];
                int64_t n = ref_reduce3(x, d, mask, ops[o].op, want);
                lens_status st = RUN(OPA(ops[o].name, 13, attr_ints("axes", axes, n_axes), attr_int("keepdims", keep)),
                                     &out, &tx);
                CHECK_MSG(st == LENS_OK, "%s subset %d: %s", ops[o].name, subset, core_last_error());
                if (st) continue;
                int64_t wd[3];
                int wr = 0;
                for (int a = 0; a < 3; a++)
                    if (!mask[a]) wd[wr++] = d[a];
                    else if (keep) wd[wr++] = 1;
                CHECK_MSG(shape_is(&out, wr, wd), "%s subset %d keepdims %d: rank %d", ops[o].name, subset, keep,
                          out.rank);
                char label[96];
                snprintf(label, sizeof label, "%s subset %d keepdims %d", ops[o].name, subset, keep);
                check_f32(label, &out, want, n, 1e-5);
                done(&out);
            }
        }
        /* no axes: everything, keepdims default 1 */
        double all;
        ref_reduce3(x, d, (int[]){1, 1, 1}, ops[o].op, &all);
        CHECK(RUN(OP(ops[o].name, 13), &out, &tx) == LENS_OK && shape_is(&out, 3, DIMS(1, 1, 1)));
        check_f32(ops[o].name, &out, &all, 1, 1e-5);
        done(&out);
    }

    /* hand-written: ReduceSum over axis 1 of [[1,2],[3,4]] */
    float m[4] = {1, 2, 3, 4};
    tensor tm = tn(LENS_DTYPE_FLOAT32, m, 2, DIMS(2, 2));
    CHECK(RUN(OPA("ReduceSum", 11, attr_ints("axes", DIMS(1), 1), attr_int("keepdims", 0)), &out, &tm) == LENS_OK);
    CHECK(shape_is(&out, 1, DIMS(2)));
    check_f32("ReduceSum hand", &out, (double[]){3, 7}, 2, 0);
    done(&out);
    CHECK(RUN(OPA("ReduceMean", 13, attr_ints("axes", DIMS(-2), 1)), &out, &tm) == LENS_OK);
    CHECK(shape_is(&out, 2, DIMS(1, 2)));
    check_f32("ReduceMean hand", &out, (double[]){2, 3}, 2, 0);
    done(&out);

    /* axes as an input (ReduceSum 13, the others 18) */
    int64_t ax1[1] = {1};
    tensor tax = tn(LENS_DTYPE_INT64, ax1, 1, DIMS(1));
    CHECK(RUN(OPA("ReduceSum", 13, attr_int("keepdims", 1)), &out, &tm, &tax) == LENS_OK);
    CHECK(shape_is(&out, 2, DIMS(2, 1)));
    check_f32("ReduceSum axes input", &out, (double[]){3, 7}, 2, 0);
    done(&out);
    CHECK(RUN(OP("ReduceMax", 18), &out, &tm, &tax) == LENS_OK);
    check_f32("ReduceMax axes input", &out, (double[]){2, 4}, 2, 0);
    done(&out);
    tensor tax_unknown = tn(LENS_DTYPE_INT64, NULL, 1, DIMS(1));
    CHECK(RUN(OP("ReduceSum", 13), &out, &tm, &tax_unknown) == LENS_ERR_UNSUPPORTED);
    CHECK(strstr(core_last_error(), "axes must be constant") != NULL);
    tensor tax_empty = tn(LENS_DTYPE_INT64, NULL, 1, DIMS(0)); /* empty needs no data */
    CHECK(RUN(OPA("ReduceSum", 13, attr_int("keepdims", 0)), &out, &tm, &tax_empty) == LENS_OK);
    CHECK(out.rank == 0);
    check_f32("ReduceSum empty axes", &out, (double[]){10}, 1, 0);
    done(&out);
    CHECK(RUN(OPA("ReduceSum", 13, attr_int("noop_with_empty_axes", 1)), &out, &tm, &tax_empty) == LENS_OK);
    CHECK(shape_is(&out, 2, DIMS(2, 2)));
    check_f32("ReduceSum noop", &out, (double[]){1, 2, 3, 4}, 4, 0);
    done(&out);
    CHECK(RUN(OPA("ReduceSum", 11, attr_ints("axes", DIMS(1, -1), 2)), &out, &tm) == LENS_ERR_INVALID_ARGUMENT);
    CHECK(RUN(OPA("ReduceSum", 11, attr_ints("axes", DIMS(2), 1)), &out, &tm) == LENS_ERR_INVALID_ARGUMENT);

    /* zero-size reduced dim: identities */
    tensor tz = tn(LENS_DTYPE_FLOAT32, m, 2, DIMS(2, 0));
    CHECK(RUN(OPA("ReduceSum", 11, attr_ints("axes", DIMS(1), 1)), &out, &tz) == LENS_OK);
    CHECK(shape_is(&out, 2, DIMS(2, 1)));
    check_f32("ReduceSum empty", &out, (double[]){0, 0}, 2, 0);
    done(&out);
    CHECK(RUN(OPA("ReduceProd", 11, attr_ints("axes", DIMS(1), 1)), &out, &tz) == LENS_OK);
    check_f32("ReduceProd empty", &out, (double[]){1, 1}, 2, 0);
    done(&out);
    CHECK(RUN(OPA("ReduceMax", 11, attr_ints("axes", DIMS(1), 1), attr_int("keepdims", 0)), &out, &tz) == LENS_OK);
    check_f32("ReduceMax empty", &out, (double[]){-INFINITY, -INFINITY}, 2, 0);
    done(&out);
    CHECK(RUN(OPA("ReduceSum", 11, attr_ints("axes", DIMS(0), 1)), &out, &tz) == LENS_OK);
    CHECK(shape_is(&out, 2, DIMS(1, 0)));
    done(&out);

    /* zero-size inputs without data: nothing may be read or written */
    tensor tnull = tn(LENS_DTYPE_FLOAT32, NULL, 2, DIMS(0, 3));
    CHECK(RUN(OPA("ReduceSum", 13, attr_int("noop_with_empty_axes", 1)), &out, &tnull, &tax_empty) == LENS_OK);
    CHECK(shape_is(&out, 2, DIMS(0, 3)));
    done(&out);
    CHECK(RUN(OP("Softmax", 13), &out, &tnull) == LENS_OK && shape_is(&out, 2, DIMS(0, 3)));
    done(&out);
    CHECK(RUN(OP("Sum", 13), &out, &tnull) == LENS_OK && shape_is(&out, 2, DIMS(0, 3)));
    done(&out);
    CHECK(RUN(OP("Relu", 14), &out, &tnull) == LENS_OK && shape_is(&out, 2, DIMS(0, 3)));
    done(&out);

    /* rank 0 */
    float s = -2;
    tensor ts = tn(LENS_DTYPE_FLOAT32, &s, 0, NULL);
    CHECK(RUN(OP("ReduceL1", 13), &out, &ts) == LENS_OK && out.rank == 0);
    check_f32("ReduceL1 scalar", &out, (double[]){2}, 1, 0);
    done(&out);

    /* int64 */
    int64_t iv[6] = {1, -2, 3, 4, 5, -6};
    tensor ti = tn(LENS_DTYPE_INT64, iv, 2, DIMS(2, 3));
    CHECK(RUN(OPA("ReduceSum", 11, attr_ints("axes", DIMS(1), 1), attr_int("keepdims", 0)), &out, &ti) == LENS_OK);
    CHECK(out.dtype == LENS_DTYPE_INT64);
    check_i64("ReduceSum int64", &out, (int64_t[]){2, 3}, 2);
    done(&out);
    CHECK(RUN(OPA("ReduceProd", 11, attr_ints("axes", DIMS(0), 1), attr_int("keepdims", 0)), &out, &ti) == LENS_OK);
    check_i64("ReduceProd int64", &out, (int64_t[]){4, -10, -18}, 3);
    done(&out);
    CHECK(RUN(OPA("ReduceMax", 11, attr_int("keepdims", 0)), &out, &ti) == LENS_OK);
    check_i64("ReduceMax int64", &out, (int64_t[]){5}, 1);
    done(&out);
    CHECK(RUN(OPA("ReduceMin", 11, attr_ints("axes", DIMS(-1), 1)), &out, &ti) == LENS_OK);
    check_i64("ReduceMin int64", &out, (int64_t[]){-2, -6}, 2);
    done(&out);
    CHECK(RUN(OP("ReduceL2", 11), &out, &ti) == LENS_ERR_UNSUPPORTED);

    /* double */
    double dv[4] = {1, 2, 3, 4};
    tensor td = tn(LENS_DTYPE_FLOAT64, dv, 2, DIMS(2, 2));
    CHECK(RUN(OPA("ReduceLogSumExp", 13, attr_ints("axes", DIMS(1), 1), attr_int("keepdims", 0)), &out, &td) ==
          LENS_OK);
    CHECK(out.dtype == LENS_DTYPE_FLOAT64 && fabs(((double *)out.data)[0] - log(exp(1) + exp(2))) < 1e-12 &&
          fabs(((double *)out.data)[1] - log(exp(3) + exp(4))) < 1e-12);
    done(&out);
}

static void test_reduce_large(void) {
    /* rows (ReduceMean over the last axis), columns ([outer, reduced, inner]) and a general pattern, over the pool */
    enum { A = 16, B = 40, C = 260 };
    float *x = malloc(sizeof(float) * A * B * C);
    double *want = malloc(sizeof(double) * A * B * C);
    fill(x, A * B * C, -1, 1);
    tensor tx = tn(LENS_DTYPE_FLOAT32, x, 3, DIMS(A, B, C)), out;
    const int64_t d[3] = {A, B, C};
    const struct {
        int mask[3];
        const char *op;
        ref_red r;
    } cases[] = {
        {{0, 0, 1}, "ReduceMean", R_MEAN},   {{0, 1, 0}, "ReduceSum", R_SUM},    {{1, 0, 0}, "ReduceMax", R_MAX},
        {{1, 0, 1}, "ReduceL2", R_L2},       {{0, 1, 1}, "ReduceSumSquare", R_SUMSQ},
        {{1, 1, 1}, "ReduceMean", R_MEAN},   {{0, 1, 0}, "ReduceLogSumExp", R_LSE}, {{0, 1, 0}, "ReduceMin", R_MIN},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int64_t axes[3];
        size_t n_axes = 0;
        for (int a = 0; a < 3; a++)
            if (cases[c].mask[a]) axes[n_axes++] = a;
        int64_t n = ref_reduce3(x, d, cases[c].mask, cases[c].r, want);
        CHECK(RUN(OPA(cases[c].op, 13, attr_ints("axes", axes, n_axes)), &out, &tx) == LENS_OK);
        char label[96];
        snprintf(label, sizeof label, "%s large mask %d%d%d", cases[c].op, cases[c].mask[0], cases[c].mask[1],
                 cases[c].mask[2]);
        check_f32(label, &out, want, n, 1e-5);
        done(&out);
    }
    free(x);
    free(want);
}

static void test_argmax(void) {
    float x[12] = {1, 5, 5, 2, /**/ 7, 0, 7, 7, /**/ -1, -3, -3, 4};
    tensor tx = tn(LENS_DTYPE_FLOAT32, x, 2, DIMS(3, 4)), out;
    CHECK(RUN(OPA("ArgMax", 13, attr_int("axis", 1)), &out, &tx) == LENS_OK);
    CHECK(out.dtype == LENS_DTYPE_INT64 && shape_is(&out, 2, DIMS(3, 1)));
    check_i64("ArgMax axis 1", &out, (int64_t[]){1, 0, 3}, 3);
    done(&out);
    CHECK(RUN(OPA("ArgMax", 13, attr_int("axis", -1), attr_int("keepdims", 0), attr_int("select_last_index", 1)),
              &out, &tx) == LENS_OK);
    CHECK(shape_is(&out, 1, DIMS(3)));
    check_i64("ArgMax last index", &out, (int64_t[]){2, 3, 3}, 3);
    done(&out);
    CHECK(RUN(OP("ArgMin", 13), &out, &tx) == LENS_OK && shape_is(&out, 2, DIMS(1, 4)));
    check_i64("ArgMin axis 0", &out, (int64_t[]){2, 2, 2, 0}, 4);
    done(&out);
    CHECK(RUN(OPA("ArgMin", 13, attr_int("axis", 1), attr_int("select_last_index", 1)), &out, &tx) == LENS_OK);
    check_i64("ArgMin last index", &out, (int64_t[]){0, 1, 2}, 3);
    done(&out);
    int64_t iv[4] = {3, 9, 9, 1};
    tensor ti = tn(LENS_DTYPE_INT64, iv, 1, DIMS(4));
    CHECK(RUN(OPA("ArgMax", 13, attr_int("keepdims", 0)), &out, &ti) == LENS_OK && out.rank == 0);
    check_i64("ArgMax int64", &out, (int64_t[]){1}, 1);
    done(&out);
    tensor tz = tn(LENS_DTYPE_FLOAT32, x, 2, DIMS(3, 0));
    CHECK(RUN(OPA("ArgMax", 13, attr_int("axis", 1)), &out, &tz) == LENS_ERR_SHAPE);
    CHECK(RUN(OPA("ArgMax", 13, attr_int("axis", 2)), &out, &tx) == LENS_ERR_INVALID_ARGUMENT);
}

int main(void) {
    core_pool_create(2, &pool);
    test_add_broadcast();
    test_binary_large();
    test_binary_errors_and_empty();
    test_int_ops();
    test_compare_logic_where();
    test_variadic();
    test_pow();
    test_unary();
    test_prelu();
    test_activations();
    test_activation_large();
    test_clip();
    test_softmax();
    test_softmax_large();
    test_reduce();
    test_reduce_large();
    test_argmax();
    core_pool_free(pool);
    return test_finish("test_math_ops");
}
