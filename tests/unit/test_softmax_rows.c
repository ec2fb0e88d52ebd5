/* test_softmax_rows.c — kern_softmax_rows (the best version for this CPU) and kern_softmax_rows_ref against softmax
 * in double precision: row lengths 1..80 and 197 (every remainder of the 4- and 16-lane loops), value spreads from
 * 0.1 to 200 (so exponentials underflow), rows with -inf entries, and rows of one repeated value. */
#include <string.h>

#include "kernels/kernels.h"
#include "test.h"

static uint64_t rng_state = 0xda3e39cb94b95bdbull;
static double next_uniform(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static void check(size_t rows, size_t n, double spread, int kind) {
    size_t count = rows * n;
    float *x = malloc(count * sizeof *x), *fast = malloc(count * sizeof *fast), *ref = malloc(count * sizeof *ref);
    for (size_t i = 0; i < count; i++) {
        x[i] = kind == 2 ? 3.5f : (float)((next_uniform() * 2 - 1) * spread);
        if (kind == 1 && i % 3 == 1) x[i] = -INFINITY;
    }
    if (kind == 1)
        for (size_t r = 0; r < rows; r++) x[r * n] = 0.5f; /* every row keeps one finite entry */
    memcpy(fast, x, count * sizeof *x);
    memcpy(ref, x, count * sizeof *x);
    kern_softmax_rows(fast, rows, n);
    kern_softmax_rows_ref(ref, rows, n);
    double worst_fast = 0, worst_ref = 0;
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * n;
        double m = -INFINITY, sum = 0;
        for (size_t i = 0; i < n; i++) m = fmax(m, row[i]);
        for (size_t i = 0; i < n; i++) sum += exp((double)row[i] - m);
        for (size_t i = 0; i < n; i++) {
            double want = exp((double)row[i] - m) / sum;
            double ef = fabs(fast[r * n + i] - want), er = fabs(ref[r * n + i] - want);
            if (!(ef <= worst_fast)) worst_fast = ef;
            if (!(er <= worst_ref)) worst_ref = er;
        }
    }
    /* absolute error on probabilities: relative 1e-6 of the largest (<= 1), plus the underflow clamp's 1e-38 */
    CHECK_MSG(worst_fast < 1e-6, "%s: rows %zu n %zu spread %g kind %d: error %g", kern_sgemm_name(), rows, n, spread,
              kind, worst_fast);
    CHECK_MSG(worst_ref < 1e-6, "ref: rows %zu n %zu spread %g kind %d: error %g", rows, n, spread, kind, worst_ref);
    free(x), free(fast), free(ref);
}

int main(void) {
    static const double spreads[] = {0.1, 5, 30, 200};
    for (size_t n = 1; n <= 80; n++)
        for (size_t s = 0; s < sizeof spreads / sizeof *spreads; s++) check(3, n, spreads[s], 0);
    for (int kind = 0; kind < 3; kind++) {
        check(5, 197, 8, kind);
        check(2, 17, 8, kind);
        check(4, 3, 8, kind);
    }
    kern_softmax_rows(NULL, 0, 0); /* nothing to do: must not touch memory */
    return test_finish("test_softmax_rows");
}
