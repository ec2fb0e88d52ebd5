/* test_onnx_node.c — runs the ONNX backend node tests shipped in Debian's libonnx-testdata
 * (/usr/share/libonnx-testdata/data/node/<test>/model.onnx + test_data_set_N/{input,output}_K.pb).
 * Every test whose ops lens supports must pass; the others are listed as skipped with the reason (the loader's or
 * planner's LENS_ERR_UNSUPPORTED message). tests/ops/node_test_skips.txt lists tests of supported ops that are
 * skipped on purpose, each with its reason. Usage: test_onnx_node [DIR] [NAME-SUBSTRING] */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/formats.h"
#include "test.h"

#define NODE_DIR "/usr/share/libonnx-testdata/data/node"

typedef struct skip_entry {
    char name[128];
    char reason[256];
} skip_entry;

static skip_entry skips[512];
static int n_skips;

static void load_skips(void) {
    FILE *f = fopen("tests/ops/node_test_skips.txt", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f) && n_skips < 512) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        line[strcspn(line, "\n")] = 0;
        tab[1 + strcspn(tab + 1, "\n")] = 0;
        snprintf(skips[n_skips].name, sizeof skips[n_skips].name, "%.127s", line);
        snprintf(skips[n_skips].reason, sizeof skips[n_skips].reason, "%.255s", tab + 1);
        n_skips++;
    }
    fclose(f);
}

static const char *listed_skip(const char *name) {
    for (int i = 0; i < n_skips; i++)
        if (!strcmp(skips[i].name, name)) return skips[i].reason;
    return NULL;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Compares one output; returns 1 when equal within tolerance, else prints why. */
static int compare(const char *test, int k, const tensor *got, const tensor *want) {
    char sg[160], sw[160];
    if (got->dtype != want->dtype || !tensor_same_shape(got, want)) {
        fprintf(stderr, "%s: output %d: got %s %s, want %s %s\n", test, k, dtype_name(got->dtype),
                tensor_shape_string(got, sg, sizeof sg), dtype_name(want->dtype),
                tensor_shape_string(want, sw, sizeof sw));
        return 0;
    }
    int64_t n = tensor_numel(want);
    int is_float = want->dtype == LENS_DTYPE_FLOAT32 || want->dtype == LENS_DTYPE_FLOAT64 ||
                   want->dtype == LENS_DTYPE_FLOAT16 || want->dtype == LENS_DTYPE_BFLOAT16;
    double rtol = want->dtype == LENS_DTYPE_FLOAT16 || want->dtype == LENS_DTYPE_BFLOAT16 ? 1e-2 : 1e-3;
    for (int64_t i = 0; i < n; i++) {
        double a = tensor_get_double(got, i), b = tensor_get_double(want, i);
        int ok;
        if (is_float) ok = (isnan(a) && isnan(b)) || a == b || fabs(a - b) <= 1e-5 + rtol * fabs(b);
        else ok = tensor_get_int(got, i) == tensor_get_int(want, i);
        if (!ok) {
            fprintf(stderr, "%s: output %d element %lld: got %.9g, want %.9g\n", test, k, (long long)i, a, b);
            return 0;
        }
    }
    return 1;
}

/* onnx 1.12's test data stores bfloat16 tensors as uint16 (numpy has no bfloat16): trust the model's declaration. */
static void retag_bfloat16(tensor *t, const graph_value *declared) {
    if (t->dtype == LENS_DTYPE_UINT16 && declared->dtype == LENS_DTYPE_BFLOAT16) t->dtype = LENS_DTYPE_BFLOAT16;
}

typedef enum { RESULT_PASS, RESULT_FAIL, RESULT_SKIP } result;

static result run_test(const char *dir, const char *name, core_pool *pool, char *reason, size_t reason_size) {
    char path[1200];
    snprintf(path, sizeof path, "%.600s/%.200s/model.onnx", dir, name);
    graph *g = NULL;
    lens_status st = onnx_load_file(path, &g);
    if (!st) st = graph_finalize(g);
    if (!st) st = graph_optimize(g);
    if (st) {
        snprintf(reason, reason_size, "%s", core_last_error());
        graph_free(g);
        if (st == LENS_ERR_UNSUPPORTED) return RESULT_SKIP;
        fprintf(stderr, "%s: load failed: %s\n", name, reason);
        return RESULT_FAIL;
    }
    result res = RESULT_PASS;
    int ran_sets = 0;
    for (int set = 0; res == RESULT_PASS; set++) {
        char set_dir[1100];
        snprintf(set_dir, sizeof set_dir, "%.600s/%.200s/test_data_set_%d", dir, name, set);
        if (!file_exists(set_dir)) break;
        tensor inputs[16];
        int n_in = 0;
        for (; n_in < 16; n_in++) {
            snprintf(path, sizeof path, "%s/input_%d.pb", set_dir, n_in);
            if (!file_exists(path)) break;
            if (onnx_read_tensor_file(path, g, &inputs[n_in])) {
                snprintf(reason, reason_size, "%s", core_last_error());
                res = RESULT_SKIP;
                break;
            }
            if (n_in < g->n_inputs) retag_bfloat16(&inputs[n_in], &g->values[g->inputs[n_in]]);
        }
        if (res != RESULT_PASS) break;
        /* Inputs that carry shapes, axes, pads or scales are planned as constants, as exporters make them; the
         * others are fed at run time. */
        tensor planned[16];
        for (int k = 0; k < n_in; k++) {
            planned[k] = inputs[k];
            int64_t numel = tensor_numel(&inputs[k]);
            int shape_like = inputs[k].dtype == LENS_DTYPE_INT64 || inputs[k].dtype == LENS_DTYPE_INT32 ||
                             inputs[k].rank == 0 || (inputs[k].rank == 1 && numel <= 8);
            if (!shape_like) planned[k].data = NULL;
        }
        graph_plan *plan = NULL;
        st = graph_plan_create(g, planned, n_in, pool, &plan);
        if (st) {
            snprintf(reason, reason_size, "%s", core_last_error());
            if (st != LENS_ERR_UNSUPPORTED) fprintf(stderr, "%s: plan failed: %s\n", name, reason);
            res = st == LENS_ERR_UNSUPPORTED ? RESULT_SKIP : RESULT_FAIL;
            break;
        }
        tensor outputs[16];
        if (g->n_outputs > 16) {
            snprintf(reason, reason_size, "more than 16 outputs");
            res = RESULT_SKIP;
        } else if ((st = graph_plan_run(plan, inputs, outputs))) {
            snprintf(reason, reason_size, "%s", core_last_error());
            if (st != LENS_ERR_UNSUPPORTED) fprintf(stderr, "%s: run failed: %s\n", name, reason);
            res = st == LENS_ERR_UNSUPPORTED ? RESULT_SKIP : RESULT_FAIL;
        }
        for (int k = 0; res == RESULT_PASS && k < g->n_outputs; k++) {
            tensor want;
            snprintf(path, sizeof path, "%s/output_%d.pb", set_dir, k);
            if (onnx_read_tensor_file(path, g, &want)) {
                fprintf(stderr, "%s: cannot read %s: %s\n", name, path, core_last_error());
                res = RESULT_FAIL;
            } else if (retag_bfloat16(&want, &g->values[g->outputs[k]]), !compare(name, k, &outputs[k], &want)) {
                res = RESULT_FAIL;
            }
        }
        graph_plan_free(plan);
        ran_sets++;
    }
    graph_free(g);
    if (res == RESULT_PASS && !ran_sets) {
        snprintf(reason, reason_size, "no test data");
        return RESULT_SKIP;
    }
    return res;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : NODE_DIR, *filter = argc > 2 ? argv[2] : NULL;
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "test_onnx_node: %s is missing: install Debian's libonnx-testdata\n", dir);
        return 1;
    }
    load_skips();
    char **names = NULL;
    int n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "test_", 5) || (filter && !strstr(e->d_name, filter))) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, sizeof *names * (size_t)cap);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    core_pool *pool;
    core_pool_create(2, &pool);
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n; i++) {
        char reason[1024] = "";
        const char *listed = listed_skip(names[i]);
        if (listed) {
            printf("skip %s: %s (listed in node_test_skips.txt)\n", names[i], listed);
            skipped++;
            free(names[i]);
            continue;
        }
        result r = run_test(dir, names[i], pool, reason, sizeof reason);
        if (r == RESULT_PASS) passed++;
        else if (r == RESULT_SKIP) {
            printf("skip %s: %s\n", names[i], reason);
            skipped++;
        } else {
            printf("FAIL %s\n", names[i]);
            failed++;
        }
        CHECK_MSG(r != RESULT_FAIL, "%s", names[i]);
        free(names[i]);
    }
    free(names);
    core_pool_free(pool);
    printf("node_tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
