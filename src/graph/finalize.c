/* finalize.c — checks a freshly built graph (every op known, every input defined, no cycles), sorts it
 * topologically, and evaluates single nodes outside a plan (used by constant folding). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

const char *graph_node_label(const graph_node *n, char *buf, size_t size) {
    if (n->op.name && n->op.name[0]) snprintf(buf, size, "node '%s' (%s)", n->op.name, n->op.op_type);
    else snprintf(buf, size, "node %s", n->op.op_type);
    return buf;
}

void graph_update_producers(graph *g) {
    for (int v = 0; v < g->n_values; v++) g->values[v].producer = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        graph_node *n = &g->nodes[i];
        if (n->removed) continue;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0) g->values[n->outputs[k]].producer = i;
    }
}

static const char *domain_label(const char *domain) { return domain[0] ? domain : "ai.onnx"; }

/* Lists every unsupported op in one message: each op type with its domain and the nodes that use it. */
static lens_status check_ops(graph *g) {
    char msg[2048];
    size_t used = 0;
    int missing = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        graph_node *n = &g->nodes[i];
        n->op.opset = graph_opset_version(g, n->op.domain);
        if (!n->op.opset && !n->op.domain[0]) n->op.opset = 1;
        n->def = ops_lookup(n->op.domain, n->op.op_type);
        missing += !n->def;
    }
    if (!missing) return LENS_OK;
    for (int i = 0; i < g->n_nodes && used < sizeof msg; i++) {
        const graph_node *n = &g->nodes[i];
        int first = 1;
        for (int j = 0; j < i && first; j++) /* report each (domain, op) once, at its first node */
            if (!g->nodes[j].def && !strcmp(g->nodes[j].op.op_type, n->op.op_type) &&
                !strcmp(g->nodes[j].op.domain, n->op.domain))
                first = 0;
        if (n->def || !first) continue;
        int count = 0;
        for (int j = i; j < g->n_nodes; j++)
            count += !g->nodes[j].def && !strcmp(g->nodes[j].op.op_type, n->op.op_type) &&
                     !strcmp(g->nodes[j].op.domain, n->op.domain);
        used += (size_t)snprintf(msg + used, sizeof msg - used, "%sop '%s' (domain %s) is not supported (node%s ",
                                 used ? "; " : "", n->op.op_type, domain_label(n->op.domain), count > 1 ? "s" : "");
        int listed = 0;
        for (int j = i; j < g->n_nodes && listed < 3 && used < sizeof msg; j++) {
            const graph_node *m = &g->nodes[j];
            if (m->def || strcmp(m->op.op_type, n->op.op_type) || strcmp(m->op.domain, n->op.domain)) continue;
            used += (size_t)snprintf(msg + used, sizeof msg - used, "%s'%s'", listed++ ? ", " : "",
                                     m->op.name[0] ? m->op.name : "(unnamed)");
        }
        if (used < sizeof msg)
            used += (size_t)snprintf(msg + used, sizeof msg - used, count > 3 ? ", ... %d in all)" : ")", count);
    }
    return core_fail(LENS_ERR_UNSUPPORTED, "%s: %s", g->source, msg);
}

/* Kahn's algorithm over value availability; also rejects undefined inputs and doubly produced values. */
static lens_status sort_nodes(graph *g) {
    int n_nodes = g->n_nodes;
    char *available = calloc((size_t)g->n_values + 1, 1);
    int *order = malloc(sizeof(int) * (size_t)(n_nodes + 1));
    char *placed = calloc((size_t)n_nodes + 1, 1);
    lens_status st = LENS_OK;
    if (!available || !order || !placed) {
        st = core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory sorting graph");
        goto done;
    }
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].constant) available[v] = 1;
    for (int i = 0; i < g->n_inputs; i++) available[g->inputs[i]] = 1;
    for (int i = 0; i < n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_outputs; k++) {
            int v = g->nodes[i].outputs[k];
            if (v < 0) continue;
            if (available[v] == 1 && g->values[v].constant)
                continue; /* a node recomputing an initializer: the node wins below */
            if (available[v] == 2 || (available[v] == 1 && !g->values[v].constant)) {
                st = core_fail(LENS_ERR_FORMAT, "%s: value '%s' is produced twice", g->source, g->values[v].name);
                goto done;
            }
            available[v] = 2; /* produced by some node, not yet computed */
        }
    for (int v = 0; v < g->n_values; v++)
        if (available[v] == 2) available[v] = 0;
    int count = 0, progress = 1;
    while (count < n_nodes && progress) {
        progress = 0;
        for (int i = 0; i < n_nodes; i++) {
            if (placed[i]) continue;
            graph_node *n = &g->nodes[i];
            int ready = 1;
            for (int k = 0; k < n->n_inputs && ready; k++)
                if (n->inputs[k] >= 0 && !available[n->inputs[k]]) ready = 0;
            if (!ready) continue;
            placed[i] = 1;
            order[count++] = i;
            progress = 1;
            for (int k = 0; k < n->n_outputs; k++)
                if (n->outputs[k] >= 0) available[n->outputs[k]] = 1;
        }
    }
    if (count < n_nodes) {
        for (int i = 0; i < n_nodes; i++) {
            if (placed[i]) continue;
            graph_node *n = &g->nodes[i];
            for (int k = 0; k < n->n_inputs; k++)
                if (n->inputs[k] >= 0 && !available[n->inputs[k]]) {
                    char label[256];
                    st = core_fail(LENS_ERR_FORMAT, "%s: %s: input '%s' is never produced (or the graph has a cycle)",
                                   g->source, graph_node_label(n, label, sizeof label), g->values[n->inputs[k]].name);
                    goto done;
                }
        }
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (!available[g->outputs[i]]) {
            st = core_fail(LENS_ERR_FORMAT, "%s: graph output '%s' is never produced", g->source,
                           g->values[g->outputs[i]].name);
            goto done;
        }
    graph_node *sorted = malloc(sizeof(graph_node) * (size_t)(n_nodes + 1));
    if (!sorted) {
        st = core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory sorting graph");
        goto done;
    }
    for (int i = 0; i < n_nodes; i++) sorted[i] = g->nodes[order[i]];
    memcpy(g->nodes, sorted, sizeof(graph_node) * (size_t)n_nodes);
    free(sorted);
done:
    free(available);
    free(order);
    free(placed);
    return st;
}

lens_status graph_finalize(graph *g) {
    if (g->n_outputs == 0) return core_fail(LENS_ERR_FORMAT, "%s: the graph has no outputs", g->source);
    lens_status st = check_ops(g);
    if (st) return st;
    if ((st = sort_nodes(g))) return st;
    graph_update_producers(g);
    return LENS_OK;
}

lens_status graph_node_eval(graph_node *n, const tensor *const *inputs, tensor *const *outputs, core_pool *pool,
                            graph_alloc_fn alloc, void *alloc_ctx) {
    op_call call = {.node = &n->op, .n_inputs = n->n_inputs, .inputs = inputs, .n_outputs = n->n_outputs,
                    .outputs = outputs, .pool = pool};
    for (int k = 0; k < n->n_outputs; k++) {
        outputs[k]->data = NULL;
        outputs[k]->rank = 0;
        outputs[k]->dtype = LENS_DTYPE_UNDEFINED;
    }
    lens_status st = n->def->infer(&call);
    if (st) return st;
    for (int k = 0; k < n->n_outputs; k++) {
        size_t bytes = tensor_bytes(outputs[k]);
        if (bytes == SIZE_MAX) return core_fail(LENS_ERR_SHAPE, "output %d has an invalid shape", k);
        if (!(outputs[k]->data = alloc(alloc_ctx, bytes)))
            return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory for %zu bytes", bytes);
    }
    void *scratch = NULL;
    if (call.scratch_bytes && !(scratch = core_aligned_alloc(call.scratch_bytes)))
        return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory for %zu bytes of scratch", call.scratch_bytes);
    call.scratch = scratch;
    st = n->def->run(&call);
    core_aligned_free(scratch);
    return st;
}
