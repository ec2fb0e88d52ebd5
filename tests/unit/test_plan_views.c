/* test_plan_views.c — the planner's views (plan.c): Reshape, Flatten, Squeeze, Unsqueeze and order-keeping
 * Transposes of an activation share its buffer and do not run. A small graph whose views are read after their
 * source's last direct reader, whose source is read after its views, whose graph outputs are views (of views), and
 * which reshapes a graph input, is planned for two batch sizes with and without views: the outputs must agree
 * exactly (and over two runs with different inputs), the views must share their source's buffer, real transposes and
 * views of graph inputs must not, and the arena must not grow. A node whose output only a Shape reads must not run.
 * A chain of convs with fused residuals checks the in-place outputs (op_def.inplace_input) likewise: a conv writes
 * over its residual only when nothing reads it later and it is not also the conv's input. */
#include <string.h>

#include "graph/graph.h"
#include "test.h"

enum { C = 4, W = 6, CW = C * W };

static int n_nodes;

static void node(graph *g, const char *op_type, const char *in0, const char *in1, const char *out, int n_attrs,
                 const op_attr *attrs) {
    const char *ins[2] = {in0, in1}, *outs[1] = {out};
    char name[32];
    snprintf(name, sizeof name, "n%d", n_nodes++);
    CHECK(graph_add_node(g, name, "", op_type, in1 ? 2 : 1, ins, 1, outs, n_attrs, attrs, NULL) == LENS_OK);
}

static void int64_constant(graph *g, const char *name, int n, const int64_t *values) {
    tensor t = {.dtype = LENS_DTYPE_INT64, .rank = 1, .dims = {n}};
    int64_t *d = graph_alloc(g, sizeof(int64_t) * (size_t)n);
    memcpy(d, values, sizeof(int64_t) * (size_t)n);
    t.data = d;
    CHECK(graph_set_constant(g, name, &t) == LENS_OK);
}

static graph *build(void) {
    graph *g = NULL;
    n_nodes = 0;
    CHECK(graph_create("test", "plan_views", &g) == LENS_OK);
    graph_set_opset(g, "", 13);
    int64_t dims[3] = {-1, C, W};
    graph_add_input(g, "X", LENS_DTYPE_FLOAT32, 3, dims);
    int64_t flat[2] = {0, CW}, cube[3] = {-1, C, W}, one[1] = {1}, zero[1] = {0};
    int64_constant(g, "flat", 2, flat);
    int64_constant(g, "cube", 3, cube);
    int64_constant(g, "axis1", 1, one);
    int64_constant(g, "axis0", 1, zero);
    static const int64_t swap01[3] = {1, 0, 2}, swap12[3] = {0, 2, 1};
    op_attr perm01 = {.name = "perm", .type = OP_ATTR_INTS, .ints = swap01, .count = 3};
    op_attr perm12 = {.name = "perm", .type = OP_ATTR_INTS, .ints = swap12, .count = 3};
    op_attr flatten_axis = {.name = "axis", .type = OP_ATTR_INT, .i = 1};
    node(g, "Relu", "X", NULL, "r", 0, NULL);             /* [B, C, W] */
    node(g, "Reshape", "r", "flat", "a", 0, NULL);        /* [B, CW]    view of r */
    node(g, "Unsqueeze", "a", "axis1", "b", 0, NULL);     /* [B, 1, CW] view of r */
    node(g, "Transpose", "b", NULL, "c", 1, &perm01);     /* [1, B, CW] view of r: only moves the axis of size 1 */
    node(g, "Sigmoid", "c", NULL, "d", 0, NULL);          /* [1, B, CW] */
    node(g, "Neg", "r", NULL, "e", 0, NULL);              /* r read after its views were made */
    node(g, "Reshape", "d", "cube", "f", 0, NULL);        /* [B, C, W] view of d */
    node(g, "Add", "f", "e", "h0", 0, NULL);              /* [B, C, W] */
    node(g, "Transpose", "h0", NULL, "h", 1, &perm12);    /* [B, W, C] a real transpose */
    node(g, "Flatten", "h", NULL, "i", 1, &flatten_axis); /* [B, CW] view of h */
    node(g, "Mul", "i", "a", "k", 0, NULL);               /* a (view of r) read after r's last direct reader */
    node(g, "Exp", "r", NULL, "dead", 0, NULL);           /* only its shape is read: never runs */
    node(g, "Shape", "dead", NULL, "dead_shape", 0, NULL);
    node(g, "Reshape", "k", "dead_shape", "Y", 0, NULL);  /* graph output, view of k */
    node(g, "Squeeze", "c", "axis0", "Z", 0, NULL);       /* graph output, view of a view of r */
    node(g, "Reshape", "X", "flat", "V", 0, NULL);        /* graph output reshaping the graph input */
    graph_add_output(g, "Y", LENS_DTYPE_FLOAT32, -1, NULL);
    graph_add_output(g, "Z", LENS_DTYPE_FLOAT32, -1, NULL);
    graph_add_output(g, "V", LENS_DTYPE_FLOAT32, -1, NULL);
    CHECK(graph_finalize(g) == LENS_OK);
    return g;
}

static const void *data_of(const graph_plan *plan, const graph *g, const char *name) {
    const tensor *t = graph_plan_value(plan, graph_value_find(g, name));
    return t ? t->data : NULL;
}

/* Runs plan twice (two inputs) and copies the outputs (3 x batch x CW floats per run) into out[2][3][...]. */
static void run_twice(graph_plan *plan, int batch, float *out) {
    float x[2][8 * CW];
    for (int run = 0; run < 2; run++) {
        for (int i = 0; i < batch * CW; i++) x[run][i] = (float)((i * 7 + run * 13) % 19) / 4.0f - 2.0f;
        tensor in = {.dtype = LENS_DTYPE_FLOAT32, .rank = 3, .dims = {batch, C, W}, .data = x[run]};
        tensor outs[3];
        lens_status st = graph_plan_run(plan, &in, outs);
        CHECK_MSG(st == LENS_OK, "%s", core_last_error());
        if (st) return;
        for (int o = 0; o < 3; o++) {
            CHECK(tensor_numel(&outs[o]) == batch * CW);
            memcpy(out + (size_t)(run * 3 + o) * (size_t)(batch * CW), outs[o].data, sizeof(float) * batch * CW);
        }
        /* Z is relu(X) flattened, V is X: checked directly, not only against the plan without views */
        const float *z = outs[1].data, *v = outs[2].data;
        int bad = 0;
        for (int i = 0; i < batch * CW; i++) bad += z[i] != (x[run][i] > 0 ? x[run][i] : 0.0f) || v[i] != x[run][i];
        CHECK_MSG(bad == 0, "batch %d run %d: %d wrong values of Z or V", batch, run, bad);
        CHECK(outs[2].data != (void *)x[run]);
    }
}

static void test_views(void) {
    graph *g = build();
    for (int batch = 1; batch <= 3; batch += 2) {
        float with[2 * 3 * 3 * CW], without[2 * 3 * 3 * CW];
        tensor shape = {.dtype = LENS_DTYPE_FLOAT32, .rank = 3, .dims = {batch, C, W}};
        graph_plan *plain = NULL, *viewed = NULL;
        graph_plan_set_views(0);
        CHECK(graph_plan_create(g, &shape, 1, NULL, &plain) == LENS_OK);
        graph_plan_set_views(1);
        CHECK(graph_plan_create(g, &shape, 1, NULL, &viewed) == LENS_OK);
        if (!plain || !viewed) {
            graph_plan_free(plain), graph_plan_free(viewed);
            continue;
        }
        run_twice(plain, batch, without);
        graph_plan_enable_profile(viewed, 1);
        run_twice(viewed, batch, with);
        /* skipped steps take no time: the views, and the Exp only a Shape reads */
        int skipped = 0, steps = graph_plan_step_count(viewed);
        for (int i = 0; i < steps; i++) {
            double seconds;
            const graph_node *n = graph_plan_step(viewed, i, &seconds);
            const char *op = n->op.op_type;
            int view = !strcmp(op, "Reshape") && strcmp(g->values[n->outputs[0]].name, "V");
            if (view || !strcmp(op, "Exp") || !strcmp(op, "Flatten") || !strcmp(op, "Squeeze") ||
                !strcmp(op, "Unsqueeze") || (!strcmp(op, "Transpose") && strcmp(g->values[n->outputs[0]].name, "h"))) {
                CHECK_MSG(seconds == 0, "batch %d: step %s ran", batch, g->values[n->outputs[0]].name);
                skipped++;
            }
        }
        CHECK(skipped == 8);
        CHECK_MSG(!memcmp(with, without, sizeof(float) * 2 * 3 * (size_t)(batch * CW)),
                  "batch %d: outputs differ with views", batch);

        /* the views share their source's buffer; the others do not */
        const void *r = data_of(viewed, g, "r");
        CHECK(r && data_of(viewed, g, "a") == r && data_of(viewed, g, "b") == r && data_of(viewed, g, "c") == r &&
              data_of(viewed, g, "Z") == r);
        CHECK(data_of(viewed, g, "f") == data_of(viewed, g, "d"));
        CHECK(data_of(viewed, g, "i") == data_of(viewed, g, "h"));
        CHECK(data_of(viewed, g, "Y") == data_of(viewed, g, "k"));
        CHECK(data_of(viewed, g, "h") != data_of(viewed, g, "h0"));
        CHECK(data_of(viewed, g, "d") != r && data_of(viewed, g, "e") != r && data_of(viewed, g, "k") != r);
        CHECK(data_of(plain, g, "a") != data_of(plain, g, "r"));
        CHECK(graph_plan_arena_bytes(viewed) <= graph_plan_arena_bytes(plain));
        graph_plan_free(plain);
        graph_plan_free(viewed);
    }
    graph_free(g);
}

/* ---- In-place outputs over fused residuals ----------------------------------------------------------------------- */

enum { RC = 3, RH = 2, RW = 5, RN = RC * RH * RW };

static void conv(graph *g, const char *x, const char *residual, const char *out) {
    const char *ins[4] = {x, "cw", "cb", residual}, *outs[1] = {out};
    op_attr a = {.name = "lens.residual", .type = OP_ATTR_INT, .i = 1};
    char name[32];
    snprintf(name, sizeof name, "n%d", n_nodes++);
    CHECK(graph_add_node(g, name, "", "Conv", 4, ins, 1, outs, 1, &a, NULL) == LENS_OK);
}

static graph *build_residuals(void) {
    graph *g = NULL;
    n_nodes = 0;
    CHECK(graph_create("test", "plan_inplace", &g) == LENS_OK);
    graph_set_opset(g, "", 13);
    int64_t dims[4] = {1, RC, RH, RW};
    graph_add_input(g, "X", LENS_DTYPE_FLOAT32, 4, dims);
    tensor w = {.dtype = LENS_DTYPE_FLOAT32, .rank = 4, .dims = {RC, RC, 1, 1}};
    tensor b = {.dtype = LENS_DTYPE_FLOAT32, .rank = 1, .dims = {RC}};
    float *wd = graph_alloc(g, sizeof(float) * RC * RC), *bd = graph_alloc(g, sizeof(float) * RC);
    for (int i = 0; i < RC * RC; i++) wd[i] = (float)(i % 5) / 4.0f - 0.5f;
    for (int i = 0; i < RC; i++) bd[i] = (float)i / 8.0f;
    w.data = wd, b.data = bd;
    CHECK(graph_set_constant(g, "cw", &w) == LENS_OK);
    CHECK(graph_set_constant(g, "cb", &b) == LENS_OK);
    int64_t flat[2] = {1, RN}, cube[4] = {1, RC, RH, RW};
    int64_constant(g, "flat", 2, flat);
    int64_constant(g, "cube", 4, cube);
    node(g, "Relu", "X", NULL, "a", 0, NULL);
    node(g, "Sigmoid", "a", NULL, "b", 0, NULL);
    conv(g, "b", "a", "c");                       /* a's last reader: c takes a's buffer */
    conv(g, "c", "c", "d");                       /* the residual is also the input: d gets its own */
    node(g, "Neg", "d", NULL, "e", 0, NULL);
    conv(g, "e", "d", "f");                       /* d is read after this: f gets its own */
    node(g, "Add", "f", "d", "h", 0, NULL);
    node(g, "Reshape", "h", "flat", "hv", 0, NULL);  /* view of h */
    node(g, "Reshape", "hv", "cube", "hc", 0, NULL); /* view of h */
    node(g, "Tanh", "h", NULL, "t", 0, NULL);
    conv(g, "t", "hc", "Y");                      /* the last reader of h, through views: Y takes h's buffer */
    graph_add_output(g, "Y", LENS_DTYPE_FLOAT32, -1, NULL);
    CHECK(graph_finalize(g) == LENS_OK);
    return g;
}

static void test_inplace(void) {
    graph *g = build_residuals();
    tensor shape = {.dtype = LENS_DTYPE_FLOAT32, .rank = 4, .dims = {1, RC, RH, RW}};
    graph_plan *plain = NULL, *shared = NULL;
    graph_plan_set_views(0);
    CHECK(graph_plan_create(g, &shape, 1, NULL, &plain) == LENS_OK);
    graph_plan_set_views(1);
    CHECK(graph_plan_create(g, &shape, 1, NULL, &shared) == LENS_OK);
    if (plain && shared) {
        for (int run = 0; run < 2; run++) {
            float x[RN], y[2][RN];
            for (int i = 0; i < RN; i++) x[i] = (float)((i * 7 + run * 11) % 13) / 3.0f - 2.0f;
            graph_plan *plans[2] = {plain, shared};
            for (int k = 0; k < 2; k++) {
                tensor in = {.dtype = LENS_DTYPE_FLOAT32, .rank = 4, .dims = {1, RC, RH, RW}, .data = x}, out;
                CHECK_MSG(graph_plan_run(plans[k], &in, &out) == LENS_OK, "%s", core_last_error());
                memcpy(y[k], out.data, sizeof y[k]);
            }
            CHECK_MSG(!memcmp(y[0], y[1], sizeof y[0]), "run %d: outputs differ with in-place convs", run);
        }
        const void *a = data_of(shared, g, "a"), *h = data_of(shared, g, "h");
        CHECK(a && data_of(shared, g, "c") == a);
        CHECK(data_of(shared, g, "d") != a);
        CHECK(data_of(shared, g, "f") != data_of(shared, g, "d"));
        CHECK(h && data_of(shared, g, "Y") == h);
        CHECK(data_of(plain, g, "c") != data_of(plain, g, "a"));
        CHECK(graph_plan_arena_bytes(shared) <= graph_plan_arena_bytes(plain));
    }
    graph_plan_free(plain);
    graph_plan_free(shared);
    graph_free(g);
}

int main(void) {
    test_views();
    test_inplace();
    return test_finish("test_plan_views");
}
