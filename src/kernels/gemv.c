/* gemv.c — y = A x for GEMMs whose right operand is one column (N == 1): 1x1 convolutions on 1x1 feature maps, such
 * as squeeze-excite blocks. The packed GEMM would spend a whole micro-tile of FMAs on each column; here every lane
 * of every FMA is a useful multiply-add. Reads A in the GEMM's packed-panel layout, so packed conv weights serve both.
 * Compiled without ISA flags: the intrinsics live in x86/gemv_avx*.c. */
#include <string.h>

#include "gemv_internal.h"

/* Below this many multiply-adds the product takes less time than waking the pool. */
#define GEMV_PARALLEL_MACS 65536

/* GCC/Clang vector extensions: SSE2 on x86-64, NEON on arm64, plain scalars elsewhere. */
typedef float gemv_vec __attribute__((vector_size(16)));

/* The portable kernel, for panels of any mr (4 on the generic path: one vector per step). */
static void gemv_panels_generic(size_t mr, size_t K, const float *a, const float *x, size_t m, float *y,
                                const kern_gemv_tail *t) {
    for (size_t r0 = 0; r0 < m; r0 += mr, a += K * mr) {
        size_t rows = m - r0 < mr ? m - r0 : mr;
        for (size_t i0 = 0; i0 < rows; i0 += 4) {
            gemv_vec even = {0, 0, 0, 0}, odd = even; /* two chains of additions */
            float acc[4];
            if (mr % 4 == 0) {
                size_t k = 0;
                for (; k + 2 <= K; k += 2) {
                    gemv_vec a0, a1;
                    memcpy(&a0, a + k * mr + i0, sizeof a0);
                    memcpy(&a1, a + (k + 1) * mr + i0, sizeof a1);
                    even += a0 * x[k];
                    odd += a1 * x[k + 1];
                }
                if (k < K) {
                    gemv_vec a0;
                    memcpy(&a0, a + k * mr + i0, sizeof a0);
                    even += a0 * x[k];
                }
                even += odd;
                memcpy(acc, &even, sizeof acc);
            } else {
                for (size_t i = 0; i < 4; i++) {
                    acc[i] = 0;
                    for (size_t k = 0; k < K && i0 + i < mr; k++) acc[i] += a[k * mr + i0 + i] * x[k];
                }
            }
            for (size_t i = 0; i < 4 && i0 + i < rows; i++) {
                size_t r = r0 + i0 + i;
                float v = acc[i] + t->bias_all;
                if (t->load_y) v += t->beta * y[r];
                if (t->bias_row) v += t->bias_row[r];
                y[r] = v;
            }
        }
    }
}

typedef struct gemv_job {
    kern_gemm_path path;
    size_t mr, M, K;
    const float *a, *x;
    float *y;
    kern_gemv_tail tail;
    kern_activation act;
    size_t panels_per_task;
} gemv_job;

/* Rows of panels [p0, p1), finished and activated. */
static void gemv_panels(const gemv_job *j, size_t p0, size_t p1) {
    size_t r0 = p0 * j->mr, r1 = p1 * j->mr < j->M ? p1 * j->mr : j->M;
    const float *a = j->a + p0 * j->K * j->mr;
    float *y = j->y + r0;
    kern_gemv_tail t = j->tail;
    if (t.bias_row) t.bias_row += r0;
    switch (j->path) {
#if defined(LENS_X86)
    case KERN_GEMM_PATH_AVX512: kern_gemv_panels_avx512(j->K, a, j->x, r1 - r0, y, &t); break;
    case KERN_GEMM_PATH_AVX2: kern_gemv_panels_avx2(j->K, a, j->x, r1 - r0, y, &t); break;
#endif
    default: gemv_panels_generic(j->mr, j->K, a, j->x, r1 - r0, y, &t); break;
    }
    if (j->act.kind != KERN_ACT_NONE) kern_activation_apply(&j->act, y, r1 - r0);
}

static void gemv_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const gemv_job *j = ctx;
    size_t panels = (j->M + j->mr - 1) / j->mr, p0 = (size_t)task * j->panels_per_task;
    size_t p1 = p0 + j->panels_per_task < panels ? p0 + j->panels_per_task : panels;
    gemv_panels(j, p0, p1);
}

void kern_sgemv_packed(core_pool *pool, kern_gemm_path path, size_t mr, const float *a, size_t M, size_t K,
                       const float *x, float beta, float *y, const kern_epilogue *ep) {
    gemv_job j = {
        .path = path, .mr = mr, .M = M, .K = K, .a = a, .x = x, .y = y,
        .tail = {.beta = beta, .load_y = beta != 0},
    };
    if (ep) {
        if (ep->bias && ep->bias_per_row) j.tail.bias_row = ep->bias;
        else if (ep->bias) j.tail.bias_all = ep->bias[0];
        j.act = ep->act;
    }
    size_t panels = (M + mr - 1) / mr;
    int threads = core_pool_size(pool);
    if (threads <= 1 || panels < 2 || (double)M * (double)K < GEMV_PARALLEL_MACS) {
        gemv_panels(&j, 0, panels);
        return;
    }
    j.panels_per_task = (panels + (size_t)threads - 1) / (size_t)threads;
    core_pool_run(pool, (int64_t)((panels + j.panels_per_task - 1) / j.panels_per_task), gemv_task, &j);
}
