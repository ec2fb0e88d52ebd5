/* registry.c — collects every op family's table and finds ops by (domain, op_type); attribute accessors. */
#include <string.h>

#include "ops.h"

static const op_def *const tables[] = {
    ops_table_conv, ops_table_linalg, ops_table_pool,  ops_table_norm,   ops_table_act,
    ops_table_eltwise, ops_table_reduce, ops_table_shape, ops_table_resize, ops_table_quant,
    ops_table_scatter, ops_table_attention,
};

static const char *canonical_domain(const char *domain) {
    if (!domain || !strcmp(domain, "ai.onnx")) return "";
    return domain;
}

const op_def *ops_lookup(const char *domain, const char *op_type) {
    domain = canonical_domain(domain);
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
        for (const op_def *d = tables[t]; d->op_type; d++)
            if (!strcmp(d->op_type, op_type) && !strcmp(canonical_domain(d->domain), domain)) return d;
    return NULL;
}

const op_def *ops_at(size_t index) {
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
        for (const op_def *d = tables[t]; d->op_type; d++)
            if (index-- == 0) return d;
    return NULL;
}

const op_attr *op_attr_find(const op_node *node, const char *name) {
    for (int i = 0; i < node->n_attrs; i++)
        if (!strcmp(node->attrs[i].name, name)) return &node->attrs[i];
    return NULL;
}

int64_t op_attr_int(const op_node *node, const char *name, int64_t fallback) {
    const op_attr *a = op_attr_find(node, name);
    return a && a->type == OP_ATTR_INT ? a->i : fallback;
}

float op_attr_float(const op_node *node, const char *name, float fallback) {
    const op_attr *a = op_attr_find(node, name);
    if (a && a->type == OP_ATTR_FLOAT) return a->f;
    if (a && a->type == OP_ATTR_INT) return (float)a->i;
    return fallback;
}

const char *op_attr_string(const op_node *node, const char *name, const char *fallback) {
    const op_attr *a = op_attr_find(node, name);
    return a && a->type == OP_ATTR_STRING ? a->s : fallback;
}

size_t op_attr_ints(const op_node *node, const char *name, const int64_t **values) {
    const op_attr *a = op_attr_find(node, name);
    if (!a || a->type != OP_ATTR_INTS) {
        *values = NULL;
        return 0;
    }
    *values = a->ints;
    return a->count;
}

size_t op_attr_floats(const op_node *node, const char *name, const float **values) {
    const op_attr *a = op_attr_find(node, name);
    if (!a || a->type != OP_ATTR_FLOATS) {
        *values = NULL;
        return 0;
    }
    *values = a->floats;
    return a->count;
}

kern_activation op_fused_activation(const op_node *node) {
    static const struct { const char *name; kern_act_kind kind; } names[] = {
        {"Relu", KERN_ACT_RELU},       {"Clip", KERN_ACT_CLIP},           {"LeakyRelu", KERN_ACT_LEAKY_RELU},
        {"Sigmoid", KERN_ACT_SIGMOID}, {"HardSigmoid", KERN_ACT_HARD_SIGMOID}, {"HardSwish", KERN_ACT_HARD_SWISH},
        {"Tanh", KERN_ACT_TANH},       {"Gelu", KERN_ACT_GELU},           {"Silu", KERN_ACT_SILU},
    };
    kern_activation act = {KERN_ACT_NONE, 0, 0};
    const char *s = op_attr_string(node, "lens.activation", NULL);
    if (!s) return act;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(names[i].name, s)) act.kind = names[i].kind;
    act.alpha = op_attr_float(node, "lens.activation_alpha", 0);
    act.beta = op_attr_float(node, "lens.activation_beta", 0);
    return act;
}
