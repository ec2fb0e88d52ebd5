/* act_avx512.c — the activation kernels of act_body.h built with 64-byte vectors (compiled with AVX-512 flags;
 * called through kernels/act.c only when the CPU has AVX-512F). */
#define ACT_VBYTES 64
#define ACT_SUFFIX avx512
#include "../act_body.h"

/* The rest of a GEMM tile's GELU (see KERN_GEMM_TILE_ACT_GELU): the micro-kernel stored x Phi(x) where x^2 < 2 (the
 * result then has y^2 < 1.7) and x itself elsewhere; those, and only those, have y^2 >= 2 or are NaN, and get
 * act_gelu now. */
void kern_gemm_gelu_rest_avx512(float *c, size_t ldc, size_t rows, size_t n) {
    for (size_t i = 0; i < rows; i++, c += ldc)
        for (size_t j = 0; j < n; j += ACT_VLEN) {
            __mmask16 in = n - j >= ACT_VLEN ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
            __m512 y = _mm512_maskz_loadu_ps(in, c + j);
            __mmask16 raw = _mm512_mask_cmp_ps_mask(in, _mm512_mul_ps(y, y), _mm512_set1_ps(2.0f), _CMP_NLT_UQ);
            if (raw) _mm512_mask_storeu_ps(c + j, raw, (__m512)act_gelu((act_vec)y));
        }
}
