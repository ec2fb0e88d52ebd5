/* winograd.h — Winograd F(4x4, 3x3) and F(2x2, 3x3) convolution for 2-D NCHW convs with a 3x3 kernel, stride 1,
 * dilation 1, group 1 and any padding: 6x6 (4x4) input tiles overlapping by 2 are transformed (Bᵀ d B), multiplied
 * channel-wise by the transformed weights (G g Gᵀ, done once) as 36 (16) independent [Cout x Cin] x [Cin x tiles]
 * GEMMs on the packed GEMM micro-kernel, and transformed back (Aᵀ m A) into 4x4 (2x2) output tiles with bias,
 * residual and activation fused. F(4x4): 4x fewer multiplications than the direct conv, 4x larger weights and an
 * fp32 error a few times the direct conv's (points 0, ±1, ±2 and infinity; see tests/ops/test_winograd.c for the
 * bound). F(2x2): 2.25x fewer multiplications, 1.8x larger weights, for images too small for 4x4 tiles.
 * Kernels layer: includes only kernels.h and conv_ref.h (for the geometry struct). */
#ifndef LENS_KERNELS_WINOGRAD_H
#define LENS_KERNELS_WINOGRAD_H

#include "conv_ref.h"

/* Transformed weights, packed for the GEMM micro-kernel the CPU runs. */
typedef struct kern_winograd_weights kern_winograd_weights;

/* True when this CPU (or the forced path) has a micro-kernel for Winograd (AVX-512 or AVX2 + FMA). Without one the
 * caller should keep to its im2col path. */
bool kern_winograd_available(void);

/* Transforms and packs w [cout, cin, 3, 3] for output tiles of tile x tile (4 or 2). Returns NULL on out-of-memory,
 * a bad tile, or when no micro-kernel runs here. The result does not reference w; free it with kern_winograd_free
 * (NULL is a no-op). */
kern_winograd_weights *kern_winograd_pack(const float *w, int64_t cout, int64_t cin, int tile);
void kern_winograd_free(kern_winograd_weights *weights);

/* Bytes of scratch one thread needs for p (kernel 3x3, stride 1, dilation 1, group 1 implied; only batch, channels,
 * sizes and pads are read) with output tiles of tile x tile, a multiple of 64; 0 on overflow or a bad tile. The
 * same for every thread count and pool. */
size_t kern_winograd_slot_bytes(const kern_conv2d_params *p, int tile);

/* y = act(conv3x3(x, w) + bias + residual) for p (as above), with weights packed by kern_winograd_pack for
 * p->out_channels x p->in_channels (their tile is used). bias ([out_channels]), residual (y's shape, may alias y)
 * and act may be NULL. scratch holds slots slots of slot_bytes >= kern_winograd_slot_bytes(p, tile) bytes each,
 * 64-byte aligned; uses the whole pool when slots >= its size, else only the calling thread. */
void kern_winograd_conv2d(core_pool *pool, const kern_winograd_weights *weights, const kern_conv2d_params *p,
                          const float *x, const float *bias, const float *residual, const kern_activation *act,
                          float *y, void *scratch, size_t slot_bytes, size_t slots);

/* Test hook: 1 forces the AVX-512 micro-kernel, 2 the AVX2 one, 0 the best this CPU runs. Returns false (changing
 * nothing) when the CPU or build cannot run it. Weights keep the micro-kernel they were packed for. Not
 * thread-safe. */
bool kern_winograd_force_isa(int isa);

#endif
