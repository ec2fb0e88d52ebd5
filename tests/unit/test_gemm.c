/* test_gemm.c — checks kern_sgemm, kern_sgemm_packed_a and kern_sgemm_packed_b (with A packed and, where the kernel
 * can, read in place) against the scalar reference on every code path this CPU runs (portable, AVX2, AVX-512, NEON), on
 * edge and model-sized shapes, all transpose combinations, alpha/beta, bias per row and column, every activation,
 * with and without a thread pool; and the reference itself against hand-computed values. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm_internal.h"
#include "test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng_next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rng_uniform(void) { return (float)(rng_next() & 0xffffff) / (float)0x800000 - 1.0f; } /* [-1, 1) */
static size_t rng_below(size_t n) { return rng_next() % n; }

static const float SENTINEL = 12345.0f;

typedef struct gemm_case {
    int trans_a, trans_b;
    size_t M, N, K;
    float alpha, beta;
    int bias; /* 0 none, 1 per row, 2 per column */
    kern_act_kind act;
    size_t pad; /* extra elements at the end of every row of A, B and C */
} gemm_case;

static kern_activation make_act(kern_act_kind kind) {
    kern_activation a = {kind, 0, 0};
    if (kind == KERN_ACT_CLIP) a.alpha = -0.5f, a.beta = 0.75f;
    if (kind == KERN_ACT_LEAKY_RELU) a.alpha = 0.1f;
    if (kind == KERN_ACT_HARD_SIGMOID) a.alpha = 0.2f, a.beta = 0.5f;
    return a;
}

static float *random_matrix(size_t rows, size_t cols, size_t ld) {
    float *m = malloc((rows * ld + 1) * sizeof(float));
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < ld; j++) m[i * ld + j] = j < cols ? rng_uniform() : NAN; /* padding is never read */
    return m;
}

static double max_abs(const float *m, size_t rows, size_t cols, size_t ld) {
    double r = 0;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) r = fmax(r, fabs(m[i * ld + j]));
    return r;
}

static double worst_error; /* largest normalised error seen, for the summary line */

/* Compares C (fast) against the reference on the rows listed; checks the padding columns and guard row too. */
static void compare(const char *what, const gemm_case *g, const float *A, size_t lda, const float *B, size_t ldb,
                    const float *C0, const float *C, size_t ldc, const float *bias, float alpha, const size_t *rows,
                    size_t n_rows) {
    kern_epilogue ep = {.bias = bias, .bias_per_row = g->bias == 1, .act = make_act(g->act)};
    float *ref = malloc((g->N + 1) * sizeof(float));
    double scale = fabs(alpha) * (double)g->K * max_abs(A, g->trans_a ? g->K : g->M, g->trans_a ? g->M : g->K, lda) *
                       max_abs(B, g->trans_b ? g->N : g->K, g->trans_b ? g->K : g->N, ldb) +
                   (g->beta != 0 ? fabs(g->beta) * max_abs(C0, g->M, g->N, ldc) : 0) + (bias ? 1.0 : 0) + 1e-6;
    double worst = 0;
    size_t bad_i = 0, bad_j = 0;
    int padding_ok = 1;
    for (size_t r = 0; r < n_rows; r++) {
        size_t i = rows[r];
        memcpy(ref, C0 + i * ldc, g->N * sizeof(float));
        kern_epilogue ep_row = ep;
        if (bias && g->bias == 1) ep_row.bias = bias + i;
        const float *a_row = g->trans_a ? A + i : A + i * lda;
        kern_sgemm_ref(g->trans_a, g->trans_b, 1, g->N, g->K, alpha, a_row, lda, B, ldb, g->beta, ref, ldc,
                       g->bias || g->act ? &ep_row : NULL);
        for (size_t jj = 0; jj < g->N; jj++) {
            double e = fabs((double)C[i * ldc + jj] - (double)ref[jj]) / scale;
            if (!(e <= worst)) { /* NaN counts as the worst */
                worst = isnan(e) ? INFINITY : e;
                bad_i = i, bad_j = jj;
            }
        }
        for (size_t jj = g->N; jj < ldc; jj++) padding_ok &= C[i * ldc + jj] == SENTINEL;
    }
    for (size_t jj = 0; jj < ldc; jj++) padding_ok &= C[g->M * ldc + jj] == SENTINEL; /* guard row */
    if (worst > worst_error) worst_error = worst;
    CHECK_MSG(worst <= 1e-5, "%s %s: %zux%zux%zu ta=%d tb=%d alpha=%g beta=%g bias=%d act=%d: error %.3g at (%zu,%zu)",
              kern_sgemm_name(), what, g->M, g->N, g->K, g->trans_a, g->trans_b, g->alpha, g->beta, g->bias, g->act,
              worst, bad_i, bad_j);
    CHECK_MSG(padding_ok, "%s %s: %zux%zux%zu wrote outside C", kern_sgemm_name(), what, g->M, g->N, g->K);
    free(ref);
}

/* Runs one case through kern_sgemm, kern_sgemm_packed_a and kern_sgemm_packed_b. Shapes with many rows are checked
 * on a sample of rows so the scalar reference stays cheap. */
static void run_case(const gemm_case *g, core_pool *pool) {
    size_t a_rows = g->trans_a ? g->K : g->M, a_cols = g->trans_a ? g->M : g->K;
    size_t b_rows = g->trans_b ? g->N : g->K, b_cols = g->trans_b ? g->K : g->N;
    size_t lda = a_cols + g->pad, ldb = b_cols + g->pad, ldc = g->N + g->pad;
    float *A = random_matrix(a_rows, a_cols, lda), *B = random_matrix(b_rows, b_cols, ldb);
    size_t c_floats = (g->M + 1) * ldc;
    float *C0 = malloc(c_floats * sizeof(float)), *C = malloc(c_floats * sizeof(float));
    for (size_t i = 0; i < c_floats; i++) {
        size_t row = i / ldc, col = i % ldc;
        /* beta == 0 must ignore C entirely, NaN included */
        C0[i] = row < g->M && col < g->N ? (g->beta == 0 ? NAN : rng_uniform()) : SENTINEL;
    }
    size_t bias_n = g->bias == 1 ? g->M : g->N;
    float *bias = NULL;
    if (g->bias) {
        bias = malloc(bias_n * sizeof(float));
        for (size_t i = 0; i < bias_n; i++) bias[i] = rng_uniform();
    }
    kern_epilogue ep = {.bias = bias, .bias_per_row = g->bias == 1, .act = make_act(g->act)};
    const kern_epilogue *epp = g->bias || g->act || rng_below(2) ? &ep : NULL;

    size_t rows[16], n_rows = 0;
    if (g->M <= 48) {
        for (size_t i = 0; i < g->M && n_rows < 16; i++) rows[n_rows++] = i;
        if (g->M > 16) n_rows = 0;
    }
    if (n_rows == 0) {
        size_t fixed[] = {0, 1, g->M / 2, g->M - 2, g->M - 1};
        for (size_t i = 0; i < 5; i++) rows[n_rows++] = fixed[i];
        while (n_rows < 12) rows[n_rows++] = rng_below(g->M);
    }

    memcpy(C, C0, c_floats * sizeof(float));
    kern_sgemm(pool, g->trans_a, g->trans_b, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta, C, ldc, epp);
    compare("sgemm", g, A, lda, B, ldb, C0, C, ldc, bias, g->alpha, rows, n_rows);

    kern_packed_a *pa = kern_sgemm_pack_a(g->trans_a, g->M, g->K, A, lda);
    CHECK(pa != NULL && kern_packed_a_bytes(pa) >= g->M * g->K * sizeof(float));
    if (pa) {
        memcpy(C, C0, c_floats * sizeof(float));
        kern_sgemm_packed_a(pool, pa, g->trans_b, g->N, B, ldb, g->beta, C, ldc, epp);
        compare("packed_a", g, A, lda, B, ldb, C0, C, ldc, bias, 1.0f, rows, n_rows);
        kern_packed_a_free(pa);
    }

    /* A fused residual: the beta term read from R (its own stride) and C's old contents ignored (NaN); then R == C,
     * in place. C0r holds R's values at C's stride for the reference. */
    {
        size_t ldr = g->N + 5;
        float *R = random_matrix(g->M, g->N, ldr), *C0r = malloc(c_floats * sizeof(float));
        for (size_t i = 0; i < c_floats; i++) {
            size_t row = i / ldc, col = i % ldc;
            C0r[i] = row < g->M && col < g->N ? R[row * ldr + col] : SENTINEL;
            C[i] = row < g->M && col < g->N ? NAN : SENTINEL;
        }
        kern_epilogue ep_r = ep;
        ep_r.residual = R;
        ep_r.ld_residual = ldr;
        kern_sgemm(pool, g->trans_a, g->trans_b, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta, C, ldc, &ep_r);
        compare("sgemm+residual", g, A, lda, B, ldb, C0r, C, ldc, bias, g->alpha, rows, n_rows);
        kern_packed_a *pr = kern_sgemm_pack_a(g->trans_a, g->M, g->K, A, lda);
        if (pr) {
            for (size_t i = 0; i < c_floats; i++) C[i] = i / ldc < g->M && i % ldc < g->N ? NAN : SENTINEL;
            kern_sgemm_packed_a(pool, pr, g->trans_b, g->N, B, ldb, g->beta, C, ldc, &ep_r);
            compare("packed_a+residual", g, A, lda, B, ldb, C0r, C, ldc, bias, 1.0f, rows, n_rows);
            memcpy(C, C0r, c_floats * sizeof(float));
            ep_r.residual = C;
            ep_r.ld_residual = ldc;
            kern_sgemm_packed_a(pool, pr, g->trans_b, g->N, B, ldb, g->beta, C, ldc, &ep_r);
            compare("packed_a+residual in place", g, A, lda, B, ldb, C0r, C, ldc, bias, 1.0f, rows, n_rows);
            kern_packed_a_free(pr);
        }
        free(R);
        free(C0r);
    }

    kern_packed_b *pb = kern_sgemm_pack_b(g->trans_b, g->K, g->N, B, ldb);
    CHECK(pb != NULL && kern_packed_b_bytes(pb) >= g->N * g->K * sizeof(float));
    /* A packed, and (where the kernel can) read in place */
    for (int direct_a = 0; pb && direct_a < 2; direct_a++) {
        kern_gemm_force_direct_a(direct_a);
        memcpy(C, C0, c_floats * sizeof(float));
        kern_sgemm_packed_b(pool, g->trans_a, g->M, A, lda, pb, g->beta, C, ldc, epp);
        compare(direct_a ? "packed_b, A in place" : "packed_b", g, A, lda, B, ldb, C0, C, ldc, bias, 1.0f, rows,
                n_rows);
    }
    kern_gemm_force_direct_a(-1);
    kern_packed_b_free(pb);
    free(A);
    free(B);
    free(C0);
    free(C);
    free(bias);
}

static const float alphas[] = {1.0f, 0.5f, -2.0f}, betas[] = {0.0f, 1.0f, 0.5f};

static gemm_case random_case(size_t M, size_t N, size_t K) {
    gemm_case g = {
        .trans_a = (int)rng_below(2), .trans_b = (int)rng_below(2), .M = M, .N = N, .K = K,
        .alpha = alphas[rng_below(3)], .beta = betas[rng_below(3)], .bias = (int)rng_below(3),
        .act = (kern_act_kind)rng_below(KERN_ACT_SILU + 1), .pad = rng_below(2) ? 3 : 0,
    };
    return g;
}

/* The oracle itself against numbers worked out by hand. */
static void test_reference(void) {
    /* A = [1 2 3; 4 5 6], B = [1 0; 0 1; 1 1]: A B = [4 5; 10 11] */
    const float A[] = {1, 2, 3, 4, 5, 6}, At[] = {1, 4, 2, 5, 3, 6};
    const float B[] = {1, 0, 0, 1, 1, 1}, Bt[] = {1, 0, 1, 0, 1, 1};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            float C[4] = {NAN, NAN, NAN, NAN};
            kern_sgemm_ref(ta, tb, 2, 2, 3, 1.0f, ta ? At : A, ta ? 2 : 3, tb ? Bt : B, tb ? 3 : 2, 0.0f, C, 2, NULL);
            CHECK(C[0] == 4 && C[1] == 5 && C[2] == 10 && C[3] == 11);
        }
    /* alpha 2, beta 0.5 on C = 2, bias per row {-100, 1}, ReLU: [max(0, 8+1-100), 10+1-100 -> 0; 20+1+1, 22+1+1] */
    float C[4] = {2, 2, 2, 2};
    const float bias_row[] = {-100, 1}, bias_col[] = {-20, 1};
    kern_epilogue ep = {.bias = bias_row, .bias_per_row = 1, .act = {KERN_ACT_RELU, 0, 0}};
    kern_sgemm_ref(0, 0, 2, 2, 3, 2.0f, A, 3, B, 2, 0.5f, C, 2, &ep);
    CHECK(C[0] == 0 && C[1] == 0 && C[2] == 22 && C[3] == 24);
    float D[4] = {0, 0, 0, 0};
    kern_epilogue ep_col = {.bias = bias_col, .act = {KERN_ACT_NONE, 0, 0}};
    kern_sgemm_ref(0, 0, 2, 2, 3, 1.0f, A, 3, B, 2, 1.0f, D, 2, &ep_col);
    CHECK(D[0] == -16 && D[1] == 6 && D[2] == -10 && D[3] == 12);
    /* a residual replaces C in the beta term: 0.5 * R + A B, C's NaN never read */
    float E[4] = {NAN, NAN, NAN, NAN};
    const float R[6] = {2, 4, -1, 6, 8, -1}; /* 2 x 2 with a stride of 3 */
    kern_epilogue ep_res = {.residual = R, .ld_residual = 3};
    kern_sgemm_ref(0, 0, 2, 2, 3, 1.0f, A, 3, B, 2, 0.5f, E, 2, &ep_res);
    CHECK(E[0] == 5 && E[1] == 7 && E[2] == 13 && E[3] == 15);
}

/* Contract corners: K == 0, empty outputs, NULL frees, the name. */
static void test_corners(core_pool *pool) {
    float C[6] = {1, 2, 3, 4, 5, 6};
    const float bias[] = {10, 20};
    kern_epilogue ep = {.bias = bias, .bias_per_row = 1, .act = {KERN_ACT_NONE, 0, 0}};
    kern_sgemm(pool, 0, 0, 2, 3, 0, 1.0f, NULL, 0, NULL, 3, 0.5f, C, 3, &ep);
    CHECK(C[0] == 10.5f && C[2] == 11.5f && C[3] == 22.0f && C[5] == 23.0f);
    float Cr[2] = {NAN, NAN};
    const float res[2] = {4, 8};
    kern_epilogue ep_res = {.residual = res, .ld_residual = 2};
    kern_sgemm(pool, 0, 0, 1, 2, 0, 1.0f, NULL, 0, NULL, 2, 0.5f, Cr, 2, &ep_res);
    CHECK(Cr[0] == 2 && Cr[1] == 4);
    float D[2] = {NAN, NAN};
    kern_sgemm(pool, 0, 0, 1, 2, 0, 1.0f, NULL, 0, NULL, 2, 0.0f, D, 2, NULL);
    CHECK(D[0] == 0 && D[1] == 0);
    float E[1] = {7};
    kern_sgemm(pool, 0, 0, 0, 1, 5, 1.0f, NULL, 5, NULL, 1, 0.0f, E, 1, NULL);
    kern_sgemm(pool, 0, 0, 1, 0, 5, 1.0f, NULL, 5, NULL, 1, 0.0f, E, 1, NULL);
    CHECK(E[0] == 7);
    kern_packed_a_free(NULL);
    kern_packed_b_free(NULL);
    CHECK(kern_packed_a_bytes(NULL) == 0 && kern_packed_b_bytes(NULL) == 0);
    kern_packed_a *pa = kern_sgemm_pack_a(0, 3, 0, NULL, 0);
    CHECK(pa != NULL);
    float F[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    if (pa) kern_sgemm_packed_a(pool, pa, 0, 2, NULL, 2, 0.0f, F, 2, NULL);
    CHECK(F[0] == 0 && F[5] == 0);
    kern_packed_a_free(pa);
    kern_packed_a *huge = kern_sgemm_pack_a(0, SIZE_MAX / 2, 4, NULL, 4); /* size overflows: refused, not UB */
    CHECK(huge == NULL);
}

/* Every transpose, alpha, beta, bias and activation at a shape with edges in M, N and K. */
static void test_all_options(core_pool *pool) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int ai = 0; ai < 3; ai++)
                for (int bi = 0; bi < 3; bi++)
                    for (int bias = 0; bias < 3; bias++)
                        for (int act = 0; act <= KERN_ACT_SILU; act++) {
                            gemm_case g = {ta, tb, 13, 37, 19, alphas[ai], betas[bi], bias, (kern_act_kind)act, 1};
                            run_case(&g, pool);
                        }
}

static void test_edge_shapes(core_pool *pools[3]) {
    static const size_t sizes[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65, 127};
    const size_t n = sizeof sizes / sizeof sizes[0];
    for (size_t mi = 0; mi < n; mi++)
        for (size_t ni = 0; ni < n; ni++)
            for (size_t ki = 0; ki < n; ki++) {
                gemm_case g = random_case(sizes[mi], sizes[ni], sizes[ki]);
                run_case(&g, pools[rng_below(3)]);
            }
    /* K across cache blocks (KC = 256; 768 with B packed), M and N across MC and NC */
    static const size_t big_k[] = {255, 256, 257, 600, 767, 768, 769};
    for (size_t ki = 0; ki < 7; ki++)
        for (int r = 0; r < 6; r++) {
            gemm_case g = random_case(sizes[rng_below(n)], sizes[rng_below(n)], big_k[ki]);
            run_case(&g, pools[rng_below(3)]);
        }
}

/* Every edge tile of a kernel with an mr x nr tile: each row count 1..mr and column count 1..nr, alone and after
 * full tiles, over K of one step, an odd few and a full unrolled run. */
static void test_tile_edges(core_pool *pool, size_t mr, size_t nr) {
    static const size_t ks[] = {1, 3, 8, 29};
    for (size_t m = 1; m <= 2 * mr + 1; m++)
        for (size_t n = 1; n <= 2 * nr + 1; n++) {
            gemm_case g = random_case(m, n, ks[rng_below(4)]);
            run_case(&g, pool);
        }
}

/* Shapes from ResNet-50 and ViT-B, checked on sampled rows; and MobileNetV2's 16 -> 96 1x1 conv on 112x112 and a
 * ragged one like it (short K, wide C: blocks of one micro-panel of rows). */
static void test_model_shapes(core_pool *pool, size_t max_macs) {
    static const size_t shapes[][3] = {
        {256, 3136, 576}, {1000, 1, 1280}, {1, 1000, 2048}, {197, 768, 768}, {300, 1100, 520},
        {145, 513, 257},  {2048, 49, 512}, {512, 49, 4608}, {64, 3136, 147}, {4, 1000, 2048},
        {96, 12544, 16},  {41, 4133, 11}, {1030, 70, 300}, {197, 768, 3072}, {197, 3072, 768}, {29, 700, 1100},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        if (shapes[s][0] * shapes[s][1] * shapes[s][2] > max_macs) continue;
        gemm_case g = random_case(shapes[s][0], shapes[s][1], shapes[s][2]);
        run_case(&g, pool);
    }
}

/* A pool far larger than the work: many threads get no task, the split must still cover C exactly once. */
static void test_many_threads(core_pool *pool) {
    static const size_t shapes[][3] = {{1, 1000, 2048}, {2048, 49, 512}, {13, 37, 19}, {300, 1100, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        gemm_case g = random_case(shapes[s][0], shapes[s][1], shapes[s][2]);
        run_case(&g, pool);
    }
}

/* Packed matrices keep the kernel they were packed for even after the active path changes. */
static void test_packed_keeps_path(core_pool *pool) {
    if (!kern_gemm_force_path(KERN_GEMM_PATH_GENERIC)) return;
    size_t M = 29, N = 45, K = 70;
    float *A = random_matrix(M, K, K), *B = random_matrix(K, N, N);
    float *C = malloc(M * N * sizeof(float)), *R = malloc(M * N * sizeof(float));
    kern_sgemm_ref(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, R, N, NULL);
    kern_packed_a *pa = kern_sgemm_pack_a(0, M, K, A, K);
    kern_packed_b *pb = kern_sgemm_pack_b(0, K, N, B, N);
    kern_gemm_force_path(KERN_GEMM_PATH_AUTO);
    double err_a = 0, err_b = 0;
    if (pa && pb) {
        kern_sgemm_packed_a(pool, pa, 0, N, B, N, 0.0f, C, N, NULL);
        for (size_t i = 0; i < M * N; i++) err_a = fmax(err_a, fabs(C[i] - R[i]));
        kern_sgemm_packed_b(pool, 0, M, A, K, pb, 0.0f, C, N, NULL);
        for (size_t i = 0; i < M * N; i++) err_b = fmax(err_b, fabs(C[i] - R[i]));
    }
    CHECK(pa && pb);
    CHECK_MSG(err_a <= 1e-5 * K && err_b <= 1e-5 * K, "errors %g %g", err_a, err_b);
    kern_packed_a_free(pa);
    kern_packed_b_free(pb);
    free(A), free(B), free(C), free(R);
}

/* Without a workspace (out of memory) every entry point still computes the right thing, on the stack. */
static void test_no_workspace(core_pool *pools[3]) {
    static const size_t shapes[][3] = {{13, 37, 19}, {145, 513, 257}, {64, 3136, 64}, {300, 70, 600}, {1, 1000, 64}};
    kern_gemm_refuse_workspace(true);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        gemm_case g = random_case(shapes[s][0], shapes[s][1], shapes[s][2]);
        run_case(&g, pools[s % 3]);
    }
    kern_gemm_refuse_workspace(false);
}

int main(void) {
    test_reference();
    core_pool *pool2 = NULL, *pool5 = NULL, *pool64 = NULL;
    CHECK(core_pool_create(2, &pool2) == LENS_OK);
    CHECK(core_pool_create(5, &pool5) == LENS_OK);
    CHECK(core_pool_create(64, &pool64) == LENS_OK);
    core_pool *pools[3] = {NULL, pool2, pool5};

    static const struct {
        kern_gemm_path path;
        const char *name;
        size_t mr, nr; /* the micro-kernel's tile (the portable one: gemm.c's GENERIC_MR x GENERIC_NR) */
    } paths[] = {{KERN_GEMM_PATH_GENERIC, "generic", 4, 8},
                 {KERN_GEMM_PATH_AVX2, "avx2", KERN_GEMM_AVX2_MR, KERN_GEMM_AVX2_NR},
                 {KERN_GEMM_PATH_AVX512, "avx512", KERN_GEMM_AVX512_MR, KERN_GEMM_AVX512_NR},
                 {KERN_GEMM_PATH_NEON, "neon", KERN_GEMM_NEON_MR, KERN_GEMM_NEON_NR}};
    const char *best = NULL;
    const int emulated = getenv("LENS_TEST_EMULATED") != NULL; /* qemu-user: the GEMM at ~0.07 GMAC/s */
    for (size_t p = 0; p < sizeof paths / sizeof *paths; p++) {
        if (!kern_gemm_force_path(paths[p].path)) continue;
        best = paths[p].name;
        CHECK(strcmp(kern_sgemm_name(), paths[p].name) == 0);
        test_corners(NULL);
        test_corners(pool2);
        test_all_options(rng_below(2) ? pool2 : NULL);
        test_edge_shapes(pools);
        test_tile_edges(pool2, paths[p].mr, paths[p].nr);
        /* the portable path on the small ones only; under an emulator (the arm64 cross build's tests) every path */
        size_t max_macs = emulated ? 4000000 : paths[p].path == KERN_GEMM_PATH_GENERIC ? 50000000 : SIZE_MAX;
        test_model_shapes(NULL, max_macs);
        test_model_shapes(pool2, max_macs);
    }
    CHECK(kern_gemm_force_path(KERN_GEMM_PATH_AUTO));
    CHECK(best != NULL && strcmp(kern_sgemm_name(), best) == 0);
    test_packed_keeps_path(pool2);
    test_many_threads(pool64);
    test_no_workspace(pools);
    printf("paths up to %s; largest error / (K max|a| max|b|): %.3g\n", best ? best : "none", worst_error);
    core_pool_free(pool2);
    core_pool_free(pool5);
    core_pool_free(pool64);
    return test_finish("test_gemm");
}
