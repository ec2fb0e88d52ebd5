/* test_fixture_models.c — small torchvision models (random but typical weights, exported at opset 17 with a dynamic
 * batch by tests/gen/make_model_fixtures.py) must reproduce PyTorch's logits within tolerance × max|logit|, at
 * batch 2 and at batch 1. The manifest lists each model's files and tolerance. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/formats.h"
#include "lens.h"
#include "test.h"

#define DIR "tests/fixtures/models/"

/* Largest |a - b| over n floats. */
static double max_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (e > d || isnan(e)) d = isnan(e) ? INFINITY : e;
    }
    return d;
}

static void check_model(const char *name, const char *onnx, const char *in_file, const char *logits_file, double tol) {
    char path[512];
    tensor in, want;
    snprintf(path, sizeof path, DIR "%s", in_file);
    int ok_in = npy_read(path, &in) == LENS_OK;
    snprintf(path, sizeof path, DIR "%s", logits_file);
    int ok_want = npy_read(path, &want) == LENS_OK;
    CHECK_MSG(ok_in && ok_want, "%s: %s", name, lens_last_error());
    lens_model *model = NULL;
    snprintf(path, sizeof path, DIR "%s", onnx);
    lens_model_options opts = {.threads = 2};
    int loaded = ok_in && ok_want && lens_model_load(path, &opts, &model) == LENS_OK;
    CHECK_MSG(loaded, "%s: %s", name, lens_last_error());
    if (loaded) {
        int64_t n_out = tensor_numel(&want), per_image = n_out / want.dims[0];
        double scale = 0;
        for (int64_t i = 0; i < n_out; i++) scale = fmax(scale, fabs(((float *)want.data)[i]));
        lens_tensor input = {.rank = in.rank, .data = in.data}, out = {0};
        memcpy(input.dims, in.dims, sizeof(int64_t) * (size_t)in.rank);
        /* batch as stored (2), then the first image alone */
        for (int batch = (int)in.dims[0]; batch >= 1; batch = batch > 1 ? 1 : 0) {
            input.dims[0] = batch;
            lens_status st = lens_model_run(model, &input, &out);
            CHECK_MSG(st == LENS_OK, "%s batch %d: %s", name, batch, lens_last_error());
            if (st) break;
            CHECK_MSG(out.dims[0] == batch && tensor_numel(&(tensor){.rank = out.rank, .dims = {out.dims[0], out.dims[1],
                      out.dims[2], out.dims[3], out.dims[4], out.dims[5], out.dims[6], out.dims[7]}}) == per_image * batch,
                      "%s: output shape", name);
            double d = max_diff(out.data, want.data, per_image * batch);
            printf("%-28s batch %d: max|diff| %.3g, max|logit| %.3g, ratio %.2g (limit %g)\n", name, batch, d, scale,
                   d / scale, tol);
            CHECK_MSG(d <= tol * scale, "%s batch %d: max|diff| %g > %g x %g", name, batch, d, tol, scale);
            free(out.data);
        }
    }
    lens_model_free(model);
    free(in.data);
    free(want.data);
}

int main(void) {
    FILE *f = fopen(DIR "manifest.tsv", "r");
    CHECK(f != NULL);
    if (!f) return test_finish("test_fixture_models");
    char line[4096];
    int models = 0;
    while (fgets(line, sizeof line, f)) {
        char name[128], onnx[256], in[256], logits[256], shape[64];
        double max_logit, tol;
        if (sscanf(line, "%127s %255s %255s %255s %63s %lf %lf", name, onnx, in, logits, shape, &max_logit, &tol) != 7)
            continue; /* header */
        check_model(name, onnx, in, logits, tol);
        models++;
    }
    fclose(f);
    CHECK(models >= 10);
    return test_finish("test_fixture_models");
}
