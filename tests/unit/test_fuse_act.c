/* test_fuse_act.c — checks the optimizer's SiLU and exact-GELU recognition (graph/passes/optimize.c): small graphs
 * built with the builder API, in the operand orders exporters emit, are run before and after graph_optimize; the
 * outputs must agree and the chain must have become one activation (fused into a MatMul where one produces its
 * input). Chains that must not fuse (wrong constants, intermediates read elsewhere or graph outputs, a Mul by
 * something other than x) must keep their nodes and their results. */
#include <math.h>
#include <string.h>

#include "graph/graph.h"
#include "test.h"

enum { ROWS = 3, COLS = 37 };

typedef struct builder {
    graph *g;
    int nodes;
} builder;

static void scalar(builder *b, const char *name, float v) {
    tensor t = {.dtype = LENS_DTYPE_FLOAT32, .rank = 0};
    float *d = graph_alloc(b->g, sizeof(float));
    *d = v;
    t.data = d;
    CHECK(graph_set_constant(b->g, name, &t) == LENS_OK);
}

static void node(builder *b, const char *op_type, const char *in0, const char *in1, const char *out) {
    const char *ins[2] = {in0, in1}, *outs[1] = {out};
    char name[32];
    snprintf(name, sizeof name, "n%d", b->nodes++);
    CHECK(graph_add_node(b->g, name, "", op_type, in1 ? 2 : 1, ins, 1, outs, 0, NULL, NULL) == LENS_OK);
}

/* A graph with input X [ROWS, COLS] and output Y (and extra_output, when not NULL); matmul: X goes through
 * MatMul with a constant W first (value "x"), else "x" is X itself (via Identity, removed by the optimizer). */
static builder start(int matmul) {
    builder b = {0};
    CHECK(graph_create("test", "fuse_act", &b.g) == LENS_OK);
    graph_set_opset(b.g, "", 17);
    int64_t dims[2] = {ROWS, COLS};
    graph_add_input(b.g, "X", LENS_DTYPE_FLOAT32, 2, dims);
    if (matmul) {
        tensor w = {.dtype = LENS_DTYPE_FLOAT32, .rank = 2, .dims = {COLS, COLS}};
        float *d = graph_alloc(b.g, COLS * COLS * sizeof(float));
        for (int i = 0; i < COLS * COLS; i++) d[i] = (float)((i * 37) % 23 - 11) / 16.0f;
        w.data = d;
        graph_set_constant(b.g, "W", &w);
        node(&b, "MatMul", "X", "W", "x");
    } else {
        node(&b, "Identity", "X", NULL, "x");
    }
    return b;
}

/* Runs g on a fixed input; out receives output 0. */
static void run(graph *g, float *out) {
    float x[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++) x[i] = (float)(i % 29) / 3.0f - 5.0f;
    tensor in = {.dtype = LENS_DTYPE_FLOAT32, .rank = 2, .dims = {ROWS, COLS}};
    graph_plan *plan = NULL;
    CHECK(graph_plan_create(g, &in, 1, NULL, &plan) == LENS_OK);
    if (!plan) return;
    in.data = x;
    tensor outs[4];
    CHECK(graph_plan_run(plan, &in, outs) == LENS_OK);
    memcpy(out, outs[0].data, sizeof(float) * ROWS * COLS);
    graph_plan_free(plan);
}

static int live_nodes(const graph *g, const char *op_type) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].removed && (!op_type || !strcmp(g->nodes[i].op.op_type, op_type))) n++;
    return n;
}

/* Finishes b: runs it, optimizes, runs again; checks the results agree and that `expect_nodes` nodes are left, one
 * of them expect_op (NULL: no check) carrying lens.activation == expect_act (NULL: none checked). */
static void finish(builder *b, const char *what, int expect_nodes, const char *expect_op, const char *expect_act) {
    graph *g = b->g;
    CHECK_MSG(graph_finalize(g) == LENS_OK, "%s: finalize", what);
    float before[ROWS * COLS], after[ROWS * COLS];
    run(g, before);
    CHECK_MSG(graph_optimize(g) == LENS_OK, "%s: optimize", what);
    run(g, after);
    /* relative to max(1, |y|): the unfused 0.5 x (1 + erf) loses the far negative tail to cancellation */
    double worst = 0;
    for (int i = 0; i < ROWS * COLS; i++)
        worst = fmax(worst, fabs((double)after[i] - before[i]) / fmax(1.0, fabs((double)before[i])));
    CHECK_MSG(worst < 2e-6, "%s: optimized result differs by %g", what, worst);
    CHECK_MSG(live_nodes(g, NULL) == expect_nodes, "%s: %d nodes left, want %d", what, live_nodes(g, NULL),
              expect_nodes);
    if (expect_op) {
        CHECK_MSG(live_nodes(g, expect_op) == 1, "%s: no %s node", what, expect_op);
        for (int i = 0; i < g->n_nodes; i++) {
            const graph_node *n = &g->nodes[i];
            if (n->removed || strcmp(n->op.op_type, expect_op)) continue;
            const char *act = op_attr_string(&n->op, "lens.activation", NULL);
            if (expect_act) CHECK_MSG(act && !strcmp(act, expect_act), "%s: activation %s", what, act ? act : "none");
        }
    }
    graph_free(g);
}

static void test_silu(void) {
    for (int order = 0; order < 2; order++) {
        builder b = start(1);
        node(&b, "Sigmoid", "x", NULL, "s");
        node(&b, "Mul", order ? "s" : "x", order ? "x" : "s", "Y");
        graph_add_output(b.g, "Y", LENS_DTYPE_FLOAT32, -1, NULL);
        finish(&b, order ? "silu (s, x) after MatMul" : "silu (x, s) after MatMul", 1, "MatMul", "Silu");
    }
    /* no producer to take it: a standalone Silu */
    builder b = start(0);
    node(&b, "Sigmoid", "x", NULL, "s");
    node(&b, "Mul", "s", "x", "Y");
    graph_add_output(b.g, "Y", LENS_DTYPE_FLOAT32, -1, NULL);
    finish(&b, "silu standalone", 1, "Silu", NULL);
    /* squeeze-excite: sigmoid of one tensor scales another: stays (the Sigmoid fuses into the MatMul) */
    b = start(1);
    node(&b, "Sigmoid", "x", NULL, "s");
    node(&b, "Mul", "s", "X", "Y");
    graph_add_output(b.g, "Y", LENS_DTYPE_FLOAT32, -1, NULL);
    finish(&b, "sigmoid times another tensor", 2, "MatMul", "Sigmoid");
    /* the sigmoid is also a graph output */
    b = start(1);
    node(&b, "Sigmoid", "x", NULL, "s");
    node(&b, "Mul", "x", "s", "Y");
    graph_add_output(b.g, "Y", LENS_DTYPE_FLOAT32, -1, NULL);
    graph_add_output(b.g, "s", LENS_DTYPE_FLOAT32, -1, NULL);
    finish(&b, "sigmoid also an output", 3, "Sigmoid", NULL);
}

/* The exact GELU chain: form 0 Div(x, sqrt2), Erf, Add(erf, 1), Mul(x, add), Mul(., 0.5); form 1 Mul(1/sqrt2, x),
 * Erf, Add(1, erf), Mul(add, x), Mul(0.5, .); form 2 (x * 0.5) * (1 + erf(x / sqrt2)). */
static void gelu_chain(builder *b, int form, float sqrt2, const char *extra_reader) {
    scalar(b, "sqrt2", sqrt2);
    scalar(b, "inv_sqrt2", 1.0f / sqrt2);
    scalar(b, "one", 1.0f);
    scalar(b, "half", 0.5f);
    if (form == 0) node(b, "Div", "x", "sqrt2", "d");
    else node(b, "Mul", form == 1 ? "inv_sqrt2" : "x", form == 1 ? "x" : "inv_sqrt2", "d");
    node(b, "Erf", "d", NULL, "e");
    node(b, "Add", form == 1 ? "one" : "e", form == 1 ? "e" : "one", "a");
    if (form == 2) {
        node(b, "Mul", "x", "half", "h");
        node(b, "Mul", "h", "a", "Y");
    } else {
        node(b, "Mul", form == 1 ? "a" : "x", form == 1 ? "x" : "a", "m");
        node(b, "Mul", form == 1 ? "half" : "m", form == 1 ? "m" : "half", "Y");
    }
    if (extra_reader) node(b, "Neg", extra_reader, NULL, "Z");
    graph_add_output(b->g, "Y", LENS_DTYPE_FLOAT32, -1, NULL);
    if (extra_reader) graph_add_output(b->g, "Z", LENS_DTYPE_FLOAT32, -1, NULL);
}

static void test_gelu(void) {
    static const char *names[] = {"gelu Div form", "gelu Mul form", "gelu x*0.5 form"};
    for (int form = 0; form < 3; form++) {
        builder b = start(1);
        gelu_chain(&b, form, 1.4142135f, NULL);
        finish(&b, names[form], 1, "MatMul", "Gelu");
        b = start(0);
        gelu_chain(&b, form, 1.4142135f, NULL);
        finish(&b, names[form], 1, "Gelu", NULL);
    }
    builder b = start(1);
    gelu_chain(&b, 0, 2.0f, NULL); /* not GELU: erf(x / 2) */
    finish(&b, "gelu with the wrong constant", 6, "Erf", NULL);
    b = start(1);
    gelu_chain(&b, 1, 1.4142135f, "a"); /* 1 + erf read elsewhere */
    finish(&b, "gelu with a shared intermediate", 7, "Erf", NULL);
    b = start(1);
    gelu_chain(&b, 2, 1.4142135f, "h"); /* x * 0.5 read elsewhere */
    finish(&b, "gelu with a shared x/2", 7, "Erf", NULL);
}

int main(void) {
    test_silu();
    test_gelu();
    return test_finish("test_fuse_act");
}
