/* test_fold_scale.c — checks the squeeze-excitation fold of graph_optimize_with_shapes (graph/passes/optimize.c):
 * Mul(X, s) with s [N or 1, C, 1, 1] read only by a 1x1 Conv becomes that Conv with lens.input_scale. Small graphs
 * are run before and after the passes (with a batch-1 probe plan between, as lens_model_load does, so the Conv's
 * weights are already packed and dropped when the fold happens; then at the case's batch); results must agree, and
 * the Mul must be gone exactly when folding pays and is valid: not when the weights are a quarter of X's per-image
 * elements or more, the Mul output has another reader, the Conv is not 1x1, or the other operand is not
 * per-channel. */
#include <math.h>
#include <string.h>

#include "graph/graph.h"
#include "test.h"

typedef struct fold_case {
    const char *what;
    int64_t n, c, h, w, m;
    int scale_first;   /* Mul(s, X) instead of Mul(X, s) */
    int kernel;        /* the Conv's kernel edge (3: padded 3x3, never folded) */
    int full_operand;  /* Mul by Relu(X) [N, C, H, W] instead of the per-channel gate */
    int mul_is_output; /* the Mul's output is also a graph output */
    int residual;      /* Add(Conv, X) after the Conv (m == c): fused as lens.residual first */
    int bias;
    int const_scale; /* s is a constant [1, C, 1, 1], broadcast over X's batch */
    int expect_fold;
} fold_case;

static float *const_tensor(graph *g, const char *name, int rank, const int64_t *dims, int salt) {
    tensor t = {.dtype = LENS_DTYPE_FLOAT32, .rank = rank};
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= t.dims[i] = dims[i];
    float *d = graph_alloc(g, (size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) d[i] = (float)((i * 37 + salt) % 23 - 11) / 16.0f;
    t.data = d;
    CHECK(graph_set_constant(g, name, &t) == LENS_OK);
    return d;
}

static void add(graph *g, const char *op_type, int n_in, const char *in0, const char *in1, const char *in2,
                const char *out, int n_attrs, const op_attr *attrs) {
    static int count;
    const char *ins[3] = {in0, in1, in2}, *outs[1] = {out};
    char name[32];
    snprintf(name, sizeof name, "n%d", count++);
    CHECK(graph_add_node(g, name, "", op_type, n_in, ins, 1, outs, n_attrs, attrs, NULL) == LENS_OK);
}

static graph *build(const fold_case *k) {
    graph *g = NULL;
    CHECK(graph_create("test", "fold_scale", &g) == LENS_OK);
    graph_set_opset(g, "", 17);
    int64_t dims[4] = {-1, k->c, k->h, k->w}; /* dynamic batch: probed at 1, run at k->n */
    graph_add_input(g, "X", LENS_DTYPE_FLOAT32, 4, dims);
    if (k->const_scale) {
        int64_t sd[4] = {1, k->c, 1, 1};
        const_tensor(g, "s", 4, sd, 7);
    } else if (k->full_operand) {
        add(g, "Relu", 1, "X", NULL, NULL, "s", 0, NULL);
    } else {
        add(g, "GlobalAveragePool", 1, "X", NULL, NULL, "p", 0, NULL);
        add(g, "Sigmoid", 1, "p", NULL, NULL, "s", 0, NULL);
    }
    add(g, "Mul", 2, k->scale_first ? "s" : "X", k->scale_first ? "X" : "s", NULL, "x", 0, NULL);
    int64_t wd[4] = {k->m, k->c, k->kernel, k->kernel}, bd[1] = {k->m};
    const_tensor(g, "W", 4, wd, 3);
    if (k->bias) const_tensor(g, "B", 1, bd, 5);
    op_attr attrs[1];
    int n_attrs = 0;
    if (k->kernel > 1) {
        int64_t *pads = graph_alloc(g, 4 * sizeof(int64_t));
        for (int i = 0; i < 4; i++) pads[i] = k->kernel / 2;
        attrs[n_attrs++] = (op_attr){.name = "pads", .type = OP_ATTR_INTS, .ints = pads, .count = 4};
    }
    const char *conv_out = k->residual ? "y" : "Y";
    add(g, "Conv", k->bias ? 3 : 2, "x", "W", k->bias ? "B" : NULL, conv_out, n_attrs, attrs);
    if (k->residual) add(g, "Add", 2, "y", "X", NULL, "Y", 0, NULL);
    graph_add_output(g, "Y", LENS_DTYPE_FLOAT32, -1, NULL);
    if (k->mul_is_output) graph_add_output(g, "x", LENS_DTYPE_FLOAT32, -1, NULL);
    CHECK_MSG(graph_finalize(g) == LENS_OK, "%s: finalize", k->what);
    return g;
}

/* Runs g on a fixed input; returns output 0 (malloc'd). */
static float *run(graph *g, const fold_case *k, core_pool *pool) {
    size_t nx = (size_t)(k->n * k->c * k->h * k->w), ny = (size_t)(k->n * k->m * k->h * k->w);
    float *x = malloc(nx * sizeof *x), *y = malloc(ny * sizeof *y);
    for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 13) % 31) / 7.0f - 2.0f;
    tensor in = {.dtype = LENS_DTYPE_FLOAT32, .rank = 4, .dims = {k->n, k->c, k->h, k->w}};
    graph_plan *plan = NULL;
    CHECK_MSG(graph_plan_create(g, &in, 1, pool, &plan) == LENS_OK, "%s: plan: %s", k->what, core_last_error());
    if (plan) {
        in.data = x;
        tensor outs[4];
        CHECK_MSG(graph_plan_run(plan, &in, outs) == LENS_OK, "%s: run: %s", k->what, core_last_error());
        memcpy(y, outs[0].data, ny * sizeof *y);
        graph_plan_free(plan);
    }
    free(x);
    return y;
}

static int live(const graph *g, const char *op_type) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].removed && !strcmp(g->nodes[i].op.op_type, op_type)) n++;
    return n;
}

static void check_case(const fold_case *k, core_pool *pool) {
    /* reference: the graph as imported, never optimized */
    graph *ref = build(k);
    float *want = run(ref, k, pool);
    graph_free(ref);

    graph *g = build(k);
    CHECK_MSG(graph_optimize(g) == LENS_OK, "%s: optimize", k->what);
    tensor shape = {.dtype = LENS_DTYPE_FLOAT32, .rank = 4, .dims = {1, k->c, k->h, k->w}}; /* as lens.c probes */
    graph_plan *probe = NULL;
    CHECK_MSG(graph_plan_create(g, &shape, 1, pool, &probe) == LENS_OK, "%s: probe", k->what);
    CHECK_MSG(graph_optimize_with_shapes(g, probe) == LENS_OK, "%s: optimize with shapes: %s", k->what,
              core_last_error());
    graph_plan_free(probe);
    float *got = run(g, k, pool);
    int folded = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (!n->removed && !strcmp(n->op.op_type, "Conv") && op_attr_int(&n->op, "lens.input_scale", 0) == 1)
            folded = 1;
    }
    CHECK_MSG(folded == k->expect_fold, "%s: folded %d, want %d", k->what, folded, k->expect_fold);
    CHECK_MSG(live(g, "Mul") == !k->expect_fold, "%s: %d Mul nodes left", k->what, live(g, "Mul"));
    if (k->residual) CHECK_MSG(live(g, "Add") == 0, "%s: residual Add not fused", k->what);
    size_t ny = (size_t)(k->n * k->m * k->h * k->w);
    double worst = 0;
    for (size_t i = 0; i < ny; i++) {
        double e = fabs((double)got[i] - want[i]) / fmax(1.0, fabs((double)want[i]));
        if (!(e <= worst)) worst = e;
    }
    CHECK_MSG(worst < 1e-5, "%s: results differ by %g", k->what, worst);
    free(want);
    free(got);
    graph_free(g);
}

int main(void) {
    static const fold_case cases[] = {
        /* what                         n  c   h   w  m  sf k full out res bias const fold */
        {"fold X * s", 1, 37, 9, 9, 11, 0, 1, 0, 0, 0, 1, 0, 1},
        {"fold s * X", 1, 37, 9, 9, 11, 1, 1, 0, 0, 0, 0, 0, 1},
        {"fold, batch 2", 2, 24, 7, 11, 13, 0, 1, 0, 0, 0, 1, 0, 1},
        {"fold, many columns", 1, 16, 40, 41, 40, 1, 1, 0, 0, 0, 1, 0, 1},
        {"fold with residual", 2, 37, 13, 13, 37, 0, 1, 0, 0, 1, 1, 0, 1},
        {"weights outnumber X", 1, 37, 3, 3, 11, 0, 1, 0, 0, 0, 1, 0, 0},
        {"weights over a quarter of X", 1, 37, 5, 5, 11, 0, 1, 0, 0, 0, 1, 0, 0},
        {"Mul output also read", 1, 37, 9, 9, 11, 0, 1, 0, 1, 0, 1, 0, 0},
        {"3x3 conv", 1, 20, 9, 9, 7, 0, 3, 0, 0, 0, 1, 0, 0},
        {"constant [1, C, 1, 1] scale, batch 3", 3, 20, 8, 8, 9, 1, 1, 0, 0, 0, 1, 1, 1},
        {"full-size operand", 1, 37, 9, 9, 11, 0, 1, 1, 0, 0, 1, 0, 0},
    };
    core_pool *pool = NULL;
    CHECK(core_pool_create(2, &pool) == LENS_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        check_case(&cases[i], NULL);
        check_case(&cases[i], pool);
    }
    core_pool_free(pool);
    return test_finish("test_fold_scale");
}
