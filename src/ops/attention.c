/* attention.c — lens.Attention: the core of multi-head scaled dot-product attention as one op, put in place of
 * the MatMul / Softmax / MatMul chain (and the head-splitting Reshapes and Transposes around it) by the graph pass
 * in src/graph/passes/fuse_transformer.c. Not an ONNX op: only graph passes create it.
 *
 *   inputs   Q [Sq, B, H*D], K [Sk, B, H*D], V [Sk, B, H*D]   float32, sequence first (nn.MultiheadAttention)
 *            or one input QKV [S, B, 3*H*D]: Q, K and V side by side in each row, as the fused in-projection writes
 *            them; they are read in place (with the row stride of QKV) instead of being sliced apart first
 *   attrs    num_heads H (INT), scale (FLOAT)
 *   output   Y [Sq, B*H, D] where Y[s, b*H + h] = softmax(scale * Q_bh[s] K_bhᵀ) V_bh
 *
 * which is exactly the tensor that PyTorch's exported graph reshapes back to [Sq*B, H*D] for the out-projection.
 * Each pool task takes one (batch, head) pair and a block of query rows and hands it to kern_attention
 * (src/kernels/attention.c), whose scores never leave the thread's scratch. May touch only its inputs, outputs and
 * scratch. */
#include <string.h>

#include "ops.h"

typedef struct attention_geom {
    int64_t Sq, Sk, B, H, D;
    int64_t row;      /* floats between sequence positions of Q, K and V alike: B*H*D, or 3*B*H*D packed */
    int64_t batch;    /* floats between batch entries of one position: H*D, or 3*H*D packed */
    int64_t k_offset; /* K's and V's first column past their tensor's start: 0, or H*D and 2*H*D packed */
    int64_t v_offset;
    float scale;
    int64_t rows;          /* query rows per task */
    int64_t blocks;        /* row blocks per (batch, head) */
    size_t thread_scratch; /* floats of scratch per thread, a multiple of 16 */
} attention_geom;

#define SCRATCH_HEADER 16 /* floats: one cache line, so the kernel's part stays 64-byte aligned */

/* One input QKV [S, B, 3E]: Q, K and V are its thirds along the last axis. */
static lens_status attention_parse_packed(const op_call *call, attention_geom *g) {
    const tensor *qkv = call->inputs[0];
    char s[96];
    tensor_shape_string(qkv, s, sizeof s);
    if (qkv->dtype != LENS_DTYPE_FLOAT32) return core_fail(LENS_ERR_UNSUPPORTED, "Attention supports float32 only");
    int64_t heads = op_attr_int(call->node, "num_heads", 0);
    if (qkv->rank != 3 || heads < 1 || qkv->dims[2] % (3 * heads) || qkv->dims[0] < 1 || qkv->dims[2] < 1)
        return core_fail(LENS_ERR_SHAPE, "Attention input QKV %s does not fit 3 x %lld heads", s, (long long)heads);
    int64_t E = qkv->dims[2] / 3;
    g->Sq = g->Sk = qkv->dims[0], g->B = qkv->dims[1], g->H = heads, g->D = E / heads;
    g->row = 3 * E * g->B, g->batch = 3 * E, g->k_offset = E, g->v_offset = 2 * E;
    return LENS_OK;
}

/* Q [Sq, B, E], K and V [Sk, B, E], E = H*D. */
static lens_status attention_parse_split(const op_call *call, attention_geom *g) {
    const tensor *q = call->inputs[0], *k = call->inputs[1], *v = call->inputs[2];
    char sq[96], sk[96], sv[96];
    tensor_shape_string(q, sq, sizeof sq);
    tensor_shape_string(k, sk, sizeof sk);
    tensor_shape_string(v, sv, sizeof sv);
    if (q->dtype != LENS_DTYPE_FLOAT32 || k->dtype != LENS_DTYPE_FLOAT32 || v->dtype != LENS_DTYPE_FLOAT32)
        return core_fail(LENS_ERR_UNSUPPORTED, "Attention supports float32 only");
    int64_t heads = op_attr_int(call->node, "num_heads", 0);
    if (q->rank != 3 || k->rank != 3 || v->rank != 3 || heads < 1 || q->dims[2] % heads ||
        k->dims[1] != q->dims[1] || v->dims[1] != q->dims[1] || k->dims[2] != q->dims[2] ||
        v->dims[2] != q->dims[2] || v->dims[0] != k->dims[0] || k->dims[0] < 1 || q->dims[2] < 1)
        return core_fail(LENS_ERR_SHAPE, "Attention inputs Q %s, K %s, V %s do not fit %lld heads", sq, sk, sv,
                         (long long)heads);
    g->Sq = q->dims[0], g->Sk = k->dims[0], g->B = q->dims[1], g->H = heads, g->D = q->dims[2] / heads;
    g->row = q->dims[1] * q->dims[2], g->batch = q->dims[2], g->k_offset = g->v_offset = 0;
    return LENS_OK;
}

static lens_status attention_parse(const op_call *call, attention_geom *g) {
    if ((call->n_inputs != 3 && call->n_inputs != 1) || call->n_outputs != 1 || !call->outputs[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Attention needs inputs Q, K, V (or QKV) and one output");
    for (int i = 0; i < call->n_inputs; i++)
        if (!call->inputs[i]) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Attention needs inputs Q, K, V");
    lens_status st = call->n_inputs == 1 ? attention_parse_packed(call, g) : attention_parse_split(call, g);
    if (st) return st;
    g->scale = op_attr_float(call->node, "scale", 1.0f);
    /* Enough tasks to balance the pool (four per thread), each block at least a few micro-tiles of rows, in steps
     * of the kernel's row block. */
    int threads = core_pool_size(call->pool);
    int64_t pairs = g->B * g->H, want = 4 * (int64_t)threads, step = (int64_t)kern_attention_row_step();
    g->blocks = pairs >= want || pairs == 0 ? 1 : (want + pairs - 1) / pairs;
    g->rows = (g->Sq + g->blocks - 1) / g->blocks;
    if (g->rows < 24) g->rows = 24;
    g->rows = (g->rows + step - 1) / step * step;
    if (g->rows > g->Sq) g->rows = g->Sq;
    if (g->rows < 1) g->rows = 1;
    g->blocks = (g->Sq + g->rows - 1) / g->rows;
    /* a header line (which pair's K and V the thread's scratch holds), then the kernel's scratch */
    g->thread_scratch = SCRATCH_HEADER + ((kern_attention_scratch_floats((size_t)g->rows, (size_t)g->Sk,
                                                                          (size_t)g->D) + 15) & ~(size_t)15);
    return LENS_OK;
}

static lens_status attention_infer(op_call *call) {
    attention_geom g;
    lens_status st = attention_parse(call, &g);
    if (st) return st;
    int64_t dims[3] = {g.Sq, g.B * g.H, g.D};
    ops_set_shape(call->outputs[0], LENS_DTYPE_FLOAT32, 3, dims);
    call->scratch_bytes = g.thread_scratch * sizeof(float) * (size_t)core_pool_size(call->pool);
    return LENS_OK;
}

/* ---- Run --------------------------------------------------------------------------------------------------------- */

typedef struct attention_job {
    attention_geom g;
    const float *q, *k, *v;
    float *y;
    float *scratch;
} attention_job;

/* One (batch, head) pair, query rows [s0, s0 + rows). A thread that takes several row blocks of one pair in a row
 * (tasks are handed out in order) prepares that pair's K and V only once. */
static void attention_task(void *ctx, int64_t task, int thread) {
    const attention_job *j = ctx;
    const attention_geom *g = &j->g;
    int64_t block = task % g->blocks, pair = task / g->blocks, b = pair / g->H, h = pair % g->H;
    int64_t s0 = block * g->rows, rows = g->Sq - s0 < g->rows ? g->Sq - s0 : g->rows;
    size_t ld = (size_t)g->row, ldy = (size_t)(g->B * g->H * g->D); /* row strides of Q, K, V and of Y */
    size_t col = (size_t)(b * g->batch + h * g->D), col_y = (size_t)((b * g->H + h) * g->D);
    float *scratch = j->scratch + (size_t)thread * g->thread_scratch;
    int64_t held;
    memcpy(&held, scratch, sizeof held);
    memcpy(scratch, &pair, sizeof pair);
    kern_attention_head head = {
        .rows = (size_t)rows, .keys = (size_t)g->Sk, .dim = (size_t)g->D, .scale = g->scale,
        .q = j->q + (size_t)s0 * ld + col, .k = j->k + g->k_offset + col, .v = j->v + g->v_offset + col,
        .ldq = ld, .ldk = ld, .ldv = ld,
        .y = j->y + (size_t)s0 * ldy + col_y, .ldy = ldy,
    };
    kern_attention(&head, scratch + SCRATCH_HEADER, held == pair);
}

static lens_status attention_run(op_call *call) {
    attention_job j;
    lens_status st = attention_parse(call, &j.g);
    if (st) return st;
    int last = call->n_inputs - 1; /* packed: all three are input 0, at offsets */
    j.q = call->inputs[0]->data, j.k = call->inputs[last > 0]->data, j.v = call->inputs[last]->data;
    j.y = call->outputs[0]->data;
    j.scratch = call->scratch;
    if (!j.q || !j.k || !j.v || !j.y) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Attention: missing tensor data");
    if (!j.g.Sq || !j.g.B) return LENS_OK;
    if (!j.scratch || call->scratch_bytes < j.g.thread_scratch * sizeof(float) * (size_t)core_pool_size(call->pool))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Attention: scratch smaller than inferred");
    int threads = core_pool_size(call->pool);
    for (int t = 0; t < threads; t++) { /* no thread holds a pair's K and V yet */
        int64_t none = -1;
        memcpy(j.scratch + (size_t)t * j.g.thread_scratch, &none, sizeof none);
    }
    core_pool_run(call->pool, j.g.B * j.g.H * j.g.blocks, attention_task, &j);
    return LENS_OK;
}

const op_def ops_table_attention[] = {
    {"lens", "Attention", attention_infer, attention_run, NULL, NULL, NULL},
    {0},
};
