/* gemv_internal.h — the matrix-vector path for GEMMs with N == 1 (gemv.c, x86/gemv_avx*.c): y = A x over A packed
 * in gemm.c's panels, so one packing serves both. What gemm.c's dispatch and the ISA kernels share. Not installed;
 * only the kernels layer includes it. */
#ifndef LENS_GEMV_INTERNAL_H
#define LENS_GEMV_INTERNAL_H

#include "gemm_internal.h"

/* How a GEMV kernel finishes its rows: y = acc (+ beta * y when load_y) (+ bias_row[i]) + bias_all. The activation
 * is the driver's (kern_activation_apply on the finished rows). */
typedef struct kern_gemv_tail {
    float beta;             /* only read when load_y */
    int load_y;             /* 0: y's old contents are never read (they may be NaN) */
    const float *bias_row;  /* bias of the first row (one value per row), or NULL */
    float bias_all;         /* added to every row */
} kern_gemv_tail;

/* y[0:m) = A x for the m rows held by ceil(m/MR) packed panels (as kern_sgemm_pack_a stores them: K groups of MR
 * floats, padding rows zero, panel p at a + p*K*MR), finished by t. K >= 1; x and y are contiguous. Each ISA's MR is
 * its GEMM micro-kernel's (panels packed for that path). */
#if defined(LENS_X86)
void kern_gemv_panels_avx512(size_t K, const float *a, const float *x, size_t m, float *y, const kern_gemv_tail *t);
void kern_gemv_panels_avx2(size_t K, const float *a, const float *x, size_t m, float *y, const kern_gemv_tail *t);
#endif

/* y[M] = A[M,K] x[K] (+ beta * y) then ep (bias per row, or ep->bias[0] for every row when not per row; then the
 * activation), A packed by path `path` into panels of mr rows (gemm.c's packed-A layout). K >= 1. Runs on the calling
 * thread unless the product is large enough to pay for waking the pool. */
void kern_sgemv_packed(core_pool *pool, kern_gemm_path path, size_t mr, const float *a, size_t M, size_t K,
                       const float *x, float beta, float *y, const kern_epilogue *ep);

#endif
