/* winograd.c — Winograd F(4x4, 3x3) and F(2x2, 3x3) convolution (see winograd.h): the weight transforms and packing,
 * the scalar tile transforms, and the driver that runs them with the GEMM micro-kernels of gemm_internal.h over
 * blocks of tiles sized for L2. F(4x4) matrices (Lavin & Gray, points 0, ±1, ±2, infinity):
 *   Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G  = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * Compiled without ISA flags; the micro-kernels and the AVX-512 transforms are called through pointers after a CPU
 * check. */
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "gemm_internal.h"
#include "winograd_internal.h"

/* The slot layout is computed with the largest micro-tile (AVX-512's) so it does not depend on the ISA. */
#define WINO_MAX_MR KERN_GEMM_AVX512_MR
#define WINO_MAX_NR KERN_GEMM_AVX512_NR
/* Transformed input and output of one block of tiles should stay in a core's L2 between the three phases. */
#define WINO_L2_BYTES ((size_t)768 * 1024)
#define WINO_BLOCK_ALIGN 16 /* the block size is chosen in steps of the transforms' vector width */

typedef struct wino_ukernel {
    size_t mr, nr;
    kern_gemm_ukernel_fn fn;
    wino_input_fn input;
    wino_output_fn output;
    wino_input_packed_fn input_packed; /* NULL: every run on its own */
    wino_output_packed_fn output_packed;
} wino_ukernel;

static int forced_isa;

static bool ukernel_for(int isa, wino_ukernel *out) {
#if defined(LENS_X86)
    const core_cpu *cpu = core_cpu_features();
    if ((isa == 0 || isa == 1) && cpu->avx512f) {
        *out = (wino_ukernel){KERN_GEMM_AVX512_MR, KERN_GEMM_AVX512_NR, kern_gemm_ukernel_avx512,
                              kern_winograd_input_avx512, kern_winograd_output_avx512,
                              kern_winograd_input_packed_avx512, kern_winograd_output_packed_avx512};
        return true;
    }
    if ((isa == 0 || isa == 2) && cpu->avx2 && cpu->fma) {
        *out = (wino_ukernel){KERN_GEMM_AVX2_MR, KERN_GEMM_AVX2_NR, kern_gemm_ukernel_avx2,
                              kern_winograd_input_generic, kern_winograd_output_generic, NULL, NULL};
        return true;
    }
#else
    (void)isa;
#endif
    (void)out;
    return false;
}

bool kern_winograd_force_isa(int isa) {
    wino_ukernel k;
    if (isa != 0 && !ukernel_for(isa, &k)) return false;
    forced_isa = isa;
    return true;
}

/* Without AVX-512 the transforms are scalar and eat the gain: the AVX2 build runs only when forced (tests). */
bool kern_winograd_available(void) {
    wino_ukernel k;
    return ukernel_for(forced_isa ? forced_isa : 1, &k);
}

/* ---- Weights ------------------------------------------------------------------------------------------------------ */

struct kern_winograd_weights {
    wino_ukernel uk;
    int tile, points; /* output tile edge (4 or 2) and (tile + 2)^2 */
    int64_t cout, cin;
    size_t row_panels; /* ceil(cout / mr) */
    /* the micro-kernel's A panels, one set per point: point xi, panel q (output channels q*mr..), input channel k,
     * lane i at data[((xi * row_panels + q) * cin + k) * mr + i]; lanes past cout are zero */
    float *data;
};

/* u = G g for one column of three taps, F(2x2, 3x3): G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. */
static inline void weight_transform_1d_f2(float g0, float g1, float g2, float *u, size_t stride) {
    u[0 * stride] = g0;
    u[1 * stride] = (g0 + g1 + g2) * 0.5f;
    u[2 * stride] = (g0 - g1 + g2) * 0.5f;
    u[3 * stride] = g2;
}

/* u = G g for one column of three taps, F(4x4, 3x3). */
static inline void weight_transform_1d(float g0, float g1, float g2, float *u, size_t stride) {
    u[0 * stride] = g0 * 0.25f;
    u[1 * stride] = -(g0 + g1 + g2) * (1.0f / 6.0f);
    u[2 * stride] = -(g0 - g1 + g2) * (1.0f / 6.0f);
    u[3 * stride] = g0 * (1.0f / 24.0f) + g1 * (1.0f / 12.0f) + g2 * (1.0f / 6.0f);
    u[4 * stride] = g0 * (1.0f / 24.0f) - g1 * (1.0f / 12.0f) + g2 * (1.0f / 6.0f);
    u[5 * stride] = g2;
}

/* u = G g Gᵀ for the 3x3 kernels of lanes lanes side by side: g[t * lanes + lane] is tap t (row-major) of a lane's
 * kernel, and point (r, c) of the (tile + 2)² outputs goes to u[(r * (tile + 2) + c) * point_stride + lane]. The lane
 * loops are innermost, so they vectorise. */
static inline __attribute__((always_inline)) void weight_transform_lanes(int tile, const float *g, size_t lanes,
                                                                        float *u, size_t point_stride) {
    float rows[6 * 3 * WINO_MAX_MR]; /* rows[(r * 3 + c) * lanes + lane] = (G g)[r][c] */
    const size_t e = (size_t)tile + 2;
    for (size_t c = 0; c < 3; c++)
        for (size_t l = 0; l < lanes; l++) {
            float g0 = g[c * lanes + l], g1 = g[(3 + c) * lanes + l], g2 = g[(6 + c) * lanes + l];
            if (tile == 2)
                weight_transform_1d_f2(g0, g1, g2, &rows[c * lanes + l], 3 * lanes);
            else
                weight_transform_1d(g0, g1, g2, &rows[c * lanes + l], 3 * lanes);
        }
    for (size_t r = 0; r < e; r++)
        for (size_t l = 0; l < lanes; l++) {
            const float *row = &rows[r * 3 * lanes + l];
            float *out = &u[r * e * point_stride + l];
            if (tile == 2)
                weight_transform_1d_f2(row[0], row[lanes], row[2 * lanes], out, point_stride);
            else
                weight_transform_1d(row[0], row[lanes], row[2 * lanes], out, point_stride);
        }
}

/* Transformed weights of a large layer (ResNet-50's 28x28, 14x14 and 7x7 ones: 2.4, 9 and 17 MB, 4x and 1.8x the
 * raw ones) go in transparent huge pages where the kernel offers them: they are written once, at load, where page
 * faults on fresh 4 KiB pages were most of the packing time (256 x 256 F(4x4) 6.9 -> 3.5 ms, 512 x 512 F(2x2) 12.8
 * -> 6.3 ms), and the GEMM's weight streams need fewer TLB entries. Freed with core_aligned_free (free). */
#define WINO_HUGE_PAGE ((size_t)2 << 20)
static float *weights_alloc(size_t bytes) {
#if defined(MADV_HUGEPAGE)
    if (bytes >= WINO_HUGE_PAGE) {
        void *p;
        if (posix_memalign(&p, WINO_HUGE_PAGE, bytes)) return NULL;
        madvise(p, bytes & ~(WINO_HUGE_PAGE - 1), MADV_HUGEPAGE); /* advice only: failure keeps 4K pages */
        return p;
    }
#endif
    return core_aligned_alloc(bytes);
}

/* weight_transform_lanes with the tile and lane counts of the micro-kernels as constants, so that the lane loops
 * vectorise (packing 15-20% faster than with them as variables). */
static void weight_transform(int tile, const float *g, size_t lanes, float *u, size_t point_stride) {
    if (tile == 4 && lanes == KERN_GEMM_AVX512_MR) weight_transform_lanes(4, g, KERN_GEMM_AVX512_MR, u, point_stride);
    else if (tile == 2 && lanes == KERN_GEMM_AVX512_MR)
        weight_transform_lanes(2, g, KERN_GEMM_AVX512_MR, u, point_stride);
    else weight_transform_lanes(tile, g, lanes, u, point_stride);
}

kern_winograd_weights *kern_winograd_pack(const float *w, int64_t cout, int64_t cin, int tile) {
    wino_ukernel uk;
    if (!ukernel_for(forced_isa, &uk) || cout < 1 || cin < 1 || (tile != 2 && tile != 4)) return NULL;
    kern_winograd_weights *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->uk = uk;
    p->tile = tile;
    p->points = (tile + 2) * (tile + 2);
    if (tile == 2) {
        p->uk.input = kern_winograd_input2_generic;
        p->uk.output = kern_winograd_output2_generic;
        /* AVX-512 packs the rows of up to 4 tiles of small images; wider runs stay scalar */
        p->uk.input_packed = NULL;
        p->uk.output_packed = NULL;
#if defined(LENS_X86)
        if (uk.input_packed) {
            p->uk.input_packed = kern_winograd_input2_packed_avx512;
            p->uk.output_packed = kern_winograd_output2_packed_avx512;
        }
#endif
    }
    p->cout = cout;
    p->cin = cin;
    p->row_panels = ((size_t)cout + uk.mr - 1) / uk.mr;
    size_t floats, bytes;
    if (!core_mul_size(p->row_panels * uk.mr, (size_t)cin, &floats) ||
        !core_mul_size(floats, (size_t)p->points * sizeof(float), &bytes) || !(p->data = weights_alloc(bytes))) {
        free(p);
        return NULL;
    }
    /* Transform a run of input channels of one panel into a staging block, then copy each point's part out in one
     * piece: writing the points' streams (a panel apart) value by value missed the TLB on every store. */
    enum { CI_BLOCK = 64 };
    const size_t point_stride = p->row_panels * (size_t)cin * uk.mr;
    float *stage = malloc((size_t)p->points * CI_BLOCK * uk.mr * sizeof *stage);
    if (!stage) {
        kern_winograd_free(p);
        return NULL;
    }
    float g[9 * WINO_MAX_MR]; /* one input channel's taps of the panel's lanes, lane innermost */
    for (size_t q = 0; q < p->row_panels; q++) {
        const size_t lanes = (size_t)cout - q * uk.mr < uk.mr ? (size_t)cout - q * uk.mr : uk.mr;
        for (size_t t = 0; t < 9; t++) /* lanes past cout (the last panel's) transform zeros */
            for (size_t lane = lanes; lane < uk.mr; lane++) g[t * uk.mr + lane] = 0;
        for (size_t c0 = 0; c0 < (size_t)cin; c0 += CI_BLOCK) {
            size_t nc = (size_t)cin - c0 < CI_BLOCK ? (size_t)cin - c0 : CI_BLOCK;
            for (size_t ci = 0; ci < nc; ci++) {
                for (size_t lane = 0; lane < lanes; lane++) {
                    const float *src = w + ((q * uk.mr + lane) * (size_t)cin + c0 + ci) * 9;
                    for (size_t t = 0; t < 9; t++) g[t * uk.mr + lane] = src[t];
                }
                weight_transform(tile, g, uk.mr, stage + ci * uk.mr, CI_BLOCK * uk.mr);
            }
            for (size_t xi = 0; xi < (size_t)p->points; xi++)
                memcpy(p->data + xi * point_stride + (q * (size_t)cin + c0) * uk.mr, stage + xi * CI_BLOCK * uk.mr,
                       nc * uk.mr * sizeof *stage);
        }
    }
    free(stage);
    return p;
}

void kern_winograd_free(kern_winograd_weights *weights) {
    if (!weights) return;
    core_aligned_free(weights->data);
    free(weights);
}

/* ---- Plan --------------------------------------------------------------------------------------------------------- */

static size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }
static size_t round_up(size_t a, size_t b) { return div_up(a, b) * b; }

/* Tiles of all images, and the largest block of them (a multiple of WINO_BLOCK_ALIGN) whose transformed input and
 * output fit WINO_L2_BYTES, or twice that when the transformed weights are larger than it: they cannot stay in L2
 * between blocks, so every block streams them again, and fewer, larger blocks save more than their spills cost
 * (28x28x128, 2.4 MB of weights: blocks of 25 tiles instead of 13, -8%; 56x56x64 with 0.66 MB is faster with
 * the smaller blocks, which leave room for its weights). */
static size_t plan_block(const kern_conv2d_params *p, int tile, size_t *total_tiles) {
    size_t t = (size_t)tile, points = (t + 2) * (t + 2);
    size_t tiles = (size_t)p->batch * div_up((size_t)p->out_h, t) * div_up((size_t)p->out_w, t);
    size_t per_tile = points * sizeof(float) * ((size_t)p->in_channels + (size_t)p->out_channels);
    size_t weights; /* overflow: surely streamed */
    bool streamed = !core_mul_size(points * sizeof(float) * (size_t)p->in_channels, (size_t)p->out_channels,
                                   &weights) || weights > WINO_L2_BYTES;
    size_t budget = streamed ? 2 * WINO_L2_BYTES : WINO_L2_BYTES;
    size_t nb = budget / per_tile / WINO_BLOCK_ALIGN * WINO_BLOCK_ALIGN;
    if (nb < WINO_BLOCK_ALIGN) nb = WINO_BLOCK_ALIGN;
    if (nb > tiles) nb = tiles;
    *total_tiles = tiles;
    return nb;
}

/* On several threads, the largest block (from plan_block's max_nb) whose transformed input and output fit L2 beside
 * weights that stay there: ResNet's 56x56x64 (0.59 MB of weights) took 0.54 ms on two threads in blocks of 25
 * tiles and 0.44 ms in blocks of 14, though on one thread the larger blocks win (0.87 vs 0.97 ms). Streamed
 * weights (plan_block) leave max_nb as it is. */
static size_t shared_l2_block(const kern_conv2d_params *p, int tile, size_t max_nb) {
    size_t points = (size_t)((tile + 2) * (tile + 2)), weights;
    if (!core_mul_size(points * sizeof(float) * (size_t)p->in_channels, (size_t)p->out_channels, &weights) ||
        weights > WINO_L2_BYTES)
        return max_nb;
    size_t per_tile = points * sizeof(float) * ((size_t)p->in_channels + (size_t)p->out_channels);
    size_t nb = (WINO_L2_BYTES - weights) / per_tile / WINO_BLOCK_ALIGN * WINO_BLOCK_ALIGN;
    if (nb < WINO_BLOCK_ALIGN) nb = WINO_BLOCK_ALIGN;
    return nb < max_nb ? nb : max_nb;
}

/* Slot: transformed input [36][cin][nb] (each point padded by up to two cache lines), products [chunk <= cout
 * rounded to MR][36][nb rounded to 16], the input transforms' work, and one packed B panel [cin][NR]. */
size_t kern_winograd_slot_bytes(const kern_conv2d_params *p, int tile) {
    if (tile != 2 && tile != 4) return 0;
    size_t tiles, nb = plan_block(p, tile, &tiles), in, out, bytes, points = (size_t)((tile + 2) * (tile + 2));
    size_t extra = KERN_WINOGRAD_WORK_FLOATS(div_up((size_t)p->out_w, (size_t)tile)) +
                   (size_t)p->in_channels * WINO_MAX_NR + points * 2 * 32;
    if (!core_mul_size(nb * points, (size_t)p->in_channels, &in) ||
        !core_mul_size(round_up(nb, 16) * points, round_up((size_t)p->out_channels, WINO_MAX_MR), &out) ||
        in > SIZE_MAX / 8 - extra || out > SIZE_MAX / 8 - extra - in ||
        !core_mul_size(in + out + extra + 64, sizeof(float), &bytes))
        return 0;
    return (bytes + 63) & ~(size_t)63;
}

/* ---- Scalar tile transforms --------------------------------------------------------------------------------------- */

/* r = Bᵀ d for six values d[0], d[s], ..., d[5s]. */
#define INPUT_1D(d, s, r)                                                                                             \
    do {                                                                                                              \
        float d0_ = (d)[0], d1_ = (d)[(s)], d2_ = (d)[2 * (s)], d3_ = (d)[3 * (s)], d4_ = (d)[4 * (s)];               \
        float d5_ = (d)[5 * (s)];                                                                                     \
        (r)[0] = 4 * d0_ - 5 * d2_ + d4_;                                                                             \
        (r)[1] = -4 * (d1_ + d2_) + d3_ + d4_;                                                                        \
        (r)[2] = 4 * (d1_ - d2_) - d3_ + d4_;                                                                         \
        (r)[3] = 2 * (d3_ - d1_) - d2_ + d4_;                                                                         \
        (r)[4] = 2 * (d1_ - d3_) - d2_ + d4_;                                                                         \
        (r)[5] = 4 * d1_ - 5 * d3_ + d5_;                                                                             \
    } while (0)

/* o = Aᵀ m for six values m[0], m[s], ..., m[5s]. */
#define OUTPUT_1D(m, s, o)                                                                                            \
    do {                                                                                                              \
        float m0_ = (m)[0], m1_ = (m)[(s)], m2_ = (m)[2 * (s)], m3_ = (m)[3 * (s)], m4_ = (m)[4 * (s)];               \
        float m5_ = (m)[5 * (s)];                                                                                     \
        float a_ = m1_ + m2_, b_ = m1_ - m2_, c_ = m3_ + m4_, e_ = m3_ - m4_;                                          \
        (o)[0] = m0_ + a_ + c_;                                                                                       \
        (o)[1] = b_ + 2 * e_;                                                                                         \
        (o)[2] = a_ + 4 * c_;                                                                                         \
        (o)[3] = b_ + 8 * e_ + m5_;                                                                                   \
    } while (0)

/* d[i * e + j] = plane[y0 + i][x0 + j] for an e x e patch, zero outside the h x w plane. */
static void gather_patch(const float *plane, int64_t h, int64_t w, int64_t y0, int64_t x0, int e, float *d) {
    for (int i = 0; i < e; i++)
        for (int j = 0; j < e; j++) {
            int64_t yy = y0 + i, xx = x0 + j;
            d[i * e + j] = yy >= 0 && yy < h && xx >= 0 && xx < w ? plane[yy * w + xx] : 0.0f;
        }
}

/* Column x of an output tile: y[i][x] = o[i] + bias (+ residual[i][x]) for the first rows rows. */
static void store_column(const float *o, int rows, float bias, const float *residual, float *y, int64_t ld,
                         int64_t x) {
    for (int i = 0; i < rows; i++) {
        float val = o[i] + bias;
        if (residual) val += residual[i * ld + x];
        y[i * ld + x] = val;
    }
}

static void finish_activation(const kern_activation *act, float *y, int64_t ld, int rows, int64_t cols) {
    if (act && act->kind != KERN_ACT_NONE) kern_activation_apply_rows(act, y, (size_t)ld, (size_t)rows, (size_t)cols);
}

void kern_winograd_input_generic(const float *plane, int64_t h, int64_t w, int64_t y0, int64_t x0, size_t ntiles,
                                 float *dst, size_t point_stride, float *work) {
    (void)work;
    for (size_t t = 0; t < ntiles; t++) {
        float d[6][6], r[6][6], v[6];
        gather_patch(plane, h, w, y0, x0 + 4 * (int64_t)t, 6, &d[0][0]);
        for (int j = 0; j < 6; j++) {
            INPUT_1D(&d[0][j], 6, v);
            for (int i = 0; i < 6; i++) r[i][j] = v[i];
        }
        for (int i = 0; i < 6; i++) {
            INPUT_1D(r[i], 1, v);
            for (int j = 0; j < 6; j++) dst[(size_t)(6 * i + j) * point_stride + t] = v[j];
        }
    }
}

void kern_winograd_output_generic(const float *m, size_t point_stride, size_t ntiles, float bias,
                                  const float *residual, float *y, int64_t ld, int rows, int64_t cols,
                                  const kern_activation *act) {
    for (size_t t = 0; t < ntiles; t++) {
        float r[6][4], o[4];
        for (int i = 0; i < 6; i++) OUTPUT_1D(m + (size_t)(6 * i) * point_stride + t, point_stride, r[i]);
        for (int c = 0; c < 4; c++) {
            int64_t x = 4 * (int64_t)t + c;
            if (x >= cols) break;
            OUTPUT_1D(&r[0][c], 4, o);
            store_column(o, rows, bias, residual, y, ld, x);
        }
    }
    finish_activation(act, y, ld, rows, cols);
}

/* F(2x2, 3x3): Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], Aᵀ = [1 1 1 0; 0 1 -1 -1]. Scalar: it serves
 * only small images, where the transforms are a small part of the time; AVX-512 packs the rows of images up to 8
 * columns wide (ResNet's 7x7) four per vector and leaves only wider ones here. */
void kern_winograd_input2_generic(const float *plane, int64_t h, int64_t w, int64_t y0, int64_t x0, size_t ntiles,
                                  float *dst, size_t point_stride, float *work) {
    (void)work;
    for (size_t t = 0; t < ntiles; t++) {
        float d[4][4], r[4][4];
        gather_patch(plane, h, w, y0, x0 + 2 * (int64_t)t, 4, &d[0][0]);
        for (int j = 0; j < 4; j++) {
            r[0][j] = d[0][j] - d[2][j], r[1][j] = d[1][j] + d[2][j];
            r[2][j] = d[2][j] - d[1][j], r[3][j] = d[1][j] - d[3][j];
        }
        for (int i = 0; i < 4; i++) {
            float *o = dst + (size_t)(4 * i) * point_stride + t;
            o[0] = r[i][0] - r[i][2], o[point_stride] = r[i][1] + r[i][2];
            o[2 * point_stride] = r[i][2] - r[i][1], o[3 * point_stride] = r[i][1] - r[i][3];
        }
    }
}

void kern_winograd_output2_generic(const float *m, size_t point_stride, size_t ntiles, float bias,
                                   const float *residual, float *y, int64_t ld, int rows, int64_t cols,
                                   const kern_activation *act) {
    for (size_t t = 0; t < ntiles; t++) {
        float r[4][2];
        for (int i = 0; i < 4; i++) {
            const float *mi = m + (size_t)(4 * i) * point_stride + t;
            r[i][0] = mi[0] + mi[point_stride] + mi[2 * point_stride];
            r[i][1] = mi[point_stride] - mi[2 * point_stride] - mi[3 * point_stride];
        }
        for (int c = 0; c < 2; c++) {
            int64_t x = 2 * (int64_t)t + c;
            if (x >= cols) break;
            float o[2] = {r[0][c] + r[1][c] + r[2][c], r[1][c] - r[2][c] - r[3][c]};
            store_column(o, rows, bias, residual, y, ld, x);
        }
    }
    finish_activation(act, y, ld, rows, cols);
}

/* ---- Driver ------------------------------------------------------------------------------------------------------- */

typedef struct wino_job {
    const kern_winograd_weights *wt;
    const kern_conv2d_params *p;
    const float *x, *bias, *residual;
    const kern_activation *act;
    float *y;
    char *scratch;
    size_t slot_bytes;
    size_t total, nb, chunk, chunks; /* tiles; tiles per block; output channels per chunk (a multiple of mr) */
    size_t tiles_w, tiles_img;
    size_t lanes; /* lanes per run when the transforms pack four runs per vector (4), else 0 */
    size_t input_tasks; /* shared_input: the tasks the input transform is split into */
    size_t stride_threads; /* > 1: blocks dealt so that each of this many threads taking turns gets a contiguous run */
    int shared_input;   /* one block in several chunks: its input is transformed once, into slot 0, before them */
    int tile, points;
} wino_job;

/* Calls visit for each run of horizontally adjacent tiles (one tile row of one image) in tiles [t0, t0 + nt):
 * image n, output row oy, first tile column tx, count, and offset s in the block. */
typedef struct wino_run {
    int64_t n, oy, tx;
    size_t count, s;
} wino_run;

static size_t next_run(const wino_job *j, size_t t0, size_t nt, size_t s, wino_run *r) {
    size_t t = t0 + s, rem = t % j->tiles_img;
    r->n = (int64_t)(t / j->tiles_img);
    r->oy = (int64_t)(rem / j->tiles_w) * j->tile;
    r->tx = (int64_t)(rem % j->tiles_w);
    r->count = j->tiles_w - (size_t)r->tx;
    if (r->count > nt - s) r->count = nt - s;
    r->s = s;
    return s + r->count;
}

/* The runs of tiles [t0, t0 + nt) from offset s that one packed transform takes (at most 16 / lanes); returns
 * the offset after them. */
static size_t next_group(const wino_job *j, size_t t0, size_t nt, size_t s, wino_run group[4], size_t *nruns) {
    *nruns = 0;
    while (s < nt && *nruns < 16 / j->lanes) s = next_run(j, t0, nt, s, &group[(*nruns)++]);
    return s;
}

/* Channels ahead of the one being transformed whose rows are prefetched: a layer's input and output are rarely in
 * L1 or L2, and each channel's window is a few rows a whole plane away from the last one's, where the hardware
 * prefetcher does not look. Two channels ahead cover an L3 or memory latency with the transform of one. Small
 * images (packed transforms) need none: their planes follow each other in one stream the hardware sees, and there
 * the prefetches measured 4% slower at 7x7. */
#define WINO_PREFETCH_CHANNELS 2

/* Prefetches rows [y0, y0 + rows) x columns [x0, x0 + cols) of an h x w plane, clipped to it (for writing when
 * write). */
static void prefetch_window(const float *plane, int64_t h, int64_t w, int64_t y0, int64_t rows, int64_t x0,
                            int64_t cols, int write) {
    int64_t y1 = y0 + rows < h ? y0 + rows : h, x1 = x0 + cols < w ? x0 + cols : w;
    if (y0 < 0) y0 = 0;
    if (x0 < 0) x0 = 0;
    if (y0 >= y1 || x0 >= x1) return;
    if (x0 == 0 && x1 == w) { /* whole rows: one contiguous range */
        x1 = (y1 - 1 - y0) * w + w;
        y1 = y0 + 1;
    }
    for (int64_t y = y0; y < y1; y++) {
        const char *first = (const char *)(plane + y * w + x0), *last = (const char *)(plane + y * w + x1 - 1);
        /* every line the range touches, its last one included */
        for (uintptr_t line = (uintptr_t)first & ~(uintptr_t)63; line <= (uintptr_t)last; line += 64) {
            if (write)
                __builtin_prefetch((const void *)line, 1, 3);
            else
                __builtin_prefetch((const void *)line, 0, 3);
        }
    }
}

/* Transformed input channels [c0, c1) of tiles [t0, t0 + nt): v[xi * vstride + c * nt + t]. */
static void input_block(const wino_job *j, size_t t0, size_t nt, size_t c0, size_t c1, float *v, size_t vstride,
                        float *work) {
    const kern_conv2d_params *p = j->p;
    const size_t cin = (size_t)p->in_channels, plane = (size_t)(p->in_h * p->in_w);
    wino_run r, group[4];
    const int64_t span_rows = j->tile + 2;
    /* channel by channel, so each input plane is read top to bottom */
    for (size_t c = c0; c < c1; c++) {
        if (!j->lanes && c + WINO_PREFETCH_CHANNELS < c1)
            for (size_t s = 0; s < nt;) {
                s = next_run(j, t0, nt, s, &r);
                prefetch_window(j->x + ((size_t)r.n * cin + c + WINO_PREFETCH_CHANNELS) * plane, p->in_h, p->in_w,
                                r.oy - p->pad_top, span_rows, j->tile * r.tx - p->pad_left,
                                j->tile * (int64_t)r.count + 2, 0);
            }
        for (size_t s = 0; s < nt;) {
            if (j->lanes) {
                size_t s0 = s, nruns;
                wino_run_in in[4];
                s = next_group(j, t0, nt, s, group, &nruns);
                for (size_t i = 0; i < nruns; i++)
                    in[i] = (wino_run_in){j->x + ((size_t)group[i].n * cin + c) * plane, group[i].oy - p->pad_top,
                                          j->tile * group[i].tx - p->pad_left, group[i].count};
                j->wt->uk.input_packed(in, nruns, j->lanes, p->in_h, p->in_w, v + c * nt + s0, vstride, work);
                continue;
            }
            s = next_run(j, t0, nt, s, &r);
            j->wt->uk.input(j->x + ((size_t)r.n * cin + c) * plane, p->in_h, p->in_w, r.oy - p->pad_top,
                            j->tile * r.tx - p->pad_left, r.count, v + c * nt + r.s, vstride, work);
        }
    }
}

/* multiply_block's L2 prefetch: for weight blocks over this many bytes, this many micro-kernel steps ahead */
#define WINO_L2_PREFETCH_MIN_BYTES ((size_t)1 << 20)
#define WINO_L2_PREFETCH_STEPS 160

/* m[k * kstride + xi * pstride + t] for output channels [co0, co0 + nco): the 36 products. bpanel holds cin * nr
 * floats. */
static void multiply_block(const wino_job *j, const float *v, size_t vstride, size_t nt, size_t co0, size_t nco,
                           float *m, size_t pstride, size_t kstride, float *bpanel) {
    const kern_winograd_weights *wt = j->wt;
    const size_t mr = wt->uk.mr, nr = wt->uk.nr, cin = (size_t)wt->cin, panels = div_up(nco, mr);
    kern_gemm_tile tile = {0};
    /* Weights past L2's size are streamed from L3 or memory on every block, each panel once: besides the kernel's
     * L1 prefetch a short way ahead, fetch them into L2 further ahead (layer3's and layer4's 3x3 convs of ResNet-50,
     * 9 and 37 MB transformed, ran 10-15% faster per layer at one thread). */
    if ((size_t)j->points * panels * cin * mr * sizeof(float) > WINO_L2_PREFETCH_MIN_BYTES)
        tile.a_prefetch_l2 = WINO_L2_PREFETCH_STEPS * mr * sizeof(float);
    for (size_t xi = 0; xi < (size_t)j->points; xi++) {
        const float *vx = v + xi * vstride;
        const float *ux = wt->data + (xi * wt->row_panels + co0 / mr) * cin * mr;
        float *mx = m + xi * pstride;
        for (size_t jr = 0; jr < nt; jr += nr) {
            size_t n = nt - jr < nr ? nt - jr : nr;
            /* the first panel reads V's rows directly and packs them for the others */
            kern_gemm_b direct = {vx + jr, nt, panels > 1 ? bpanel : NULL}, packed = {bpanel, 0, NULL};
            for (size_t q = 0; q < panels; q++) {
                size_t rows = nco - q * mr < mr ? nco - q * mr : mr;
                wt->uk.fn(cin, ux + q * cin * mr, q ? &packed : &direct, mx + q * mr * kstride + jr, kstride, rows, n,
                          &tile);
            }
        }
    }
}

/* The output window of run r for output channel co: offset in y, rows, cols. */
static size_t run_window(const wino_job *j, const wino_run *r, size_t co, int *rows, int64_t *cols) {
    const int64_t oh = j->p->out_h, ow = j->p->out_w, tile = j->tile, x0 = tile * r->tx;
    *rows = oh - r->oy < tile ? (int)(oh - r->oy) : (int)tile;
    *cols = ow - x0 < tile * (int64_t)r->count ? ow - x0 : tile * (int64_t)r->count;
    return ((size_t)r->n * (size_t)j->p->out_channels + co) * (size_t)(oh * ow) + (size_t)(r->oy * ow + x0);
}

/* Prefetches the output window at offset at of y (rows x cols, row stride out_w) for writing, and the residual's. */
static void prefetch_output(const wino_job *j, size_t at, int rows, int64_t cols) {
    const int64_t ow = j->p->out_w;
    prefetch_window(j->y + at, rows, ow, 0, rows, 0, cols, 1);
    if (j->residual) prefetch_window(j->residual + at, rows, ow, 0, rows, 0, cols, 0);
}

/* y for tiles [t0, t0 + nt) and output channels [co0, co0 + nco) from m (as multiply_block wrote it). */
static void output_block(const wino_job *j, const float *m, size_t pstride, size_t kstride, size_t t0, size_t nt,
                         size_t co0, size_t nco) {
    const int64_t ow = j->p->out_w;
    const size_t plane = (size_t)(j->p->out_h * ow);
    wino_run r, group[4];
    for (size_t s = 0; s < nt;) {
        if (j->lanes) {
            size_t s0 = s, nruns, at[4];
            wino_run_out out[4];
            s = next_group(j, t0, nt, s, group, &nruns);
            for (size_t i = 0; i < nruns; i++) {
                at[i] = run_window(j, &group[i], co0, &out[i].rows, &out[i].cols);
                out[i].count = group[i].count;
            }
            for (size_t k = 0; k < nco; k++) {
                for (size_t i = 0; i < nruns; i++) {
                    out[i].y = j->y + at[i] + k * plane;
                    out[i].residual = j->residual ? j->residual + at[i] + k * plane : NULL;
                }
                j->wt->uk.output_packed(m + k * kstride + s0, pstride, out, nruns, j->lanes,
                                        j->bias ? j->bias[co0 + k] : 0.0f, ow, j->act);
            }
            continue;
        }
        s = next_run(j, t0, nt, s, &r);
        int rows;
        int64_t cols;
        size_t at = run_window(j, &r, co0, &rows, &cols);
        for (size_t k = 0; k < nco; k++, at += plane) {
            if (k + WINO_PREFETCH_CHANNELS < nco) prefetch_output(j, at + WINO_PREFETCH_CHANNELS * plane, rows, cols);
            j->wt->uk.output(m + k * kstride + r.s, pstride, r.count, j->bias ? j->bias[co0 + k] : 0.0f,
                             j->residual ? j->residual + at : NULL, j->y + at, ow, rows, cols, j->act);
        }
    }
}

/* Floats between the points of a transformed block of n floats each: whole cache lines plus one. */
static size_t point_stride(size_t n) { return round_up(n, 16) + 16; }

/* One task: block of tiles task / chunks, output-channel chunk task % chunks, in this thread's slot (the
 * transformed input in slot 0 when shared_input has made it). */
static void wino_task(void *ctx, int64_t task, int thread) {
    const wino_job *j = ctx;
    size_t block = (size_t)task / j->chunks, chunk = (size_t)task % j->chunks;
    /* the threads take tasks in turn: give each a contiguous run of blocks, so that blocks written by different
     * threads share output rows (cache lines) only at one seam instead of at every block edge */
    if (j->stride_threads > 1) {
        size_t blocks = div_up(j->total, j->nb), per = blocks / j->stride_threads;
        block = block % j->stride_threads * per + block / j->stride_threads;
    }
    size_t t0 = block * j->nb, nt = j->total - t0 < j->nb ? j->total - t0 : j->nb;
    size_t co0 = chunk * j->chunk, cout = (size_t)j->p->out_channels, cin = (size_t)j->p->in_channels;
    size_t nco = cout - co0 < j->chunk ? cout - co0 : j->chunk;
    /* 36 streams a power of two apart would share one L1 set: stagger the points by a cache line */
    size_t vstride = point_stride(nt * cin);
    /* the products of one output channel lie together, each point's in whole cache lines: the output transform
     * reads them as one sequential stream (from points a block apart it stalled on L2) */
    size_t pstride = round_up(nt, 16), kstride = (size_t)j->points * pstride;
    float *slot = (float *)(j->scratch + (size_t)thread * j->slot_bytes);
    float *v = j->shared_input ? (float *)j->scratch : slot;
    float *m = slot + (size_t)j->points * vstride;
    float *work = m + nco * kstride;
    float *bpanel = work + KERN_WINOGRAD_WORK_FLOATS(j->tiles_w);
    if (!j->shared_input) input_block(j, t0, nt, 0, cin, v, vstride, work);
    multiply_block(j, v, vstride, nt, co0, nco, m, pstride, kstride, bpanel);
    output_block(j, m, pstride, kstride, t0, nt, co0, nco);
}

/* One share of the input transform of the only block, split by input channels over the threads (shared_input):
 * into slot 0, with this thread's work space past it. */
static void wino_input_task(void *ctx, int64_t task, int thread) {
    const wino_job *j = ctx;
    size_t cin = (size_t)j->p->in_channels, vstride = point_stride(j->total * cin);
    size_t c0 = cin * (size_t)task / j->input_tasks, c1 = cin * (size_t)(task + 1) / j->input_tasks;
    float *work = (float *)(j->scratch + (size_t)thread * j->slot_bytes) + (size_t)j->points * vstride;
    input_block(j, 0, j->total, c0, c1, (float *)j->scratch, vstride, work);
}

void kern_winograd_conv2d(core_pool *pool, const kern_winograd_weights *weights, const kern_conv2d_params *p,
                          const float *x, const float *bias, const float *residual, const kern_activation *act,
                          float *y, void *scratch, size_t slot_bytes, size_t slots) {
    wino_job j = {.wt = weights, .p = p, .x = x, .bias = bias, .residual = residual, .act = act, .y = y,
                  .scratch = scratch, .slot_bytes = slot_bytes};
    j.tile = weights->tile;
    j.points = weights->points;
    size_t max_nb = plan_block(p, j.tile, &j.total);
    if (j.total == 0) return;
    j.tiles_w = div_up((size_t)p->out_w, (size_t)j.tile);
    j.tiles_img = div_up((size_t)p->out_h, (size_t)j.tile) * j.tiles_w;
    /* rows of at most 4 tiles (ResNet's 14x14 and 7x7) fill a quarter of a vector: pack four per vector. (Two rows
     * of 5..8 tiles per vector measured no faster at 28x28: its blocks of 13 tiles cut the rows.) */
    if (weights->uk.input_packed && j.tiles_w <= 4) j.lanes = 4;
    /* the pool's thread indices pick the slots: with fewer slots than threads, run on this thread alone */
    size_t threads = (size_t)core_pool_size(pool);
    if (threads > slots || threads <= 1) {
        pool = NULL;
        threads = 1;
    }
    if (threads > 1) max_nb = shared_l2_block(p, j.tile, max_nb);
    /* Equal blocks no larger than the slot was sized for. */
    size_t mr = weights->uk.mr, cout = (size_t)p->out_channels;
    size_t blocks = div_up(j.total, max_nb);
    if (blocks >= threads && blocks <= j.total / threads) blocks = round_up(blocks, threads);
    j.nb = div_up(j.total, blocks);
    blocks = div_up(j.total, j.nb);
    /* Fewer blocks than threads: split the output channels too (each chunk repeats the input transform unless there
     * is one block, see below). Picks
     * the fewest chunks whose tasks fill the threads' rounds best. */
    size_t row_panels = div_up(cout, mr), best_chunks = 1;
    double best = 0;
    for (size_t c = 1; c <= 8 && c <= row_panels && threads > 1 && blocks % threads; c++) {
        size_t chunk = div_up(row_panels, c) * mr, real = div_up(cout, chunk), tasks = blocks * real;
        double fill = (double)tasks / (double)round_up(tasks, threads);
        if (fill > best + 0.01) {
            best = fill;
            best_chunks = real;
        }
    }
    j.chunk = div_up(row_panels, best_chunks) * mr;
    j.chunks = div_up(cout, j.chunk);
    /* One block split over output channels: transform its input once, in parallel, instead of once per chunk. */
    if (pool && blocks == 1 && j.chunks > 1) {
        j.shared_input = 1;
        j.input_tasks = threads;
        core_pool_run(pool, (int64_t)threads, wino_input_task, &j);
    }
    if (pool && j.chunks == 1 && blocks > threads && blocks % threads == 0) j.stride_threads = threads;
    core_pool_run(pool, (int64_t)(blocks * j.chunks), wino_task, &j);
}
