/* lens.c — the public API (include/lens.h) on top of the layers: load a model (formats → graph → passes), keep a plan
 * for the last input shape, classify images (image → tensor → run → softmax → top-k), describe models. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/formats.h"
#include "graph/graph.h"
#include "image/image.h"

extern const char *const lens_imagenet_labels[1000];

struct lens_model {
    graph *g;
    core_pool *pool;
    graph_plan *plan;         /* for plan_shape; rebuilt when the input shape changes */
    tensor plan_shape;
    lens_tensor_info *inputs, *outputs;
    char **labels;            /* from metadata or lens_model_set_labels; NULL = built-in when 1000 classes */
    int64_t n_labels;
    char *labels_text;
    int outputs_probabilities; /* the graph ends in Softmax: do not apply it again */
    int profiling;
    int64_t params;           /* as loaded, before passes */
    size_t weight_bytes;
};

/* ---- Loading ------------------------------------------------------------------------------------------------------- */

static lens_status fill_infos(graph *g, const int *values, int n, lens_tensor_info **out) {
    lens_tensor_info *info = calloc((size_t)n + 1, sizeof *info);
    if (!info) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < n; i++) {
        const graph_value *v = &g->values[values[i]];
        info[i].name = v->name;
        info[i].dtype = v->dtype;
        info[i].rank = v->rank;
        info[i].dims = v->dims;
    }
    *out = info;
    return LENS_OK;
}

/* Splits text in place into lines (or comma-separated items when there is no newline). */
static lens_status split_labels(lens_model *m, char *text) {
    int64_t count = 0;
    char sep = strchr(text, '\n') ? '\n' : ',';
    for (char *c = text; *c; c++) count += *c == sep;
    char **labels = calloc((size_t)count + 2, sizeof *labels);
    if (!labels) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory reading labels");
    int64_t n = 0;
    for (char *line = text; line && *line;) {
        char *end = strchr(line, sep);
        if (end) *end = 0;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ')) line[--len] = 0;
        while (*line == ' ') line++;
        labels[n++] = line;
        line = end ? end + 1 : NULL;
    }
    free(m->labels);
    free(m->labels_text);
    m->labels = labels;
    m->n_labels = n;
    m->labels_text = text;
    return LENS_OK;
}

static lens_status ensure_plan(lens_model *m, const tensor *shape);

/* The input shape used when the caller has not given one: dynamic batch = batch, other dynamic dims = 224. */
static tensor default_input_shape(const lens_model *m, int64_t batch) {
    const lens_tensor_info *in = &m->inputs[0];
    tensor shape = {.dtype = in->dtype ? in->dtype : LENS_DTYPE_FLOAT32, .rank = in->rank > 0 ? in->rank : 0};
    for (int d = 0; d < shape.rank; d++) shape.dims[d] = in->dims[d] >= 0 ? in->dims[d] : d == 0 ? batch : 224;
    return shape;
}

/* Passes that need shapes run on a probe plan at batch 1. A model whose shapes cannot be probed keeps the plain
 * passes; its errors surface when it runs. */
static lens_status optimize_with_probe(lens_model *m) {
    if (m->g->n_inputs != 1 || m->inputs[0].rank < 0) return LENS_OK;
    tensor shape = default_input_shape(m, 1);
    if (ensure_plan(m, &shape)) {
        core_clear_error();
        return LENS_OK;
    }
    lens_status st = graph_optimize_with_shapes(m->g, m->plan);
    graph_plan_free(m->plan);
    m->plan = NULL;
    return st;
}

static const char *const label_metadata_keys[] = {"labels", "class_names", "classes"};

lens_status lens_model_load(const char *path, const lens_model_options *opts, lens_model **out) {
    if (!out) return core_fail(LENS_ERR_INVALID_ARGUMENT, "lens_model_load: out is NULL");
    *out = NULL;
    if (!path) return core_fail(LENS_ERR_INVALID_ARGUMENT, "lens_model_load: path is NULL");
    lens_model *m = calloc(1, sizeof *m);
    if (!m) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory");
    lens_status st = onnx_load_file(path, &m->g);
    if (!st) st = graph_finalize(m->g);
    if (!st) graph_weight_stats(m->g, &m->params, &m->weight_bytes);
    if (!st) st = graph_optimize(m->g);
    if (!st && m->g->n_inputs < 1) st = core_fail(LENS_ERR_UNSUPPORTED, "%s: the model has no inputs", path);
    if (!st) st = fill_infos(m->g, m->g->inputs, m->g->n_inputs, &m->inputs);
    if (!st) st = core_pool_create(opts ? opts->threads : 0, &m->pool);
    if (!st) st = optimize_with_probe(m);
    if (!st) st = fill_infos(m->g, m->g->outputs, m->g->n_outputs, &m->outputs);
    for (size_t i = 0; !st && i < sizeof label_metadata_keys / sizeof *label_metadata_keys; i++) {
        const char *text = graph_metadata_get(m->g, label_metadata_keys[i]);
        if (!text) continue;
        char *copy = strdup(text);
        st = copy ? split_labels(m, copy) : core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory");
        break;
    }
    if (!st) {
        int producer = m->g->values[m->g->outputs[0]].producer;
        m->outputs_probabilities = producer >= 0 && !strcmp(m->g->nodes[producer].op.op_type, "Softmax");
    }
    if (st) {
        lens_model_free(m);
        return st;
    }
    *out = m;
    return LENS_OK;
}

void lens_model_free(lens_model *m) {
    if (!m) return;
    graph_plan_free(m->plan);
    core_pool_free(m->pool);
    graph_free(m->g);
    free(m->inputs);
    free(m->outputs);
    free(m->labels);
    free(m->labels_text);
    free(m);
}

int lens_model_input_count(const lens_model *m) { return m ? m->g->n_inputs : 0; }
int lens_model_output_count(const lens_model *m) { return m ? m->g->n_outputs : 0; }

lens_status lens_model_input_info(const lens_model *m, int index, lens_tensor_info *out) {
    if (!m || !out || index < 0 || index >= m->g->n_inputs)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "input index %d is out of range", index);
    *out = m->inputs[index];
    return LENS_OK;
}

lens_status lens_model_output_info(const lens_model *m, int index, lens_tensor_info *out) {
    if (!m || !out || index < 0 || index >= m->g->n_outputs)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "output index %d is out of range", index);
    *out = m->outputs[index];
    return LENS_OK;
}

int64_t lens_model_class_count(const lens_model *m) {
    if (!m) return 0;
    if (m->plan) {
        const tensor *o = graph_plan_output(m->plan, 0);
        return o->rank ? o->dims[o->rank - 1] : 1;
    }
    const lens_tensor_info *o = &m->outputs[0];
    return o->rank > 0 && o->dims[o->rank - 1] > 0 ? o->dims[o->rank - 1] : 0;
}

const char *lens_model_label(const lens_model *m, int64_t index) {
    if (!m || index < 0) return NULL;
    if (m->labels) return index < m->n_labels ? m->labels[index] : NULL;
    if (lens_model_class_count(m) == 1000 && index < 1000) return lens_imagenet_labels[index];
    return NULL;
}

lens_status lens_model_set_labels(lens_model *m, const char *path) {
    if (!m || !path) return core_fail(LENS_ERR_INVALID_ARGUMENT, "lens_model_set_labels: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f) return core_fail(LENS_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    while (text) {
        if (len + 1 >= cap) {
            char *grown = cap < ((size_t)64 << 20) ? realloc(text, cap * 2) : NULL;
            if (!grown) {
                free(text);
                text = NULL;
                break;
            }
            text = grown;
            cap *= 2;
        }
        size_t got = fread(text + len, 1, cap - len - 1, f);
        len += got;
        if (!got) break;
    }
    int failed = ferror(f);
    fclose(f);
    if (!text) return core_fail(LENS_ERR_OUT_OF_MEMORY, "%s: out of memory or over 64 MB", path);
    if (failed) {
        free(text);
        return core_fail(LENS_ERR_IO, "%s: read error", path);
    }
    text[len] = 0;
    if (!strchr(text, '\n') && len) { /* one label per line: a single line is one label */
        char *grown = realloc(text, len + 2);
        if (!grown) {
            free(text);
            return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory");
        }
        text = grown;
        text[len] = '\n';
        text[len + 1] = 0;
    }
    return split_labels(m, text);
}

/* ---- Running --------------------------------------------------------------------------------------------------------- */

static lens_status ensure_plan(lens_model *m, const tensor *shape) {
    if (m->plan && m->plan_shape.dtype == shape->dtype && tensor_same_shape(&m->plan_shape, shape)) return LENS_OK;
    graph_plan_free(m->plan);
    m->plan = NULL;
    if (m->g->n_inputs != 1)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: the model has %d inputs; lens runs models with one input",
                         m->g->source, m->g->n_inputs);
    m->plan_shape = *shape;
    m->plan_shape.data = NULL;
    lens_status st = graph_plan_create(m->g, &m->plan_shape, 1, m->pool, &m->plan);
    if (st) return st;
    if (m->profiling) graph_plan_enable_profile(m->plan, 1);
    return LENS_OK;
}

/* Runs input (float32) and returns the first output as a borrowed tensor valid until the next run. */
static lens_status run_first(lens_model *m, const tensor *input, tensor *output) {
    lens_status st = ensure_plan(m, input);
    if (st) return st;
    tensor outs[16], *o = m->g->n_outputs <= 16 ? outs : calloc((size_t)m->g->n_outputs, sizeof *o);
    if (!o) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory");
    st = graph_plan_run(m->plan, input, o);
    if (!st) *output = o[0];
    if (o != outs) free(o);
    return st;
}

/* Copies t to a new float32 buffer. */
static float *to_float_copy(const tensor *t) {
    int64_t n = tensor_numel(t);
    float *out = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!out) return NULL;
    if (t->dtype == LENS_DTYPE_FLOAT32) memcpy(out, t->data, (size_t)n * sizeof(float));
    else
        for (int64_t i = 0; i < n; i++) out[i] = (float)tensor_get_double(t, i);
    return out;
}

lens_status lens_model_run(lens_model *m, const lens_tensor *input, lens_tensor *output) {
    if (!m || !input || !output || !input->data) return core_fail(LENS_ERR_INVALID_ARGUMENT, "lens_model_run: NULL argument");
    if (input->rank < 0 || input->rank > 8) return core_fail(LENS_ERR_INVALID_ARGUMENT, "input rank %d is not in 0..8", input->rank);
    tensor in = {.dtype = LENS_DTYPE_FLOAT32, .rank = input->rank, .data = input->data};
    memcpy(in.dims, input->dims, sizeof(int64_t) * (size_t)input->rank);
    tensor out;
    lens_status st = run_first(m, &in, &out);
    if (st) return st;
    if (out.dtype == LENS_DTYPE_STRING || !dtype_size(out.dtype))
        return core_fail(LENS_ERR_UNSUPPORTED, "output dtype %s cannot be returned as float32", dtype_name(out.dtype));
    float *data = to_float_copy(&out);
    if (!data) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory");
    output->rank = out.rank;
    memcpy(output->dims, out.dims, sizeof output->dims);
    output->data = data;
    return LENS_OK;
}

lens_status lens_model_run_batch(lens_model *m, const float *images, int n, int height, int width, float **logits,
                                 int64_t *classes) {
    if (!m || !images || !logits || !classes || n < 1 || height < 1 || width < 1)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "lens_model_run_batch: bad argument");
    tensor in = {.dtype = LENS_DTYPE_FLOAT32, .rank = 4, .dims = {n, 3, height, width}, .data = (void *)images};
    tensor out;
    lens_status st = run_first(m, &in, &out);
    if (st) return st;
    int64_t total = tensor_numel(&out);
    if (out.rank < 1 || out.dims[0] != n || total % n)
        return core_fail(LENS_ERR_SHAPE, "%s: output shape does not start with the batch size %d", m->g->source, n);
    if (!(*logits = to_float_copy(&out))) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory");
    *classes = total / n;
    return LENS_OK;
}

/* ---- Classification ----------------------------------------------------------------------------------------------- */

lens_preprocess lens_preprocess_default(void) { return img_preprocess_default(); }

lens_preprocess lens_model_preprocess(const lens_model *m) {
    lens_preprocess pre = img_preprocess_default();
    if (!m) return pre;
    const lens_tensor_info *in = &m->inputs[0];
    if (in->rank == 4 && in->dims[2] > 0 && in->dims[2] == in->dims[3] && in->dims[2] != 224) {
        pre.crop_size = (int)in->dims[2];
        pre.resize_size = (int)floor(in->dims[2] * 256.0 / 224.0 + 0.5);
    }
    return pre;
}

int lens_top_k(const lens_model *m, const float *logits, int64_t n, int k, lens_prediction *out) {
    if (!logits || !out || n <= 0 || k <= 0) return 0;
    if (k > n) k = (int)n;
    float max = logits[0];
    for (int64_t i = 1; i < n; i++) max = logits[i] > max ? logits[i] : max;
    double sum = 0;
    int probabilities = m && m->outputs_probabilities;
    if (!probabilities)
        for (int64_t i = 0; i < n; i++) sum += exp((double)logits[i] - max);
    int count = 0;
    for (int64_t i = 0; i < n; i++) {
        float score = probabilities ? logits[i] : (float)(exp((double)logits[i] - max) / sum);
        if (count == k && score <= out[k - 1].score) continue;
        int j = count < k ? count++ : k - 1;
        while (j > 0 && out[j - 1].score < score) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = (lens_prediction){.index = i, .score = score, .label = lens_model_label(m, i)};
    }
    return count;
}

static lens_status classify_tensor(lens_model *m, const float *chw, int h, int w, int k, lens_prediction *out, int *count) {
    float *logits;
    int64_t classes;
    lens_status st = lens_model_run_batch(m, chw, 1, h, w, &logits, &classes);
    if (st) return st;
    *count = lens_top_k(m, logits, classes, k, out);
    free(logits);
    return LENS_OK;
}

lens_status lens_image_load_tensor(const char *path, const lens_preprocess *pre, float **out_data, int *out_h,
                                   int *out_w) {
    if (!path || !out_data || !out_h || !out_w)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "lens_image_load_tensor: NULL argument");
    lens_preprocess d = img_preprocess_default();
    return img_load_tensor(path, pre ? pre : &d, out_data, out_h, out_w);
}

lens_status lens_classify_file(lens_model *m, const char *path, const lens_preprocess *pre, int k,
                               lens_prediction *out, int *count) {
    if (!m || !path || !out || !count || k < 1) return core_fail(LENS_ERR_INVALID_ARGUMENT, "lens_classify_file: bad argument");
    lens_preprocess d = lens_model_preprocess(m);
    float *chw;
    int h, w;
    lens_status st = img_load_tensor(path, pre ? pre : &d, &chw, &h, &w);
    if (st) return st;
    st = classify_tensor(m, chw, h, w, k, out, count);
    free(chw);
    return st;
}

lens_status lens_classify_rgb(lens_model *m, const uint8_t *rgb, int width, int height, size_t stride,
                              const lens_preprocess *pre, int k, lens_prediction *out, int *count) {
    if (!m || !rgb || !out || !count || k < 1 || width < 1 || height < 1 || stride < (size_t)width * 3)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "lens_classify_rgb: bad argument");
    lens_preprocess d = lens_model_preprocess(m);
    if (!pre) pre = &d;
    img_image img = {.width = width, .height = height, .rgb = malloc((size_t)width * (size_t)height * 3)};
    if (!img.rgb) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory");
    for (int y = 0; y < height; y++) memcpy(img.rgb + (size_t)y * (size_t)width * 3, rgb + (size_t)y * stride, (size_t)width * 3);
    int h, w;
    lens_status st = img_output_size(&img, pre, &h, &w);
    float *chw = st ? NULL : malloc(sizeof(float) * 3 * (size_t)h * (size_t)w);
    if (!st && !chw) st = core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory");
    if (!st) st = img_to_tensor(&img, pre, chw, h, w);
    if (!st) st = classify_tensor(m, chw, h, w, k, out, count);
    free(chw);
    img_free(&img);
    return st;
}

/* ---- Description --------------------------------------------------------------------------------------------------- */

typedef struct text_buffer {
    char *data;
    size_t len, cap;
    int failed;
} text_buffer;

static void append(text_buffer *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(text_buffer *b, const char *fmt, ...) {
    va_list ap;
    for (int attempt = 0; attempt < 2 && !b->failed; attempt++) {
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->data && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap : 1024) * 2 + (size_t)n;
        char *grown = realloc(b->data, cap);
        if (!grown) b->failed = 1;
        else b->data = grown, b->cap = cap;
    }
}

static void append_json_string(text_buffer *b, const char *s) {
    append(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') append(b, "\\%c", *c);
        else if (*c < 0x20) append(b, "\\u%04x", *c);
        else append(b, "%c", *c);
    }
    append(b, "\"");
}

static void append_shape(text_buffer *b, const lens_tensor_info *t) {
    append(b, "[");
    for (int d = 0; d < t->rank; d++) append(b, d ? ",%lld" : "%lld", (long long)t->dims[d]);
    append(b, "]");
}

static void append_infos(text_buffer *b, const lens_tensor_info *infos, int n, int json) {
    for (int i = 0; i < n; i++) {
        if (json) {
            append(b, "%s{\"name\": ", i ? ", " : "");
            append_json_string(b, infos[i].name);
            append(b, ", \"dtype\": \"%s\", \"shape\": ", dtype_name(infos[i].dtype));
            append_shape(b, &infos[i]);
            append(b, "}");
        } else {
            append(b, "%s%s %s ", i ? ", " : "", infos[i].name, dtype_name(infos[i].dtype));
            append_shape(b, &infos[i]);
        }
    }
}

char *lens_model_describe(lens_model *m, int json) {
    if (!m) {
        core_fail(LENS_ERR_INVALID_ARGUMENT, "lens_model_describe: model is NULL");
        return NULL;
    }
    graph *g = m->g;
    /* op histogram of the file's nodes, in first-seen order */
    const char **names = calloc((size_t)g->n_nodes + 1, sizeof *names);
    int *counts = calloc((size_t)g->n_nodes + 1, sizeof *counts), n_names = 0;
    for (int i = 0; names && counts && i < g->n_nodes; i++) {
        int j = 0;
        while (j < n_names && strcmp(names[j], g->nodes[i].op.op_type)) j++;
        if (j == n_names) names[n_names++] = g->nodes[i].op.op_type;
        counts[j]++;
    }
    /* activation memory at batch 1 */
    long long arena = -1;
    if (g->n_inputs == 1 && m->inputs[0].rank >= 0) {
        tensor shape = default_input_shape(m, 1);
        if (!ensure_plan(m, &shape)) arena = (long long)graph_plan_arena_bytes(m->plan);
    }
    text_buffer b = {0};
    if (json) {
        append(&b, "{\"model\": ");
        append_json_string(&b, g->source);
        append(&b, ", \"format\": \"%s\", \"producer\": ", g->format);
        append_json_string(&b, g->producer);
        append(&b, ", \"inputs\": [");
        append_infos(&b, m->inputs, g->n_inputs, 1);
        append(&b, "], \"outputs\": [");
        append_infos(&b, m->outputs, g->n_outputs, 1);
        append(&b, "], \"parameters\": %lld, \"weight_bytes\": %zu, \"nodes\": %d, \"ops\": {", (long long)m->params,
               m->weight_bytes, g->n_nodes);
        for (int j = 0; j < n_names; j++) {
            append(&b, "%s", j ? ", " : "");
            append_json_string(&b, names[j]);
            append(&b, ": %d", counts[j]);
        }
        append(&b, "}, \"activation_bytes_batch1\": %lld}\n", arena);
    } else {
        append(&b, "model:       %s\nformat:      %s%s%s\ninputs:      ", g->source, g->format,
               g->producer[0] ? ", from " : "", g->producer);
        append_infos(&b, m->inputs, g->n_inputs, 0);
        append(&b, "\noutputs:     ");
        append_infos(&b, m->outputs, g->n_outputs, 0);
        append(&b, "\nparameters:  %lld (%.1f MB of weights)\nnodes:       %d\nops:         ", (long long)m->params,
               (double)m->weight_bytes / 1e6, g->n_nodes);
        for (int j = 0; j < n_names; j++) append(&b, "%s%s %d", j ? ", " : "", names[j], counts[j]);
        if (arena >= 0) append(&b, "\nactivations: %.1f MB planned at batch 1\n", (double)arena / 1e6);
        else append(&b, "\nactivations: unknown at batch 1 (%s)\n", lens_last_error());
    }
    free(names);
    free(counts);
    if (b.failed || !b.data) {
        free(b.data);
        core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory describing the model");
        return NULL;
    }
    return b.data;
}

/* ---- Profiling ---------------------------------------------------------------------------------------------------- */

void lens_model_set_profiling(lens_model *m, int enable) {
    if (!m) return;
    m->profiling = enable != 0;
    if (m->plan) graph_plan_enable_profile(m->plan, m->profiling);
}

typedef struct time_entry {
    const char *name; /* op type, or layer name */
    const char *op;
    double seconds;
    int count;
} time_entry;

static int by_time_desc(const void *a, const void *b) {
    double x = ((const time_entry *)a)->seconds, y = ((const time_entry *)b)->seconds;
    return x < y ? 1 : x > y ? -1 : 0;
}

char *lens_model_profile_report(lens_model *m, int json) {
    if (!m || !m->plan || !m->profiling) {
        core_fail(LENS_ERR_INVALID_ARGUMENT, "no profile: enable profiling and run the model first");
        return NULL;
    }
    int n = graph_plan_step_count(m->plan), n_types = 0;
    time_entry *layers = calloc((size_t)n + 1, sizeof *layers), *types = calloc((size_t)n + 1, sizeof *types);
    double total = 0;
    for (int i = 0; layers && types && i < n; i++) {
        double sec;
        const graph_node *node = graph_plan_step(m->plan, i, &sec);
        layers[i] = (time_entry){.name = node->op.name[0] ? node->op.name : node->op.op_type, .op = node->op.op_type,
                                 .seconds = sec, .count = 1};
        total += sec;
        int j = 0;
        while (j < n_types && strcmp(types[j].name, node->op.op_type)) j++;
        if (j == n_types) types[n_types++] = (time_entry){.name = node->op.op_type};
        types[j].seconds += sec;
        types[j].count++;
    }
    text_buffer b = {0};
    if (layers && types) {
        qsort(types, (size_t)n_types, sizeof *types, by_time_desc);
        qsort(layers, (size_t)n, sizeof *layers, by_time_desc);
        if (json) {
            append(&b, "{\"total_ms\": %.3f, \"op_types\": [", total * 1e3);
            for (int j = 0; j < n_types; j++) {
                append(&b, "%s{\"op\": ", j ? ", " : "");
                append_json_string(&b, types[j].name);
                append(&b, ", \"count\": %d, \"ms\": %.3f}", types[j].count, types[j].seconds * 1e3);
            }
            append(&b, "], \"layers\": [");
            for (int i = 0; i < n; i++) {
                append(&b, "%s{\"name\": ", i ? ", " : "");
                append_json_string(&b, layers[i].name);
                append(&b, ", \"op\": ");
                append_json_string(&b, layers[i].op);
                append(&b, ", \"ms\": %.3f}", layers[i].seconds * 1e3);
            }
            append(&b, "]}\n");
        } else {
            append(&b, "time per op type (all runs, %.1f ms in total):\n", total * 1e3);
            for (int j = 0; j < n_types; j++)
                append(&b, "  %-24s %5d layers %10.3f ms %5.1f%%\n", types[j].name, types[j].count,
                       types[j].seconds * 1e3, total > 0 ? 100 * types[j].seconds / total : 0);
            append(&b, "slowest layers:\n");
            for (int i = 0; i < n && i < 25; i++)
                append(&b, "  %-40s %-20s %10.3f ms %5.1f%%\n", layers[i].name, layers[i].op, layers[i].seconds * 1e3,
                       total > 0 ? 100 * layers[i].seconds / total : 0);
        }
    } else {
        b.failed = 1;
    }
    free(layers);
    free(types);
    if (b.failed || !b.data) {
        free(b.data);
        core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory writing the profile");
        return NULL;
    }
    return b.data;
}
