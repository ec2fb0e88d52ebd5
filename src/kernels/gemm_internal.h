/* gemm_internal.h — what the GEMM driver (gemm.c) shares with its ISA micro-kernels (x86/gemm_avx2.c,
 * x86/gemm_avx512.c, arm/gemm_neon.c) and with tests: the micro-kernel contract and a hook that forces one code
 * path. Not installed; only the kernels layer and its tests include it. */
#ifndef LENS_GEMM_INTERNAL_H
#define LENS_GEMM_INTERNAL_H

#include "kernels.h"

/* Activations a micro-kernel applies in registers before its store. Anything else the driver applies with
 * kern_activation_apply on the finished tile while it is still in cache. GELU (exact, KERN_ACT_GELU) only where the
 * kernel has a gelu_rest (AVX-512): the micro-kernel applies act_gelu's small-range polynomial to the lanes with
 * x^2 < 2 (ConvNeXt-T: 98.7% of its GELU vectors are all such) and stores the others as they are, setting
 * *gelu_raw; gelu_rest then finishes those tiles. */
enum {
    KERN_GEMM_TILE_ACT_NONE = 0,
    KERN_GEMM_TILE_ACT_RELU,
    KERN_GEMM_TILE_ACT_CLIP,
    KERN_GEMM_TILE_ACT_LEAKY,
    KERN_GEMM_TILE_ACT_GELU
};

/* How a micro-kernel finishes its tile: C = acc (+ beta * old C when load_c) (+ bias) then act. */
typedef struct kern_gemm_tile {
    float beta;              /* only read when load_c */
    int load_c;              /* 0: C's old contents are never read (they may be NaN) */
    const float *c_in;       /* when load_c: the old C is read from here (rows ldc_in apart) instead of c; NULL: c */
    size_t ldc_in;
    const float *bias_row;   /* bias of the tile's first row (one value per row), or NULL */
    const float *bias_col;   /* bias of the tile's first column (one value per column), or NULL */
    int act;                 /* KERN_GEMM_TILE_ACT_* */
    float act_alpha, act_beta;
    int *gelu_raw;           /* KERN_GEMM_TILE_ACT_GELU: set to 1 when a lane is stored without its GELU */
    size_t lda; /* 0: a is packed; else a is op(A) itself, row i of step k at a[i*lda + k] (AVX-512 kernel only) */
    /* packed a only, AVX-512 kernel only: when not 0, each step also prefetches a this many bytes ahead into L2.
     * For weights too large to stay in cache between calls (they stream from L3 or memory): Winograd's transformed
     * weights, read linearly across calls, fetch a fixed number of steps ahead; the GEMM driver's packed A fetches
     * the next micro-panel (K * mr floats on). A wasted issue slot per step elsewhere. */
    size_t a_prefetch_l2;
    /* packed b only, AVX-512 kernel only: when not 0, each step also prefetches its B lines this many bytes ahead into
     * L2. The GEMM driver sets it on the first tile of a column panel of a large packed B (a weight that streams from
     * memory) to fetch the next panel, which the tiles below then give it time to arrive. */
    size_t b_prefetch_l2;
    /* AVX-512 kernel only: when not 0, the tile also fetches its rows' lines of the next column panel of C (and of
     * c_in) into L2. The GEMM driver sets it on all but a block's last panel: the tiles of the panels in between
     * give the lines time to arrive, where a tile's own prefetch at its start comes too late for a C that is not
     * in cache (a layer's output and its residual; each row of C its own stream, too many for the hardware). */
    int c_prefetch_next;
} kern_gemm_tile;

/* Where a micro-kernel reads B from. Packed: kc groups of NR floats (padding columns zero). Direct (ldb != 0):
 * straight from op(B) rows with stride ldb, only the n valid columns read, and when copy is not NULL the panel is
 * also written there in packed form (zero padded) for the next tiles of the same columns: packing B costs no
 * separate pass over memory. */
typedef struct kern_gemm_b {
    const float *b;
    size_t ldb;  /* 0: b is packed */
    float *copy; /* direct only: where to write the packed panel, or NULL */
} kern_gemm_b;

/* Computes one m x n tile of C (1 <= m <= MR, 1 <= n <= NR) from kc steps: a holds kc groups of MR floats (row i
 * of step k at a[k*MR + i], padding rows zero), b as above. kc may be 0. c is row-major with stride ldc; only the
 * m x n tile is read or written. */
typedef void (*kern_gemm_ukernel_fn)(size_t kc, const float *a, const kern_gemm_b *b, float *c, size_t ldc, size_t m,
                                     size_t n, const kern_gemm_tile *tile);

#define KERN_GEMM_AVX512_MR 12
#define KERN_GEMM_AVX512_NR 32
#define KERN_GEMM_AVX2_MR 6
#define KERN_GEMM_AVX2_NR 16
#define KERN_GEMM_NEON_MR 8
#define KERN_GEMM_NEON_NR 12

#if defined(LENS_X86)
void kern_gemm_ukernel_avx512(size_t kc, const float *a, const kern_gemm_b *b, float *c, size_t ldc, size_t m,
                              size_t n, const kern_gemm_tile *tile);
void kern_gemm_ukernel_avx2(size_t kc, const float *a, const kern_gemm_b *b, float *c, size_t ldc, size_t m,
                            size_t n, const kern_gemm_tile *tile);
/* Finishes the GELU of an m x n tile (rows ldc apart) that the AVX-512 micro-kernel stored with
 * KERN_GEMM_TILE_ACT_GELU (x86/act_avx512.c). */
void kern_gemm_gelu_rest_avx512(float *c, size_t ldc, size_t rows, size_t n);
/* Packs rows of a row-major matrix into k-major form: dst[k*width + i] = scale * src[i*ld + k] for i < rows,
 * k < kc, and 0 for rows <= i < width (width <= 32). The transposing half of packing: untransposed A, transposed
 * B. AVX2, so the AVX-512 path uses it too. */
void kern_gemm_pack_rows_avx2(const float *src, size_t ld, size_t rows, size_t kc, float scale, float *dst,
                              size_t width);
/* kern_attention on the AVX-512 micro-kernel (x86/attention_avx512.c), and the scratch floats it needs. Same
 * contract as kern_attention, except that its kv_ready also needs the same scale (which is packed with K). */
void kern_attention_avx512(const kern_attention_head *h, float *scratch, bool kv_ready);
size_t kern_attention_scratch_avx512(size_t keys, size_t dim);
#endif

#if defined(LENS_ARM64)
void kern_gemm_ukernel_neon(size_t kc, const float *a, const kern_gemm_b *b, float *c, size_t ldc, size_t m, size_t n,
                            const kern_gemm_tile *tile);
/* kern_gemm_pack_rows_avx2's contract (width <= 32), with 4 x 4 transposes. */
void kern_gemm_pack_rows_neon(const float *src, size_t ld, size_t rows, size_t kc, float scale, float *dst,
                              size_t width);
#endif

/* ---- Test hooks ----------------------------------------------------------------------------------------------- */

typedef enum kern_gemm_path {
    KERN_GEMM_PATH_AUTO = 0, /* the best this CPU runs */
    KERN_GEMM_PATH_GENERIC,
    KERN_GEMM_PATH_AVX2,
    KERN_GEMM_PATH_AVX512,
    KERN_GEMM_PATH_NEON /* arm64 builds only */
} kern_gemm_path;

/* Makes later kern_sgemm* calls and packings use path. Returns false (and changes nothing) when this CPU or build
 * cannot run it. Not thread-safe: for tests and benchmarks, called while no GEMM runs. Packed matrices keep the
 * path they were packed for. */
bool kern_gemm_force_path(kern_gemm_path path);
/* The path kern_sgemm takes now (never AUTO): for kernels built on the micro-kernels, which follow it. */
kern_gemm_path kern_gemm_active_path(void);

/* Makes every GEMM act as if its packing workspace could not be allocated (the out-of-memory fallback), or stop. Same
 * rules as kern_gemm_force_path. */
void kern_gemm_refuse_workspace(bool refuse);

/* Makes kern_sgemm_packed_b read untransposed A in place (1) or pack it (0) where the kernel can do both, or choose
 * (-1, the default). Same rules as kern_gemm_force_path. */
void kern_gemm_force_direct_a(int mode);

#endif
