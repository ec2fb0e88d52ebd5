/* graph.c — the IR builder: values by name (hashed), constants, inputs, outputs, nodes, opsets, metadata. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "graph.h"

/* Name → value index, open addressing; kept beside the graph so lookups during import stay O(1). */
typedef struct name_index {
    int *slots; /* value index + 1; 0 = empty */
    size_t cap;
} name_index;



typedef struct graph_private {
    graph pub;
    name_index names;
} graph_private;

static name_index *index_of(const graph *g) { return &((graph_private *)g)->names; }

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static lens_status grow(void **array, int *cap, int need, size_t elem) {
    if (need <= *cap) return LENS_OK;
    int new_cap = *cap ? *cap * 2 : 16;
    while (new_cap < need) new_cap *= 2;
    void *p = realloc(*array, (size_t)new_cap * elem);
    if (!p) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory building graph");
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(new_cap - *cap) * elem);
    *array = p;
    *cap = new_cap;
    return LENS_OK;
}

lens_status graph_create(const char *format, const char *source, graph **out) {
    *out = NULL;
    graph_private *gp = calloc(1, sizeof *gp);
    if (!gp) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory creating graph");
    graph *g = &gp->pub;
    g->arena = core_arena_create();
    if (!g->arena) {
        free(gp);
        return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory creating graph");
    }
    g->format = graph_strdup(g, format ? format : "");
    g->source = graph_strdup(g, source ? source : "");
    g->producer = "";
    *out = g;
    return LENS_OK;
}

void graph_free(graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].state && g->nodes[i].def && g->nodes[i].def->release) g->nodes[i].def->release(g->nodes[i].state);
    for (int i = 0; i < g->n_mappings; i++) munmap(g->mappings[i].addr, g->mappings[i].len);
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->metadata);
    free(index_of(g)->slots);
    core_arena_free(g->arena);
    free(g);
}

void *graph_alloc(graph *g, size_t bytes) { return core_arena_alloc(g->arena, bytes); }
char *graph_strdup(graph *g, const char *s) { return core_arena_strdup(g->arena, s); }
char *graph_strndup(graph *g, const char *s, size_t len) { return core_arena_strndup(g->arena, s, len); }

int graph_value_find(const graph *g, const char *name) {
    const name_index *ix = index_of(g);
    if (!ix->cap || !name) return -1;
    for (size_t i = hash_name(name) & (ix->cap - 1);; i = (i + 1) & (ix->cap - 1)) {
        int slot = ix->slots[i];
        if (!slot) return -1;
        if (!strcmp(g->values[slot - 1].name, name)) return slot - 1;
    }
}

static lens_status index_insert(graph *g, int value) {
    name_index *ix = index_of(g);
    if ((size_t)(g->n_values + 1) * 2 > ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 256;
        int *slots = calloc(cap, sizeof *slots);
        if (!slots) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory building graph");
        for (size_t i = 0; i < ix->cap; i++) {
            if (!ix->slots[i]) continue;
            size_t j = hash_name(g->values[ix->slots[i] - 1].name) & (cap - 1);
            while (slots[j]) j = (j + 1) & (cap - 1);
            slots[j] = ix->slots[i];
        }
        free(ix->slots);
        ix->slots = slots;
        ix->cap = cap;
    }
    size_t j = hash_name(g->values[value].name) & (ix->cap - 1);
    while (ix->slots[j]) j = (j + 1) & (ix->cap - 1);
    ix->slots[j] = value + 1;
    return LENS_OK;
}

int graph_value_find_or_add(graph *g, const char *name) {
    if (!name || !*name) return -1;
    int found = graph_value_find(g, name);
    if (found >= 0) return found;
    if (grow((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof(graph_value))) return -1;
    graph_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = graph_strdup(g, name);
    if (!v->name) return -1;
    v->rank = -1;
    v->producer = -1;
    if (index_insert(g, g->n_values)) return -1;
    return g->n_values++;
}

static lens_status oom(void) { return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory building graph"); }

void graph_drop_constant_data(graph *g, int v) {
    tensor *c = v >= 0 && v < g->n_values ? g->values[v].constant : NULL;
    if (!c) return;
    size_t bytes = tensor_bytes(c);
    void *data = c->data ? c->data : (void *)g->values[v].unaligned;
    if (data && bytes != SIZE_MAX) core_discard_pages(data, bytes);
    c->data = NULL;
    g->values[v].unaligned = NULL;
}

int graph_constant_has_data(const graph *g, int v) {
    const graph_value *val = v >= 0 && v < g->n_values ? &g->values[v] : NULL;
    return val && val->constant && (val->constant->data || val->unaligned);
}

void *graph_constant_data(graph *g, int v) {
    graph_value *val = v >= 0 && v < g->n_values ? &g->values[v] : NULL;
    if (!val || !val->constant) return NULL;
    if (val->unaligned) {
        size_t bytes = tensor_bytes(val->constant);
        void *copy = bytes == SIZE_MAX ? NULL : graph_alloc(g, bytes ? bytes : 1);
        if (!copy) return NULL;
        memcpy(copy, val->unaligned, bytes);
        core_discard_pages((void *)val->unaligned, bytes); /* the file's pages are not read again */
        val->constant->data = copy;
        val->unaligned = NULL;
    }
    return val->constant->data;
}

int graph_node_inputs_readable(graph *g, const graph_node *n) {
    for (int k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] >= 0 && g->values[n->inputs[k]].unaligned && !graph_constant_data(g, n->inputs[k])) return 0;
    return 1;
}

lens_status graph_set_constant(graph *g, const char *name, const tensor *t) {
    int v = graph_value_find_or_add(g, name);
    if (v < 0) return oom();
    tensor *c = g->values[v].constant;
    if (!c && !(c = graph_alloc(g, sizeof *c))) return oom();
    *c = *t;
    graph_value *val = &g->values[v];
    val->constant = c;
    val->unaligned = NULL;
    val->dtype = t->dtype;
    val->rank = t->rank;
    memcpy(val->dims, t->dims, sizeof val->dims);
    return LENS_OK;
}

lens_status graph_set_unaligned_constant(graph *g, const char *name, const tensor *t, const void *bytes) {
    tensor shape = *t;
    shape.data = NULL;
    lens_status st = graph_set_constant(g, name, &shape);
    if (!st) g->values[graph_value_find(g, name)].unaligned = bytes;
    return st;
}

static lens_status set_type(graph_value *v, lens_dtype dtype, int rank, const int64_t *dims) {
    if (rank > TENSOR_MAX_RANK)
        return core_fail(LENS_ERR_UNSUPPORTED, "value '%s' has rank %d; at most %d is supported", v->name, rank,
                         TENSOR_MAX_RANK);
    if (dtype) v->dtype = dtype;
    if (rank >= 0) {
        v->rank = rank;
        for (int i = 0; i < rank; i++) v->dims[i] = dims ? dims[i] : -1;
    }
    return LENS_OK;
}

lens_status graph_add_input(graph *g, const char *name, lens_dtype dtype, int rank, const int64_t *dims) {
    int v = graph_value_find_or_add(g, name);
    if (v < 0 || grow((void **)&g->inputs, &g->cap_inputs, g->n_inputs + 1, sizeof(int))) return oom();
    lens_status st = set_type(&g->values[v], dtype, rank, dims);
    if (st) return st;
    g->inputs[g->n_inputs++] = v;
    return LENS_OK;
}

lens_status graph_add_output(graph *g, const char *name, lens_dtype dtype, int rank, const int64_t *dims) {
    int v = graph_value_find_or_add(g, name);
    if (v < 0 || grow((void **)&g->outputs, &g->cap_outputs, g->n_outputs + 1, sizeof(int))) return oom();
    lens_status st = set_type(&g->values[v], dtype, rank, dims);
    if (st) return st;
    g->outputs[g->n_outputs++] = v;
    return LENS_OK;
}

lens_status graph_add_node(graph *g, const char *name, const char *domain, const char *op_type, int n_inputs,
                           const char *const *input_names, int n_outputs, const char *const *output_names, int n_attrs,
                           const op_attr *attrs, int *index) {
    if (grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(graph_node))) return oom();
    graph_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op.name = graph_strdup(g, name ? name : "");
    n->op.domain = graph_strdup(g, domain && strcmp(domain, "ai.onnx") ? domain : "");
    n->op.op_type = graph_strdup(g, op_type);
    n->inputs = graph_alloc(g, sizeof(int) * (size_t)(n_inputs + 1));
    n->outputs = graph_alloc(g, sizeof(int) * (size_t)(n_outputs + 1));
    op_attr *copy = graph_alloc(g, sizeof(op_attr) * (size_t)(n_attrs + 1));
    if (!n->op.name || !n->op.domain || !n->op.op_type || !n->inputs || !n->outputs || !copy) return oom();
    for (int i = 0; i < n_inputs; i++) {
        n->inputs[i] = -1;
        if (input_names[i] && input_names[i][0] && (n->inputs[i] = graph_value_find_or_add(g, input_names[i])) < 0)
            return oom();
    }
    for (int i = 0; i < n_outputs; i++) {
        n->outputs[i] = -1;
        if (output_names[i] && output_names[i][0] && (n->outputs[i] = graph_value_find_or_add(g, output_names[i])) < 0)
            return oom();
    }
    /* trailing omitted inputs are dropped so ops can test n_inputs */
    while (n_inputs > 0 && n->inputs[n_inputs - 1] < 0) n_inputs--;
    if (n_attrs) memcpy(copy, attrs, sizeof(op_attr) * (size_t)n_attrs);
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    n->op.attrs = copy;
    n->op.n_attrs = n_attrs;
    if (index) *index = g->n_nodes;
    g->n_nodes++;
    return LENS_OK;
}

lens_status graph_set_opset(graph *g, const char *domain, int version) {
    if (!domain || !strcmp(domain, "ai.onnx")) domain = "";
    for (int i = 0; i < g->n_opsets; i++)
        if (!strcmp(g->opsets[i].domain, domain)) {
            g->opsets[i].version = version;
            return LENS_OK;
        }
    if (g->n_opsets == (int)(sizeof g->opsets / sizeof *g->opsets))
        return core_fail(LENS_ERR_UNSUPPORTED, "too many opset imports");
    g->opsets[g->n_opsets].domain = graph_strdup(g, domain);
    if (!g->opsets[g->n_opsets].domain) return oom();
    g->opsets[g->n_opsets++].version = version;
    return LENS_OK;
}

int graph_opset_version(const graph *g, const char *domain) {
    if (!domain || !strcmp(domain, "ai.onnx")) domain = "";
    for (int i = 0; i < g->n_opsets; i++)
        if (!strcmp(g->opsets[i].domain, domain)) return g->opsets[i].version;
    return 0;
}

lens_status graph_set_metadata(graph *g, const char *key, const char *value) {
    if (grow((void **)&g->metadata, &g->cap_metadata, g->n_metadata + 1, sizeof(graph_metadata))) return oom();
    graph_metadata *m = &g->metadata[g->n_metadata];
    m->key = graph_strdup(g, key);
    m->value = graph_strdup(g, value);
    if (!m->key || !m->value) return oom();
    g->n_metadata++;
    return LENS_OK;
}

const char *graph_metadata_get(const graph *g, const char *key) {
    for (int i = g->n_metadata - 1; i >= 0; i--)
        if (!strcmp(g->metadata[i].key, key)) return g->metadata[i].value;
    return NULL;
}

lens_status graph_keep_mapping(graph *g, void *addr, size_t len) {
    if (g->n_mappings == (int)(sizeof g->mappings / sizeof *g->mappings))
        return core_fail(LENS_ERR_UNSUPPORTED, "too many mapped files");
    g->mappings[g->n_mappings].addr = addr;
    g->mappings[g->n_mappings].len = len;
    g->n_mappings++;
    return LENS_OK;
}

void graph_weight_stats(const graph *g, int64_t *params, size_t *bytes) {
    *params = 0;
    *bytes = 0;
    for (int i = 0; i < g->n_values; i++) {
        const tensor *c = g->values[i].constant;
        if (!c) continue;
        int64_t n = tensor_numel(c);
        if (n > 0) {
            *params += n;
            *bytes += tensor_bytes(c);
        }
    }
}
