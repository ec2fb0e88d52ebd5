/* run_allocations.c — counts heap allocations (malloc, calloc, realloc, aligned_alloc, posix_memalign) made while a
 * loaded model runs, after a first run has built the plan: the hot path should make none except the logits that
 * lens_model_run_batch returns (one per run). With -v it prints a backtrace per allocation. It replaces the
 * allocator's entry points in this executable (glibc's __libc_* underneath), so it cannot run under ASan. Not built
 * by CMake; build from the repository root after a Release build (one line):
 *   gcc -O1 -g -rdynamic -Iinclude bench/run_allocations.c build/liblens.a -lm -lpthread
 *       $(pkg-config --libs libjpeg libpng libwebp) -o /tmp/run_allocations
 *   /tmp/run_allocations [-v] [-t THREADS] [-n RUNS] MODEL.onnx
 * Resolve the backtraces' offsets with addr2line -f -e /tmp/run_allocations OFFSET. */
#define _GNU_SOURCE
#include <execinfo.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lens.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_int counting, count, verbose;

static void note(size_t bytes) {
    if (!atomic_load(&counting)) return;
    atomic_fetch_add(&count, 1);
    if (!atomic_load(&verbose)) return;
    atomic_store(&counting, 0); /* backtrace itself may allocate */
    void *frames[16];
    int n = backtrace(frames, 16);
    fprintf(stderr, "allocation of %zu bytes:\n", bytes);
    backtrace_symbols_fd(frames, n, 2);
    atomic_store(&counting, 1);
}

void *malloc(size_t n) {
    note(n);
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    note(a * b);
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    note(n);
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t align, size_t n) {
    note(n);
    return __libc_memalign(align, n);
}
int posix_memalign(void **out, size_t align, size_t n) {
    note(n);
    *out = __libc_memalign(align, n);
    return *out ? 0 : 12; /* ENOMEM */
}
void free(void *p) { __libc_free(p); }

int main(int argc, char **argv) {
    int threads = 2, runs = 3;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) atomic_store(&verbose, 1);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) runs = atoi(argv[++i]);
        else path = argv[i];
    }
    if (!path || runs < 1) {
        fprintf(stderr, "usage: run_allocations [-v] [-t THREADS] [-n RUNS] MODEL.onnx\n");
        return 2;
    }
    lens_model_options opts = {.threads = threads};
    lens_model *model;
    if (lens_model_load(path, &opts, &model)) {
        fprintf(stderr, "%s\n", lens_last_error());
        return 1;
    }
    float *image = calloc(3 * 224 * 224, sizeof *image), *logits;
    int64_t classes;
    int failed = !image || lens_model_run_batch(model, image, 1, 224, 224, &logits, &classes);
    if (!failed) free(logits);
    atomic_store(&counting, 1);
    for (int i = 0; i < runs && !failed; i++) {
        failed = lens_model_run_batch(model, image, 1, 224, 224, &logits, &classes) != LENS_OK;
        if (!failed) free(logits);
    }
    atomic_store(&counting, 0);
    if (failed) fprintf(stderr, "%s\n", lens_last_error());
    else
        printf("%s: %d allocations in %d runs after the first (%d of them the returned logits)\n", path,
               atomic_load(&count), runs, runs);
    free(image);
    lens_model_free(model);
    return failed;
}
