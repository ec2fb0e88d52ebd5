/* test_memory.c — weights are resident once: after planning, every constant whose readers all took it into their
 * prepared state (packed weights) has had its data dropped, nothing else has, and the plan still computes the same
 * logits. A second plan for another batch size works on the dropped weights. Uses the committed fixture models and
 * the int8 MobileNetV2 of ../shared/models when it is there. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/formats.h"
#include "graph/graph.h"
#include "test.h"

#define DIR "tests/fixtures/models/"

/* Whether every live reader of constant v is prepared and took it. */
static int all_readers_took(const graph *g, int v) {
    int readers = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (n->removed) continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == v) {
                readers++;
                if (!n->prepared || k >= 32 || !(n->taken_inputs >> k & 1)) return 0;
            }
    }
    return readers > 0;
}

/* Runs plan on input and copies the first output to a new buffer (caller frees). */
static float *run_copy(graph_plan *plan, const tensor *input, int64_t *numel) {
    tensor out[4];
    lens_status st = graph_plan_run(plan, input, out);
    CHECK_MSG(st == LENS_OK, "%s", core_last_error());
    if (st) return NULL;
    *numel = tensor_numel(&out[0]);
    float *copy = malloc((size_t)*numel * sizeof *copy);
    if (copy) memcpy(copy, out[0].data, (size_t)*numel * sizeof *copy);
    return copy;
}

/* Checks the model at path on images (float32 NCHW, at least two of them; freed here). */
static void check_model_on(const char *name, const char *path, tensor images, int expect_released) {
    graph *g = NULL;
    core_pool *pool = NULL;
    lens_status st = onnx_load_file(path, &g);
    if (!st) st = graph_finalize(g);
    if (!st) st = graph_optimize(g);
    if (!st) st = core_pool_create(2, &pool);
    CHECK_MSG(st == LENS_OK, "%s: %s", name, core_last_error());
    if (st) goto done;
    CHECK(images.dtype == LENS_DTYPE_FLOAT32 && images.rank == 4 && images.dims[0] >= 2);

    /* batch 1 on the first image */
    tensor shape1 = images;
    shape1.dims[0] = 1;
    shape1.data = NULL;
    graph_plan *plan = NULL;
    st = graph_plan_create(g, &shape1, 1, pool, &plan);
    CHECK_MSG(st == LENS_OK, "%s: %s", name, core_last_error());
    if (st) goto done;

    /* released exactly the constants whose readers all took them */
    int released = 0, wrong = 0;
    for (int v = 0; v < g->n_values; v++) {
        const tensor *c = g->values[v].constant;
        if (!c) continue;
        int took = all_readers_took(g, v);
        released += !c->data;
        if ((c->data == NULL) != took) wrong++;
    }
    CHECK_MSG(wrong == 0, "%s: %d constants released against the readers' taken_inputs", name, wrong);
    CHECK_MSG(released >= expect_released, "%s: %d constants released, expected at least %d", name, released,
              expect_released);

    tensor in1 = shape1;
    in1.data = images.data;
    int64_t n1 = 0, n3 = 0;
    float *out1 = run_copy(plan, &in1, &n1);
    float *again = run_copy(plan, &in1, &n1);
    graph_plan_free(plan);
    plan = NULL;

    /* batch 3 = images 0, 1, 0 in a new plan, after the weights were dropped */
    size_t per_image = (size_t)tensor_numel(&shape1);
    float *three = malloc(3 * per_image * sizeof *three);
    float *out3 = NULL;
    if (three) {
        memcpy(three, images.data, per_image * sizeof *three);
        memcpy(three + per_image, (float *)images.data + per_image, per_image * sizeof *three);
        memcpy(three + 2 * per_image, images.data, per_image * sizeof *three);
        tensor in3 = in1;
        in3.dims[0] = 3;
        in3.data = three;
        st = graph_plan_create(g, &in3, 1, pool, &plan);
        CHECK_MSG(st == LENS_OK, "%s batch 3: %s", name, core_last_error());
        if (!st) out3 = run_copy(plan, &in3, &n3);
    }
    CHECK(out1 && again && out3 && n3 == 3 * n1);
    if (out1 && again && out3 && n3 == 3 * n1) {
        double scale = 0, d_again = 0, d_first = 0, d_third = 0;
        for (int64_t i = 0; i < n1; i++) {
            scale = fmax(scale, fabs(out1[i]));
            d_again = fmax(d_again, fabs(out1[i] - again[i]));
            d_first = fmax(d_first, fabs(out1[i] - out3[i]));
            d_third = fmax(d_third, fabs(out1[i] - out3[2 * n1 + i]));
        }
        CHECK_MSG(d_again == 0, "%s: a second run differs by %g", name, d_again);
        CHECK_MSG(d_first <= 1e-4 * scale && d_third <= 1e-4 * scale,
                  "%s: batch 3 differs from batch 1 by %g and %g (max |logit| %g)", name, d_first, d_third, scale);
    }
    free(out1);
    free(again);
    free(out3);
    free(three);
    graph_plan_free(plan);
done:
    free(images.data);
    core_pool_free(pool);
    graph_free(g);
}

static void check_model(const char *name, int expect_released) {
    char path[256], in_path[256];
    snprintf(path, sizeof path, DIR "%s.onnx", name);
    snprintf(in_path, sizeof in_path, DIR "%s.input.npy", name);
    tensor images = {0};
    lens_status st = npy_read(in_path, &images);
    CHECK_MSG(st == LENS_OK, "%s: %s", name, core_last_error());
    if (!st) check_model_on(name, path, images, expect_released);
}

/* The ONNX model zoo's int8 MobileNetV2 (QLinearConv, QLinearMatMul) from the shared models, when present, on two
 * pseudo-random images. */
static void check_int8_model(void) {
    const char *path = "../shared/models/mobilenetv2-12-int8.onnx";
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("test_memory: %s is absent; int8 check skipped\n", path);
        return;
    }
    fclose(f);
    tensor images = {.dtype = LENS_DTYPE_FLOAT32, .rank = 4, .dims = {2, 3, 224, 224}};
    size_t n = (size_t)tensor_numel(&images);
    float *x = malloc(n * sizeof *x);
    CHECK(x != NULL);
    if (!x) return;
    uint32_t r = 12345;
    for (size_t i = 0; i < n; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (float)(r >> 8) / (float)(1u << 24) * 4 - 2;
    }
    images.data = x;
    check_model_on("mobilenetv2-12-int8", path, images, 40); /* 52 QLinearConv weights and the classifier's */
}

int main(void) {
    check_model("resnet_basic_tiny", 5);  /* Conv weights (BN folded into new constants) and the classifier Gemm */
    check_model("vit_tiny", 5);           /* patch Conv and the MatMul weights */
    check_model("convnext_tiny_tiny", 3); /* depthwise Conv keeps its weights; the Linear layers do not */
    check_int8_model();
    return test_finish("test_memory");
}
