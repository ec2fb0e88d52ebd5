/* gemm_bench.c — GFLOP/s of the fp32 GEMM on ResNet-50 shapes (M = Cout, N = H*W, K = Cin*kh*kw, weights packed once
 * as for a convolution) and a few ViT / classifier shapes, at 1 and 2 threads, for each code path this CPU runs.
 * Reports the best of many runs, since a shared machine only ever slows a run down. Not built by CMake; build and
 * run from the repository root after `make build`, linking the library it built. */
// gcc -std=gnu11 -O2 -DLENS_X86=1 -Iinclude -Isrc bench/gemm_bench.c build/liblens.a -lm -lpthread -o /tmp/gemm_bench
// /tmp/gemm_bench [all]        (all: the AVX2 and portable paths too)
// /tmp/gemm_bench M N K [...]  (only these packed-A shapes, on the best path)
// GEMM_BENCH_COLD=16 /tmp/gemm_bench ...  (C rotates over 16 buffers: written cold, as in a network)
// GEMM_BENCH_PACKED_B=1 /tmp/gemm_bench M N K [...]  (the shapes with B packed instead: MatMul by a weight)
// GEMM_BENCH_COLD_B=12 ...  (packed B rotates over 12 copies: weights read from memory, as in a network)
// GEMM_BENCH_COLD_A=48 ...  (packed A likewise: a convolution's weights read from memory)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm_internal.h"

static float *filled(size_t n) {
    float *p = core_aligned_alloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

/* Best time of several runs lasting at least min_seconds in total. */
typedef enum { RUN_PACKED_A, RUN_SGEMM, RUN_PACKED_B } run_kind;

/* cold > 1: C rotates over that many buffers, as a network's layer writes an output that is not in cache. */
static int cold = 1;
/* cold_b > 1: packed B rotates over that many copies, as a network's weights come from memory, not cache. */
static int cold_b = 1;
/* cold_a > 1: packed A likewise (a convolution's weights). */
static int cold_a = 1;
#define COLD_MAX 64

static double best_seconds(run_kind kind, core_pool *pool, size_t M, size_t N, size_t K, const float *A,
                           kern_packed_a *const *pa_all, const float *B, kern_packed_b *const *pb_all, float *C_all) {
    kern_epilogue ep = {.bias_per_row = 1, .act = {KERN_ACT_RELU, 0, 0}};
    double best = 1e30, total = 0;
    for (int rep = 0; rep < 2000 && (rep < 5 || total < 0.5); rep++) {
        float *C = C_all + (size_t)(rep % cold) * M * N;
        const kern_packed_b *pb = pb_all ? pb_all[rep % cold_b] : NULL;
        const kern_packed_a *pa = pa_all ? pa_all[rep % cold_a] : NULL;
        double t0 = core_now();
        switch (kind) {
        case RUN_PACKED_A: kern_sgemm_packed_a(pool, pa, 0, N, B, N, 0.0f, C, N, &ep); break;
        case RUN_SGEMM: kern_sgemm(pool, 0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N, &ep); break;
        case RUN_PACKED_B: kern_sgemm_packed_b(pool, 0, M, A, K, pb, 0.0f, C, N, &ep); break;
        }
        double t = core_now() - t0;
        total += t;
        if (t < best) best = t;
    }
    return best;
}

static void bench(const char *label, run_kind kind, size_t M, size_t N, size_t K, core_pool *pool2) {
    float *A = filled(M * K), *B = filled(K * N), *C = filled(M * N * (size_t)cold);
    kern_packed_a *pa[COLD_MAX] = {NULL};
    for (int i = 0; i < cold_a && kind == RUN_PACKED_A; i++) pa[i] = kern_sgemm_pack_a(0, M, K, A, K);
    kern_packed_b *pb[COLD_MAX] = {NULL};
    for (int i = 0; i < cold_b && kind == RUN_PACKED_B; i++) pb[i] = kern_sgemm_pack_b(0, K, N, B, N);
    double flops = 2.0 * (double)M * (double)N * (double)K;
    double t1 = best_seconds(kind, NULL, M, N, K, A, pa, B, pb, C);
    double t2 = best_seconds(kind, pool2, M, N, K, A, pa, B, pb, C);
    printf("%-8s %-9s M=%5zu N=%5zu K=%5zu  1T %6.1f GFLOP/s  2T %6.1f GFLOP/s  (x%.2f)\n", kern_sgemm_name(), label,
           M, N, K, flops / t1 * 1e-9, flops / t2 * 1e-9, t1 / t2);
    fflush(stdout);
    for (int i = 0; i < cold_a; i++) kern_packed_a_free(pa[i]);
    for (int i = 0; i < cold_b; i++) kern_packed_b_free(pb[i]);
    core_aligned_free(A);
    core_aligned_free(B);
    core_aligned_free(C);
}

int main(int argc, char **argv) {
    static const size_t conv[][3] = {
        {64, 12544, 147}, {64, 3136, 64},   {64, 3136, 576},  {256, 3136, 64},  {64, 3136, 256},
        {128, 784, 1152}, {512, 784, 128},  {128, 784, 512},  {256, 196, 2304}, {1024, 196, 256},
        {256, 196, 1024}, {512, 49, 4608},  {2048, 49, 512},  {512, 49, 2048},  {1024, 1024, 1024},
    };
    core_pool *pool2 = NULL;
    if (core_pool_create(2, &pool2) != LENS_OK) return 1;
    const char *cold_env = getenv("GEMM_BENCH_COLD");
    if (cold_env && atoi(cold_env) > 1) cold = atoi(cold_env);
    const char *cold_b_env = getenv("GEMM_BENCH_COLD_B");
    if (cold_b_env && atoi(cold_b_env) > 1) cold_b = atoi(cold_b_env) < COLD_MAX ? atoi(cold_b_env) : COLD_MAX;
    const char *cold_a_env = getenv("GEMM_BENCH_COLD_A");
    if (cold_a_env && atoi(cold_a_env) > 1) cold_a = atoi(cold_a_env) < COLD_MAX ? atoi(cold_a_env) : COLD_MAX;
    const char *packed_b_env = getenv("GEMM_BENCH_PACKED_B");
    int shapes_packed_b = packed_b_env && atoi(packed_b_env) != 0;
    if (argc >= 4) {
        for (int i = 1; i + 2 < argc; i += 3)
            bench(shapes_packed_b ? "packed_b" : "packed_a", shapes_packed_b ? RUN_PACKED_B : RUN_PACKED_A, (size_t)atol(argv[i]), (size_t)atol(argv[i + 1]), (size_t)atol(argv[i + 2]),
                  pool2);
        core_pool_free(pool2);
        return 0;
    }
    kern_gemm_path paths[] = {KERN_GEMM_PATH_AUTO, KERN_GEMM_PATH_AVX2, KERN_GEMM_PATH_GENERIC};
    int n_paths = argc > 1 && strcmp(argv[1], "all") == 0 ? 3 : 1;
    for (int p = 0; p < n_paths; p++) {
        if (!kern_gemm_force_path(paths[p])) continue;
        for (size_t s = 0; s < sizeof conv / sizeof conv[0]; s++)
            bench("packed_a", RUN_PACKED_A, conv[s][0], conv[s][1], conv[s][2], pool2);
        bench("sgemm", RUN_SGEMM, 256, 3136, 576, pool2);
        bench("sgemm", RUN_SGEMM, 197, 768, 768, pool2);
        bench("sgemm", RUN_SGEMM, 197, 3072, 768, pool2);
        bench("packed_b", RUN_PACKED_B, 1, 1000, 2048, pool2);
        bench("packed_b", RUN_PACKED_B, 8, 1000, 2048, pool2);
    }
    kern_gemm_force_path(KERN_GEMM_PATH_AUTO);
    core_pool_free(pool2);
    return 0;
}
