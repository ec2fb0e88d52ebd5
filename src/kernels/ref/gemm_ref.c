/* gemm_ref.c — the scalar fp32 GEMM reference, the oracle every fast GEMM is tested against. Written for
 * obviousness, not speed: one output at a time, accumulated in double so its own rounding error is negligible next
 * to the fast kernels' tolerance. */
#include "../kernels.h"

void kern_sgemm_ref(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc, const kern_epilogue *ep) {
    for (size_t i = 0; i < M; i++) {
        float *c_row = C + i * ldc;
        for (size_t j = 0; j < N; j++) {
            double acc = 0;
            for (size_t k = 0; k < K; k++) {
                float a = trans_a ? A[k * lda + i] : A[i * lda + k];
                float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
                acc += (double)a * (double)b;
            }
            float v = alpha * (float)acc;
            /* beta == 0 must not read C: it may hold NaN */
            if (beta != 0) v += beta * (ep && ep->residual ? ep->residual[i * ep->ld_residual + j] : c_row[j]);
            if (ep && ep->bias) v += ep->bias_per_row ? ep->bias[i] : ep->bias[j];
            c_row[j] = v;
        }
        if (ep && ep->act.kind != KERN_ACT_NONE) kern_activation_apply_ref(&ep->act, c_row, N);
    }
}
