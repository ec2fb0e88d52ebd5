/* gemm.c — the fp32 GEMM driver: picks a micro-kernel by CPU features (AVX-512, AVX2+FMA, NEON, portable C), packs
 * A and B into micro-panels, blocks for the caches GotoBLAS-style (KC x NR panel of B in L1, MC x KC block of A in L2),
 * splits C over the thread pool, and applies the epilogue (bias, activation) to each tile as it is finished.
 * Compiled without ISA flags: the intrinsics live in x86/gemm_avx*.c and arm/gemm_neon.c. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gemv_internal.h"

/* ---- Kernels ---------------------------------------------------------------------------------------------------- */

typedef struct gemm_kernel {
    const char *name;
    kern_gemm_path path;
    size_t mr, nr;               /* micro-tile */
    size_t mc, kc;               /* cache blocks: mc a multiple of mr */
    size_t kc_packed_b;          /* kc when B comes packed (a weight): no B packing per block to amortise */
    double fma_lanes_per_cycle;  /* for the thread-split cost model only */
    int direct_a;                /* the micro-kernel reads A in place (kern_gemm_tile.lda) when B is packed */
    kern_gemm_ukernel_fn ukernel;
    /* the transposing pack (see kern_gemm_pack_rows_avx2), or NULL for the C loops below */
    void (*pack_rows)(const float *src, size_t ld, size_t rows, size_t kc, float scale, float *dst, size_t width);
    /* finishes a tile the micro-kernel stored with KERN_GEMM_TILE_ACT_GELU; NULL: the kernel has no such mode */
    void (*gelu_rest)(float *c, size_t ldc, size_t rows, size_t n);
} gemm_kernel;

/* The portable micro-kernel: 4 x 8 accumulators fit SSE2's 16 registers. */
#define GENERIC_MR 4
#define GENERIC_NR 8

static float generic_finish(float x, const float *cp, const kern_gemm_tile *t, float bias) { /* cp: the old C */
    if (t->load_c) x += t->beta * *cp;
    x += bias;
    switch (t->act) {
    case KERN_GEMM_TILE_ACT_RELU: return x > 0 ? x : 0;
    case KERN_GEMM_TILE_ACT_CLIP: return x < t->act_alpha ? t->act_alpha : x > t->act_beta ? t->act_beta : x;
    case KERN_GEMM_TILE_ACT_LEAKY: return x < 0 ? t->act_alpha * x : x;
    default: return x;
    }
}

/* GCC/Clang vector extensions, not intrinsics: SSE2 on x86-64, NEON on arm64, plain scalars elsewhere. */
typedef float generic_vec __attribute__((vector_size(16)));
#define GENERIC_VECS (GENERIC_NR / 4)

static void generic_ukernel(size_t kc, const float *a, const kern_gemm_b *bsrc, float *c, size_t ldc, size_t m,
                            size_t n, const kern_gemm_tile *t) {
    generic_vec acc[GENERIC_MR][GENERIC_VECS] = {{{0}}};
    const float *b = bsrc->b;
    float *copy = bsrc->ldb ? bsrc->copy : NULL;
    for (size_t k = 0; k < kc; k++) {
        float row[GENERIC_NR];
        if (bsrc->ldb) { /* direct: only the n valid columns exist */
            for (size_t jj = 0; jj < GENERIC_NR; jj++) row[jj] = jj < n ? b[jj] : 0.0f;
            if (copy) {
                memcpy(copy, row, sizeof row);
                copy += GENERIC_NR;
            }
        } else {
            memcpy(row, b, sizeof row);
        }
        generic_vec bv[GENERIC_VECS];
        memcpy(bv, row, sizeof bv);
#pragma GCC unroll 4
        for (int i = 0; i < GENERIC_MR; i++) {
            generic_vec ai = {a[i], a[i], a[i], a[i]};
#pragma GCC unroll 4
            for (int v = 0; v < GENERIC_VECS; v++) acc[i][v] += ai * bv[v];
        }
        a += GENERIC_MR;
        b += bsrc->ldb ? bsrc->ldb : GENERIC_NR;
    }
    float tile[GENERIC_MR][GENERIC_NR];
    memcpy(tile, acc, sizeof tile);
    const float *ci = t->c_in ? t->c_in : c;
    size_t ldi = t->c_in ? t->ldc_in : ldc;
    for (size_t i = 0; i < m; i++)
        for (size_t jj = 0; jj < n; jj++) {
            float bias = (t->bias_row ? t->bias_row[i] : 0) + (t->bias_col ? t->bias_col[jj] : 0);
            c[i * ldc + jj] = generic_finish(tile[i][jj], &ci[i * ldi + jj], t, bias);
        }
}

static const gemm_kernel kernel_generic = {
    "generic", KERN_GEMM_PATH_GENERIC, GENERIC_MR, GENERIC_NR, 64, 256, 256, 4, 0, generic_ukernel, NULL, NULL,
};

#if defined(LENS_X86)
/* MC x KC = 144 x 256 (144 KiB of A) sits in a 1-2 MiB L2; a KC x NR panel of B (32 KiB) in L1. Measured on Zen 4:
 * 96..288 and 128..512 are all within a few percent. With B packed once (a MatMul by a weight) a deeper KC = 768
 * (432 KiB of A, still in L2) reads and writes C a third as often: ViT's K = 768 layers take one K block. */
static const gemm_kernel kernel_avx512 = {
    "avx512", KERN_GEMM_PATH_AVX512, KERN_GEMM_AVX512_MR, KERN_GEMM_AVX512_NR, 144, 256, 768, 16, 1,
    kern_gemm_ukernel_avx512, kern_gemm_pack_rows_avx2, kern_gemm_gelu_rest_avx512,
};
static const gemm_kernel kernel_avx2 = {
    "avx2", KERN_GEMM_PATH_AVX2, KERN_GEMM_AVX2_MR, KERN_GEMM_AVX2_NR, 96, 256, 256, 16, 0, kern_gemm_ukernel_avx2,
    kern_gemm_pack_rows_avx2, NULL,
};
#endif

#if defined(LENS_ARM64)
/* A KC x NR panel of B is 12 KiB at KC = 256, in any arm64 L1 (32-64 KiB); MC x KC = 128 x 256 of A is 128 KiB, in
 * L2 (256 KiB - 1 MiB on Cortex-A7x / Neoverse). Not tuned on hardware: sized by the same rule as the x86 blocks. Two
 * 128-bit FMA pipes: 8 lanes a cycle. */
static const gemm_kernel kernel_neon = {
    "neon", KERN_GEMM_PATH_NEON, KERN_GEMM_NEON_MR, KERN_GEMM_NEON_NR, 128, 256, 512, 8, 0, kern_gemm_ukernel_neon,
    kern_gemm_pack_rows_neon, NULL,
};
#endif

static const gemm_kernel *kernel_for(kern_gemm_path path) {
    const core_cpu *cpu = core_cpu_features();
    (void)cpu;
    switch (path) {
    case KERN_GEMM_PATH_AUTO:
#if defined(LENS_X86)
        if (cpu->avx512f) return &kernel_avx512;
        if (cpu->avx2 && cpu->fma) return &kernel_avx2;
#endif
#if defined(LENS_ARM64)
        if (cpu->neon) return &kernel_neon;
#endif
        return &kernel_generic;
    case KERN_GEMM_PATH_GENERIC: return &kernel_generic;
#if defined(LENS_X86)
    case KERN_GEMM_PATH_AVX2: return cpu->avx2 && cpu->fma ? &kernel_avx2 : NULL;
    case KERN_GEMM_PATH_AVX512: return cpu->avx512f ? &kernel_avx512 : NULL;
#endif
#if defined(LENS_ARM64)
    case KERN_GEMM_PATH_NEON: return cpu->neon ? &kernel_neon : NULL;
#endif
    default: return NULL;
    }
}

static const gemm_kernel *forced_kernel;

static const gemm_kernel *active_kernel(void) {
    return forced_kernel ? forced_kernel : kernel_for(KERN_GEMM_PATH_AUTO);
}

bool kern_gemm_force_path(kern_gemm_path path) {
    const gemm_kernel *k = kernel_for(path);
    if (!k) return false;
    forced_kernel = path == KERN_GEMM_PATH_AUTO ? NULL : k;
    return true;
}

const char *kern_sgemm_name(void) { return active_kernel()->name; }

kern_gemm_path kern_gemm_active_path(void) { return active_kernel()->path; }

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }
static size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }
static size_t round_up(size_t a, size_t b) { return div_up(a, b) * b; }

/* ---- Packing ---------------------------------------------------------------------------------------------------- */

/* Packs rows [i0, i0+m) and columns [p0, p0+kc) of op(A), times alpha, into ceil(m/mr) panels of kc x mr floats, the
 * panel of rows ir starting at dst + (ir/mr) * panel_stride. Rows past m are zero. */
static void pack_a(const gemm_kernel *kern, int trans_a, const float *A, size_t lda, size_t i0, size_t m, size_t p0,
                   size_t kc, float alpha, float *dst, size_t panel_stride) {
    const size_t mr = kern->mr;
    for (size_t ir = 0; ir < m; ir += mr) {
        size_t rows = min_size(mr, m - ir);
        float *d = dst + (ir / mr) * panel_stride;
        if (!trans_a && kern->pack_rows) {
            kern->pack_rows(A + (i0 + ir) * lda + p0, lda, rows, kc, alpha, d, mr);
            continue; /* pads too */
        }
        if (!trans_a) {
            for (size_t i = 0; i < rows; i++) {
                const float *src = A + (i0 + ir + i) * lda + p0;
                for (size_t k = 0; k < kc; k++) d[k * mr + i] = alpha * src[k];
            }
        } else {
            for (size_t k = 0; k < kc; k++) {
                const float *src = A + (p0 + k) * lda + i0 + ir;
                for (size_t i = 0; i < rows; i++) d[k * mr + i] = alpha * src[i];
            }
        }
        if (rows < mr)
            for (size_t k = 0; k < kc; k++) memset(d + k * mr + rows, 0, (mr - rows) * sizeof(float));
    }
}

/* Packs rows [p0, p0+kc) and columns [j0, j0+n) of op(B) into ceil(n/nr) panels of kc x nr floats, the panel of
 * columns jr starting at dst + (jr/nr) * panel_stride. Columns past n are zero. */
static void pack_b(const gemm_kernel *kern, int trans_b, const float *B, size_t ldb, size_t p0, size_t kc, size_t j0,
                   size_t n, float *dst, size_t panel_stride) {
    const size_t nr = kern->nr;
    for (size_t jr = 0; jr < n; jr += nr) {
        size_t cols = min_size(nr, n - jr);
        float *d = dst + (jr / nr) * panel_stride;
        if (!trans_b) {
            for (size_t k = 0; k < kc; k++) {
                memcpy(d + k * nr, B + (p0 + k) * ldb + j0 + jr, cols * sizeof(float));
                if (cols < nr) memset(d + k * nr + cols, 0, (nr - cols) * sizeof(float));
            }
        } else if (kern->pack_rows) {
            kern->pack_rows(B + (j0 + jr) * ldb + p0, ldb, cols, kc, 1.0f, d, nr);
        } else {
            for (size_t j = 0; j < cols; j++) {
                const float *src = B + (j0 + jr + j) * ldb + p0;
                for (size_t k = 0; k < kc; k++) d[k * nr + j] = src[k];
            }
            if (cols < nr)
                for (size_t k = 0; k < kc; k++) memset(d + k * nr + cols, 0, (nr - cols) * sizeof(float));
        }
    }
}

/* ---- The blocked product ---------------------------------------------------------------------------------------- */

typedef struct gemm_job {
    const gemm_kernel *kern;
    size_t M, N, K;
    /* op(A): either the source (packed per block, scaled by alpha) or whole-K panels packed once */
    int trans_a;
    const float *A;
    size_t lda;
    float alpha;
    const float *a_packed; /* panel p (rows p*mr..) at a_packed + p*K*mr */
    int direct_a;          /* the micro-kernel reads op(A) = A in place, rows lda apart: no packing */
    /* op(B): likewise */
    int trans_b;
    const float *B;
    size_t ldb;
    const float *b_packed; /* panel p (columns p*nr..) at b_packed + p*K*nr */
    float beta;
    float *C;
    size_t ldc;
    const kern_epilogue *ep;
    /* blocking and split */
    size_t mc, kc;
    size_t tile_m, tile_n, grid_n; /* each task owns a tile_m x tile_n block of C */
    size_t scratch_a, scratch_b;   /* packing buffer floats per thread: an mc x kc block of A, a kc x nr panel of B */
} gemm_job;

static int tile_act(const gemm_kernel *kern, const kern_activation *act) {
    switch (act->kind) {
    case KERN_ACT_NONE: return KERN_GEMM_TILE_ACT_NONE;
    case KERN_ACT_RELU: return KERN_GEMM_TILE_ACT_RELU;
    case KERN_ACT_CLIP: return KERN_GEMM_TILE_ACT_CLIP;
    case KERN_ACT_LEAKY_RELU: return KERN_GEMM_TILE_ACT_LEAKY;
    case KERN_ACT_GELU: return kern->gelu_rest ? KERN_GEMM_TILE_ACT_GELU : -1;
    default: return -1; /* applied after the tile is stored */
    }
}

/* gemm_block's L2 prefetch of packed A (kern_gemm_tile.a_prefetch_l2) is for threads' shares of A larger than this.
 * Measured on Zen 4 with the weights cold: 2048 x 49 x 512 +8% on one thread, +3% on two; 2048 x 49 x 1024 +4%
 * and +1.4%; 512 x 49 x 4608 and 1024 x 196 x 512 +1..2%. */
#define GEMM_A_L2_PREFETCH_MIN_BYTES ((size_t)1 << 20)

/* gemm_block's L2 prefetch of the next panel of packed B (kern_gemm_tile.b_prefetch_l2) is for B larger than this. */
#define GEMM_B_L2_PREFETCH_MIN_BYTES ((size_t)1 << 20)

/* C[m0:m1, n0:n1] (m0 a multiple of mr, n0 of nr). abuf holds an mc x kc block of A, bbuf one kc x nr panel of B.
 * Loop order: K blocks, then MC blocks of A (packed once, kept in L2), then NR-wide column panels of B, each
 * packed into bbuf by its first tile (or read from the packed matrix) and reused from L1 by the tiles below it. */
static void gemm_block(const gemm_job *j, size_t m0, size_t m1, size_t n0, size_t n1, float *abuf, float *bbuf) {
    const gemm_kernel *kern = j->kern;
    const size_t mr = kern->mr, nr = kern->nr, K = j->K;
    const kern_epilogue *ep = j->ep;
    int fused_act = ep ? tile_act(kern, &ep->act) : KERN_GEMM_TILE_ACT_NONE;
    int late_act = fused_act < 0, gelu_raw = 0;
    int direct_b = !j->b_packed && !j->trans_b && j->ldb != 0;

    /* the first K block's beta term reads the residual, later ones the partial sums in C */
    const float *residual = ep && ep->residual && j->beta != 0 ? ep->residual : NULL;
    if (residual == j->C && ep->ld_residual == j->ldc) residual = NULL; /* in place: the plain beta * C */

    /* Packed weights too large to stay in L2 between calls (a network's at batch 1) come from memory on the first
     * column panel of each block, one micro-panel per tile; the next micro-panel lies K * mr floats on. Fetch it into
     * L2 while this one runs; later column panels find the block in L2 and skip it. */
    const size_t a_pf = j->a_packed && (m1 - m0) * K * sizeof(float) > GEMM_A_L2_PREFETCH_MIN_BYTES
                            ? K * mr * sizeof(float) : 0;
    /* Likewise packed B too large for L2 (a MatMul's weight) and cut into K blocks: a block's slices of successive
     * column panels lie K * nr floats apart, not one after the other, so the hardware prefetcher does not run ahead
     * into the next one. The first tile of each column panel fetches the next panel's slice into L2 while the
     * panel's other tiles run (weights from memory, one thread, thread CPU time: ViT's 197 x 768 x 3072 8.80 ->
     * 8.47 ms, ConvNeXt-T's 49 x 768 x 3072 2.58 -> 2.22 ms and 196 x 384 x 1536 2.15 -> 2.09 ms). With K in one block
     * the panels form one stream, which the hardware already follows: there it gained nothing (197 x 3072 x 768)
     * or cost 1% (197 x 2304 x 768). */
    const size_t b_pf = j->b_packed && j->kc < K && K * j->N * sizeof(float) > GEMM_B_L2_PREFETCH_MIN_BYTES &&
                                m1 - m0 > mr
                            ? K * nr * sizeof(float) : 0;
    for (size_t pc = 0; pc < K; pc += j->kc) {
        size_t kc = min_size(j->kc, K - pc);
        int first = pc == 0, last = pc + kc == K;
        kern_gemm_tile t = {
            .beta = first ? j->beta : 1.0f,
            .load_c = !first || j->beta != 0,
            .act = KERN_GEMM_TILE_ACT_NONE,
        };
        if (first && residual) t.ldc_in = ep->ld_residual;
        if (last && ep) {
            t.act = late_act ? KERN_GEMM_TILE_ACT_NONE : fused_act;
            t.gelu_raw = &gelu_raw;
            t.act_alpha = ep->act.alpha;
            t.act_beta = ep->act.beta;
        }
        for (size_t ic = m0; ic < m1; ic += j->mc) {
            size_t mc = min_size(j->mc, m1 - ic);
            const float *ap;
            size_t a_stride;
            if (j->a_packed) {
                ap = j->a_packed + (ic / mr) * K * mr + pc * mr;
                a_stride = K * mr;
            } else if (j->direct_a) {
                ap = j->A + ic * j->lda + pc;
                a_stride = mr * j->lda;
                t.lda = j->lda;
            } else {
                pack_a(kern, j->trans_a, j->A, j->lda, ic, mc, pc, kc, j->alpha, abuf, kc * mr);
                ap = abuf;
                a_stride = kc * mr;
            }
            for (size_t jr = n0; jr < n1; jr += nr) {
                size_t n = min_size(nr, n1 - jr);
                kern_gemm_b panel = {bbuf, 0, NULL}, first_tile;
                if (j->b_packed) panel.b = j->b_packed + (jr / nr) * K * nr + pc * nr;
                else if (!direct_b) pack_b(kern, j->trans_b, j->B, j->ldb, pc, kc, jr, n, bbuf, kc * nr);
                t.a_prefetch_l2 = jr == n0 ? a_pf : 0;
                t.b_prefetch_l2 = jr + nr < n1 ? b_pf : 0;
                t.c_prefetch_next = jr + nr < n1;
                first_tile = panel;
                if (direct_b) {
                    first_tile.b = j->B + pc * j->ldb + jr;
                    first_tile.ldb = j->ldb;
                    first_tile.copy = mc > mr ? bbuf : NULL;
                    /* rows of B no longer than a packed row: B itself is as compact as its packed copy */
                    if (j->ldb <= nr) {
                        first_tile.copy = NULL;
                        panel = first_tile;
                    }
                }
                for (size_t ir = 0; ir < mc; ir += mr) {
                    size_t m = min_size(mr, mc - ir);
                    float *c = j->C + (ic + ir) * j->ldc + jr;
                    if (first && residual) t.c_in = residual + (ic + ir) * ep->ld_residual + jr;
                    if (last && ep && ep->bias) {
                        t.bias_row = ep->bias_per_row ? ep->bias + ic + ir : NULL;
                        t.bias_col = ep->bias_per_row ? NULL : ep->bias + jr;
                    }
                    kern->ukernel(kc, ap + (ir / mr) * a_stride, ir == 0 ? &first_tile : &panel, c, j->ldc, m, n, &t);
                    t.b_prefetch_l2 = 0;
                    if (last && late_act)
                        kern_activation_apply_rows(&ep->act, c, j->ldc, m, n);
                    else if (gelu_raw) {
                        kern->gelu_rest(c, j->ldc, m, n);
                        gelu_raw = 0;
                    }
                }
            }
        }
    }
}

/* ---- Per-thread workspace -------------------------------------------------------------------------------------- */

/* Each thread that runs GEMM tasks keeps its packing buffer for its lifetime: grown to the largest block it has
 * needed (at most mc x kc + kc x nr floats of the largest kernel, under 450 KiB), never shrunk, freed by a thread-key
 * destructor when the thread exits. A steady-state GEMM allocates nothing. */
static pthread_key_t workspace_key;
static pthread_once_t workspace_once = PTHREAD_ONCE_INIT;
static int workspace_key_ok;
static _Thread_local float *workspace;
static _Thread_local size_t workspace_floats;

static void workspace_free(void *p) { core_aligned_free(p); }

static void workspace_init(void) { workspace_key_ok = pthread_key_create(&workspace_key, workspace_free) == 0; }

/* This thread's workspace of at least floats floats, or NULL when it cannot be had (out of memory). */
static bool workspace_refused; /* test hook: kern_gemm_refuse_workspace */

void kern_gemm_refuse_workspace(bool refuse) { workspace_refused = refuse; }

static float *workspace_get(size_t floats) {
    if (workspace_refused) return NULL;
    if (floats <= workspace_floats) return workspace;
    pthread_once(&workspace_once, workspace_init);
    if (!workspace_key_ok) return NULL;
    float *p = core_aligned_alloc(floats * sizeof(float));
    if (!p || pthread_setspecific(workspace_key, p)) {
        core_aligned_free(p);
        return NULL;
    }
    core_aligned_free(workspace);
    workspace = p;
    workspace_floats = floats;
    return p;
}

/* Stack fallback when no workspace can be had: blocks of one micro-panel of A (mc = mr) and kc <= 256. */
#define GEMM_STACK_KC 256
#define GEMM_STACK_FLOATS (GEMM_STACK_KC * (KERN_GEMM_AVX512_MR + KERN_GEMM_AVX512_NR))
_Static_assert(GENERIC_MR <= KERN_GEMM_AVX512_MR && GENERIC_NR <= KERN_GEMM_AVX512_NR &&
                   KERN_GEMM_AVX2_MR <= KERN_GEMM_AVX512_MR && KERN_GEMM_AVX2_NR <= KERN_GEMM_AVX512_NR &&
                   KERN_GEMM_NEON_MR <= KERN_GEMM_AVX512_MR && KERN_GEMM_NEON_NR <= KERN_GEMM_AVX512_NR,
               "stack fallback size");

static void gemm_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const gemm_job *j = ctx;
    size_t tm = (size_t)task / j->grid_n, tn = (size_t)task % j->grid_n;
    size_t m0 = tm * j->tile_m, n0 = tn * j->tile_n;
    size_t m1 = min_size(j->M, m0 + j->tile_m), n1 = min_size(j->N, n0 + j->tile_n);
    size_t floats = j->scratch_a + j->scratch_b;
    float *buf = floats ? workspace_get(floats) : NULL;
    if (floats && !buf) {
        /* Out of memory: the same block with panels of A one micro-panel tall, packed on the stack. */
        _Alignas(64) float stack[GEMM_STACK_FLOATS];
        gemm_job small = *j;
        small.mc = j->kern->mr;
        small.kc = min_size(j->kc, GEMM_STACK_KC);
        small.scratch_a = j->a_packed || j->direct_a ? 0 : small.mc * small.kc;
        gemm_block(&small, m0, m1, n0, n1, stack, stack + small.scratch_a);
        return;
    }
    gemm_block(j, m0, m1, n0, n1, buf, buf + j->scratch_a);
}

/* Chooses tile_m x tile_n blocks of C, one per task, minimising an estimate of the time of the slowest thread:
 * rounds of tasks times (FMA cycles + packing + a fixed cost per task), plus the cost of waking the pool. Small M
 * gives a grid of one row (split over N), small N one column. */
static void choose_split(gemm_job *j, int threads) {
    const gemm_kernel *kern = j->kern;
    const size_t mr = kern->mr, nr = kern->nr;
    size_t mt = div_up(j->M, mr), nt = div_up(j->N, nr); /* micro-tile rows and columns */
    j->tile_m = mt * mr;
    j->tile_n = nt * nr;
    j->grid_n = 1;
    if (threads <= 1) return;
    const double task_cost = 2000, wake_cost = 20000, pack_cost = 0.5;
    const int pack_a = !j->a_packed && !j->direct_a;
    double best = (double)j->M * (double)j->N * (double)j->K / kern->fma_lanes_per_cycle +
                  pack_cost * (double)j->K * ((pack_a ? (double)j->M : 0) + (j->b_packed ? 0 : (double)j->N));
    size_t max_gm = min_size(mt, 4 * (size_t)threads);
    for (size_t gm = 1; gm <= max_gm; gm++) {
        size_t tm = div_up(mt, gm), real_gm = div_up(mt, tm);
        for (size_t want = 1; want <= 4; want++) {
            size_t gn = min_size(nt, div_up(want * (size_t)threads, real_gm));
            size_t tn = div_up(nt, gn), real_gn = div_up(nt, tn);
            size_t tasks = real_gm * real_gn;
            if (tasks < 2) continue;
            double rounds = (double)div_up(tasks, (size_t)threads);
            /* the largest task; sizes clipped to C so a split that leaves one thread the ragged edge loses */
            double rows = (double)min_size(tm * mr, j->M), cols = (double)min_size(tn * nr, j->N);
            double per_task = rows * cols * (double)j->K / kern->fma_lanes_per_cycle +
                              pack_cost * (double)j->K * ((pack_a ? rows : 0) + (j->b_packed ? 0 : cols)) +
                              task_cost;
            double cost = rounds * per_task + wake_cost;
            if (cost < best) {
                best = cost;
                j->tile_m = tm * mr;
                j->tile_n = tn * nr;
                j->grid_n = real_gn;
            }
        }
    }
}

/* C = beta * C then the epilogue, for K == 0. */
static void gemm_no_k(size_t M, size_t N, float beta, float *C, size_t ldc, const kern_epilogue *ep) {
    for (size_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        for (size_t jj = 0; jj < N; jj++) {
            float v = beta == 0 ? 0.0f : beta * (ep && ep->residual ? ep->residual[i * ep->ld_residual + jj] : c[jj]);
            if (ep && ep->bias) v += ep->bias_per_row ? ep->bias[i] : ep->bias[jj];
            c[jj] = v;
        }
        if (ep && ep->act.kind != KERN_ACT_NONE) kern_activation_apply(&ep->act, c, N);
    }
}

static void gemm_run(core_pool *pool, gemm_job *j) {
    if (j->M == 0 || j->N == 0) return;
    if (j->K == 0) {
        gemm_no_k(j->M, j->N, j->beta, j->C, j->ldc, j->ep);
        return;
    }
    const gemm_kernel *kern = j->kern;
    int threads = core_pool_size(pool);
    j->kc = min_size(j->b_packed ? kern->kc_packed_b : kern->kc, j->K);
    /* A row or two by a packed weight (a classifier at batch 1) streams B once: in one K block each column panel is
     * one run of memory instead of K / kc runs far apart */
    if (j->b_packed && j->M <= 2) j->kc = j->K;
    choose_split(j, threads);
    j->mc = min_size(kern->mc, j->tile_m);
    /* Short K and a wide C (MobileNetV2's and EfficientNet's 16 -> 96 1x1 conv on 112x112): each column panel is
     * a few FMAs per output, so C's stores set the pace; one micro-panel of rows per block sweeps C mr rows at a
     * time instead of all M rows per panel, and the stores stream (cold C: 61 -> 79 GFLOP/s on 96 x 12544 x 16).
     * B is then read per tile, not copied: cheap while it is K rows. Longer K (24 on 144 x 3136) gains nothing. */
    if (j->K <= 16 && j->tile_m > 2 * kern->mr && j->tile_n >= 2048) j->mc = kern->mr;
    size_t tasks = div_up(j->M, j->tile_m) * j->grid_n;
    j->scratch_a = j->a_packed || j->direct_a ? 0 : round_up(j->mc * j->kc, 16);
    j->scratch_b = j->b_packed ? 0 : round_up(j->kc * kern->nr, 16);
    core_pool_run(pool, (int64_t)tasks, gemm_task, j);
}

/* ---- Public entry points ---------------------------------------------------------------------------------------- */

/* Whether a tile's rows of A, lda floats apart, spread over enough L1 sets to be read in place: 64 sets of 64-byte
 * lines, 8 ways (Zen 4, Intel alike). With lda a multiple of 1024 floats all twelve rows fall into one set and evict
 * each other (-8% on 197 x 768 x 3072); packing wins there. */
static int direct_a_fits(const gemm_job *j) {
    int count[64] = {0}, worst = 0;
    for (size_t i = 0; i < j->kern->mr; i++) {
        int set = (int)(i * j->lda * sizeof(float) / 64 % 64);
        if (++count[set] > worst) worst = count[set];
    }
    return worst <= 6;
}

void kern_sgemm(core_pool *pool, int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha, const float *A,
                size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc, const kern_epilogue *ep) {
    gemm_job j = {
        .kern = active_kernel(), .M = M, .N = N, .K = K,
        .trans_a = trans_a, .A = A, .lda = lda, .alpha = alpha,
        .trans_b = trans_b, .B = B, .ldb = ldb,
        .beta = beta, .C = C, .ldc = ldc, .ep = ep,
    };
    gemm_run(pool, &j);
}

/* Aligned room for ceil(rows/tile) panels of k x tile floats; NULL on overflow or out-of-memory. */
static float *alloc_panels(size_t rows, size_t k, size_t tile, size_t *bytes) {
    size_t floats;
    if (rows > SIZE_MAX - tile || !core_mul_size(round_up(rows, tile), k, &floats) ||
        !core_mul_size(floats, sizeof(float), bytes))
        return NULL;
    return core_aligned_alloc(*bytes);
}

struct kern_packed_a {
    const gemm_kernel *kern;
    size_t M, K;
    size_t bytes;
    float *data; /* ceil(M/mr) panels of K x mr */
};

kern_packed_a *kern_sgemm_pack_a(int trans_a, size_t M, size_t K, const float *A, size_t lda) {
    const gemm_kernel *kern = active_kernel();
    size_t bytes;
    kern_packed_a *p = calloc(1, sizeof *p);
    if (!p || !(p->data = alloc_panels(M, K, kern->mr, &bytes))) {
        free(p);
        return NULL;
    }
    p->kern = kern;
    p->M = M;
    p->K = K;
    p->bytes = bytes + sizeof *p;
    if (M && K) pack_a(kern, trans_a, A, lda, 0, M, 0, K, 1.0f, p->data, K * kern->mr);
    return p;
}

void kern_packed_a_free(kern_packed_a *packed) {
    if (!packed) return;
    core_aligned_free(packed->data);
    free(packed);
}

size_t kern_packed_a_bytes(const kern_packed_a *packed) { return packed ? packed->bytes : 0; }

void kern_sgemm_packed_a(core_pool *pool, const kern_packed_a *A, int trans_b, size_t N, const float *B, size_t ldb,
                         float beta, float *C, size_t ldc, const kern_epilogue *ep) {
    if (N == 1 && A->M && A->K && ldc == 1 && (trans_b || ldb == 1)) { /* one contiguous column: y = A x */
        kern_epilogue plain;
        if (ep && ep->residual) { /* the matrix-vector kernel reads its beta term from C */
            if (beta != 0 && ep->residual != C)
                for (size_t i = 0; i < A->M; i++) C[i] = ep->residual[i * ep->ld_residual];
            plain = *ep;
            plain.residual = NULL;
            ep = &plain;
        }
        kern_sgemv_packed(pool, A->kern->path, A->kern->mr, A->data, A->M, A->K, B, beta, C, ep);
        return;
    }
    gemm_job j = {
        .kern = A->kern, .M = A->M, .N = N, .K = A->K,
        .alpha = 1.0f, .a_packed = A->data,
        .trans_b = trans_b, .B = B, .ldb = ldb,
        .beta = beta, .C = C, .ldc = ldc, .ep = ep,
    };
    gemm_run(pool, &j);
}

/* The AVX-512 kernel's 12-row panels with the row count known: three 4-float vectors per k. */
static void scale_panels_12(const float *src, const float *scale, float *dst, size_t panels, size_t K) {
    typedef float v4 __attribute__((vector_size(16)));
    for (size_t p = 0; p < panels; p++)
        for (size_t k = 0; k < K; k++, src += 12, dst += 12) {
            float q = scale[k];
            v4 a, b, c, f = {q, q, q, q};
            memcpy(&a, src, 16), memcpy(&b, src + 4, 16), memcpy(&c, src + 8, 16);
            a *= f, b *= f, c *= f;
            memcpy(dst, &a, 16), memcpy(dst + 4, &b, 16), memcpy(dst + 8, &c, 16);
        }
}

size_t kern_packed_a_scaled_floats(size_t M, size_t K) {
    return (M + KERN_PACKED_A_MAX_MR) * K; /* ceil(M/mr) * mr rows for any mr up to the bound */
}

int kern_sgemm_packed_a_scaled(core_pool *pool, const kern_packed_a *A, const float *scale, float *buf,
                               size_t buf_floats, size_t N, const float *B, size_t ldb, float beta, float *C,
                               size_t ldc, const kern_epilogue *ep) {
    const size_t mr = A->kern->mr, K = A->K, panels = div_up(A->M, mr);
    if (mr > KERN_PACKED_A_MAX_MR || buf_floats < panels * mr * K) return 0;
    /* panel p holds A[p*mr + r][k] at p*K*mr + k*mr + r: one scale per run of mr floats */
    if (mr == KERN_GEMM_AVX512_MR) scale_panels_12(A->data, scale, buf, panels, K);
    else
        for (size_t p = 0; p < panels; p++) {
            const float *src = A->data + p * K * mr;
            float *dst = buf + p * K * mr;
            for (size_t k = 0; k < K; k++)
                for (size_t r = 0; r < mr; r++) dst[k * mr + r] = src[k * mr + r] * scale[k];
        }
    gemm_job j = {
        .kern = A->kern, .M = A->M, .N = N, .K = K,
        .alpha = 1.0f, .a_packed = buf,
        .B = B, .ldb = ldb,
        .beta = beta, .C = C, .ldc = ldc, .ep = ep,
    };
    gemm_run(pool, &j);
    return 1;
}

struct kern_packed_b {
    const gemm_kernel *kern;
    size_t K, N;
    size_t bytes;
    float *data; /* ceil(N/nr) panels of K x nr */
};

kern_packed_b *kern_sgemm_pack_b(int trans_b, size_t K, size_t N, const float *B, size_t ldb) {
    const gemm_kernel *kern = active_kernel();
    size_t bytes;
    kern_packed_b *p = calloc(1, sizeof *p);
    if (!p || !(p->data = alloc_panels(N, K, kern->nr, &bytes))) {
        free(p);
        return NULL;
    }
    p->kern = kern;
    p->K = K;
    p->N = N;
    p->bytes = bytes + sizeof *p;
    if (N && K) pack_b(kern, trans_b, B, ldb, 0, K, 0, N, p->data, K * kern->nr);
    return p;
}

void kern_packed_b_free(kern_packed_b *packed) {
    if (!packed) return;
    core_aligned_free(packed->data);
    free(packed);
}

size_t kern_packed_b_bytes(const kern_packed_b *packed) { return packed ? packed->bytes : 0; }

/* Test hook (kern_gemm_force_direct_a): -1 lets the driver choose, 0 and 1 force packing A or reading it in place. */
static int direct_a_forced = -1;

void kern_gemm_force_direct_a(int mode) { direct_a_forced = mode; }

void kern_sgemm_packed_b(core_pool *pool, int trans_a, size_t M, const float *A, size_t lda, const kern_packed_b *B,
                         float beta, float *C, size_t ldc, const kern_epilogue *ep) {
    gemm_job j = {
        .kern = B->kern, .M = M, .N = B->N, .K = B->K,
        .trans_a = trans_a, .A = A, .lda = lda, .alpha = 1.0f,
        .b_packed = B->data,
        .beta = beta, .C = C, .ldc = ldc, .ep = ep,
    };
    /* A is the layer's input, used once: read in place, packing it would be a pass over it per block of B */
    j.direct_a = B->kern->direct_a && !trans_a && (direct_a_forced < 0 ? direct_a_fits(&j) : direct_a_forced);
    gemm_run(pool, &j);
}
