/* select_rows.c — rows a model throws away are not computed. A Gather of one index along an axis that is not the
 * last (ViT's classification token, x[:, 0]) moves up through the ops that treat each row alone:
 *   - LayerNormalization over the last axis;
 *   - MatMul with a constant matrix of weights, with what the passes fused into it (bias, activation, residual);
 *   - elementwise ops, with operands of the same shape or ones that do not reach the gathered axis.
 * So the layers after a vision transformer's last attention run on one token instead of every patch (ViT-B/16: the
 * last block's MLP and the final LayerNorm on 1 row of 197). Each input that carries rows gets its own Gather (one
 * per value, shared by its readers). Needs shapes, from a probe plan; what holds there holds at any batch size, as
 * the gathered axis is not the batch's and shapes only have to match. */
#include <stdio.h>
#include <string.h>

#include "../graph.h"

static const tensor *planned_f32(const graph_plan *probe, int v) {
    const tensor *t = v >= 0 ? graph_plan_value(probe, v) : NULL;
    return t && t->dtype == LENS_DTYPE_FLOAT32 ? t : NULL;
}

static int same_shape(const tensor *a, const tensor *b) { return a && b && tensor_same_shape(a, b); }

/* The one index of a Gather, from its planned constant indices (a scalar or one element): 1 and *index, or 0. */
static int gather_index(const graph_plan *probe, int v, int64_t *index) {
    const tensor *t = v >= 0 ? graph_plan_value(probe, v) : NULL;
    if (!t || !t->data || tensor_numel(t) != 1 || t->rank > 1) return 0;
    if (t->dtype == LENS_DTYPE_INT64) *index = *(const int64_t *)t->data;
    else if (t->dtype == LENS_DTYPE_INT32) *index = *(const int32_t *)t->data;
    else return 0;
    return 1;
}

/* A Gather that selects one row: of a float tensor of rank r along axis *axis (normalised), not the last; *keeps is
 * whether the output keeps the axis (indices of rank 1). */
static int is_row_gather(const graph_node *n, const graph_plan *probe, int *axis, int *rank, int *keeps) {
    int64_t index;
    if (n->removed || n->op.domain[0] || strcmp(n->op.op_type, "Gather") || n->n_inputs != 2 || n->n_outputs != 1 ||
        n->outputs[0] < 0 || !gather_index(probe, n->inputs[1], &index))
        return 0;
    const tensor *x = planned_f32(probe, n->inputs[0]);
    if (!x) return 0;
    int64_t a = op_attr_int(&n->op, "axis", 0);
    if (a < 0) a += x->rank;
    if (a < 0 || a >= x->rank - 1) return 0;
    *axis = (int)a;
    *rank = x->rank;
    *keeps = graph_plan_value(probe, n->inputs[1])->rank == 1;
    return 1;
}

/* How each input of p (producing x of rank r, gathered along axis a) takes the Gather: bit k of *rows set when input k
 * carries the rows and must be gathered too. 0 when p is no op that treats rows alone. out_rank is the rank after
 * the Gather. */
static int row_inputs(const graph *g, const graph_node *p, const graph_plan *probe, const tensor *x, int a,
                      int out_rank, uint32_t *rows) {
    const char *op = p->op.op_type;
    *rows = 0;
    if (p->op.domain[0] || p->n_outputs < 1 || p->outputs[0] < 0) return 0;
    for (int k = 1; k < p->n_outputs; k++)
        if (p->outputs[k] >= 0 && graph_use_count(g, p->outputs[k])) return 0;
    if (!strcmp(op, "LayerNormalization")) {
        int64_t axis = op_attr_int(&p->op, "axis", -1);
        if (axis != -1 && axis != x->rank - 1) return 0;
        for (int i = 0; i < p->op.n_attrs; i++)
            if (!strncmp(p->op.attrs[i].name, "lens.", 5)) return 0; /* a channels-first LayerNorm */
        *rows = 1;
        return p->n_inputs >= 1 && p->inputs[0] >= 0;
    }
    if (p->n_outputs != 1) return 0;
    if (!strcmp(op, "MatMul")) {
        /* x [.., M, N] = A [.., M, K] W [K, N]: the epilogue's bias is per column, its residual of x's shape */
        const tensor *w = p->n_inputs >= 2 && p->inputs[1] >= 0 ? g->values[p->inputs[1]].constant : NULL;
        const tensor *in = p->n_inputs >= 1 ? planned_f32(probe, p->inputs[0]) : NULL;
        if (!w || w->rank != 2 || !in || in->rank != x->rank || out_rank < 2 || p->n_inputs > 4 ||
            op_attr_find(&p->op, "lens.residual_perm"))
            return 0;
        *rows = 1;
        if (p->n_inputs == 4 && p->inputs[3] >= 0) {
            if (!same_shape(planned_f32(probe, p->inputs[3]), x)) return 0;
            *rows |= 1u << 3;
        }
        return 1;
    }
    static const char *const unary[] = {"Relu", "Gelu", "Erf", "Sigmoid", "Tanh", "Neg", "Abs", "Sqrt", "Exp",
                                        "Identity"};
    for (size_t i = 0; i < sizeof unary / sizeof *unary; i++)
        if (!strcmp(op, unary[i])) {
            *rows = 1;
            return p->n_inputs == 1 && p->inputs[0] >= 0 && same_shape(planned_f32(probe, p->inputs[0]), x);
        }
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) {
        if (p->n_inputs != 2) return 0;
        for (int k = 0; k < 2; k++) {
            const tensor *t = planned_f32(probe, p->inputs[k]);
            if (!t) return 0;
            if (same_shape(t, x)) *rows |= 1u << k;
            else if (t->rank >= x->rank - a) return 0; /* it reaches the gathered axis without being x's shape */
        }
        return *rows != 0;
    }
    return 0;
}

/* The output of a live Gather of v like `like` (same indices and axis), or -1. */
static int existing_gather(const graph *g, int v, const graph_node *like) {
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (n == like || n->removed || n->op.domain[0] || strcmp(n->op.op_type, "Gather") || n->n_inputs != 2 ||
            n->inputs[0] != v || n->inputs[1] != like->inputs[1] ||
            op_attr_int(&n->op, "axis", 0) != op_attr_int(&like->op, "axis", 0))
            continue;
        return n->outputs[0];
    }
    return -1;
}

/* A new Gather of value v like the node at index like, appended; its output in *out. */
static lens_status add_gather(graph *g, int v, int like, int *out) {
    char name[512];
    int suffix = 0;
    do snprintf(name, sizeof name, "lens::rows/%s/%d", g->values[v].name, suffix++);
    while (graph_value_find(g, name) >= 0);
    const graph_node *l = &g->nodes[like];
    const char *ins[2] = {g->values[v].name, g->values[l->inputs[1]].name}, *outs[1] = {name};
    int index;
    lens_status st = graph_add_node(g, name, "", "Gather", 2, ins, 1, outs, g->nodes[like].op.n_attrs,
                                    g->nodes[like].op.attrs, &index);
    if (st) return st;
    graph_node *n = &g->nodes[index];
    n->op.opset = g->nodes[like].op.opset;
    n->def = g->nodes[like].def;
    *out = n->outputs[0];
    return LENS_OK;
}

/* Moves the Gather at index gi above its producer when it can: 1 when it did. */
static lens_status push_gather(graph *g, const graph_plan *probe, int gi, int *moved) {
    int axis, rank, keeps;
    *moved = 0;
    if (!is_row_gather(&g->nodes[gi], probe, &axis, &rank, &keeps)) return LENS_OK;
    int x = g->nodes[gi].inputs[0], pi = g->values[x].producer;
    if (pi < 0 || graph_use_count(g, x) != 1) return LENS_OK;
    uint32_t rows;
    if (!row_inputs(g, &g->nodes[pi], probe, planned_f32(probe, x), axis, keeps ? rank : rank - 1, &rows))
        return LENS_OK;
    int gathered[4];
    for (int k = 0; k < 4; k++) {
        if (!(rows >> k & 1)) continue;
        int v = g->nodes[pi].inputs[k];
        if ((gathered[k] = existing_gather(g, v, &g->nodes[gi])) < 0) {
            lens_status st = add_gather(g, v, gi, &gathered[k]);
            if (st) return st;
        }
    }
    graph_node *p = &g->nodes[pi], *gather = &g->nodes[gi];
    const op_attr *axis_attr = op_attr_find(&p->op, "axis");
    if (!strcmp(p->op.op_type, "LayerNormalization") && axis_attr && axis_attr->i >= 0) {
        /* the last axis, counted from the end: the rank drops when the Gather takes its axis away */
        op_attr *attrs = graph_alloc(g, sizeof(op_attr) * (size_t)p->op.n_attrs);
        if (!attrs) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory rewriting node %s", p->op.name);
        memcpy(attrs, p->op.attrs, sizeof(op_attr) * (size_t)p->op.n_attrs);
        attrs[axis_attr - p->op.attrs].i = -1;
        p->op.attrs = attrs;
    }
    for (int k = 0; k < 4; k++)
        if (rows >> k & 1) p->inputs[k] = gathered[k];
    p->outputs[0] = gather->outputs[0];
    gather->removed = 1;
    graph_update_producers(g);
    *moved = 1;
    return LENS_OK;
}

/* Node i moved to just before the first live node that reads one of its outputs (it was appended after them). */
static void move_before_readers(graph *g, int i) {
    int first = i;
    for (int j = 0; j < i && first == i; j++) {
        const graph_node *n = &g->nodes[j];
        if (n->removed) continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && n->inputs[k] == g->nodes[i].outputs[0]) first = j;
    }
    if (first == i) return;
    graph_node moving = g->nodes[i];
    memmove(&g->nodes[first + 1], &g->nodes[first], sizeof(graph_node) * (size_t)(i - first));
    g->nodes[first] = moving;
}

lens_status graph_select_rows(graph *g, const graph_plan *probe) {
    graph_update_producers(g);
    int first_new = g->n_nodes, moved = 1;
    for (int round = 0; moved && round < 64; round++) {
        moved = 0;
        for (int i = 0; i < g->n_nodes; i++) {
            int m;
            lens_status st = push_gather(g, probe, i, &m);
            if (st) return st;
            moved |= m;
        }
    }
    /* the new Gathers read values produced before their readers, so each goes right before its first reader */
    for (int i = first_new; i < g->n_nodes; i++)
        if (!g->nodes[i].removed) move_before_readers(g, i);
    graph_update_producers(g);
    return LENS_OK;
}
