/* transpose.c — the float32 matrix transpose that Transpose and the channels-first LayerNormalization use for their
 * cache-sized tiles: 4 x 4 blocks moved through registers (GCC/Clang vector extensions, so SSE2 or NEON without ISA
 * flags), scalar edges. Touches only its arguments. */
#include <string.h>

#include "kernels.h"

typedef float transpose_vec __attribute__((vector_size(16)));

static inline transpose_vec transpose_load(const float *p) {
    transpose_vec v;
    memcpy(&v, p, sizeof v);
    return v;
}

void kern_transpose_f32(const float *src, size_t ld_src, float *dst, size_t ld_dst, size_t rows, size_t cols) {
    size_t rows4 = rows & ~(size_t)3, cols4 = cols & ~(size_t)3;
    for (size_t i = 0; i < rows4; i += 4) {
        const float *s = src + i * ld_src;
        for (size_t j = 0; j < cols4; j += 4) {
            transpose_vec r0 = transpose_load(s + j), r1 = transpose_load(s + ld_src + j);
            transpose_vec r2 = transpose_load(s + 2 * ld_src + j), r3 = transpose_load(s + 3 * ld_src + j);
            /* interleave pairs of rows, then pairs of pairs: column k of the block becomes vector k */
            transpose_vec lo01 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5);
            transpose_vec hi01 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7);
            transpose_vec lo23 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5);
            transpose_vec hi23 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);
            transpose_vec c0 = __builtin_shufflevector(lo01, lo23, 0, 1, 4, 5);
            transpose_vec c1 = __builtin_shufflevector(lo01, lo23, 2, 3, 6, 7);
            transpose_vec c2 = __builtin_shufflevector(hi01, hi23, 0, 1, 4, 5);
            transpose_vec c3 = __builtin_shufflevector(hi01, hi23, 2, 3, 6, 7);
            float *d = dst + j * ld_dst + i;
            memcpy(d, &c0, sizeof c0);
            memcpy(d + ld_dst, &c1, sizeof c1);
            memcpy(d + 2 * ld_dst, &c2, sizeof c2);
            memcpy(d + 3 * ld_dst, &c3, sizeof c3);
        }
        for (size_t j = cols4; j < cols; j++)
            for (size_t k = 0; k < 4; k++) dst[j * ld_dst + i + k] = s[k * ld_src + j];
    }
    for (size_t i = rows4; i < rows; i++)
        for (size_t j = 0; j < cols; j++) dst[j * ld_dst + i] = src[i * ld_src + j];
}
