/* test_gemv.c — checks the matrix-vector path of kern_sgemm_packed_a (N == 1, one contiguous column: y = A x) against
 * the scalar reference kern_sgemm_ref on every code path this CPU runs (portable, AVX2, AVX-512): M and K across
 * the panel heights and the 4- and 8-step groups of the kernels, long K, beta 0 (old y ignored, even NaN), 1 and 0.5,
 * bias per row and shared, activations up to SiLU, with one thread and a pool (large products split over it); and that
 * nothing outside y is written. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm_internal.h"
#include "test.h"

static const float SENTINEL = 12345.0f;
static double worst_error;
static long cases;

typedef struct gemv_case {
    size_t M, K;
    float beta;
    int bias; /* 0 none, 1 per row, 2 one value for all rows (bias per column, N == 1) */
    size_t act; /* index into acts */
    int trans_b; /* x as a K x 1 column (ldb 1) or a 1 x K row */
} gemv_case;

/* Every activation up to SiLU, with the parameters those that have them need. */
static const kern_activation acts[] = {
    {KERN_ACT_NONE, 0, 0},    {KERN_ACT_RELU, 0, 0},         {KERN_ACT_CLIP, -0.25f, 0.5f},
    {KERN_ACT_LEAKY_RELU, 0.2f, 0}, {KERN_ACT_SIGMOID, 0, 0}, {KERN_ACT_HARD_SIGMOID, 0.25f, 0.4f},
    {KERN_ACT_HARD_SWISH, 0, 0}, {KERN_ACT_TANH, 0, 0},       {KERN_ACT_GELU, 0, 0},
    {KERN_ACT_SILU, 0, 0},
};
#define N_ACTS (sizeof acts / sizeof acts[0])

static void run_case(const gemv_case *g, core_pool *pool) {
    size_t M = g->M, K = g->K;
    float *A = malloc(M * K * sizeof(float)), *x = malloc(K * sizeof(float)), *bias = malloc(M * sizeof(float));
    float *y0 = malloc((M + 1) * sizeof(float)), *y = malloc((M + 1) * sizeof(float)), *ref = malloc(M * sizeof(float));
    for (size_t i = 0; i < M * K; i++) A[i] = test_rng_uniform();
    for (size_t i = 0; i < K; i++) x[i] = test_rng_uniform();
    for (size_t i = 0; i < M; i++) bias[i] = test_rng_uniform();
    for (size_t i = 0; i < M; i++) y0[i] = g->beta == 0 ? NAN : test_rng_uniform(); /* beta == 0 must ignore y */
    y0[M] = SENTINEL;
    kern_epilogue ep = {.bias = g->bias ? bias : NULL, .bias_per_row = g->bias == 1, .act = acts[g->act]};
    const kern_epilogue *epp = g->bias || g->act || test_rng_below(2) ? &ep : NULL;

    kern_packed_a *pa = kern_sgemm_pack_a(0, M, K, A, K);
    CHECK(pa != NULL);
    if (!pa) goto done;
    memcpy(y, y0, (M + 1) * sizeof(float));
    kern_sgemm_packed_a(pool, pa, g->trans_b, 1, x, g->trans_b ? K : 1, g->beta, y, 1, epp);
    memcpy(ref, y0, M * sizeof(float));
    kern_sgemm_ref(0, 0, M, 1, K, 1.0f, A, K, x, 1, g->beta, ref, 1, epp);
    double scale = (double)K + (g->beta != 0 ? fabs(g->beta) : 0) + (g->bias ? 1.0 : 0) + 1e-6;
    double worst = 0;
    size_t bad = 0;
    for (size_t i = 0; i < M; i++) {
        double e = fabs((double)y[i] - (double)ref[i]) / scale;
        if (!(e <= worst)) { /* NaN counts as the worst */
            worst = isnan(e) ? INFINITY : e;
            bad = i;
        }
    }
    if (worst > worst_error) worst_error = worst;
    cases++;
    CHECK_MSG(worst <= 1e-5, "%s: M=%zu K=%zu beta=%g bias=%d act=%zu tb=%d pool=%d: error %.3g at row %zu (%g vs %g)",
              kern_sgemm_name(), M, K, g->beta, g->bias, g->act, g->trans_b, core_pool_size(pool), worst, bad,
              (double)y[bad], (double)ref[bad]);
    CHECK_MSG(y[M] == SENTINEL, "%s: M=%zu K=%zu wrote past y", kern_sgemm_name(), M, K);
    kern_packed_a_free(pa);
done:
    free(A), free(x), free(bias), free(y0), free(y), free(ref);
}

static const float betas[] = {0.0f, 1.0f, 0.5f};

static gemv_case random_case(size_t M, size_t K) {
    gemv_case g = {M, K, betas[test_rng_below(3)], (int)test_rng_below(3), test_rng_below(N_ACTS),
                   (int)test_rng_below(2)};
    return g;
}

/* Every M and K up to 70: all panel remainders of 4, 6 and 12 rows and all step remainders of 4 and 8. */
static void test_small(core_pool *pool) {
    for (size_t M = 1; M <= 70; M++)
        for (size_t K = 1; K <= 70; K++) {
            gemv_case g = random_case(M, K);
            run_case(&g, pool);
        }
}

/* Each option on a shape with ragged panels and steps. */
static void test_all_options(core_pool *pool) {
    for (int bi = 0; bi < 3; bi++)
        for (int bias = 0; bias < 3; bias++)
            for (size_t act = 0; act < N_ACTS; act++)
                for (int tb = 0; tb < 2; tb++) {
                    gemv_case g = {29, 45, betas[bi], bias, act, tb};
                    run_case(&g, pool);
                }
}

/* EfficientNet-B0's squeeze-excite shapes, long K, and products large enough to split over the pool. */
static void test_large(core_pool *pool) {
    static const size_t shapes[][2] = {
        {8, 32},    {32, 8},    {48, 1152}, {1152, 48}, {20, 480},  {480, 20}, {4, 96},   {96, 4},  {28, 672},
        {672, 28},  {1, 1000},  {13, 1027}, {70, 1100}, {1000, 1},  {481, 200}, {1153, 97}, {37, 4099},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        gemv_case g = random_case(shapes[s][0], shapes[s][1]);
        run_case(&g, pool);
    }
}

int main(void) {
    core_pool *pool2 = NULL, *pool3 = NULL;
    CHECK(core_pool_create(2, &pool2) == LENS_OK);
    CHECK(core_pool_create(3, &pool3) == LENS_OK);
    static const kern_gemm_path paths[] = {KERN_GEMM_PATH_GENERIC, KERN_GEMM_PATH_AVX2, KERN_GEMM_PATH_AVX512,
                                           KERN_GEMM_PATH_NEON};
    int ran = 0;
    for (size_t p = 0; p < sizeof paths / sizeof *paths; p++) {
        if (!kern_gemm_force_path(paths[p])) continue;
        ran++;
        test_small(test_rng_below(2) ? pool2 : NULL);
        test_all_options(NULL);
        test_all_options(pool2);
        test_large(NULL);
        test_large(pool2);
        test_large(pool3);
    }
    CHECK(kern_gemm_force_path(KERN_GEMM_PATH_AUTO));
    CHECK(ran > 0);
    printf("%d paths, %ld cases; largest error / (K + |beta| + bias): %.3g\n", ran, cases, worst_error);
    core_pool_free(pool2);
    core_pool_free(pool3);
    return test_finish("test_gemv");
}
