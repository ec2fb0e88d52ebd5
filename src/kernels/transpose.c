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

/* Column j of the block (rows i.. i + 3) to dst, plus the residual there when there is one (read before the store:
 * res may be dst itself). */
static inline void transpose_store(float *d, const float *res, transpose_vec c) {
    if (res) c += transpose_load(res);
    memcpy(d, &c, sizeof c);
}

void kern_transpose_f32(const float *src, size_t ld_src, float *dst, size_t ld_dst, size_t rows, size_t cols,
                        const float *res) {
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
            size_t at = j * ld_dst + i;
            transpose_store(dst + at, res ? res + at : NULL, __builtin_shufflevector(lo01, lo23, 0, 1, 4, 5));
            at += ld_dst;
            transpose_store(dst + at, res ? res + at : NULL, __builtin_shufflevector(lo01, lo23, 2, 3, 6, 7));
            at += ld_dst;
            transpose_store(dst + at, res ? res + at : NULL, __builtin_shufflevector(hi01, hi23, 0, 1, 4, 5));
            at += ld_dst;
            transpose_store(dst + at, res ? res + at : NULL, __builtin_shufflevector(hi01, hi23, 2, 3, 6, 7));
        }
        for (size_t j = cols4; j < cols; j++)
            for (size_t k = 0; k < 4; k++) {
                size_t at = j * ld_dst + i + k;
                dst[at] = s[k * ld_src + j] + (res ? res[at] : 0.0f);
            }
    }
    for (size_t i = rows4; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            size_t at = j * ld_dst + i;
            dst[at] = src[i * ld_src + j] + (res ? res[at] : 0.0f);
        }
}
