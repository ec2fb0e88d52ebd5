/* attention.c — one head of scaled dot-product attention over a block of query rows (kern_attention), for the
 * lens.Attention op. Where the GEMM runs its AVX-512 micro-kernel, x86/attention_avx512.c computes it 12 query rows
 * at a time on that micro-kernel, with the scores in L1. Elsewhere (AVX2, portable builds) the same three steps run
 * on the whole block through kern_sgemm and the softmax row kernel, the scores in the scratch. Touches only its
 * arguments and the scratch. */
#include "gemm_internal.h"

#if defined(LENS_X86)
static bool fast_path(void) { return kern_gemm_active_path() == KERN_GEMM_PATH_AVX512; }
#endif

size_t kern_attention_row_step(void) {
#if defined(LENS_X86)
    if (fast_path()) return KERN_GEMM_AVX512_MR;
#endif
    return 1;
}

size_t kern_attention_scratch_floats(size_t rows, size_t keys, size_t dim) {
#if defined(LENS_X86)
    if (fast_path()) return kern_attention_scratch_avx512(keys, dim);
#endif
    (void)dim;
    return rows * keys;
}

void kern_attention(const kern_attention_head *h, float *scratch, bool kv_ready) {
    if (!h->rows || !h->keys || !h->dim) return;
#if defined(LENS_X86)
    if (fast_path()) {
        kern_attention_avx512(h, scratch, kv_ready);
        return;
    }
#endif
    (void)kv_ready;
    /* scores [rows, keys] in the scratch, normalised, then times V straight into y */
    kern_sgemm(NULL, 0, 1, h->rows, h->keys, h->dim, h->scale, h->q, h->ldq, h->k, h->ldk, 0.0f, scratch, h->keys,
               NULL);
    for (size_t i = 0; i < h->rows; i++) kern_softmax_row(scratch + i * h->keys, scratch + i * h->keys, h->keys, 0);
    kern_sgemm(NULL, 0, 0, h->rows, h->dim, h->keys, 1.0f, scratch, h->keys, h->v, h->ldv, 0.0f, h->y, h->ldy, NULL);
}
