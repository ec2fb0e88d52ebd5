/* test_conv.c — the Conv op (through its op_def: infer, prepare, run) against the scalar reference kern_conv2d_ref on
 * many geometries: pointwise, im2col + GEMM, grouped, depthwise, dilated, padded (explicit and auto_pad), with bias,
 * fused activations and residual, with and without prepared weights and a thread pool. */
#include <math.h>
#include <string.h>

#include "kernels/conv.h"
#include "kernels/conv_ref.h"
#include "kernels/gemm_internal.h"
#include "ops/ops.h"
#include "test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static float *random_array(size_t n) {
    float *p = malloc(n * sizeof *p + 4);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

typedef struct conv_case {
    int64_t n, c, h, w, m, kh, kw, group, sh, sw, dh, dw;
    int64_t pads[4]; /* top, left, bottom, right */
    const char *auto_pad;
    int bias, residual;
    const char *act; /* NULL, "Relu", "Clip", "HardSwish" */
} conv_case;

/* Set: run_case adds lens.input_scale, X's channels scaled per image by a 5th input [n, c, 1, 1] first (2: one
 * [1, c, 1, 1] scale for every image). */
static int with_scale;

typedef struct attr_list {
    op_attr a[16];
    int n;
    int64_t ints[4][4];
} attr_list;

static void add_ints(attr_list *l, const char *name, int slot, const int64_t *v, size_t count) {
    memcpy(l->ints[slot], v, count * sizeof *v);
    l->a[l->n++] = (op_attr){.name = name, .type = OP_ATTR_INTS, .ints = l->ints[slot], .count = count};
}

static core_pool *pool2;

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* Runs the op on one case; returns the max error relative to the magnitude bound (<= 1 passes). */
static void run_case(const conv_case *k, int use_pool, int use_prepare) {
    int64_t cin_g = k->c / k->group;
    /* Expected geometry, computed independently of the op. */
    int64_t in[2] = {k->h, k->w}, kk[2] = {k->kh, k->kw}, s[2] = {k->sh, k->sw}, d[2] = {k->dh, k->dw};
    int64_t pb[2] = {k->pads[0], k->pads[1]}, pe[2] = {k->pads[2], k->pads[3]}, out[2];
    for (int i = 0; i < 2; i++) {
        int64_t span = (kk[i] - 1) * d[i] + 1;
        if (k->auto_pad && strcmp(k->auto_pad, "VALID")) {
            out[i] = (in[i] + s[i] - 1) / s[i];
            int64_t total = (out[i] - 1) * s[i] + span - in[i];
            if (total < 0) total = 0;
            pb[i] = !strcmp(k->auto_pad, "SAME_UPPER") ? total / 2 : (total + 1) / 2;
        } else {
            if (k->auto_pad) pb[i] = pe[i] = 0;
            out[i] = (in[i] + pb[i] + pe[i] - span) / s[i] + 1;
        }
    }
    size_t nx = (size_t)(k->n * k->c * k->h * k->w), nw = (size_t)(k->m * cin_g * k->kh * k->kw);
    size_t ny = (size_t)(k->n * k->m * out[0] * out[1]);
    float *x = random_array(nx), *w = random_array(nw), *b = random_array((size_t)k->m), *r = random_array(ny);
    float *y = malloc(ny * sizeof *y + 4), *yref = malloc(ny * sizeof *y + 4), *mag = malloc(ny * sizeof *y + 4);
    float *ax = malloc(nx * sizeof *x), *aw = malloc(nw * sizeof *w);
    float *sc = random_array((size_t)(k->n * k->c)), *xs = malloc(nx * sizeof *x); /* xs: x as scaled */
    size_t per_image = (size_t)(k->c * k->h * k->w);
    for (size_t i = 0; i < nx; i++)
        xs[i] = !with_scale       ? x[i]
                : with_scale == 2 ? x[i] * sc[i % per_image / (size_t)(k->h * k->w)]
                                  : x[i] * sc[i / (size_t)(k->h * k->w)];
    for (size_t i = 0; i < nx; i++) ax[i] = fabsf(xs[i]);
    for (size_t i = 0; i < nw; i++) aw[i] = fabsf(w[i]);
    for (size_t i = 0; i < ny; i++) y[i] = NAN;

    tensor tx = {LENS_DTYPE_FLOAT32, 4, {k->n, k->c, k->h, k->w}, x};
    tensor tw = {LENS_DTYPE_FLOAT32, 4, {k->m, cin_g, k->kh, k->kw}, w};
    tensor tb = {LENS_DTYPE_FLOAT32, 1, {k->m}, b};
    tensor tr = {LENS_DTYPE_FLOAT32, 4, {k->n, k->m, out[0], out[1]}, r};
    tensor ty = {0};
    tensor ts = {LENS_DTYPE_FLOAT32, 4, {with_scale == 2 ? 1 : k->n, k->c, 1, 1}, sc};
    const tensor *ins[5] = {&tx, &tw, k->bias ? &tb : NULL, k->residual ? &tr : NULL, &ts};
    tensor *outs[1] = {&ty};

    attr_list al = {.n = 0};
    int64_t v[4];
    if (k->kh != 3 || k->kw != 3 || k->c > 8) { /* sometimes leave kernel_shape for the op to infer from W */
        v[0] = k->kh, v[1] = k->kw;
        add_ints(&al, "kernel_shape", 0, v, 2);
    }
    v[0] = k->sh, v[1] = k->sw;
    add_ints(&al, "strides", 1, v, 2);
    if (k->dh != 1 || k->dw != 1) {
        v[0] = k->dh, v[1] = k->dw;
        add_ints(&al, "dilations", 2, v, 2);
    }
    if (k->auto_pad) al.a[al.n++] = (op_attr){.name = "auto_pad", .type = OP_ATTR_STRING, .s = k->auto_pad};
    else add_ints(&al, "pads", 3, k->pads, 4);
    al.a[al.n++] = (op_attr){.name = "group", .type = OP_ATTR_INT, .i = k->group};
    kern_activation act = {KERN_ACT_NONE, 0, 0};
    if (k->act) {
        al.a[al.n++] = (op_attr){.name = "lens.activation", .type = OP_ATTR_STRING, .s = k->act};
        if (!strcmp(k->act, "Relu")) act.kind = KERN_ACT_RELU;
        if (!strcmp(k->act, "HardSwish")) act.kind = KERN_ACT_HARD_SWISH;
        if (!strcmp(k->act, "Clip")) {
            act = (kern_activation){KERN_ACT_CLIP, 0, 6};
            al.a[al.n++] = (op_attr){.name = "lens.activation_alpha", .type = OP_ATTR_FLOAT, .f = 0};
            al.a[al.n++] = (op_attr){.name = "lens.activation_beta", .type = OP_ATTR_FLOAT, .f = 6};
        }
    }
    if (k->residual) al.a[al.n++] = (op_attr){.name = "lens.residual", .type = OP_ATTR_INT, .i = 1};
    if (with_scale) al.a[al.n++] = (op_attr){.name = "lens.input_scale", .type = OP_ATTR_INT, .i = 1};
    op_node node = {"conv", "Conv", "", 13, al.n, al.a};
    const op_def *def = ops_lookup("", "Conv");
    CHECK(def != NULL);
    if (!def) return;
    int n_in = with_scale ? 5 : k->residual ? 4 : 3;
    op_call call = {&node, n_in, ins, 1, outs, use_pool ? pool2 : NULL, NULL, NULL, 0, 0};
    lens_status st = def->infer(&call);
    CHECK_MSG(st == LENS_OK, "infer: %s", core_last_error());
    CHECK(ty.rank == 4 && ty.dims[0] == k->n && ty.dims[1] == k->m && ty.dims[2] == out[0] && ty.dims[3] == out[1]);
    CHECK(call.scratch_bytes <= (size_t)8 << 20);
    void *state = NULL;
    if (use_prepare && def->prepare) {
        st = def->prepare(&call, &state);
        CHECK_MSG(st == LENS_OK, "prepare: %s", core_last_error());
    }
    call.state = state;
    call.scratch = call.scratch_bytes ? core_aligned_alloc(call.scratch_bytes) : NULL;
    kern_conv2d_params p = {k->n, k->c, k->h, k->w, k->m, out[0], out[1], k->kh, k->kw, k->group,
                            k->sh, k->sw, k->dh, k->dw, pb[0], pb[1]};
    kern_conv2d_ref(&p, xs, w, k->bias ? b : NULL, k->residual ? r : NULL, &act, yref);
    kern_conv2d_ref(&p, ax, aw, NULL, NULL, NULL, mag);
    /* With a residual, a second run writes the output over it, as the planner lets it (op_def.inplace_input) */
    CHECK(def->inplace_input && def->inplace_input(&call) == (k->residual ? 3 : -1));
    for (int in_place = 0; in_place <= k->residual; in_place++) {
        float *rin = r;
        if (in_place) {
            memcpy(y, r, ny * sizeof *y);
            rin = y;
        }
        tr.data = rin;
        ty.data = y;
        st = def->run(&call);
        CHECK_MSG(st == LENS_OK, "run: %s", core_last_error());
        double worst = 0;
        size_t worst_i = 0;
        for (size_t i = 0; i < ny; i++) {
            double bound = mag[i] + (k->bias ? fabsf(b[i / (size_t)(out[0] * out[1]) % (size_t)k->m]) : 0) +
                           (k->residual ? fabsf(r[i]) : 0) + 1e-6;
            double e = fabs((double)y[i] - yref[i]) / bound;
            if (!(e <= worst)) worst = e, worst_i = i; /* NaN lands here too */
        }
        CHECK_MSG(worst <= 2e-5,
                  "case n%lld c%lld %lldx%lld m%lld k%lldx%lld g%lld s%lld,%lld d%lld,%lld pool %d prep %d "
                  "in place %d: rel err %g at %zu (%g vs %g)",
                  (long long)k->n, (long long)k->c, (long long)k->h, (long long)k->w, (long long)k->m,
                  (long long)k->kh, (long long)k->kw, (long long)k->group, (long long)k->sh, (long long)k->sw,
                  (long long)k->dh, (long long)k->dw, use_pool, use_prepare, in_place, worst, worst_i, y[worst_i],
                  yref[worst_i]);
        for (size_t i = 0; i < ny; i++) y[i] = NAN;
    }
    if (def->release) def->release(state);
    core_aligned_free(call.scratch);
    free(x), free(w), free(b), free(r), free(y), free(yref), free(mag), free(ax), free(aw), free(sc), free(xs);
}

/* The kernels on their own: kern_dwconv2d against the reference on one plane, kern_im2col against direct indexing,
 * over many small geometries (every border case), for the build this CPU runs. */
static void test_kernels(const char *isa) {
    int failures = 0, cases = 0;
    for (int64_t k = 1; k <= 7; k++)
        for (int64_t s = 1; s <= 3; s++)
            for (int64_t d = 1; d <= 2; d++)
                for (int64_t p = 0; p <= k / 2 + 1 && p < 4; p++)
                    for (int64_t w = 1; w <= 62; w += (w < 20 ? 1 : 7)) { /* up to 31 columns at stride 2 */
                        int64_t h = 1 + (w * 7 + k) % 9, span = (k - 1) * d + 1;
                        int64_t ow = (w + 2 * p - span) / s + 1, oh = (h + 2 * p - span) / s + 1;
                        if (w + 2 * p < span || h + 2 * p < span) continue;
                        float *x = random_array((size_t)(h * w)), *wt = random_array((size_t)(k * k));
                        size_t ny = (size_t)(oh * ow);
                        float *y = malloc(ny * sizeof *y + 4), *e = malloc(ny * sizeof *e + 4);
                        float *r = random_array((size_t)(oh * ow)), bias = 0.25f;
                        for (int64_t i = 0; i < oh * ow; i++) y[i] = NAN;
                        kern_conv_shape sh = {{1, h, w}, {1, oh, ow}, {1, k, k}, {1, s, s}, {1, d, d}, {0, p, p}};
                        kern_activation relu = {KERN_ACT_RELU, 0, 0};
                        size_t scratch_floats = kern_dwconv2d_scratch(&sh);
                        float *scratch = scratch_floats ? core_aligned_alloc(scratch_floats * sizeof(float)) : NULL;
                        kern_dwconv2d(&sh, 1, x, wt, &bias, (w + h) % 2 ? r : NULL, &relu, y, scratch);
                        core_aligned_free(scratch);
                        kern_conv2d_params cp = {1, 1, h, w, 1, oh, ow, k, k, 1, s, s, d, d, p, p};
                        kern_conv2d_ref(&cp, x, wt, &bias, (w + h) % 2 ? r : NULL, &relu, e);
                        double worst = max_abs_diff(y, e, (size_t)(oh * ow));
                        cases++;
                        if (!(worst <= 1e-5) && failures++ < 5)
                            fprintf(stderr, "%s dwconv k%lld s%lld d%lld p%lld %lldx%lld: %g\n", isa, (long long)k,
                                    (long long)s, (long long)d, (long long)p, (long long)h, (long long)w, worst);
                        /* im2col of 2 channels of the same geometry, a column window in the middle */
                        int64_t kg = 2 * k * k, cols = oh * ow, c0 = cols / 3, nc = cols - c0 - cols / 5;
                        float *x2 = random_array((size_t)(2 * h * w));
                        float *col = malloc((size_t)(kg * nc) * sizeof *col + 4);
                        kern_im2col(&sh, x2, c0, nc, 1, kg, col);
                        for (int64_t row = 1; row < kg; row++)
                            for (int64_t c = c0; c < c0 + nc; c++) {
                                int64_t ch = row / (k * k), i = row / k % k, j = row % k;
                                int64_t ih = c / ow * s - p + i * d, iw = c % ow * s - p + j * d;
                                float want = ih >= 0 && ih < h && iw >= 0 && iw < w ? x2[(ch * h + ih) * w + iw] : 0;
                                if (col[(row - 1) * nc + c - c0] != want && failures++ < 5)
                                    fprintf(stderr, "%s im2col k%lld s%lld d%lld p%lld w%lld: row %lld col %lld\n",
                                            isa, (long long)k, (long long)s, (long long)d, (long long)p,
                                            (long long)w, (long long)row, (long long)c);
                            }
                        free(x), free(wt), free(y), free(e), free(r), free(x2), free(col);
                    }
    /* Planes large enough that the depthwise kernel works in strips of rows. */
    static const int64_t big[][6] = {
        /* h, w, kernel, stride, dilation, pad */
        {300, 260, 3, 1, 1, 1}, {301, 257, 3, 2, 1, 1}, {280, 270, 5, 1, 2, 4}, {263, 301, 7, 2, 1, 3}};
    for (size_t b = 0; b < sizeof big / sizeof *big; b++) {
        int64_t h = big[b][0], w = big[b][1], k = big[b][2], s = big[b][3], d = big[b][4], p = big[b][5];
        int64_t span = (k - 1) * d + 1, oh = (h + 2 * p - span) / s + 1, ow = (w + 2 * p - span) / s + 1;
        float *x = random_array((size_t)(h * w)), *wt = random_array((size_t)(k * k)), bias = -0.5f;
        float *y = malloc((size_t)(oh * ow) * sizeof *y), *e = malloc((size_t)(oh * ow) * sizeof *e);
        float *r = b % 2 ? random_array((size_t)(oh * ow)) : NULL; /* activations applied per strip, after it */
        kern_conv_shape sh = {{1, h, w}, {1, oh, ow}, {1, k, k}, {1, s, s}, {1, d, d}, {0, p, p}};
        float *scratch = core_aligned_alloc(kern_dwconv2d_scratch(&sh) * sizeof(float));
        kern_activation hs = {b < 2 ? KERN_ACT_HARD_SWISH : KERN_ACT_SILU, 0, 0};
        kern_dwconv2d(&sh, 1, x, wt, &bias, r, &hs, y, scratch);
        kern_conv2d_params cp = {1, 1, h, w, 1, oh, ow, k, k, 1, s, s, d, d, p, p};
        kern_conv2d_ref(&cp, x, wt, &bias, r, &hs, e);
        double worst = max_abs_diff(y, e, (size_t)(oh * ow));
        CHECK_MSG(worst <= 1e-4, "%s dwconv %lldx%lld k%lld s%lld d%lld: %g", isa, (long long)h, (long long)w,
                  (long long)k, (long long)s, (long long)d, worst);
        CHECK(kern_dwconv2d_scratch(&sh) < ((size_t)1 << 20)); /* strips bound the scratch */
        core_aligned_free(scratch);
        free(x), free(wt), free(y), free(e), free(r);
    }
    CHECK_MSG(failures == 0, "%s: %d kernel mismatches in %d geometries", isa, failures, cases);
    CHECK(cases > 1000);
}

/* kern_im2col against direct indexing on rows wider than the small geometries above reach: stride-2 rows on both
 * sides of the whole-row path's limit (32 columns; a 9-wide kernel is past it too), conv1's 7x7 pad 3, padding on
 * both sides, dilation, a 1x1 subsample, odd input widths; each over the whole matrix, a window from a row start and
 * one from the middle of a row, and rows taken from the middle of the matrix. */
static void test_im2col_wide(const char *isa) {
    static const int64_t geoms[][6] = {
        /* h, w, kernel, stride, dilation, pad */
        {11, 224, 7, 2, 1, 3}, {9, 56, 3, 2, 1, 1}, {5, 56, 1, 2, 1, 0}, {7, 257, 3, 2, 1, 1}, {4, 261, 3, 2, 1, 1},
        {6, 97, 5, 2, 2, 4},   {5, 120, 9, 2, 1, 4}, {3, 40, 3, 2, 1, 0}, {6, 33, 4, 2, 1, 2}, {8, 72, 3, 1, 1, 1},
        {7, 63, 3, 2, 1, 1},   {7, 65, 3, 2, 1, 1},  {9, 64, 2, 2, 1, 0}};
    int failures = 0;
    for (size_t g = 0; g < sizeof geoms / sizeof *geoms; g++) {
        int64_t h = geoms[g][0], w = geoms[g][1], k = geoms[g][2], s = geoms[g][3], d = geoms[g][4], p = geoms[g][5];
        int64_t span = (k - 1) * d + 1, oh = (h + 2 * p - span) / s + 1, ow = (w + 2 * p - span) / s + 1;
        int64_t cols = oh * ow, kg = 3 * k * k;
        kern_conv_shape sh = {{1, h, w}, {1, oh, ow}, {1, k, k}, {1, s, s}, {1, d, d}, {0, p, p}};
        float *x = random_array((size_t)(3 * h * w)), *col = malloc((size_t)(kg * cols) * sizeof *col);
        const int64_t windows[][2] = {{0, cols}, {ow, cols - ow}, {ow / 2 + 1, cols - ow}};
        for (int win = 0; win < 3; win++) {
            int64_t c0 = windows[win][0], nc = windows[win][1], r0 = win == 2 ? k : 0, r1 = win == 2 ? kg - 1 : kg;
            kern_im2col(&sh, x, c0, nc, r0, r1, col);
            for (int64_t row = r0; row < r1; row++)
                for (int64_t c = c0; c < c0 + nc; c++) {
                    int64_t ch = row / (k * k), i = row / k % k, j = row % k;
                    int64_t ih = c / ow * s - p + i * d, iw = c % ow * s - p + j * d;
                    float want = ih >= 0 && ih < h && iw >= 0 && iw < w ? x[(ch * h + ih) * w + iw] : 0;
                    if (col[(row - r0) * nc + c - c0] != want && failures++ < 5)
                        fprintf(stderr,
                                "%s wide im2col %lldx%lld k%lld s%lld d%lld p%lld window %d: row %lld col %lld\n", isa, (long long)h, (long long)w, (long long)k, (long long)s, (long long)d,
                                (long long)p, win, (long long)row, (long long)c);
                }
        }
        free(x), free(col);
    }
    CHECK_MSG(failures == 0, "%s: %d wide im2col mismatches", isa, failures);
}

/* w ([cout, kg]) as kern_conv_rows takes it: per block of KERN_CONV_ROWS_OB channels, per step, zero past cout. */
static float *rows_weights(const float *w, int64_t cout, int64_t kg) {
    int64_t blocks = (cout + KERN_CONV_ROWS_OB - 1) / KERN_CONV_ROWS_OB;
    float *packed = malloc((size_t)(blocks * kg * KERN_CONV_ROWS_OB) * sizeof *packed);
    for (int64_t b = 0; b < blocks; b++)
        for (int64_t t = 0; t < kg; t++)
            for (int64_t c = 0; c < KERN_CONV_ROWS_OB; c++) {
                int64_t co = b * KERN_CONV_ROWS_OB + c;
                packed[(b * kg + t) * KERN_CONV_ROWS_OB + c] = co < cout ? w[co * kg + t] : 0.0f;
            }
    return packed;
}

/* kern_conv_rows against the reference: tiles of every width (output rows of 1 to 31 pixels: one tile to three),
 * channel counts that leave a half group and a partial block, kernels 1x1 to 5x5 and 1x5 / 5x1, strides 1 to 3 down
 * and 1, 2 or 4 across, dilation, pads on either side (blocks read in place and from the padded copy), bias, residual
 * and activations (Relu and Clip as tiles store, HardSwish over the row), the rows and the channel blocks split
 * over several calls as the op's tasks do; and inputs wide enough that a call takes several blocks of rows. */
static void test_rows(const char *isa) {
    static const int64_t couts[] = {1, 15, 16, 17, 33, 48, 70};
    static const int64_t ks[][2] = {{1, 1}, {3, 3}, {2, 2}, {1, 5}, {5, 1}, {5, 5}};
    const kern_activation acts[] = {
        {KERN_ACT_NONE, 0, 0}, {KERN_ACT_RELU, 0, 0}, {KERN_ACT_CLIP, -0.3f, 0.4f}, {KERN_ACT_HARD_SWISH, 0, 0}};
    int failures = 0, cases = 0;
    for (int64_t ow_want = 1; ow_want <= 31; ow_want++) {
        int64_t i = ow_want;
        const int64_t *k = ks[i % 6], sh = 1 + i % 3, sw = (int64_t)1 << (i / 3 % 3), d = 1 + (i / 7) % 2;
        const int64_t cin = 1 + i % 5 * 4;
        const int64_t cout = couts[i % 7], pt = i % 3, pl = (i / 2) % 3, pb = i % 2, pr = (i / 4) % 2;
        /* input width for ow_want outputs, and on odd i a column that only a stride-2 row skips (with a leading
         * pad, then, a row can end inside the input) */
        const int64_t spank = (k[1] - 1) * d + 1, w = (ow_want - 1) * sw + spank - pl - pr + i % 2;
        const int64_t h = 3 + i % 7, oh = (h + pt + pb - ((k[0] - 1) * d + 1)) / sh + 1;
        if (w < 1 || oh < 1) continue;
        const int64_t ow = (w + pl + pr - spank) / sw + 1, kg = cin * k[0] * k[1];
        kern_conv_shape shape = {{1, h, w}, {1, oh, ow}, {1, k[0], k[1]}, {1, sh, sw}, {1, d, d}, {0, pt, pl}};
        float *x = random_array((size_t)(cin * h * w)), *wt = random_array((size_t)(cout * kg));
        float *bias = random_array((size_t)cout), *res = random_array((size_t)(cout * oh * ow));
        float *y = malloc((size_t)(cout * oh * ow) * sizeof *y), *e = malloc((size_t)(cout * oh * ow) * sizeof *e);
        int64_t blocks = (cout + KERN_CONV_ROWS_OB - 1) / KERN_CONV_ROWS_OB;
        float *packed = rows_weights(wt, cout, kg);
        void *scratch = core_aligned_alloc((size_t)kern_conv_rows_scratch(&shape, cin) * sizeof(float));
        const kern_activation *act = &acts[i % 4];
        kern_conv_rows_params rp = {.shape = shape, .cin = cin, .cout = cout, .x = x, .w = packed,
                                    .bias = i % 2 ? bias : NULL, .residual = i % 3 ? res : NULL, .act = *act,
                                    .y = y, .prefetch = (int)(i % 2)};
        for (int64_t n = 0; n < cout * oh * ow; n++) y[n] = NAN;
        int64_t rsplit = oh / 2, csplit = blocks > 2 ? 2 : blocks;
        kern_conv_rows(&rp, 0, rsplit, 0, csplit, scratch);
        kern_conv_rows(&rp, rsplit, oh, 0, csplit, scratch);
        if (csplit < blocks) kern_conv_rows(&rp, 0, oh, csplit, blocks, scratch);
        kern_conv2d_params cp = {1, cin, h, w, cout, oh, ow, k[0], k[1], 1, sh, sw, d, d, pt, pl};
        kern_conv2d_ref(&cp, x, wt, rp.bias, rp.residual, act, e);
        double worst = max_abs_diff(y, e, (size_t)(cout * oh * ow));
        cases++;
        if (!(worst <= 1e-4) && failures++ < 5)
            fprintf(stderr, "%s rows c%lld m%lld %lldx%lld k%lldx%lld s%lld,%lld d%lld p%lld,%lld act %d: %g\n", isa,
                    (long long)cin, (long long)cout, (long long)h, (long long)w, (long long)k[0], (long long)k[1],
                    (long long)sh, (long long)sw, (long long)d, (long long)pt, (long long)pl, (int)act->kind, worst);
        core_aligned_free(scratch);
        free(x), free(wt), free(bias), free(res), free(y), free(e), free(packed);
    }
    /* several blocks of rows per call: 300 channels of 120-wide rows make a block a few rows; a 1x1 stride-2 that
     * reads in place and a padded 3x3 stride-2 that copies */
    static const int64_t wide[][5] = {{300, 24, 120, 1, 0}, {300, 23, 121, 3, 1}};
    for (size_t g = 0; g < 2; g++) {
        const int64_t cin = wide[g][0], h = wide[g][1], w = wide[g][2], k = wide[g][3], pad = wide[g][4], cout = 20;
        const int64_t oh = (h + 2 * pad - k) / 2 + 1, ow = (w + 2 * pad - k) / 2 + 1, kg = cin * k * k;
        kern_conv_shape shape = {{1, h, w}, {1, oh, ow}, {1, k, k}, {1, 2, 2}, {1, 1, 1}, {0, pad, pad}};
        CHECK(kern_conv_rows_block(&shape, cin) < oh);
        float *x = random_array((size_t)(cin * h * w)), *wt = random_array((size_t)(cout * kg));
        float *y = malloc((size_t)(cout * oh * ow) * sizeof *y), *e = malloc((size_t)(cout * oh * ow) * sizeof *e);
        float *packed = rows_weights(wt, cout, kg);
        void *scratch = core_aligned_alloc((size_t)kern_conv_rows_scratch(&shape, cin) * sizeof(float));
        kern_conv_rows_params rp = {.shape = shape, .cin = cin, .cout = cout, .x = x, .w = packed,
                                    .act = {KERN_ACT_RELU, 0, 0}, .y = y};
        kern_conv_rows(&rp, 0, oh, 0, 2, scratch);
        kern_conv2d_params cp = {1, cin, h, w, cout, oh, ow, k, k, 1, 2, 2, 1, 1, pad, pad};
        kern_conv2d_ref(&cp, x, wt, NULL, NULL, &rp.act, e);
        double worst = max_abs_diff(y, e, (size_t)(cout * oh * ow));
        CHECK_MSG(worst <= 1e-3, "%s rows, blocks of rows, c%lld k%lld: %g", isa, (long long)cin, (long long)k, worst);
        core_aligned_free(scratch);
        free(x), free(wt), free(y), free(e), free(packed);
    }
    CHECK_MSG(failures == 0, "%s: %d rows kernel mismatches in %d geometries", isa, failures, cases);
    CHECK(cases >= 25);
}

/* kern_dwconv2d on several channels per call (the channel-blocked kernel of small planes: blocks of 16 and 8 lanes
 * with a partial last block) against the reference: planes 1..17, kernels 3/5/7, strides 1/2, pads either side,
 * bias, residual and activations in turn; and a 7x7 kernel on a plane wider than the register block. */
static void test_dw_channel_blocks(const char *isa) {
    static const int64_t channels[] = {1, 5, 16, 17, 33};
    const kern_activation acts[] = {
        {KERN_ACT_NONE, 0, 0},       {KERN_ACT_RELU, 0, 0}, {KERN_ACT_CLIP, -0.5f, 0.75f},
        {KERN_ACT_HARD_SWISH, 0, 0}, {KERN_ACT_SILU, 0, 0}};
    int failures = 0, cases = 0, blocked = 0;
    for (int64_t k = 3; k <= 7; k += 2)
        for (int64_t st = 1; st <= 2; st++)
            for (int64_t hw = 1; hw <= 17; hw += (k == 3 ? 1 : 2))
                for (int64_t pv = 0; pv < 3; pv++) {
                    int64_t h = hw, w = 18 - hw > hw ? 18 - hw : hw; /* wide, square and tall-ish planes */
                    int64_t pt = (pv + hw) % (k / 2 + 2), pl = (pv * 2 + hw) % (k / 2 + 1), pb = pv, pr = k / 2;
                    int64_t oh = (h + pt + pb - k) / st + 1, ow = (w + pl + pr - k) / st + 1;
                    if (h + pt + pb < k || w + pl + pr < k) continue;
                    int64_t nc = channels[(hw + pv + k) % 5], in = h * w, out = oh * ow, i = cases;
                    float *x = random_array((size_t)(nc * in)), *wt = random_array((size_t)(nc * k * k));
                    float *b = random_array((size_t)nc), *r = random_array((size_t)(nc * out));
                    float *y = malloc((size_t)(nc * out) * sizeof *y), *e = malloc((size_t)(nc * out) * sizeof *e);
                    const float *bias = i % 3 ? b : NULL, *res = i % 2 ? r : NULL;
                    /* every activation both with and without the residual */
                    const kern_activation *act = i % 7 == 6 ? NULL : &acts[(i / 2) % 5];
                    kern_conv_shape sh = {{1, h, w}, {1, oh, ow}, {1, k, k}, {1, st, st}, {1, 1, 1}, {0, pt, pl}};
                    blocked += kern_dwconv2d_channel_block(&sh) == 16;
                    float *scratch = core_aligned_alloc(kern_dwconv2d_scratch(&sh) * sizeof(float));
                    kern_dwconv2d(&sh, nc, x, wt, bias, res, act, y, scratch);
                    kern_conv2d_params cp = {1, nc, h, w, nc, oh, ow, k, k, nc, st, st, 1, 1, pt, pl};
                    kern_conv2d_ref(&cp, x, wt, bias, res, act, e);
                    double worst = max_abs_diff(y, e, (size_t)(nc * out));
                    cases++;
                    if (!(worst <= 1e-5) && failures++ < 5)
                        fprintf(stderr, "%s dw blocks c%lld k%lld s%lld %lldx%lld pads %lld %lld %lld %lld: %g\n", isa,
                                (long long)nc, (long long)k, (long long)st, (long long)h, (long long)w, (long long)pt,
                                (long long)pl, (long long)pb, (long long)pr, worst);
                    core_aligned_free(scratch);
                    free(x), free(wt), free(b), free(r), free(y), free(e);
                }
    CHECK_MSG(failures == 0, "%s: %d channel-block mismatches in %d geometries", isa, failures, cases);
    CHECK(cases > 150 && blocked > 100);
    /* ConvNeXt-like: 7x7 s1 pad 3 on 20 channels of 30x30 (several column blocks, strips of rows) */
    int64_t nc = 20, h = 30, k = 7, in = h * h;
    float *x = random_array((size_t)(nc * in)), *wt = random_array((size_t)(nc * k * k)), *b = random_array(20);
    float *r = random_array((size_t)(nc * in)), *y = malloc((size_t)(nc * in) * sizeof *y);
    float *e = malloc((size_t)(nc * in) * sizeof *e);
    kern_conv_shape sh = {{1, h, h}, {1, h, h}, {1, k, k}, {1, 1, 1}, {1, 1, 1}, {0, 3, 3}};
    CHECK(kern_dwconv2d_channel_block(&sh) == 16);
    float *scratch = core_aligned_alloc(kern_dwconv2d_scratch(&sh) * sizeof(float));
    kern_dwconv2d(&sh, nc, x, wt, b, r, NULL, y, scratch);
    kern_conv2d_params cp = {1, nc, h, h, nc, h, h, k, k, nc, 1, 1, 1, 1, 3, 3};
    kern_conv2d_ref(&cp, x, wt, b, r, NULL, e);
    double worst = max_abs_diff(y, e, (size_t)(nc * in));
    CHECK_MSG(worst <= 1e-5, "%s dw blocks 7x7 on 30x30: %g", isa, worst);
    core_aligned_free(scratch);
    free(x), free(wt), free(b), free(r), free(y), free(e);
    /* Planes past the whole-plane tile cap (MobileNet's and EfficientNet's 112x112): the tile holds one strip's
     * rows at a time, so strips start mid-plane, with pad rows at the top of the first and bottom of the last. */
    static const int64_t bands[][6] = {
        /* h, w, kernel, stride, pad top/left, pad bottom/right */
        {112, 112, 3, 2, 1, 1}, {112, 112, 3, 1, 1, 1}, {113, 67, 3, 2, 0, 1}, {70, 90, 5, 2, 2, 2},
        {65, 64, 7, 1, 3, 3},   {97, 75, 5, 1, 2, 0}};
    for (size_t t = 0; t < sizeof bands / sizeof *bands; t++) {
        int64_t bh = bands[t][0], bw = bands[t][1], bk = bands[t][2], bs = bands[t][3], p0 = bands[t][4];
        int64_t p1 = bands[t][5], bc = t % 2 ? 17 : 33;
        int64_t oh = (bh + p0 + p1 - bk) / bs + 1, ow = (bw + p0 + p1 - bk) / bs + 1;
        float *bx = random_array((size_t)(bc * bh * bw)), *bwt = random_array((size_t)(bc * bk * bk));
        float *bb = random_array((size_t)bc), *br = random_array((size_t)(bc * oh * ow));
        float *by = malloc((size_t)(bc * oh * ow) * sizeof *by), *be = malloc((size_t)(bc * oh * ow) * sizeof *be);
        const kern_activation *bact = &acts[t % 5];
        const float *bres = t % 3 == 1 ? br : NULL;
        kern_conv_shape bsh = {{1, bh, bw}, {1, oh, ow}, {1, bk, bk}, {1, bs, bs}, {1, 1, 1}, {0, p0, p0}};
        CHECK(kern_dwconv2d_channel_block(&bsh) == 16);
        float *bscratch = core_aligned_alloc(kern_dwconv2d_scratch(&bsh) * sizeof(float));
        kern_dwconv2d(&bsh, bc, bx, bwt, bb, bres, bact, by, bscratch);
        kern_conv2d_params bcp = {1, bc, bh, bw, bc, oh, ow, bk, bk, bc, bs, bs, 1, 1, p0, p0};
        kern_conv2d_ref(&bcp, bx, bwt, bb, bres, bact, be);
        double bworst = max_abs_diff(by, be, (size_t)(bc * oh * ow));
        CHECK_MSG(bworst <= 1e-5, "%s dw bands c%lld %lldx%lld k%lld s%lld: %g", isa, (long long)bc, (long long)bh,
                  (long long)bw, (long long)bk, (long long)bs, bworst);
        core_aligned_free(bscratch);
        free(bx), free(bwt), free(bb), free(br), free(by), free(be);
    }
}

/* 3x3 pad-1 depthwise convs of stride 1 and 2, which the AVX-512 build runs on the plain planes: stride 1 with masked
 * loads (the taps of each 16-pixel vector span rows, so every plane width and border matters), stride 2 with the taps
 * de-interleaved by permutes (one output row per vector, or two where the output is at most 8 wide). Planes 1x1 to
 * 113x61, odd and even, 1 to 33 channels, every activation with and without bias and residual, against the
 * reference; nothing written past the output. */
static void test_dw_plain(const char *isa, int64_t stride) {
    static const int64_t planes[][2] = {{1, 1},   {1, 7},   {2, 3},   {3, 1},   {4, 4},   {5, 17},  {7, 7},
                                        {9, 33},  {14, 14}, {15, 16}, {16, 15}, {17, 17}, {28, 28}, {31, 9},
                                        {32, 32}, {33, 34}, {56, 56}, {64, 65}, {112, 112}, {113, 61}};
    static const int64_t channels[] = {1, 3, 16, 17, 33};
    const kern_activation acts[] = {
        {KERN_ACT_NONE, 0, 0},       {KERN_ACT_RELU, 0, 0}, {KERN_ACT_CLIP, 0.0f, 6.0f},
        {KERN_ACT_HARD_SWISH, 0, 0}, {KERN_ACT_SILU, 0, 0}};
    int failures = 0, cases = 0;
    for (size_t pi = 0; pi < sizeof planes / sizeof *planes; pi++)
        for (int v = 0; v < 4; v++) {
            int64_t h = planes[pi][0], w = planes[pi][1], nc = channels[(pi + (size_t)v) % 5], n = h * w;
            int64_t oh = (h - 1) / stride + 1, ow = (w - 1) / stride + 1, on = oh * ow;
            if (h * w > 4000 && nc > 3) nc = 3;
            float *x = random_array((size_t)(nc * n)), *wt = random_array((size_t)(nc * 9));
            float *b = random_array((size_t)nc), *r = random_array((size_t)(nc * on));
            float *y = malloc((size_t)(nc * on + 16) * sizeof *y), *e = malloc((size_t)(nc * on) * sizeof *e);
            for (int64_t i = 0; i < nc * on + 16; i++) y[i] = NAN;
            const float *bias = v % 2 ? b : NULL, *res = (v + (int)pi) % 2 ? r : NULL;
            const kern_activation *act = v == 3 && pi % 2 ? NULL : &acts[(pi + (size_t)v * 3) % 5];
            kern_conv_shape sh = {{1, h, w}, {1, oh, ow}, {1, 3, 3}, {1, stride, stride}, {1, 1, 1}, {0, 1, 1}};
            float *scratch = core_aligned_alloc(kern_dwconv2d_scratch(&sh) * sizeof(float) + 64);
            kern_dwconv2d(&sh, nc, x, wt, bias, res, act, y, scratch);
            kern_conv2d_params cp = {1, nc, h, w, nc, oh, ow, 3, 3, nc, stride, stride, 1, 1, 1, 1};
            kern_conv2d_ref(&cp, x, wt, bias, res, act, e);
            double worst = max_abs_diff(y, e, (size_t)(nc * on));
            int untouched = 1;
            for (int64_t i = nc * on; i < nc * on + 16; i++) untouched &= isnan(y[i]) != 0;
            cases++;
            if ((!(worst <= 1e-5) || !untouched) && failures++ < 5)
                fprintf(stderr, "%s dw plain s%lld c%lld %lldx%lld act %d res %d: %g%s\n", isa, (long long)stride,
                        (long long)nc, (long long)h, (long long)w, act ? (int)act->kind : -1, res != NULL, worst,
                        untouched ? "" : ", wrote past the output");
            core_aligned_free(scratch);
            free(x), free(wt), free(b), free(r), free(y), free(e);
        }
    CHECK_MSG(failures == 0, "%s: %d plain stride-%lld depthwise mismatches in %d cases", isa, failures,
              (long long)stride, cases);
}

/* 1-D and 3-D convs against direct loops written here. */
static void test_conv_1d_3d(void) {
    /* 1-D: x [2, 3, 11], w [4, 3, 3], stride 2, pads 1/2, dilation 2 */
    {
        float *x = random_array(2 * 3 * 11), *w = random_array(4 * 3 * 3), y[2 * 4 * 8], e[2 * 4 * 8];
        int64_t L = 11, K = 3, S = 2, D = 2, P0 = 1, P1 = 2;
        int64_t OL = (L + P0 + P1 - ((K - 1) * D + 1)) / S + 1;
        for (int64_t n = 0; n < 2; n++)
            for (int64_t m = 0; m < 4; m++)
                for (int64_t o = 0; o < OL; o++) {
                    double s = 0;
                    for (int64_t c = 0; c < 3; c++)
                        for (int64_t j = 0; j < K; j++) {
                            int64_t i = o * S - P0 + j * D;
                            if (i >= 0 && i < L) s += (double)w[(m * 3 + c) * K + j] * x[(n * 3 + c) * L + i];
                        }
                    e[(n * 4 + m) * OL + o] = (float)s;
                }
        tensor tx = {LENS_DTYPE_FLOAT32, 3, {2, 3, 11}, x}, tw = {LENS_DTYPE_FLOAT32, 3, {4, 3, 3}, w}, ty = {0};
        const tensor *ins[2] = {&tx, &tw};
        tensor *outs[1] = {&ty};
        int64_t strides[1] = {S}, dil[1] = {D}, pads[2] = {P0, P1};
        op_attr attrs[3] = {{.name = "strides", .type = OP_ATTR_INTS, .ints = strides, .count = 1},
                            {.name = "dilations", .type = OP_ATTR_INTS, .ints = dil, .count = 1},
                            {.name = "pads", .type = OP_ATTR_INTS, .ints = pads, .count = 2}};
        op_node node = {"", "Conv", "", 13, 3, attrs};
        const op_def *def = ops_lookup("", "Conv");
        op_call call = {&node, 2, ins, 1, outs, pool2, NULL, NULL, 0, 0};
        CHECK(def->infer(&call) == LENS_OK);
        CHECK(ty.rank == 3 && ty.dims[2] == OL && OL == 5);
        call.scratch = core_aligned_alloc(call.scratch_bytes);
        ty.data = y;
        CHECK(def->run(&call) == LENS_OK);
        core_aligned_free(call.scratch);
        for (int64_t i = 0; i < 2 * 4 * OL; i++) CHECK_NEAR(y[i], e[i], 1e-5);
        free(x), free(w);
    }
    /* 3-D: x [1, 2, 5, 6, 4], w [3, 2, 2, 3, 3], strides (1, 2, 1), pads 1 everywhere */
    {
        int64_t C = 2, M = 3, ID = 5, IH = 6, IW = 4, KD = 2, KH = 3, KW = 3;
        int64_t OD = (ID + 2 - KD) + 1, OH = (IH + 2 - KH) / 2 + 1, OW = (IW + 2 - KW) + 1;
        float *x = random_array((size_t)(C * ID * IH * IW)), *w = random_array((size_t)(M * C * KD * KH * KW));
        float *b = random_array((size_t)M);
        size_t ny = (size_t)(M * OD * OH * OW);
        float *y = malloc(ny * sizeof *y), *e = malloc(ny * sizeof *e);
        for (int64_t m = 0; m < M; m++)
            for (int64_t od = 0; od < OD; od++)
                for (int64_t oh = 0; oh < OH; oh++)
                    for (int64_t ow = 0; ow < OW; ow++) {
                        double s = b[m];
                        for (int64_t c = 0; c < C; c++)
                            for (int64_t a = 0; a < KD; a++)
                                for (int64_t i = 0; i < KH; i++)
                                    for (int64_t j = 0; j < KW; j++) {
                                        int64_t id = od - 1 + a, ih = oh * 2 - 1 + i, iw = ow - 1 + j;
                                        if (id < 0 || id >= ID || ih < 0 || ih >= IH || iw < 0 || iw >= IW) continue;
                                        s += (double)w[(((m * C + c) * KD + a) * KH + i) * KW + j] *
                                             x[((c * ID + id) * IH + ih) * IW + iw];
                                    }
                        e[((m * OD + od) * OH + oh) * OW + ow] = (float)s;
                    }
        tensor tx = {LENS_DTYPE_FLOAT32, 5, {1, C, ID, IH, IW}, x};
        tensor tw = {LENS_DTYPE_FLOAT32, 5, {M, C, KD, KH, KW}, w}, tb = {LENS_DTYPE_FLOAT32, 1, {M}, b}, ty = {0};
        const tensor *ins[3] = {&tx, &tw, &tb};
        tensor *outs[1] = {&ty};
        int64_t strides[3] = {1, 2, 1}, pads[6] = {1, 1, 1, 1, 1, 1};
        op_attr attrs[2] = {{.name = "strides", .type = OP_ATTR_INTS, .ints = strides, .count = 3},
                            {.name = "pads", .type = OP_ATTR_INTS, .ints = pads, .count = 6}};
        op_node node = {"", "Conv", "", 13, 2, attrs};
        const op_def *def = ops_lookup("", "Conv");
        op_call call = {&node, 3, ins, 1, outs, NULL, NULL, NULL, 0, 0};
        CHECK(def->infer(&call) == LENS_OK);
        CHECK(ty.rank == 5 && ty.dims[2] == OD && ty.dims[3] == OH && ty.dims[4] == OW);
        void *state = NULL;
        CHECK(def->prepare(&call, &state) == LENS_OK);
        call.state = state;
        call.scratch = core_aligned_alloc(call.scratch_bytes);
        ty.data = y;
        CHECK(def->run(&call) == LENS_OK);
        def->release(state);
        core_aligned_free(call.scratch);
        double worst = 0;
        for (size_t i = 0; i < ny; i++) worst = fmax(worst, fabs(y[i] - e[i]));
        CHECK_MSG(worst < 1e-4, "3-D conv max error %g", worst);
        free(x), free(w), free(b), free(y), free(e);
    }
}

static void test_errors(void) {
    float buf[64] = {0};
    tensor tx = {LENS_DTYPE_FLOAT32, 4, {1, 4, 4, 4}, buf}, tw = {LENS_DTYPE_FLOAT32, 4, {2, 3, 3, 3}, buf}, ty = {0};
    const tensor *ins[4] = {&tx, &tw, NULL, NULL};
    tensor *outs[1] = {&ty};
    op_node node = {"", "Conv", "", 13, 0, NULL};
    const op_def *def = ops_lookup("", "Conv");
    op_call call = {&node, 2, ins, 1, outs, NULL, NULL, NULL, 0, 0};
    CHECK(def->infer(&call) == LENS_ERR_SHAPE); /* W has 3 input channels, X 4 */
    CHECK(strstr(core_last_error(), "[2,3,3,3]") && strstr(core_last_error(), "[1,4,4,4]"));
    tw.dims[1] = 4;
    tx.dtype = LENS_DTYPE_FLOAT64;
    CHECK(def->infer(&call) == LENS_ERR_UNSUPPORTED);
    CHECK(strstr(core_last_error(), "float64") != NULL);
    tx.dtype = LENS_DTYPE_FLOAT32;
    tx.dims[2] = 2; /* input smaller than the kernel */
    CHECK(def->infer(&call) == LENS_ERR_SHAPE);
    tx.dims[2] = 4;
    CHECK(def->infer(&call) == LENS_OK);
    CHECK(ty.dims[2] == 2 && ty.dims[3] == 2);
    /* residual of the wrong shape */
    tensor tr = {LENS_DTYPE_FLOAT32, 4, {1, 2, 3, 3}, buf};
    ins[3] = &tr;
    op_attr ra = {.name = "lens.residual", .type = OP_ATTR_INT, .i = 1};
    node.n_attrs = 1, node.attrs = &ra;
    call.n_inputs = 4;
    CHECK(def->infer(&call) == LENS_ERR_SHAPE);
    int64_t bad_pads[2] = {1, 1};
    op_attr pa = {.name = "pads", .type = OP_ATTR_INTS, .ints = bad_pads, .count = 2};
    node.attrs = &pa, call.n_inputs = 2;
    CHECK(def->infer(&call) == LENS_ERR_INVALID_ARGUMENT);
    op_attr ap = {.name = "auto_pad", .type = OP_ATTR_STRING, .s = "SAME"};
    node.attrs = &ap;
    CHECK(def->infer(&call) == LENS_ERR_INVALID_ARGUMENT);
    /* negative stride */
    int64_t bad_strides[2] = {1, -1};
    op_attr sa = {.name = "strides", .type = OP_ATTR_INTS, .ints = bad_strides, .count = 2};
    node.attrs = &sa;
    CHECK(def->infer(&call) == LENS_ERR_INVALID_ARGUMENT);
    /* lens.input_scale: only on a 1x1 conv, with a [N, C, 1, 1] 5th input */
    op_attr is = {.name = "lens.input_scale", .type = OP_ATTR_INT, .i = 1};
    tensor ts = {LENS_DTYPE_FLOAT32, 4, {1, 4, 1, 1}, buf};
    const tensor *ins5[5] = {&tx, &tw, NULL, NULL, &ts};
    node.attrs = &is, call.inputs = ins5, call.n_inputs = 5;
    CHECK(def->infer(&call) == LENS_ERR_UNSUPPORTED); /* W is 3x3 */
    tw.dims[2] = tw.dims[3] = 1;
    CHECK(def->infer(&call) == LENS_OK);
    ts.dims[1] = 3;
    CHECK(def->infer(&call) == LENS_ERR_SHAPE);
    ts.dims[1] = 4;
    call.n_inputs = 4;
    CHECK(def->infer(&call) == LENS_ERR_INVALID_ARGUMENT); /* no scale input */
}

/* Planned for one thread, run on two (and the reverse); and a run whose scratch is too small fails cleanly. */
static void test_scratch_mismatch(void) {
    static const int64_t geoms[][4] = {{16, 16, 3, 16}, {8, 12, 3, 1}}; /* c, m, k, group: depthwise, im2col */
    for (int gi = 0; gi < 2; gi++)
        for (int flip = 0; flip < 2; flip++) {
            int64_t c = geoms[gi][0], m = geoms[gi][1], k = geoms[gi][2], g = geoms[gi][3], h = 23;
            float *x = random_array((size_t)(c * h * h)), *w = random_array((size_t)(m * c / g * k * k));
            float *y = malloc((size_t)(m * h * h) * sizeof *y), *e = malloc((size_t)(m * h * h) * sizeof *e);
            tensor tx = {LENS_DTYPE_FLOAT32, 4, {1, c, h, h}, x}, tw = {LENS_DTYPE_FLOAT32, 4, {m, c / g, k, k}, w};
            tensor ty = {0};
            const tensor *ins[2] = {&tx, &tw};
            tensor *outs[1] = {&ty};
            int64_t pads[4] = {1, 1, 1, 1};
            op_attr attrs[2] = {{.name = "pads", .type = OP_ATTR_INTS, .ints = pads, .count = 4},
                                {.name = "group", .type = OP_ATTR_INT, .i = g}};
            op_node node = {"", "Conv", "", 13, 2, attrs};
            const op_def *def = ops_lookup("", "Conv");
            op_call call = {&node, 2, ins, 1, outs, flip ? pool2 : NULL, NULL, NULL, 0, 0};
            CHECK(def->infer(&call) == LENS_OK);
            call.pool = flip ? NULL : pool2;
            call.scratch = core_aligned_alloc(call.scratch_bytes);
            ty.data = y;
            CHECK(def->run(&call) == LENS_OK);
            kern_conv2d_params p = {1, c, h, h, m, h, h, k, k, g, 1, 1, 1, 1, 1, 1};
            kern_conv2d_ref(&p, x, w, NULL, NULL, NULL, e);
            CHECK_MSG(max_abs_diff(y, e, (size_t)(m * h * h)) < 1e-4, "geometry %d flip %d", gi, flip);
            call.scratch_bytes = 0; /* too small: an error, not a crash */
            CHECK(def->run(&call) == LENS_ERR_INVALID_ARGUMENT);
            core_aligned_free(call.scratch);
            free(x), free(w), free(y), free(e);
        }
}

int main(void) {
    CHECK(core_pool_create(2, &pool2) == LENS_OK);
    static const conv_case cases[] = {
        /* n  c   h   w   m  kh kw  g  sh sw dh dw  pads           auto_pad       bias res act */
        {1, 16, 7, 7, 24, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 0, NULL},            /* pointwise */
        {3, 8, 13, 13, 5, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 0, 1, "Relu"},          /* pointwise, residual */
        {1, 32, 56, 56, 16, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, "Relu"},
        {1, 8, 13, 13, 6, 1, 1, 1, 2, 2, 1, 1, {0, 0, 0, 0}, NULL, 1, 0, NULL},            /* 1x1 stride 2 */
        {1, 8, 1, 1, 6, 1, 1, 2, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 0, NULL},              /* 1x1 on 1x1, grouped */
        {1, 3, 13, 13, 8, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, NULL},            /* 3x3 s1 */
        {1, 5, 7, 7, 8, 3, 3, 1, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, "Clip"},            /* 3x3 s2 */
        {3, 4, 13, 7, 6, 3, 3, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 0, 0, NULL},             /* batch 3, no pad */
        {1, 3, 13, 13, 4, 5, 5, 1, 1, 1, 1, 1, {2, 2, 2, 2}, NULL, 1, 0, "HardSwish"},     /* 5x5 */
        {1, 3, 56, 56, 16, 7, 7, 1, 2, 2, 1, 1, {3, 3, 3, 3}, NULL, 1, 0, "Relu"},         /* 7x7 s2 pad 3 (stem) */
        {1, 8, 13, 13, 6, 3, 3, 2, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, NULL},            /* groups 2 */
        {3, 8, 7, 13, 8, 3, 3, 4, 2, 1, 1, 1, {1, 0, 0, 1}, NULL, 1, 1, "Relu"},           /* groups 4, asym pads */
        {1, 8, 13, 13, 16, 3, 3, 8, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, NULL},           /* depth multiplier 2 */
        {1, 16, 13, 13, 16, 3, 3, 16, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, "Clip"},       /* depthwise 3x3 s1 */
        {1, 16, 56, 56, 16, 3, 3, 16, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, "Relu"},       /* depthwise 3x3 s2 */
        {3, 6, 7, 7, 6, 3, 3, 6, 2, 2, 1, 1, {0, 0, 1, 1}, NULL, 0, 0, NULL},              /* dw s2 TF-style pads */
        {1, 6, 13, 7, 6, 5, 5, 6, 1, 1, 1, 1, {2, 2, 2, 2}, NULL, 1, 1, "HardSwish"},      /* depthwise 5x5 s1 */
        {1, 6, 13, 13, 6, 5, 5, 6, 2, 2, 1, 1, {2, 2, 2, 2}, NULL, 1, 0, NULL},            /* depthwise 5x5 s2 */
        {1, 4, 1, 13, 4, 3, 3, 4, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, NULL},             /* depthwise, H = 1 */
        {1, 4, 13, 13, 4, 3, 3, 4, 1, 1, 2, 2, {2, 2, 2, 2}, NULL, 1, 0, NULL},            /* depthwise dilated */
        {1, 4, 13, 13, 4, 7, 7, 4, 1, 1, 1, 1, {3, 3, 3, 3}, NULL, 1, 0, NULL},            /* depthwise 7x7 */
        {1, 4, 2, 2, 4, 3, 3, 4, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, NULL},              /* depthwise, tiny */
        {2, 5, 9, 9, 5, 1, 1, 5, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, "Relu"},            /* depthwise 1x1 */
        {1, 4, 13, 13, 4, 3, 3, 4, 2, 1, 1, 1, {0, 1, 2, 0}, NULL, 1, 0, NULL},            /* dw mixed strides */
        {2, 37, 7, 7, 37, 3, 3, 37, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, "Relu"},         /* dw, blocks of planes */
        {1, 48, 14, 14, 48, 3, 3, 48, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, "Clip"},       /* dw, 3 blocks, 2 threads */
        {1, 40, 7, 7, 40, 5, 5, 40, 2, 2, 1, 1, {2, 2, 2, 2}, NULL, 1, 1, NULL},           /* dw, a partial block */
        {1, 19, 9, 9, 19, 3, 3, 19, 3, 3, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, "Relu"},         /* dw, stride 3, 1-channel */
        {1, 7, 14, 15, 7, 5, 5, 7, 2, 2, 1, 1, {1, 2, 2, 1}, NULL, 1, 1, "Clip"},          /* dw 5x5 s2 odd pads */
        {1, 5, 17, 16, 5, 3, 3, 5, 3, 3, 1, 1, {1, 1, 0, 2}, NULL, 1, 0, NULL},            /* dw stride 3 */
        {1, 5, 19, 17, 5, 5, 5, 5, 2, 2, 2, 2, {4, 4, 3, 4}, NULL, 0, 1, "HardSwish"},     /* dw s2 dilation 2 */
        {1, 3, 13, 13, 4, 3, 3, 1, 1, 1, 2, 2, {2, 2, 2, 2}, NULL, 1, 0, NULL},            /* dilation 2 */
        {1, 3, 13, 13, 4, 3, 3, 1, 1, 1, 2, 1, {0, 1, 0, 1}, NULL, 0, 0, NULL},            /* dilation (2, 1) */
        {1, 3, 13, 13, 4, 3, 3, 1, 2, 2, 1, 1, {0, 0, 0, 0}, "SAME_UPPER", 1, 0, NULL},
        {1, 3, 13, 13, 4, 4, 4, 1, 2, 2, 1, 1, {0, 0, 0, 0}, "SAME_LOWER", 1, 0, NULL},
        {1, 3, 13, 13, 4, 2, 2, 1, 1, 1, 1, 1, {0, 0, 0, 0}, "SAME_UPPER", 1, 0, NULL},
        {1, 4, 12, 12, 4, 3, 3, 4, 2, 2, 1, 1, {0, 0, 0, 0}, "SAME_UPPER", 1, 0, NULL},     /* dw, SAME */
        {1, 3, 13, 13, 4, 3, 3, 1, 2, 2, 1, 1, {5, 5, 5, 5}, "VALID", 1, 0, NULL},
        {1, 3, 1, 1, 4, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, NULL},              /* 1x1 image */
        {1, 2, 1, 7, 3, 1, 3, 1, 1, 1, 1, 1, {0, 1, 0, 1}, NULL, 1, 0, NULL},
        {1, 64, 13, 13, 64, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, "Relu"},
        {1, 160, 7, 7, 32, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, "Relu"},         /* K large, few cols */
        {2, 32, 7, 7, 8, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, NULL},
        {1, 256, 56, 56, 4, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 0, 0, NULL},          /* many column tiles */
        {1, 160, 14, 14, 8, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, "Relu"},        /* two tiles of 98 */
        {2, 64, 28, 28, 40, 1, 1, 1, 2, 2, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, NULL},          /* downsample, residual */
        {1, 32, 28, 28, 24, 1, 1, 1, 2, 2, 1, 1, {0, 0, 0, 0}, NULL, 1, 0, "Relu"},        /* one plane, 2 tiles */
        {2, 24, 9, 9, 40, 3, 3, 1, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, "Relu"},          /* heavy, a plane a thread */
        {1, 24, 9, 9, 40, 3, 3, 1, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, "Relu"},          /* weights-heavy */
        {1, 64, 14, 14, 160, 1, 1, 1, 2, 2, 1, 1, {0, 0, 0, 0}, NULL, 1, 0, NULL},         /* weights-heavy 1x1 */
        {1, 512, 14, 15, 40, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, "Relu"},      /* pointwise, rows kernel */
        {2, 520, 16, 14, 20, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 0, 0, "HardSwish"}, /* pointwise, rows, batch */
        {1, 384, 14, 14, 64, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, NULL},        /* pointwise, rows, fewest */
        /* few taps (stems): the rows kernel on short sums, rows of one to three tiles, residual on each */
        {1, 4, 40, 40, 12, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, "Relu"},
        {2, 3, 61, 61, 10, 7, 7, 1, 2, 2, 1, 1, {3, 3, 3, 3}, NULL, 1, 1, "HardSwish"},    /* stem-like, 31 wide */
        {1, 3, 29, 57, 9, 3, 3, 1, 2, 2, 2, 2, {2, 2, 2, 2}, NULL, 0, 1, NULL},           /* s2 dilation 2 */
        {1, 2, 5, 100, 17, 1, 5, 1, 1, 2, 1, 3, {0, 4, 0, 4}, NULL, 1, 0, "Clip"},          /* 1x5, mixed strides */
    };
    static const struct { kern_conv_isa isa; const char *name; } isas[] = {
        {KERN_CONV_ISA_AUTO, "auto"},
        {KERN_CONV_ISA_GENERIC, "generic"},
        {KERN_CONV_ISA_AVX2, "avx2"},
        {KERN_CONV_ISA_AVX512, "avx512"},
    };
    for (size_t v = 0; v < sizeof isas / sizeof *isas; v++) {
        if (!kern_conv_force_isa(isas[v].isa)) {
            printf("test_conv: %s kernels not available here\n", isas[v].name);
            continue;
        }
        test_kernels(isas[v].name);
        test_im2col_wide(isas[v].name);
        test_rows(isas[v].name);
        test_dw_channel_blocks(isas[v].name);
        test_dw_plain(isas[v].name, 1);
        test_dw_plain(isas[v].name, 2);
        /* the whole op once per build; with every pool/prepare mode on the default one */
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
            for (int mode = 0; mode < (v == 0 ? 4 : 1); mode++) run_case(&cases[i], mode & 1, mode >> 1);
    }
    kern_conv_force_isa(KERN_CONV_ISA_AUTO);
    /* The fused residual is added by each GEMM micro-kernel as it stores C: on every GEMM path, pointwise and
     * im2col, K deeper than one cache block (later blocks read C, not the residual), a 1x1 map (the matrix-vector
     * path), groups, batches, with and without a pool and prepared weights. */
    static const conv_case residual_cases[] = {
        {2, 24, 9, 9, 40, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, "Relu"},
        {1, 40, 9, 9, 20, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, "Relu"},
        {1, 33, 1, 1, 17, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, NULL},
        {1, 8, 9, 9, 12, 3, 3, 2, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 0, 1, "Clip"},
        {2, 16, 14, 14, 36, 1, 1, 1, 2, 2, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, "HardSwish"},
    };
    static const kern_gemm_path gemm_paths[] = {KERN_GEMM_PATH_GENERIC, KERN_GEMM_PATH_AVX2, KERN_GEMM_PATH_AVX512,
                                                KERN_GEMM_PATH_NEON};
    for (size_t p = 0; p < sizeof gemm_paths / sizeof *gemm_paths; p++) {
        if (!kern_gemm_force_path(gemm_paths[p])) continue;
        for (size_t i = 0; i < sizeof residual_cases / sizeof *residual_cases; i++)
            for (int mode = 0; mode < 4; mode++) run_case(&residual_cases[i], mode & 1, mode >> 1);
    }
    /* lens.input_scale (a folded squeeze-excitation Mul): the weights' columns scaled per image, from the packed
     * panels (prepared) or the raw weights, on every GEMM path; odd sizes, batches, bias, residual, activation. */
    static const conv_case scale_cases[] = {
        {1, 37, 9, 9, 11, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 0, NULL},
        {2, 24, 7, 11, 13, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 0, 1, "Relu"},
        {1, 96, 28, 28, 24, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 0, NULL},
        {3, 5, 3, 5, 40, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, "HardSwish"},
        {1, 300, 14, 14, 17, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, NULL}, /* K over one block */
        {1, 16, 1, 1, 8, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 0, NULL},     /* one column */
        {1, 700, 14, 14, 40, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 0, NULL},  /* K over two blocks, 4 panels */
    };
    for (size_t p = 0; p < sizeof gemm_paths / sizeof *gemm_paths; p++) {
        if (!kern_gemm_force_path(gemm_paths[p])) continue;
        for (with_scale = 1; with_scale <= 2; with_scale++)
            for (size_t i = 0; i < sizeof scale_cases / sizeof *scale_cases; i++)
                for (int mode = 0; mode < 4; mode++) run_case(&scale_cases[i], mode & 1, mode >> 1);
        with_scale = 0;
    }
    kern_gemm_force_path(KERN_GEMM_PATH_AUTO);
    test_conv_1d_3d();
    test_scratch_mismatch();
    test_errors();
    core_pool_free(pool2);
    return test_finish("test_conv");
}
