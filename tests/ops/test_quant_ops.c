/* test_quant_ops.c — the quantized ops through their op_defs (infer, prepare, run) against hand-computed values, the
 * ONNX backend test cases and straightforward loops; the fast integer kernels against the scalar references. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/qgemm.h"
#include "ops/ops.h"
#include "test.h"

/* ---- Harness ------------------------------------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }
static float rnd_float(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() % 100000) / 100000.0f; }

static tensor mk(lens_dtype t, int rank, const int64_t *dims, const void *data) {
    tensor x;
    memset(&x, 0, sizeof x);
    x.dtype = t;
    x.rank = rank;
    for (int i = 0; i < rank; i++) x.dims[i] = dims[i];
    x.data = (void *)data;
    return x;
}
#define T0(t, p) mk(t, 0, NULL, p)
#define T1(t, n, p) mk(t, 1, (int64_t[]){n}, p)

static op_attr attr_int(const char *name, int64_t v) {
    op_attr a;
    memset(&a, 0, sizeof a);
    a.name = name, a.type = OP_ATTR_INT, a.i = v;
    return a;
}
static op_attr attr_ints(const char *name, const int64_t *v, size_t n) {
    op_attr a;
    memset(&a, 0, sizeof a);
    a.name = name, a.type = OP_ATTR_INTS, a.ints = v, a.count = n;
    return a;
}
static op_attr attr_float(const char *name, float v) {
    op_attr a;
    memset(&a, 0, sizeof a);
    a.name = name, a.type = OP_ATTR_FLOAT, a.f = v;
    return a;
}
static op_attr attr_string(const char *name, const char *v) {
    op_attr a;
    memset(&a, 0, sizeof a);
    a.name = name, a.type = OP_ATTR_STRING, a.s = v, a.s_len = strlen(v);
    return a;
}

static const op_def *find_op(const char *domain, const char *type) {
    for (const op_def *d = ops_table_quant; d->op_type; d++)
        if (!strcmp(d->op_type, type) && !strcmp(d->domain, domain)) return d;
    return NULL;
}

static core_pool *pool2;

/* Runs one op: infer, allocate outputs (malloc'd, caller frees data), prepare when constants is set, run, release.
 * Inputs with data count as constants for prepare. */
static lens_status run_op(const char *domain, const char *type, const op_attr *attrs, int n_attrs,
                          const tensor **inputs, int n_in, tensor *outputs, int n_out, int use_pool) {
    const op_def *def = find_op(domain, type);
    if (!def) return core_fail(LENS_ERR_UNSUPPORTED, "no op %s", type);
    op_node node = {"test", type, domain, 13, n_attrs, attrs};
    tensor *outs[4];
    for (int i = 0; i < n_out; i++) {
        memset(&outputs[i], 0, sizeof outputs[i]);
        outs[i] = &outputs[i];
    }
    op_call call = {&node, n_in, inputs, n_out, outs, use_pool ? pool2 : NULL, NULL, NULL, 0, 0};
    lens_status st = def->infer(&call);
    if (st) return st;
    for (int i = 0; i < n_out; i++) {
        size_t bytes = tensor_bytes(&outputs[i]);
        outputs[i].data = calloc(1, bytes ? bytes : 1);
    }
    void *scratch = call.scratch_bytes ? core_aligned_alloc(call.scratch_bytes) : NULL;
    call.scratch = scratch;
    void *state = NULL;
    if (def->prepare && (st = def->prepare(&call, &state))) goto done;
    call.state = state;
    st = def->run(&call);
    /* Running twice must give the same answer: nothing may depend on leftover scratch. */
    if (!st && def->release && state) {
        def->release(state);
        state = NULL;
    }
done:
    if (state && def->release) def->release(state);
    core_aligned_free(scratch);
    return st;
}

static void free_outputs(tensor *o, int n) {
    for (int i = 0; i < n; i++) free(o[i].data);
}

static int32_t ref_requant(int64_t acc, float scale, int32_t zp, int32_t lo, int32_t hi) {
    float f = (float)(int32_t)acc * scale;
    if (f < (float)(lo - zp)) f = (float)(lo - zp);
    if (f > (float)(hi - zp)) f = (float)(hi - zp);
    return (int32_t)nearbyintf(f) + zp;
}

/* ---- QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear ---------------------------------------------------- */

static void test_quantize(void) {
    /* Ties go to even: 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, 0.5 -> 0; saturation at both ends. */
    float x[] = {5.0f, 7.0f, -5.0f, 1.0f, 1000.0f, -1000.0f, 0.0f, 3.0f};
    float scale = 2.0f;
    uint8_t zp = 10;
    const tensor tx = T1(LENS_DTYPE_FLOAT32, 8, x), ts = T0(LENS_DTYPE_FLOAT32, &scale), tz = T0(LENS_DTYPE_UINT8, &zp);
    const tensor *in[] = {&tx, &ts, &tz};
    tensor out[1];
    CHECK(run_op("", "QuantizeLinear", NULL, 0, in, 3, out, 1, 0) == LENS_OK);
    CHECK(out[0].dtype == LENS_DTYPE_UINT8 && out[0].rank == 1 && out[0].dims[0] == 8);
    const uint8_t want[] = {12, 14, 8, 10, 255, 0, 10, 12};
    for (int i = 0; i < 8; i++) CHECK_MSG(((uint8_t *)out[0].data)[i] == want[i], "i=%d got %d", i, ((uint8_t *)out[0].data)[i]);
    free_outputs(out, 1);

    /* int8, zero point omitted -> uint8 with zero point 0. */
    int8_t zs = -3;
    const tensor tzs = T0(LENS_DTYPE_INT8, &zs);
    const tensor *in8[] = {&tx, &ts, &tzs};
    CHECK(run_op("", "QuantizeLinear", NULL, 0, in8, 3, out, 1, 0) == LENS_OK);
    const int8_t want8[] = {-1, 1, -5, -3, 127, -128, -3, -1};
    CHECK(out[0].dtype == LENS_DTYPE_INT8);
    for (int i = 0; i < 8; i++) CHECK_MSG(((int8_t *)out[0].data)[i] == want8[i], "i=%d got %d", i, ((int8_t *)out[0].data)[i]);
    free_outputs(out, 1);
    const tensor *in2[] = {&tx, &ts};
    CHECK(run_op("", "QuantizeLinear", NULL, 0, in2, 2, out, 1, 0) == LENS_OK);
    CHECK(out[0].dtype == LENS_DTYPE_UINT8 && ((uint8_t *)out[0].data)[2] == 0 && ((uint8_t *)out[0].data)[1] == 4);
    free_outputs(out, 1);

    /* ONNX backend test_quantizelinear and test_quantizelinear_axis. */
    float xb[] = {0, 2, 3, 1000, -254, -1000};
    uint8_t zb = 128;
    const tensor txb = T1(LENS_DTYPE_FLOAT32, 6, xb), tzb = T0(LENS_DTYPE_UINT8, &zb);
    const tensor *inb[] = {&txb, &ts, &tzb};
    CHECK(run_op("", "QuantizeLinear", NULL, 0, inb, 3, out, 1, 0) == LENS_OK);
    const uint8_t wantb[] = {128, 129, 130, 255, 1, 0};
    CHECK(!memcmp(out[0].data, wantb, 6));
    free_outputs(out, 1);

    float xa[18] = {-162, 10, -100, 232, -20, -50, -76, 0, 0, 252, 32, -44, 245, -485, -960, -270, -375, -470};
    float sa[3] = {2, 4, 5};
    uint8_t za[3] = {84, 24, 196};
    const uint8_t wanta[18] = {3, 89, 34, 200, 74, 59, 5, 24, 24, 87, 32, 13, 245, 99, 4, 142, 121, 102};
    const tensor txa = mk(LENS_DTYPE_FLOAT32, 4, (int64_t[]){1, 3, 3, 2}, xa), tsa = T1(LENS_DTYPE_FLOAT32, 3, sa),
                 tza = T1(LENS_DTYPE_UINT8, 3, za);
    const tensor *ina[] = {&txa, &tsa, &tza};
    CHECK(run_op("", "QuantizeLinear", NULL, 0, ina, 3, out, 1, 0) == LENS_OK);
    CHECK(out[0].rank == 4 && !memcmp(out[0].data, wanta, 18));
    free_outputs(out, 1);

    /* Dequantize back: per-axis, then per-tensor with int8 and int32. */
    const tensor tqa = mk(LENS_DTYPE_UINT8, 4, (int64_t[]){1, 3, 3, 2}, wanta);
    const tensor *ind[] = {&tqa, &tsa, &tza};
    CHECK(run_op("", "DequantizeLinear", NULL, 0, ind, 3, out, 1, 0) == LENS_OK);
    CHECK(out[0].dtype == LENS_DTYPE_FLOAT32);
    for (int i = 0; i < 18; i++) CHECK_NEAR(((float *)out[0].data)[i], xa[i], 0); /* the round trip is exact */
    free_outputs(out, 1);
    /* Per-axis on axis 3 (negative axis too). */
    float s2[2] = {0.5f, 3.0f};
    uint8_t z2[2] = {1, 2};
    const tensor ts2 = T1(LENS_DTYPE_FLOAT32, 2, s2), tz2 = T1(LENS_DTYPE_UINT8, 2, z2);
    const tensor *ind2[] = {&tqa, &ts2, &tz2};
    op_attr ax = attr_int("axis", -1);
    CHECK(run_op("", "DequantizeLinear", &ax, 1, ind2, 3, out, 1, 0) == LENS_OK);
    for (int i = 0; i < 18; i++) CHECK_NEAR(((float *)out[0].data)[i], (wanta[i] - z2[i % 2]) * s2[i % 2], 0);
    free_outputs(out, 1);
    CHECK(run_op("", "DequantizeLinear", NULL, 0, ind2, 3, out, 1, 0) == LENS_ERR_SHAPE); /* axis 1 has 3, not 2 */

    int8_t q8[4] = {-128, -1, 0, 127};
    int8_t z8 = -1;
    const tensor tq8 = T1(LENS_DTYPE_INT8, 4, q8), tz8 = T0(LENS_DTYPE_INT8, &z8);
    const tensor *ind3[] = {&tq8, &ts, &tz8};
    CHECK(run_op("", "DequantizeLinear", NULL, 0, ind3, 3, out, 1, 0) == LENS_OK);
    const float want3[] = {-254, 0, 2, 256};
    for (int i = 0; i < 4; i++) CHECK_NEAR(((float *)out[0].data)[i], want3[i], 0);
    free_outputs(out, 1);
    int32_t q32[3] = {-100000, 0, 7};
    const tensor tq32 = T1(LENS_DTYPE_INT32, 3, q32);
    const tensor *ind4[] = {&tq32, &ts};
    CHECK(run_op("", "DequantizeLinear", NULL, 0, ind4, 2, out, 1, 0) == LENS_OK);
    CHECK_NEAR(((float *)out[0].data)[0], -200000, 0);
    CHECK_NEAR(((float *)out[0].data)[2], 14, 0);
    free_outputs(out, 1);

    /* Bad input is refused, not crashed on. */
    const tensor *bad[] = {&tq8, &ts, &tzb};
    CHECK(run_op("", "DequantizeLinear", NULL, 0, bad, 3, out, 1, 0) != LENS_OK);
    const tensor *missing[] = {&tx};
    CHECK(run_op("", "QuantizeLinear", NULL, 0, missing, 1, out, 1, 0) != LENS_OK);
    op_attr bs = attr_int("block_size", 2);
    CHECK(run_op("", "QuantizeLinear", &bs, 1, ina, 3, out, 1, 0) == LENS_ERR_UNSUPPORTED);
}

static void test_dynamic_quantize(void) {
    struct {
        int n;
        float x[12];
        uint8_t y[12];
        float scale;
        uint8_t zp;
    } cases[] = {
        {6, {0, 2, -3, -2.5f, 1.34f, 0.5f}, {153, 255, 0, 26, 221, 179}, 0.019607844f, 153},
        {6, {-1, -2.1f, -1.3f, -2.5f, -3.34f, -4}, {191, 121, 172, 96, 42, 0}, 0.015686275f, 255},
        {12, {1, 2.1f, 1.3f, 2.5f, 3.34f, 4, 1.5f, 2.6f, 3.9f, 4, 3, 2.345f},
         {64, 134, 83, 159, 213, 255, 96, 166, 249, 255, 191, 149}, 0.015686275f, 0},
        {3, {0, 0, 0}, {0, 0, 0}, 1.0f, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const tensor tx = T1(LENS_DTYPE_FLOAT32, cases[c].n, cases[c].x);
        const tensor *in[] = {&tx};
        tensor out[3];
        CHECK(run_op("", "DynamicQuantizeLinear", NULL, 0, in, 1, out, 3, 0) == LENS_OK);
        CHECK(out[1].rank == 0 && out[2].rank == 0 && out[2].dtype == LENS_DTYPE_UINT8);
        CHECK_NEAR(*(float *)out[1].data, cases[c].scale, 1e-8);
        CHECK_MSG(*(uint8_t *)out[2].data == cases[c].zp, "case %zu zp %d", c, *(uint8_t *)out[2].data);
        CHECK_MSG(!memcmp(out[0].data, cases[c].y, (size_t)cases[c].n), "case %zu", c);
        free_outputs(out, 3);
    }
}

/* ---- Convolutions ------------------------------------------------------------------------------------------------- */

typedef struct conv_case {
    int n, c, h, w, m, kh, kw, group, sh, sw, dh, dw, pt, pl, pb, pr;
    lens_dtype xt, wt;
    int per_channel, bias, one_d;
    const char *auto_pad;
} conv_case;

static int64_t conv_out(int in, int k, int s, int d, int p0, int p1) { return (in + p0 + p1 - ((k - 1) * d + 1)) / s + 1; }

/* Random QLinearConv (or ConvInteger when integer) checked against a direct loop with ORT's requantization. */
static void check_conv(const conv_case *cc, int integer, int use_pool) {
    const int cg = cc->c / cc->group, mg = cc->m / cc->group;
    const int xs8 = cc->xt == LENS_DTYPE_INT8, ws8 = cc->wt == LENS_DTYPE_INT8;
    int pt = cc->pt, pl = cc->pl, pb = cc->pb, pr = cc->pr;
    if (cc->auto_pad && !strcmp(cc->auto_pad, "SAME_UPPER")) {
        int oh = (cc->h + cc->sh - 1) / cc->sh, ow = (cc->w + cc->sw - 1) / cc->sw;
        int th = (oh - 1) * cc->sh + (cc->kh - 1) * cc->dh + 1 - cc->h, tw = (ow - 1) * cc->sw + (cc->kw - 1) * cc->dw + 1 - cc->w;
        th = th < 0 ? 0 : th, tw = tw < 0 ? 0 : tw;
        pt = th / 2, pb = th - pt, pl = tw / 2, pr = tw - pl;
    }
    const int oh = (int)conv_out(cc->h, cc->kh, cc->sh, cc->dh, pt, pb), ow = (int)conv_out(cc->w, cc->kw, cc->sw, cc->dw, pl, pr);
    size_t nx = (size_t)cc->n * cc->c * cc->h * cc->w, nw = (size_t)cc->m * cg * cc->kh * cc->kw;
    uint8_t *x = malloc(nx), *w = malloc(nw);
    for (size_t i = 0; i < nx; i++) x[i] = (uint8_t)rnd();
    for (size_t i = 0; i < nw; i++) w[i] = (uint8_t)rnd();
    float x_scale = rnd_float(0.01f, 0.05f), y_scale = rnd_float(0.05f, 0.5f);
    float *w_scale = malloc(sizeof(float) * (size_t)cc->m);
    uint8_t x_zp = (uint8_t)rnd(), y_zp = (uint8_t)rnd(), *w_zp = malloc((size_t)cc->m);
    int32_t *bias = malloc(sizeof(int32_t) * (size_t)cc->m);
    int nparams = cc->per_channel ? cc->m : 1;
    for (int i = 0; i < cc->m; i++) {
        w_scale[i] = rnd_float(0.002f, 0.02f);
        w_zp[i] = (uint8_t)rnd_int(ws8 ? -20 : 100, ws8 ? 20 : 150);
        bias[i] = rnd_int(-5000, 5000);
    }
    if (!cc->per_channel)
        for (int i = 1; i < cc->m; i++) w_zp[i] = w_zp[0], w_scale[i] = w_scale[0];

    int64_t xd[4] = {cc->n, cc->c, cc->h, cc->w}, wd[4] = {cc->m, cg, cc->kh, cc->kw};
    if (cc->one_d) xd[2] = cc->w, wd[2] = cc->kw;
    int rank = cc->one_d ? 3 : 4;
    const tensor tx = mk(cc->xt, rank, xd, x), tw = mk(cc->wt, rank, wd, w);
    const tensor txs = T0(LENS_DTYPE_FLOAT32, &x_scale), txz = T0(cc->xt, &x_zp);
    const tensor tws = T1(LENS_DTYPE_FLOAT32, nparams, w_scale), twz = T1(cc->wt, nparams, w_zp);
    const tensor tys = T0(LENS_DTYPE_FLOAT32, &y_scale), tyz = T0(cc->xt, &y_zp);
    const tensor tb = T1(LENS_DTYPE_INT32, cc->m, bias);
    op_attr attrs[6];
    int na = 0;
    int64_t strides[2] = {cc->sh, cc->sw}, dils[2] = {cc->dh, cc->dw}, pads[4] = {cc->pt, cc->pl, cc->pb, cc->pr};
    if (cc->one_d) strides[0] = cc->sw, dils[0] = cc->dw, pads[0] = cc->pl, pads[1] = cc->pr;
    attrs[na++] = attr_int("group", cc->group);
    attrs[na++] = attr_ints("strides", strides, (size_t)rank - 2);
    attrs[na++] = attr_ints("dilations", dils, (size_t)rank - 2);
    if (cc->auto_pad) attrs[na++] = attr_string("auto_pad", cc->auto_pad);
    else attrs[na++] = attr_ints("pads", pads, 2 * ((size_t)rank - 2));
    tensor out[1];
    lens_status st;
    if (integer) {
        const tensor *in[] = {&tx, &tw, &txz, &twz};
        st = run_op("", "ConvInteger", attrs, na, in, 4, out, 1, use_pool);
    } else {
        const tensor *in[] = {&tx, &txs, &txz, &tw, &tws, &twz, &tys, &tyz, cc->bias ? &tb : NULL};
        st = run_op("", "QLinearConv", attrs, na, in, 9, out, 1, use_pool);
    }
    CHECK_MSG(st == LENS_OK, "%s", core_last_error());
    if (st) goto done;
    CHECK(out[0].dims[0] == cc->n && out[0].dims[1] == cc->m && out[0].dims[rank - 1] == ow);
    CHECK(out[0].dtype == (integer ? LENS_DTYPE_INT32 : cc->xt));
    int32_t lo = xs8 ? -128 : 0, hi = xs8 ? 127 : 255;
    int32_t xz = xs8 ? (int8_t)x_zp : x_zp, yz = xs8 ? (int8_t)y_zp : y_zp;
    int bad = 0;
    for (int n = 0; n < cc->n; n++)
        for (int m = 0; m < cc->m; m++) {
            int g = m / mg;
            int32_t wz = ws8 ? (int8_t)w_zp[m] : w_zp[m];
            float scale = x_scale * w_scale[m] / y_scale;
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    int64_t acc = integer || !cc->bias ? 0 : bias[m];
                    for (int c = 0; c < cg; c++)
                        for (int ky = 0; ky < cc->kh; ky++)
                            for (int kx = 0; kx < cc->kw; kx++) {
                                int iy = oy * cc->sh - pt + ky * cc->dh, ix = ox * cc->sw - pl + kx * cc->dw;
                                if (iy < 0 || iy >= cc->h || ix < 0 || ix >= cc->w) continue;
                                uint8_t xb = x[(((size_t)n * cc->c + g * cg + c) * cc->h + iy) * cc->w + ix];
                                uint8_t wb = w[(((size_t)m * cg + c) * cc->kh + ky) * cc->kw + kx];
                                int32_t xv = xs8 ? (int8_t)xb : xb, wv = ws8 ? (int8_t)wb : wb;
                                acc += (int64_t)(xv - xz) * (wv - wz);
                            }
                    size_t at = (((size_t)n * cc->m + m) * oh + oy) * ow + ox;
                    int32_t got = integer ? ((int32_t *)out[0].data)[at]
                                          : xs8 ? ((int8_t *)out[0].data)[at] : ((uint8_t *)out[0].data)[at];
                    int32_t want = integer ? (int32_t)acc : ref_requant(acc, scale, yz, lo, hi);
                    if (got != want && bad++ < 5)
                        fprintf(stderr, "conv n%d m%d y%d x%d: got %d want %d\n", n, m, oy, ox, got, want);
                }
        }
    CHECK_MSG(bad == 0, "%d mismatches (c=%d m=%d k=%dx%d g=%d s=%d)", bad, cc->c, cc->m, cc->kh, cc->kw, cc->group, cc->sw);
    free_outputs(out, 1);
done:
    free(x), free(w), free(w_scale), free(w_zp), free(bias);
}

static void test_conv(void) {
    const lens_dtype U8 = LENS_DTYPE_UINT8, S8 = LENS_DTYPE_INT8;
    conv_case cases[] = {
        /* n c  h  w  m kh kw g sh sw dh dw pt pl pb pr  xt  wt pc bias 1d */
        {1, 3, 9, 11, 8, 3, 3, 1, 2, 2, 1, 1, 1, 1, 1, 1, U8, S8, 1, 1, 0, NULL},   /* mobilenet's stem */
        {2, 16, 7, 5, 24, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, U8, S8, 1, 1, 0, NULL},  /* pointwise, 2 images */
        {1, 24, 8, 8, 24, 3, 3, 24, 1, 1, 1, 1, 1, 1, 1, 1, U8, S8, 1, 1, 0, NULL}, /* depthwise */
        {1, 20, 9, 7, 20, 3, 3, 20, 2, 2, 1, 1, 1, 1, 1, 1, U8, S8, 1, 1, 0, NULL}, /* depthwise stride 2 */
        {1, 8, 33, 37, 8, 5, 5, 8, 2, 2, 1, 1, 2, 2, 2, 2, U8, U8, 1, 1, 0, NULL},  /* depthwise 5x5, u8 weights */
        {1, 4, 10, 10, 4, 3, 3, 4, 1, 1, 2, 2, 2, 2, 2, 2, U8, S8, 0, 0, 0, NULL},  /* depthwise dilated */
        {1, 6, 7, 9, 4, 3, 2, 2, 1, 2, 1, 1, 0, 1, 2, 0, U8, S8, 1, 1, 0, NULL},    /* grouped, asymmetric pads */
        {1, 4, 6, 6, 8, 3, 3, 4, 1, 1, 1, 1, 1, 1, 1, 1, U8, U8, 0, 1, 0, NULL},    /* channel multiplier 2 */
        {1, 5, 12, 13, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, S8, S8, 1, 1, 0, NULL}, /* int8 activations */
        {1, 7, 11, 11, 9, 3, 3, 1, 2, 2, 1, 1, 0, 0, 0, 0, U8, U8, 1, 0, 0, "SAME_UPPER"},
        {1, 3, 1, 40, 5, 1, 4, 1, 1, 3, 1, 2, 0, 2, 0, 1, U8, S8, 1, 1, 1, NULL},   /* 1-D */
        {1, 64, 14, 14, 96, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, U8, S8, 1, 1, 0, NULL},
        {1, 32, 20, 20, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, U8, U8, 1, 1, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        check_conv(&cases[i], 0, 0);
        check_conv(&cases[i], 0, 1);
        check_conv(&cases[i], 1, 1);
    }

    /* ONNX backend test_qlinearconv (uint8 weights with zero point 255). */
    static const uint8_t x[49] = {255, 174, 162, 25, 203, 168, 58, 15, 59, 237, 95, 129, 0, 64, 56, 242, 153, 221,
                                  168, 12, 166, 232, 178, 186, 195, 237, 162, 237, 188, 39, 124, 77, 80, 102, 43, 127,
                                  230, 21, 83, 41, 40, 134, 255, 154, 92, 141, 42, 148, 247};
    static const uint8_t want[49] = {0, 81, 93, 230, 52, 87, 197, 240, 196, 18, 160, 126, 255, 191, 199, 13, 102, 34,
                                     87, 243, 89, 23, 77, 69, 60, 18, 93, 18, 67, 216, 131, 178, 175, 153, 212, 128,
                                     25, 234, 172, 214, 215, 121, 0, 101, 163, 114, 213, 107, 8};
    float xs = 0.00369204697f, ws = 0.00172794575f, ys = 0.00162681262f;
    uint8_t xz = 132, w0 = 0, wz = 255, yz = 123;
    const tensor tx = mk(LENS_DTYPE_UINT8, 4, (int64_t[]){1, 1, 7, 7}, x), txs = T0(LENS_DTYPE_FLOAT32, &xs),
                 txz = T0(LENS_DTYPE_UINT8, &xz), tw = mk(LENS_DTYPE_UINT8, 4, (int64_t[]){1, 1, 1, 1}, &w0),
                 tws = T1(LENS_DTYPE_FLOAT32, 1, &ws), twz = T1(LENS_DTYPE_UINT8, 1, &wz),
                 tys = T0(LENS_DTYPE_FLOAT32, &ys), tyz = T0(LENS_DTYPE_UINT8, &yz);
    const tensor *in[] = {&tx, &txs, &txz, &tw, &tws, &twz, &tys, &tyz};
    tensor out[1];
    CHECK(run_op("", "QLinearConv", NULL, 0, in, 8, out, 1, 1) == LENS_OK);
    CHECK(!memcmp(out[0].data, want, 49));
    free_outputs(out, 1);

    /* ONNX backend test_convinteger_with_padding / without_padding. */
    uint8_t cx[9] = {2, 3, 4, 5, 6, 7, 8, 9, 10}, cw[4] = {1, 1, 1, 1}, cz = 1;
    const tensor ctx = mk(LENS_DTYPE_UINT8, 4, (int64_t[]){1, 1, 3, 3}, cx),
                 ctw = mk(LENS_DTYPE_UINT8, 4, (int64_t[]){1, 1, 2, 2}, cw), ctz = T0(LENS_DTYPE_UINT8, &cz);
    const tensor *cin[] = {&ctx, &ctw, &ctz};
    int64_t pads[4] = {1, 1, 1, 1};
    op_attr pa = attr_ints("pads", pads, 4);
    CHECK(run_op("", "ConvInteger", &pa, 1, cin, 3, out, 1, 0) == LENS_OK);
    const int32_t want_p[16] = {1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9};
    CHECK(out[0].dims[2] == 4 && !memcmp(out[0].data, want_p, sizeof want_p));
    free_outputs(out, 1);
    CHECK(run_op("", "ConvInteger", NULL, 0, cin, 3, out, 1, 0) == LENS_OK);
    const int32_t want_np[4] = {12, 16, 24, 28};
    CHECK(out[0].dims[2] == 2 && !memcmp(out[0].data, want_np, sizeof want_np));
    free_outputs(out, 1);

    /* Shape errors are reported, not crashed on. */
    op_attr g3 = attr_int("group", 3);
    const tensor *cin2[] = {&ctx, &ctw, &ctz};
    CHECK(run_op("", "ConvInteger", &g3, 1, cin2, 3, out, 1, 0) == LENS_ERR_SHAPE);
    int64_t big[2] = {5, 5};
    op_attr ks = attr_ints("kernel_shape", big, 2);
    CHECK(run_op("", "ConvInteger", &ks, 1, cin2, 3, out, 1, 0) != LENS_OK);
    const tensor ctw5 = mk(LENS_DTYPE_UINT8, 4, (int64_t[]){1, 1, 5, 5}, cw);
    const tensor *cin3[] = {&ctx, &ctw5, &ctz};
    CHECK(run_op("", "ConvInteger", NULL, 0, cin3, 3, out, 1, 0) == LENS_ERR_SHAPE);
    op_attr last = attr_int("channels_last", 1);
    CHECK(run_op("com.microsoft", "QLinearConv", &last, 1, in, 8, out, 1, 0) == LENS_ERR_UNSUPPORTED);
    const tensor *no_scale[] = {&tx, NULL, &txz, &tw, &tws, &twz, &tys, &tyz};
    CHECK(run_op("", "QLinearConv", NULL, 0, no_scale, 8, out, 1, 0) == LENS_ERR_INVALID_ARGUMENT);
}

/* Exact ties and saturation through each requantizing path: acc / 2 with odd acc lands on .5. */
static void test_conv_ties(void) {
    /* x: 1 image, 4 channels, 1x5; values chosen so x / 2 is 2.5, 3.5, 1.5, 127.5, 0. */
    uint8_t x[20] = {5, 7, 3, 255, 0, 5, 7, 3, 255, 0, 5, 7, 3, 255, 0, 5, 7, 3, 255, 0};
    float one = 1.0f, two = 2.0f, ws[4] = {1, 1, 1, 1};
    uint8_t xz = 0, yz = 100;
    int8_t w[4] = {1, -1, 127, 2}, wz[4] = {0, 0, 0, 0};
    /* Per output channel m: y = rne(x * w[m] / 2) + 100, saturated. */
    const uint8_t want[4][5] = {{102, 104, 102, 228, 100}, {98, 96, 98, 0, 100},
                                {255, 255, 255, 255, 100}, {105, 107, 103, 255, 100}};
    const tensor txs = T0(LENS_DTYPE_FLOAT32, &one), txz = T0(LENS_DTYPE_UINT8, &xz), tws = T1(LENS_DTYPE_FLOAT32, 4, ws),
                 twz = T1(LENS_DTYPE_INT8, 4, wz), tys = T0(LENS_DTYPE_FLOAT32, &two), tyz = T0(LENS_DTYPE_UINT8, &yz);
    tensor out[1];
    for (int depthwise = 0; depthwise < 2; depthwise++) {
        /* GEMM path: 1 input channel to 4 outputs; depthwise path: 4 channels, group 4. */
        const tensor tx = depthwise ? mk(LENS_DTYPE_UINT8, 4, (int64_t[]){1, 4, 1, 5}, x) : mk(LENS_DTYPE_UINT8, 4, (int64_t[]){1, 1, 1, 5}, x);
        const tensor tw = mk(LENS_DTYPE_INT8, 4, (int64_t[]){4, 1, 1, 1}, w);
        op_attr g = attr_int("group", depthwise ? 4 : 1);
        const tensor *in[] = {&tx, &txs, &txz, &tw, &tws, &twz, &tys, &tyz};
        CHECK(run_op("", "QLinearConv", &g, 1, in, 8, out, 1, 1) == LENS_OK);
        for (int m = 0; m < 4; m++)
            for (int i = 0; i < 5; i++)
                CHECK_MSG(((uint8_t *)out[0].data)[m * 5 + i] == want[m][i], "dw=%d m=%d i=%d got %d want %d", depthwise, m,
                          i, ((uint8_t *)out[0].data)[m * 5 + i], want[m][i]);
        free_outputs(out, 1);
    }
    /* The same through QLinearMatMul: A [5, 1] times B [1, 4] with per-column scales. */
    const tensor ta = mk(LENS_DTYPE_UINT8, 2, (int64_t[]){5, 1}, x), tb = mk(LENS_DTYPE_INT8, 2, (int64_t[]){1, 4}, w);
    const tensor *in[] = {&ta, &txs, &txz, &tb, &tws, &twz, &tys, &tyz};
    CHECK(run_op("", "QLinearMatMul", NULL, 0, in, 8, out, 1, 0) == LENS_OK);
    for (int m = 0; m < 4; m++)
        for (int i = 0; i < 5; i++) CHECK(((uint8_t *)out[0].data)[i * 4 + m] == want[m][i]);
    free_outputs(out, 1);
}

/* ---- Matrix products ---------------------------------------------------------------------------------------------- */

static void test_matmul(void) {
    /* ONNX backend test_qlinearmatmul_2D and _3D. */
    uint8_t a[16] = {208, 236, 0, 238, 3, 214, 255, 29, 208, 236, 0, 238, 3, 214, 255, 29};
    uint8_t b[24] = {152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247,
                     152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247};
    float as = 0.0066f, bs = 0.00705f, ys = 0.0107f;
    uint8_t az = 113, bz = 114, yz = 118;
    const uint8_t want[12] = {168, 115, 255, 1, 66, 151, 168, 115, 255, 1, 66, 151};
    const tensor tas = T1(LENS_DTYPE_FLOAT32, 1, &as), taz = T1(LENS_DTYPE_UINT8, 1, &az),
                 tbs = T1(LENS_DTYPE_FLOAT32, 1, &bs), tbz = T1(LENS_DTYPE_UINT8, 1, &bz),
                 tys = T1(LENS_DTYPE_FLOAT32, 1, &ys), tyz = T1(LENS_DTYPE_UINT8, 1, &yz);
    for (int three = 0; three < 2; three++) {
        const tensor ta = three ? mk(LENS_DTYPE_UINT8, 3, (int64_t[]){2, 2, 4}, a) : mk(LENS_DTYPE_UINT8, 2, (int64_t[]){2, 4}, a);
        const tensor tb = three ? mk(LENS_DTYPE_UINT8, 3, (int64_t[]){2, 4, 3}, b) : mk(LENS_DTYPE_UINT8, 2, (int64_t[]){4, 3}, b);
        const tensor *in[] = {&ta, &tas, &taz, &tb, &tbs, &tbz, &tys, &tyz};
        tensor out[1];
        CHECK(run_op("", "QLinearMatMul", NULL, 0, in, 8, out, 1, three) == LENS_OK);
        CHECK(out[0].rank == 2 + three && out[0].dims[1 + three] == 3);
        CHECK(!memcmp(out[0].data, want, three ? 12 : 6));
        free_outputs(out, 1);
    }
    /* ONNX backend test_matmulinteger. */
    uint8_t ma[12] = {11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0}, mb[6] = {1, 4, 2, 5, 3, 6}, maz = 12, mbz = 0;
    const tensor tma = mk(LENS_DTYPE_UINT8, 2, (int64_t[]){4, 3}, ma), tmb = mk(LENS_DTYPE_UINT8, 2, (int64_t[]){3, 2}, mb),
                 tmaz = T1(LENS_DTYPE_UINT8, 1, &maz), tmbz = T1(LENS_DTYPE_UINT8, 1, &mbz);
    const tensor *min[] = {&tma, &tmb, &tmaz, &tmbz};
    tensor out[1];
    CHECK(run_op("", "MatMulInteger", NULL, 0, min, 4, out, 1, 0) == LENS_OK);
    const int32_t mwant[8] = {-38, -83, -44, -98, -50, -113, -56, -128};
    CHECK(!memcmp(out[0].data, mwant, sizeof mwant));
    free_outputs(out, 1);

    /* Random: broadcast batches, per-column scales and zero points, int8 and uint8, per-row A zero points. */
    for (int iter = 0; iter < 24; iter++) {
        int M = rnd_int(1, 40), K = rnd_int(1, 300), N = rnd_int(1, 70), B1 = rnd_int(1, 3);
        int a_s8 = rnd_int(0, 1), b_s8 = rnd_int(0, 1), integer = iter % 3 == 2, b_batched = iter % 4 == 1;
        if (!integer) a_s8 = b_s8 && a_s8; /* QLinearMatMul: int8 A comes with int8 B */
        lens_dtype at = a_s8 ? LENS_DTYPE_INT8 : LENS_DTYPE_UINT8, bt = b_s8 ? LENS_DTYPE_INT8 : LENS_DTYPE_UINT8;
        size_t na = (size_t)B1 * M * K, nb = (size_t)(b_batched ? B1 : 1) * K * N;
        uint8_t *A = malloc(na), *Bm = malloc(nb), *azr = malloc((size_t)M), *bzr = malloc((size_t)N);
        float *bsc = malloc(sizeof(float) * (size_t)N);
        for (size_t i = 0; i < na; i++) A[i] = (uint8_t)rnd();
        for (size_t i = 0; i < nb; i++) Bm[i] = (uint8_t)rnd();
        for (int i = 0; i < M; i++) azr[i] = (uint8_t)rnd();
        for (int i = 0; i < N; i++) bzr[i] = (uint8_t)rnd(), bsc[i] = rnd_float(0.001f, 0.01f);
        int per_row = integer && iter % 2, per_col = iter % 5 != 0;
        float a_scale = rnd_float(0.01f, 0.03f), y_scale = rnd_float(0.1f, 1.0f);
        uint8_t y_zp = (uint8_t)rnd();
        const tensor tA = mk(at, 3, (int64_t[]){B1, M, K}, A);
        const tensor tB = b_batched ? mk(bt, 3, (int64_t[]){B1, K, N}, Bm) : mk(bt, 2, (int64_t[]){K, N}, Bm);
        const tensor tAz = per_row ? T1(at, M, azr) : T0(at, azr), tBz = per_col ? T1(bt, N, bzr) : T0(bt, bzr);
        const tensor tAs = T0(LENS_DTYPE_FLOAT32, &a_scale), tBs = per_col ? T1(LENS_DTYPE_FLOAT32, N, bsc) : T0(LENS_DTYPE_FLOAT32, bsc);
        const tensor tYs = T0(LENS_DTYPE_FLOAT32, &y_scale), tYz = T0(at, &y_zp);
        lens_status st;
        if (integer) {
            const tensor *in[] = {&tA, &tB, &tAz, &tBz};
            st = run_op("", "MatMulInteger", NULL, 0, in, 4, out, 1, iter & 1);
        } else {
            const tensor *in[] = {&tA, &tAs, &tAz, &tB, &tBs, &tBz, &tYs, &tYz};
            st = run_op("", "QLinearMatMul", NULL, 0, in, 8, out, 1, iter & 1);
        }
        CHECK_MSG(st == LENS_OK, "%s", core_last_error());
        int bad = 0;
        for (int bb = 0; st == LENS_OK && bb < B1; bb++)
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    int64_t acc = 0;
                    int32_t az = per_row ? azr[m] : azr[0], bz2 = per_col ? bzr[n] : bzr[0];
                    if (a_s8) az = (int8_t)az;
                    if (b_s8) bz2 = (int8_t)bz2;
                    for (int k = 0; k < K; k++) {
                        uint8_t ab = A[((size_t)bb * M + m) * K + k], bbv = Bm[((size_t)(b_batched ? bb : 0) * K + k) * N + n];
                        int32_t av = a_s8 ? (int8_t)ab : ab, bv = b_s8 ? (int8_t)bbv : bbv;
                        acc += (int64_t)(av - az) * (bv - bz2);
                    }
                    size_t idx = ((size_t)bb * M + m) * N + n;
                    int32_t got, wantv;
                    if (integer) {
                        got = ((int32_t *)out[0].data)[idx], wantv = (int32_t)acc;
                    } else {
                        int32_t lo = a_s8 ? -128 : 0, hi = a_s8 ? 127 : 255, z = a_s8 ? (int8_t)y_zp : y_zp;
                        got = a_s8 ? ((int8_t *)out[0].data)[idx] : ((uint8_t *)out[0].data)[idx];
                        wantv = ref_requant(acc, a_scale * bsc[per_col ? n : 0] / y_scale, z, lo, hi);
                    }
                    if (got != wantv && bad++ < 3) fprintf(stderr, "matmul %d,%d,%d: got %d want %d\n", bb, m, n, got, wantv);
                }
        CHECK_MSG(bad == 0, "iter %d M=%d K=%d N=%d: %d mismatches", iter, M, K, N, bad);
        if (st == LENS_OK) free_outputs(out, 1);
        free(A), free(Bm), free(azr), free(bzr), free(bsc);
    }
    /* 1-D operands drop their dimension. */
    const tensor va = T1(LENS_DTYPE_UINT8, 3, ma), vb = T1(LENS_DTYPE_UINT8, 3, mb);
    const tensor *vin[] = {&va, &tmb};
    CHECK(run_op("", "MatMulInteger", NULL, 0, vin, 2, out, 1, 0) == LENS_OK);
    CHECK(out[0].rank == 1 && out[0].dims[0] == 2 && ((int32_t *)out[0].data)[0] == 11 * 1 + 7 * 2 + 3 * 3);
    free_outputs(out, 1);
    const tensor *vin2[] = {&tma, &vb};
    CHECK(run_op("", "MatMulInteger", NULL, 0, vin2, 2, out, 1, 0) == LENS_OK);
    CHECK(out[0].rank == 1 && out[0].dims[0] == 4 && ((int32_t *)out[0].data)[3] == 8 * 1 + 4 * 4 + 0 * 2);
    free_outputs(out, 1);
    const tensor *vin3[] = {&tmb, &tmb};
    CHECK(run_op("", "MatMulInteger", NULL, 0, vin3, 2, out, 1, 0) == LENS_ERR_SHAPE);
}

/* ---- Element-wise ------------------------------------------------------------------------------------------------- */

static void test_binary(void) {
    /* QLinearAdd with a [2,3,4] + [3,1] broadcast, against the float formula. */
    uint8_t A[24], Bv[3];
    for (int i = 0; i < 24; i++) A[i] = (uint8_t)rnd();
    for (int i = 0; i < 3; i++) Bv[i] = (uint8_t)rnd();
    A[0] = 255, A[1] = 0;
    float as = 0.05f, bs = 0.07f, cs = 0.02f;
    uint8_t az = 100, bz = 30, cz = 128;
    const tensor ta = mk(LENS_DTYPE_UINT8, 3, (int64_t[]){2, 3, 4}, A), tb = mk(LENS_DTYPE_UINT8, 2, (int64_t[]){3, 1}, Bv);
    const tensor tas = T0(LENS_DTYPE_FLOAT32, &as), taz = T0(LENS_DTYPE_UINT8, &az), tbs = T0(LENS_DTYPE_FLOAT32, &bs),
                 tbz = T0(LENS_DTYPE_UINT8, &bz), tcs = T0(LENS_DTYPE_FLOAT32, &cs), tcz = T0(LENS_DTYPE_UINT8, &cz);
    const tensor *in[] = {&ta, &tas, &taz, &tb, &tbs, &tbz, &tcs, &tcz};
    tensor out[1];
    for (int mul = 0; mul < 2; mul++) {
        CHECK(run_op("com.microsoft", mul ? "QLinearMul" : "QLinearAdd", NULL, 0, in, 8, out, 1, 0) == LENS_OK);
        CHECK(out[0].rank == 3 && out[0].dims[2] == 4);
        int bad = 0, sat = 0;
        for (int i = 0; i < 24; i++) {
            int row = (i / 4) % 3;
            float f;
            int32_t want;
            if (mul) {
                f = (float)((A[i] - az) * (Bv[row] - bz)) * (as * bs / cs) + (float)cz;
                want = (int32_t)nearbyintf(f < 0 ? 0 : f > 255 ? 255 : f);
            } else {
                f = ((float)(A[i] - az) * as + (float)(Bv[row] - bz) * bs) / cs;
                want = (int32_t)nearbyintf(f < -128 ? -128 : f > 127 ? 127 : f) + cz;
            }
            bad += ((uint8_t *)out[0].data)[i] != want;
            sat += want == 0 || want == 255;
        }
        CHECK_MSG(bad == 0, "%s: %d mismatches", mul ? "mul" : "add", bad);
        CHECK(sat > 0); /* the case reaches saturation */
        free_outputs(out, 1);
    }
    /* Hand-computed: 0.5 * (3 - 1) + 0.5 * (4 - 1) = 2.5 -> 2 (even); with 1 more: 3.0 -> 3; zero point 10. */
    uint8_t a1[2] = {3, 4}, b1 = 4;
    float h = 0.5f, one = 1.0f;
    uint8_t z1 = 1, z10 = 10;
    const tensor t1 = T1(LENS_DTYPE_UINT8, 2, a1), t2 = T0(LENS_DTYPE_UINT8, &b1), th = T0(LENS_DTYPE_FLOAT32, &h),
                 tz1 = T0(LENS_DTYPE_UINT8, &z1), t_one = T0(LENS_DTYPE_FLOAT32, &one), tz10 = T0(LENS_DTYPE_UINT8, &z10);
    const tensor *in1[] = {&t1, &th, &tz1, &t2, &th, &tz1, &t_one, &tz10};
    CHECK(run_op("com.microsoft", "QLinearAdd", NULL, 0, in1, 8, out, 1, 0) == LENS_OK);
    CHECK(((uint8_t *)out[0].data)[0] == 12 && ((uint8_t *)out[0].data)[1] == 13);
    free_outputs(out, 1);
    /* int8 saturation at -128 / 127. */
    int8_t s1[2] = {-128, 127}, s2 = 0;
    float big = 4.0f;
    const tensor ts1 = T1(LENS_DTYPE_INT8, 2, s1), ts2 = T0(LENS_DTYPE_INT8, &s2), tbig = T0(LENS_DTYPE_FLOAT32, &big);
    const tensor *in2[] = {&ts1, &tbig, NULL, &ts2, &tbig, NULL, &t_one, NULL};
    CHECK(run_op("com.microsoft", "QLinearAdd", NULL, 0, in2, 8, out, 1, 0) == LENS_OK);
    CHECK(((int8_t *)out[0].data)[0] == -128 && ((int8_t *)out[0].data)[1] == 127);
    free_outputs(out, 1);
    /* Large same-shape inputs run in chunks on the pool. */
    size_t n = 100003;
    uint8_t *x = malloc(n), *y = malloc(n);
    for (size_t i = 0; i < n; i++) x[i] = (uint8_t)rnd(), y[i] = (uint8_t)rnd();
    const tensor tx = T1(LENS_DTYPE_UINT8, (int64_t)n, x), ty = T1(LENS_DTYPE_UINT8, (int64_t)n, y);
    const tensor *in3[] = {&tx, &tas, &taz, &ty, &tbs, &tbz, &tcs, &tcz};
    CHECK(run_op("com.microsoft", "QLinearAdd", NULL, 0, in3, 8, out, 1, 1) == LENS_OK);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float f = ((float)(x[i] - az) * as + (float)(y[i] - bz) * bs) / cs;
        int32_t want = (int32_t)nearbyintf(f < -128 ? -128 : f > 127 ? 127 : f) + cz;
        bad += ((uint8_t *)out[0].data)[i] != want;
    }
    CHECK(bad == 0);
    free_outputs(out, 1);
    free(x), free(y);
    const tensor tbad = mk(LENS_DTYPE_UINT8, 2, (int64_t[]){5, 1}, Bv);
    const tensor *in4[] = {&ta, &tas, &taz, &tbad, &tbs, &tbz, &tcs, &tcz};
    CHECK(run_op("com.microsoft", "QLinearAdd", NULL, 0, in4, 8, out, 1, 0) == LENS_ERR_SHAPE);
}

static void test_pool_and_tables(void) {
    /* NCHW [1,2,2,2]: channel 0 sums 1+2+3+4 = 10 around zp 0; channel 1 is all 255. */
    uint8_t x[8] = {1, 2, 3, 4, 255, 255, 255, 255};
    float xs = 1.0f, ys = 1.0f;
    uint8_t xz = 0, yz = 0;
    const tensor tx = mk(LENS_DTYPE_UINT8, 4, (int64_t[]){1, 2, 2, 2}, x), txs = T0(LENS_DTYPE_FLOAT32, &xs),
                 txz = T0(LENS_DTYPE_UINT8, &xz), tys = T0(LENS_DTYPE_FLOAT32, &ys), tyz = T0(LENS_DTYPE_UINT8, &yz);
    const tensor *in[] = {&tx, &txs, &txz, &tys, &tyz};
    tensor out[1];
    CHECK(run_op("com.microsoft", "QLinearGlobalAveragePool", NULL, 0, in, 5, out, 1, 0) == LENS_OK);
    CHECK(out[0].rank == 4 && out[0].dims[1] == 2 && out[0].dims[2] == 1 && out[0].dims[3] == 1);
    CHECK(((uint8_t *)out[0].data)[0] == 2 && ((uint8_t *)out[0].data)[1] == 255); /* 2.5 -> 2 */
    free_outputs(out, 1);
    op_attr cl = attr_int("channels_last", 1);
    /* NHWC [1,2,2,2]: channel 0 is 1,3,255,255; channel 1 is 2,4,255,255. y = 2 * avg. */
    ys = 0.5f;
    CHECK(run_op("com.microsoft", "QLinearGlobalAveragePool", &cl, 1, in, 5, out, 1, 0) == LENS_OK);
    CHECK(out[0].dims[1] == 1 && out[0].dims[2] == 1 && out[0].dims[3] == 2);
    CHECK(((uint8_t *)out[0].data)[0] == 255 && ((uint8_t *)out[0].data)[1] == 255);
    free_outputs(out, 1);
    /* Random NCHW with zero points against the formula. */
    uint8_t big[3 * 49];
    for (int i = 0; i < 3 * 49; i++) big[i] = (uint8_t)rnd();
    xs = 0.03f, ys = 0.01f, xz = 77, yz = 3;
    const tensor tbig = mk(LENS_DTYPE_UINT8, 4, (int64_t[]){1, 3, 7, 7}, big);
    const tensor *inb[] = {&tbig, &txs, &txz, &tys, &tyz};
    CHECK(run_op("com.microsoft", "QLinearGlobalAveragePool", NULL, 0, inb, 5, out, 1, 0) == LENS_OK);
    for (int c = 0; c < 3; c++) {
        int32_t sum = 0;
        for (int i = 0; i < 49; i++) sum += big[c * 49 + i] - xz;
        CHECK(((uint8_t *)out[0].data)[c] == ref_requant(sum, xs / (ys * 49.0f), yz, 0, 255));
    }
    free_outputs(out, 1);

    /* Sigmoid and LeakyRelu tables against direct evaluation. */
    uint8_t codes[256];
    for (int i = 0; i < 256; i++) codes[i] = (uint8_t)i;
    float s_in = 0.05f, s_out = 1.0f / 256.0f;
    uint8_t z_in = 128, z_out = 0;
    const tensor tc = T1(LENS_DTYPE_UINT8, 256, codes), tsi = T0(LENS_DTYPE_FLOAT32, &s_in), tzi = T0(LENS_DTYPE_UINT8, &z_in),
                 tso = T0(LENS_DTYPE_FLOAT32, &s_out), tzo = T0(LENS_DTYPE_UINT8, &z_out);
    const tensor *ins[] = {&tc, &tsi, &tzi, &tso, &tzo};
    CHECK(run_op("com.microsoft", "QLinearSigmoid", NULL, 0, ins, 5, out, 1, 0) == LENS_OK);
    int bad = 0;
    for (int i = 0; i < 256; i++) {
        float v = 1.0f / (1.0f + expf(-(float)(i - 128) * s_in));
        int want = (int)nearbyintf(fminf(v / s_out, 255.0f));
        bad += abs(((uint8_t *)out[0].data)[i] - want) > 0;
    }
    CHECK(bad == 0);
    CHECK(((uint8_t *)out[0].data)[255] == 255 && ((uint8_t *)out[0].data)[128] == 128);
    free_outputs(out, 1);
    op_attr alpha = attr_float("alpha", 0.1f);
    s_out = 0.05f, z_out = 100;
    CHECK(run_op("com.microsoft", "QLinearLeakyRelu", &alpha, 1, ins, 5, out, 1, 0) == LENS_OK);
    CHECK(((uint8_t *)out[0].data)[128] == 100 && ((uint8_t *)out[0].data)[200] == 172);
    CHECK(((uint8_t *)out[0].data)[0] == 87); /* -12.8 -> round(-12.8) = -13, + 100 */
    CHECK(((uint8_t *)out[0].data)[255] == 227);
    free_outputs(out, 1);

    /* QLinearConcat along axis 1: the first piece shares the output's parameters, the second is requantized. */
    uint8_t p1[4] = {1, 2, 3, 4}, p2[2] = {10, 20};
    float s1 = 1.0f, s2 = 0.5f;
    uint8_t zz = 0, z2 = 4;
    const tensor tp1 = mk(LENS_DTYPE_UINT8, 2, (int64_t[]){2, 2}, p1), tp2 = mk(LENS_DTYPE_UINT8, 2, (int64_t[]){2, 1}, p2);
    const tensor ts1 = T0(LENS_DTYPE_FLOAT32, &s1), ts2 = T0(LENS_DTYPE_FLOAT32, &s2), tzz = T0(LENS_DTYPE_UINT8, &zz),
                 tz2 = T0(LENS_DTYPE_UINT8, &z2);
    const tensor *inc[] = {&ts1, &tzz, &tp1, &ts1, &tzz, &tp2, &ts2, &tz2};
    op_attr axis = attr_int("axis", 1);
    CHECK(run_op("com.microsoft", "QLinearConcat", &axis, 1, inc, 8, out, 1, 0) == LENS_OK);
    const uint8_t wantc[6] = {1, 2, 3, 3, 4, 8};
    CHECK(out[0].dims[0] == 2 && out[0].dims[1] == 3 && !memcmp(out[0].data, wantc, 6));
    free_outputs(out, 1);
}

/* ---- Kernels: fast versions against the references ---------------------------------------------------------------- */

static void test_kernels(void) {
    CHECK(strlen(kern_qgemm_name()) > 0);
    int bad_gemm = 0, bad_pack = 0;
    for (int iter = 0; iter < 300; iter++) {
        size_t M = (size_t)rnd_int(1, 37), N = (size_t)rnd_int(1, 120), K = (size_t)rnd_int(1, 90);
        if (iter < 20) M = (size_t)iter % 9 + 1, N = (size_t)(iter * 7) % 50 + 1, K = (size_t)iter % 5 + 1;
        int8_t *L = core_aligned_alloc(kern_qgemm_left_bytes(M, K) + 64);
        uint8_t *R = core_aligned_alloc(kern_qgemm_right_bytes(K, N) + 64), *R2 = core_aligned_alloc(kern_qgemm_right_bytes(K, N) + 64);
        uint8_t *src = malloc(K * N + 1), *lsrc = malloc(M * K + 1);
        int32_t *cs = malloc(N * 4), *cs2 = malloc(N * 4), *rs = malloc(M * 4), *bias = malloc(M * 4), *zp = malloc(M * 4);
        float *scale = malloc(M * 4);
        for (size_t i = 0; i < K * N; i++) src[i] = (uint8_t)rnd();
        for (size_t i = 0; i < M * K; i++) lsrc[i] = (uint8_t)rnd();
        for (size_t m = 0; m < M; m++) bias[m] = rnd_int(-100000, 100000), zp[m] = rnd_int(-128, 127), scale[m] = rnd_float(1e-5f, 1e-3f);
        int flip = iter & 1;
        kern_qgemm_pack_left(lsrc, M, K, (ptrdiff_t)K, 1, iter & 2, L, rs);
        kern_qgemm_pack_right(src, K, N, (ptrdiff_t)N, 1, flip, R, cs);
        kern_qgemm_pack_right_ref(src, K, N, (ptrdiff_t)N, 1, flip, R2, cs2);
        bad_pack += memcmp(R, R2, kern_qgemm_right_bytes(K, N)) != 0 || memcmp(cs, cs2, N * 4) != 0;
        /* Three epilogues: int32 with zero points, 8-bit row-major, 8-bit transposed (strided) int8. */
        for (int mode = 0; mode < 3; mode++) {
            size_t elem = mode == 0 ? 4 : 1;
            uint8_t *o1 = calloc(M * N, elem), *o2 = calloc(M * N, elem);
            kern_qgemm_out o = {.row_bias = mode == 2 ? NULL : bias, .row_zp = mode == 1 ? NULL : zp, .col_sums = cs,
                                .scale = mode == 0 ? NULL : scale, .zero_point = mode == 2 ? -5 : 7,
                                .qmin = mode == 2 ? -128 : 0, .qmax = mode == 2 ? 127 : 255, .out = o1,
                                .row_stride = mode == 2 ? 1 : (ptrdiff_t)N, .col_stride = mode == 2 ? (ptrdiff_t)M : 1};
            kern_qgemm(M, N, K, L, R, &o);
            o.out = o2;
            kern_qgemm_ref(M, N, K, L, R, &o);
            bad_gemm += memcmp(o1, o2, M * N * elem) != 0;
            free(o1), free(o2);
        }
        /* The reference itself against a plain triple loop. */
        int32_t *o3 = calloc(M * N, 4);
        kern_qgemm_out oi = {.out = o3, .row_stride = (ptrdiff_t)N, .col_stride = 1};
        kern_qgemm_ref(M, N, K, L, R, &oi);
        for (size_t m = 0; m < M; m++)
            for (size_t n = 0; n < N; n++) {
                int32_t acc = 0;
                for (size_t k = 0; k < K; k++) {
                    int32_t l = iter & 2 ? (int32_t)lsrc[m * K + k] - 128 : (int8_t)lsrc[m * K + k];
                    acc += l * (int32_t)(uint8_t)(src[k * N + n] ^ (flip ? 0x80 : 0));
                }
                bad_gemm += o3[m * N + n] != acc;
            }
        free(o3);
        core_aligned_free(L), core_aligned_free(R), core_aligned_free(R2);
        free(src), free(lsrc), free(cs), free(cs2), free(rs), free(bias), free(zp), free(scale);
    }
    CHECK_MSG(bad_gemm == 0, "%d gemm mismatches", bad_gemm);
    CHECK_MSG(bad_pack == 0, "%d pack mismatches", bad_pack);

    /* Strided right packing (the matmul's transposed A) goes through the reference path. */
    uint8_t t[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, pk[64 * 2];
    int32_t sums[3];
    kern_qgemm_pack_right(t, 4, 3, 1, 4, 0, pk, sums);
    CHECK(pk[0] == 1 && pk[1] == 2 && pk[3] == 4 && pk[4] == 5 && pk[8] == 9 && pk[12] == 0 && sums[2] == 42);

    int bad_dw = 0;
    for (int iter = 0; iter < 200; iter++) {
        kern_qdw_shape s;
        s.in_h = (size_t)rnd_int(1, 20), s.in_w = (size_t)rnd_int(1, 40);
        s.kernel_h = (size_t)rnd_int(1, 5), s.kernel_w = (size_t)rnd_int(1, 5);
        s.stride_h = (size_t)rnd_int(1, 2), s.stride_w = (size_t)rnd_int(1, 3);
        s.dilation_h = (size_t)rnd_int(1, 2), s.dilation_w = iter % 4 == 3 ? 2 : 1;
        s.pad_top = (size_t)rnd_int(0, 2), s.pad_left = (size_t)rnd_int(0, 2);
        size_t pb = (size_t)rnd_int(0, 2), pr = (size_t)rnd_int(0, 2);
        long eh = (long)(s.in_h + s.pad_top + pb) - (long)((s.kernel_h - 1) * s.dilation_h + 1);
        long ew = (long)(s.in_w + s.pad_left + pr) - (long)((s.kernel_w - 1) * s.dilation_w + 1);
        if (eh < 0 || ew < 0) continue;
        s.out_h = (size_t)eh / s.stride_h + 1, s.out_w = (size_t)ew / s.stride_w + 1;
        uint8_t *x = malloc(s.in_h * s.in_w);
        int16_t w[25];
        for (size_t i = 0; i < s.in_h * s.in_w; i++) x[i] = (uint8_t)rnd();
        for (int i = 0; i < 25; i++) w[i] = (int16_t)rnd_int(-255, 255);
        size_t no = s.out_h * s.out_w;
        int int_out = iter % 3 == 0;
        size_t elem = int_out ? 4 : 1;
        uint8_t *o1 = calloc(no, elem), *o2 = calloc(no, elem);
        void *scratch = core_aligned_alloc(kern_qdw_scratch_bytes(&s));
        float scale = rnd_float(1e-4f, 1e-2f);
        int32_t xz = rnd_int(0, 255);
        kern_qdw_out o = {rnd_int(-1000, 1000), int_out ? NULL : &scale, iter & 1 ? -3 : 9, iter & 1 ? -128 : 0,
                          iter & 1 ? 127 : 255, o1};
        kern_qdwconv(&s, x, iter & 2, xz, w, &o, scratch);
        o.out = o2;
        kern_qdwconv_ref(&s, x, iter & 2, xz, w, &o);
        bad_dw += memcmp(o1, o2, no * elem) != 0;
        core_aligned_free(scratch);
        free(x), free(o1), free(o2);
    }
    CHECK_MSG(bad_dw == 0, "%d depthwise mismatches", bad_dw);

    int bad_el = 0;
    for (int iter = 0; iter < 100; iter++) {
        size_t n = (size_t)rnd_int(1, 100);
        uint8_t a[100], b[100], o1[100], o2[100];
        float f[100];
        for (size_t i = 0; i < n; i++) a[i] = (uint8_t)rnd(), b[i] = (uint8_t)rnd(), f[i] = rnd_float(-300, 300);
        f[0] = 2.5f, f[n - 1] = -3.5f;
        kern_qbinary p = {iter & 1, rnd_float(0.01f, 0.1f), rnd_float(0.01f, 0.1f), rnd_float(0.01f, 0.2f),
                          rnd_int(0, 255), rnd_int(0, 255), rnd_int(0, 255), 0, 255};
        if (iter & 2) p.qmin = -128, p.qmax = 127, p.a_zp -= 128, p.b_zp -= 128, p.c_zp -= 128;
        size_t as = iter % 5 == 0 ? 0 : 1, bs = iter % 7 == 0 ? 0 : 1;
        kern_qbinary_run(&p, a, as, b, bs, o1, n);
        kern_qbinary_ref(&p, a, as, b, bs, o2, n);
        bad_el += memcmp(o1, o2, n) != 0;
        kern_quantize_f32(f, n, 1.0f, p.c_zp, p.qmin, p.qmax, o1);
        kern_quantize_f32_ref(f, n, 1.0f, p.c_zp, p.qmin, p.qmax, o2);
        bad_el += memcmp(o1, o2, n) != 0;
        /* 2.5 rounds to 2 and -3.5 to -4 (ties to even). */
        if (n > 1 && p.c_zp + 2 <= p.qmax) bad_el += o1[0] != (uint8_t)(p.c_zp + 2);
        if (n > 1 && p.c_zp - 4 >= p.qmin) bad_el += o1[n - 1] != (uint8_t)(p.c_zp - 4);
    }
    CHECK_MSG(bad_el == 0, "%d element-wise mismatches", bad_el);
}

int main(void) {
    if (core_pool_create(2, &pool2) != LENS_OK) pool2 = NULL;
    test_quantize();
    test_dynamic_quantize();
    test_conv();
    test_conv_ties();
    test_matmul();
    test_binary();
    test_pool_and_tables();
    test_kernels();
    core_pool_free(pool2);
    return test_finish("test_quant_ops");
}
