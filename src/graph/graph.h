/* graph.h — the IR every importer targets (values and nodes), its builder API, the passes that rewrite it, and the
 * plan: concrete shapes for given input shapes, constants folded, one activation arena laid out by liveness.
 * Includes ops, kernels and core. Knows nothing of file formats. */
#ifndef LENS_GRAPH_H
#define LENS_GRAPH_H

#include "../ops/ops.h"

/* ---- IR ------------------------------------------------------------------------------------------------------ */

typedef struct graph_value {
    const char *name;
    /* Declared type and shape (from the file); rank -1 = unknown, dims[i] -1 = dynamic. */
    lens_dtype dtype;
    int rank;
    int64_t dims[TENSOR_MAX_RANK];
    /* Non-NULL for initializers and folded constants; its data is owned by the graph (arena or file mapping), and
     * NULL (shape only) once graph_drop_constant_data has dropped it. */
    tensor *constant;
    /* Non-NULL while the constant's bytes lie misaligned in a mapping the graph keeps (ONNX raw_data sits at any
     * byte offset): constant->data stays NULL until graph_constant_data() copies them to aligned graph memory.
     * Weights that nodes pack when they are prepared are read from here (graph_plan_create) and never copied. */
    const void *unaligned;
    int producer; /* node index, or -1 for graph inputs and constants */
} graph_value;

typedef struct graph_node {
    op_node op;
    int n_inputs;
    int *inputs;  /* value indices; -1 for an omitted optional input */
    int n_outputs;
    int *outputs; /* value indices; -1 for an omitted optional output */
    int removed;  /* set by passes; skipped everywhere */
    const op_def *def; /* resolved by graph_finalize */
    void *state;       /* built by def->prepare on first plan, released by graph_free */
    int prepared;
    uint32_t taken_inputs; /* from prepare (op_call.taken_inputs): inputs the state replaces */
} graph_node;

typedef struct graph_opset {
    const char *domain;
    int version;
} graph_opset_import;

typedef struct graph_metadata {
    const char *key, *value;
} graph_metadata;

typedef struct graph {
    core_arena *arena;
    graph_value *values;
    int n_values, cap_values;
    graph_node *nodes;
    int n_nodes, cap_nodes;
    int *inputs; /* graph inputs that are not initializers */
    int n_inputs, cap_inputs;
    int *outputs;
    int n_outputs, cap_outputs;
    graph_opset_import opsets[16];
    int n_opsets;
    graph_metadata *metadata;
    int n_metadata, cap_metadata;
    const char *format;     /* "onnx", ... */
    const char *source;     /* file name for messages */
    const char *producer;   /* producer_name + version, may be "" */
    /* file mappings released by graph_free */
    struct { void *addr; size_t len; } mappings[8];
    int n_mappings;
} graph;

/* ---- Builder ------------------------------------------------------------------------------------------------- */

lens_status graph_create(const char *format, const char *source, graph **out);
void graph_free(graph *g);

/* Zeroed arena memory owned by the graph (NULL on out-of-memory). */
void *graph_alloc(graph *g, size_t bytes);
char *graph_strdup(graph *g, const char *s);
char *graph_strndup(graph *g, const char *s, size_t len);

/* The value named name, added (untyped) if absent. Returns its index or -1 on out-of-memory. "" is not a value. */
int graph_value_find_or_add(graph *g, const char *name);
/* The index of the value named name, or -1. */
int graph_value_find(const graph *g, const char *name);

/* Adds or replaces a constant (initializer). t is copied shallowly: t->data must stay valid as long as the graph
 * (arena memory or a registered mapping). */
lens_status graph_set_constant(graph *g, const char *name, const tensor *t);
/* The same for a constant whose bytes (tensor_bytes(t) of them, t->data ignored) lie at a misaligned address of a
 * mapping the graph keeps; see graph_value.unaligned. */
lens_status graph_set_unaligned_constant(graph *g, const char *name, const tensor *t, const void *bytes);
/* The data of constant v, copied into aligned graph memory first if it was still unaligned; NULL when v is no
 * constant or its data was dropped (graph_drop_constant_data). Passes call it before they read a constant's data. */
void *graph_constant_data(graph *g, int v);
/* graph_constant_data for every constant input of n still unaligned, before a pass reads n's inputs. 0 on
 * out-of-memory. */
int graph_node_inputs_readable(graph *g, const graph_node *n);
/* Whether constant v still has data, aligned or not. */
int graph_constant_has_data(const graph *g, int v);
/* Declares a graph input. dims[i] < 0 marks a dynamic dimension; rank -1 = unknown. */
lens_status graph_add_input(graph *g, const char *name, lens_dtype dtype, int rank, const int64_t *dims);
/* Declares a graph output (type optional: rank -1 when unknown). */
lens_status graph_add_output(graph *g, const char *name, lens_dtype dtype, int rank, const int64_t *dims);
/* Adds a node. Input and output names "" mark omitted optional ones. attrs are copied shallowly: their payloads
 * (names, strings, arrays, tensors) must be graph memory. Returns the node index in *index (may be NULL). */
lens_status graph_add_node(graph *g, const char *name, const char *domain, const char *op_type, int n_inputs,
                           const char *const *input_names, int n_outputs, const char *const *output_names, int n_attrs,
                           const op_attr *attrs, int *index);
lens_status graph_set_opset(graph *g, const char *domain, int version);
int graph_opset_version(const graph *g, const char *domain); /* 0 when not imported */
lens_status graph_set_metadata(graph *g, const char *key, const char *value);
const char *graph_metadata_get(const graph *g, const char *key);
/* Registers a file mapping to munmap in graph_free. */
lens_status graph_keep_mapping(graph *g, void *addr, size_t len);

/* ---- Checks and passes ----------------------------------------------------------------------------------------- */

/* Resolves each node's op and opset, sorts nodes topologically, and fails with one message naming every unsupported
 * op (domain and node) at once. Call after building, before passes. */
lens_status graph_finalize(graph *g);
/* Recomputes the producer of every value. */
void graph_update_producers(graph *g);
/* For passes (optimize.c): the index of the single live node reading value v (once or more), or -1 when several
 * nodes read it, none does, or v is a graph output. */
int graph_sole_consumer(const graph *g, int v);
/* For passes: how many times live nodes read value v, plus one if it is a graph output. */
int graph_use_count(const graph *g, int v);
/* For passes: appends count attributes to n, and widens n's inputs to n_inputs (new slots -1) so that a pass can
 * fill an optional or lens.* input; old arrays are copied into graph memory. */
lens_status graph_node_add_attrs(graph *g, graph_node *n, const op_attr *extra, int count);
lens_status graph_node_widen_inputs(graph *g, graph_node *n, int n_inputs);

/* Runs the standard passes: constant folding of initializer-only nodes, BatchNorm into Conv, linear-layer fusion,
 * activation fusion. */
lens_status graph_optimize(graph *g);
/* fuse_transformer.c: a constant bias Add after a MatMul with constant weights becomes the MatMul's epilogue
 * ("lens.bias"), and a constant per-channel Mul after it (behind a Transpose or not) is folded into its weights. */
lens_status graph_fuse_linear(graph *g);

typedef struct graph_plan graph_plan;
/* Passes that need shapes, taken from a plan of the optimized graph (any batch size): an Add of a Conv's output and
 * another tensor of the same shape becomes the Conv's fused residual (and a Relu after it the Conv's activation).
 * Invalidate plans made before: the caller frees them and plans again. */
lens_status graph_optimize_with_shapes(graph *g, const graph_plan *probe);
/* fuse_transformer.c: the core of each nn.MultiheadAttention (head split, Q Kᵀ, scale, Softmax, · V, head merge)
 * becomes one lens.Attention node. Shapes come from probe, as above. */
lens_status graph_fuse_attention(graph *g, const graph_plan *probe);
/* select_rows.c: a Gather of one index along a row axis (ViT's class token) moves up through the ops that treat rows
 * alone (LayerNormalization, MatMul with constant weights, elementwise), so that rows the model drops are never
 * computed. Shapes come from probe, as above. */
lens_status graph_select_rows(graph *g, const graph_plan *probe);

/* Drops the data of constant v: its pages go back to the OS and constant->data becomes NULL (shape only). The
 * planner calls it once every live node that reads v has been prepared and took it (graph_node's taken_inputs) and
 * v is no graph output, so that weights are resident once, in their packed form. Plans made before keep the old
 * pointer, but only nodes that took v read it, and they read their state instead. A constant still unaligned
 * (graph_value.unaligned) forgets its bytes, and their pages leave the resident set. */
void graph_drop_constant_data(graph *g, int v);

/* Parameter count and bytes of all constants. */
void graph_weight_stats(const graph *g, int64_t *params, size_t *bytes);

/* "node 'name' (Op)" or "node Op", for messages. */
const char *graph_node_label(const graph_node *n, char *buf, size_t size);

/* Evaluates one node outside a plan: infers output shapes, allocates each output with alloc(ctx, bytes), runs it.
 * Used to fold constants. */
typedef void *(*graph_alloc_fn)(void *ctx, size_t bytes);
lens_status graph_node_eval(graph_node *n, const tensor *const *inputs, tensor *const *outputs, core_pool *pool,
                            graph_alloc_fn alloc, void *alloc_ctx);

/* ---- Plan and run ---------------------------------------------------------------------------------------------- */

/* Plans the graph for concrete input shapes (one tensor per graph input: dtype, rank, dims, and data NULL). An input
 * given with data is folded as a constant (for inputs that carry shapes, axes or scales): the plan then holds for
 * those values only, and graph_plan_run ignores what is passed for it.
 * Shapes are inferred, nodes whose inputs are all known are folded, and activations share one arena laid out by
 * liveness. The plan borrows g (and pool) until graph_plan_free. */
lens_status graph_plan_create(graph *g, const tensor *input_shapes, int n_inputs, core_pool *pool, graph_plan **out);
void graph_plan_free(graph_plan *plan);

/* Runs the plan. inputs[i]->data is read (shapes must equal the planned ones). On success outputs[i] (caller array of
 * n_outputs = g->n_outputs) describe tensors inside the plan's arena: valid until the next run or graph_plan_free. */
lens_status graph_plan_run(graph_plan *plan, const tensor *inputs, tensor *outputs);

/* Bytes of the activation arena. */
size_t graph_plan_arena_bytes(const graph_plan *plan);
/* The planned tensor of graph value v (shape and dtype; data valid while the plan lives), or NULL when the plan does
 * not compute it. */
const tensor *graph_plan_value(const graph_plan *plan, int v);
/* Output i's planned shape. */
const tensor *graph_plan_output(const graph_plan *plan, int i);

/* Test hook: with 0, later plans give every op its own output buffer (views copy and fused residuals are not
 * overwritten, as before the planner aliased them); 1 (the default) restores aliasing. Not thread-safe: call while no
 * plan is being made. */
void graph_plan_set_views(int enable);

/* Per-node timing for profiling: when enabled, graph_plan_run accumulates seconds per step (enabling resets them). */
void graph_plan_enable_profile(graph_plan *plan, int enable);
int graph_plan_step_count(const graph_plan *plan);
/* Step i's node and accumulated seconds (0 when profiling is off). */
const graph_node *graph_plan_step(const graph_plan *plan, int i, double *seconds);

#endif
