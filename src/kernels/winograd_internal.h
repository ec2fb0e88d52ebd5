/* winograd_internal.h — what the Winograd driver (winograd.c) shares with its ISA builds of the tile transforms
 * (x86/winograd_avx512.c) and with tests. Not installed; only the kernels layer and its tests include it. */
#ifndef LENS_WINOGRAD_INTERNAL_H
#define LENS_WINOGRAD_INTERNAL_H

#include "winograd.h"

/* Input transform of ntiles horizontally adjacent tiles of one channel, for output tiles of edge m (4 or 2, fixed
 * per function): tile t covers rows [y0, y0 + m + 2) and columns [x0 + m t, x0 + m t + m + 2) of plane (h x w;
 * outside it reads zero). Writes dst[xi * point_stride + t] for the (m + 2)^2 points xi = (m + 2) * row + column
 * of Bᵀ d B. work holds KERN_WINOGRAD_WORK_FLOATS(ntiles) floats, 64-byte aligned. */
typedef void (*wino_input_fn)(const float *plane, int64_t h, int64_t w, int64_t y0, int64_t x0, size_t ntiles,
                              float *dst, size_t point_stride, float *work);

/* Output transform of ntiles horizontally adjacent tiles of one output channel: Aᵀ m A from m[xi * point_stride +
 * t], plus bias and residual (NULL or laid out as y), then act (NULL: none), into the rows x cols window of y (row
 * stride ld) whose top-left is the first tile's; rows <= m, cols <= m * ntiles. residual may alias y. */
typedef void (*wino_output_fn)(const float *m, size_t point_stride, size_t ntiles, float bias, const float *residual,
                               float *y, int64_t ld, int rows, int64_t cols, const kern_activation *act);

/* One run of a packed group (below): the plane and the first tile's input corner (as for wino_input_fn), and its
 * tile count. */
typedef struct wino_run_in {
    const float *plane;
    int64_t y0, x0;
    size_t count;
} wino_run_in;

/* The output window of one run of a packed group: as y, residual, rows, cols of wino_output_fn. */
typedef struct wino_run_out {
    float *y;
    const float *residual;
    int rows;
    int64_t cols;
    size_t count;
} wino_run_out;

/* Packed transforms for runs of at most lanes tiles (4; the F(4x4) ones also take 8, which the driver does not
 * use), nruns <= 16 / lanes of them, whose tiles lie adjacent in the transformed layout (run r's first tile right
 * after run r - 1's last): the same results as calling the unpacked transform once per run, with one vector for
 * them all. Input planes share h x w; outputs share ld. The input's work holds KERN_WINOGRAD_WORK_FLOATS(1) floats,
 * 64-byte aligned. */
typedef void (*wino_input_packed_fn)(const wino_run_in *runs, size_t nruns, size_t lanes, int64_t h, int64_t w,
                                     float *dst, size_t point_stride, float *work);
typedef void (*wino_output_packed_fn)(const float *m, size_t point_stride, const wino_run_out *runs, size_t nruns,
                                      size_t lanes, float bias, int64_t ld, const kern_activation *act);

/* Floats of work the input transforms need for a run of ntiles tiles. */
#define KERN_WINOGRAD_WORK_FLOATS(ntiles) (12 * (64 * (((ntiles) + 15) / 16) + 80))

void kern_winograd_input_generic(const float *plane, int64_t h, int64_t w, int64_t y0, int64_t x0, size_t ntiles,
                                 float *dst, size_t point_stride, float *work);
void kern_winograd_output_generic(const float *m, size_t point_stride, size_t ntiles, float bias,
                                  const float *residual, float *y, int64_t ld, int rows, int64_t cols,
                                  const kern_activation *act);
/* F(2x2, 3x3), every ISA. */
void kern_winograd_input2_generic(const float *plane, int64_t h, int64_t w, int64_t y0, int64_t x0, size_t ntiles,
                                  float *dst, size_t point_stride, float *work);
void kern_winograd_output2_generic(const float *m, size_t point_stride, size_t ntiles, float bias,
                                   const float *residual, float *y, int64_t ld, int rows, int64_t cols,
                                   const kern_activation *act);
#if defined(LENS_X86)
void kern_winograd_input_avx512(const float *plane, int64_t h, int64_t w, int64_t y0, int64_t x0, size_t ntiles,
                                float *dst, size_t point_stride, float *work);
void kern_winograd_output_avx512(const float *m, size_t point_stride, size_t ntiles, float bias,
                                 const float *residual, float *y, int64_t ld, int rows, int64_t cols,
                                 const kern_activation *act);
void kern_winograd_input_packed_avx512(const wino_run_in *runs, size_t nruns, size_t lanes, int64_t h, int64_t w,
                                       float *dst, size_t point_stride, float *work);
void kern_winograd_output_packed_avx512(const float *m, size_t point_stride, const wino_run_out *runs, size_t nruns,
                                        size_t lanes, float bias, int64_t ld, const kern_activation *act);
/* F(2x2, 3x3), runs of at most 4 tiles (lanes 4). */
void kern_winograd_input2_packed_avx512(const wino_run_in *runs, size_t nruns, size_t lanes, int64_t h, int64_t w,
                                        float *dst, size_t point_stride, float *work);
void kern_winograd_output2_packed_avx512(const float *m, size_t point_stride, const wino_run_out *runs, size_t nruns,
                                         size_t lanes, float bias, int64_t ld, const kern_activation *act);
#endif

#endif
