/* test_linalg_pool_norm.c — Gemm, MatMul, Einsum, MaxPool, AveragePool, the global pools and the normalisations,
 * each through its op_def (infer, prepare, run) against straightforward loops written here, with and without a
 * thread pool and prepared weights; plus the dtype and shape errors. */
#include <float.h>
#include <string.h>

#include "kernels/conv.h"
#include "ops/ops.h"
#include "test.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static float *rnd(size_t n) {
    float *p = malloc(n * sizeof *p + 4);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

static core_pool *pool2;

static tensor make(lens_dtype dtype, int rank, const int64_t *dims, void *data) {
    tensor t = {dtype, rank, {0}, data};
    for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
    return t;
}

/* infer, allocate outputs (caller frees outs[i]->data), prepare when asked, run, release. */
static lens_status run_op(const char *type, const op_attr *attrs, int n_attrs, const tensor *const *ins, int n_in,
                          tensor *const *outs, int n_out, core_pool *pool, int prepare) {
    const op_def *def = ops_lookup("", type);
    if (!def) return core_fail(LENS_ERR_UNSUPPORTED, "no op %s", type);
    op_node node = {"t", type, "", 17, n_attrs, attrs};
    op_call call = {&node, n_in, ins, n_out, outs, pool, NULL, NULL, 0, 0};
    for (int i = 0; i < n_out; i++)
        if (outs[i]) outs[i]->data = NULL;
    lens_status st = def->infer(&call);
    if (st) return st;
    for (int i = 0; i < n_out; i++)
        if (outs[i]) outs[i]->data = calloc(1, tensor_bytes(outs[i]) + 8);
    void *state = NULL;
    if (prepare && def->prepare && (st = def->prepare(&call, &state))) return st;
    call.state = state;
    call.scratch = call.scratch_bytes ? core_aligned_alloc(call.scratch_bytes) : NULL;
    st = def->run(&call);
    core_aligned_free(call.scratch);
    if (def->release) def->release(state);
    return st;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* ---- Gemm -------------------------------------------------------------------------------------------------------- */

static void test_gemm(void) {
    static const struct { int64_t M, N, K; int ta, tb; float alpha, beta; int c_kind; } cases[] = {
        {3, 4, 5, 0, 0, 1, 1, 0},     {3, 4, 5, 1, 0, 1, 1, 1},    {3, 4, 5, 0, 1, 0.5f, 1, 2},
        {3, 4, 5, 1, 1, 0.25f, 0.35f, 3}, {7, 1, 3, 0, 0, 1, 1, 4}, {5, 6, 7, 0, 1, 1, 2, 5},
        {1, 33, 64, 0, 1, 1, 1, 3},   {17, 9, 31, 0, 0, 2, 0.5f, 2}, {64, 70, 96, 0, 1, 1, 1, 3},
        {2, 3, 1, 0, 0, 1, 0, 5},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++)
        for (int mode = 0; mode < 4; mode++) {
            int64_t M = cases[ci].M, N = cases[ci].N, K = cases[ci].K;
            int ta = cases[ci].ta, tb = cases[ci].tb, ck = cases[ci].c_kind;
            float alpha = cases[ci].alpha, beta = cases[ci].beta;
            float *a = rnd((size_t)(M * K)), *b = rnd((size_t)(K * N)), *c = rnd((size_t)(M * N));
            int64_t ad[2] = {ta ? K : M, ta ? M : K}, bd[2] = {tb ? N : K, tb ? K : N};
            /* c_kind: 0 none, 1 scalar, 2 [N], 3 [1,N], 4 [M,1], 5 [M,N] */
            int64_t cd[2];
            int crank = 0;
            if (ck == 2) cd[0] = N, crank = 1;
            if (ck == 3) cd[0] = 1, cd[1] = N, crank = 2;
            if (ck == 4) cd[0] = M, cd[1] = 1, crank = 2;
            if (ck == 5) cd[0] = M, cd[1] = N, crank = 2;
            tensor ta_t = make(LENS_DTYPE_FLOAT32, 2, ad, a), tb_t = make(LENS_DTYPE_FLOAT32, 2, bd, b);
            tensor tc = make(LENS_DTYPE_FLOAT32, crank, cd, c), ty;
            const tensor *ins[3] = {&ta_t, &tb_t, &tc};
            tensor *outs[1] = {&ty};
            op_attr attrs[5] = {{.name = "transA", .type = OP_ATTR_INT, .i = ta},
                                {.name = "transB", .type = OP_ATTR_INT, .i = tb},
                                {.name = "alpha", .type = OP_ATTR_FLOAT, .f = alpha},
                                {.name = "beta", .type = OP_ATTR_FLOAT, .f = beta},
                                {.name = "lens.activation", .type = OP_ATTR_STRING, .s = "Relu"}};
            int relu = ci % 3 == 1;
            lens_status st = run_op("Gemm", attrs, relu ? 5 : 4, ins, ck ? 3 : 2, outs, 1, mode & 1 ? pool2 : NULL,
                                    mode >> 1);
            CHECK_MSG(st == LENS_OK, "%s", core_last_error());
            CHECK(ty.rank == 2 && ty.dims[0] == M && ty.dims[1] == N);
            float *e = malloc((size_t)(M * N) * sizeof *e);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double s = 0;
                    for (int64_t k = 0; k < K; k++)
                        s += (double)(ta ? a[k * M + i] : a[i * K + k]) * (tb ? b[j * K + k] : b[k * N + j]);
                    double cv = 0;
                    if (ck == 1) cv = c[0];
                    if (ck == 2 || ck == 3) cv = c[j];
                    if (ck == 4) cv = c[i];
                    if (ck == 5) cv = c[i * N + j];
                    double v = alpha * s + beta * cv;
                    e[i * N + j] = (float)(relu && v < 0 ? 0 : v);
                }
            double d = st ? 1e9 : max_diff(ty.data, e, (size_t)(M * N));
            CHECK_MSG(d < 1e-4, "Gemm case %zu mode %d: max diff %g", ci, mode, d);
            free(a), free(b), free(c), free(e), free(ty.data);
        }
    /* errors */
    float buf[64] = {0};
    int64_t d1[2] = {3, 4}, d2[2] = {5, 6}, d3[2] = {3, 5};
    tensor a = make(LENS_DTYPE_FLOAT32, 2, d1, buf), b = make(LENS_DTYPE_FLOAT32, 2, d2, buf), y;
    const tensor *ins[3] = {&a, &b, NULL};
    tensor *outs[1] = {&y};
    CHECK(run_op("Gemm", NULL, 0, ins, 2, outs, 1, NULL, 0) == LENS_ERR_SHAPE);
    CHECK(strstr(core_last_error(), "[3,4]") && strstr(core_last_error(), "[5,6]"));
    b.dims[0] = 4;
    tensor c = make(LENS_DTYPE_FLOAT32, 2, d3, buf);
    ins[2] = &c;
    CHECK(run_op("Gemm", NULL, 0, ins, 3, outs, 1, NULL, 0) == LENS_ERR_SHAPE); /* C [3,5] vs [3,6] */
    a.dtype = LENS_DTYPE_FLOAT64;
    CHECK(run_op("Gemm", NULL, 0, ins, 2, outs, 1, NULL, 0) == LENS_ERR_UNSUPPORTED);
    CHECK(strstr(core_last_error(), "float64") != NULL);
}

/* ---- MatMul ------------------------------------------------------------------------------------------------------ */

/* Reference numpy matmul for rank >= 2 operands already expanded to rank r (1-D handled by the caller's dims). */
static void matmul_ref(const tensor *a, const tensor *b, const tensor *y, float *out) {
    int r = y->rank;
    int64_t M = y->dims[r - 2], N = y->dims[r - 1], K = a->dims[a->rank - 1];
    int64_t batch = 1;
    for (int i = 0; i < r - 2; i++) batch *= y->dims[i];
    for (int64_t t = 0; t < batch; t++) {
        /* decode t into y's batch index, then into a's and b's with broadcasting */
        int64_t idx[TENSOR_MAX_RANK], rem = t;
        for (int i = r - 3; i >= 0; i--) idx[i] = rem % y->dims[i], rem /= y->dims[i];
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < a->rank - 2; i++) {
            int yi = i + (r - a->rank);
            oa = oa * a->dims[i] + (a->dims[i] == 1 ? 0 : idx[yi]);
        }
        for (int i = 0; i < b->rank - 2; i++) {
            int yi = i + (r - b->rank);
            ob = ob * b->dims[i] + (b->dims[i] == 1 ? 0 : idx[yi]);
        }
        const float *pa = (const float *)a->data + oa * M * K, *pb = (const float *)b->data + ob * K * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += (double)pa[i * K + k] * pb[k * N + j];
                out[(t * M + i) * N + j] = (float)s;
            }
    }
}

static void test_matmul(void) {
    static const struct { int ra; int64_t a[4]; int rb; int64_t b[4]; int ry; int64_t y[4]; } cases[] = {
        {2, {3, 4}, 2, {4, 3}, 2, {3, 3}},
        {3, {2, 3, 4}, 3, {2, 4, 3}, 3, {2, 3, 3}},
        {4, {1, 2, 3, 4}, 4, {1, 2, 4, 3}, 4, {1, 2, 3, 3}},
        {3, {4, 5, 16}, 2, {16, 7}, 3, {4, 5, 7}},          /* stacked into one product */
        {4, {2, 1, 3, 5}, 3, {4, 5, 6}, 4, {2, 4, 3, 6}},    /* broadcast both ways */
        {2, {3, 5}, 3, {6, 5, 2}, 3, {6, 3, 2}},             /* A broadcast */
        {3, {24, 9, 8}, 3, {24, 8, 9}, 3, {24, 9, 9}},       /* many small products */
        {1, {5}, 2, {5, 3}, 1, {3}},                         /* 1-D A */
        {2, {4, 5}, 1, {5}, 1, {4}},                         /* 1-D B */
        {1, {7}, 1, {7}, 0, {0}},                            /* dot */
        {3, {2, 3, 5}, 1, {5}, 2, {2, 3}},
        {1, {5}, 3, {2, 5, 4}, 2, {2, 4}},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++)
        for (int mode = 0; mode < 4; mode++) {
            tensor a = make(LENS_DTYPE_FLOAT32, cases[ci].ra, cases[ci].a, NULL);
            tensor b = make(LENS_DTYPE_FLOAT32, cases[ci].rb, cases[ci].b, NULL);
            a.data = rnd((size_t)tensor_numel(&a));
            b.data = rnd((size_t)tensor_numel(&b));
            tensor y;
            const tensor *ins[2] = {&a, &b};
            tensor *outs[1] = {&y};
            lens_status st = run_op("MatMul", NULL, 0, ins, 2, outs, 1, mode & 1 ? pool2 : NULL, mode >> 1);
            CHECK_MSG(st == LENS_OK, "%s", core_last_error());
            int shape_ok = y.rank == cases[ci].ry;
            for (int i = 0; shape_ok && i < y.rank; i++) shape_ok = y.dims[i] == cases[ci].y[i];
            CHECK_MSG(shape_ok, "MatMul case %zu: output shape", ci);
            /* expand 1-D operands for the reference */
            tensor ea = a, eb = b, ey = y;
            if (a.rank == 1) ea.rank = 2, ea.dims[1] = a.dims[0], ea.dims[0] = 1;
            if (b.rank == 1) eb.rank = 2, eb.dims[1] = 1;
            int r = ea.rank > eb.rank ? ea.rank : eb.rank;
            ey.rank = r;
            for (int i = 0; i < r - 2; i++) {
                int ia = i - (r - ea.rank), ib = i - (r - eb.rank);
                int64_t da = ia >= 0 ? ea.dims[ia] : 1, db = ib >= 0 ? eb.dims[ib] : 1;
                ey.dims[i] = da > db ? da : db;
            }
            ey.dims[r - 2] = ea.dims[ea.rank - 2], ey.dims[r - 1] = eb.dims[eb.rank - 1];
            size_t n = (size_t)tensor_numel(&ey);
            float *e = malloc(n * sizeof *e);
            matmul_ref(&ea, &eb, &ey, e);
            double d = st || !shape_ok ? 1e9 : max_diff(y.data, e, n);
            CHECK_MSG(d < 1e-4, "MatMul case %zu mode %d: max diff %g", ci, mode, d);
            free(a.data), free(b.data), free(e), free(y.data);
        }
    float buf[64] = {0};
    int64_t d1[3] = {2, 3, 4}, d2[3] = {3, 4, 5};
    tensor a = make(LENS_DTYPE_FLOAT32, 3, d1, buf), b = make(LENS_DTYPE_FLOAT32, 3, d2, buf), y;
    const tensor *ins[2] = {&a, &b};
    tensor *outs[1] = {&y};
    CHECK(run_op("MatMul", NULL, 0, ins, 2, outs, 1, NULL, 0) == LENS_ERR_SHAPE); /* batch 2 vs 3 */
    b.dims[1] = 5;
    CHECK(run_op("MatMul", NULL, 0, ins, 2, outs, 1, NULL, 0) == LENS_ERR_SHAPE); /* K 4 vs 5 */
    b.dtype = LENS_DTYPE_INT64;
    CHECK(run_op("MatMul", NULL, 0, ins, 2, outs, 1, NULL, 0) == LENS_ERR_UNSUPPORTED);
}

/* ---- Einsum ------------------------------------------------------------------------------------------------------ */

static lens_status einsum(const char *eq, const tensor *const *ins, int n, tensor *y, core_pool *pool) {
    op_attr a = {.name = "equation", .type = OP_ATTR_STRING, .s = eq};
    tensor *outs[1] = {y};
    return run_op("Einsum", &a, 1, ins, n, outs, 1, pool, 0);
}

static void test_einsum(void) {
    core_pool *pools[2] = {NULL, pool2};
    for (int pi = 0; pi < 2; pi++) {
        core_pool *pool = pools[pi];
        const int64_t B = 2, H = 3, I = 5, J = 6, D = 4;
        /* attention scores and context, both ways round */
        {
            int64_t qd[4] = {B, H, I, D}, kd[4] = {B, H, J, D}, vd[4] = {B, H, J, D};
            tensor q = make(LENS_DTYPE_FLOAT32, 4, qd, rnd((size_t)(B * H * I * D)));
            tensor k = make(LENS_DTYPE_FLOAT32, 4, kd, rnd((size_t)(B * H * J * D)));
            tensor v = make(LENS_DTYPE_FLOAT32, 4, vd, rnd((size_t)(B * H * J * D)));
            tensor s, ctx;
            const tensor *in1[2] = {&q, &k};
            CHECK(einsum("bhid,bhjd->bhij", in1, 2, &s, pool) == LENS_OK);
            CHECK(s.rank == 4 && s.dims[2] == I && s.dims[3] == J);
            double worst = 0;
            const float *Q = q.data, *K = k.data, *V = v.data, *S = s.data;
            for (int64_t bh = 0; bh < B * H; bh++)
                for (int64_t i = 0; i < I; i++)
                    for (int64_t j = 0; j < J; j++) {
                        double e = 0;
                        for (int64_t d = 0; d < D; d++) e += (double)Q[(bh * I + i) * D + d] * K[(bh * J + j) * D + d];
                        worst = fmax(worst, fabs(e - S[(bh * I + i) * J + j]));
                    }
            CHECK_MSG(worst < 1e-5, "bhid,bhjd->bhij: %g", worst);
            const tensor *in2[2] = {&s, &v};
            CHECK(einsum("bhij,bhjd->bhid", in2, 2, &ctx, pool) == LENS_OK);
            worst = 0;
            const float *C = ctx.data;
            for (int64_t bh = 0; bh < B * H; bh++)
                for (int64_t i = 0; i < I; i++)
                    for (int64_t d = 0; d < D; d++) {
                        double e = 0;
                        for (int64_t j = 0; j < J; j++) e += (double)S[(bh * I + i) * J + j] * V[(bh * J + j) * D + d];
                        worst = fmax(worst, fabs(e - C[(bh * I + i) * D + d]));
                    }
            CHECK_MSG(worst < 1e-5, "bhij,bhjd->bhid: %g", worst);
            /* output stored transposed relative to the product: bhid,bhjd->bhji */
            tensor st;
            CHECK(einsum("bhid,bhjd->bhji", in1, 2, &st, pool) == LENS_OK);
            worst = 0;
            for (int64_t bh = 0; bh < B * H; bh++)
                for (int64_t i = 0; i < I; i++)
                    for (int64_t j = 0; j < J; j++)
                        worst = fmax(worst, fabs(((float *)st.data)[(bh * J + j) * I + i] - S[(bh * I + i) * J + j]));
            CHECK_MSG(worst < 1e-5, "bhid,bhjd->bhji: %g", worst);
            /* the same with an ellipsis and implicit output */
            tensor se;
            CHECK(einsum("...id,...jd", in1, 2, &se, pool) == LENS_OK);
            CHECK(se.rank == 4 && se.dims[0] == B && se.dims[1] == H && se.dims[2] == I && se.dims[3] == J);
            free(q.data), free(k.data), free(v.data), free(s.data), free(ctx.data), free(st.data), free(se.data);
        }
        /* 3-D and 2-D patterns */
        {
            int64_t ad[3] = {B, I, D}, bd[3] = {B, J, D}, cd[3] = {B, I, J}, md[2] = {D, J};
            tensor a = make(LENS_DTYPE_FLOAT32, 3, ad, rnd((size_t)(B * I * D)));
            tensor b = make(LENS_DTYPE_FLOAT32, 3, bd, rnd((size_t)(B * J * D)));
            tensor c = make(LENS_DTYPE_FLOAT32, 3, cd, rnd((size_t)(B * I * J)));
            tensor m = make(LENS_DTYPE_FLOAT32, 2, md, rnd((size_t)(D * J)));
            const float *A = a.data, *Bm = b.data, *Cm = c.data, *Mm = m.data;
            tensor y1, y2, y3, y4;
            const tensor *i1[2] = {&a, &b}, *i2[2] = {&c, &b}, *i3[2] = {&a, &m};
            CHECK(einsum("bid,bjd->bij", i1, 2, &y1, pool) == LENS_OK);
            CHECK(einsum("bij,bjd->bid", i2, 2, &y2, pool) == LENS_OK);
            CHECK(einsum("bik,kj->bij", i3, 2, &y3, pool) == LENS_OK);
            tensor a2 = make(LENS_DTYPE_FLOAT32, 2, ad + 1, a.data);
            const tensor *i4[2] = {&a2, &m};
            CHECK(einsum("ij,jk->ik", i4, 2, &y4, pool) == LENS_OK);
            double w1 = 0, w2 = 0, w3 = 0, w4 = 0;
            for (int64_t bb = 0; bb < B; bb++)
                for (int64_t i = 0; i < I; i++) {
                    for (int64_t j = 0; j < J; j++) {
                        double e = 0, e3 = 0;
                        for (int64_t d = 0; d < D; d++) {
                            e += (double)A[(bb * I + i) * D + d] * Bm[(bb * J + j) * D + d];
                            e3 += (double)A[(bb * I + i) * D + d] * Mm[d * J + j];
                        }
                        w1 = fmax(w1, fabs(e - ((float *)y1.data)[(bb * I + i) * J + j]));
                        w3 = fmax(w3, fabs(e3 - ((float *)y3.data)[(bb * I + i) * J + j]));
                        if (bb == 0) w4 = fmax(w4, fabs(e3 - ((float *)y4.data)[i * J + j]));
                    }
                    for (int64_t d = 0; d < D; d++) {
                        double e = 0;
                        for (int64_t j = 0; j < J; j++)
                            e += (double)Cm[(bb * I + i) * J + j] * Bm[(bb * J + j) * D + d];
                        w2 = fmax(w2, fabs(e - ((float *)y2.data)[(bb * I + i) * D + d]));
                    }
                }
            CHECK_MSG(w1 < 1e-5 && w2 < 1e-5 && w3 < 1e-5 && w4 < 1e-5, "3-D einsum: %g %g %g %g", w1, w2, w3, w4);
            free(a.data), free(b.data), free(c.data), free(m.data);
            free(y1.data), free(y2.data), free(y3.data), free(y4.data);
        }
        /* ...ij,...jk->...ik with broadcasting ellipsis dims: [2,3,4,5] x [3,5,6] and [2,1,4,5] x [3,5,6] */
        for (int bc = 0; bc < 2; bc++) {
            int64_t ad[4] = {2, bc ? 1 : 3, 4, 5}, bd[3] = {3, 5, 6};
            tensor a = make(LENS_DTYPE_FLOAT32, 4, ad, rnd((size_t)(2 * ad[1] * 20)));
            tensor b = make(LENS_DTYPE_FLOAT32, 3, bd, rnd(90));
            tensor y;
            const tensor *ins[2] = {&a, &b};
            CHECK(einsum("...ij,...jk->...ik", ins, 2, &y, pool) == LENS_OK);
            CHECK(y.rank == 4 && y.dims[0] == 2 && y.dims[1] == 3 && y.dims[2] == 4 && y.dims[3] == 6);
            double w = 0;
            for (int64_t p = 0; p < 2; p++)
                for (int64_t q = 0; q < 3; q++)
                    for (int64_t i = 0; i < 4; i++)
                        for (int64_t k = 0; k < 6; k++) {
                            double e = 0;
                            for (int64_t j = 0; j < 5; j++)
                                e += (double)((float *)a.data)[((p * ad[1] + (bc ? 0 : q)) * 4 + i) * 5 + j] *
                                     ((float *)b.data)[(q * 5 + j) * 6 + k];
                            w = fmax(w, fabs(e - ((float *)y.data)[((p * 3 + q) * 4 + i) * 6 + k]));
                        }
            CHECK_MSG(w < 1e-5, "...ij,...jk->...ik (broadcast %d): %g", bc, w);
            free(a.data), free(b.data), free(y.data);
        }
        /* generic loops: transpose, row sums, inner product, diagonal, three operands, float64 */
        {
            int64_t xd[2] = {3, 4};
            float xv[12];
            for (int i = 0; i < 12; i++) xv[i] = (float)(i + 1);
            tensor x = make(LENS_DTYPE_FLOAT32, 2, xd, xv), y;
            const tensor *ins[3] = {&x, &x, &x};
            CHECK(einsum("ij->ji", ins, 1, &y, pool) == LENS_OK);
            CHECK(y.rank == 2 && y.dims[0] == 4 && ((float *)y.data)[1] == 5.0f && ((float *)y.data)[3] == 2.0f);
            free(y.data);
            CHECK(einsum("ij->i", ins, 1, &y, pool) == LENS_OK);
            CHECK(y.rank == 1 && ((float *)y.data)[0] == 10.0f && ((float *)y.data)[2] == 42.0f);
            free(y.data);
            CHECK(einsum("ij,ij->", ins, 2, &y, pool) == LENS_OK); /* sum of squares 1..12 = 650 */
            CHECK(y.rank == 0 && ((float *)y.data)[0] == 650.0f);
            free(y.data);
            CHECK(einsum("ij,ij,ij->j", ins, 3, &y, pool) == LENS_OK); /* column sums of cubes */
            CHECK(y.rank == 1 && ((float *)y.data)[0] == 1.0f + 125.0f + 729.0f);
            free(y.data);
            int64_t dd[3] = {2, 3, 3};
            double dv[18];
            for (int i = 0; i < 18; i++) dv[i] = i;
            tensor xd64 = make(LENS_DTYPE_FLOAT64, 3, dd, dv);
            const tensor *in64[1] = {&xd64};
            CHECK(einsum("...ii ->...i", in64, 1, &y, pool) == LENS_OK);
            CHECK(y.dtype == LENS_DTYPE_FLOAT64 && y.rank == 2 && y.dims[0] == 2 && y.dims[1] == 3);
            CHECK(((double *)y.data)[0] == 0 && ((double *)y.data)[1] == 4 && ((double *)y.data)[5] == 17);
            free(y.data);
            CHECK(einsum("bii->b", in64, 1, &y, pool) == LENS_OK); /* traces: 0+4+8, 9+13+17 */
            CHECK(((double *)y.data)[0] == 12 && ((double *)y.data)[1] == 39);
            free(y.data);
            int64_t vd[1] = {5};
            float v1[5] = {1, 2, 3, 4, 5}, v2[5] = {2, 2, 2, 2, 2};
            tensor a = make(LENS_DTYPE_FLOAT32, 1, vd, v1), b = make(LENS_DTYPE_FLOAT32, 1, vd, v2);
            const tensor *iv[2] = {&a, &b};
            CHECK(einsum("i,i", iv, 2, &y, pool) == LENS_OK);
            CHECK(y.rank == 0 && ((float *)y.data)[0] == 30.0f);
            free(y.data);
            CHECK(einsum("i,j->ij", iv, 2, &y, pool) == LENS_OK); /* outer product */
            CHECK(y.rank == 2 && ((float *)y.data)[7] == 4.0f && ((float *)y.data)[24] == 10.0f);
            free(y.data);
            /* errors */
            CHECK(einsum("ij,jk->ik", ins, 2, &y, pool) == LENS_ERR_SHAPE); /* j: 4 vs 3 */
            CHECK(einsum("ij->k", ins, 1, &y, pool) == LENS_ERR_INVALID_ARGUMENT);
            CHECK(einsum("i$->i", ins, 1, &y, pool) == LENS_ERR_INVALID_ARGUMENT);
            CHECK(einsum("ijk->i", ins, 1, &y, pool) == LENS_ERR_SHAPE);
        }
    }
}

/* ---- Pools ------------------------------------------------------------------------------------------------------- */

typedef struct pool_case {
    int is_max, spatial;
    int64_t n, c, in[3], k[3], s[3], d[3], pads[6];
    const char *auto_pad;
    int ceil_mode, count_include_pad;
} pool_case;

/* Direct window loops; pads gives begin then end per axis (after auto_pad resolution). */
static void pool_ref(const pool_case *p, const int64_t *pb, const int64_t *out, const float *x, float *y) {
    int s = p->spatial;
    int64_t in_size = 1, out_size = 1;
    for (int i = 0; i < s; i++) in_size *= p->in[i], out_size *= out[i];
    for (int64_t plane = 0; plane < p->n * p->c; plane++)
        for (int64_t o = 0; o < out_size; o++) {
            int64_t oi[3] = {0, 0, 0}, rem = o;
            for (int i = s - 1; i >= 0; i--) oi[i] = rem % out[i], rem /= out[i];
            double acc = p->is_max ? -INFINITY : 0;
            int64_t count = 0, count_pad = 0;
            int64_t kvol = 1;
            for (int i = 0; i < s; i++) kvol *= p->k[i];
            for (int64_t t = 0; t < kvol; t++) {
                int64_t ti[3] = {0, 0, 0}, r2 = t, off = 0, inside = 1, in_padded = 1;
                for (int i = s - 1; i >= 0; i--) ti[i] = r2 % p->k[i], r2 /= p->k[i];
                for (int i = 0; i < s; i++) {
                    int64_t pos = oi[i] * p->s[i] - pb[i] + ti[i] * p->d[i];
                    if (pos < 0 || pos >= p->in[i]) inside = 0;
                    if (pos < -pb[i] || pos >= p->in[i] + p->pads[s + i]) in_padded = 0;
                    off = off * p->in[i] + pos;
                }
                count_pad += in_padded;
                if (!inside) continue;
                count++;
                double v = x[plane * in_size + off];
                if (p->is_max) acc = v > acc ? v : acc;
                else acc += v;
            }
            if (!p->is_max) acc /= (double)(p->count_include_pad ? count_pad : count);
            y[plane * out_size + o] = (float)acc;
        }
}

static void test_pools(void) {
    static const pool_case cases[] = {
        /* max spatial n c in k s d pads auto ceil cip */
        {1, 2, 1, 3, {32, 32}, {2, 2}, {1, 1}, {1, 1}, {0}, NULL, 0, 0},
        {1, 2, 1, 1, {4, 4}, {3, 3}, {2, 2}, {1, 1}, {0}, NULL, 1, 0},                 /* ceil */
        {1, 2, 1, 1, {4, 4}, {2, 2}, {1, 1}, {2, 2}, {0}, NULL, 0, 0},                 /* dilations */
        {1, 2, 2, 3, {13, 13}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL, 0, 0},      /* resnet stem */
        {1, 2, 1, 2, {7, 9}, {3, 2}, {2, 3}, {1, 1}, {1, 0, 0, 1}, NULL, 1, 0},
        {1, 2, 1, 3, {32, 32}, {2, 2}, {1, 1}, {1, 1}, {0}, "SAME_UPPER", 0, 0},
        {1, 2, 1, 3, {32, 32}, {2, 2}, {1, 1}, {1, 1}, {0}, "SAME_LOWER", 0, 0},
        {1, 2, 1, 1, {5, 5}, {3, 3}, {2, 2}, {1, 1}, {0}, "SAME_UPPER", 0, 0},
        {1, 1, 1, 3, {32}, {2}, {1}, {1}, {0}, NULL, 0, 0},                              /* 1-D */
        {1, 3, 1, 2, {6, 5, 7}, {2, 2, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1, 0, 0, 1}, NULL, 0, 0}, /* 3-D */
        {0, 2, 1, 3, {32, 32}, {2, 2}, {1, 1}, {1, 1}, {0}, NULL, 0, 0},
        {0, 2, 1, 1, {4, 4}, {3, 3}, {2, 2}, {1, 1}, {0}, NULL, 1, 0},
        {0, 2, 1, 3, {28, 28}, {3, 3}, {1, 1}, {1, 1}, {2, 2, 2, 2}, NULL, 0, 0},
        {0, 2, 1, 3, {28, 28}, {3, 3}, {1, 1}, {1, 1}, {2, 2, 2, 2}, NULL, 0, 1},       /* count_include_pad */
        {0, 2, 2, 2, {7, 7}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL, 1, 1},         /* ceil + include pad */
        {0, 2, 1, 3, {32, 32}, {2, 2}, {1, 1}, {1, 1}, {0}, "SAME_LOWER", 0, 0},
        {0, 2, 1, 1, {5, 5}, {3, 3}, {2, 2}, {1, 1}, {0}, "SAME_UPPER", 0, 0},
        {0, 2, 1, 2, {9, 9}, {3, 3}, {1, 1}, {2, 2}, {1, 1, 1, 1}, NULL, 0, 0},         /* dilated average */
        {0, 1, 1, 3, {32}, {2}, {1}, {1}, {0}, NULL, 0, 0},
        {0, 3, 1, 3, {8, 8, 8}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, {0}, NULL, 0, 0},
        {0, 2, 1, 4, {7, 7}, {7, 7}, {1, 1}, {1, 1}, {0}, NULL, 0, 0},                  /* global-like */
        {1, 2, 1, 4, {112, 112}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL, 0, 0},    /* resnet stem, full size */
        /* rows wider than one chunk of the row-wise path, windows near and past its span */
        {1, 2, 1, 1, {3, 2600}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL, 0, 0},
        {0, 2, 1, 1, {3, 2600}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL, 1, 1},
        {1, 1, 1, 2, {1200}, {3}, {1}, {500}, {0}, NULL, 0, 0},
        {0, 1, 1, 1, {1200}, {3}, {1}, {500}, {0}, NULL, 0, 0},
        {1, 1, 1, 1, {1500}, {3}, {2}, {600}, {7, 3}, NULL, 0, 0},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const pool_case *p = &cases[ci];
        int s = p->spatial;
        int64_t pb[3] = {0}, out[3];
        pool_case q = *p;
        for (int i = 0; i < s; i++) {
            int64_t span = (p->k[i] - 1) * p->d[i] + 1;
            if (p->auto_pad) {
                out[i] = (p->in[i] + p->s[i] - 1) / p->s[i];
                int64_t total = (out[i] - 1) * p->s[i] + span - p->in[i];
                if (total < 0) total = 0;
                pb[i] = !strcmp(p->auto_pad, "SAME_UPPER") ? total / 2 : total - total / 2;
                q.pads[s + i] = total - pb[i];
            } else {
                pb[i] = p->pads[i];
                int64_t padded = p->in[i] + p->pads[i] + p->pads[s + i] - span;
                out[i] = (p->ceil_mode ? (padded + p->s[i] - 1) / p->s[i] : padded / p->s[i]) + 1;
                if (p->ceil_mode && (out[i] - 1) * p->s[i] >= p->in[i] + pb[i]) out[i]--;
            }
        }
        int64_t xd[5] = {p->n, p->c, p->in[0], p->in[1], p->in[2]};
        tensor x = make(LENS_DTYPE_FLOAT32, 2 + s, xd, NULL);
        size_t nx = (size_t)tensor_numel(&x), ny = (size_t)(p->n * p->c);
        for (int i = 0; i < s; i++) ny *= (size_t)out[i];
        x.data = rnd(nx);
        /* NaN inputs: max pools skip them, as the reference does (no window here is all NaN) */
        for (size_t i = 5; p->is_max && i < nx; i += 11) ((float *)x.data)[i] = NAN;
        float *e = malloc(ny * sizeof *e);
        pool_ref(&q, pb, out, x.data, e);
        op_attr attrs[8];
        int na = 0;
        attrs[na++] = (op_attr){.name = "kernel_shape", .type = OP_ATTR_INTS, .ints = p->k, .count = (size_t)s};
        attrs[na++] = (op_attr){.name = "strides", .type = OP_ATTR_INTS, .ints = p->s, .count = (size_t)s};
        attrs[na++] = (op_attr){.name = "dilations", .type = OP_ATTR_INTS, .ints = p->d, .count = (size_t)s};
        if (p->auto_pad) attrs[na++] = (op_attr){.name = "auto_pad", .type = OP_ATTR_STRING, .s = p->auto_pad};
        else attrs[na++] = (op_attr){.name = "pads", .type = OP_ATTR_INTS, .ints = p->pads, .count = 2 * (size_t)s};
        attrs[na++] = (op_attr){.name = "ceil_mode", .type = OP_ATTR_INT, .i = p->ceil_mode};
        attrs[na++] = (op_attr){.name = "count_include_pad", .type = OP_ATTR_INT, .i = p->count_include_pad};
        /* every build of the row kernel this CPU runs (kern_pool_row), on one thread and on a pool */
        for (int isa = KERN_CONV_ISA_GENERIC; isa <= KERN_CONV_ISA_AVX512; isa++) {
            if (!kern_conv_force_isa((kern_conv_isa)isa)) continue;
            for (int pi = 0; pi < 2; pi++) {
                tensor y;
                const tensor *ins[1] = {&x};
                tensor *outs[1] = {&y};
                lens_status st = run_op(p->is_max ? "MaxPool" : "AveragePool", attrs, na, ins, 1, outs, 1,
                                        pi ? pool2 : NULL, 0);
                CHECK_MSG(st == LENS_OK, "%s", core_last_error());
                int shape_ok = y.rank == 2 + s;
                for (int i = 0; shape_ok && i < s; i++) shape_ok = y.dims[2 + i] == out[i];
                CHECK_MSG(shape_ok, "pool case %zu: output shape", ci);
                double d = st || !shape_ok ? 1e9 : max_diff(y.data, e, ny);
                CHECK_MSG(d < 1e-5, "pool case %zu (%s) isa %d pool %d: max diff %g", ci, p->is_max ? "max" : "avg",
                          isa, pi, d);
                free(y.data);
            }
        }
        kern_conv_force_isa(KERN_CONV_ISA_AUTO);
        free(x.data), free(e);
    }
    /* Known values: ONNX's maxpool_2d_ceil and averagepool_2d_ceil on 1..16, and uint8, and argmax indices. */
    {
        float xv[16];
        uint8_t xu[25];
        for (int i = 0; i < 16; i++) xv[i] = (float)(i + 1);
        for (int i = 0; i < 25; i++) xu[i] = (uint8_t)(i + 1);
        int64_t xd[4] = {1, 1, 4, 4}, k3[2] = {3, 3}, s2[2] = {2, 2};
        tensor x = make(LENS_DTYPE_FLOAT32, 4, xd, xv), y;
        const tensor *ins[1] = {&x};
        tensor *outs[1] = {&y};
        op_attr attrs[3] = {{.name = "kernel_shape", .type = OP_ATTR_INTS, .ints = k3, .count = 2},
                            {.name = "strides", .type = OP_ATTR_INTS, .ints = s2, .count = 2},
                            {.name = "ceil_mode", .type = OP_ATTR_INT, .i = 1}};
        CHECK(run_op("MaxPool", attrs, 3, ins, 1, outs, 1, NULL, 0) == LENS_OK);
        float *yv = y.data;
        CHECK(y.dims[2] == 2 && y.dims[3] == 2 && yv[0] == 11 && yv[1] == 12 && yv[2] == 15 && yv[3] == 16);
        free(y.data);
        CHECK(run_op("AveragePool", attrs, 3, ins, 1, outs, 1, NULL, 0) == LENS_OK);
        yv = y.data;
        CHECK(yv[0] == 6 && yv[1] == 7.5f && yv[2] == 12 && yv[3] == 13.5f);
        free(y.data);
        /* uint8, 5x5 kernel, pads 2: y[0][0] = max of x[0..2][0..2] = 13 */
        int64_t ud[4] = {1, 1, 5, 5}, k5[2] = {5, 5}, p2[4] = {2, 2, 2, 2};
        tensor xu8 = make(LENS_DTYPE_UINT8, 4, ud, xu);
        const tensor *insu[1] = {&xu8};
        op_attr ua[2] = {{.name = "kernel_shape", .type = OP_ATTR_INTS, .ints = k5, .count = 2},
                         {.name = "pads", .type = OP_ATTR_INTS, .ints = p2, .count = 4}};
        CHECK(run_op("MaxPool", ua, 2, insu, 1, outs, 1, pool2, 0) == LENS_OK);
        CHECK(y.dtype == LENS_DTYPE_UINT8 && ((uint8_t *)y.data)[0] == 13 && ((uint8_t *)y.data)[24] == 25);
        free(y.data);
        /* Indices, row-major and column-major (ONNX's maxpool_with_argmax tests) */
        float xf[25];
        for (int i = 0; i < 25; i++) xf[i] = (float)(i + 1);
        tensor x5 = make(LENS_DTYPE_FLOAT32, 4, ud, xf), ind;
        const tensor *ins5[1] = {&x5};
        tensor *outs2[2] = {&y, &ind};
        CHECK(run_op("MaxPool", ua, 2, ins5, 1, outs2, 2, NULL, 0) == LENS_OK);
        CHECK(ind.dtype == LENS_DTYPE_INT64 && ((int64_t *)ind.data)[0] == 12 && ((int64_t *)ind.data)[4] == 14 &&
              ((int64_t *)ind.data)[24] == 24);
        free(y.data), free(ind.data);
        int64_t k2[2] = {2, 2};
        op_attr ca[3] = {{.name = "kernel_shape", .type = OP_ATTR_INTS, .ints = k2, .count = 2},
                         {.name = "strides", .type = OP_ATTR_INTS, .ints = s2, .count = 2},
                         {.name = "storage_order", .type = OP_ATTR_INT, .i = 1}};
        CHECK(run_op("MaxPool", ca, 3, ins5, 1, outs2, 2, NULL, 0) == LENS_OK);
        int64_t *iv = ind.data;
        CHECK(iv[0] == 6 && iv[1] == 16 && iv[2] == 8 && iv[3] == 18);
        CHECK(((float *)y.data)[0] == 7 && ((float *)y.data)[3] == 19);
        free(y.data), free(ind.data);
        /* errors */
        x.dtype = LENS_DTYPE_FLOAT64;
        CHECK(run_op("AveragePool", attrs, 3, ins, 1, outs, 1, NULL, 0) == LENS_ERR_UNSUPPORTED);
        CHECK(strstr(core_last_error(), "float64") != NULL);
        x.dtype = LENS_DTYPE_FLOAT32;
        CHECK(run_op("MaxPool", attrs, 1, ins, 1, outs, 1, NULL, 0) == LENS_OK && (free(y.data), 1));
        CHECK(run_op("MaxPool", attrs + 1, 2, ins, 1, outs, 1, NULL, 0) == LENS_ERR_INVALID_ARGUMENT); /* no kernel */
        int64_t k9[2] = {9, 9};
        op_attr big = {.name = "kernel_shape", .type = OP_ATTR_INTS, .ints = k9, .count = 2};
        CHECK(run_op("MaxPool", &big, 1, ins, 1, outs, 1, NULL, 0) == LENS_ERR_SHAPE);
    }
    /* Global pools: planes below, at and past the 32-float vector block of the average's sum, with and without a
     * 4-float and a scalar rest */
    static const int64_t planes[][2] = {{7, 9}, {1, 1}, {4, 8}, {5, 7}, {1, 35}, {56, 56}, {7, 7}};
    for (int pi = 0; pi < 14; pi++) {
        const int64_t ph = planes[pi / 2][0], pw = planes[pi / 2][1], ps = ph * pw;
        int64_t xd[4] = {2, 5, ph, pw};
        tensor x = make(LENS_DTYPE_FLOAT32, 4, xd, rnd((size_t)(2 * 5 * ps))), ya, ym;
        const tensor *ins[1] = {&x};
        tensor *oa[1] = {&ya}, *om[1] = {&ym};
        CHECK(run_op("GlobalAveragePool", NULL, 0, ins, 1, oa, 1, pi % 2 ? pool2 : NULL, 0) == LENS_OK);
        CHECK(run_op("GlobalMaxPool", NULL, 0, ins, 1, om, 1, pi % 2 ? pool2 : NULL, 0) == LENS_OK);
        CHECK(ya.rank == 4 && ya.dims[0] == 2 && ya.dims[1] == 5 && ya.dims[2] == 1 && ya.dims[3] == 1);
        double wa = 0, wm = 0;
        for (int p = 0; p < 10; p++) {
            double s = 0, m = -INFINITY;
            for (int64_t i = 0; i < ps; i++) {
                float v = ((float *)x.data)[p * ps + i];
                s += v;
                m = v > m ? v : m;
            }
            wa = fmax(wa, fabs(s / (double)ps - ((float *)ya.data)[p]));
            wm = fmax(wm, fabs(m - ((float *)ym.data)[p]));
        }
        CHECK_MSG(wa < 1e-6 && wm == 0, "global pools %lldx%lld: %g %g", (long long)ph, (long long)pw, wa, wm);
        free(x.data), free(ya.data), free(ym.data);
    }
}

/* ---- Normalisations ---------------------------------------------------------------------------------------------- */

static void test_norms(void) {
    /* BatchNormalization */
    for (int pi = 0; pi < 2; pi++) {
        int64_t xd[4] = {2, 3, 4, 5}, cd[1] = {3};
        tensor x = make(LENS_DTYPE_FLOAT32, 4, xd, rnd(120)), sc = make(LENS_DTYPE_FLOAT32, 1, cd, rnd(3));
        tensor b = make(LENS_DTYPE_FLOAT32, 1, cd, rnd(3)), mean = make(LENS_DTYPE_FLOAT32, 1, cd, rnd(3));
        tensor var = make(LENS_DTYPE_FLOAT32, 1, cd, rnd(3)), y;
        for (int i = 0; i < 3; i++) ((float *)var.data)[i] = fabsf(((float *)var.data)[i]);
        const tensor *ins[5] = {&x, &sc, &b, &mean, &var};
        tensor *outs[1] = {&y};
        op_attr eps = {.name = "epsilon", .type = OP_ATTR_FLOAT, .f = 0.01f};
        CHECK(run_op("BatchNormalization", &eps, 1, ins, 5, outs, 1, pi ? pool2 : NULL, 0) == LENS_OK);
        double w = 0;
        for (int i = 0; i < 120; i++) {
            int c = i / 20 % 3;
            double e = (((float *)x.data)[i] - ((float *)mean.data)[c]) / sqrt(((float *)var.data)[c] + 0.01f) *
                           ((float *)sc.data)[c] +
                       ((float *)b.data)[c];
            w = fmax(w, fabs(e - ((float *)y.data)[i]));
        }
        CHECK_MSG(w < 1e-5, "BatchNormalization: %g", w);
        free(y.data);
        op_attr train = {.name = "training_mode", .type = OP_ATTR_INT, .i = 1};
        CHECK(run_op("BatchNormalization", &train, 1, ins, 5, outs, 1, NULL, 0) == LENS_ERR_UNSUPPORTED);
        tensor m2;
        tensor *outs3[3] = {&y, &m2, NULL};
        CHECK(run_op("BatchNormalization", NULL, 0, ins, 5, outs3, 3, NULL, 0) == LENS_ERR_UNSUPPORTED);
        mean.dims[0] = 4;
        CHECK(run_op("BatchNormalization", NULL, 0, ins, 5, outs, 1, NULL, 0) == LENS_ERR_SHAPE);
        free(x.data), free(sc.data), free(b.data), free(mean.data), free(var.data);
    }
    /* LayerNormalization over several axes, with and without B, with Mean and InvStdDev */
    static const struct { int rank; int64_t dims[4]; int axis; int scale_rank; int with_b; } ln[] = {
        {2, {3, 4}, 1, 1, 1},     {2, {3, 4}, 0, 2, 1},  {3, {2, 3, 5}, -1, 1, 1}, {3, {2, 3, 5}, 1, 2, 0},
        {4, {2, 3, 4, 5}, 2, 2, 1}, {4, {2, 3, 4, 5}, -3, 1, 1}, {3, {4, 197, 768}, -1, 1, 1},
    };
    for (size_t ci = 0; ci < sizeof ln / sizeof *ln; ci++)
        for (int pi = 0; pi < 2; pi++) {
            tensor x = make(LENS_DTYPE_FLOAT32, ln[ci].rank, ln[ci].dims, NULL);
            int64_t n = tensor_numel(&x);
            x.data = rnd((size_t)n);
            int axis = ln[ci].axis < 0 ? ln[ci].axis + x.rank : ln[ci].axis;
            int64_t inner = 1;
            for (int i = axis; i < x.rank; i++) inner *= x.dims[i];
            /* scale_rank trailing dims of X (a shorter suffix broadcasts over the leading normalised dims) */
            int sr = ln[ci].scale_rank;
            tensor sc = make(LENS_DTYPE_FLOAT32, sr, x.dims + x.rank - sr, NULL);
            int64_t ns = tensor_numel(&sc);
            sc.data = rnd((size_t)ns);
            tensor b = sc;
            b.data = rnd((size_t)ns);
            tensor y, mean, inv;
            const tensor *ins[3] = {&x, &sc, &b};
            tensor *outs[3] = {&y, &mean, &inv};
            op_attr attrs[2] = {{.name = "axis", .type = OP_ATTR_INT, .i = ln[ci].axis},
                                {.name = "epsilon", .type = OP_ATTR_FLOAT, .f = 0.1f}};
            lens_status st = run_op("LayerNormalization", attrs, 2, ins, ln[ci].with_b ? 3 : 2, outs, 3,
                                    pi ? pool2 : NULL, 0);
            CHECK_MSG(st == LENS_OK, "%s", core_last_error());
            CHECK(mean.rank == x.rank && mean.dims[axis] == 1 && (axis == 0 || mean.dims[0] == x.dims[0]));
            double w = 0, wm = 0;
            for (int64_t r = 0; !st && r < n / inner; r++) {
                const float *xr = (const float *)x.data + r * inner;
                double m = 0, v = 0;
                for (int64_t i = 0; i < inner; i++) m += xr[i];
                m /= (double)inner;
                for (int64_t i = 0; i < inner; i++) v += (xr[i] - m) * (xr[i] - m);
                v /= (double)inner;
                double is = 1 / sqrt(v + 0.1f);
                for (int64_t i = 0; i < inner; i++) {
                    double e = (xr[i] - m) * is * ((float *)sc.data)[i % ns] +
                               (ln[ci].with_b ? ((float *)b.data)[i % ns] : 0);
                    w = fmax(w, fabs(e - ((float *)y.data)[r * inner + i]));
                }
                wm = fmax(wm, fabs(m - ((float *)mean.data)[r]) + fabs(is - ((float *)inv.data)[r]));
            }
            CHECK_MSG(w < 2e-5 && wm < 2e-5, "LayerNormalization case %zu: %g %g", ci, w, wm);
            free(x.data), free(sc.data), free(b.data), free(y.data), free(mean.data), free(inv.data);
        }
    {
        int64_t xd[2] = {3, 4}, sd[1] = {3};
        float buf[12] = {0};
        tensor x = make(LENS_DTYPE_FLOAT32, 2, xd, buf), sc = make(LENS_DTYPE_FLOAT32, 1, sd, buf), y;
        const tensor *ins[2] = {&x, &sc};
        tensor *outs[1] = {&y};
        CHECK(run_op("LayerNormalization", NULL, 0, ins, 2, outs, 1, NULL, 0) == LENS_ERR_SHAPE);
        CHECK(strstr(core_last_error(), "[3]") && strstr(core_last_error(), "[3,4]"));
        op_attr ax = {.name = "axis", .type = OP_ATTR_INT, .i = 2};
        sc.dims[0] = 4;
        CHECK(run_op("LayerNormalization", &ax, 1, ins, 2, outs, 1, NULL, 0) == LENS_ERR_INVALID_ARGUMENT);
        x.dtype = LENS_DTYPE_FLOAT16;
        CHECK(run_op("LayerNormalization", NULL, 0, ins, 2, outs, 1, NULL, 0) == LENS_ERR_UNSUPPORTED);
    }
    /* InstanceNormalization */
    for (int pi = 0; pi < 2; pi++) {
        int64_t xd[4] = {2, 3, 4, 5}, cd[1] = {3};
        tensor x = make(LENS_DTYPE_FLOAT32, 4, xd, rnd(120)), sc = make(LENS_DTYPE_FLOAT32, 1, cd, rnd(3));
        tensor b = make(LENS_DTYPE_FLOAT32, 1, cd, rnd(3)), y;
        const tensor *ins[3] = {&x, &sc, &b};
        tensor *outs[1] = {&y};
        op_attr eps = {.name = "epsilon", .type = OP_ATTR_FLOAT, .f = 0.01f};
        CHECK(run_op("InstanceNormalization", &eps, 1, ins, 3, outs, 1, pi ? pool2 : NULL, 0) == LENS_OK);
        double w = 0;
        for (int p = 0; p < 6; p++) {
            const float *xp = (const float *)x.data + p * 20;
            double m = 0, v = 0;
            for (int i = 0; i < 20; i++) m += xp[i];
            m /= 20;
            for (int i = 0; i < 20; i++) v += (xp[i] - m) * (xp[i] - m);
            v /= 20;
            for (int i = 0; i < 20; i++) {
                double e = (xp[i] - m) / sqrt(v + 0.01f) * ((float *)sc.data)[p % 3] + ((float *)b.data)[p % 3];
                w = fmax(w, fabs(e - ((float *)y.data)[p * 20 + i]));
            }
        }
        CHECK_MSG(w < 1e-5, "InstanceNormalization: %g", w);
        free(y.data);
        b.dims[0] = 2;
        CHECK(run_op("InstanceNormalization", NULL, 0, ins, 3, outs, 1, NULL, 0) == LENS_ERR_SHAPE);
        free(x.data), free(sc.data), free(b.data);
    }
}

int main(void) {
    CHECK(core_pool_create(2, &pool2) == LENS_OK);
    test_gemm();
    test_matmul();
    test_einsum();
    test_pools();
    test_norms();
    core_pool_free(pool2);
    return test_finish("test_linalg_pool_norm");
}
