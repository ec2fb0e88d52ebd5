/* test_winograd.c — the Winograd F(4x4, 3x3) and F(2x2, 3x3) kernel (kern_winograd_conv2d) against the scalar reference
 * kern_conv2d_ref on random shapes: H and W 1..17 (odd, not multiples of the 4x4 tile), pads 0..2 (asymmetric
 * too), channels 1..70 (not multiples of the micro-tile; fixed cases up to 130), batch 1..3, with and without bias,
 * residual and fused activations, on one thread and on pools of 2, 3 and 5, with each micro-kernel (AVX-512 and
 * AVX2 transforms differ too; the AVX-512 ones pack four tile rows of narrow images, up to 4 tiles wide, per
 * vector). Also the Conv op when its weights were prepared at one batch size (choosing one tile, or im2col) and it
 * runs at another.
 *
 * Error bound: Winograd F(4x4, 3x3) with points 0, ±1, ±2, infinity scales inputs and weights by up to ~25 in the
 * transforms, so its fp32 error is a few times that of a direct sum. With x, w uniform in [-1, 1] we require
 * |y - ref| <= 4e-5 * (1 + sqrt(9 * Cin)) per output: ~4x the worst error seen (printed), far below what a wrong tap or
 * transform coefficient gives. */
#include <string.h>

#include "kernels/conv_ref.h"
#include "kernels/winograd.h"
#include "ops/ops.h"
#include "test.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint32_t next_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}
static float frand(void) { return (float)(next_u32() >> 8) * (2.0f / 16777216.0f) - 1.0f; }
static int irand(int lo, int hi) { return lo + (int)(next_u32() % (uint32_t)(hi - lo + 1)); }
static float *random_array(size_t n) {
    float *p = malloc(n * sizeof *p + 4);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

static core_pool *pool2, *pool3, *pool5;
static int tile = 4; /* the output tile under test */
static double worst_ratio;

/* One random-free case: runs the kernel and compares with the reference. */
static void check_case(int64_t n, int64_t c, int64_t h, int64_t w, int64_t m, int64_t pt, int64_t pl, int64_t pb,
                       int64_t pr, int bias, int residual, kern_act_kind act_kind, int threads) {
    kern_conv2d_params p = {n, c, h, w, m, h + pt + pb - 2, w + pl + pr - 2, 3, 3, 1, 1, 1, 1, 1, pt, pl};
    if (p.out_h < 1 || p.out_w < 1) return;
    size_t nx = (size_t)(n * c * h * w), nw = (size_t)(m * c * 9), ny = (size_t)(n * m * p.out_h * p.out_w);
    float *x = random_array(nx), *wt = random_array(nw), *b = random_array((size_t)m), *r = random_array(ny);
    float *y = random_array(ny), *yref = malloc(ny * sizeof *yref);
    kern_activation act = {act_kind, 0.0f, 0.5f};
    kern_winograd_weights *pw = kern_winograd_pack(wt, m, c, tile);
    CHECK(pw != NULL);
    size_t slot = kern_winograd_slot_bytes(&p, tile);
    CHECK(slot > 0 && slot % 64 == 0);
    /* threads 1 and 2: no pool, the pool of two; 3: the pool of two with a single slot (scratch planned for a
     * smaller pool); 4 and 5: pools of three and five threads with a slot each */
    core_pool *pool = threads == 1 ? NULL : threads == 4 ? pool3 : threads == 5 ? pool5 : pool2;
    size_t slots = threads == 3 ? 1 : threads == 4 ? 3 : (size_t)threads;
    void *scratch = core_aligned_alloc(slot * slots);
    if (pw && scratch) {
        kern_winograd_conv2d(pool, pw, &p, x, bias ? b : NULL, residual ? r : NULL, &act, y, scratch, slot, slots);
        kern_conv2d_ref(&p, x, wt, bias ? b : NULL, residual ? r : NULL, &act, yref);
        double tol = 4e-5 * (1.0 + sqrt(9.0 * (double)c)), worst = 0;
        size_t bad = 0;
        for (size_t i = 0; i < ny; i++) {
            double e = fabs((double)y[i] - (double)yref[i]);
            if (!(e <= tol)) bad++;
            if (e / tol > worst || e != e) worst = e != e ? 1e30 : e / tol;
        }
        if (worst > worst_ratio) worst_ratio = worst;
        CHECK_MSG(bad == 0, "n%lld c%lld %lldx%lld m%lld pads %lld,%lld,%lld,%lld: %zu of %zu outputs off, worst %.3g x tol",
                  (long long)n, (long long)c, (long long)h, (long long)w, (long long)m, (long long)pt, (long long)pl,
                  (long long)pb, (long long)pr, bad, ny, worst);
    }
    core_aligned_free(scratch);
    kern_winograd_free(pw);
    free(x), free(wt), free(b), free(r), free(y), free(yref);
}

/* The residual may be the output buffer itself (the planner reuses it in place). */
static void check_in_place_residual(void) {
    kern_conv2d_params p = {1, 20, 9, 11, 18, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    size_t nx = 20 * 9 * 11, ny = 18 * 9 * 11;
    float *x = random_array(nx), *wt = random_array(18 * 20 * 9), *y = random_array(ny);
    float *yref = malloc(ny * sizeof *yref), *r = malloc(ny * sizeof *r);
    memcpy(r, y, ny * sizeof *r);
    kern_winograd_weights *pw = kern_winograd_pack(wt, 18, 20, tile);
    size_t slot = kern_winograd_slot_bytes(&p, tile);
    void *scratch = core_aligned_alloc(slot);
    kern_winograd_conv2d(NULL, pw, &p, x, NULL, y, NULL, y, scratch, slot, 1);
    kern_conv2d_ref(&p, x, wt, NULL, r, NULL, yref);
    double worst = 0;
    for (size_t i = 0; i < ny; i++) worst = fmax(worst, fabs((double)y[i] - (double)yref[i]));
    CHECK_MSG(worst < 1e-4, "in-place residual: worst %g", worst);
    core_aligned_free(scratch);
    kern_winograd_free(pw);
    free(x), free(wt), free(y), free(yref), free(r);
}

/* A wrong kernel must fail the bound: perturb one weight after packing the original. */
static void check_bound_catches_errors(void) {
    kern_conv2d_params p = {1, 8, 8, 8, 8, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    float *x = random_array(8 * 64), *wt = random_array(8 * 8 * 9), *y = malloc(8 * 64 * sizeof *y);
    float *yref = malloc(8 * 64 * sizeof *yref);
    kern_winograd_weights *pw = kern_winograd_pack(wt, 8, 8, tile);
    wt[5] += 1e-3f;
    size_t slot = kern_winograd_slot_bytes(&p, tile);
    void *scratch = core_aligned_alloc(slot);
    kern_winograd_conv2d(NULL, pw, &p, x, NULL, NULL, NULL, y, scratch, slot, 1);
    kern_conv2d_ref(&p, x, wt, NULL, NULL, NULL, yref);
    double worst = 0, tol = 4e-5 * (1.0 + sqrt(9.0 * 8));
    for (size_t i = 0; i < 8 * 64; i++) worst = fmax(worst, fabs((double)y[i] - (double)yref[i]));
    CHECK_MSG(worst > tol, "a perturbed weight went unnoticed (worst %g, tol %g)", worst, tol);
    core_aligned_free(scratch);
    kern_winograd_free(pw);
    free(x), free(wt), free(y), free(yref);
}

/* The Conv op prepares its weights on the first plan only: prepare at batch n_prepare, run at n_run (which may
 * prefer another tile, or im2col), with a fused ReLU, on the pool. */
static void check_op_batch_change(int64_t hw, int64_t c, int64_t m, int64_t n_prepare, int64_t n_run) {
    int64_t nmax = n_prepare > n_run ? n_prepare : n_run;
    size_t nx = (size_t)(nmax * c * hw * hw), ny = (size_t)(n_run * m * hw * hw);
    float *x = random_array(nx), *w = random_array((size_t)(m * c * 9)), *b = random_array((size_t)m);
    float *y = random_array((size_t)(nmax * m * hw * hw)), *yref = malloc(ny * sizeof *yref);
    tensor tx = {LENS_DTYPE_FLOAT32, 4, {n_prepare, c, hw, hw}, x};
    tensor tw = {LENS_DTYPE_FLOAT32, 4, {m, c, 3, 3}, w};
    tensor tb = {LENS_DTYPE_FLOAT32, 1, {m}, b};
    tensor ty = {0};
    const tensor *ins[3] = {&tx, &tw, &tb};
    tensor *outs[1] = {&ty};
    static const int64_t pads[4] = {1, 1, 1, 1};
    op_attr attrs[2] = {{.name = "pads", .type = OP_ATTR_INTS, .ints = pads, .count = 4},
                        {.name = "lens.activation", .type = OP_ATTR_STRING, .s = "Relu"}};
    op_node node = {"conv", "Conv", "", 13, 2, attrs};
    const op_def *def = ops_lookup("", "Conv");
    op_call call = {.node = &node, .n_inputs = 3, .inputs = ins, .n_outputs = 1, .outputs = outs, .pool = pool2};
    void *state = NULL;
    CHECK(def && def->infer(&call) == LENS_OK && def->prepare(&call, &state) == LENS_OK);
    tx.dims[0] = n_run;
    CHECK(def->infer(&call) == LENS_OK);
    call.state = state;
    call.scratch = core_aligned_alloc(call.scratch_bytes);
    ty.data = y;
    lens_status st = def->run(&call);
    CHECK_MSG(st == LENS_OK, "run: %s", core_last_error());
    def->release(state);
    core_aligned_free(call.scratch);
    kern_conv2d_params p = {n_run, c, hw, hw, m, hw, hw, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    kern_activation relu = {KERN_ACT_RELU, 0, 0};
    kern_conv2d_ref(&p, x, w, b, NULL, &relu, yref);
    double worst = 0, tol = 4e-5 * (1.0 + sqrt(9.0 * (double)c));
    for (size_t i = 0; i < ny; i++) worst = fmax(worst, fabs((double)y[i] - (double)yref[i]));
    CHECK_MSG(worst <= tol, "Conv %lldx%lld c%lld m%lld prepared at batch %lld, run at %lld: worst %g", (long long)hw,
              (long long)hw, (long long)c, (long long)m, (long long)n_prepare, (long long)n_run, worst);
    free(x), free(w), free(b), free(y), free(yref);
}

/* Several blocks of tiles, dealt to pools of 2, 3 and 5 threads: block counts that do and do not divide among the
 * threads (rounded up to a multiple, dealt in contiguous runs, or split over output channels too), output channels
 * not a multiple of the micro-tile, fewer output panels than threads, a last block shorter than the others, blocks
 * across images, packed rows of narrow images. */
static void multi_block_cases(void) {
    check_case(1, 64, 56, 56, 64, 1, 1, 1, 1, 1, 1, KERN_ACT_RELU, 4);
    check_case(1, 64, 56, 56, 64, 1, 1, 1, 1, 1, 0, KERN_ACT_RELU, 2);
    check_case(1, 100, 40, 44, 37, 1, 1, 1, 1, 1, 0, KERN_ACT_NONE, 2);
    check_case(1, 100, 40, 44, 37, 0, 2, 1, 0, 0, 1, KERN_ACT_CLIP, 5);
    check_case(1, 3, 70, 69, 130, 1, 1, 1, 1, 1, 1, KERN_ACT_RELU, 4);
    check_case(1, 130, 29, 27, 13, 1, 1, 1, 1, 1, 1, KERN_ACT_SIGMOID, 5);
    check_case(2, 48, 30, 30, 50, 1, 1, 1, 1, 1, 1, KERN_ACT_RELU, 5);
    check_case(4, 64, 12, 12, 64, 1, 1, 1, 1, 1, 1, KERN_ACT_RELU, 4);
}

static void random_cases(int count) {
    static const kern_act_kind acts[] = {KERN_ACT_NONE, KERN_ACT_RELU, KERN_ACT_CLIP, KERN_ACT_SIGMOID};
    for (int i = 0; i < count; i++) {
        int64_t h = irand(1, 17), w = irand(1, 17);
        int64_t pads[4] = {irand(0, 2), irand(0, 2), irand(0, 2), irand(0, 2)};
        if (i % 3 == 0) pads[2] = pads[0], pads[3] = pads[1];
        check_case(irand(1, 3), irand(1, 70), h, w, irand(1, 70), pads[0], pads[1], pads[2], pads[3], i % 2,
                   i % 3 == 1, acts[i % 4], 1 + i % 5);
    }
}

int main(void) {
    CHECK(core_pool_create(2, &pool2) == LENS_OK);
    CHECK(core_pool_create(3, &pool3) == LENS_OK);
    CHECK(core_pool_create(5, &pool5) == LENS_OK);
    int isas_run = 0;
    for (int run = 0; run < 4; run++) {
        int isa = 1 + run / 2;
        tile = run % 2 ? 2 : 4;
        if (!kern_winograd_force_isa(isa)) continue;
        isas_run++;
        /* fixed edges: 1x1 image with pad 1, exact multiples of the tile, ResNet-like shapes, wide rows */
        check_case(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, KERN_ACT_NONE, 1);
        check_case(1, 16, 8, 8, 16, 1, 1, 1, 1, 1, 1, KERN_ACT_RELU, 2);
        check_case(1, 64, 56, 56, 64, 1, 1, 1, 1, 1, 0, KERN_ACT_RELU, 2);
        check_case(2, 33, 14, 14, 40, 1, 1, 1, 1, 1, 1, KERN_ACT_RELU, 2);
        check_case(1, 70, 7, 7, 70, 1, 1, 1, 1, 1, 0, KERN_ACT_NONE, 1);
        check_case(1, 5, 3, 77, 7, 0, 2, 2, 0, 1, 1, KERN_ACT_CLIP, 1);
        check_case(3, 3, 5, 70, 13, 2, 1, 0, 2, 0, 0, KERN_ACT_HARD_SWISH, 2);
        /* rows of 5..8 tiles, packed groups across images (batch 3, rows of <= 4 tiles) */
        check_case(1, 20, 28, 28, 17, 1, 1, 1, 1, 1, 1, KERN_ACT_RELU, 1);
        check_case(3, 9, 9, 32, 11, 1, 1, 1, 1, 1, 1, KERN_ACT_SIGMOID, 2);
        check_case(3, 17, 13, 19, 21, 0, 2, 1, 0, 0, 1, KERN_ACT_CLIP, 3);
        check_case(3, 21, 14, 14, 35, 1, 1, 1, 1, 1, 1, KERN_ACT_RELU, 2);
        check_case(2, 19, 7, 7, 40, 1, 1, 1, 1, 0, 1, KERN_ACT_HARD_SWISH, 1);
        /* transformed weights over 2 MB (huge pages; too large to stay in L2, so blocks get twice the budget), two
         * images on the pool; a wide image with asymmetric pads and a residual, where the prefetches clip */
        check_case(2, 128, 20, 20, 130, 1, 1, 1, 1, 1, 1, KERN_ACT_RELU, 2);
        check_case(1, 40, 9, 61, 36, 2, 0, 1, 2, 1, 1, KERN_ACT_NONE, 1);
        multi_block_cases();
        random_cases(120);
        check_in_place_residual();
        check_bound_catches_errors();
    }
    kern_winograd_force_isa(0);
    check_op_batch_change(7, 64, 64, 1, 4);  /* F(2x2) prepared, F(4x4) preferred at the run */
    check_op_batch_change(7, 64, 64, 4, 1);  /* and the other way */
    check_op_batch_change(5, 16, 24, 4, 1);  /* Winograd prepared, im2col preferred at the run */
    check_op_batch_change(5, 16, 24, 1, 4);  /* im2col prepared, Winograd preferred at the run */
    check_op_batch_change(56, 64, 64, 1, 1); /* a ResNet-50 layer1 conv */
    printf("worst error / tolerance: %.3f (over %d micro-kernel and tile pairs)\n", worst_ratio, isas_run);
    core_pool_free(pool2);
    core_pool_free(pool3);
    core_pool_free(pool5);
    return test_finish("test_winograd");
}
