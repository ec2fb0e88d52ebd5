/* ops.h — operators: for each ONNX op, shape inference and a run function (plus optional prepared state such as
 * packed weights). Ops see tensors, attributes and a thread pool, never the graph. One file per op family; each
 * family exports a table that registry.c collects. Includes only kernels and core. */
#ifndef LENS_OPS_H
#define LENS_OPS_H

#include "../kernels/kernels.h"

/* ---- Attributes (types numbered as ONNX's AttributeProto.AttributeType) ---------------------------------------- */

typedef enum op_attr_type {
    OP_ATTR_UNDEFINED = 0,
    OP_ATTR_FLOAT = 1,
    OP_ATTR_INT = 2,
    OP_ATTR_STRING = 3,
    OP_ATTR_TENSOR = 4,
    OP_ATTR_GRAPH = 5,
    OP_ATTR_FLOATS = 6,
    OP_ATTR_INTS = 7,
    OP_ATTR_STRINGS = 8
} op_attr_type;

typedef struct op_attr {
    const char *name;
    op_attr_type type;
    float f;                    /* FLOAT */
    int64_t i;                  /* INT */
    const char *s;              /* STRING: NUL-terminated */
    size_t s_len;
    const tensor *t;            /* TENSOR */
    const float *floats;        /* FLOATS */
    const int64_t *ints;        /* INTS */
    const char *const *strings; /* STRINGS */
    size_t count;               /* element count of FLOATS / INTS / STRINGS */
} op_attr;

/* The node as an op sees it. Attributes and strings are owned by the graph and outlive every call. */
typedef struct op_node {
    const char *name;    /* may be "" */
    const char *op_type; /* "Conv" */
    const char *domain;  /* "" for the default ai.onnx domain, "com.microsoft", ... */
    int opset;           /* opset version imported for the node's domain */
    int n_attrs;
    const op_attr *attrs;
} op_node;

const op_attr *op_attr_find(const op_node *node, const char *name);
int64_t op_attr_int(const op_node *node, const char *name, int64_t fallback);
float op_attr_float(const op_node *node, const char *name, float fallback);
const char *op_attr_string(const op_node *node, const char *name, const char *fallback);
/* Returns the element count and sets *values; 0 and NULL when absent. */
size_t op_attr_ints(const op_node *node, const char *name, const int64_t **values);
size_t op_attr_floats(const op_node *node, const char *name, const float **values);

/* Fused activation that graph passes attach to a node as internal attributes: "lens.activation" (STRING, one of
 * Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Gelu, Silu) with "lens.activation_alpha" and
 * "lens.activation_beta" (FLOAT). Ops that support fusion (Conv, Gemm, MatMul, ...) read it with this. */
kern_activation op_fused_activation(const op_node *node);

/* ---- Calls ---------------------------------------------------------------------------------------------------- */

typedef struct op_call {
    const op_node *node;
    int n_inputs;
    const tensor *const *inputs; /* inputs[i] is NULL when an optional input is omitted */
    int n_outputs;
    tensor *const *outputs;
    core_pool *pool;       /* NULL: run on the calling thread */
    void *state;           /* from prepare, or NULL */
    void *scratch;         /* scratch_bytes of 64-byte aligned memory during run, shared with other nodes */
    size_t scratch_bytes;  /* set by infer when the op needs scratch */
    uint32_t taken_inputs; /* set by prepare: bit k when the state holds all that run needs of constant input k */
} op_call;

typedef struct op_def {
    const char *domain;  /* "" for ai.onnx */
    const char *op_type;
    /* Sets dtype, rank and dims of every output (outputs[i]->data is NULL). inputs[i]->data is non-NULL only for
     * inputs whose values are known when planning (initializers, folded constants). An op whose output shape
     * depends on an input's values returns LENS_ERR_UNSUPPORTED when that input's data is NULL. Errors carry a
     * message (core_fail) without the node name: the caller adds it. May set call->scratch_bytes. */
    lens_status (*infer)(op_call *call);
    /* Computes the outputs into caller-allocated buffers of the inferred sizes. Inputs are read-only. */
    lens_status (*run)(op_call *call);
    /* Optional: called once per node after the first infer, with data for constant inputs, to build state (e.g.
     * packed weights) that run receives in call->state. Setting bit k of call->taken_inputs says the state replaces
     * input k: the planner may then drop that constant's data (once no other node reads it), and later infer and
     * run calls see it with the shape only (data NULL). */
    lens_status (*prepare)(op_call *call, void **state);
    /* Frees what prepare built. */
    void (*release)(void *state);
    /* Optional: after infer, the input whose buffer output 0 may take, or -1. The op must then read each value of
     * that input only at the position of output 0 it writes, before writing it (a fused residual add), and run
     * correctly whether or not the two share a buffer. The planner shares them when nothing reads the input later
     * and no other input of the node lies in the same buffer. */
    int (*inplace_input)(const op_call *call);
} op_def;

/* Whether the call's output 0, as inferred, holds exactly the bytes of input 0 in the same order (a reshape of the
 * same data: Reshape, Flatten, Squeeze, Unsqueeze, Identity, a Transpose that only moves axes of size 1). The planner
 * may then give output 0 input 0's buffer and skip the run, which still works (and copies) when the buffers differ. */
bool ops_is_view(const op_call *call);

/* For op_def.inplace_input of ops that add a fused residual ("lens.residual" = 1) as input k, read where the same
 * output goes: k when that input is there with output 0's size, else -1. */
int ops_residual_inplace(const op_call *call, int k);

/* The op for (domain, op_type), or NULL. "ai.onnx" and "" are the same domain. */
const op_def *ops_lookup(const char *domain, const char *op_type);
/* Iterates over all registered ops (for listings): returns NULL past the end. */
const op_def *ops_at(size_t index);

/* Each family file defines one table, terminated by an entry with op_type == NULL. */
extern const op_def ops_table_conv[];     /* conv.c: Conv, ConvTranspose? */
extern const op_def ops_table_linalg[];   /* linalg.c: Gemm, MatMul, Einsum */
extern const op_def ops_table_pool[];     /* pool.c: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool */
extern const op_def ops_table_norm[];     /* norm.c: BatchNormalization, LayerNormalization, InstanceNormalization */
extern const op_def ops_table_act[];      /* act.c: Relu ... Gelu, Softmax, LogSoftmax */
extern const op_def ops_table_eltwise[];  /* eltwise.c: broadcasting binary and unary math, comparisons, Where */
extern const op_def ops_table_reduce[];   /* reduce.c: ReduceMean/Sum/Max/L2 */
extern const op_def ops_table_shape[];    /* shape.c: Reshape, Transpose, Concat, Slice, Gather, Cast, ... */
extern const op_def ops_table_resize[];   /* resize.c: Resize */
extern const op_def ops_table_quant[];    /* quant.c: QuantizeLinear, QLinearConv, ... com.microsoft QLinear* */
extern const op_def ops_table_scatter[];  /* scatter.c: ScatterND, ScatterElements, GatherND */
extern const op_def ops_table_attention[]; /* attention.c: lens.Attention (made by graph passes only) */

/* ---- Helpers shared by op families (ops_util.c) --------------------------------------------------------------- */

/* Numpy-style broadcast of shapes a and b into out (rank and dims). LENS_ERR_SHAPE with a message on mismatch. */
lens_status ops_broadcast_shape(const tensor *a, const tensor *b, tensor *out);
/* Normalises a possibly negative axis against rank; LENS_ERR_INVALID_ARGUMENT when out of range. */
lens_status ops_normalize_axis(int64_t axis, int rank, int *out);
/* Sets out's dtype/rank/dims. */
void ops_set_shape(tensor *out, lens_dtype dtype, int rank, const int64_t *dims);

#endif
