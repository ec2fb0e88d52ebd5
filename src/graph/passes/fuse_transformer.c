/* fuse_transformer.c — rewrites for the linear layers and attention of transformer-style models (ViT, ConvNeXt,
 * Swin as PyTorch exports them):
 *   - MatMul(x, W) + b, b a constant vector: the bias goes into the MatMul's GEMM epilogue ("lens.bias");
 *   - a constant per-channel Mul after such a MatMul (ConvNeXt's layer scale), possibly behind a Transpose that
 *     moves the channel axis: folded into W and b;
 *   - LayerNormalization over channels between NCHW → NHWC (and back) Transposes: normalises NCHW input directly;
 *   - (with shapes) the core of nn.MultiheadAttention, from the head-splitting Reshapes to the Transpose back, into
 *     one lens.Attention node (src/ops/attention.c).
 * Rewrites only the IR; new constants live in the graph's arena. */
#include <stdio.h>
#include <string.h>

#include "../graph.h"

/* ---- Graph queries ---------------------------------------------------------------------------------------------- */

/* The live node of the default domain producing v with op_type and one output, or NULL. */
static graph_node *producer_of(graph *g, int v, const char *op_type) {
    if (v < 0 || g->values[v].producer < 0) return NULL;
    graph_node *n = &g->nodes[g->values[v].producer];
    if (n->removed || n->op.domain[0] || strcmp(n->op.op_type, op_type) || n->n_outputs != 1) return NULL;
    return n;
}

/* The float32 constant of input k of n, or NULL. */
static const tensor *float_constant(const graph *g, const graph_node *n, int k) {
    if (k >= n->n_inputs || n->inputs[k] < 0) return NULL;
    const tensor *t = g->values[n->inputs[k]].constant;
    return t && t->dtype == LENS_DTYPE_FLOAT32 && graph_constant_has_data(g, n->inputs[k]) ? t : NULL;
}

static int is_node(const graph_node *n, const char *op_type, int n_inputs) {
    return !n->removed && !n->op.domain[0] && !strcmp(n->op.op_type, op_type) && n->n_inputs == n_inputs &&
           n->n_outputs == 1 && n->outputs[0] >= 0;
}

/* A MatMul whose right operand is a constant matrix, without a fused activation: its weight in *w. */
static graph_node *weight_matmul(graph *g, int v, const tensor **w) {
    graph_node *mm = producer_of(g, v, "MatMul");
    if (!mm || op_attr_find(&mm->op, "lens.activation")) return NULL;
    *w = float_constant(g, mm, 1);
    return *w && (*w)->rank == 2 ? mm : NULL;
}

/* Registers t (data in graph memory) as a new constant named after base; returns its value or -1. */
static int new_constant(graph *g, const char *base, const char *what, const tensor *t) {
    char name[512];
    int suffix = 0;
    do snprintf(name, sizeof name, "lens::%s/%s/%d", base, what, suffix++);
    while (graph_value_find(g, name) >= 0);
    return graph_set_constant(g, name, t) ? -1 : graph_value_find(g, name);
}

/* The node reading v when v has exactly one use, a node (not a graph output), or NULL. */
static graph_node *sole_reader(graph *g, int v) {
    if (v < 0 || graph_use_count(g, v) != 1) return NULL;
    int c = graph_sole_consumer(g, v);
    return c >= 0 ? &g->nodes[c] : NULL;
}

#define LAYERNORM_FUSE_MAX_CHANNELS 384

/* ---- MatMul + bias ---------------------------------------------------------------------------------------------- */

/* Add(MatMul(x, W), b) with b a constant [N], N the columns of W, and the MatMul read only by the Add. */
static lens_status fuse_bias(graph *g, graph_node *add) {
    if (!is_node(add, "Add", 2)) return LENS_OK;
    for (int side = 0; side < 2; side++) {
        const tensor *bias = float_constant(g, add, 1 - side), *w;
        graph_node *mm = weight_matmul(g, add->inputs[side], &w);
        if (!bias || !mm || bias->rank != 1 || mm->n_inputs != 2 || bias->dims[0] != w->dims[1] ||
            graph_use_count(g, add->inputs[side]) != 1)
            continue;
        int *inputs = graph_alloc(g, 3 * sizeof(int));
        if (!inputs) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory fusing a MatMul bias");
        inputs[0] = mm->inputs[0];
        inputs[1] = mm->inputs[1];
        inputs[2] = add->inputs[1 - side];
        op_attr flag = {.name = "lens.bias", .type = OP_ATTR_INT, .i = 1};
        lens_status st = graph_node_add_attrs(g, mm, &flag, 1);
        if (st) return st;
        mm->inputs = inputs;
        mm->n_inputs = 3;
        mm->outputs[0] = add->outputs[0];
        add->removed = 1;
        graph_update_producers(g);
        return LENS_OK;
    }
    return LENS_OK;
}

/* ---- Per-channel scale into the weights ------------------------------------------------------------------------- */

/* Whether gamma multiplies a rank-`rank` tensor (rank 0: unknown, then gamma must be a vector) by one factor per
 * index of axis `axis` of size n (or by one factor overall), without broadcasting it to a larger shape. */
static int per_channel(const tensor *gamma, int rank, int axis, int64_t n) {
    int64_t count = tensor_numel(gamma);
    if (count != 1 && count != n) return 0;
    if (rank == 0) return gamma->rank <= 1;
    if (gamma->rank > rank) return 0;
    for (int a = 0; a < gamma->rank; a++)
        if (gamma->dims[a] != 1 && rank - gamma->rank + a != axis) return 0;
    return 1;
}

/* Mul(MatMul(x, W, b), gamma) or Mul(Transpose(MatMul(x, W, b)), gamma), gamma constant per output column:
 * MatMul(x, W diag(gamma), b * gamma), each intermediate read only by the next. */
static lens_status fold_scale(graph *g, graph_node *mul) {
    if (!is_node(mul, "Mul", 2)) return LENS_OK;
    for (int side = 0; side < 2; side++) {
        const tensor *gamma = float_constant(g, mul, 1 - side), *w;
        int x = mul->inputs[side];
        if (!gamma || graph_use_count(g, x) != 1) continue;
        graph_node *tr = producer_of(g, x, "Transpose"), *mm;
        int rank = 0, axis = 0;
        if (tr) {
            const int64_t *perm;
            rank = (int)op_attr_ints(&tr->op, "perm", &perm);
            axis = -1;
            for (int a = 0; a < rank; a++)
                if (perm[a] == rank - 1) axis = a;
            if (axis < 0 || tr->n_inputs != 1 || graph_use_count(g, tr->inputs[0]) != 1) continue;
            mm = weight_matmul(g, tr->inputs[0], &w);
        } else {
            mm = weight_matmul(g, x, &w);
        }
        if (!mm) continue;
        const tensor *bias = mm->n_inputs == 3 ? float_constant(g, mm, 2) : NULL;
        if ((mm->n_inputs == 3 && !bias) || !per_channel(gamma, rank, axis, w->dims[1])) continue;
        int64_t k_dim = w->dims[0], n_dim = w->dims[1];
        if (!graph_node_inputs_readable(g, mm) || !graph_node_inputs_readable(g, mul))
            return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory folding a scale");
        const float *gd = gamma->data, *wd = w->data;
        tensor nw = *w, nb = bias ? *bias : (tensor){0};
        float *wn = graph_alloc(g, tensor_bytes(w)), *bn = bias ? graph_alloc(g, tensor_bytes(bias)) : NULL;
        int *inputs = graph_alloc(g, (size_t)mm->n_inputs * sizeof(int));
        if (!wn || (bias && !bn) || !inputs) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory folding a scale");
        int64_t step = tensor_numel(gamma) == 1 ? 0 : 1;
        for (int64_t r = 0; r < k_dim; r++)
            for (int64_t c = 0; c < n_dim; c++) wn[r * n_dim + c] = wd[r * n_dim + c] * gd[c * step];
        for (int64_t c = 0; bias && c < n_dim; c++) bn[c] = ((const float *)bias->data)[c] * gd[c * step];
        nw.data = wn, nb.data = bn;
        const char *base = mm->op.name[0] ? mm->op.name : "matmul";
        memcpy(inputs, mm->inputs, (size_t)mm->n_inputs * sizeof(int));
        if ((inputs[1] = new_constant(g, base, "scaled_weight", &nw)) < 0 ||
            (bias && (inputs[2] = new_constant(g, base, "scaled_bias", &nb)) < 0))
            return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory folding a scale");
        mm->inputs = inputs;
        (tr ? tr : mm)->outputs[0] = mul->outputs[0];
        mul->removed = 1;
        graph_update_producers(g);
        return LENS_OK;
    }
    return LENS_OK;
}

/* ---- Channels-last ↔ channels-first transposes ----------------------------------------------------------------- */

/* Whether t is a Transpose of rank >= 3 moving the last axis to axis 1 ([0, r-1, 1, ..., r-2]: NHWC → NCHW), or
 * with to_last, axis 1 to the end ([0, 2, ..., r-1, 1]: NCHW → NHWC). */
static int is_channel_transpose(const graph_node *t, int to_last) {
    const int64_t *perm;
    int rank = (int)op_attr_ints(&t->op, "perm", &perm);
    if (!is_node(t, "Transpose", 1) || rank < 3 || perm[0] != 0) return 0;
    for (int a = 1; a < rank; a++) {
        int64_t want = to_last ? (a == rank - 1 ? 1 : a + 1) : (a == 1 ? rank - 1 : a - 1);
        if (perm[a] != want) return 0;
    }
    return 1;
}

/* LayerNormalization over the last axis of Transpose_NCHW→NHWC(x): normalises x over axis 1 directly
 * ("lens.channels_first"); when a Transpose back to NCHW follows, it writes NCHW too ("lens.channels_first_output"). */
static lens_status fuse_channels_first_layernorm(graph *g, graph_node *ln) {
    if (ln->removed || ln->op.domain[0] || strcmp(ln->op.op_type, "LayerNormalization") || ln->n_inputs < 2 ||
        ln->n_outputs < 1 || ln->outputs[0] < 0 || op_attr_find(&ln->op, "lens.channels_first") ||
        op_attr_find(&ln->op, "lens.activation"))
        return LENS_OK;
    for (int k = 1; k < ln->n_outputs; k++)
        if (ln->outputs[k] >= 0) return LENS_OK;
    graph_node *tr = producer_of(g, ln->inputs[0], "Transpose");
    const int64_t *perm;
    int64_t rank = tr ? (int64_t)op_attr_ints(&tr->op, "perm", &perm) : 0, axis = op_attr_int(&ln->op, "axis", -1);
    if (!tr || !is_channel_transpose(tr, 1) || (axis != -1 && axis != rank - 1) ||
        graph_use_count(g, ln->inputs[0]) != 1)
        return LENS_OK;
    graph_node *back = sole_reader(g, ln->outputs[0]);
    int nchw_out = back && is_channel_transpose(back, 0);
    /* Writing NHWC makes the fused op transpose through a tile: that beats Transpose + LayerNormalization only
     * while a pixel block of all channels stays in L1 (measured on Zen 4 with the AVX-512 task, ConvNeXt-T in the
     * network: stage 3's 384 channels 0.385 -> 0.355 ms for its nine Transposes and LayerNorms together; with 768,
     * stage 4 lost 0.129 -> 0.140. Before that task, 384 had lost too). */
    const tensor *scale = float_constant(g, ln, 1);
    if (!nchw_out && (!scale || tensor_numel(scale) > LAYERNORM_FUSE_MAX_CHANNELS)) return LENS_OK;
    op_attr flags[2] = {{.name = "lens.channels_first", .type = OP_ATTR_INT, .i = 1},
                        {.name = "lens.channels_first_output", .type = OP_ATTR_INT, .i = nchw_out}};
    lens_status st = graph_node_add_attrs(g, ln, flags, 2);
    if (st) return st;
    ln->inputs[0] = tr->inputs[0];
    tr->removed = 1;
    if (nchw_out) {
        ln->outputs[0] = back->outputs[0];
        back->removed = 1;
    }
    graph_update_producers(g);
    return LENS_OK;
}

lens_status graph_fuse_linear(graph *g) {
    graph_update_producers(g);
    lens_status st = LENS_OK;
    for (int i = 0; i < g->n_nodes && !st; i++) st = fuse_bias(g, &g->nodes[i]);
    for (int i = 0; i < g->n_nodes && !st; i++) st = fold_scale(g, &g->nodes[i]);
    for (int i = 0; i < g->n_nodes && !st; i++) st = fuse_channels_first_layernorm(g, &g->nodes[i]);
    return st;
}

/* ---- Attention -------------------------------------------------------------------------------------------------- */

/* The nodes of one matched attention core, removed when the match is complete. */
typedef struct attention_match {
    graph_node *nodes[16];
    int n_nodes;
    float scale;
} attention_match;

/* The op_type node with n_inputs inputs producing v, recorded in m, when v is read only once (by the next node of
 * the chain); NULL otherwise. */
static graph_node *take(graph *g, attention_match *m, int v, const char *op_type, int n_inputs) {
    graph_node *n = producer_of(g, v, op_type);
    if (!n || !is_node(n, op_type, n_inputs) || graph_use_count(g, v) != 1 || m->n_nodes == 16) return NULL;
    m->nodes[m->n_nodes++] = n;
    return n;
}

static int perm_is(const graph_node *t, int64_t a, int64_t b, int64_t c) {
    const int64_t *perm;
    return op_attr_ints(&t->op, "perm", &perm) == 3 && perm[0] == a && perm[1] == b && perm[2] == c;
}

/* v = Mul(x, c), Mul(c, x) or Div(x, c) with c a scalar constant: records the node, folds c into m->scale and
 * returns x. Otherwise returns v. */
static int peel_scale(graph *g, attention_match *m, int v) {
    int div = producer_of(g, v, "Div") != NULL;
    graph_node *n = div ? producer_of(g, v, "Div") : producer_of(g, v, "Mul");
    if (!n || !is_node(n, n->op.op_type, 2) || graph_use_count(g, v) != 1 || m->n_nodes == 16) return v;
    for (int side = 1; side >= div; side--) {
        const tensor *c = float_constant(g, n, side);
        if (!c || tensor_numel(c) != 1 || c->rank > 3) continue;
        float f = *(const float *)c->data;
        if (div && f == 0.0f) return v;
        m->scale = div ? m->scale / f : m->scale * f;
        m->nodes[m->n_nodes++] = n;
        return n->inputs[1 - side];
    }
    return v;
}

/* Transpose(Reshape(x, shape), perm): records both nodes and returns x (the reshape's output in *split), or -1. */
static int head_split(graph *g, attention_match *m, int v, int64_t p0, int64_t p1, int64_t p2, int *split) {
    graph_node *t = take(g, m, v, "Transpose", 1);
    if (!t || !perm_is(t, p0, p1, p2)) return -1;
    graph_node *r = take(g, m, t->inputs[0], "Reshape", 2);
    if (!r) return -1;
    *split = t->inputs[0];
    return r->inputs[0];
}

static const tensor *planned_f32(const graph_plan *probe, int v, int rank) {
    const tensor *t = graph_plan_value(probe, v);
    return t && t->dtype == LENS_DTYPE_FLOAT32 && t->rank == rank ? t : NULL;
}

/* Whether the probe's shapes say src [S, B, H*D] was split into heads as split [S, B*H, D]; sets *heads. */
static int split_shapes(const graph_plan *probe, int src, int split, int64_t *heads) {
    const tensor *a = planned_f32(probe, src, 3), *b = planned_f32(probe, split, 3);
    if (!a || !b || a->dims[0] != b->dims[0] || a->dims[1] < 1 || b->dims[1] % a->dims[1]) return 0;
    *heads = b->dims[1] / a->dims[1];
    return *heads >= 1 && *heads * b->dims[2] == a->dims[2];
}

/* The single value of a planned 1-element integer tensor (a folded Slice bound), in *out. */
static int planned_scalar(const graph_plan *probe, int v, int64_t *out) {
    const tensor *t = v >= 0 ? graph_plan_value(probe, v) : NULL;
    if (!t || !t->data || tensor_numel(t) != 1) return 0;
    if (t->dtype == LENS_DTYPE_INT64) *out = *(const int64_t *)t->data;
    else if (t->dtype == LENS_DTYPE_INT32) *out = *(const int32_t *)t->data;
    else return 0;
    return 1;
}

/* How many times live nodes read v's data (Shape and Size read only its shape), plus one if it is a graph output. */
static int data_use_count(const graph *g, int v) {
    int uses = graph_use_count(g, v);
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (n->removed || n->op.domain[0] || (strcmp(n->op.op_type, "Shape") && strcmp(n->op.op_type, "Size")))
            continue;
        for (int k = 0; k < n->n_inputs; k++) uses -= n->inputs[k] == v;
    }
    return uses;
}

/* Whether v, its data read only once, is Slice(x, [part*E], [(part+1)*E], [last axis]) of a planned x [S, B, 3E]: the
 * Q (part 0), K (1) or V (2) third of nn.MultiheadAttention's fused in-projection. Sets *x and *slice. */
static int qkv_third(graph *g, const graph_plan *probe, int v, int part, int *x, graph_node **slice) {
    graph_node *n = producer_of(g, v, "Slice");
    if (!n || n->n_inputs < 4 || n->n_inputs > 5 || n->inputs[0] < 0 || data_use_count(g, v) != 1) return 0;
    const tensor *src = planned_f32(probe, n->inputs[0], 3);
    int64_t start, end, axis, step = 1;
    if (!src || src->dims[2] % 3 || !planned_scalar(probe, n->inputs[1], &start) ||
        !planned_scalar(probe, n->inputs[2], &end) || !planned_scalar(probe, n->inputs[3], &axis) ||
        (n->n_inputs == 5 && n->inputs[4] >= 0 && !planned_scalar(probe, n->inputs[4], &step)))
        return 0;
    int64_t E = src->dims[2] / 3;
    int ends_right = end == (part + 1) * E || (part == 2 && end > 3 * E); /* the last third may end "past the end" */
    if ((axis != 2 && axis != -1) || step != 1 || start != part * E || !ends_right) return 0;
    *x = n->inputs[0];
    *slice = n;
    return 1;
}

/* Softmax(scale * Q Kᵀ) V as torch.nn.functional.multi_head_attention_forward exports it (opset 13+):
 *   Q: Transpose[1,0,2](Reshape(q)) (/ or * a scalar)   K: Transpose[1,2,0](Reshape(k))   V: Transpose[1,0,2](Reshape(v))
 *   Transpose[1,0,2](MatMul(Softmax(MatMul(Q, K) (/ or * a scalar)), V))
 * with q, k, v [S, B, H*D] → lens.Attention(q, k, v), put in place of the second MatMul. */
static lens_status fuse_attention(graph *g, const graph_plan *probe, graph_node *sm) {
    if (!is_node(sm, "Softmax", 1)) return LENS_OK;
    int64_t axis = op_attr_int(&sm->op, "axis", sm->op.opset >= 13 ? -1 : 1);
    graph_node *mm2 = sole_reader(g, sm->outputs[0]);
    if ((axis != -1 && axis != 2) || !mm2 || !is_node(mm2, "MatMul", 2) || mm2->inputs[0] != sm->outputs[0] ||
        mm2->op.n_attrs)
        return LENS_OK;
    graph_node *merge = sole_reader(g, mm2->outputs[0]);
    if (!merge || !is_node(merge, "Transpose", 1) || !perm_is(merge, 1, 0, 2)) return LENS_OK;
    attention_match m = {.nodes = {sm, merge}, .n_nodes = 2, .scale = 1.0f};
    graph_node *mm1 = take(g, &m, peel_scale(g, &m, sm->inputs[0]), "MatMul", 2);
    if (!mm1 || mm1->op.n_attrs) return LENS_OK;
    int qs, ks, vs;
    int q = head_split(g, &m, peel_scale(g, &m, mm1->inputs[0]), 1, 0, 2, &qs);
    int k = head_split(g, &m, mm1->inputs[1], 1, 2, 0, &ks);
    int v = head_split(g, &m, mm2->inputs[1], 1, 0, 2, &vs);
    int64_t hq, hk, hv;
    if (q < 0 || k < 0 || v < 0 || !split_shapes(probe, q, qs, &hq) || !split_shapes(probe, k, ks, &hk) ||
        !split_shapes(probe, v, vs, &hv) || hq != hk || hq != hv)
        return LENS_OK;
    const tensor *out = planned_f32(probe, merge->outputs[0], 3), *qt = planned_f32(probe, qs, 3);
    if (!out || !tensor_same_shape(out, qt)) return LENS_OK;

    /* q, k and v sliced from one in-projection output (self-attention): the op reads them from it in place */
    int qkv[3];
    graph_node *slices[3];
    int packed = qkv_third(g, probe, q, 0, &qkv[0], &slices[0]) && qkv_third(g, probe, k, 1, &qkv[1], &slices[1]) &&
                 qkv_third(g, probe, v, 2, &qkv[2], &slices[2]) && qkv[0] == qkv[1] && qkv[0] == qkv[2];

    int *inputs = graph_alloc(g, 3 * sizeof(int));
    op_attr *attrs = graph_alloc(g, 2 * sizeof(op_attr));
    if (!inputs || !attrs) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory fusing attention");
    inputs[0] = q, inputs[1] = k, inputs[2] = v;
    if (packed) {
        inputs[0] = qkv[0];
        /* a Slice still read by a Shape stays (the plan then skips it as dead) */
        for (int i = 0; i < 3; i++) slices[i]->removed = graph_use_count(g, slices[i]->outputs[0]) == 1;
    }
    attrs[0] = (op_attr){.name = "num_heads", .type = OP_ATTR_INT, .i = hq};
    attrs[1] = (op_attr){.name = "scale", .type = OP_ATTR_FLOAT, .f = m.scale};
    if (mm2->state && mm2->def->release) mm2->def->release(mm2->state);
    mm2->state = NULL;
    mm2->prepared = 0;
    mm2->op.op_type = "Attention";
    mm2->op.domain = "lens";
    mm2->op.attrs = attrs;
    mm2->op.n_attrs = 2;
    mm2->def = ops_lookup("lens", "Attention");
    mm2->inputs = inputs;
    mm2->n_inputs = packed ? 1 : 3;
    mm2->outputs[0] = merge->outputs[0];
    for (int i = 0; i < m.n_nodes; i++) m.nodes[i]->removed = 1;
    graph_update_producers(g);
    return LENS_OK;
}

lens_status graph_fuse_attention(graph *g, const graph_plan *probe) {
    graph_update_producers(g);
    lens_status st = LENS_OK;
    for (int i = 0; i < g->n_nodes && !st; i++) st = fuse_attention(g, probe, &g->nodes[i]);
    return st;
}
