/* optimize.c — graph rewrites run once after import: constant folding of nodes whose inputs are all constants,
 * BatchNormalization folded into the Conv before it, the exported SiLU and exact-GELU chains made single
 * activations, and activations fused into the Conv/Gemm/MatMul before them.
 * Rewrites only the IR: originals stay untouched (they may be read-only file mappings); new constants live in the
 * graph's arena. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../graph.h"

static void *arena_alloc_cb(void *ctx, size_t bytes) { return graph_alloc(ctx, bytes ? bytes : 1); }

static lens_status node_failed(graph *g, const graph_node *n, lens_status st) {
    char label[256];
    return core_fail_context(st, "%s: %s", g->source, graph_node_label(n, label, sizeof label));
}

/* ---- Constant folding --------------------------------------------------------------------------------------------- */

static lens_status fold_constants(graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        graph_node *n = &g->nodes[i];
        if (n->removed || n->n_outputs > 8) continue;
        int all_const = 1;
        const tensor *inputs[32] = {0};
        if (n->n_inputs > 32) continue;
        for (int k = 0; k < n->n_inputs && all_const; k++) {
            if (n->inputs[k] < 0) continue;
            if (!(inputs[k] = g->values[n->inputs[k]].constant)) all_const = 0;
        }
        if (!all_const) continue;
        if (!graph_node_inputs_readable(g, n))
            return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory folding constants");
        tensor outs[8], *out_ptrs[8];
        for (int k = 0; k < n->n_outputs; k++) out_ptrs[k] = &outs[k];
        lens_status st = graph_node_eval(n, inputs, out_ptrs, NULL, arena_alloc_cb, g);
        if (st) return node_failed(g, n, st);
        for (int k = 0; k < n->n_outputs; k++) {
            int v = n->outputs[k];
            if (v < 0) continue;
            if ((st = graph_set_constant(g, g->values[v].name, &outs[k]))) return st;
        }
        n->removed = 1;
    }
    return LENS_OK;
}

/* ---- Use lists ------------------------------------------------------------------------------------------------------ */

static int is_graph_output(const graph *g, int v) {
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v) return 1;
    return 0;
}

lens_status graph_node_add_attrs(graph *g, graph_node *n, const op_attr *extra, int count) {
    op_attr *attrs = graph_alloc(g, sizeof(op_attr) * (size_t)(n->op.n_attrs + count));
    if (!attrs) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory rewriting node %s", n->op.name);
    if (n->op.n_attrs) memcpy(attrs, n->op.attrs, sizeof(op_attr) * (size_t)n->op.n_attrs);
    memcpy(attrs + n->op.n_attrs, extra, sizeof(op_attr) * (size_t)count);
    n->op.attrs = attrs;
    n->op.n_attrs += count;
    return LENS_OK;
}

lens_status graph_node_widen_inputs(graph *g, graph_node *n, int n_inputs) {
    int *inputs = graph_alloc(g, (size_t)n_inputs * sizeof(int));
    if (!inputs) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory rewriting node %s", n->op.name);
    for (int k = 0; k < n_inputs; k++) inputs[k] = k < n->n_inputs ? n->inputs[k] : -1;
    n->inputs = inputs;
    n->n_inputs = n_inputs;
    return LENS_OK;
}

int graph_use_count(const graph *g, int v) {
    int uses = is_graph_output(g, v);
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (n->removed) continue;
        for (int k = 0; k < n->n_inputs; k++) uses += n->inputs[k] == v;
    }
    return uses;
}

int graph_sole_consumer(const graph *g, int v) {
    if (is_graph_output(g, v)) return -1;
    int found = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (n->removed) continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == v) {
                if (found >= 0 && found != i) return -1;
                found = i;
            }
    }
    return found;
}

static const tensor *const_f32(const graph *g, const graph_node *n, int k) {
    if (k >= n->n_inputs || n->inputs[k] < 0) return NULL;
    const tensor *t = g->values[n->inputs[k]].constant;
    return t && t->dtype == LENS_DTYPE_FLOAT32 ? t : NULL;
}

static int only_first_output_used(const graph_node *n) {
    for (int k = 1; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0) return 0;
    return 1;
}

/* ---- BatchNormalization into Conv ------------------------------------------------------------------------------------ */

static lens_status add_constant(graph *g, const char *base, const char *what, const tensor *t, int *value) {
    char name[512];
    for (int i = 0;; i++) {
        snprintf(name, sizeof name, "lens::%s/%s/%d", base, what, i);
        if (graph_value_find(g, name) < 0) break;
    }
    lens_status st = graph_set_constant(g, name, t);
    if (st) return st;
    *value = graph_value_find(g, name);
    return LENS_OK;
}

static lens_status fold_batchnorm(graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        graph_node *conv = &g->nodes[i];
        if (conv->removed || strcmp(conv->op.op_type, "Conv") || conv->op.domain[0] || conv->n_outputs != 1) continue;
        const tensor *w = const_f32(g, conv, 1), *b = conv->n_inputs > 2 ? const_f32(g, conv, 2) : NULL;
        if (!w || w->rank < 3 || (conv->n_inputs > 2 && !b)) continue;
        int c = graph_sole_consumer(g, conv->outputs[0]);
        if (c < 0) continue;
        graph_node *bn = &g->nodes[c];
        if (strcmp(bn->op.op_type, "BatchNormalization") || bn->op.domain[0] || bn->n_inputs != 5 ||
            bn->inputs[0] != conv->outputs[0] || !only_first_output_used(bn) ||
            op_attr_int(&bn->op, "training_mode", 0))
            continue;
        const tensor *scale = const_f32(g, bn, 1), *shift = const_f32(g, bn, 2), *mean = const_f32(g, bn, 3),
                     *var = const_f32(g, bn, 4);
        int64_t cout = w->dims[0], per_out = tensor_numel(w) / (cout ? cout : 1);
        if (!scale || !shift || !mean || !var || tensor_numel(scale) != cout || tensor_numel(shift) != cout ||
            tensor_numel(mean) != cout || tensor_numel(var) != cout || (b && tensor_numel(b) != cout))
            continue;
        float eps = op_attr_float(&bn->op, "epsilon", 1e-5f);
        tensor nw = *w, nb = {.dtype = LENS_DTYPE_FLOAT32, .rank = 1, .dims = {cout}};
        nw.data = graph_alloc(g, tensor_bytes(w));
        nb.data = graph_alloc(g, (size_t)cout * sizeof(float));
        if (!nw.data || !nb.data || !graph_node_inputs_readable(g, conv) || !graph_node_inputs_readable(g, bn))
            return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory folding BatchNormalization");
        const float *wd = w->data, *sd = scale->data, *hd = shift->data, *md = mean->data, *vd = var->data;
        float *nwd = nw.data, *nbd = nb.data;
        for (int64_t o = 0; o < cout; o++) {
            float s = sd[o] / sqrtf(vd[o] + eps);
            for (int64_t j = 0; j < per_out; j++) nwd[o * per_out + j] = wd[o * per_out + j] * s;
            nbd[o] = ((b ? ((const float *)b->data)[o] : 0.0f) - md[o]) * s + hd[o];
        }
        int wv, bv;
        const char *base = conv->op.name[0] ? conv->op.name : "conv";
        lens_status st;
        if ((st = add_constant(g, base, "weight", &nw, &wv)) || (st = add_constant(g, base, "bias", &nb, &bv))) return st;
        int *inputs = graph_alloc(g, 3 * sizeof(int));
        if (!inputs) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory folding BatchNormalization");
        inputs[0] = conv->inputs[0];
        inputs[1] = wv;
        inputs[2] = bv;
        conv = &g->nodes[i]; /* graph_set_constant may have grown values, not nodes; re-read for clarity */
        conv->inputs = inputs;
        conv->n_inputs = 3;
        conv->outputs[0] = bn->outputs[0];
        bn->removed = 1;
    }
    return LENS_OK;
}

/* ---- SiLU and GELU from their exported forms ------------------------------------------------------------------------ */

/* The single float32 value of constant input k of n, or NAN when it is not one. */
static float scalar_input(const graph *g, const graph_node *n, int k) {
    const tensor *t = const_f32(g, n, k);
    return t && tensor_numel(t) == 1 ? *(const float *)t->data : NAN;
}

static int is_op(const graph_node *n, const char *op_type, int n_inputs) {
    return !n->removed && !n->op.domain[0] && !strcmp(n->op.op_type, op_type) && n->n_inputs == n_inputs &&
           n->n_outputs == 1 && n->outputs[0] >= 0;
}

/* The node that alone reads value v when it is a 2-input op_type (Mul, Add, Div) reading v; -1 otherwise. With
 * other_side, also its other input's index (0 or 1). */
static int sole_binary_consumer(const graph *g, int v, const char *op_type, int *other_side) {
    int c = graph_sole_consumer(g, v);
    if (c < 0 || !is_op(&g->nodes[c], op_type, 2)) return -1;
    const graph_node *n = &g->nodes[c];
    if ((n->inputs[0] == v) == (n->inputs[1] == v)) return -1; /* v on exactly one side */
    *other_side = n->inputs[0] == v ? 1 : 0;
    return c;
}

/* Does input k of n hold the scalar want (to within float rounding of the exporter's constant)? */
static int input_is(const graph *g, const graph_node *n, int k, float want) {
    return fabsf(scalar_input(g, n, k) - want) <= 1e-6f * fabsf(want);
}

/* Turns node n into the one-input activation (domain, op_type) of x, writing value out; the chain it replaces is
 * marked removed by the caller. */
static lens_status become_activation(graph_node *n, const char *domain, const char *op_type, int x, int out) {
    const op_def *def = ops_lookup(domain, op_type);
    if (!def) return core_fail(LENS_ERR_UNSUPPORTED, "optimizer: op %s is not registered", op_type);
    n->op.domain = domain;
    n->op.op_type = op_type;
    n->op.n_attrs = 0;
    n->op.attrs = NULL;
    n->def = def;
    n->n_inputs = 1;
    n->inputs[0] = x;
    n->outputs[0] = out;
    return LENS_OK;
}

/* Sigmoid(x) then Mul(x, sigmoid) (either order) -> lens Silu(x): one pass over memory instead of two, and an
 * activation the producing Conv can take as its epilogue. The sigmoid must have no other reader. */
static lens_status fuse_silu(graph *g, int i) {
    graph_node *s = &g->nodes[i];
    if (!is_op(s, "Sigmoid", 1) || s->inputs[0] < 0) return LENS_OK;
    int side, m = sole_binary_consumer(g, s->outputs[0], "Mul", &side);
    if (m < 0 || g->nodes[m].inputs[side] != s->inputs[0]) return LENS_OK;
    g->nodes[m].removed = 1;
    return become_activation(s, "lens", "Silu", s->inputs[0], g->nodes[m].outputs[0]);
}

/* The exact GELU as torch exports it: Div(x, sqrt 2) or Mul(x, 1/sqrt 2), Erf, Add 1, then either Mul by x and Mul
 * by 0.5, or Mul by (x * 0.5); any operand order. Every intermediate must have this chain as its only reader. */
static lens_status fuse_gelu(graph *g, int i) {
    graph_node *e = &g->nodes[i];
    if (!is_op(e, "Erf", 1) || e->inputs[0] < 0) return LENS_OK;
    int d = g->values[e->inputs[0]].producer, side, x = -1;
    if (d < 0 || graph_sole_consumer(g, e->inputs[0]) != i) return LENS_OK;
    const graph_node *dn = &g->nodes[d];
    if (is_op(dn, "Div", 2) && input_is(g, dn, 1, 1.41421356f)) x = dn->inputs[0];
    else if (is_op(dn, "Mul", 2) && input_is(g, dn, 1, 0.70710678f)) x = dn->inputs[0];
    else if (is_op(dn, "Mul", 2) && input_is(g, dn, 0, 0.70710678f)) x = dn->inputs[1];
    if (x < 0 || g->values[x].constant) return LENS_OK;
    int a = sole_binary_consumer(g, e->outputs[0], "Add", &side);
    if (a < 0 || !input_is(g, &g->nodes[a], side, 1.0f)) return LENS_OK;
    int m1 = sole_binary_consumer(g, g->nodes[a].outputs[0], "Mul", &side);
    if (m1 < 0) return LENS_OK;
    int other = g->nodes[m1].inputs[side], m2 = -1, h = -1, out;
    if (other == x) { /* Mul(x, 1 + erf) then Mul by 0.5 */
        int half_side;
        m2 = sole_binary_consumer(g, g->nodes[m1].outputs[0], "Mul", &half_side);
        if (m2 < 0 || !input_is(g, &g->nodes[m2], half_side, 0.5f)) return LENS_OK;
        out = g->nodes[m2].outputs[0];
    } else { /* Mul(x * 0.5, 1 + erf) */
        h = other >= 0 ? g->values[other].producer : -1;
        if (h < 0 || !is_op(&g->nodes[h], "Mul", 2) || graph_sole_consumer(g, other) != m1) return LENS_OK;
        const graph_node *hn = &g->nodes[h];
        if (!((hn->inputs[0] == x && input_is(g, hn, 1, 0.5f)) || (hn->inputs[1] == x && input_is(g, hn, 0, 0.5f))))
            return LENS_OK;
        out = g->nodes[m1].outputs[0];
    }
    g->nodes[d].removed = g->nodes[a].removed = g->nodes[m1].removed = 1;
    if (m2 >= 0) g->nodes[m2].removed = 1;
    if (h >= 0) g->nodes[h].removed = 1;
    return become_activation(e, "", "Gelu", x, out);
}

static lens_status fuse_activation_chains(graph *g) {
    lens_status st;
    for (int i = 0; i < g->n_nodes; i++)
        if ((st = fuse_silu(g, i)) || (st = fuse_gelu(g, i))) return st;
    return LENS_OK;
}

/* ---- Activation fusion ------------------------------------------------------------------------------------------------ */

/* Describes node a as a fusable activation; returns 0 when it is not one. */
static int as_activation(const graph *g, const graph_node *a, const char **name, float *alpha, float *beta) {
    const char *t = a->op.op_type;
    *alpha = 0;
    *beta = 0;
    if (!strcmp(a->op.domain, "lens") && !strcmp(t, "Silu")) {
        *name = t;
        return a->n_inputs == 1;
    }
    if (a->op.domain[0] || !only_first_output_used(a)) return 0;
    if (!strcmp(t, "Relu") || !strcmp(t, "Sigmoid") || !strcmp(t, "HardSwish") || !strcmp(t, "Tanh")) {
        *name = t;
        return a->n_inputs == 1;
    }
    if (!strcmp(t, "Gelu")) {
        *name = t;
        return a->n_inputs == 1 && !strcmp(op_attr_string(&a->op, "approximate", "none"), "none");
    }
    if (!strcmp(t, "LeakyRelu")) {
        *name = t;
        *alpha = op_attr_float(&a->op, "alpha", 0.01f);
        return a->n_inputs == 1;
    }
    if (!strcmp(t, "HardSigmoid")) {
        *name = t;
        *alpha = op_attr_float(&a->op, "alpha", 0.2f);
        *beta = op_attr_float(&a->op, "beta", 0.5f);
        return a->n_inputs == 1;
    }
    if (!strcmp(t, "Clip")) {
        *name = t;
        *alpha = -INFINITY;
        *beta = INFINITY;
        if (a->op.opset < 11) {
            *alpha = op_attr_float(&a->op, "min", -INFINITY);
            *beta = op_attr_float(&a->op, "max", INFINITY);
            return 1;
        }
        for (int k = 1; k < a->n_inputs; k++) {
            if (a->inputs[k] < 0) continue;
            const tensor *c = g->values[a->inputs[k]].constant;
            if (!c || c->dtype != LENS_DTYPE_FLOAT32 || tensor_numel(c) != 1) return 0;
            *(k == 1 ? alpha : beta) = *(const float *)c->data;
        }
        return 1;
    }
    return 0;
}

static lens_status fuse_activations(graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        graph_node *p = &g->nodes[i];
        if (p->removed || p->op.domain[0] || p->n_outputs != 1 || op_attr_find(&p->op, "lens.activation")) continue;
        if (strcmp(p->op.op_type, "Conv") && strcmp(p->op.op_type, "Gemm") && strcmp(p->op.op_type, "MatMul")) continue;
        int c = graph_sole_consumer(g, p->outputs[0]);
        if (c < 0) continue;
        graph_node *a = &g->nodes[c];
        const char *name;
        float alpha, beta;
        if (a->inputs[0] != p->outputs[0] || !as_activation(g, a, &name, &alpha, &beta)) continue;
        const op_attr x[3] = {
            {.name = "lens.activation", .type = OP_ATTR_STRING, .s = name, .s_len = strlen(name)},
            {.name = "lens.activation_alpha", .type = OP_ATTR_FLOAT, .f = alpha},
            {.name = "lens.activation_beta", .type = OP_ATTR_FLOAT, .f = beta},
        };
        lens_status st = graph_node_add_attrs(g, p, x, 3);
        if (st) return st;
        p->outputs[0] = a->outputs[0];
        a->removed = 1;
    }
    return LENS_OK;
}

/* ---- Identity removal ------------------------------------------------------------------------------------------------- */

/* Identity and inference-mode Dropout forward their input: readers of the output read the input instead. */
static void remove_identities(graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        graph_node *n = &g->nodes[i];
        if (n->removed || n->op.domain[0] || n->n_inputs < 1 || n->inputs[0] < 0 || !only_first_output_used(n)) continue;
        if (strcmp(n->op.op_type, "Identity") && strcmp(n->op.op_type, "Dropout")) continue;
        if (!strcmp(n->op.op_type, "Dropout") && n->n_inputs > 2) continue; /* training_mode input */
        int from = n->outputs[0], to = n->inputs[0];
        if (from < 0 || is_graph_output(g, from)) continue;
        for (int j = 0; j < g->n_nodes; j++)
            for (int k = 0; k < g->nodes[j].n_inputs; k++)
                if (g->nodes[j].inputs[k] == from) g->nodes[j].inputs[k] = to;
        n->removed = 1;
    }
}

lens_status graph_optimize(graph *g) {
    lens_status st;
    remove_identities(g);
    if ((st = fold_constants(g))) return st;
    if ((st = fold_batchnorm(g))) return st;
    if ((st = graph_fuse_linear(g))) return st;
    if ((st = fuse_activation_chains(g))) return st;
    if ((st = fuse_activations(g))) return st;
    graph_update_producers(g);
    return LENS_OK;
}

/* ---- Residual fusion (needs shapes) ------------------------------------------------------------------------------------ */

static int same_shape(const tensor *a, const tensor *b) {
    return a && b && a->dtype == LENS_DTYPE_FLOAT32 && b->dtype == LENS_DTYPE_FLOAT32 && tensor_same_shape(a, b);
}

/* ---- Squeeze-excitation scale into the next pointwise Conv (needs shapes) -------------------------------------------- */

/* Whether Conv node c is 1x1, stride 1, unpadded, group 1 with constant weights: a GEMM on its input as it lies. */
static int is_plain_pointwise(const graph *g, const graph_node *c) {
    if (c->removed || strcmp(c->op.op_type, "Conv") || c->op.domain[0] || c->n_outputs != 1 || c->n_inputs < 2 ||
        c->n_inputs > 4 || op_attr_int(&c->op, "group", 1) != 1)
        return 0;
    const tensor *w = const_f32(g, c, 1);
    if (!w || w->rank != 4 || w->dims[2] != 1 || w->dims[3] != 1) return 0;
    const int64_t *v;
    size_t n = op_attr_ints(&c->op, "strides", &v);
    for (size_t i = 0; i < n; i++)
        if (v[i] != 1) return 0;
    n = op_attr_ints(&c->op, "pads", &v);
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0) return 0;
    const char *auto_pad = op_attr_string(&c->op, "auto_pad", "NOTSET");
    return !auto_pad[0] || !strcmp(auto_pad, "NOTSET") || !strcmp(auto_pad, "VALID");
}

/* Mul(X, s) with s [N or 1, C, 1, 1] (a squeeze-excitation gate) read only by a pointwise Conv -> that Conv with
 * lens.input_scale and s as its 5th input: the Conv scales its weights' columns per image (cout x cin floats)
 * instead of the Mul streaming X [N, C, H, W] out and back in. Declined unless the weights are under a quarter of
 * one image's X (late, small-map layers keep the Mul): scaling them would cost about as much as the Mul. */
static lens_status fold_channel_scales(graph *g, const graph_plan *probe) {
    for (int i = 0; i < g->n_nodes; i++) {
        graph_node *m = &g->nodes[i];
        if (!is_op(m, "Mul", 2) || m->inputs[0] < 0 || m->inputs[1] < 0) continue;
        int c = graph_sole_consumer(g, m->outputs[0]);
        if (c < 0 || !is_plain_pointwise(g, &g->nodes[c])) continue;
        graph_node *conv = &g->nodes[c];
        int only_x = conv->inputs[0] == m->outputs[0]; /* the Conv reads the product as X and nothing else */
        for (int k = 1; k < conv->n_inputs; k++)
            if (conv->inputs[k] == m->outputs[0]) only_x = 0;
        if (!only_x) continue;
        const tensor *y = graph_plan_value(probe, m->outputs[0]), *w = const_f32(g, conv, 1);
        for (int side = 0; side < 2; side++) {
            int xv = m->inputs[side], sv = m->inputs[1 - side];
            const tensor *x = graph_plan_value(probe, xv), *sc = graph_plan_value(probe, sv);
            if (!x || !sc || !y || !same_shape(x, y) || x->rank != 4 || sc->rank != 4 ||
                sc->dtype != LENS_DTYPE_FLOAT32 || (sc->dims[0] != x->dims[0] && sc->dims[0] != 1) ||
                sc->dims[1] != x->dims[1] || sc->dims[2] != 1 || sc->dims[3] != 1 || w->dims[1] != x->dims[1])
                continue;
            /* Scaled weights per image vs the Mul's pass over one image: the scaling runs on one thread before the
             * GEMM while the Mul was threaded, so it must be well below X (EfficientNet-B0, 2 threads: weights at
             * 0.05 of X win 0.03-0.05 ms a block, at 0.4-0.6 they lose up to 0.006) */
            if (4 * w->dims[0] * w->dims[1] >= x->dims[1] * x->dims[2] * x->dims[3]) break;
            /* s must be ready when the Conv runs: it is, as the Mul (before the Conv) read it */
            const op_attr flag = {.name = "lens.input_scale", .type = OP_ATTR_INT, .i = 1};
            lens_status st = graph_node_widen_inputs(g, conv, 5);
            if (!st) st = graph_node_add_attrs(g, conv, &flag, 1);
            if (st) return st;
            conv->inputs[0] = xv;
            conv->inputs[4] = sv;
            m->removed = 1;
            break;
        }
    }
    return LENS_OK;
}

/* Whether node n (with shapes from probe) gives its first input's bytes unchanged, only under another shape: the
 * reshaping ops, and a Transpose that moves nothing but dims of size 1 (ViT's out-projection [S, 1, E] -> [1, S, E]).
 * The planner makes these views; here it matters only that the bytes stay in order. */
static int keeps_bytes(const graph_node *n, const graph_plan *probe) {
    const char *op = n->op.op_type;
    if (n->op.domain[0] || n->n_inputs < 1 || n->n_outputs != 1 || n->inputs[0] < 0 || n->outputs[0] < 0) return 0;
    const tensor *x = graph_plan_value(probe, n->inputs[0]), *y = graph_plan_value(probe, n->outputs[0]);
    if (!x || !y || x->dtype != LENS_DTYPE_FLOAT32 || y->dtype != LENS_DTYPE_FLOAT32 ||
        tensor_numel(x) != tensor_numel(y))
        return 0;
    if (!strcmp(op, "Reshape") || !strcmp(op, "Flatten") || !strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze") ||
        !strcmp(op, "Identity"))
        return 1;
    if (strcmp(op, "Transpose") || n->n_inputs != 1) return 0;
    const op_attr *perm = op_attr_find(&n->op, "perm");
    if (!perm || perm->type != OP_ATTR_INTS || perm->count != (size_t)x->rank) return 0;
    int64_t last = -1;
    for (int k = 0; k < x->rank; k++) {
        int64_t p = perm->ints[k];
        if (p < 0 || p >= x->rank) return 0;
        if (x->dims[p] == 1) continue;
        if (p < last) return 0;
        last = p;
    }
    return 1;
}

/* Whether node reader is the only one that reads v's data: not a graph output, and any other reader is a Shape or
 * Size, which see only the dims (PyTorch's exports take the Reshape targets from Shape of the product). */
static int sole_data_reader(const graph *g, int v, int reader) {
    if (is_graph_output(g, v)) return 0;
    int found = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (n->removed) continue;
        for (int k = 0; k < n->n_inputs; k++) {
            if (n->inputs[k] != v) continue;
            if (i == reader) found = 1;
            else if (n->op.domain[0] || (strcmp(n->op.op_type, "Shape") && strcmp(n->op.op_type, "Size"))) return 0;
        }
    }
    return found;
}

/* The Gemm or MatMul whose output reaches value v through byte-keeping ops (keeps_bytes) alone, each value on the
 * way read by nothing else (sole_data_reader): its node index, or -1. A Transpose may only be the last step (its
 * output is v); *transpose is it, or NULL. */
static int product_through_views(const graph *g, const graph_plan *probe, int v, int add,
                                 const graph_node **transpose) {
    int consumer = add;
    *transpose = NULL;
    for (int depth = 0; depth < 4 && v >= 0; depth++) {
        int p = g->values[v].producer;
        if (p < 0 || !sole_data_reader(g, v, consumer)) return -1;
        const graph_node *n = &g->nodes[p];
        if (n->removed) return -1;
        if (!n->op.domain[0] && n->n_outputs == 1 &&
            (!strcmp(n->op.op_type, "Gemm") || !strcmp(n->op.op_type, "MatMul")))
            return p;
        if (!keeps_bytes(n, probe)) return -1;
        /* a Transpose keeps the bytes only while the dims it moves are 1, as at the probe's batch 1; the product
         * learns its perm and reads the residual through it, so only the last step may be one */
        if (!strcmp(n->op.op_type, "Transpose")) {
            if (depth > 0) return -1;
            *transpose = n;
        }
        consumer = p;
        v = n->inputs[0];
    }
    return -1;
}

/* Y + other where Y is a Gemm's or MatMul's product seen through reshapes and at most one Transpose (PyTorch's
 * attention out-projection: Gemm -> Reshape [S, B, E] -> Transpose [B, S, E] -> Add): the product takes other as
 * its lens.residual input, and the Add's readers read the reshaped product instead. Reshapes keep the bytes at
 * every batch size; the Transpose only while B is 1, so the Gemm gets its perm (lens.residual_perm) and reads the
 * residual in place where the perm moves only dims of size 1, permuted otherwise. */
static lens_status fuse_residual_through_views(graph *g, const graph_plan *probe, int i) {
    graph_node *add = &g->nodes[i];
    if (is_graph_output(g, add->outputs[0])) return LENS_OK;
    for (int side = 0; side < 2; side++) {
        int t = add->inputs[side], other = add->inputs[1 - side];
        if (t < 0 || other < 0 || t == other || g->values[other].constant) continue;
        const graph_node *transpose;
        int c = product_through_views(g, probe, t, i, &transpose);
        if (c < 0 || g->values[other].producer >= c) continue;
        graph_node *prod = &g->nodes[c];
        if (transpose && strcmp(prod->op.op_type, "Gemm")) continue; /* only Gemm reads a permuted residual */
        if (op_attr_find(&prod->op, "lens.activation") || op_attr_find(&prod->op, "lens.residual") ||
            prod->n_inputs > 3)
            continue;
        const tensor *a = graph_plan_value(probe, t), *b = graph_plan_value(probe, other),
                     *o = graph_plan_value(probe, add->outputs[0]);
        if (!same_shape(a, b) || !same_shape(a, o)) continue;
        if (!strcmp(prod->op.op_type, "Gemm")) { /* its C must be absent or the bias row the epilogue adds */
            const tensor *y = graph_plan_value(probe, prod->outputs[0]);
            const tensor *bias = prod->n_inputs > 2 && prod->inputs[2] >= 0 ? graph_plan_value(probe, prod->inputs[2])
                                                                           : NULL;
            const op_attr *beta = op_attr_find(&prod->op, "beta");
            if (!y || y->rank != 2 || (prod->n_inputs > 2 && prod->inputs[2] >= 0 && !bias)) continue;
            if (bias && (tensor_numel(bias) != y->dims[1] || bias->rank > 2 || (bias->rank == 2 && bias->dims[0] != 1) ||
                         (beta && beta->f != 1.0f)))
                continue;
        }
        op_attr flags[2] = {{.name = "lens.residual", .type = OP_ATTR_INT, .i = 1}};
        if (transpose) { /* the ints are graph memory: the attribute may share them */
            flags[1] = *op_attr_find(&transpose->op, "perm");
            flags[1].name = "lens.residual_perm";
        }
        lens_status st = graph_node_widen_inputs(g, prod, 4);
        if (!st) st = graph_node_add_attrs(g, prod, flags, transpose ? 2 : 1);
        if (st) return st;
        prod->inputs[3] = other;
        int from = add->outputs[0];
        add->removed = 1;
        for (int j = 0; j < g->n_nodes; j++)
            for (int k = 0; k < g->nodes[j].n_inputs; k++)
                if (g->nodes[j].inputs[k] == from) g->nodes[j].inputs[k] = t;
        return LENS_OK;
    }
    return LENS_OK;
}

lens_status graph_optimize_with_shapes(graph *g, const graph_plan *probe) {
    lens_status fused = graph_fuse_attention(g, probe);
    if (fused) return fused;
    for (int i = 0; i < g->n_nodes; i++) {
        graph_node *add = &g->nodes[i];
        if (add->removed || strcmp(add->op.op_type, "Add") || add->op.domain[0] || add->n_inputs != 2 ||
            add->n_outputs != 1 || add->outputs[0] < 0)
            continue;
        for (int side = 0; side < 2; side++) {
            int conv_out = add->inputs[side], other = add->inputs[1 - side];
            if (conv_out < 0 || other < 0 || conv_out == other || g->values[other].constant) continue;
            int c = g->values[conv_out].producer;
            /* the other operand must be ready when the Conv runs */
            if (c < 0 || c > i || g->values[other].producer >= c) continue;
            graph_node *conv = &g->nodes[c];
            const int transpose = !strcmp(conv->op.op_type, "Transpose");
            const int product = !strcmp(conv->op.op_type, "Conv") || !strcmp(conv->op.op_type, "MatMul");
            if (conv->removed || !(product || transpose) || conv->op.domain[0] || conv->n_outputs != 1 ||
                conv->n_inputs > (transpose ? 1 : 3) || op_attr_find(&conv->op, "lens.activation") ||
                op_attr_find(&conv->op, "lens.residual") || graph_sole_consumer(g, conv_out) != i)
                continue;
            const tensor *a = graph_plan_value(probe, conv_out), *b = graph_plan_value(probe, other),
                         *o = graph_plan_value(probe, add->outputs[0]);
            if (!same_shape(a, b) || !same_shape(a, o)) continue;
            /* Conv(x, W, B) + other → Conv(x, W, B, other) with lens.residual; MatMul(x, W, bias) alike (the
             * bias is the fused lens.bias, or absent); Transpose(x) + other → Transpose(x, other) (ConvNeXt's
             * block output permuted back to NCHW plus the block's input: one pass over memory instead of two) */
            const op_attr flag = {.name = "lens.residual", .type = OP_ATTR_INT, .i = 1};
            const int at = transpose ? 1 : 3;
            lens_status st = graph_node_widen_inputs(g, conv, at + 1);
            if (!st) st = graph_node_add_attrs(g, conv, &flag, 1);
            if (st) return st;
            conv->inputs[at] = other;
            conv->outputs[0] = add->outputs[0];
            add->removed = 1;
            break;
        }
        if (!add->removed) {
            lens_status st = fuse_residual_through_views(g, probe, i);
            if (st) return st;
        }
    }
    graph_update_producers(g);
    lens_status st = fuse_activations(g);
    graph_update_producers(g);
    if (st) return st;
    st = fold_channel_scales(g, probe);
    graph_update_producers(g);
    if (!st) st = graph_select_rows(g, probe);
    return st;
}
