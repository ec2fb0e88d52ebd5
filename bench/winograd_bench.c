/* winograd_bench.c — time per call of the Winograd conv (kern_winograd_conv2d) on ResNet-50's 3x3 stride-1 shapes at
 * batch 1 (56x56x64, 28x28x128, 14x14x256 with F(4x4); 7x7x512 with F(2x2)), with ReLU and, as the network has it,
 * the output written to a buffer that is not in cache. Reports the best of many runs at 1 and 2 threads, since a
 * shared machine only ever slows a run down. Not built by CMake; build from the repository root after `make`:
 * gcc -std=gnu11 -O2 -DLENS_X86=1 -Iinclude -Isrc bench/winograd_bench.c build/liblens.a -lm -lpthread -o /tmp/wb
 * /tmp/wb [SECONDS_PER_CASE] [HW C TILE]... (default: the four ResNet-50 shapes, 0.5 s each) */
#include <stdio.h>
#include <stdlib.h>

#include "kernels/winograd.h"

#define COLD 8 /* inputs and outputs rotate over this many buffers */

static float *filled(size_t n) {
    float *p = core_aligned_alloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

static double best_ms(core_pool *pool, const kern_winograd_weights *w, const kern_conv2d_params *p, float **x,
                      const float *bias, float **y, void *scratch, size_t slot, double seconds) {
    kern_activation act = {KERN_ACT_RELU, 0, 0};
    size_t slots = pool ? (size_t)core_pool_size(pool) : 1;
    double best = 1e30, spent = 0;
    for (int i = 0; spent < seconds || i < 20; i++) {
        double t0 = core_now();
        kern_winograd_conv2d(pool, w, p, x[i % COLD], bias, NULL, &act, y[i % COLD], scratch, slot, slots);
        double t = core_now() - t0;
        spent += t;
        if (t < best) best = t;
    }
    return best * 1e3;
}

static void bench(int64_t hw, int64_t c, int tile, core_pool *pool2, double seconds) {
    kern_conv2d_params p = {1, c, hw, hw, c, hw, hw, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    size_t plane = (size_t)(c * hw * hw);
    float *x[COLD], *y[COLD], *wt = filled((size_t)(c * c * 9)), *bias = filled((size_t)c);
    for (int i = 0; i < COLD; i++) x[i] = filled(plane), y[i] = filled(plane);
    kern_winograd_weights *w = kern_winograd_pack(wt, c, c, tile);
    size_t slot = kern_winograd_slot_bytes(&p, tile);
    void *scratch = core_aligned_alloc(2 * slot);
    if (!w || !scratch) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    /* WINOGRAD_BENCH_THREADS=1 or 2: only that count (for perf record) */
    const char *only = getenv("WINOGRAD_BENCH_THREADS");
    double t1 = only && atoi(only) == 2 ? 0 : best_ms(NULL, w, &p, x, bias, y, scratch, slot, seconds);
    double t2 = only && atoi(only) == 1 ? 0 : best_ms(pool2, w, &p, x, bias, y, scratch, slot, seconds);
    double gflop = 2.0 * (double)(c * c * 9 * hw * hw) * 1e-9; /* the direct conv's */
    printf("%3lldx%-3lld c%-4lld F(%dx%d)  1t %7.3f ms (%6.1f GF/s)  2t %7.3f ms (%6.1f GF/s)  x%.2f\n",
           (long long)hw, (long long)hw, (long long)c, tile, tile, t1, gflop / t1 * 1e3, t2, gflop / t2 * 1e3, t1 / t2);
    kern_winograd_free(w);
    core_aligned_free(scratch);
    for (int i = 0; i < COLD; i++) core_aligned_free(x[i]), core_aligned_free(y[i]);
    core_aligned_free(wt), core_aligned_free(bias);
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 0.5;
    core_pool *pool2 = NULL;
    if (core_pool_create(2, &pool2) != LENS_OK || !kern_winograd_available()) return 1;
    if (argc > 4) {
        for (int i = 2; i + 2 < argc; i += 3)
            bench(atoll(argv[i]), atoll(argv[i + 1]), atoi(argv[i + 2]), pool2, seconds);
    } else {
        bench(56, 64, 4, pool2, seconds);
        bench(28, 128, 4, pool2, seconds);
        bench(14, 256, 4, pool2, seconds);
        bench(7, 512, 2, pool2, seconds);
    }
    core_pool_free(pool2);
    return 0;
}
