/* test_transpose.c — kern_transpose_f32 against plain loops on random sizes (1..37 rows and columns, so every
 * remainder of the 4 x 4 blocks), with leading dimensions wider than the matrices; cells outside the destination
 * matrix must stay untouched. */
#include <string.h>

#include "kernels/kernels.h"
#include "test.h"

static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint64_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

int main(void) {
    for (int iter = 0; iter < 400; iter++) {
        size_t rows = 1 + next_random() % 37, cols = 1 + next_random() % 37;
        size_t ld_src = cols + next_random() % 5, ld_dst = rows + next_random() % 5;
        size_t n_src = rows * ld_src, n_dst = cols * ld_dst;
        float *src = malloc(n_src * sizeof *src), *dst = malloc(n_dst * sizeof *dst);
        for (size_t i = 0; i < n_src; i++) src[i] = (float)(next_random() % 100000) - 50000.0f;
        for (size_t i = 0; i < n_dst; i++) dst[i] = -1.0f;
        kern_transpose_f32(src, ld_src, dst, ld_dst, rows, cols);
        int bad = 0;
        for (size_t j = 0; j < cols; j++)
            for (size_t i = 0; i < ld_dst; i++) {
                float want = i < rows ? src[i * ld_src + j] : -1.0f;
                bad += dst[j * ld_dst + i] != want;
            }
        CHECK_MSG(bad == 0, "rows %zu cols %zu ld %zu/%zu: %d cells wrong", rows, cols, ld_src, ld_dst, bad);
        free(src), free(dst);
    }
    return test_finish("test_transpose");
}
