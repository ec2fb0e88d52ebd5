/* plan.c — fixes every shape for concrete input shapes, folds what is then known (Shape/Gather/Concat chains that
 * PyTorch exports), lets ops prepare state (packed weights) once per node and drops the weights the state replaces,
 * and lays out all activations in one arena by liveness so buffers are reused. Ops that only reshape an activation
 * (ops_is_view) share its buffer instead and are skipped at run, and an op that may write over an input it reads
 * (op_def.inplace_input: a fused residual) takes that input's buffer once nothing else reads it. graph_plan_run then
 * walks the steps: the hot loop. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

enum { VALUE_UNDEFINED, VALUE_CONSTANT, VALUE_INPUT, VALUE_FOLDED, VALUE_ACTIVATION };

/* Steps that do not run: a view (output 0 shares input 0's buffer), or a node no step nor graph output reads
 * (only Shape-like ops, which planning evaluates, looked at its outputs). */
enum { STEP_RUN, STEP_VIEW, STEP_DEAD };

typedef struct plan_step {
    int node;
    const tensor **inputs;
    tensor **outputs;
    int skip; /* nothing to run: STEP_VIEW or STEP_DEAD */
} plan_step;

struct graph_plan {
    graph *g;
    core_pool *pool;
    int n_values;          /* g->n_values when planned: values added later (by passes) are not planned */
    int n_slots;           /* n_values, then one slot per omitted optional output */
    tensor *t;             /* per slot: concrete type, shape and data */
    unsigned char *kind;   /* per slot: VALUE_* */
    plan_step *steps;
    int n_steps;
    unsigned char *arena;
    size_t arena_bytes;
    void *scratch;
    size_t scratch_bytes;
    void **owned; /* buffers of folded values */
    int n_owned, cap_owned;
    double *profile; /* seconds per step, when enabled */
};

/* Test hook (graph_plan_set_views): 0 gives every op its own output buffer, as before views and in-place outputs. */
static int views_enabled = 1;

void graph_plan_set_views(int enable) { views_enabled = enable; }

static lens_status oom(void) { return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory planning the graph"); }

static void *owned_alloc(void *ctx, size_t bytes) {
    graph_plan *p = ctx;
    if (p->n_owned == p->cap_owned) {
        int cap = p->cap_owned ? p->cap_owned * 2 : 64;
        void **o = realloc(p->owned, sizeof(void *) * (size_t)cap);
        if (!o) return NULL;
        p->owned = o;
        p->cap_owned = cap;
    }
    void *b = core_aligned_alloc(bytes ? bytes : 1);
    if (b) p->owned[p->n_owned++] = b;
    return b;
}

void graph_plan_free(graph_plan *p) {
    if (!p) return;
    for (int i = 0; i < p->n_owned; i++) core_aligned_free(p->owned[i]);
    free(p->owned);
    if (p->steps)
        for (int i = 0; i < p->n_steps; i++) {
            free(p->steps[i].inputs);
            free(p->steps[i].outputs);
        }
    free(p->steps);
    free(p->t);
    free(p->kind);
    core_aligned_free(p->arena);
    core_aligned_free(p->scratch);
    free(p->profile);
    free(p);
}

static lens_status bind_inputs(graph_plan *p, const tensor *shapes, int n) {
    graph *g = p->g;
    if (n != g->n_inputs)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: the model has %d inputs, %d given", g->source, g->n_inputs, n);
    for (int i = 0; i < n; i++) {
        const graph_value *v = &g->values[g->inputs[i]];
        const tensor *s = &shapes[i];
        char have[160], want[160];
        tensor declared = {.rank = v->rank};
        if (v->rank > 0) memcpy(declared.dims, v->dims, sizeof declared.dims);
        if (v->dtype && s->dtype != v->dtype)
            return core_fail(LENS_ERR_SHAPE, "%s: input '%s' must be %s, not %s", g->source, v->name,
                             dtype_name(v->dtype), dtype_name(s->dtype));
        int bad = s->rank < 0 || s->rank > TENSOR_MAX_RANK || (v->rank >= 0 && s->rank != v->rank);
        for (int d = 0; !bad && v->rank >= 0 && d < v->rank; d++)
            if (s->dims[d] < 0 || (v->dims[d] >= 0 && s->dims[d] != v->dims[d])) bad = 1;
        if (bad)
            return core_fail(LENS_ERR_SHAPE, "%s: input '%s' has shape %s; the model expects %s (-1 = any)", g->source,
                             v->name, tensor_shape_string(s, have, sizeof have),
                             v->rank >= 0 ? tensor_shape_string(&declared, want, sizeof want) : "any shape");
        tensor *t = &p->t[g->inputs[i]];
        *t = *s;
        t->data = NULL;
        p->kind[g->inputs[i]] = VALUE_INPUT;
        if (s->data) {
            size_t bytes = tensor_bytes(s);
            if (bytes == SIZE_MAX || !(t->data = owned_alloc(p, bytes))) return oom();
            memcpy(t->data, s->data, bytes);
            p->kind[g->inputs[i]] = VALUE_FOLDED;
        }
    }
    return LENS_OK;
}

static int is_shape_only_op(const graph_node *n) {
    return !n->op.domain[0] && (!strcmp(n->op.op_type, "Shape") || !strcmp(n->op.op_type, "Size"));
}

/* Greedy best-fit by size: each buffer goes at the lowest offset that overlaps no placed buffer alive at the same
 * time. */
static lens_status lay_out_arena(graph_plan *p, const int *birth, const int *death, const int *root) {
    int n = 0;
    int *order = malloc(sizeof(int) * (size_t)(p->n_slots + 1));
    size_t *offset = calloc((size_t)p->n_slots + 1, sizeof(size_t)), *size = calloc((size_t)p->n_slots + 1, sizeof(size_t));
    int *placed = malloc(sizeof(int) * (size_t)(p->n_slots + 1));
    if (!order || !offset || !size || !placed) {
        free(order), free(offset), free(size), free(placed);
        return oom();
    }
    for (int v = 0; v < p->n_slots; v++)
        if (p->kind[v] == VALUE_ACTIVATION && root[v] == v) {
            size_t bytes = tensor_bytes(&p->t[v]);
            size[v] = (bytes + 63) & ~(size_t)63;
            order[n++] = v;
        }
    /* sort by size descending (insertion sort is fine for a few thousand values) */
    for (int i = 1; i < n; i++) {
        int v = order[i], j = i - 1;
        while (j >= 0 && size[order[j]] < size[v]) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = v;
    }
    size_t total = 0;
    int n_placed = 0;
    for (int i = 0; i < n; i++) {
        int v = order[i];
        size_t at = 0;
        for (int again = 1; again;) {
            again = 0;
            for (int j = 0; j < n_placed; j++) {
                int u = placed[j];
                if (birth[u] > death[v] || birth[v] > death[u]) continue;
                if (at < offset[u] + size[u] && offset[u] < at + size[v]) {
                    at = offset[u] + size[u];
                    again = 1;
                }
            }
        }
        offset[v] = at;
        placed[n_placed++] = v;
        if (at + size[v] > total) total = at + size[v];
    }
    p->arena_bytes = total;
    lens_status st = LENS_OK;
    if (total && !(p->arena = core_aligned_alloc(total))) st = oom();
    for (int i = 0; !st && i < n; i++) p->t[order[i]].data = p->arena + offset[order[i]];
    for (int v = 0; !st && v < p->n_slots; v++)
        if (p->kind[v] == VALUE_ACTIVATION && root[v] != v) p->t[v].data = p->t[root[v]].data;
    free(order), free(offset), free(size), free(placed);
    return st;
}

/* ---- Prepare ---------------------------------------------------------------------------------------------------- */

#define PREPARE_MAX_INPUTS 32 /* taken_inputs has one bit per input */

typedef struct prepare_job {
    graph_plan *p;
    const int *steps;     /* steps whose node prepares */
    atomic_int *pending;  /* per value: reads of its data not yet taken into some node's state */
    lens_status *status;  /* per step */
    char (*message)[240]; /* per step: the worker's error message */
    /* per thread: where unaligned constants (graph_value.unaligned) are copied for the prepare that reads them;
     * reused from node to node, so only the largest weight's worth of fresh pages is touched per thread */
    char **copy;
    size_t *copy_bytes;
} prepare_job;

/* Whether input k of n is a constant still unaligned in the file (the plan leaves those without data until they
 * are prepared). */
static int unaligned_input(const graph *g, const graph_node *n, int k) {
    return n->inputs[k] >= 0 && g->values[n->inputs[k]].unaligned != NULL;
}

/* Points in[k] at aligned copies of n's unaligned constant inputs, made in this thread's buffer. */
static lens_status copy_unaligned_inputs(const prepare_job *job, const graph_node *n, int thread, tensor *local,
                                         const tensor **in) {
    const graph *g = job->p->g;
    size_t need = 0;
    for (int k = 0; k < n->n_inputs; k++)
        if (unaligned_input(g, n, k)) need += (tensor_bytes(g->values[n->inputs[k]].constant) + 63) & ~(size_t)63;
    if (!need) return LENS_OK;
    if (need > job->copy_bytes[thread]) {
        core_aligned_free(job->copy[thread]);
        job->copy_bytes[thread] = 0;
        if (!(job->copy[thread] = core_aligned_alloc(need))) return oom();
        job->copy_bytes[thread] = need;
    }
    char *at = job->copy[thread];
    for (int k = 0; k < n->n_inputs; k++) {
        if (!unaligned_input(g, n, k)) continue;
        const graph_value *val = &g->values[n->inputs[k]];
        size_t bytes = tensor_bytes(val->constant);
        memcpy(at, val->unaligned, bytes);
        core_discard_pages((void *)val->unaligned, bytes); /* the file's pages: read again only if another node does */
        local[k] = *in[k];
        local[k].data = at;
        in[k] = &local[k];
        at += (bytes + 63) & ~(size_t)63;
    }
    return LENS_OK;
}

/* Prepares one node and drops each constant it took once no reader is left that needs its data: the last taker
 * drops it, so no other thread can be reading it. */
static void prepare_task(void *ctx, int64_t i, int thread) {
    const prepare_job *job = ctx;
    graph_plan *p = job->p;
    const plan_step *step = &p->steps[job->steps[i]];
    graph_node *n = &p->g->nodes[step->node];
    /* the plan gives unaligned constants no data; only nodes with at most PREPARE_MAX_INPUTS inputs read them here */
    const tensor *in[PREPARE_MAX_INPUTS];
    tensor local[PREPARE_MAX_INPUTS];
    const tensor *const *inputs = (const tensor *const *)step->inputs;
    if (n->n_inputs <= PREPARE_MAX_INPUTS) {
        memcpy(in, step->inputs, (size_t)n->n_inputs * sizeof *in);
        if ((job->status[i] = copy_unaligned_inputs(job, n, thread, local, in))) {
            snprintf(job->message[i], sizeof job->message[i], "%s", core_last_error());
            return;
        }
        inputs = in;
    }
    op_call call = {.node = &n->op, .n_inputs = n->n_inputs, .inputs = inputs, .n_outputs = n->n_outputs,
                    .outputs = (tensor *const *)step->outputs};
    void *state = NULL;
    if ((job->status[i] = n->def->prepare(&call, &state))) {
        snprintf(job->message[i], sizeof job->message[i], "%s", core_last_error());
        return;
    }
    n->state = state; /* released by graph_free */
    n->taken_inputs = call.taken_inputs;
    n->prepared = 1;
    for (int k = 0; k < n->n_inputs && k < PREPARE_MAX_INPUTS; k++) {
        int v = n->inputs[k];
        if (v < 0 || !(n->taken_inputs >> k & 1) || p->kind[v] != VALUE_CONSTANT ||
            (!p->t[v].data && !p->g->values[v].unaligned))
            continue;
        if (atomic_fetch_sub(&job->pending[v], 1) == 1) {
            graph_drop_constant_data(p->g, v);
            p->t[v].data = NULL;
        }
    }
}

/* Prepares the nodes of the given steps (packing weights is most of a model's load time) over the pool, and drops
 * the weights they took as soon as every reader has taken them: a weight is resident twice, raw and packed, only
 * while its last taker packs it. */
static lens_status prepare_steps(graph_plan *p, const int *steps, int n_steps) {
    graph *g = p->g;
    prepare_job job = {p, steps, calloc((size_t)g->n_values + 1, sizeof(atomic_int)),
                       calloc((size_t)n_steps + 1, sizeof(lens_status)),
                       calloc((size_t)n_steps + 1, sizeof *job.message), NULL, NULL};
    lens_status st = LENS_OK;
    if (!job.pending || !job.status || !job.message) st = oom();
    for (int v = 0; !st && v < g->n_values; v++) atomic_init(&job.pending[v], 0);
    /* every read counts, except those of nodes prepared before that took it; graph outputs are never dropped */
    for (int i = 0; !st && i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (n->removed) continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && !(n->prepared && k < PREPARE_MAX_INPUTS && (n->taken_inputs >> k & 1)))
                atomic_fetch_add(&job.pending[n->inputs[k]], 1);
    }
    for (int i = 0; !st && i < g->n_outputs; i++) atomic_fetch_add(&job.pending[g->outputs[i]], 1);
    int threads = core_pool_size(p->pool);
    job.copy = calloc((size_t)threads, sizeof *job.copy);
    job.copy_bytes = calloc((size_t)threads, sizeof *job.copy_bytes);
    if (!st && (!job.copy || !job.copy_bytes)) st = oom();
    if (!st) core_pool_run(p->pool, n_steps, prepare_task, &job);
    for (int i = 0; !st && i < n_steps; i++)
        if (job.status[i]) {
            char label[256];
            st = core_fail(job.status[i], "%s: %s: %s", g->source,
                           graph_node_label(&g->nodes[p->steps[steps[i]].node], label, sizeof label), job.message[i]);
        }
    /* unaligned constants that some reader did not take (a depthwise Conv's weights) are read as they are at run
     * time: copy them now */
    for (int v = 0; !st && v < g->n_values; v++)
        if (p->kind[v] == VALUE_CONSTANT && g->values[v].unaligned && !(p->t[v].data = graph_constant_data(g, v)))
            st = oom();
    for (int t = 0; job.copy && t < threads; t++) core_aligned_free(job.copy[t]);
    free(job.copy);
    free(job.copy_bytes);
    free(job.pending);
    free(job.status);
    free(job.message);
    return st;
}

/* Marks STEP_DEAD the steps whose outputs no later step reads and no graph output is: from the last step back, so a
 * chain that only fed dead steps dies too. A pass that makes a node read its producer's input directly (lens.Attention
 * reading a packed QKV) leaves such nodes behind when Shape nodes still look at them. */
static lens_status skip_dead_steps(graph_plan *p) {
    graph *g = p->g;
    int *reads = calloc((size_t)p->n_slots + 1, sizeof(int));
    if (!reads) return oom();
    for (int s = 0; s < p->n_steps; s++) {
        const graph_node *n = &g->nodes[p->steps[s].node];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0) reads[n->inputs[k]]++;
    }
    for (int i = 0; i < g->n_outputs; i++) reads[g->outputs[i]]++;
    for (int s = p->n_steps - 1; s >= 0; s--) {
        plan_step *step = &p->steps[s];
        const graph_node *n = &g->nodes[step->node];
        int read = 0;
        for (int k = 0; k < n->n_outputs; k++) read += reads[step->outputs[k] - p->t];
        if (read || !n->n_outputs) continue;
        step->skip = STEP_DEAD;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0) reads[n->inputs[k]]--;
    }
    free(reads);
    return LENS_OK;
}

/* ---- Planning --------------------------------------------------------------------------------------------------- */

static int buffer_of(const int *root, int v) {
    while (root[v] != v) v = root[v];
    return v;
}

/* Gives a step's output the buffer of the input its op may overwrite (op_def.inplace_input: ResNet's conv3 writing
 * over the skip connection it adds) when no later step reads that buffer (through any view) and no other input of the
 * step lies in it. The output then streams one buffer instead of reading one and writing another: a 1x1 conv of 256
 * -> 1024 channels on 14x14 adding a residual ran 6% slower than without one, and as fast when in place. Steps are
 * taken in order, so a chain of them (ResNet's blocks) keeps one buffer. Leaves root[] pointing at each buffer's
 * owner, and death[] of an owner covering all that share it. */
static void share_inplace_buffers(graph_plan *p, const int *inplace, int *death, int *root) {
    const graph *g = p->g;
    for (int s = 0; s < p->n_steps; s++) {
        if (inplace[s] < 0 || p->steps[s].skip) continue;
        const graph_node *n = &g->nodes[p->steps[s].node];
        int out = (int)(p->steps[s].outputs[0] - p->t), in = n->inputs[inplace[s]];
        if (in < 0 || root[out] != out || p->kind[out] != VALUE_ACTIVATION) continue;
        int r = buffer_of(root, in), alone = 1;
        for (int k = 0; k < n->n_inputs; k++)
            if (k != inplace[s] && n->inputs[k] >= 0 && buffer_of(root, n->inputs[k]) == r) alone = 0;
        if (!alone || p->kind[r] != VALUE_ACTIVATION || death[r] != s ||
            tensor_bytes(&p->t[r]) < tensor_bytes(&p->t[out]))
            continue;
        root[out] = r;
        if (death[out] > death[r]) death[r] = death[out];
    }
    for (int v = 0; v < p->n_slots; v++) root[v] = buffer_of(root, v);
}

lens_status graph_plan_create(graph *g, const tensor *input_shapes, int n_inputs, core_pool *pool, graph_plan **out) {
    *out = NULL;
    graph_plan *p = calloc(1, sizeof *p);
    if (!p) return oom();
    p->g = g;
    p->pool = pool;
    int extra = 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_outputs; k++)
            if (g->nodes[i].outputs[k] < 0) extra++;
    p->n_values = g->n_values;
    p->n_slots = g->n_values + extra;
    p->t = calloc((size_t)p->n_slots + 1, sizeof(tensor));
    p->kind = calloc((size_t)p->n_slots + 1, 1);
    p->steps = calloc((size_t)g->n_nodes + 1, sizeof(plan_step));
    int *birth = calloc((size_t)p->n_slots + 1, sizeof(int)), *death = calloc((size_t)p->n_slots + 1, sizeof(int));
    int *to_prepare = calloc((size_t)g->n_nodes + 1, sizeof(int)), n_prepare = 0; /* steps whose node prepares */
    int *inplace = malloc(sizeof(int) * ((size_t)g->n_nodes + 1)); /* per step: op_def.inplace_input, or -1 */
    /* per slot: the activation whose buffer it uses (itself, or for a view the buffer's owner) */
    int *root = malloc(sizeof(int) * ((size_t)p->n_slots + 1));
    lens_status st = LENS_OK;
    if (!p->t || !p->kind || !p->steps || !birth || !death || !to_prepare || !inplace || !root) {
        st = oom();
        goto done;
    }
    for (int v = 0; v < p->n_slots; v++) root[v] = v;
    /* A constant still unaligned in the file stays without data while every reader will be prepared (and may pack
     * it, read through a copy, see prepare_task); otherwise it is copied to aligned memory now. */
    for (int i = 0; !st && i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (n->removed) continue;
        int preparing = n->def && n->def->prepare && !n->prepared && n->n_inputs <= PREPARE_MAX_INPUTS;
        if (!preparing && !graph_node_inputs_readable(g, n)) st = oom();
    }
    for (int i = 0; !st && i < g->n_outputs; i++)
        if (g->values[g->outputs[i]].unaligned && !graph_constant_data(g, g->outputs[i])) st = oom();
    if (st) goto done;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].constant) {
            p->t[v] = *g->values[v].constant;
            p->kind[v] = VALUE_CONSTANT;
        }
    if ((st = bind_inputs(p, input_shapes, n_inputs))) goto done;

    int next_extra = g->n_values;
    for (int i = 0; i < g->n_nodes; i++) {
        graph_node *n = &g->nodes[i];
        if (n->removed) continue;
        const tensor **ins = calloc((size_t)n->n_inputs + 1, sizeof *ins);
        tensor **outs = calloc((size_t)n->n_outputs + 1, sizeof *outs);
        if (!ins || !outs) {
            free(ins), free(outs);
            st = oom();
            goto done;
        }
        int known = 1;
        for (int k = 0; k < n->n_inputs; k++) {
            int v = n->inputs[k];
            if (v < 0) continue;
            ins[k] = &p->t[v];
            if ((p->kind[v] != VALUE_CONSTANT || !p->t[v].data) && p->kind[v] != VALUE_FOLDED) known = 0;
        }
        for (int k = 0; k < n->n_outputs; k++) {
            int v = n->outputs[k] >= 0 ? n->outputs[k] : next_extra++;
            outs[k] = &p->t[v];
        }
        char label[256];
        if (known || is_shape_only_op(n)) {
            st = graph_node_eval(n, (const tensor *const *)ins, (tensor *const *)outs, pool, owned_alloc, p);
            for (int k = 0; k < n->n_outputs; k++) p->kind[outs[k] - p->t] = VALUE_FOLDED;
            free(ins), free(outs);
            if (st) {
                core_fail_context(st, "%s: %s", g->source, graph_node_label(n, label, sizeof label));
                goto done;
            }
            continue;
        }
        plan_step *step = &p->steps[p->n_steps];
        step->node = i;
        step->inputs = ins;
        step->outputs = outs;
        p->n_steps++;
        op_call call = {.node = &n->op, .n_inputs = n->n_inputs, .inputs = (const tensor *const *)ins,
                        .n_outputs = n->n_outputs, .outputs = (tensor *const *)outs, .pool = pool};
        for (int k = 0; k < n->n_outputs; k++) *outs[k] = (tensor){0};
        if ((st = n->def->infer(&call))) {
            core_fail_context(st, "%s: %s", g->source, graph_node_label(n, label, sizeof label));
            goto done;
        }
        if (call.scratch_bytes > p->scratch_bytes) p->scratch_bytes = call.scratch_bytes;
        for (int k = 0; k < n->n_outputs; k++) {
            int v = (int)(outs[k] - p->t);
            if (tensor_bytes(outs[k]) == SIZE_MAX) {
                st = core_fail(LENS_ERR_SHAPE, "%s: %s: output %d has an invalid shape", g->source,
                               graph_node_label(n, label, sizeof label), k);
                goto done;
            }
            p->kind[v] = VALUE_ACTIVATION;
            birth[v] = death[v] = p->n_steps - 1;
        }
        /* A view of an activation (not a graph input, whose buffer the caller passes at each run) takes the buffer
         * of its input's owner, which then lives as long as the last reader of any of its views. */
        int src = n->n_inputs ? n->inputs[0] : -1;
        if (views_enabled && src >= 0 && p->kind[root[src]] == VALUE_ACTIVATION && ops_is_view(&call)) {
            step->skip = STEP_VIEW;
            root[outs[0] - p->t] = root[src];
        }
        inplace[p->n_steps - 1] = !step->skip && n->def->inplace_input ? n->def->inplace_input(&call) : -1;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0) death[n->inputs[k]] = p->n_steps - 1;
        if (n->def->prepare && !n->prepared) to_prepare[n_prepare++] = p->n_steps - 1;
    }
    if ((st = skip_dead_steps(p))) goto done;
    if ((st = prepare_steps(p, to_prepare, n_prepare))) goto done;
    for (int i = 0; i < g->n_outputs; i++) death[g->outputs[i]] = p->n_steps;
    for (int v = 0; v < p->n_slots; v++)
        if (death[v] > death[root[v]]) death[root[v]] = death[v];
    if (views_enabled) share_inplace_buffers(p, inplace, death, root);
    if ((st = lay_out_arena(p, birth, death, root))) goto done;
    if (p->scratch_bytes && !(p->scratch = core_aligned_alloc(p->scratch_bytes))) st = oom();
done:
    free(birth);
    free(death);
    free(to_prepare);
    free(inplace);
    free(root);
    if (st) {
        graph_plan_free(p);
        return st;
    }
    *out = p;
    return LENS_OK;
}

lens_status graph_plan_run(graph_plan *p, const tensor *inputs, tensor *outputs) {
    graph *g = p->g;
    for (int i = 0; i < g->n_inputs; i++) {
        tensor *t = &p->t[g->inputs[i]];
        if (inputs[i].dtype != t->dtype || !tensor_same_shape(&inputs[i], t)) {
            char have[160], want[160];
            return core_fail(LENS_ERR_SHAPE, "%s: input '%s' has shape %s; the plan was made for %s", g->source,
                             g->values[g->inputs[i]].name, tensor_shape_string(&inputs[i], have, sizeof have),
                             tensor_shape_string(t, want, sizeof want));
        }
        if (p->kind[g->inputs[i]] == VALUE_INPUT) t->data = inputs[i].data;
    }
    /* The hot loop: one op call per step, no allocation. */
    for (int s = 0; s < p->n_steps; s++) {
        plan_step *step = &p->steps[s];
        graph_node *n = &g->nodes[step->node];
        op_call call = {.node = &n->op, .n_inputs = n->n_inputs, .inputs = (const tensor *const *)step->inputs,
                        .n_outputs = n->n_outputs, .outputs = (tensor *const *)step->outputs, .pool = p->pool,
                        .state = n->state, .scratch = p->scratch, .scratch_bytes = p->scratch_bytes};
        if (step->skip) continue;
        double t0 = p->profile ? core_now() : 0;
        lens_status st = n->def->run(&call);
        if (p->profile) p->profile[s] += core_now() - t0;
        if (st) {
            char label[256];
            return core_fail_context(st, "%s: %s", g->source, graph_node_label(n, label, sizeof label));
        }
    }
    for (int i = 0; i < g->n_outputs; i++) outputs[i] = p->t[g->outputs[i]];
    return LENS_OK;
}

size_t graph_plan_arena_bytes(const graph_plan *p) { return p->arena_bytes; }
const tensor *graph_plan_output(const graph_plan *p, int i) { return &p->t[p->g->outputs[i]]; }

void graph_plan_enable_profile(graph_plan *p, int enable) {
    free(p->profile);
    p->profile = enable ? calloc((size_t)p->n_steps + 1, sizeof(double)) : NULL;
}

const tensor *graph_plan_value(const graph_plan *p, int v) {
    return v >= 0 && v < p->n_values && p->kind[v] != VALUE_UNDEFINED ? &p->t[v] : NULL;
}

int graph_plan_step_count(const graph_plan *p) { return p->n_steps; }

const graph_node *graph_plan_step(const graph_plan *p, int i, double *seconds) {
    *seconds = p->profile ? p->profile[i] : 0;
    return &p->g->nodes[p->steps[i].node];
}
