/* test_attention.c — lens.Attention against attention computed here in double precision, on random shapes (sequence
 * 1..70, heads 1..5, head size 1..70, batch 1..3, and edge sizes up to 257 x 80) with and without a thread pool, on
 * every GEMM path; and the fusion passes of
 * fuse_transformer.c: graphs built like PyTorch's exports (nn.MultiheadAttention's core, Linear = MatMul + Add,
 * ConvNeXt's layer scale behind a Transpose, LayerNormalization between NCHW/NHWC Transposes) must give the same
 * outputs after fusion as before, and must actually have been fused (or, where a pattern does not apply, left
 * alone). */
#include <string.h>

#include "graph/graph.h"
#include "kernels/gemm_internal.h"
#include "test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float frand(void) { return (float)((next_random() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f; }
static int64_t irand(int64_t lo, int64_t hi) { return lo + (int64_t)(next_random() % (uint64_t)(hi - lo + 1)); }
static float *random_floats(size_t n, float amplitude) {
    float *p = malloc(n * sizeof *p + 4);
    for (size_t i = 0; i < n; i++) p[i] = amplitude * frand();
    return p;
}

static double max_rel_diff(const float *got, const float *want, size_t n) {
    double worst = 0, scale = 1e-6;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)want[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]) / scale;
        if (!(d <= worst)) worst = d; /* NaN sticks */
    }
    return worst;
}

/* ---- The op against a reference ---------------------------------------------------------------------------------- */

/* y [Sq, B*H, D] from q [Sq, B, H*D], k and v [Sk, B, H*D], in double. */
static void attention_reference(const float *q, const float *k, const float *v, float *y, int64_t Sq, int64_t Sk,
                                int64_t B, int64_t H, int64_t D, float scale) {
    int64_t E = H * D;
    double *p = malloc((size_t)Sk * sizeof *p);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t s = 0; s < Sq; s++) {
                double m = -INFINITY, sum = 0;
                for (int64_t t = 0; t < Sk; t++) {
                    double dot = 0;
                    for (int64_t d = 0; d < D; d++)
                        dot += (double)q[(s * B + b) * E + h * D + d] * k[(t * B + b) * E + h * D + d];
                    p[t] = dot * scale;
                    m = fmax(m, p[t]);
                }
                for (int64_t t = 0; t < Sk; t++) sum += p[t] = exp(p[t] - m);
                for (int64_t d = 0; d < D; d++) {
                    double acc = 0;
                    for (int64_t t = 0; t < Sk; t++) acc += p[t] * v[(t * B + b) * E + h * D + d];
                    y[(s * B + b) * E + h * D + d] = (float)(acc / sum);
                }
            }
    free(p);
}

/* Runs lens.Attention on q, k, v, or with k == v == NULL on one packed input q = QKV. */
static lens_status run_attention_op(const tensor *q, const tensor *k, const tensor *v, int64_t heads, float scale,
                                    tensor *y, core_pool *pool) {
    const op_def *def = ops_lookup("lens", "Attention");
    if (!def) return core_fail(LENS_ERR_UNSUPPORTED, "no lens.Attention");
    op_attr attrs[2] = {{.name = "num_heads", .type = OP_ATTR_INT, .i = heads},
                        {.name = "scale", .type = OP_ATTR_FLOAT, .f = scale}};
    op_node node = {"attention", "Attention", "lens", 1, 2, attrs};
    const tensor *ins[3] = {q, k, v};
    tensor *outs[1] = {y};
    op_call call = {.node = &node, .n_inputs = k ? 3 : 1, .inputs = ins, .n_outputs = 1, .outputs = outs, .pool = pool};
    lens_status st = def->infer(&call);
    if (st) return st;
    y->data = malloc(tensor_bytes(y) + 4);
    call.scratch = call.scratch_bytes ? core_aligned_alloc(call.scratch_bytes) : NULL;
    st = def->run(&call);
    core_aligned_free(call.scratch);
    return st;
}

/* One case, from Q, K, V given apart and (when Sq == Sk) side by side in one QKV, against the reference. */
static void check_case(int64_t Sq, int64_t Sk, int64_t B, int64_t H, int64_t D, float scale, float amplitude,
                       core_pool *pool, const char *path) {
    int64_t E = H * D;
    tensor q = {LENS_DTYPE_FLOAT32, 3, {Sq, B, E}, random_floats((size_t)(Sq * B * E), amplitude)};
    tensor k = {LENS_DTYPE_FLOAT32, 3, {Sk, B, E}, random_floats((size_t)(Sk * B * E), amplitude)};
    tensor v = {LENS_DTYPE_FLOAT32, 3, {Sk, B, E}, random_floats((size_t)(Sk * B * E), 1.0f)};
    tensor y = {0};
    float *want = malloc((size_t)(Sq * B * E) * sizeof *want);
    attention_reference(q.data, k.data, v.data, want, Sq, Sk, B, H, D, scale);
    lens_status st = run_attention_op(&q, &k, &v, H, scale, &y, pool);
    CHECK_MSG(st == LENS_OK, "%s", core_last_error());
    if (!st) {
        CHECK(y.rank == 3 && y.dims[0] == Sq && y.dims[1] == B * H && y.dims[2] == D);
        double d = max_rel_diff(y.data, want, (size_t)(Sq * B * E));
        CHECK_MSG(d < 2e-5, "%s: Sq %lld Sk %lld B %lld H %lld D %lld scale %g: max rel diff %g", path,
                  (long long)Sq, (long long)Sk, (long long)B, (long long)H, (long long)D, scale, d);
    }
    if (Sq == Sk) { /* the same inputs side by side in one QKV [S, B, 3E], read in place: the same output */
        tensor qkv = {LENS_DTYPE_FLOAT32, 3, {Sq, B, 3 * E}, malloc((size_t)(Sq * B * 3 * E) * sizeof(float))};
        const tensor *parts[3] = {&q, &k, &v};
        for (int64_t r = 0; r < Sq * B; r++)
            for (int i = 0; i < 3; i++)
                memcpy((float *)qkv.data + (r * 3 + i) * E, (const float *)parts[i]->data + r * E,
                       (size_t)E * sizeof(float));
        tensor y_packed = {0};
        st = run_attention_op(&qkv, NULL, NULL, H, scale, &y_packed, pool);
        CHECK_MSG(st == LENS_OK, "%s", core_last_error());
        if (!st) {
            CHECK(y_packed.rank == 3 && y_packed.dims[0] == Sq && y_packed.dims[1] == B * H && y_packed.dims[2] == D);
            double d = max_rel_diff(y_packed.data, want, (size_t)(Sq * B * E));
            CHECK_MSG(d < 2e-5, "%s: packed S %lld B %lld H %lld D %lld scale %g: max rel diff %g", path,
                      (long long)Sq, (long long)B, (long long)H, (long long)D, scale, d);
        }
        free(qkv.data), free(y_packed.data);
    }
    free(q.data), free(k.data), free(v.data), free(y.data), free(want);
}

/* Random shapes, then the sizes that meet the kernel's blocks unevenly: sequences of 1, 7, 197 (ViT-B/16's) and 257
 * against 12-row blocks and 32-key panels, head sizes 32, 64 (two column panels) and 80 (a partial third), one
 * to three images. With few heads a head splits into row blocks, and one thread takes several of them in a row
 * (reusing its packed K and V) or, with the pool, blocks of different heads in turn. */
static void test_op(core_pool *pool, const char *path) {
    for (int iter = 0; iter < 60; iter++) {
        int64_t Sq = irand(1, 70), Sk = iter % 3 ? Sq : irand(1, 70), B = irand(1, 3), H = irand(1, 5);
        int64_t D = iter % 4 == 0 ? irand(1, 8) : irand(1, 70);
        /* other scales too (a negative one reverses the order of the scores), but not with the large inputs: scores
         * in the hundreds leave fp32 no digits to meet 2e-5 with, on any path */
        int odd_scale = iter % 7 == 3 || iter % 7 == 5;
        float scale = iter % 7 == 3 ? -0.3f : iter % 7 == 5 ? 0.37f : 1.0f / sqrtf((float)D);
        check_case(Sq, Sk, B, H, D, scale, iter % 5 == 0 && !odd_scale ? 8.0f : 1.0f, pool, path);
    }
    static const int64_t lengths[] = {1, 7, 197, 257}, dims[] = {32, 64, 80};
    for (int l = 0; l < 4; l++)
        for (int d = 0; d < 3; d++) {
            int64_t S = lengths[l], B = 1 + (l + d) % 3, H = 1 + (l * 3 + d) % 3;
            check_case(S, S, B, H, dims[d], 1.0f / sqrtf((float)dims[d]), 4.0f, pool, path);
        }
    check_case(197, 50, 1, 2, 64, 0.125f, 4.0f, pool, path); /* cross attention, keys fewer and more than queries */
    check_case(13, 257, 2, 1, 80, 0.125f, 4.0f, pool, path);
}

/* The op on each GEMM path this CPU runs (the automatic choice is one of them): on AVX-512 its own kernel
 * (x86/attention_avx512.c), elsewhere the kern_sgemm route. */
static void test_op_paths(core_pool *pool) {
    static const struct {
        kern_gemm_path path;
        const char *name;
    } paths[] = {{KERN_GEMM_PATH_AVX512, "avx512"}, {KERN_GEMM_PATH_AVX2, "avx2"}, {KERN_GEMM_PATH_GENERIC, "generic"}};
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        if (!kern_gemm_force_path(paths[p].path)) continue;
        test_op(NULL, paths[p].name);
        test_op(pool, paths[p].name);
    }
    CHECK(kern_gemm_force_path(KERN_GEMM_PATH_AUTO));
}

static void test_op_errors(void) {
    float data[24] = {0};
    tensor q = {LENS_DTYPE_FLOAT32, 3, {2, 1, 6}, data}, k = q, v = q, y = {0};
    CHECK(run_attention_op(&q, &k, &v, 4, 1.0f, &y, NULL) == LENS_ERR_SHAPE); /* 6 is not 4 heads */
    CHECK(run_attention_op(&q, &k, &v, 0, 1.0f, &y, NULL) == LENS_ERR_SHAPE);
    k.dims[1] = 2;
    CHECK(run_attention_op(&q, &k, &v, 2, 1.0f, &y, NULL) == LENS_ERR_SHAPE); /* batch mismatch */
    k = q;
    v.dims[0] = 3;
    CHECK(run_attention_op(&q, &k, &v, 2, 1.0f, &y, NULL) == LENS_ERR_SHAPE); /* K and V lengths differ */
    v = q;
    /* empty batch and sequence: a valid empty output */
    q.dims[1] = k.dims[1] = v.dims[1] = 0;
    CHECK(run_attention_op(&q, &k, &v, 2, 1.0f, &y, NULL) == LENS_OK && y.dims[1] == 0);
    free(y.data);
    q.dims[1] = k.dims[1] = v.dims[1] = 1;
    q.dims[0] = 0;
    CHECK(run_attention_op(&q, &k, &v, 2, 1.0f, &y, NULL) == LENS_OK && y.dims[0] == 0);
    free(y.data);
    q.dims[0] = 2;
    q.dtype = LENS_DTYPE_FLOAT16;
    CHECK(run_attention_op(&q, &k, &v, 2, 1.0f, &y, NULL) == LENS_ERR_UNSUPPORTED);
    /* one packed QKV input: its last axis must hold three times the heads */
    tensor qkv = {LENS_DTYPE_FLOAT32, 3, {2, 1, 12}, data};
    CHECK(run_attention_op(&qkv, NULL, NULL, 2, 1.0f, &y, NULL) == LENS_OK && y.dims[1] == 2 && y.dims[2] == 2);
    free(y.data);
    CHECK(run_attention_op(&qkv, NULL, NULL, 3, 1.0f, &y, NULL) == LENS_ERR_SHAPE); /* 12 is not 3 x 3 heads */
    qkv.rank = 2;
    CHECK(run_attention_op(&qkv, NULL, NULL, 2, 1.0f, &y, NULL) == LENS_ERR_SHAPE);
}

/* ---- Graphs built like PyTorch's exports --------------------------------------------------------------------------- */

static void add_const(graph *g, const char *name, lens_dtype dtype, int rank, const int64_t *dims, const void *data) {
    tensor t = {dtype, rank, {0}, NULL};
    for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
    t.data = graph_alloc(g, tensor_bytes(&t));
    memcpy(t.data, data, tensor_bytes(&t));
    CHECK(graph_set_constant(g, name, &t) == LENS_OK);
}

static void add_node(graph *g, const char *op, const char *in0, const char *in1, const char *out, const op_attr *attr) {
    const char *ins[2] = {in0, in1}, *outs[1] = {out};
    CHECK_MSG(graph_add_node(g, out, "", op, in1 ? 2 : 1, ins, 1, outs, attr ? 1 : 0, attr, NULL) == LENS_OK, "%s",
              core_last_error());
}

static op_attr perm_attr(graph *g, int64_t a, int64_t b, int64_t c, int64_t d, int rank) {
    int64_t *perm = graph_alloc(g, 4 * sizeof *perm);
    perm[0] = a, perm[1] = b, perm[2] = c, perm[3] = d;
    return (op_attr){.name = "perm", .type = OP_ATTR_INTS, .ints = perm, .count = (size_t)rank};
}

static int count_ops(const graph *g, const char *op_type) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !g->nodes[i].removed && !strcmp(g->nodes[i].op.op_type, op_type);
    return n;
}

/* Plans g for inputs (shapes and data), runs it, and copies output 0 into a new buffer (NULL on failure). */
/* graph_optimize_with_shapes with a probe plan for these input shapes (data unused). */
static void optimize_with_shapes(graph *g, const tensor *shapes, int n_shapes, core_pool *pool) {
    graph_plan *probe = NULL;
    CHECK(graph_plan_create(g, shapes, n_shapes, pool, &probe) == LENS_OK);
    CHECK_MSG(graph_optimize_with_shapes(g, probe) == LENS_OK, "%s", core_last_error());
    graph_plan_free(probe);
}

static float *run_graph(graph *g, const tensor *inputs, int n_inputs, core_pool *pool, size_t *count) {
    tensor shapes[4], out[4];
    for (int i = 0; i < n_inputs; i++) shapes[i] = inputs[i], shapes[i].data = NULL;
    graph_plan *plan = NULL;
    lens_status st = graph_plan_create(g, shapes, n_inputs, pool, &plan);
    if (!st) st = graph_plan_run(plan, inputs, out);
    CHECK_MSG(st == LENS_OK, "%s", core_last_error());
    float *copy = NULL;
    if (!st) {
        *count = (size_t)tensor_numel(&out[0]);
        copy = malloc(*count * sizeof *copy + 4);
        memcpy(copy, out[0].data, *count * sizeof *copy);
    }
    graph_plan_free(plan);
    return copy;
}

/* The graph variants: which scaling the exporter used, and an extra reader that must block the fusion. */
enum { SCALE_DIV_Q, SCALE_MUL_Q, SCALE_DIV_SCORES, EXTRA_READER };

static void add_node3(graph *g, const char *op, const char *in0, const char *in1, const char *in2, const char *in3,
                      const char *out) {
    const char *ins[4] = {in0, in1, in2, in3}, *outs[1] = {out};
    CHECK_MSG(graph_add_node(g, out, "", op, in3 ? 4 : 3, ins, 1, outs, 0, NULL, NULL) == LENS_OK, "%s",
              core_last_error());
}

/* q, k, v [S, batch, H*D] → nn.MultiheadAttention's core as torch 1.13 exports it, at opset 17. With packed, one
 * input qkv [S, batch, 3*H*D] sliced into q, k, v along the last axis first (self-attention's fused in-projection),
 * the split shape of k computed from Shape(k) as the exporter does: the Slice of k keeps a Shape reader. */
static graph *build_attention_graph(int64_t S, int64_t H, int64_t D, int variant, int packed) {
    graph *g = NULL;
    CHECK(graph_create("test", "attention", &g) == LENS_OK);
    graph_set_opset(g, "", 17);
    int64_t E = H * D, in_dims[3] = {S, -1, E}, split[3] = {0, -1, D}, three = 3, one = 1;
    float root = sqrtf((float)D), inv_root = 1.0f / root;
    const char *names[3] = {"q", "k", "v"};
    if (packed) {
        int64_t qkv_dims[3] = {S, -1, 3 * E}, bounds[4] = {0, E, 2 * E, INT64_MAX}, axis2 = 2, axis_last = -1;
        int64_t first = 0, tail[2] = {-1, D};
        CHECK(graph_add_input(g, "qkv", LENS_DTYPE_FLOAT32, 3, qkv_dims) == LENS_OK);
        const char *bound_names[4] = {"b0", "b1", "b2", "b3"};
        for (int i = 0; i < 4; i++) add_const(g, bound_names[i], LENS_DTYPE_INT64, 1, &one, &bounds[i]);
        add_const(g, "axis2", LENS_DTYPE_INT64, 1, &one, &axis2);
        add_const(g, "axis_last", LENS_DTYPE_INT64, 1, &one, &axis_last);
        add_const(g, "first", LENS_DTYPE_INT64, 1, &one, &first);
        int64_t two = 2;
        add_const(g, "tail", LENS_DTYPE_INT64, 1, &two, tail);
        add_node3(g, "Slice", "qkv", "b0", "b1", "axis2", "q");
        add_node3(g, "Slice", "qkv", "b1", "b2", "axis_last", "k");
        add_node3(g, "Slice", "qkv", "b2", "b3", "axis2", "v");
        add_node(g, "Shape", "k", NULL, "k_shape", NULL);
        add_const(g, "one", LENS_DTYPE_INT64, 1, &one, &one);
        add_node3(g, "Slice", "k_shape", "first", "one", NULL, "k_len"); /* [S] */
        const char *ins[2] = {"k_len", "tail"}, *outs[1] = {"k_split_shape"};
        op_attr axis0 = {.name = "axis", .type = OP_ATTR_INT, .i = 0};
        CHECK(graph_add_node(g, "concat", "", "Concat", 2, ins, 1, outs, 1, &axis0, NULL) == LENS_OK);
    } else {
        for (int i = 0; i < 3; i++) CHECK(graph_add_input(g, names[i], LENS_DTYPE_FLOAT32, 3, in_dims) == LENS_OK);
    }
    add_const(g, "split", LENS_DTYPE_INT64, 1, &three, split);
    add_const(g, "root", LENS_DTYPE_FLOAT32, 0, &one, &root);
    add_const(g, "inv_root", LENS_DTYPE_FLOAT32, 0, &one, &inv_root);
    op_attr p102 = perm_attr(g, 1, 0, 2, 0, 3), p120 = perm_attr(g, 1, 2, 0, 0, 3);
    op_attr axis = {.name = "axis", .type = OP_ATTR_INT, .i = -1};
    add_node(g, "Reshape", "q", "split", "q_split", NULL);
    add_node(g, "Transpose", "q_split", NULL, "q_heads", &p102);
    const char *q_in = "q_heads", *scores = "scores";
    if (variant == SCALE_DIV_Q || variant == EXTRA_READER) add_node(g, "Div", "q_heads", "root", q_in = "q_scaled", NULL);
    if (variant == SCALE_MUL_Q) add_node(g, "Mul", "inv_root", "q_heads", q_in = "q_scaled", NULL);
    add_node(g, "Reshape", "k", packed ? "k_split_shape" : "split", "k_split", NULL);
    add_node(g, "Transpose", "k_split", NULL, "k_heads", &p120);
    add_node(g, "MatMul", q_in, "k_heads", "scores", NULL);
    if (variant == SCALE_DIV_SCORES) add_node(g, "Div", "scores", "root", scores = "scores_scaled", NULL);
    add_node(g, "Softmax", scores, NULL, "probs", &axis);
    add_node(g, "Reshape", "v", "split", "v_split", NULL);
    add_node(g, "Transpose", "v_split", NULL, "v_heads", &p102);
    add_node(g, "MatMul", "probs", "v_heads", "context", NULL);
    add_node(g, "Transpose", "context", NULL, "y", &p102);
    CHECK(graph_add_output(g, "y", LENS_DTYPE_FLOAT32, -1, NULL) == LENS_OK);
    if (variant == EXTRA_READER) { /* the probabilities are also an output: the core must stay as it is */
        CHECK(graph_add_output(g, "probs", LENS_DTYPE_FLOAT32, -1, NULL) == LENS_OK);
    }
    CHECK_MSG(graph_finalize(g) == LENS_OK && graph_optimize(g) == LENS_OK, "%s", core_last_error());
    return g;
}

/* The number of inputs of the graph's one live lens.Attention node, or -1. */
static int attention_inputs(const graph *g) {
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].removed && !strcmp(g->nodes[i].op.op_type, "Attention")) return g->nodes[i].n_inputs;
    return -1;
}

static void test_attention_pass(core_pool *pool) {
    static const int64_t shapes[][4] = {{5, 1, 2, 3}, {17, 2, 3, 8}, {1, 3, 1, 1}, {33, 1, 4, 16}, {9, 2, 5, 7}};
    for (int packed = 0; packed < 2; packed++)
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
            for (int variant = SCALE_DIV_Q; variant <= EXTRA_READER; variant++) {
                int64_t S = shapes[si][0], B = shapes[si][1], H = shapes[si][2], D = shapes[si][3];
                int n_in = packed ? 1 : 3;
                size_t n = (size_t)(S * B * H * D), n_plain = 0, n_fused = 0;
                tensor in[3];
                for (int i = 0; i < n_in; i++)
                    in[i] = (tensor){LENS_DTYPE_FLOAT32, 3, {S, B, H * D * (packed ? 3 : 1)},
                                     random_floats(n * (packed ? 3 : 1), 2)};
                graph *plain = build_attention_graph(S, H, D, variant, packed);
                graph *fused = build_attention_graph(S, H, D, variant, packed);
                float *want = run_graph(plain, in, n_in, pool, &n_plain);
                /* the probe is the plan itself, at batch B */
                tensor shapes_only[3];
                for (int i = 0; i < n_in; i++) shapes_only[i] = in[i], shapes_only[i].data = NULL;
                optimize_with_shapes(fused, shapes_only, n_in, pool);
                int expect_fused = variant != EXTRA_READER;
                CHECK_MSG(count_ops(fused, "Attention") == expect_fused && count_ops(fused, "Softmax") == !expect_fused,
                          "shape %zu variant %d: %d Attention nodes", si, variant, count_ops(fused, "Attention"));
                /* packed: the op reads qkv itself; the Slice of k stays for its Shape reader only */
                if (expect_fused)
                    CHECK_MSG(attention_inputs(fused) == n_in && count_ops(fused, "Slice") == (packed ? 2 : 0),
                              "shape %zu variant %d packed %d: %d inputs, %d Slices", si, variant, packed,
                              attention_inputs(fused), count_ops(fused, "Slice"));
                /* planned at another batch size too: the op must not depend on the probe's batch */
                float *got = run_graph(fused, in, n_in, pool, &n_fused);
                CHECK(n_plain == n && n_fused == n);
                if (want && got)
                    CHECK_MSG(max_rel_diff(got, want, n) < 1e-5, "shape %zu variant %d packed %d", si, variant, packed);
                free(want), free(got);
                if (B > 1) {
                    for (int i = 0; i < n_in; i++) in[i].dims[1] = 1;
                    want = run_graph(plain, in, n_in, pool, &n_plain);
                    got = run_graph(fused, in, n_in, pool, &n_fused);
                    if (want && got) CHECK(n_plain == n_fused && max_rel_diff(got, want, n_fused) < 1e-5);
                    free(want), free(got);
                }
                graph_free(plain), graph_free(fused);
                for (int i = 0; i < n_in; i++) free(in[i].data);
            }
}

/* x [2, H, W, K] → MatMul(x, W [K, N]) + b → Transpose to NCHW → * gamma [N, 1, 1] (ConvNeXt's block tail), with
 * the bias on either side of the Add. fuse_linear makes it one MatMul and a Transpose. */
static graph *build_linear_graph(int64_t K, int64_t N, const float *w, const float *b, const float *gamma, int swap,
                                 int with_transpose, int fuse) {
    graph *g = NULL;
    CHECK(graph_create("test", "linear", &g) == LENS_OK);
    graph_set_opset(g, "", 17);
    int64_t in_dims[4] = {2, 3, 5, K}, wd[2] = {K, N}, gd[3] = {N, 1, 1};
    CHECK(graph_add_input(g, "x", LENS_DTYPE_FLOAT32, 4, in_dims) == LENS_OK);
    add_const(g, "w", LENS_DTYPE_FLOAT32, 2, wd, w);
    add_const(g, "b", LENS_DTYPE_FLOAT32, 1, &N, b);
    add_const(g, "gamma", LENS_DTYPE_FLOAT32, with_transpose ? 3 : 1, with_transpose ? gd : &N, gamma);
    op_attr p0312 = perm_attr(g, 0, 3, 1, 2, 4);
    add_node(g, "MatMul", "x", "w", "xw", NULL);
    add_node(g, "Add", swap ? "b" : "xw", swap ? "xw" : "b", "xwb", NULL);
    if (with_transpose) add_node(g, "Transpose", "xwb", NULL, "nchw", &p0312);
    add_node(g, "Mul", "gamma", with_transpose ? "nchw" : "xwb", "y", NULL);
    CHECK(graph_add_output(g, "y", LENS_DTYPE_FLOAT32, -1, NULL) == LENS_OK);
    CHECK(graph_finalize(g) == LENS_OK);
    if (fuse) CHECK_MSG(graph_optimize(g) == LENS_OK, "%s", core_last_error());
    return g;
}

static void test_linear_pass(core_pool *pool) {
    static const int64_t sizes[][2] = {{1, 1}, {7, 5}, {96, 40}, {33, 17}};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (int mode = 0; mode < 4; mode++) {
            int64_t K = sizes[si][0], N = sizes[si][1];
            int swap = mode & 1, with_transpose = mode >> 1;
            float *w = random_floats((size_t)(K * N), 1), *b = random_floats((size_t)N, 1);
            float *gamma = random_floats((size_t)N, 1);
            tensor x = {LENS_DTYPE_FLOAT32, 4, {2, 3, 5, K}, random_floats((size_t)(30 * K), 1)};
            graph *plain = build_linear_graph(K, N, w, b, gamma, swap, with_transpose, 0);
            graph *fused = build_linear_graph(K, N, w, b, gamma, swap, with_transpose, 1);
            CHECK_MSG(count_ops(fused, "Add") == 0 && count_ops(fused, "Mul") == 0 && count_ops(fused, "MatMul") == 1,
                      "sizes %zu mode %d: Add %d Mul %d left", si, mode, count_ops(fused, "Add"),
                      count_ops(fused, "Mul"));
            size_t n_plain = 0, n_fused = 0;
            float *want = run_graph(plain, &x, 1, pool, &n_plain), *got = run_graph(fused, &x, 1, pool, &n_fused);
            CHECK(n_plain == (size_t)(30 * N) && n_fused == n_plain);
            if (want && got) CHECK_MSG(max_rel_diff(got, want, n_plain) < 1e-5, "sizes %zu mode %d", si, mode);
            free(want), free(got), free(w), free(b), free(gamma), free(x.data);
            graph_free(plain), graph_free(fused);
        }
}

/* A bias that broadcasts the product to a larger shape, or a scale along the wrong axis, must not be fused. */
static void test_linear_pass_declines(void) {
    graph *g = NULL;
    CHECK(graph_create("test", "linear", &g) == LENS_OK);
    graph_set_opset(g, "", 17);
    int64_t in_dims[4] = {2, 3, 3, 4}, wd[2] = {4, 3}, bd[2] = {3, 3}, gd[4] = {1, 1, 3, 1}, three = 3;
    float w[12] = {0}, b[9] = {0}, gamma[3] = {0};
    CHECK(graph_add_input(g, "x", LENS_DTYPE_FLOAT32, 4, in_dims) == LENS_OK);
    add_const(g, "w", LENS_DTYPE_FLOAT32, 2, wd, w);
    add_const(g, "b2", LENS_DTYPE_FLOAT32, 2, bd, b);
    add_const(g, "b", LENS_DTYPE_FLOAT32, 1, &three, b);
    add_const(g, "gamma", LENS_DTYPE_FLOAT32, 4, gd, gamma);
    add_node(g, "MatMul", "x", "w", "xw", NULL);
    add_node(g, "Add", "xw", "b2", "y1", NULL); /* [3, 3] bias: not one value per column */
    add_node(g, "MatMul", "x", "w", "xw2", NULL);
    add_node(g, "Add", "xw2", "b", "xwb2", NULL);
    add_node(g, "Mul", "xwb2", "gamma", "y2", NULL); /* scales axis 2, not the columns */
    CHECK(graph_add_output(g, "y1", LENS_DTYPE_FLOAT32, -1, NULL) == LENS_OK);
    CHECK(graph_add_output(g, "y2", LENS_DTYPE_FLOAT32, -1, NULL) == LENS_OK);
    CHECK(graph_finalize(g) == LENS_OK && graph_optimize(g) == LENS_OK);
    CHECK(count_ops(g, "Add") == 1 && count_ops(g, "Mul") == 1);
    graph_free(g);
}

/* ---- Residual Add into the MatMul ---------------------------------------------------------------------------------- */

/* The residual graph variants: which should fuse, and which must not. */
enum {
    RES_BIAS, RES_BIAS_SWAPPED, RES_RELU_AFTER, RES_BATCHED_B, RES_BROADCAST, RES_EXTRA_READER,
    RES_ACTIVATION, /* r goes through a Relu first: an activation, which the MatMul's output then overwrites */
    RES_VARIANTS
};

/* y = MatMul(x [B, S, K], w) (+ b) + r [B, S, N] (r [1, 1, N] for RES_BROADCAST). w is a constant [K, N], or the
 * graph input "wb" [B, K, N] for RES_BATCHED_B. */
static graph *build_residual_graph(int64_t B, int64_t S, int64_t K, int64_t N, const float *w, const float *b,
                                   int variant) {
    graph *g = NULL;
    CHECK(graph_create("test", "residual", &g) == LENS_OK);
    graph_set_opset(g, "", 17);
    int64_t xd[3] = {B, S, K}, rd[3] = {B, S, N}, wd[3] = {B, K, N};
    if (variant == RES_BROADCAST) rd[0] = rd[1] = 1;
    CHECK(graph_add_input(g, "x", LENS_DTYPE_FLOAT32, 3, xd) == LENS_OK);
    CHECK(graph_add_input(g, "r", LENS_DTYPE_FLOAT32, 3, rd) == LENS_OK);
    if (variant == RES_BATCHED_B)
        CHECK(graph_add_input(g, "wb", LENS_DTYPE_FLOAT32, 3, wd) == LENS_OK);
    else
        add_const(g, "w", LENS_DTYPE_FLOAT32, 2, wd + 1, w);
    add_const(g, "b", LENS_DTYPE_FLOAT32, 1, &N, b);
    const char *r = "r";
    if (variant == RES_ACTIVATION) add_node(g, "Relu", "r", NULL, "r_act", NULL), r = "r_act";
    add_node(g, "MatMul", "x", variant == RES_BATCHED_B ? "wb" : "w", "xw", NULL);
    const char *prod = "xw";
    if (variant != RES_BATCHED_B) add_node(g, "Add", "xw", "b", "xwb", NULL), prod = "xwb";
    int swap = variant == RES_BIAS_SWAPPED;
    add_node(g, "Add", swap ? r : prod, swap ? prod : r, variant == RES_RELU_AFTER ? "sum" : "y", NULL);
    if (variant == RES_RELU_AFTER) add_node(g, "Relu", "sum", NULL, "y", NULL);
    if (variant == RES_EXTRA_READER) add_node(g, "Neg", prod, NULL, "z", NULL);
    CHECK(graph_add_output(g, "y", LENS_DTYPE_FLOAT32, -1, NULL) == LENS_OK);
    if (variant == RES_EXTRA_READER) CHECK(graph_add_output(g, "z", LENS_DTYPE_FLOAT32, -1, NULL) == LENS_OK);
    CHECK(graph_finalize(g) == LENS_OK);
    CHECK_MSG(graph_optimize(g) == LENS_OK, "%s", core_last_error());
    return g;
}

static void test_residual_pass(core_pool *pool) {
    static const int64_t sizes[][4] = {{1, 1, 1, 1}, {1, 7, 5, 3}, {2, 13, 33, 17}, {1, 37, 64, 48}, {3, 5, 9, 100}};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (int variant = 0; variant < RES_VARIANTS; variant++) {
            int64_t B = sizes[si][0], S = sizes[si][1], K = sizes[si][2], N = sizes[si][3];
            int64_t rn = variant == RES_BROADCAST ? N : B * S * N;
            float *w = random_floats((size_t)(K * N), 1), *b = random_floats((size_t)N, 1);
            tensor in[3] = {{LENS_DTYPE_FLOAT32, 3, {B, S, K}, random_floats((size_t)(B * S * K), 1)},
                            {LENS_DTYPE_FLOAT32, 3, {variant == RES_BROADCAST ? 1 : B, variant == RES_BROADCAST ? 1 : S, N},
                             random_floats((size_t)rn, 1)},
                            {LENS_DTYPE_FLOAT32, 3, {B, K, N}, random_floats((size_t)(B * K * N), 1)}};
            int n_in = variant == RES_BATCHED_B ? 3 : 2;
            graph *plain = build_residual_graph(B, S, K, N, w, b, variant);
            graph *fused = build_residual_graph(B, S, K, N, w, b, variant);
            size_t n_plain = 0, n_fused = 0;
            float *want = run_graph(plain, in, n_in, pool, &n_plain);
            tensor shapes_only[3] = {in[0], in[1], in[2]};
            for (int i = 0; i < 3; i++) shapes_only[i].data = NULL;
            optimize_with_shapes(fused, shapes_only, n_in, pool);
            /* a [1, 1, N] residual is no broadcast when the output is [1, 1, N] too */
            int expect_fused = variant != RES_EXTRA_READER && (variant != RES_BROADCAST || B * S == 1);
            int relus = variant == RES_ACTIVATION; /* the residual's own Relu stays */
            CHECK_MSG(count_ops(fused, "Add") == !expect_fused && count_ops(fused, "Relu") == relus,
                      "sizes %zu variant %d: %d Add, %d Relu left", si, variant, count_ops(fused, "Add"),
                      count_ops(fused, "Relu"));
            float *got = run_graph(fused, in, n_in, pool, &n_fused);
            CHECK(n_plain == (size_t)(B * S * N) && n_fused == n_plain);
            if (want && got) CHECK_MSG(max_rel_diff(got, want, n_plain) < 1e-5, "sizes %zu variant %d", si, variant);
            free(want), free(got), free(w), free(b);
            for (int i = 0; i < 3; i++) free(in[i].data);
            graph_free(plain), graph_free(fused);
        }
}

/* A MatMul told to add a residual checks that it has one, of the output's shape. */
static void test_residual_op_errors(void) {
    float buf[24] = {0};
    tensor a = {LENS_DTYPE_FLOAT32, 2, {2, 3}, buf}, w = {LENS_DTYPE_FLOAT32, 2, {3, 4}, buf};
    tensor r = {LENS_DTYPE_FLOAT32, 2, {2, 3}, buf}, y = {0};
    const tensor *ins[4] = {&a, &w, NULL, &r};
    tensor *outs[1] = {&y};
    op_attr flag = {.name = "lens.residual", .type = OP_ATTR_INT, .i = 1};
    op_node node = {"mm", "MatMul", "", 13, 1, &flag};
    const op_def *def = ops_lookup("", "MatMul");
    op_call call = {&node, 4, ins, 1, outs, NULL, NULL, NULL, 0, 0};
    CHECK(def->infer(&call) == LENS_ERR_SHAPE);
    r.dims[1] = 4;
    CHECK(def->infer(&call) == LENS_OK);
    call.n_inputs = 3;
    CHECK(def->infer(&call) == LENS_ERR_INVALID_ARGUMENT);
}

/* The attention out-projection as torch exports it: x [B, S, E] → Transpose → [S, B, E] → Reshape [S*B, E] → Gemm
 * (transB, bias) → Reshape [S, B, E] → Transpose → Add(x) → Relu. Probed at batch 1 the Transposes are views and the
 * Add becomes the Gemm's residual; runs at batch 1 and 3 (where the Gemm must read x permuted) match the plain
 * graph. With shape_reader, a Shape of the Gemm's output (as the exporter makes for the Reshape) must not block. */
static graph *build_out_projection_graph(int64_t S, int64_t E, const float *w, const float *b, int shape_reader) {
    graph *g = NULL;
    CHECK(graph_create("test", "out_projection", &g) == LENS_OK);
    graph_set_opset(g, "", 17);
    int64_t in_dims[3] = {-1, S, E}, wdims[2] = {E, E}, two = 2, three = 3, flat[2] = {-1, E}, split[3] = {S, -1, E};
    CHECK(graph_add_input(g, "x", LENS_DTYPE_FLOAT32, 3, in_dims) == LENS_OK);
    add_const(g, "w", LENS_DTYPE_FLOAT32, 2, wdims, w);
    add_const(g, "b", LENS_DTYPE_FLOAT32, 1, &E, b);
    add_const(g, "flat", LENS_DTYPE_INT64, 1, &two, flat);
    add_const(g, "split", LENS_DTYPE_INT64, 1, &three, split);
    op_attr p102 = perm_attr(g, 1, 0, 2, 0, 3), trans_b = {.name = "transB", .type = OP_ATTR_INT, .i = 1};
    add_node(g, "Transpose", "x", NULL, "xt", &p102);
    add_node(g, "Reshape", "xt", "flat", "x2", NULL);
    const char *ins[3] = {"x2", "w", "b"}, *outs[1] = {"proj"};
    CHECK(graph_add_node(g, "gemm", "", "Gemm", 3, ins, 1, outs, 1, &trans_b, NULL) == LENS_OK);
    if (shape_reader) add_node(g, "Shape", "proj", NULL, "proj_shape", NULL);
    add_node(g, "Reshape", "proj", "split", "proj3", NULL);
    add_node(g, "Transpose", "proj3", NULL, "proj_t", &p102);
    add_node(g, "Add", "proj_t", "x", "sum", NULL);
    add_node(g, "Relu", "sum", NULL, "y", NULL);
    CHECK(graph_add_output(g, "y", LENS_DTYPE_FLOAT32, -1, NULL) == LENS_OK);
    CHECK(graph_finalize(g) == LENS_OK);
    CHECK_MSG(graph_optimize(g) == LENS_OK, "%s", core_last_error());
    return g;
}

static void test_residual_through_views(core_pool *pool) {
    static const int64_t sizes[][2] = {{1, 1}, {7, 5}, {13, 33}, {50, 64}};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (int shape_reader = 0; shape_reader < 2; shape_reader++) {
            int64_t S = sizes[si][0], E = sizes[si][1];
            float *w = random_floats((size_t)(E * E), 1), *b = random_floats((size_t)E, 1);
            graph *plain = build_out_projection_graph(S, E, w, b, shape_reader);
            graph *fused = build_out_projection_graph(S, E, w, b, shape_reader);
            tensor probe_shape = {LENS_DTYPE_FLOAT32, 3, {1, S, E}, NULL};
            optimize_with_shapes(fused, &probe_shape, 1, pool);
            CHECK_MSG(count_ops(fused, "Add") == 0, "S %lld E %lld: the Add is left", (long long)S, (long long)E);
            /* the reference keeps it (it was optimised without shapes), or this compares the fusion with itself */
            CHECK_MSG(count_ops(plain, "Add") == 1, "S %lld E %lld: the reference lost its Add", (long long)S,
                      (long long)E);
            for (int64_t batch = 1; batch <= 3; batch += 2) {
                tensor x = {LENS_DTYPE_FLOAT32, 3, {batch, S, E}, random_floats((size_t)(batch * S * E), 1)};
                size_t n_plain = 0, n_fused = 0;
                float *want = run_graph(plain, &x, 1, pool, &n_plain), *got = run_graph(fused, &x, 1, pool, &n_fused);
                CHECK(n_plain == (size_t)(batch * S * E) && n_fused == n_plain);
                if (want && got)
                    CHECK_MSG(max_rel_diff(got, want, n_plain) < 1e-5, "S %lld E %lld batch %lld", (long long)S,
                              (long long)E, (long long)batch);
                free(want), free(got), free(x.data);
            }
            free(w), free(b);
            graph_free(plain), graph_free(fused);
        }
}

/* ---- Residual Add into a Transpose ----------------------------------------------------------------------------- */

/* ConvNeXt's block tail: t = Transpose(Relu(x) [B, H, W, C] → NCHW), y = Add(t, Sigmoid(z)) [B, C, H, W] (or the
 * sides swapped). Fused, the Transpose adds the residual as it stores, and writes over it (the Sigmoid's output, read
 * by nothing else). Must not fuse when the residual is made after the Transpose or the Transpose has another reader. */
enum { TR_FUSE, TR_SWAPPED, TR_LATE_RESIDUAL, TR_EXTRA_READER, TR_VARIANTS };

static graph *build_transpose_residual_graph(int64_t H, int64_t W, int64_t C, int variant) {
    graph *g = NULL;
    CHECK(graph_create("test", "transpose_residual", &g) == LENS_OK);
    graph_set_opset(g, "", 17);
    int64_t xd[4] = {-1, H, W, C}, zd[4] = {-1, C, H, W};
    CHECK(graph_add_input(g, "x", LENS_DTYPE_FLOAT32, 4, xd) == LENS_OK);
    CHECK(graph_add_input(g, "z", LENS_DTYPE_FLOAT32, 4, zd) == LENS_OK);
    op_attr p0312 = perm_attr(g, 0, 3, 1, 2, 4);
    if (variant != TR_LATE_RESIDUAL) add_node(g, "Sigmoid", "z", NULL, "s", NULL);
    add_node(g, "Relu", "x", NULL, "r", NULL);
    add_node(g, "Transpose", "r", NULL, "t", &p0312);
    if (variant == TR_LATE_RESIDUAL) add_node(g, "Sigmoid", "z", NULL, "s", NULL);
    add_node(g, "Add", variant == TR_SWAPPED ? "s" : "t", variant == TR_SWAPPED ? "t" : "s", "sum", NULL);
    add_node(g, "Neg", "sum", NULL, "y", NULL);
    CHECK(graph_add_output(g, "y", LENS_DTYPE_FLOAT32, -1, NULL) == LENS_OK);
    if (variant == TR_EXTRA_READER) CHECK(graph_add_output(g, "t", LENS_DTYPE_FLOAT32, -1, NULL) == LENS_OK);
    CHECK(graph_finalize(g) == LENS_OK);
    CHECK_MSG(graph_optimize(g) == LENS_OK, "%s", core_last_error());
    return g;
}

static void test_residual_transpose(core_pool *pool) {
    static const int64_t sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {14, 14, 96}, {7, 9, 33}};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (int variant = 0; variant < TR_VARIANTS; variant++) {
            int64_t H = sizes[si][0], W = sizes[si][1], C = sizes[si][2];
            graph *plain = build_transpose_residual_graph(H, W, C, variant);
            graph *fused = build_transpose_residual_graph(H, W, C, variant);
            tensor probe_shapes[2] = {{LENS_DTYPE_FLOAT32, 4, {1, H, W, C}, NULL},
                                      {LENS_DTYPE_FLOAT32, 4, {1, C, H, W}, NULL}};
            optimize_with_shapes(fused, probe_shapes, 2, pool);
            int expect_fused = variant == TR_FUSE || variant == TR_SWAPPED;
            CHECK_MSG(count_ops(fused, "Add") == !expect_fused && count_ops(plain, "Add") == 1,
                      "sizes %zu variant %d: %d Add left", si, variant, count_ops(fused, "Add"));
            for (int64_t batch = 1; batch <= 2; batch++) {
                int64_t n = batch * H * W * C;
                tensor in[2] = {{LENS_DTYPE_FLOAT32, 4, {batch, H, W, C}, random_floats((size_t)n, 1)},
                                {LENS_DTYPE_FLOAT32, 4, {batch, C, H, W}, random_floats((size_t)n, 1)}};
                size_t n_plain = 0, n_fused = 0;
                float *want = run_graph(plain, in, 2, pool, &n_plain), *got = run_graph(fused, in, 2, pool, &n_fused);
                CHECK(n_plain == (size_t)n && n_fused == n_plain);
                if (want && got)
                    CHECK_MSG(max_rel_diff(got, want, n_plain) == 0, "sizes %zu variant %d batch %lld", si, variant,
                              (long long)batch);
                free(want), free(got), free(in[0].data), free(in[1].data);
            }
            graph_free(plain), graph_free(fused);
        }
}

/* x NCHW [2, C, 3, W] → Transpose to NHWC → LayerNormalization (last axis) [→ Transpose back to NCHW]. */
static graph *build_layernorm_graph(int64_t C, int64_t W, const float *scale, const float *bias, int back, int fuse) {
    graph *g = NULL;
    CHECK(graph_create("test", "layernorm", &g) == LENS_OK);
    graph_set_opset(g, "", 17);
    int64_t in_dims[4] = {-1, C, 3, W};
    CHECK(graph_add_input(g, "x", LENS_DTYPE_FLOAT32, 4, in_dims) == LENS_OK);
    add_const(g, "scale", LENS_DTYPE_FLOAT32, 1, &C, scale);
    add_const(g, "bias", LENS_DTYPE_FLOAT32, 1, &C, bias);
    op_attr p0231 = perm_attr(g, 0, 2, 3, 1, 4), p0312 = perm_attr(g, 0, 3, 1, 2, 4);
    add_node(g, "Transpose", "x", NULL, "nhwc", &p0231);
    const char *ins[3] = {"nhwc", "scale", "bias"}, *outs[1] = {back ? "normed" : "y"};
    op_attr eps = {.name = "epsilon", .type = OP_ATTR_FLOAT, .f = 1e-6f};
    CHECK(graph_add_node(g, "ln", "", "LayerNormalization", 3, ins, 1, outs, 1, &eps, NULL) == LENS_OK);
    if (back) add_node(g, "Transpose", "normed", NULL, "y", &p0312);
    CHECK(graph_add_output(g, "y", LENS_DTYPE_FLOAT32, -1, NULL) == LENS_OK);
    CHECK(graph_finalize(g) == LENS_OK);
    if (fuse) CHECK_MSG(graph_optimize(g) == LENS_OK, "%s", core_last_error());
    return g;
}

static void test_layernorm_pass(core_pool *pool) {
    static const int64_t sizes[][2] = {{1, 1}, {5, 7}, {96, 19}, {192, 6}, {193, 5}, {384, 11}, {385, 3}};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (int back = 0; back < 2; back++) {
            int64_t C = sizes[si][0], W = sizes[si][1];
            float *scale = random_floats((size_t)C, 1), *bias = random_floats((size_t)C, 1);
            tensor x = {LENS_DTYPE_FLOAT32, 4, {2, C, 3, W}, random_floats((size_t)(6 * C * W), 3)};
            for (int64_t i = 0; i < 6 * C * W; i++) ((float *)x.data)[i] += 2.0f; /* a mean to take off */
            graph *plain = build_layernorm_graph(C, W, scale, bias, back, 0);
            graph *fused = build_layernorm_graph(C, W, scale, bias, back, 1);
            int expect_fused = back || C <= 384;
            CHECK_MSG(count_ops(fused, "Transpose") == (expect_fused ? 0 : 1 + back), "C %lld back %d: %d Transposes",
                      (long long)C, back, count_ops(fused, "Transpose"));
            for (int batch = 2; batch >= 1; batch--) {
                x.dims[0] = batch;
                size_t n_plain = 0, n_fused = 0;
                float *want = run_graph(plain, &x, 1, pool, &n_plain), *got = run_graph(fused, &x, 1, pool, &n_fused);
                CHECK(n_plain == (size_t)(batch * 3 * C * W) && n_fused == n_plain);
                if (want && got)
                    CHECK_MSG(max_rel_diff(got, want, n_plain) < 1e-5, "C %lld W %lld back %d batch %d", (long long)C,
                              (long long)W, back, batch);
                free(want), free(got);
            }
            free(scale), free(bias), free(x.data);
            graph_free(plain), graph_free(fused);
        }
}

/* ---- Rows selected early (select_rows.c) ----------------------------------------------------------------------------- */

/* The select_rows variants: where the Gather is and what it selects, and what must stop it. */
enum { ROWS_FIRST, ROWS_KEEP_AXIS, ROWS_NEGATIVE, ROWS_LAST_AXIS, ROWS_EXTRA_OUTPUT, ROWS_LN_OVER_ROWS, ROWS_VARIANTS };

/* A transformer block's tail as torch exports it, then one token taken: x [B, S, E] → h = LayerNorm(x) → MatMul W1 +
 * b1 → Relu → * c [F] → MatMul W2 + b2 → + x → LayerNorm → Gather along the token axis (ViT's x[:, 0]). */
static graph *build_rows_graph(int64_t S, int64_t E, int64_t F, const float *w1, const float *w2, const float *b1,
                               const float *b2, int variant) {
    graph *g = NULL;
    CHECK(graph_create("test", "rows", &g) == LENS_OK);
    graph_set_opset(g, "", 17);
    int64_t in_dims[3] = {-1, S, E}, w1d[2] = {E, F}, w2d[2] = {F, E}, one = 1;
    int64_t index = variant == ROWS_KEEP_AXIS ? S - 1 : variant == ROWS_NEGATIVE ? -1 : variant == ROWS_LAST_AXIS;
    CHECK(graph_add_input(g, "x", LENS_DTYPE_FLOAT32, 3, in_dims) == LENS_OK);
    add_const(g, "w1", LENS_DTYPE_FLOAT32, 2, w1d, w1);
    add_const(g, "w2", LENS_DTYPE_FLOAT32, 2, w2d, w2);
    add_const(g, "b1", LENS_DTYPE_FLOAT32, 1, &F, b1);
    add_const(g, "c", LENS_DTYPE_FLOAT32, 1, &F, w2); /* any F values */
    add_const(g, "b2", LENS_DTYPE_FLOAT32, 1, &E, b2);
    add_const(g, "gamma", LENS_DTYPE_FLOAT32, 1, &E, b2);
    add_const(g, "index", LENS_DTYPE_INT64, variant == ROWS_KEEP_AXIS, &one, &index);
    op_attr ln_axis = {.name = "axis", .type = OP_ATTR_INT, .i = variant == ROWS_LN_OVER_ROWS ? 1 : 2};
    op_attr gather_axis = {.name = "axis", .type = OP_ATTR_INT,
                           .i = variant == ROWS_LAST_AXIS ? 2 : variant == ROWS_NEGATIVE ? -2 : 1};
    const char *ln1[3] = {"x", "gamma", "b2"}, *ln2[3] = {"r", "gamma", "b2"}, *h[1] = {"h"}, *y[1] = {"y"};
    CHECK(graph_add_node(g, "ln1", "", "LayerNormalization", 3, ln1, 1, h, 1, &ln_axis, NULL) == LENS_OK);
    add_node(g, "MatMul", "h", "w1", "u", NULL);
    add_node(g, "Add", "u", "b1", "ub", NULL);
    add_node(g, "Relu", "ub", NULL, "a", NULL);
    add_node(g, "Mul", "a", "c", "ac", NULL);
    add_node(g, "MatMul", "ac", "w2", "d", NULL);
    add_node(g, "Add", "b2", "d", "db", NULL);
    add_node(g, "Add", "db", "x", "r", NULL);
    CHECK(graph_add_node(g, "ln2", "", "LayerNormalization", 3, ln2, 1, y, 0, NULL, NULL) == LENS_OK);
    add_node(g, "Gather", "y", "index", "out", &gather_axis);
    CHECK(graph_add_output(g, "out", LENS_DTYPE_FLOAT32, -1, NULL) == LENS_OK);
    if (variant == ROWS_EXTRA_OUTPUT) CHECK(graph_add_output(g, "r", LENS_DTYPE_FLOAT32, -1, NULL) == LENS_OK);
    CHECK(graph_finalize(g) == LENS_OK);
    CHECK_MSG(graph_optimize(g) == LENS_OK, "%s", core_last_error());
    return g;
}

/* The names of the values the graph's live Gathers read, sorted and joined by spaces, in buf. */
static const char *gathered_values(const graph *g, char *buf, size_t size) {
    const char *names[8];
    int n = 0;
    for (int i = 0; i < g->n_nodes && n < 8; i++)
        if (!g->nodes[i].removed && !strcmp(g->nodes[i].op.op_type, "Gather"))
            names[n++] = g->values[g->nodes[i].inputs[0]].name;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1], names[j - 1] = t;
        }
    buf[0] = 0;
    for (int i = 0; i < n; i++) snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? " " : "", names[i]);
    return buf;
}

/* The Gather moves up to the block's input, and the two LayerNorms and MatMuls run on its one row per image; the
 * outputs match the graph without the pass at batch 1 and 3. It must stop at a LayerNorm over the rows, at a value
 * that is also a graph output, and stay where it is when it takes from the last axis. */
static void test_select_rows(core_pool *pool) {
    static const char *const expect[ROWS_VARIANTS] = {"x", "x", "x", "y", "r", "h x"};
    static const int64_t sizes[][3] = {{1, 1, 1}, {5, 8, 16}, {13, 33, 20}, {50, 64, 96}};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (int variant = 0; variant < ROWS_VARIANTS; variant++) {
            int64_t S = sizes[si][0], E = sizes[si][1], F = sizes[si][2];
            if (variant == ROWS_LAST_AXIS && E < 2) continue;
            float *w1 = random_floats((size_t)(E * F), 1), *w2 = random_floats((size_t)(F * E), 1);
            float *b1 = random_floats((size_t)F, 1), *b2 = random_floats((size_t)E, 1);
            graph *plain = build_rows_graph(S, E, F, w1, w2, b1, b2, variant);
            graph *fused = build_rows_graph(S, E, F, w1, w2, b1, b2, variant);
            tensor probe_shape = {LENS_DTYPE_FLOAT32, 3, {2, S, E}, NULL};
            optimize_with_shapes(fused, &probe_shape, 1, pool);
            char buf[256];
            CHECK_MSG(!strcmp(gathered_values(fused, buf, sizeof buf), expect[variant]),
                      "S %lld variant %d: the Gathers read '%s', not '%s'", (long long)S, variant, buf,
                      expect[variant]);
            CHECK(!strcmp(gathered_values(plain, buf, sizeof buf), "y"));
            for (int64_t batch = 1; batch <= 3; batch += 2) {
                tensor x = {LENS_DTYPE_FLOAT32, 3, {batch, S, E}, random_floats((size_t)(batch * S * E), 1)};
                size_t n_plain = 0, n_fused = 0;
                float *want = run_graph(plain, &x, 1, pool, &n_plain), *got = run_graph(fused, &x, 1, pool, &n_fused);
                size_t n = (size_t)(batch * (variant == ROWS_LAST_AXIS ? S : E)); /* one row or column each */
                CHECK_MSG(n_plain == n && n_fused == n, "variant %d: %zu and %zu values, not %zu", variant, n_plain,
                          n_fused, n);
                if (want && got && n_fused == n_plain)
                    CHECK_MSG(max_rel_diff(got, want, n_plain) < 1e-5, "S %lld variant %d batch %lld", (long long)S,
                              variant, (long long)batch);
                free(want), free(got), free(x.data);
            }
            free(w1), free(w2), free(b1), free(b2);
            graph_free(plain), graph_free(fused);
        }
}

int main(void) {
    core_pool *pool = NULL;
    CHECK(core_pool_create(3, &pool) == LENS_OK);
    test_op_paths(pool);
    test_op_errors();
    test_attention_pass(NULL);
    test_attention_pass(pool);
    test_linear_pass(pool);
    test_linear_pass_declines();
    test_residual_pass(NULL);
    test_residual_pass(pool);
    test_residual_op_errors();
    test_residual_through_views(NULL);
    test_residual_through_views(pool);
    test_residual_transpose(pool);
    test_layernorm_pass(NULL);
    test_layernorm_pass(pool);
    test_select_rows(NULL);
    test_select_rows(pool);
    core_pool_free(pool);
    return test_finish("test_attention");
}
