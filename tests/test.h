/* test.h — a tiny assertion harness shared by the C tests. Each test program prints one line per failure and a
 * closing "N passed, N failed" line, and exits non-zero when anything failed. */
#ifndef LENS_TEST_H
#define LENS_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int test_passed, test_failed;

#define CHECK(cond)                                                                                  \
    do {                                                                                             \
        if (cond) test_passed++;                                                                     \
        else {                                                                                       \
            test_failed++;                                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                 \
        }                                                                                            \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                         \
    do {                                                                                             \
        if (cond) test_passed++;                                                                     \
        else {                                                                                       \
            test_failed++;                                                                           \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                 \
            fprintf(stderr, __VA_ARGS__);                                                            \
            fputc('\n', stderr);                                                                     \
        }                                                                                            \
    } while (0)

#define CHECK_NEAR(a, b, tol) CHECK_MSG(fabs((double)(a) - (double)(b)) <= (tol), "%g vs %g", (double)(a), (double)(b))

static inline int test_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, test_passed, test_failed);
    return test_failed ? 1 : 0;
}

/* A deterministic xorshift generator for test data; seed test_rng_state to vary the sequence. */
static uint64_t test_rng_state = 0x9e3779b97f4a7c15ull;

static inline uint32_t test_rng_next(void) {
    test_rng_state ^= test_rng_state << 13;
    test_rng_state ^= test_rng_state >> 7;
    test_rng_state ^= test_rng_state << 17;
    return (uint32_t)(test_rng_state >> 16);
}
/* Uniform in [-1, 1). */
static inline float test_rng_uniform(void) { return (float)(test_rng_next() & 0xffffff) / (float)0x800000 - 1.0f; }
static inline size_t test_rng_below(size_t n) { return test_rng_next() % n; }

#endif
