/* test_onnx_load.c — the ONNX importer on the shared real models (when ../shared exists) and on small models built
 * here with a protobuf writer: structure, dtypes, attributes, external data, zero-copy alignment, error messages,
 * and robustness (truncation at many offsets, byte flips, random bytes). Also TensorProto files and .npy round
 * trips. Writes only under a fresh directory in /tmp. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/formats.h"
#include "formats/pb.h"
#include "test.h"

#define MODEL_FP32 "../shared/models/mobilenet_v2_real.onnx"
#define MODEL_INT8 "../shared/models/mobilenetv2-12-int8.onnx"

static char tmp_dir[64];

static bool message_has(const char *needle) { return strstr(core_last_error(), needle) != NULL; }

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ---- A protobuf writer, just enough to build ONNX models ------------------------------------------------------- */

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
} wbuf;

static void w_raw(wbuf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}
static void w_varint(wbuf *b, uint64_t v) {
    uint8_t tmp[10];
    int n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) tmp[n] |= 0x80;
        n++;
    } while (v);
    w_raw(b, tmp, (size_t)n);
}
static void w_tag(wbuf *b, unsigned field, unsigned wire) { w_varint(b, (uint64_t)field << 3 | wire); }
static void w_uint(wbuf *b, unsigned field, uint64_t v) {
    w_tag(b, field, 0);
    w_varint(b, v);
}
static void w_bytes(wbuf *b, unsigned field, const void *data, size_t n) {
    w_tag(b, field, 2);
    w_varint(b, n);
    w_raw(b, data, n);
}
static void w_str(wbuf *b, unsigned field, const char *s) { w_bytes(b, field, s, strlen(s)); }
static void w_float(wbuf *b, unsigned field, float f) {
    uint8_t le[4];
    uint32_t bits;
    memcpy(&bits, &f, 4);
    for (int i = 0; i < 4; i++) le[i] = (uint8_t)(bits >> (8 * i));
    w_tag(b, field, 5);
    w_raw(b, le, 4);
}
/* Appends sub as a length-delimited field and empties sub. */
static void w_msg(wbuf *b, unsigned field, wbuf *sub) {
    w_bytes(b, field, sub->p, sub->n);
    free(sub->p);
    memset(sub, 0, sizeof *sub);
}
static void w_packed(wbuf *b, unsigned field, const int64_t *v, size_t n) {
    wbuf sub = {0};
    for (size_t i = 0; i < n; i++) w_varint(&sub, (uint64_t)v[i]);
    w_msg(b, field, &sub);
}

/* ---- ONNX builders --------------------------------------------------------------------------------------------- */

enum { T_FLOAT = 1, T_UINT8 = 2, T_INT8 = 3, T_INT16 = 5, T_INT32 = 6, T_INT64 = 7, T_STRING = 8, T_BOOL = 9,
       T_FLOAT16 = 10, T_DOUBLE = 11, T_UINT32 = 12, T_BF16 = 16 };

/* TensorProto header: dims, data_type, name. The caller appends the data fields. */
static void tensor_head(wbuf *t, const char *name, int dtype, int rank, const int64_t *dims) {
    if (rank) w_packed(t, 1, dims, (size_t)rank);
    w_uint(t, 2, (uint64_t)dtype);
    if (name) w_str(t, 8, name);
}

static void raw_tensor(wbuf *out, unsigned field, const char *name, int dtype, int rank, const int64_t *dims,
                       const void *data, size_t bytes) {
    wbuf t = {0};
    tensor_head(&t, name, dtype, rank, dims);
    w_bytes(&t, 9, data, bytes);
    w_msg(out, field, &t);
}

/* ValueInfoProto with a tensor type; dims[i] < 0 is written as dim_param "N". rank < 0: no shape. */
static void value_info(wbuf *g, unsigned field, const char *name, int elem, int rank, const int64_t *dims) {
    wbuf vi = {0}, type = {0}, tt = {0}, shape = {0};
    w_str(&vi, 1, name);
    w_uint(&tt, 1, (uint64_t)elem);
    if (rank >= 0) {
        for (int i = 0; i < rank; i++) {
            wbuf dim = {0};
            if (dims[i] < 0) w_str(&dim, 2, "N");
            else w_uint(&dim, 1, (uint64_t)dims[i]);
            w_msg(&shape, 1, &dim);
        }
        w_msg(&tt, 2, &shape);
    }
    w_msg(&type, 1, &tt);
    w_msg(&vi, 2, &type);
    w_msg(g, field, &vi);
}

static void node(wbuf *g, const char *op, const char *name, int n_in, const char *const *ins, int n_out,
                 const char *const *outs, wbuf *attrs) {
    wbuf n = {0};
    for (int i = 0; i < n_in; i++) w_str(&n, 1, ins[i]);
    for (int i = 0; i < n_out; i++) w_str(&n, 2, outs[i]);
    if (name) w_str(&n, 3, name);
    w_str(&n, 4, op);
    if (attrs) {
        w_raw(&n, attrs->p, attrs->n);
        free(attrs->p);
        memset(attrs, 0, sizeof *attrs);
    }
    w_msg(g, 1, &n);
}

static void opset(wbuf *m, const char *domain, int64_t version) {
    wbuf o = {0};
    if (domain) w_str(&o, 1, domain);
    w_uint(&o, 2, (uint64_t)version);
    w_msg(m, 8, &o);
}

/* ModelProto around graph (consumed) with the default-domain opset. */
static wbuf model(wbuf *graph_msg, int64_t default_opset) {
    wbuf m = {0};
    w_uint(&m, 1, 8);
    w_str(&m, 2, "lens-test");
    w_str(&m, 3, "0.1");
    w_msg(&m, 7, graph_msg);
    if (default_opset) opset(&m, "", default_opset);
    return m;
}

/* A graph with one input X [N,3], one initializer W [3,2] and MatMul X,W -> Y; the caller may add more. */
static wbuf small_graph(void) {
    wbuf g = {0};
    static const float w[6] = {1, 2, 3, 4, 5, 6};
    const int64_t wd[2] = {3, 2}, xd[2] = {-1, 3}, yd[2] = {-1, 2};
    const char *ins[2] = {"X", "W"}, *outs[1] = {"Y"};
    node(&g, "MatMul", "mm", 2, ins, 1, outs, NULL);
    raw_tensor(&g, 5, "W", T_FLOAT, 2, wd, w, sizeof w);
    value_info(&g, 11, "X", T_FLOAT, 2, xd);
    value_info(&g, 12, "Y", T_FLOAT, 2, yd);
    return g;
}

static lens_status load_bytes(const wbuf *m, graph **g) {
    return onnx_load_memory(m->p, m->n, "test.onnx", tmp_dir, g);
}

static const op_attr *find_attr(const graph_node *n, const char *name) { return op_attr_find(&n->op, name); }

static const graph_node *find_node(const graph *g, const char *name) {
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op.name, name)) return &g->nodes[i];
    return NULL;
}

/* Constant name, its data copied to aligned memory first if the loader left it unaligned in the file. */
static const tensor *constant(graph *g, const char *name) {
    int v = graph_value_find(g, name);
    if (v < 0) return NULL;
    graph_constant_data(g, v);
    return g->values[v].constant;
}

static bool data_aligned(const tensor *t) {
    size_t w = dtype_size(t->dtype);
    return w && (uintptr_t)t->data % w == 0;
}

/* Structural sanity of a graph that loaded: indices in range, constants with data of the right alignment. */
static bool graph_sane(const graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (!n->op.op_type || !*n->op.op_type) return false;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] < -1 || n->inputs[k] >= g->n_values) return false;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] < -1 || n->outputs[k] >= g->n_values) return false;
        for (int k = 0; k < n->op.n_attrs; k++) {
            const op_attr *a = &n->op.attrs[k];
            if (!a->name || !*a->name) return false;
            if (a->type == OP_ATTR_TENSOR && (!a->t || !a->t->data || !data_aligned(a->t))) return false;
            if (a->type == OP_ATTR_INTS && a->count && !a->ints) return false;
        }
    }
    for (int i = 0; i < g->n_values; i++) {
        const tensor *c = g->values[i].constant;
        if (c && g->values[i].unaligned) { /* left in the file: misaligned, no data until read */
            if (c->data || (uintptr_t)g->values[i].unaligned % dtype_size(c->dtype) == 0) return false;
        } else if (c && (!c->data || !data_aligned(c) || tensor_bytes(c) == SIZE_MAX)) {
            return false;
        }
    }
    for (int i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] < 0 || g->inputs[i] >= g->n_values) return false;
    return g->n_outputs > 0;
}

/* ---- Real models ----------------------------------------------------------------------------------------------- */

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return data;
}

static int count_op(const graph *g, const char *op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !strcmp(g->nodes[i].op.op_type, op);
    return n;
}

static int count_constants(const graph *g) {
    int n = 0;
    for (int i = 0; i < g->n_values; i++) n += g->values[i].constant != NULL;
    return n;
}

static void test_real_fp32(void) {
    graph *g = NULL;
    double t0 = core_now();
    lens_status st = onnx_load_file(MODEL_FP32, &g);
    double ms = (core_now() - t0) * 1e3;
    CHECK_MSG(st == LENS_OK, "%s", core_last_error());
    if (st) return;
    printf("mobilenet_v2_real.onnx: loaded in %.2f ms\n", ms);
    CHECK(g->n_nodes == 170);
    CHECK(count_op(g, "Constant") == 70 && count_op(g, "Conv") == 52 && count_op(g, "Clip") == 35);
    CHECK(count_constants(g) == 106);
    CHECK(!strcmp(g->format, "onnx") && !strcmp(g->producer, "pytorch 1.13.0"));
    CHECK(g->n_opsets == 1 && graph_opset_version(g, "") == 17);
    CHECK(g->n_inputs == 1 && g->n_outputs == 1);
    const graph_value *in = &g->values[g->inputs[0]];
    CHECK(!strcmp(in->name, "input") && in->dtype == LENS_DTYPE_FLOAT32 && in->rank == 4);
    CHECK(in->dims[0] == -1 && in->dims[1] == 3 && in->dims[2] == 224 && in->dims[3] == 224);
    const graph_value *out = &g->values[g->outputs[0]];
    CHECK(!strcmp(out->name, "logits") && out->rank == 2 && out->dims[0] == -1 && out->dims[1] == 1000);

    const tensor *w = constant(g, "classifier.1.weight"), *b = constant(g, "classifier.1.bias");
    CHECK(w && w->dtype == LENS_DTYPE_FLOAT32 && w->rank == 2 && w->dims[0] == 1000 && w->dims[1] == 1280);
    CHECK(b && b->dtype == LENS_DTYPE_FLOAT32 && b->rank == 1 && b->dims[0] == 1000);
    if (w && b) {
        const float *wf = w->data, *bf = b->data;
        CHECK_NEAR(bf[0], 0.04760732874274254, 1e-9);
        CHECK_NEAR(bf[2], -0.03354152664542198, 1e-9);
        CHECK_NEAR(wf[1], 0.0893598422408104, 1e-9);
        CHECK_NEAR(wf[1000 * 1280 - 1], -0.025138188, 1e-8);
    }
    const graph_node *conv = &g->nodes[0];
    CHECK(!strcmp(conv->op.op_type, "Conv") && conv->n_inputs == 3 && conv->n_outputs == 1);
    const int64_t *ints;
    CHECK(op_attr_ints(&conv->op, "pads", &ints) == 4 && ints[0] == 1 && ints[3] == 1);
    CHECK(op_attr_ints(&conv->op, "strides", &ints) == 2 && ints[0] == 2);
    CHECK(op_attr_int(&conv->op, "group", -1) == 1);
    const graph_node *gemm = find_node(g, "/classifier/classifier.1/Gemm");
    CHECK(gemm && op_attr_int(&gemm->op, "transB", 0) == 1 && op_attr_float(&gemm->op, "alpha", 0) == 1.0f);
    /* a Constant node stays a node, its value a rank-0 tensor */
    const graph_node *c = find_node(g, "/features/features.0/features.0.2/Constant");
    const op_attr *value = c ? find_attr(c, "value") : NULL;
    CHECK(value && value->type == OP_ATTR_TENSOR && value->t->rank == 0 && value->t->dtype == LENS_DTYPE_FLOAT32 &&
          *(const float *)value->t->data == 0.0f);
    /* the Clip has three inputs, the constant min and max */
    CHECK(count_op(g, "Clip") && g->nodes[3].n_inputs == 3);
    CHECK(graph_sane(g));

    /* the same model from memory: identical constants */
    size_t size;
    uint8_t *bytes = read_file(MODEL_FP32, &size);
    graph *m = NULL;
    CHECK(bytes && onnx_load_memory(bytes, size, "mem.onnx", NULL, &m) == LENS_OK);
    if (m) {
        int same = 0;
        for (int i = 0; i < g->n_values; i++) {
            const tensor *a = constant(g, g->values[i].name), *b2 = constant(m, g->values[i].name);
            if (a && b2 && tensor_same_shape(a, b2) && !memcmp(a->data, b2->data, tensor_bytes(a))) same++;
        }
        CHECK(same == 106);
        CHECK(m->n_nodes == 170);
        /* nothing may point into the caller's buffer */
        int borrowed = 0;
        for (int i = 0; i < m->n_values; i++) {
            const tensor *a = m->values[i].constant;
            borrowed += a && (const uint8_t *)a->data >= bytes && (const uint8_t *)a->data < bytes + size;
        }
        CHECK(borrowed == 0);
        graph_free(m);
    }
    free(bytes);
    graph_free(g);
}

static void test_real_int8(void) {
    graph *g = NULL;
    lens_status st = onnx_load_file(MODEL_INT8, &g);
    CHECK_MSG(st == LENS_OK, "%s", core_last_error());
    if (st) return;
    CHECK(g->n_nodes == 73 && count_constants(g) == 348);
    CHECK(count_op(g, "QLinearConv") == 52 && count_op(g, "QLinearAdd") == 11);
    CHECK(g->n_opsets == 7 && graph_opset_version(g, "") == 12 && graph_opset_version(g, "com.microsoft") == 1 &&
          graph_opset_version(g, "ai.onnx.ml") == 2);
    int microsoft = 0;
    for (int i = 0; i < g->n_nodes; i++) microsoft += !strcmp(g->nodes[i].op.domain, "com.microsoft");
    CHECK(microsoft == 12);
    CHECK(g->n_inputs == 1 && g->n_outputs == 1);
    const graph_value *in = &g->values[g->inputs[0]];
    CHECK(!strcmp(in->name, "input") && in->rank == 4 && in->dims[0] == -1 && in->dims[3] == 224);
    const graph_value *out = &g->values[g->outputs[0]];
    CHECK(!strcmp(out->name, "output") && out->rank == 2 && out->dims[0] == -1 && out->dims[1] == 1000);

    const tensor *scale = constant(g, "input_scale"), *zp = constant(g, "input_zero_point");
    const tensor *q = constant(g, "475_quantized"), *i466 = constant(g, "466"), *i630 = constant(g, "630");
    CHECK(scale && scale->dtype == LENS_DTYPE_FLOAT32 && scale->rank == 0); /* from float_data */
    if (scale) CHECK_NEAR(*(const float *)scale->data, 0.01865844801068306, 1e-9);
    CHECK(zp && zp->dtype == LENS_DTYPE_UINT8 && zp->rank == 0 && *(const uint8_t *)zp->data == 114); /* int32_data */
    CHECK(q && q->dtype == LENS_DTYPE_INT8 && q->rank == 4 && q->dims[0] == 32 && q->dims[3] == 3);
    if (q) {
        const int8_t *qv = q->data;
        CHECK(qv[0] == 45 && qv[1] == -15 && qv[2] == 50 && qv[3] == 111);
    }
    CHECK(i466 && i466->dtype == LENS_DTYPE_INT64 && i466->rank == 0 && *(const int64_t *)i466->data == 0);
    CHECK(i630 && i630->rank == 1 && i630->dims[0] == 1 && *(const int64_t *)i630->data == -1);
    int int32_biases = 0;
    for (int i = 0; i < g->n_values; i++) {
        const tensor *c = g->values[i].constant;
        int32_biases += c && c->dtype == LENS_DTYPE_INT32;
    }
    CHECK(int32_biases == 52);
    CHECK(graph_sane(g));
    graph_free(g);
}

/* Offsets where a truncated file is still a valid message: the ends of top-level fields. */
static bool at_top_level_boundary(const uint8_t *data, size_t size, size_t offset) {
    pb_reader r;
    pb_field f;
    pb_reader_init(&r, data, size);
    while (pb_more(&r) && !pb_next(&r, &f))
        if (pb_offset(&r) == offset) return true;
    return false;
}

/* Loads data cut to each of the offsets and with bytes flipped; only clean errors (with a message naming the source)
 * or sane graphs may come out. Returns the number of loads. */
static int mutate_and_load(const uint8_t *original, size_t size, int n_truncations, int n_flips, size_t hot_bytes) {
    uint8_t *data = malloc(size);
    int loads = 0, bad_errors = 0, unexpected_ok = 0, insane = 0;
    memcpy(data, original, size);
    for (int i = 0; i < n_truncations; i++) {
        size_t cut = i < 1024 && (size_t)i < size ? (size_t)i : (size_t)(rng() % size);
        graph *g = NULL;
        core_clear_error();
        lens_status st = onnx_load_memory(data, cut, "fuzz.onnx", NULL, &g);
        loads++;
        if (st == LENS_OK) {
            if (!at_top_level_boundary(data, size, cut)) unexpected_ok++;
            if (!graph_sane(g)) insane++;
            graph_free(g);
        } else if (strncmp(core_last_error(), "fuzz.onnx: ", 11) || strlen(core_last_error()) < 15 || g) {
            bad_errors++;
        }
    }
    for (int i = 0; i < n_flips; i++) {
        size_t pos;
        uint64_t r = rng();
        if (r % 4 < 2 || size <= hot_bytes) pos = (size_t)(rng() % (size < hot_bytes ? size : hot_bytes));
        else if (r % 4 == 2) pos = (size_t)(rng() % size);
        else pos = size - 1 - (size_t)(rng() % hot_bytes);
        uint8_t saved = data[pos];
        data[pos] = r & 8 ? (uint8_t)(rng() | 1) ^ saved : (uint8_t)(saved ^ (1u << (rng() % 8)));
        graph *g = NULL;
        core_clear_error();
        lens_status st = onnx_load_memory(data, size, "fuzz.onnx", NULL, &g);
        loads++;
        if (st == LENS_OK) {
            if (!graph_sane(g)) insane++;
            graph_free(g);
        } else if (strncmp(core_last_error(), "fuzz.onnx: ", 11) || strlen(core_last_error()) < 15 || g) {
            bad_errors++;
        }
        data[pos] = saved;
    }
    CHECK_MSG(bad_errors == 0, "%d failures without a proper message", bad_errors);
    CHECK_MSG(unexpected_ok == 0, "%d truncated files loaded", unexpected_ok);
    CHECK_MSG(insane == 0, "%d mutated files loaded into broken graphs", insane);
    free(data);
    return loads;
}

static void test_real_robustness(const char *path, int flips) {
    size_t size;
    uint8_t *data = read_file(path, &size);
    CHECK(data != NULL);
    if (!data) return;
    double t0 = core_now();
    int loads = mutate_and_load(data, size, 3000, flips, 65536);
    printf("%s: %d mutated loads in %.2f s\n", path, loads, core_now() - t0);
    /* every truncation of the fp32 model is an error: its top-level fields end with the opset import */
    graph *g = NULL;
    CHECK(onnx_load_memory(data, size - 1, "cut.onnx", NULL, &g) != LENS_OK && !g && message_has("cut.onnx: "));
    free(data);
}

/* ---- Small models ---------------------------------------------------------------------------------------------- */

static void test_small_model(void) {
    wbuf g = small_graph();
    /* B [2] as packed float_data; S a scalar int64 in unpacked int64_data */
    wbuf t = {0};
    const int64_t two = 2;
    tensor_head(&t, "B", T_FLOAT, 1, &two);
    wbuf packed = {0};
    const float bv[2] = {0.5f, -1.25f};
    w_raw(&packed, bv, sizeof bv);
    w_msg(&t, 4, &packed);
    w_msg(&g, 5, &t);
    tensor_head(&t, "S", T_INT64, 0, NULL);
    w_uint(&t, 7, (uint64_t)(int64_t)-7);
    w_msg(&g, 5, &t);
    /* W is also declared as a graph input: an initializer, not an input */
    const int64_t wd[2] = {3, 2};
    value_info(&g, 11, "W", T_FLOAT, 2, wd);

    /* Add Y,B -> Z; Clip Z,"",M -> C (omitted min) with attributes of every kind, some without a type */
    wbuf attrs = {0}, a = {0};
    w_str(&a, 1, "alpha"); w_float(&a, 2, 0.25f); w_msg(&attrs, 5, &a);                     /* FLOAT, no type */
    w_str(&a, 1, "axis"); w_uint(&a, 3, (uint64_t)(int64_t)-1); w_uint(&a, 20, 2); w_msg(&attrs, 5, &a); /* INT */
    w_str(&a, 1, "mode"); w_str(&a, 4, "linear"); w_msg(&attrs, 5, &a);                       /* STRING, no type */
    const int64_t pads[4] = {1, 2, 3, 300};
    w_str(&a, 1, "pads"); w_packed(&a, 8, pads, 4); w_uint(&a, 20, 7); w_msg(&attrs, 5, &a);  /* INTS packed */
    w_str(&a, 1, "perm"); w_uint(&a, 8, 0); w_uint(&a, 8, 2); w_uint(&a, 8, 1); w_msg(&attrs, 5, &a); /* unpacked */
    w_str(&a, 1, "scales"); w_float(&a, 7, 1.5f); w_float(&a, 7, 2.5f); w_msg(&attrs, 5, &a);  /* FLOATS unpacked */
    w_str(&a, 1, "names"); w_str(&a, 9, "x"); w_str(&a, 9, "yz"); w_uint(&a, 20, 8); w_msg(&attrs, 5, &a);
    wbuf body = {0};
    w_str(&body, 2, "subgraph");
    w_str(&a, 1, "then_branch"); w_msg(&a, 6, &body); w_uint(&a, 20, 5); w_msg(&attrs, 5, &a); /* GRAPH */
    wbuf tens = {0};
    tensor_head(&tens, NULL, T_FLOAT, 0, NULL);
    w_float(&tens, 4, 3.0f);
    w_str(&a, 1, "list"); w_msg(&a, 10, &tens); w_uint(&a, 20, 9); w_msg(&attrs, 5, &a);       /* TENSORS: dropped */
    w_str(&a, 1, "empty"); w_msg(&attrs, 5, &a);                                              /* nothing: dropped */
    const char *add_in[2] = {"Y", "B"}, *add_out[1] = {"Z"};
    node(&g, "Add", "add", 2, add_in, 1, add_out, NULL);
    const char *clip_in[3] = {"Z", "", "M"}, *clip_out[1] = {"C"};
    node(&g, "Clip", "clip", 3, clip_in, 1, clip_out, &attrs);
    /* Constant M with a tensor attribute; its domain written explicitly */
    wbuf cn = {0};
    w_str(&cn, 2, "M");
    w_str(&cn, 4, "Constant");
    w_str(&cn, 7, "ai.onnx");
    tensor_head(&tens, NULL, T_FLOAT, 0, NULL);
    w_float(&tens, 4, 6.0f);
    w_str(&a, 1, "value"); w_msg(&a, 5, &tens); w_uint(&a, 20, 4);
    w_msg(&cn, 5, &a);
    w_msg(&g, 1, &cn);
    /* a node with an optional output omitted, in another domain */
    const char *q_in[1] = {"C"}, *q_out[2] = {"", "Q"};
    wbuf qn = {0};
    for (int i = 0; i < 1; i++) w_str(&qn, 1, q_in[i]);
    for (int i = 0; i < 2; i++) w_str(&qn, 2, q_out[i]);
    w_str(&qn, 4, "Gelu");
    w_str(&qn, 7, "com.microsoft");
    w_msg(&g, 1, &qn);
    const int64_t qd[2] = {-1, 2};
    value_info(&g, 12, "Q", T_FLOAT, 2, qd);
    value_info(&g, 13, "Z", T_FLOAT, 2, qd);
    value_info(&g, 13, "nowhere", T_FLOAT, 1, qd);

    wbuf m = model(&g, 13);
    opset(&m, "com.microsoft", 1);
    wbuf meta = {0};
    w_str(&meta, 1, "labels");
    w_str(&meta, 2, "cat,dog");
    w_msg(&m, 14, &meta);

    graph *gr = NULL;
    lens_status st = load_bytes(&m, &gr);
    CHECK_MSG(st == LENS_OK, "%s", core_last_error());
    if (!st) {
        CHECK(gr->n_nodes == 5);
        CHECK(gr->n_inputs == 1 && !strcmp(gr->values[gr->inputs[0]].name, "X"));
        const graph_value *x = &gr->values[gr->inputs[0]];
        CHECK(x->rank == 2 && x->dims[0] == -1 && x->dims[1] == 3 && x->dtype == LENS_DTYPE_FLOAT32);
        CHECK(gr->n_outputs == 2);
        CHECK(!strcmp(gr->producer, "lens-test 0.1"));
        CHECK(graph_opset_version(gr, "") == 13 && graph_opset_version(gr, "com.microsoft") == 1);
        const char *labels = graph_metadata_get(gr, "labels");
        CHECK(labels && !strcmp(labels, "cat,dog"));

        const tensor *w = constant(gr, "W"), *b = constant(gr, "B"), *s = constant(gr, "S");
        CHECK(w && w->rank == 2 && ((const float *)w->data)[5] == 6.0f);
        CHECK(b && b->rank == 1 && ((const float *)b->data)[0] == 0.5f && ((const float *)b->data)[1] == -1.25f);
        CHECK(s && s->rank == 0 && s->dtype == LENS_DTYPE_INT64 && *(const int64_t *)s->data == -7);

        const graph_node *clip = find_node(gr, "clip");
        CHECK(clip && clip->n_inputs == 3 && clip->inputs[1] == -1 && clip->inputs[2] >= 0);
        if (clip) {
            const op_attr *at;
            CHECK(clip->op.n_attrs == 8); /* the TENSORS and the empty attribute are dropped */
            CHECK(op_attr_float(&clip->op, "alpha", 0) == 0.25f);
            CHECK(op_attr_int(&clip->op, "axis", 0) == -1);
            CHECK(!strcmp(op_attr_string(&clip->op, "mode", ""), "linear"));
            at = find_attr(clip, "mode");
            CHECK(at && at->s_len == 6);
            const int64_t *ints;
            CHECK(op_attr_ints(&clip->op, "pads", &ints) == 4 && ints[1] == 2 && ints[3] == 300);
            CHECK(op_attr_ints(&clip->op, "perm", &ints) == 3 && ints[0] == 0 && ints[1] == 2 && ints[2] == 1);
            const float *floats;
            CHECK(op_attr_floats(&clip->op, "scales", &floats) == 2 && floats[0] == 1.5f && floats[1] == 2.5f);
            at = find_attr(clip, "names");
            CHECK(at && at->type == OP_ATTR_STRINGS && at->count == 2 && !strcmp(at->strings[1], "yz"));
            at = find_attr(clip, "then_branch");
            CHECK(at && at->type == OP_ATTR_GRAPH);
            CHECK(!find_attr(clip, "list") && !find_attr(clip, "empty"));
        }
        const graph_node *gelu = NULL;
        for (int i = 0; i < gr->n_nodes; i++)
            if (!strcmp(gr->nodes[i].op.op_type, "Gelu")) gelu = &gr->nodes[i];
        CHECK(gelu && !strcmp(gelu->op.domain, "com.microsoft") && gelu->n_outputs == 2 && gelu->outputs[0] == -1);
        for (int i = 0; i < gr->n_nodes; i++)
            if (!strcmp(gr->nodes[i].op.op_type, "Constant")) {
                const op_attr *v = find_attr(&gr->nodes[i], "value");
                CHECK(!strcmp(gr->nodes[i].op.domain, ""));
                CHECK(v && v->t && v->t->rank == 0 && *(const float *)v->t->data == 6.0f);
            }
        int z = graph_value_find(gr, "Z");
        CHECK(z >= 0 && gr->values[z].rank == 2 && gr->values[z].dims[0] == -1 && gr->values[z].dims[1] == 2);
        CHECK(graph_value_find(gr, "nowhere") < 0);
        CHECK(graph_sane(gr));
        graph_free(gr);
    }

    /* every truncation and every single-byte flip of the small model */
    int loads = mutate_and_load(m.p, m.n, (int)m.n, 0, m.n);
    uint8_t *copy = malloc(m.n);
    int bad = 0;
    for (size_t pos = 0; pos < m.n; pos++) {
        static const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
        memcpy(copy, m.p, m.n);
        for (size_t k = 0; k < sizeof values; k++) {
            copy[pos] = values[k] ^ (k == 1 ? m.p[pos] : 0);
            graph *gg = NULL;
            core_clear_error();
            lens_status s2 = onnx_load_memory(copy, m.n, "fuzz.onnx", NULL, &gg);
            loads++;
            if (s2 == LENS_OK) bad += !graph_sane(gg);
            else bad += strncmp(core_last_error(), "fuzz.onnx: ", 11) != 0;
            graph_free(gg);
        }
    }
    CHECK_MSG(bad == 0, "%d flips misbehaved", bad);
    CHECK(loads > 1000);
    free(copy);
    free(m.p);
}

/* Typed data fields: int32_data carries narrow ints, bool, float16 and bfloat16; uint64_data uint32; double_data. */
static void test_typed_fields(void) {
    wbuf g = small_graph(), t = {0};
    const int64_t three = 3, two = 2;
    tensor_head(&t, "i8", T_INT8, 1, &three);
    const int64_t i8v[3] = {-3, 5, 127};
    w_packed(&t, 5, i8v, 3);
    w_msg(&g, 5, &t);
    tensor_head(&t, "u8", T_UINT8, 1, &two);
    w_uint(&t, 5, 200); w_uint(&t, 5, 7); /* unpacked */
    w_msg(&g, 5, &t);
    tensor_head(&t, "b", T_BOOL, 1, &three);
    const int64_t bv[3] = {1, 0, 1};
    w_packed(&t, 5, bv, 3);
    w_msg(&g, 5, &t);
    tensor_head(&t, "h", T_FLOAT16, 1, &two);
    const int64_t hv[2] = {0x3c00, 0xc000}; /* 1.0, -2.0 */
    w_packed(&t, 5, hv, 2);
    w_msg(&g, 5, &t);
    tensor_head(&t, "bf", T_BF16, 1, &two);
    const int64_t bfv[2] = {0x3f80, 0x4040}; /* 1.0, 3.0 */
    w_packed(&t, 5, bfv, 2);
    w_msg(&g, 5, &t);
    tensor_head(&t, "i16", T_INT16, 1, &two);
    const int64_t i16v[2] = {-30000, 123};
    w_packed(&t, 5, i16v, 2);
    w_msg(&g, 5, &t);
    tensor_head(&t, "i32", T_INT32, 1, &two);
    const int64_t i32v[2] = {-2147483647 - 1, 2147483647};
    w_packed(&t, 5, i32v, 2);
    w_msg(&g, 5, &t);
    tensor_head(&t, "u32", T_UINT32, 1, &two);
    const int64_t u32v[2] = {4000000000ll, 1};
    w_packed(&t, 11, u32v, 2);
    w_msg(&g, 5, &t);
    tensor_head(&t, "d", T_DOUBLE, 1, &two);
    wbuf dp = {0};
    const double dv[2] = {0.125, -1e300};
    w_raw(&dp, dv, sizeof dv);
    w_msg(&t, 10, &dp);
    w_msg(&g, 5, &t);
    /* int64 split over a packed and an unpacked occurrence */
    tensor_head(&t, "i64", T_INT64, 1, &three);
    const int64_t i64v[2] = {INT64_MIN, 1};
    w_packed(&t, 7, i64v, 2);
    w_uint(&t, 7, (uint64_t)INT64_MAX);
    w_msg(&g, 5, &t);
    /* empty tensor: dims [0], no data */
    const int64_t zero = 0;
    tensor_head(&t, "empty", T_FLOAT, 1, &zero);
    w_msg(&g, 5, &t);

    wbuf m = model(&g, 17);
    graph *gr = NULL;
    lens_status st = load_bytes(&m, &gr);
    CHECK_MSG(st == LENS_OK, "%s", core_last_error());
    if (!st) {
        const tensor *c;
        CHECK((c = constant(gr, "i8")) && c->dtype == LENS_DTYPE_INT8 && ((const int8_t *)c->data)[0] == -3 &&
              ((const int8_t *)c->data)[2] == 127);
        CHECK((c = constant(gr, "u8")) && ((const uint8_t *)c->data)[0] == 200 && ((const uint8_t *)c->data)[1] == 7);
        CHECK((c = constant(gr, "b")) && c->dtype == LENS_DTYPE_BOOL && ((const uint8_t *)c->data)[0] == 1 &&
              ((const uint8_t *)c->data)[1] == 0);
        CHECK((c = constant(gr, "h")) && core_f16_to_f32(((const uint16_t *)c->data)[0]) == 1.0f &&
              core_f16_to_f32(((const uint16_t *)c->data)[1]) == -2.0f);
        CHECK((c = constant(gr, "bf")) && core_bf16_to_f32(((const uint16_t *)c->data)[1]) == 3.0f);
        CHECK((c = constant(gr, "i16")) && ((const int16_t *)c->data)[0] == -30000);
        CHECK((c = constant(gr, "i32")) && ((const int32_t *)c->data)[0] == INT32_MIN &&
              ((const int32_t *)c->data)[1] == INT32_MAX);
        CHECK((c = constant(gr, "u32")) && ((const uint32_t *)c->data)[0] == 4000000000u);
        CHECK((c = constant(gr, "d")) && ((const double *)c->data)[0] == 0.125 && ((const double *)c->data)[1] == -1e300);
        CHECK((c = constant(gr, "i64")) && ((const int64_t *)c->data)[0] == INT64_MIN &&
              ((const int64_t *)c->data)[2] == INT64_MAX);
        CHECK((c = constant(gr, "empty")) && c->rank == 1 && c->dims[0] == 0 && c->data != NULL);
        graph_free(gr);
    }
    free(m.p);
}

/* One malformed or unsupported model per case: the status and a phrase of the message. */
static void check_error(const char *what, wbuf *g, int64_t opset_version, lens_status want, const char *phrase) {
    wbuf m = model(g, opset_version);
    graph *gr = NULL;
    lens_status st = load_bytes(&m, &gr);
    CHECK_MSG(st == want && !gr && message_has(phrase) && !strncmp(core_last_error(), "test.onnx: ", 11),
              "%s: status %d, message '%s'", what, st, core_last_error());
    graph_free(gr);
    free(m.p);
}

static void test_errors(void) {
    graph *gr = NULL;
    wbuf g, t;
    const int64_t three = 3, two = 2;

    g = small_graph();
    check_error("opset 6", &g, 6, LENS_ERR_UNSUPPORTED, "opset 6 of the default domain is not supported");
    g = small_graph();
    check_error("opset 22", &g, 22, LENS_ERR_UNSUPPORTED, "opset 22");
    g = small_graph();
    check_error("no opset", &g, 0, LENS_ERR_FORMAT, "no opset_import");

    g = small_graph();
    t = (wbuf){0};
    tensor_head(&t, "short", T_FLOAT, 1, &three);
    w_float(&t, 4, 1.0f); w_float(&t, 4, 2.0f);
    w_msg(&g, 5, &t);
    check_error("count mismatch", &g, 13, LENS_ERR_FORMAT, "initializer 'short': tensor float32 [3] has 2 values");

    g = small_graph();
    t = (wbuf){0};
    const float f2[2] = {1, 2};
    raw_tensor(&g, 5, "rawshort", T_FLOAT, 1, &three, f2, sizeof f2);
    check_error("raw length", &g, 13, LENS_ERR_FORMAT, "raw_data at offset");

    g = small_graph();
    t = (wbuf){0};
    tensor_head(&t, "str", T_STRING, 1, &two);
    w_str(&t, 6, "a"); w_str(&t, 6, "b");
    w_msg(&g, 5, &t);
    check_error("string tensor", &g, 13, LENS_ERR_UNSUPPORTED, "data type 8 (string)");

    g = small_graph();
    t = (wbuf){0};
    tensor_head(&t, "wrongfield", T_FLOAT, 1, &two);
    w_packed(&t, 7, (const int64_t[]){1, 2}, 2);
    w_msg(&g, 5, &t);
    check_error("wrong field", &g, 13, LENS_ERR_FORMAT, "float32 holds its values in int64_data");

    g = small_graph();
    t = (wbuf){0};
    tensor_head(&t, "both", T_FLOAT, 1, &two);
    w_float(&t, 4, 1.0f); w_float(&t, 4, 2.0f);
    w_bytes(&t, 9, f2, sizeof f2);
    w_msg(&g, 5, &t);
    check_error("raw and typed", &g, 13, LENS_ERR_FORMAT, "both raw_data and float_data");

    g = small_graph();
    t = (wbuf){0};
    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    tensor_head(&t, "rank9", T_FLOAT, 9, nine);
    w_float(&t, 4, 1.0f);
    w_msg(&g, 5, &t);
    check_error("rank 9", &g, 13, LENS_ERR_UNSUPPORTED, "more than 8 dimensions");

    g = small_graph();
    t = (wbuf){0};
    const int64_t neg[2] = {2, -1};
    tensor_head(&t, "neg", T_FLOAT, 2, neg);
    w_msg(&g, 5, &t);
    check_error("negative dim", &g, 13, LENS_ERR_FORMAT, "dimension 1 is negative");

    g = small_graph();
    t = (wbuf){0};
    const int64_t huge[3] = {INT64_MAX / 4, 8, 2};
    tensor_head(&t, "huge", T_FLOAT, 3, huge);
    w_bytes(&t, 9, f2, sizeof f2);
    w_msg(&g, 5, &t);
    check_error("numel overflow", &g, 13, LENS_ERR_FORMAT, "too large");

    g = small_graph();
    t = (wbuf){0};
    const int64_t big[2] = {1 << 30, 1 << 30};
    tensor_head(&t, "big", T_FLOAT, 2, big);
    w_bytes(&t, 9, f2, sizeof f2);
    w_msg(&g, 5, &t);
    check_error("bytes mismatch", &g, 13, LENS_ERR_FORMAT, "needs 4611686018427387904");

    g = small_graph();
    t = (wbuf){0};
    tensor_head(&t, "notype", 0, 1, &two);
    w_msg(&g, 5, &t);
    check_error("no data_type", &g, 13, LENS_ERR_FORMAT, "no data_type");

    g = small_graph();
    t = (wbuf){0};
    tensor_head(&t, "c64", 14, 1, &two);
    w_msg(&g, 5, &t);
    check_error("complex", &g, 13, LENS_ERR_UNSUPPORTED, "complex64");

    g = small_graph();
    t = (wbuf){0};
    w_str(&t, 1, "sparse");
    w_msg(&g, 15, &t);
    check_error("sparse", &g, 13, LENS_ERR_UNSUPPORTED, "sparse initializers");

    g = small_graph();
    node(&g, "", "noop", 0, NULL, 0, NULL, NULL);
    check_error("no op_type", &g, 13, LENS_ERR_FORMAT, "node 'noop': no op_type");

    g = small_graph();
    t = (wbuf){0};
    w_str(&t, 4, "Relu");
    w_bytes(&t, 1, "a\0b", 3);
    w_msg(&g, 1, &t);
    check_error("NUL in name", &g, 13, LENS_ERR_FORMAT, "NUL byte");

    g = small_graph();
    t = (wbuf){0};
    wbuf a = {0};
    w_str(&t, 4, "Relu");
    w_str(&a, 1, "bad"); w_uint(&a, 20, 99);
    w_msg(&t, 5, &a);
    w_msg(&g, 1, &t);
    check_error("attribute type", &g, 13, LENS_ERR_FORMAT, "node #1 (Relu): attribute 'bad': attribute has unknown type 99");

    g = small_graph();
    t = (wbuf){0};
    w_str(&t, 4, "Relu");
    w_str(&t, 3, "r");
    w_uint(&a, 20, 2); w_uint(&a, 3, 1);
    w_msg(&t, 5, &a);
    w_msg(&g, 1, &t);
    check_error("attribute name", &g, 13, LENS_ERR_FORMAT, "node 'r': attribute #0: attribute has no name");

    g = small_graph();
    t = (wbuf){0};
    w_str(&t, 4, "Relu");
    w_str(&a, 1, "f"); w_uint(&a, 2, 1); /* f as a varint: wrong wire type */
    w_msg(&t, 5, &a);
    w_msg(&g, 1, &t);
    check_error("attribute wire type", &g, 13, LENS_ERR_FORMAT, "expected fixed32, found varint");

    g = (wbuf){0};
    check_error("no outputs", &g, 13, LENS_ERR_FORMAT, "graph has no outputs");

    g = small_graph();
    t = (wbuf){0};
    tensor_head(&t, "seg", T_FLOAT, 1, &two);
    w_bytes(&t, 3, "\x08\x00", 2);
    w_msg(&g, 5, &t);
    check_error("segment", &g, 13, LENS_ERR_UNSUPPORTED, "segmented tensors");

    g = small_graph();
    t = (wbuf){0};
    wbuf seq = {0}, type = {0};
    w_str(&t, 1, "list");
    w_msg(&type, 4, &seq);
    w_msg(&t, 2, &type);
    w_msg(&g, 11, &t);
    check_error("sequence input", &g, 13, LENS_ERR_UNSUPPORTED, "input 'list' is not a tensor");

    g = small_graph();
    wbuf m0 = model(&g, 13);
    opset(&m0, "custom", (int64_t)1 << 40);
    CHECK(load_bytes(&m0, &gr) == LENS_ERR_FORMAT && message_has("opset version 1099511627776 of domain 'custom'"));
    free(m0.p);

    g = small_graph();
    value_info(&g, 11, "S", T_STRING, 1, &two);
    check_error("string input", &g, 13, LENS_ERR_UNSUPPORTED, "input 'S' has element type 8 (string)");

    g = small_graph();
    value_info(&g, 11, "R9", T_FLOAT, 9, nine);
    check_error("rank 9 input", &g, 13, LENS_ERR_UNSUPPORTED, "input 'R9' has rank 9");

    /* a model with two graphs, and one with none */
    wbuf m = {0}, g1 = small_graph(), g2 = small_graph();
    w_msg(&m, 7, &g1);
    w_msg(&m, 7, &g2);
    opset(&m, "", 13);
    CHECK(load_bytes(&m, &gr) == LENS_ERR_FORMAT && message_has("2 graphs"));
    free(m.p);
    m = (wbuf){0};
    opset(&m, "", 13);
    CHECK(load_bytes(&m, &gr) == LENS_ERR_FORMAT && message_has("test.onnx: not an ONNX model: no graph"));
    free(m.p);

    /* empty input, random bytes, NULL arguments */
    CHECK(onnx_load_memory("", 0, "model.onnx", NULL, &gr) == LENS_ERR_FORMAT &&
          !strcmp(core_last_error(), "model.onnx: empty file") && !gr);
    CHECK(onnx_load_memory(NULL, 5, "model.onnx", NULL, &gr) == LENS_ERR_INVALID_ARGUMENT);
    int random_ok = 0, no_message = 0;
    uint8_t noise[4096];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 1 + (size_t)(rng() % sizeof noise);
        for (size_t i = 0; i < n; i++) noise[i] = (uint8_t)(iter % 3 ? rng() : rng() % 0x40);
        core_clear_error();
        lens_status st = onnx_load_memory(noise, n, "noise", NULL, &gr);
        random_ok += st == LENS_OK;
        no_message += st != LENS_OK && strncmp(core_last_error(), "noise: ", 7);
        graph_free(gr);
    }
    CHECK(random_ok == 0 && no_message == 0);

    /* files */
    CHECK(onnx_load_file("/nonexistent/model.onnx", &gr) == LENS_ERR_IO &&
          !strcmp(core_last_error(), "/nonexistent/model.onnx: No such file or directory"));
    char path[128];
    snprintf(path, sizeof path, "%s/empty.onnx", tmp_dir);
    FILE *f = fopen(path, "wb");
    if (f) fclose(f);
    CHECK(onnx_load_file(path, &gr) == LENS_ERR_FORMAT && message_has("empty file"));
    CHECK(onnx_load_file(tmp_dir, &gr) == LENS_ERR_IO && message_has("not a regular file"));
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(data, 1, n, f) == n);
    fclose(f);
}

static wbuf external_model(const char *location, const char *offset, const char *length) {
    wbuf g = small_graph(), t = {0}, e = {0};
    const int64_t three = 3;
    tensor_head(&t, "E", T_FLOAT, 1, &three);
    w_str(&e, 1, "location"); w_str(&e, 2, location); w_msg(&t, 13, &e);
    if (offset) { w_str(&e, 1, "offset"); w_str(&e, 2, offset); w_msg(&t, 13, &e); }
    if (length) { w_str(&e, 1, "length"); w_str(&e, 2, length); w_msg(&t, 13, &e); }
    w_str(&e, 1, "checksum"); w_str(&e, 2, "ignored"); w_msg(&t, 13, &e);
    w_uint(&t, 14, 1);
    w_msg(&g, 5, &t);
    return model(&g, 13);
}

static void test_external_data(void) {
    char path[160];
    float payload[5] = {9, 1.5f, -2.5f, 3.5f, 9};
    snprintf(path, sizeof path, "%s/weights.bin", tmp_dir);
    write_file(path, payload, sizeof payload);
    graph *g = NULL;
    const tensor *e;

    wbuf m = external_model("weights.bin", "4", "12");
    CHECK_MSG(load_bytes(&m, &g) == LENS_OK, "%s", core_last_error());
    CHECK(g && (e = constant(g, "E")) && ((const float *)e->data)[0] == 1.5f && ((const float *)e->data)[2] == 3.5f);
    CHECK(g && g->n_mappings == 1);
    graph_free(g);
    g = NULL;
    /* the same model as a file, with the tensor at an unaligned offset: copied */
    snprintf(path, sizeof path, "%s/external.onnx", tmp_dir);
    write_file(path, m.p, m.n);
    free(m.p);
    m = external_model("./weights.bin", "2", NULL);
    snprintf(path, sizeof path, "%s/external2.onnx", tmp_dir);
    write_file(path, m.p, m.n);
    CHECK_MSG(onnx_load_file(path, &g) == LENS_OK, "%s", core_last_error());
    if (g && (e = constant(g, "E"))) {
        float v[3];
        memcpy(v, (const uint8_t *)payload + 2, sizeof v);
        CHECK(data_aligned(e) && !memcmp(e->data, v, sizeof v));
    }
    graph_free(g);
    g = NULL;
    free(m.p);

    struct { const char *location, *offset, *length; lens_status want; const char *phrase; } bad[] = {
        {"../weights.bin", NULL, NULL, LENS_ERR_FORMAT, "leaves the model's directory"},
        {"sub/../../x", NULL, NULL, LENS_ERR_FORMAT, "leaves the model's directory"},
        {"/etc/passwd", NULL, NULL, LENS_ERR_FORMAT, "not a relative path"},
        {"", NULL, NULL, LENS_ERR_FORMAT, "empty location"},
        {"missing.bin", NULL, NULL, LENS_ERR_IO, "missing.bin: No such file or directory"},
        {"weights.bin", "12", NULL, LENS_ERR_FORMAT, "run past its end"},
        {"weights.bin", "18446744073709551615", NULL, LENS_ERR_FORMAT, "run past its end"},
        {"weights.bin", "99999999999999999999", NULL, LENS_ERR_FORMAT, "not a valid size"},
        {"weights.bin", "-4", NULL, LENS_ERR_FORMAT, "not a valid size"},
        {"weights.bin", "0", "8", LENS_ERR_FORMAT, "length 8 does not match"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        m = external_model(bad[i].location, bad[i].offset, bad[i].length);
        lens_status st = load_bytes(&m, &g);
        CHECK_MSG(st == bad[i].want && message_has(bad[i].phrase) && message_has("test.onnx: initializer 'E': "),
                  "case %zu: status %d '%s'", i, st, core_last_error());
        free(m.p);
    }
    m = external_model("weights.bin", NULL, NULL);
    CHECK(onnx_load_memory(m.p, m.n, "mem", NULL, &g) == LENS_ERR_UNSUPPORTED && message_has("needs a directory"));
    free(m.p);

    /* more files than the graph keeps mappings for (the rest are read), and files shared by tensors */
    enum { FILES = 12 };
    wbuf gr = small_graph();
    for (int i = 0; i < FILES; i++) {
        float v[3] = {(float)i, (float)i + 0.5f, (float)-i};
        snprintf(path, sizeof path, "%s/w%d.bin", tmp_dir, i);
        write_file(path, v, sizeof v);
        for (int k = 0; k < 2; k++) {
            wbuf t = {0}, e = {0};
            char name[32], location[32], offset[16];
            const int64_t len = 3 - k;
            snprintf(name, sizeof name, "E%d_%d", i, k);
            snprintf(location, sizeof location, "w%d.bin", i);
            snprintf(offset, sizeof offset, "%d", 4 * k);
            tensor_head(&t, name, T_FLOAT, 1, &len);
            w_str(&e, 1, "location"); w_str(&e, 2, location); w_msg(&t, 13, &e);
            w_str(&e, 1, "offset"); w_str(&e, 2, offset); w_msg(&t, 13, &e);
            w_uint(&t, 14, 1);
            w_msg(&gr, 5, &t);
        }
    }
    /* past the end of a file that is already mapped */
    wbuf t = {0}, entry = {0};
    const int64_t four = 4;
    tensor_head(&t, "late", T_FLOAT, 1, &four);
    w_str(&entry, 1, "location"); w_str(&entry, 2, "w0.bin"); w_msg(&t, 13, &entry);
    w_uint(&t, 14, 1);
    wbuf late = t;
    m = model(&gr, 13);
    CHECK_MSG(load_bytes(&m, &g) == LENS_OK, "%s", core_last_error());
    if (g) {
        int right = 0;
        for (int i = 0; i < FILES; i++)
            for (int k = 0; k < 2; k++) {
                char name[32];
                snprintf(name, sizeof name, "E%d_%d", i, k);
                const tensor *c = constant(g, name);
                right += c && data_aligned(c) && ((const float *)c->data)[0] == (k ? (float)i + 0.5f : (float)i) &&
                         ((const float *)c->data)[1] == (k ? (float)-i : (float)i + 0.5f);
            }
        CHECK(right == 2 * FILES);
        CHECK(g->n_mappings == 8);
        graph_free(g);
    }
    free(m.p);
    gr = small_graph();
    raw_tensor(&gr, 5, "first", T_FLOAT, 1, &four, payload, 16);
    t = (wbuf){0};
    tensor_head(&t, "ok", T_FLOAT, 1, &(int64_t){3});
    w_str(&entry, 1, "location"); w_str(&entry, 2, "w0.bin"); w_msg(&t, 13, &entry);
    w_uint(&t, 14, 1);
    w_msg(&gr, 5, &t);
    w_msg(&gr, 5, &late);
    m = model(&gr, 13);
    CHECK(load_bytes(&m, &g) == LENS_ERR_FORMAT && message_has("initializer 'late': external data 'w0.bin'") &&
          message_has("run past its end"));
    free(m.p);
    for (int i = 0; i < FILES; i++) {
        snprintf(path, sizeof path, "%s/w%d.bin", tmp_dir, i);
        unlink(path);
    }
}

/* Raw data at every offset modulo 4, in a file: aligned data is used in place, the rest copied to aligned memory;
 * a tensor over 1 MB exercises the bulk copy region. */
static void test_zero_copy(void) {
    wbuf g = small_graph();
    enum { N = 8, BIG = 300000 };
    char names[N][12];
    float values[N][4];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "%.*s", i + 1, "abcdefghij");
        const int64_t four = 4;
        for (int k = 0; k < 4; k++) values[i][k] = (float)(i * 10 + k) + 0.5f;
        raw_tensor(&g, 5, names[i], T_FLOAT, 1, &four, values[i], sizeof values[i]);
    }
    const int64_t big_dims = BIG;
    float *big = malloc(BIG * sizeof(float));
    for (int k = 0; k < BIG; k++) big[k] = (float)k * 0.25f;
    wbuf t = {0};
    tensor_head(&t, "big", T_FLOAT, 1, &big_dims);
    w_bytes(&t, 9, big, BIG * sizeof(float));
    /* push the big tensor off alignment */
    const int64_t i64 = 5;
    raw_tensor(&g, 5, "i", T_INT64, 1, &(int64_t){1}, &i64, 8);
    w_str(&g, 2, "x"); /* graph name: a 3-byte field shifting what follows */
    w_msg(&g, 5, &t);
    wbuf m = model(&g, 13);
    const uint8_t *big_at = memmem(m.p, m.n, big, 64);
    CHECK(big_at && (big_at - m.p) % 4 != 0); /* so that it takes the copy path */
    char path[160];
    snprintf(path, sizeof path, "%s/aligned.onnx", tmp_dir);
    write_file(path, m.p, m.n);

    graph *gr = NULL;
    CHECK_MSG(onnx_load_file(path, &gr) == LENS_OK, "%s", core_last_error());
    if (gr) {
        const uint8_t *base = gr->mappings[0].addr;
        int in_place = 0, copied = 0, wrong = 0;
        for (int i = 0; i < N; i++) {
            const tensor *c = constant(gr, names[i]);
            if (!c) {
                wrong++;
                continue;
            }
            const uint8_t *found = memmem(m.p, m.n, values[i], sizeof values[i]);
            size_t offset = (size_t)(found - m.p);
            bool mapped = (const uint8_t *)c->data == base + offset;
            if (offset % 4 == 0) in_place += mapped;
            else copied += !mapped && data_aligned(c);
            wrong += memcmp(c->data, values[i], sizeof values[i]) != 0;
        }
        CHECK_MSG(in_place + copied == N && in_place > 0 && copied > 0, "in place %d, copied %d", in_place, copied);
        CHECK(wrong == 0);
        /* big enough to stay in the file until read: no data until then, an aligned copy after */
        int vb = graph_value_find(gr, "big");
        CHECK(vb >= 0 && gr->values[vb].unaligned && !gr->values[vb].constant->data &&
              !memcmp(gr->values[vb].unaligned, big, BIG * sizeof(float)));
        CHECK(graph_sane(gr));
        const tensor *c = constant(gr, "big");
        CHECK(c && !gr->values[vb].unaligned && data_aligned(c) && !memcmp(c->data, big, BIG * sizeof(float)));
        CHECK(c && ((const float *)c->data)[BIG - 1] == (float)(BIG - 1) * 0.25f);
        CHECK((c = constant(gr, "i")) && data_aligned(c) && *(const int64_t *)c->data == 5);
        CHECK(graph_sane(gr));
        graph_free(gr);
    }
    free(big);
    free(m.p);
}

/* ---- TensorProto files ----------------------------------------------------------------------------------------- */

static void test_tensor_file(void) {
    char path[160];
    wbuf t = {0};
    const int64_t dims[2] = {2, 3};
    const float v[6] = {1, 2, 3, 4, 5, 6.5f};
    tensor_head(&t, "input_0", T_FLOAT, 2, dims);
    w_bytes(&t, 9, v, sizeof v);
    snprintf(path, sizeof path, "%s/input_0.pb", tmp_dir);
    write_file(path, t.p, t.n);
    graph *g = NULL;
    CHECK(graph_create("onnx", "test", &g) == LENS_OK);
    if (!g) return;
    tensor out;
    CHECK_MSG(onnx_read_tensor_file(path, g, &out) == LENS_OK, "%s", core_last_error());
    CHECK(out.dtype == LENS_DTYPE_FLOAT32 && out.rank == 2 && out.dims[1] == 3 && out.data &&
          !memcmp(out.data, v, sizeof v));

    /* truncated at every offset: an error naming the file (or, at field boundaries, a tensor of the wrong size) */
    int bad = 0;
    for (size_t cut = 1; cut < t.n; cut++) {
        write_file(path, t.p, cut);
        lens_status st = onnx_read_tensor_file(path, g, &out);
        if (st == LENS_OK) bad++;
        else bad += strncmp(core_last_error(), path, strlen(path)) != 0 || out.data != NULL;
    }
    CHECK_MSG(bad == 0, "%d truncations misbehaved", bad);
    snprintf(path, sizeof path, "%s/none.pb", tmp_dir);
    CHECK(onnx_read_tensor_file(path, g, &out) == LENS_ERR_IO && message_has("No such file"));
    graph_free(g);
    free(t.p);
}

/* ---- .npy ------------------------------------------------------------------------------------------------------ */

static void test_npy(void) {
    char path[160];
    snprintf(path, sizeof path, "%s/a.npy", tmp_dir);
    float fv[6] = {1, -2, 3.5f, 4, 5, 6};
    tensor t = {.dtype = LENS_DTYPE_FLOAT32, .rank = 2, .dims = {2, 3}, .data = fv}, r;
    CHECK(npy_write(path, &t) == LENS_OK);
    /* byte-identical to numpy.save's header */
    size_t size;
    uint8_t *bytes = read_file(path, &size);
    const char *header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    CHECK(bytes && size == 128 + sizeof fv && !memcmp(bytes, "\x93NUMPY\x01\x00\x76\x00", 10) &&
          !memcmp(bytes + 10, header, strlen(header)) && bytes[127] == '\n' && bytes[126] == ' ');
    free(bytes);
    CHECK(npy_read(path, &r) == LENS_OK && r.dtype == LENS_DTYPE_FLOAT32 && r.rank == 2 && r.dims[0] == 2 &&
          r.dims[1] == 3 && !memcmp(r.data, fv, sizeof fv));
    free(r.data);

    int64_t iv[4] = {INT64_MIN, -1, 0, INT64_MAX};
    t = (tensor){.dtype = LENS_DTYPE_INT64, .rank = 1, .dims = {4}, .data = iv};
    CHECK(npy_write(path, &t) == LENS_OK && npy_read(path, &r) == LENS_OK);
    CHECK(r.dtype == LENS_DTYPE_INT64 && r.rank == 1 && r.dims[0] == 4 && !memcmp(r.data, iv, sizeof iv));
    free(r.data);

    float scalar = 2.5f;
    t = (tensor){.dtype = LENS_DTYPE_FLOAT32, .rank = 0, .data = &scalar};
    CHECK(npy_write(path, &t) == LENS_OK && npy_read(path, &r) == LENS_OK);
    CHECK(r.rank == 0 && *(float *)r.data == 2.5f);
    free(r.data);

    uint8_t u8[3] = {0, 128, 255};
    t = (tensor){.dtype = LENS_DTYPE_UINT8, .rank = 3, .dims = {1, 1, 3}, .data = u8};
    CHECK(npy_write(path, &t) == LENS_OK && npy_read(path, &r) == LENS_OK);
    CHECK(r.dtype == LENS_DTYPE_UINT8 && r.rank == 3 && ((uint8_t *)r.data)[2] == 255);
    free(r.data);

    /* empty array */
    t = (tensor){.dtype = LENS_DTYPE_FLOAT32, .rank = 2, .dims = {0, 5}, .data = NULL};
    CHECK(npy_write(path, &t) == LENS_OK && npy_read(path, &r) == LENS_OK && r.rank == 2 && r.dims[0] == 0);
    free(r.data);

    /* headers as numpy writes them, and malformed ones */
    struct { const char *header; size_t data_bytes; lens_status want; lens_dtype dtype; int rank; } cases[] = {
        {"{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", 3, LENS_OK, LENS_DTYPE_BOOL, 1},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", 16, LENS_OK, LENS_DTYPE_INT32, 2},
        {"{'descr': '|i1', 'shape': (1L, 2L), 'fortran_order': False}", 2, LENS_OK, LENS_DTYPE_INT8, 2},
        {"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": ()}", 4, LENS_OK, LENS_DTYPE_FLOAT32, 0},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, LENS_ERR_UNSUPPORTED, 0, 0},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, LENS_ERR_UNSUPPORTED, 0, 0},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16, LENS_ERR_UNSUPPORTED, 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 15, LENS_ERR_FORMAT, 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 17, LENS_ERR_FORMAT, 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, }", 4, LENS_ERR_FORMAT, 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -2), }", 4, LENS_ERR_FORMAT, 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 4, LENS_ERR_FORMAT, 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", 4, LENS_ERR_FORMAT, 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4, LENS_ERR_UNSUPPORTED, 0, 0},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", 4, LENS_ERR_FORMAT, 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", 4, LENS_ERR_FORMAT, 0, 0},
        {"{'descr': '<f4", 4, LENS_ERR_FORMAT, 0, 0},
        {"", 4, LENS_ERR_FORMAT, 0, 0},
    };
    uint8_t file[512];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t hlen = strlen(cases[i].header) + 1;
        memcpy(file, "\x93NUMPY\x01\x00", 8);
        file[8] = (uint8_t)hlen;
        file[9] = 0;
        memcpy(file + 10, cases[i].header, hlen - 1);
        file[10 + hlen - 1] = '\n';
        memset(file + 10 + hlen, 0x01, cases[i].data_bytes);
        write_file(path, file, 10 + hlen + cases[i].data_bytes);
        lens_status st = npy_read(path, &r);
        CHECK_MSG(st == cases[i].want && (st || (r.dtype == cases[i].dtype && r.rank == cases[i].rank)) &&
                  (!st || (r.data == NULL && message_has(path))),
                  "case %zu: status %d '%s'", i, st, core_last_error());
        free(r.data);
    }
    /* version 2.0 header (4-byte length) */
    const char *h2 = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n";
    memcpy(file, "\x93NUMPY\x02\x00", 8);
    size_t hl = strlen(h2);
    file[8] = (uint8_t)hl; file[9] = 0; file[10] = 0; file[11] = 0;
    memcpy(file + 12, h2, hl);
    memcpy(file + 12 + hl, &scalar, 4);
    write_file(path, file, 12 + hl + 4);
    CHECK(npy_read(path, &r) == LENS_OK && r.rank == 1 && *(float *)r.data == 2.5f);
    free(r.data);
    write_file(path, "\x93NUMPY\x09\x00\x00\x00", 10);
    CHECK(npy_read(path, &r) == LENS_ERR_UNSUPPORTED && message_has("version 9.0"));
    write_file(path, "PK\x03\x04 not numpy", 15);
    CHECK(npy_read(path, &r) == LENS_ERR_FORMAT && message_has("not a .npy file"));
    write_file(path, "\x93NUM", 4);
    CHECK(npy_read(path, &r) == LENS_ERR_FORMAT && message_has("truncated"));
    write_file(path, "", 0);
    CHECK(npy_read(path, &r) == LENS_ERR_FORMAT && message_has("empty file"));
    snprintf(path, sizeof path, "%s/missing.npy", tmp_dir);
    CHECK(npy_read(path, &r) == LENS_ERR_IO && r.data == NULL);
    t = (tensor){.dtype = LENS_DTYPE_STRING, .rank = 1, .dims = {1}, .data = fv};
    CHECK(npy_write(path, &t) == LENS_ERR_UNSUPPORTED);
    t = (tensor){.dtype = LENS_DTYPE_FLOAT32, .rank = 1, .dims = {1}, .data = fv};
    CHECK(npy_write("/nonexistent/dir/x.npy", &t) == LENS_ERR_IO);
}

static void remove_tmp_dir(void) {
    static const char *files[] = {"empty.onnx", "weights.bin", "external.onnx", "external2.onnx", "aligned.onnx",
                                  "input_0.pb", "a.npy"};
    char path[160];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp_dir, files[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/lens_test_onnx_XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_small_model();
    test_typed_fields();
    test_errors();
    test_external_data();
    test_zero_copy();
    test_tensor_file();
    test_npy();

    struct stat sb;
    if (stat("../shared", &sb) == 0) {
        test_real_fp32();
        test_real_int8();
        test_real_robustness(MODEL_FP32, 120);
        test_real_robustness(MODEL_INT8, 500);
    } else {
        printf("note: ../shared not found; skipping the real-model tests\n");
    }
    remove_tmp_dir();
    return test_finish("test_onnx_load");
}
