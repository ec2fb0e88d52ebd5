/* test_act.c — checks the vector activations (kern_activation_map, kern_softmax_row, kern_softmax_exp_row) and
 * kern_layernorm_row on every build this CPU runs (portable, AVX2, AVX-512) against the exact functions computed in double with libm, in ulps of
 * the float result: random values over the useful range, random bit patterns (huge, tiny, denormal, inf, NaN), and a
 * list of edges (branch boundaries, saturation and overflow points); every length 0..70 for the vector tails, in place
 * and out of place, with guards past the end. The piecewise-linear activations are checked against the scalar
 * reference (kern_activation_apply_ref), and the reference itself against a few hand values. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"
#include "test.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rng_next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rng_range(float lo, float hi) { return lo + (hi - lo) * (float)(rng_next() & 0xffffff) / 16777216.0f; }
static float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- Oracles ------------------------------------------------------------------------------------------------------ */

typedef struct act_case {
    const char *name;
    kern_activation act;
    double (*exact)(double x, double alpha); /* NULL: compare against kern_activation_apply_ref */
    double ulps;                             /* allowed error in ulps of the exact result */
    double abs_x;                            /* plus abs_x * |x| (cancellation near a zero of 1 + erf/tanh) */
    double abs;                              /* plus abs (cancellation near the zero of alpha x + beta) */
} act_case;

static double exact_exp(double x, double a) { (void)a; return exp(x); }
static double exact_sigmoid(double x, double a) { (void)a; return 1.0 / (1.0 + exp(-x)); }
static double exact_silu(double x, double a) { (void)a; return x / (1.0 + exp(-x)); }
static double exact_tanh(double x, double a) { (void)a; return tanh(x); }
static double exact_erf(double x, double a) { (void)a; return erf(x); }
static double exact_gelu(double x, double a) { (void)a; return 0.5 * x * erfc(-x * 0.70710678118654752440); }
static double exact_gelu_tanh(double x, double a) {
    (void)a;
    return 0.5 * x * (1.0 + tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x)));
}
/* alpha x rounded to float first, as any float implementation (the ONNX op included) must: its rounding error,
 * amplified by e^(alpha x), is not the kernel's. */
static double exact_quick_gelu(double x, double a) { return x / (1.0 + exp(-(double)(float)(a * x))); }

static const act_case cases[] = {
    {"exp", {KERN_ACT_EXP, 0, 0}, exact_exp, 2, 0, 0},
    {"sigmoid", {KERN_ACT_SIGMOID, 0, 0}, exact_sigmoid, 4, 0, 0},
    {"silu", {KERN_ACT_SILU, 0, 0}, exact_silu, 4, 0, 0},
    {"tanh", {KERN_ACT_TANH, 0, 0}, exact_tanh, 2, 0, 0},
    {"erf", {KERN_ACT_ERF, 0, 0}, exact_erf, 4, 0, 0},
    {"gelu", {KERN_ACT_GELU, 0, 0}, exact_gelu, 4, 0x1p-24, 0},
    {"gelu_tanh", {KERN_ACT_GELU_TANH, 0, 0}, exact_gelu_tanh, 4, 0x1p-24, 0},
    {"quick_gelu", {KERN_ACT_QUICK_GELU, 1.702f, 0}, exact_quick_gelu, 4, 0, 0},
    {"relu", {KERN_ACT_RELU, 0, 0}, NULL, 0, 0, 0},
    {"clip", {KERN_ACT_CLIP, -0.5f, 6.0f}, NULL, 0, 0, 0},
    {"leaky_relu", {KERN_ACT_LEAKY_RELU, 0.1f, 0}, NULL, 0, 0, 0},
    {"hard_sigmoid", {KERN_ACT_HARD_SIGMOID, 0.2f, 0.5f}, NULL, 1, 0, 0x1p-24},
    {"hard_swish", {KERN_ACT_HARD_SWISH, 0, 0}, NULL, 2, 0x1p-23, 0},
};
#define N_CASES (sizeof cases / sizeof *cases)

/* The spacing of floats at |v| (denormal spacing below FLT_MIN). */
static double ulp_at(double v) {
    v = fabs(v);
    if (v < FLT_MIN) return 0x1p-149;
    int e;
    frexp(v, &e);
    return ldexp(1.0, e - 24);
}

static double worst_ulps; /* the largest plain ulp error seen for the current case, for the summary line */

/* Error of y for input x in ulps beyond the allowance (0 when within), or INFINITY for a wrong NaN or inf. */
static double excess(const act_case *c, float x, float y) {
    double want;
    if (c->exact) want = c->exact(x, c->act.alpha);
    else {
        float r = x;
        kern_activation_apply_ref(&c->act, &r, 1);
        want = r;
    }
    if (isnan(want) || isnan(y)) return isnan(want) && isnan(y) ? 0 : INFINITY;
    if (fabs(want) > FLT_MAX) want = want > 0 ? INFINITY : -INFINITY; /* overflows in float */
    if (isinf(want) || isinf(y)) return want == y ? 0 : INFINITY;
    /* a product x * f(x) (SiLU) with f(x) denormal carries |x| times f's denormal rounding */
    double denormal = fabs(want) < FLT_MIN * fmax(1.0, fabs((double)x)) ? 2 * 0x1p-149 * fabs((double)x) : 0;
    if (!denormal && fabs(want) >= 1e-30) worst_ulps = fmax(worst_ulps, fabs((double)y - want) / ulp_at(want));
    double err = fabs((double)y - want) - c->abs_x * fabs((double)x) - c->abs - denormal;
    double u = err / ulp_at(want);
    return u > c->ulps ? u : 0;
}

/* ---- Inputs ------------------------------------------------------------------------------------------------------- */

static const float edges[] = {
    0.0f, -0.0f, 0x1p-149f, -0x1p-149f, 0x1p-130f, -0x1p-130f, FLT_MIN, -FLT_MIN, 1e-20f, -1e-20f, 1e-7f, -1e-7f,
    0.5f, -0.5f, 0.624999f, 0.625f, -0.625f, 0.625001f, 0.99999f, 1.0f, -1.0f, 1.00001f, 1.4142134f, 1.4142136f,
    -1.4142136f, 2.0f, -2.0f, 3.0f, -3.0f, 3.9f, -3.9f, 4.0f, -4.0f, 6.0f, -6.0f, 8.9999f, 9.0f, -9.0f, 9.0001f,
    12.7f, -12.7f, 13.0f, -13.0f, 17.0f, -17.0f, 20.0f, -20.0f, 30.0f, -30.0f, 87.0f, -87.0f, 87.4f, -87.4f, 88.0f,
    88.72f, 88.73f, 89.0f, 90.0f, -100.0f, -103.0f, -103.9f, -104.0f, -110.0f, -120.0f, 1e6f, -1e6f, 1e20f,
    -1e20f, FLT_MAX, -FLT_MAX, INFINITY, -INFINITY, NAN, -NAN,
};
#define N_EDGES (sizeof edges / sizeof *edges)

/* A mix: edges, values over [-12, 12], over [-120, 120], and raw bit patterns (any float at all). */
static void fill_inputs(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t pick = rng_next() % 8;
        if (pick == 0) x[i] = edges[rng_next() % N_EDGES];
        else if (pick <= 4) x[i] = rng_range(-12.0f, 12.0f);
        else if (pick <= 5) x[i] = rng_range(-120.0f, 120.0f);
        else if (pick <= 6) x[i] = rng_range(-1.5f, 1.5f);
        else x[i] = bits_to_float(rng_next() << 16 ^ rng_next());
    }
}

/* ---- Checks ------------------------------------------------------------------------------------------------------- */

#define BIG 200000

static float xs[BIG], ys[BIG];

/* Accuracy of one activation over xs[0..n) (computed into ys); reports the worst error under the label what. */
static void check_inputs(const act_case *c, const char *isa, size_t n, const char *what) {
    kern_activation_map(&c->act, xs, ys, n);
    int bad = 0;
    double worst = 0;
    float worst_x = 0;
    worst_ulps = 0;
    for (size_t i = 0; i < n; i++) {
        double e = excess(c, xs[i], ys[i]);
        if (e > 0) {
            if (bad++ < 5)
                fprintf(stderr, "  %s/%s: x=%a (%g) y=%a (%.9g) exceeds by %g ulp\n", isa, c->name, xs[i], xs[i],
                        ys[i], ys[i], e);
            if (e > worst) worst = e, worst_x = xs[i];
        }
    }
    CHECK_MSG(bad == 0, "%s/%s%s: %d values outside %g ulp (worst at x=%g)", isa, c->name, what, bad, c->ulps,
              worst_x);
    printf("%s/%s%s: max error %.2f ulp\n", isa, c->name, what, worst_ulps);
}

/* Over the edges and BIG mixed inputs (nearly every vector mixes small and large lanes). */
static void check_accuracy(const act_case *c, const char *isa) {
    memcpy(xs, edges, sizeof edges);
    fill_inputs(xs + N_EDGES, BIG - N_EDGES);
    check_inputs(c, isa, BIG, "");
}

/* Over sorted inputs, so whole vectors fall into one range and take the paths kept for vectors whose lanes all lie
 * in it (GELU's erf polynomial for |x| < sqrt 2, its piecewise polynomial for |x| < 5.25): [-7, 7] in steps of
 * 2^-13, then the 96 floats around each end of GELU's intervals ((5 + i) / 4, i = 0..16) and around sqrt 2,
 * both signs. */
static void check_sweep(const act_case *c, const char *isa) {
    size_t n = 0;
    for (int k = -7 * 8192; k <= 7 * 8192; k++) xs[n++] = (float)k * 0x1p-13f;
    for (int sign = -1; sign <= 1; sign += 2)
        for (int i = -1; i <= 16; i++) {
            float e = i < 0 ? 1.41421356f : (float)(5 + i) / 4.0f;
            float v = nextafterf(e, 0.0f);
            for (int k = 0; k < 48; k++) v = nextafterf(v, 0.0f);
            for (int k = 0; k < 96; k++, v = nextafterf(v, INFINITY)) xs[n++] = (float)sign * v;
        }
    check_inputs(c, isa, n, " (sorted)");
}

/* Every length 0..70, at an odd offset, out of place and in place: each result equals the long run's (the tail
 * goes through the same arithmetic), and nothing past n is written. */
static void check_lengths(const act_case *c, const char *isa) {
    enum { MAXN = 70, GUARD = 20 };
    float in[MAXN + GUARD + 1], out[MAXN + GUARD + 1], full[MAXN];
    fill_inputs(in + 1, MAXN);
    kern_activation_map(&c->act, in + 1, full, MAXN);
    int bad = 0;
    for (size_t n = 0; n <= MAXN; n++) {
        for (int k = 0; k < MAXN + GUARD + 1; k++) out[k] = 777.0f;
        kern_activation_map(&c->act, in + 1, out + 1, n);
        float inplace[MAXN + GUARD];
        for (int k = 0; k < MAXN + GUARD; k++) inplace[k] = 777.0f;
        memcpy(inplace, in + 1, n * sizeof(float));
        kern_activation_apply(&c->act, inplace, n);
        if (out[0] != 777.0f) bad++;
        for (size_t i = 0; i < n; i++) {
            if (memcmp(&out[1 + i], &full[i], sizeof(float)) && !(isnan(out[1 + i]) && isnan(full[i]))) bad++;
            if (memcmp(&inplace[i], &full[i], sizeof(float)) && !(isnan(inplace[i]) && isnan(full[i]))) bad++;
        }
        for (size_t i = n; i < MAXN + GUARD; i++) {
            if (out[1 + i] != 777.0f) bad++;
            if (inplace[i] != 777.0f) bad++;
        }
    }
    CHECK_MSG(bad == 0, "%s/%s: %d mismatches over lengths 0..%d", isa, c->name, bad, MAXN);
}

/* kern_activation_apply_rows on rows x n blocks (n 0..40, rows 0..5, row stride n + 0..3): each row equals the one-row
 * kern_activation_map of it, and the gaps between rows and the floats after the last stay untouched. */
static void check_rows(const act_case *c, const char *isa) {
    enum { MAXN = 40, MAXR = 5, MAXG = 3, SIZE = MAXR * (MAXN + MAXG) + 8 };
    float in[SIZE], buf[SIZE], want[MAXN];
    /* a fixed spread over [-8.6, 8.6] (not from rng_next: the other checks' random inputs stay as they were) */
    for (size_t i = 0; i < SIZE; i++) in[i] = (float)((int)(i * 37 % 101) - 50) * 0.173f;
    int bad = 0;
    for (size_t n = 0; n <= MAXN; n++)
        for (size_t rows = 0; rows <= MAXR; rows++)
            for (size_t ld = n; ld <= n + MAXG; ld++) {
                memcpy(buf, in, sizeof buf);
                kern_activation_apply_rows(&c->act, buf, ld, rows, n);
                for (size_t i = 0; i < SIZE; i++) {
                    size_t r = ld ? i / ld : 0, k = ld ? i % ld : i;
                    int inside = r < rows && k < n && (ld || i < n);
                    if (!inside) {
                        if (memcmp(&buf[i], &in[i], sizeof(float))) bad++;
                    } else if (k == 0) {
                        kern_activation_map(&c->act, in + i, want, n);
                        for (size_t j = 0; j < n; j++)
                            if (memcmp(&buf[i + j], &want[j], sizeof(float)) && !(isnan(buf[i + j]) && isnan(want[j])))
                                bad++;
                    }
                }
            }
    CHECK_MSG(bad == 0, "%s/%s: %d mismatches in row blocks", isa, c->name, bad);
}

/* Softmax and LogSoftmax rows of every length 1..70 and a few long ones against double sums; in place too. */
static void check_softmax(const char *isa) {
    static const size_t long_rows[] = {1000, 1001, 4097};
    int bad = 0;
    for (size_t t = 0; t < 70 + sizeof long_rows / sizeof *long_rows; t++) {
        size_t n = t < 70 ? t + 1 : long_rows[t - 70];
        for (int log_form = 0; log_form < 2; log_form++) {
            float scale = t % 3 == 0 ? 30.0f : 4.0f;
            for (size_t i = 0; i < n; i++) xs[i] = rng_range(-scale, scale) + (t % 5 == 0 ? 1000.0f : 0.0f);
            if (t % 7 == 0 && n > 2) xs[n / 2] = -INFINITY; /* a masked position */
            /* x - max rounds to float first, an error of up to |x - max| 2^-24 in every e^(x - max) */
            double m = -INFINITY, s = 0;
            for (size_t i = 0; i < n; i++) m = fmax(m, xs[i]);
            for (size_t i = 0; i < n; i++) s += exp((double)xs[i] - m);
            ys[n] = 777.0f;
            kern_softmax_row(xs, ys, n, log_form);
            for (size_t i = 0; i < n; i++) {
                double want = log_form ? (double)xs[i] - m - log(s) : exp((double)xs[i] - m) / s;
                double tol = log_form ? 4e-6 * (1.0 + fabs(want))
                                      : 4 * ulp_at(want) + want * fabs((double)xs[i] - m) * 0x1p-24;
                if (!(fabs(ys[i] - want) <= tol || ys[i] == want)) {
                    if (bad++ < 5)
                        fprintf(stderr, "  %s softmax n=%zu log=%d i=%zu: %.9g vs %.9g\n", isa, n, log_form, i,
                                ys[i], want);
                }
            }
            if (ys[n] != 777.0f) bad++;
            /* in place gives the same */
            memcpy(ys + n + 1, xs, n * sizeof(float));
            kern_softmax_row(ys + n + 1, ys + n + 1, n, log_form);
            if (memcmp(ys, ys + n + 1, n * sizeof(float))) bad++;
            if (log_form) continue;
            /* the numerators alone (kern_softmax_exp_row, attention's softmax): e^(x - max) and their sum */
            ys[n] = 777.0f;
            double sum = kern_softmax_exp_row(xs, ys, n), sum_tol = 0;
            for (size_t i = 0; i < n; i++) {
                double want = exp((double)xs[i] - m);
                double tol = want == 0 ? 0 : 4 * ulp_at(want) + want * fabs((double)xs[i] - m) * 0x1p-24;
                sum_tol += tol + s * 0x1p-24; /* and each float addition's rounding */
                if (!(fabs(ys[i] - want) <= tol || ys[i] == want)) {
                    if (bad++ < 5)
                        fprintf(stderr, "  %s softmax numerator n=%zu i=%zu: %.9g vs %.9g\n", isa, n, i, ys[i], want);
                }
            }
            if (!(fabs(sum - s) <= sum_tol) || ys[n] != 777.0f) {
                if (bad++ < 5) fprintf(stderr, "  %s softmax numerators' sum n=%zu: %.9g vs %.9g\n", isa, n, sum, s);
            }
            memcpy(ys + n + 1, xs, n * sizeof(float));
            float again = kern_softmax_exp_row(ys + n + 1, ys + n + 1, n);
            if (again != (float)sum || memcmp(ys, ys + n + 1, n * sizeof(float))) bad++;
        }
    }
    CHECK_MSG(bad == 0, "%s: %d softmax mismatches", isa, bad);
}

/* LayerNorm rows (kern_layernorm_row) of every length 1..70 and a few long ones, with and without bias, against
 * double statistics; in place too. Inputs with a large common offset test the two-pass variance. */
static void check_layernorm(const char *isa) {
    static const size_t long_rows[] = {768, 1001, 4097};
    static float scale[BIG], bias[BIG];
    int bad = 0;
    for (size_t t = 0; t < 70 + sizeof long_rows / sizeof *long_rows; t++) {
        size_t n = t < 70 ? t + 1 : long_rows[t - 70];
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            float offset = t % 4 == 1 ? 300.0f : 0.0f, eps = t % 3 ? 1e-5f : 0.5f;
            for (size_t i = 0; i < n; i++) {
                xs[i] = rng_range(-2.0f, 2.0f) + offset;
                scale[i] = rng_range(-1.5f, 1.5f);
                bias[i] = rng_range(-1.0f, 1.0f);
            }
            double m = 0, v = 0;
            for (size_t i = 0; i < n; i++) m += xs[i];
            m /= (double)n;
            for (size_t i = 0; i < n; i++) v += (xs[i] - m) * (xs[i] - m);
            double inv = 1 / sqrt(v / (double)n + eps);
            /* float statistics: the mean rounds to about |offset| 2^-24 times a few, which moves every output */
            double tol = 1e-5 + 8 * (fabs(m) + 2) * 0x1p-24 * inv * 1.5;
            float mean_got, inv_got;
            ys[n] = 777.0f;
            kern_layernorm_row(xs, ys, n, scale, with_bias ? bias : NULL, eps, &mean_got, &inv_got);
            for (size_t i = 0; i < n; i++) {
                double want = (xs[i] - m) * inv * scale[i] + (with_bias ? bias[i] : 0);
                if (!(fabs(ys[i] - want) <= tol)) {
                    if (bad++ < 5)
                        fprintf(stderr, "  %s layernorm n=%zu bias=%d i=%zu: %.9g vs %.9g\n", isa, n, with_bias, i,
                                ys[i], want);
                }
            }
            if (!(fabs(mean_got - m) <= 1e-6 * (1 + fabs(m))) || !(fabs(inv_got - inv) <= 1e-5 * inv)) {
                if (bad++ < 5)
                    fprintf(stderr, "  %s layernorm n=%zu: mean %.9g vs %.9g, inv %.9g vs %.9g\n", isa, n, mean_got, m,
                            inv_got, inv);
            }
            if (ys[n] != 777.0f) bad++;
            memcpy(ys + n + 1, xs, n * sizeof(float));
            float mean2, inv2;
            kern_layernorm_row(ys + n + 1, ys + n + 1, n, scale, with_bias ? bias : NULL, eps, &mean2, &inv2);
            if (memcmp(ys, ys + n + 1, n * sizeof(float)) || mean2 != mean_got || inv2 != inv_got) bad++;
        }
    }
    CHECK_MSG(bad == 0, "%s: %d layernorm mismatches", isa, bad);
}

/* The reference itself on values worked out by hand. */
static void check_reference(void) {
    float v[4] = {0.0f, 1.0f, -1.0f, 3.0f};
    kern_activation a = {KERN_ACT_SILU, 0, 0};
    kern_activation_apply_ref(&a, v, 4);
    CHECK_NEAR(v[0], 0.0, 0);
    CHECK_NEAR(v[1], 0.7310585786, 1e-7);
    CHECK_NEAR(v[2], -0.2689414214, 1e-7);
    CHECK_NEAR(v[3], 2.8577223804, 1e-6);
    float g[3] = {0.0f, 1.0f, -1.0f};
    a.kind = KERN_ACT_GELU;
    kern_activation_apply_ref(&a, g, 3);
    CHECK_NEAR(g[0], 0.0, 0);
    CHECK_NEAR(g[1], 0.8413447461, 1e-7);
    CHECK_NEAR(g[2], -0.1586552539, 1e-7);
    /* and the oracle agrees with the reference where libm's float functions are accurate */
    float e[2] = {1.0f, -2.5f};
    a.kind = KERN_ACT_ERF;
    kern_activation_apply_ref(&a, e, 2);
    CHECK_NEAR(e[0], exact_erf(1.0, 0), 1e-7);
    CHECK_NEAR(e[1], exact_erf(-2.5, 0), 1e-7);
}

int main(void) {
    static const struct { kern_act_isa isa; const char *name; } isas[] = {
        {KERN_ACT_ISA_GENERIC, "generic"}, {KERN_ACT_ISA_AVX2, "avx2"}, {KERN_ACT_ISA_AVX512, "avx512"}};
    check_reference();
    for (size_t k = 0; k < sizeof isas / sizeof *isas; k++) {
        if (!kern_activation_force_isa(isas[k].isa)) {
            printf("%s: not available here, skipped\n", isas[k].name);
            continue;
        }
        for (size_t c = 0; c < N_CASES; c++) {
            check_accuracy(&cases[c], isas[k].name);
            if (cases[c].exact) check_sweep(&cases[c], isas[k].name);
            check_lengths(&cases[c], isas[k].name);
            check_rows(&cases[c], isas[k].name);
        }
        check_softmax(isas[k].name);
        check_layernorm(isas[k].name);
    }
    kern_activation_force_isa(KERN_ACT_ISA_AUTO);
    return test_finish("test_act");
}
