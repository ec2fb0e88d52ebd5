/* test_real_models.c — the real pretrained models in ../shared/models on the 200 ImageNet dev images:
 * mobilenet_v2_real.onnx must agree with PyTorch's top-1 (reference_mobilenet_v2_real.tsv) on >= 99% of images with
 * top-1 accuracy 0.855 +- 0.005, and the ONNX Runtime int8 model must be within 1 point of it. Images are decoded
 * and preprocessed by lens itself (PIL-exact), so this tests the whole path. Skips when ../shared is absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lens.h"
#include "test.h"

#define DEV "../shared/data/imagenet-dev"
#define MODELS "../shared/models"
#define MAX_IMAGES 256
#define BATCH 8

typedef struct dev_image {
    char file[256];
    int label;
    int ref_top1;
} dev_image;

static int load_dev_set(dev_image *images) {
    FILE *f = fopen(DEV "/reference_mobilenet_v2_real.tsv", "r");
    if (!f) return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < MAX_IMAGES) {
        char file[256], top5[128];
        int label;
        float prob;
        if (sscanf(line, "%255s %d %127s %f", file, &label, top5, &prob) != 4) continue; /* header */
        snprintf(images[n].file, sizeof images[n].file, "%s", file);
        images[n].label = label;
        images[n].ref_top1 = atoi(top5);
        n++;
    }
    fclose(f);
    return n;
}

/* Classifies every image in batches; writes top-1 and whether the label is in the top 5. */
static int classify_all(const char *model_path, const dev_image *images, int n, int *top1, int *in_top5) {
    lens_model_options opts = {.threads = 2};
    lens_model *model;
    if (lens_model_load(model_path, &opts, &model)) {
        fprintf(stderr, "load %s: %s\n", model_path, lens_last_error());
        return 0;
    }
    lens_preprocess pre = lens_model_preprocess(model);
    float *batch = malloc(sizeof(float) * 3 * 224 * 224 * BATCH);
    int ok = batch != NULL;
    for (int first = 0; ok && first < n; first += BATCH) {
        int count = n - first < BATCH ? n - first : BATCH;
        for (int i = 0; ok && i < count; i++) {
            char path[512];
            snprintf(path, sizeof path, DEV "/%.255s", images[first + i].file); /* %.255s: file is char[256] */
            float *chw;
            int h, w;
            if (lens_image_load_tensor(path, &pre, &chw, &h, &w) || h != 224 || w != 224) {
                fprintf(stderr, "%s: %s\n", path, lens_last_error());
                ok = 0;
                break;
            }
            memcpy(batch + (size_t)i * 3 * 224 * 224, chw, sizeof(float) * 3 * 224 * 224);
            free(chw);
        }
        float *logits;
        int64_t classes;
        if (!ok || lens_model_run_batch(model, batch, count, 224, 224, &logits, &classes)) {
            fprintf(stderr, "run %s: %s\n", model_path, lens_last_error());
            ok = 0;
            break;
        }
        for (int i = 0; i < count; i++) {
            lens_prediction p[5];
            int got = lens_top_k(model, logits + (size_t)i * (size_t)classes, classes, 5, p);
            top1[first + i] = (int)p[0].index;
            in_top5[first + i] = 0;
            for (int j = 0; j < got; j++) in_top5[first + i] |= p[j].index == images[first + i].label;
        }
        free(logits);
    }
    free(batch);
    lens_model_free(model);
    return ok;
}

int main(void) {
    static dev_image images[MAX_IMAGES];
    int n = load_dev_set(images);
    if (!n || access(MODELS "/mobilenet_v2_real.onnx", R_OK)) {
        printf("test_real_models: ../shared is absent; skipped\n");
        return 0;
    }
    CHECK(n == 200);
    int top1[MAX_IMAGES], top5[MAX_IMAGES];
    int loaded = classify_all(MODELS "/mobilenet_v2_real.onnx", images, n, top1, top5);
    CHECK(loaded);
    int agree = 0, correct = 0, correct5 = 0;
    for (int i = 0; loaded && i < n; i++) {
        agree += top1[i] == images[i].ref_top1;
        correct += top1[i] == images[i].label;
        correct5 += top5[i];
        if (top1[i] != images[i].ref_top1)
            printf("  differs from PyTorch: %s: lens %d, PyTorch %d\n", images[i].file, top1[i], images[i].ref_top1);
    }
    double agreement = (double)agree / n, acc = (double)correct / n;
    printf("mobilenet_v2_real.onnx: top-1 agreement with PyTorch %.3f, top-1 %.3f, top-5 %.3f\n", agreement, acc,
           (double)correct5 / n);
    CHECK(agreement >= 0.99);
    CHECK_NEAR(acc, 0.855, 0.005 + 1e-9);

    int q_top1[MAX_IMAGES], q_top5[MAX_IMAGES];
    int q_loaded = classify_all(MODELS "/mobilenetv2-12-int8.onnx", images, n, q_top1, q_top5);
    CHECK(q_loaded);
    int q_correct = 0, q_agree = 0;
    for (int i = 0; q_loaded && i < n; i++) {
        q_correct += q_top1[i] == images[i].label;
        q_agree += q_top1[i] == top1[i];
    }
    double q_acc = (double)q_correct / n;
    printf("mobilenetv2-12-int8.onnx: top-1 %.3f (fp32 %.3f), agrees with fp32 on %.3f\n", q_acc, acc,
           (double)q_agree / n);
    CHECK(fabs(q_acc - acc) <= 0.01 + 1e-9);
    return test_finish("test_real_models");
}
