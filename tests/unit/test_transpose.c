/* test_transpose.c — kern_transpose_f32 against plain loops on random sizes (1..37 rows and columns, so every
 * remainder of the 4 x 4 blocks), with leading dimensions wider than the matrices, without a residual, with one in
 * its own buffer and with one in the destination itself; cells outside the destination matrix must stay untouched. */
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
        float *res = malloc(n_dst * sizeof *res);
        for (size_t i = 0; i < n_src; i++) src[i] = (float)(next_random() % 100000) - 50000.0f;
        for (size_t i = 0; i < n_dst; i++) res[i] = (float)(next_random() % 1000);
        int mode = iter % 3; /* 0: no residual, 1: its own buffer, 2: the destination */
        for (size_t i = 0; i < n_dst; i++) dst[i] = mode == 2 ? res[i] : -1.0f;
        kern_transpose_f32(src, ld_src, dst, ld_dst, rows, cols, mode == 0 ? NULL : mode == 1 ? res : dst);
        int bad = 0;
        for (size_t j = 0; j < cols; j++)
            for (size_t i = 0; i < ld_dst; i++) {
                float outside = mode == 2 ? res[j * ld_dst + i] : -1.0f;
                float want = i < rows ? src[i * ld_src + j] + (mode ? res[j * ld_dst + i] : 0.0f) : outside;
                bad += dst[j * ld_dst + i] != want;
            }
        CHECK_MSG(bad == 0, "rows %zu cols %zu ld %zu/%zu residual %d: %d cells wrong", rows, cols, ld_src, ld_dst,
                  mode, bad);
        free(src), free(dst), free(res);
    }
    return test_finish("test_transpose");
}
