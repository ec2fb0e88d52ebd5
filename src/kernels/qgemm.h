/* qgemm.h — 8-bit integer kernels for the quantized ops: a GEMM with int32 accumulation (u8 right operand times s8
 * left operand, zero-point corrections and requantization fused into the store) and a direct depthwise convolution.
 * The scalar references live in ref/qgemm_ref.c; AVX-512 VNNI versions in x86/qgemm_avx512.c are chosen at run time.
 * Kernels see raw pointers and sizes only. Includes only core. */
#ifndef LENS_KERNELS_QGEMM_H
#define LENS_KERNELS_QGEMM_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"

/* ---- Packed operands ----------------------------------------------------------------------------------------------
 * K is padded to a multiple of 4 (K4 = ceil(K / 4) quads) with zeros on both sides.
 * Left [M, K], signed 8-bit, rows in blocks of KERN_QGEMM_MR (rows past M are zero):
 *     byte j of quad q of row r of block b is at ((b * K4 + q) * MR + r) * 4 + j.
 * Right [K, N], unsigned 8-bit, columns in panels of KERN_QGEMM_NR (columns past N are zero):
 *     byte j of quad q of column c of panel p is at ((p * K4 + q) * NR + c) * 4 + j.
 * Unsigned data goes to the left side and signed data to the right side by flipping the top bit (x ^ 0x80), which
 * moves the value by 128; the caller moves the zero point by the same amount. */

#define KERN_QGEMM_MR 8
#define KERN_QGEMM_NR 16

static inline size_t kern_qgemm_k4(size_t K) { return (K + 3) / 4; }
/* Bytes of a packed left operand [M, K] (0 on overflow). */
size_t kern_qgemm_left_bytes(size_t M, size_t K);
/* Bytes of a packed right operand [K, N] (0 on overflow). */
size_t kern_qgemm_right_bytes(size_t K, size_t N);
/* The packed rows starting at row m0 (a multiple of MR) / the packed columns starting at column n0 (a multiple of NR). */
static inline const int8_t *kern_qgemm_left_at(const int8_t *packed, size_t K, size_t m0) {
    return packed + (m0 / KERN_QGEMM_MR) * kern_qgemm_k4(K) * KERN_QGEMM_MR * 4;
}
static inline const uint8_t *kern_qgemm_right_at(const uint8_t *packed, size_t K, size_t n0) {
    return packed + (n0 / KERN_QGEMM_NR) * kern_qgemm_k4(K) * KERN_QGEMM_NR * 4;
}

/* Packs left [M, K] whose element (m, k) is src[m * row_stride + k * col_stride] (bytes). src_unsigned: the source is
 * uint8 and is flipped to int8 (value - 128). row_sums (optional, [M]): sum over k of the packed int8 values. */
void kern_qgemm_pack_left(const void *src, size_t M, size_t K, ptrdiff_t row_stride, ptrdiff_t col_stride,
                          int src_unsigned, int8_t *dst, int32_t *row_sums);

/* Packs right [K, N] whose element (k, n) is src[k * k_stride + n * n_stride] (bytes). flip: the source is int8 and
 * is flipped to uint8 (value + 128). col_sums (optional, [N]): sum over k of the packed uint8 values. Fast when
 * n_stride == 1. */
void kern_qgemm_pack_right(const uint8_t *src, size_t K, size_t N, ptrdiff_t k_stride, ptrdiff_t n_stride, int flip,
                           uint8_t *dst, int32_t *col_sums);
void kern_qgemm_pack_right_ref(const uint8_t *src, size_t K, size_t N, ptrdiff_t k_stride, ptrdiff_t n_stride,
                               int flip, uint8_t *dst, int32_t *col_sums);

/* ---- GEMM ------------------------------------------------------------------------------------------------------- */

/* What happens to each int32 sum acc(m, n) = Σk left(m, k) · right(k, n) on its way out:
 *     v = acc + row_bias[m] - row_zp[m] · col_sums[n]
 * then either v is stored as int32 (scale == NULL), or it is requantized to 8 bits the way ONNX Runtime does:
 *     q = clamp(round_half_even(clamp((float)v · scale[m], lo - zero_point, hi - zero_point)) + zero_point)
 * with [lo, hi] = [qmin, qmax] ([0, 255]: uint8 output, [-128, 127]: int8 output). */
typedef struct kern_qgemm_out {
    const int32_t *row_bias; /* [M], or NULL for zero */
    const int32_t *row_zp;   /* [M], or NULL when every row's zero point is 0 (col_sums is then unused) */
    const int32_t *col_sums; /* [N] */
    const float *scale;      /* [M], or NULL: store int32 */
    int32_t zero_point;
    int32_t qmin, qmax;      /* [0, 255] or [-128, 127] */
    void *out;               /* element (m, n) at out + m * row_stride + n * col_stride, counted in elements */
    ptrdiff_t row_stride, col_stride;
} kern_qgemm_out;

/* out[M, N] = packed left [M, K] · packed right [K, N], then the epilogue. One thread; callers split M by
 * multiples of MR and N by multiples of NR (using kern_qgemm_left_at / right_at and offset pointers). */
void kern_qgemm(size_t M, size_t N, size_t K, const int8_t *left, const uint8_t *right, const kern_qgemm_out *out);
/* The scalar reference: the oracle for every fast version. */
void kern_qgemm_ref(size_t M, size_t N, size_t K, const int8_t *left, const uint8_t *right, const kern_qgemm_out *out);

/* ---- Depthwise convolution of one channel plane ------------------------------------------------------------------ */

typedef struct kern_qdw_shape {
    size_t in_h, in_w, out_h, out_w;
    size_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w;
    size_t pad_top, pad_left; /* positions outside the input read as the input zero point */
} kern_qdw_shape;

/* One plane: v(oy, ox) = bias + Σ (x(iy, ix) - x_zp) · w(ky, kx), where x is uint8 (flip: int8, read as x + 128 with
 * x_zp moved likewise) and w[kernel_h * kernel_w] holds the weights minus their zero point. Then v goes out through
 * the same epilogue as the GEMM with row m = 0 (scale NULL: int32 out), written at out + oy * out_w + ox.
 * scratch: kern_qdw_scratch_bytes(s) bytes, 64-byte aligned. */
typedef struct kern_qdw_out {
    int32_t bias;
    const float *scale; /* one value, or NULL: store int32 */
    int32_t zero_point, qmin, qmax;
    void *out;
} kern_qdw_out;

size_t kern_qdw_scratch_bytes(const kern_qdw_shape *s);
void kern_qdwconv(const kern_qdw_shape *s, const uint8_t *x, int flip, int32_t x_zp, const int16_t *w,
                  const kern_qdw_out *out, void *scratch);
void kern_qdwconv_ref(const kern_qdw_shape *s, const uint8_t *x, int flip, int32_t x_zp, const int16_t *w,
                      const kern_qdw_out *out);

/* The requantization of one value, exactly as the kernels do it (for ops that requantize on their own). NaN maps to
 * qmin - zero_point before rounding, so no input can make the conversion undefined. */
static inline int32_t kern_requantize(int32_t v, float scale, int32_t zero_point, int32_t qmin, int32_t qmax) {
    float f = (float)v * scale;
    float lo = (float)(qmin - zero_point), hi = (float)(qmax - zero_point);
    if (!(f >= lo)) f = lo;
    if (f > hi) f = hi;
    return (int32_t)nearbyintf(f) + zero_point;
}

/* ---- Element-wise ------------------------------------------------------------------------------------------------ */

/* QLinearAdd / QLinearMul of 8-bit data (qmin < 0: int8, else uint8), as ONNX Runtime's x86 kernels compute them:
 *   add: q = clamp(round_half_even(((float)(a - a_zp) * a_scale + (float)(b - b_zp) * b_scale) / c_scale)) + c_zp
 *   mul: q = clamp(round_half_even((float)((a - a_zp) * (b - b_zp)) * (a_scale * b_scale / c_scale) + c_zp))
 * with the clamp keeping q in [qmin, qmax]. */
typedef struct kern_qbinary {
    int mul; /* 0: add, 1: mul */
    float a_scale, b_scale, c_scale;
    int32_t a_zp, b_zp, c_zp, qmin, qmax;
} kern_qbinary;

/* out[i] = a[i * a_step] op b[i * b_step] for i < n; steps are 0 (broadcast one value) or 1. */
void kern_qbinary_run(const kern_qbinary *p, const uint8_t *a, size_t a_step, const uint8_t *b, size_t b_step,
                      uint8_t *out, size_t n);
void kern_qbinary_ref(const kern_qbinary *p, const uint8_t *a, size_t a_step, const uint8_t *b, size_t b_step,
                      uint8_t *out, size_t n);

/* QuantizeLinear of float32 to 8 bits (qmin < 0: int8): q = clamp(round_half_even(x / scale)) + zp, clamped in float
 * before rounding like ONNX Runtime, NaN to qmin. */
void kern_quantize_f32(const float *x, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax, uint8_t *out);
void kern_quantize_f32_ref(const float *x, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax, uint8_t *out);

/* Which implementation runs here ("avx512vnni" or "generic"). */
const char *kern_qgemm_name(void);

/* ---- Fast versions (x86/qgemm_avx512.c); callers go through the dispatching functions above ----------------------- */
#if defined(LENS_X86)
void kern_qgemm_avx512vnni(size_t M, size_t N, size_t K, const int8_t *left, const uint8_t *right,
                           const kern_qgemm_out *out);
void kern_qgemm_pack_right_avx512vnni(const uint8_t *src, size_t K, size_t N, ptrdiff_t k_stride, ptrdiff_t n_stride,
                                      int flip, uint8_t *dst, int32_t *col_sums);
void kern_qdwconv_avx512vnni(const kern_qdw_shape *s, const uint8_t *x, int flip, int32_t x_zp, const int16_t *w,
                             const kern_qdw_out *out, void *scratch);
void kern_qbinary_avx512(const kern_qbinary *p, const uint8_t *a, size_t a_step, const uint8_t *b, size_t b_step,
                         uint8_t *out, size_t n);
void kern_quantize_f32_avx512(const float *x, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax,
                              uint8_t *out);
#endif

#endif
