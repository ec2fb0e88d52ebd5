/* qgemm_ref.c — the scalar references of the 8-bit integer kernels (packing, GEMM, depthwise convolution) and the
 * run-time choice between them and the fast versions. Touches only the buffers it is given. */
#include <string.h>

#include "../qgemm.h"

/* ---- Sizes ------------------------------------------------------------------------------------------------------- */

size_t kern_qgemm_left_bytes(size_t M, size_t K) {
    size_t blocks = M / KERN_QGEMM_MR + (M % KERN_QGEMM_MR != 0), bytes;
    if (!core_mul_size(blocks, kern_qgemm_k4(K), &bytes) || !core_mul_size(bytes, KERN_QGEMM_MR * 4, &bytes)) return 0;
    return bytes;
}

size_t kern_qgemm_right_bytes(size_t K, size_t N) {
    size_t panels = N / KERN_QGEMM_NR + (N % KERN_QGEMM_NR != 0), bytes;
    if (!core_mul_size(panels, kern_qgemm_k4(K), &bytes) || !core_mul_size(bytes, KERN_QGEMM_NR * 4, &bytes)) return 0;
    return bytes;
}

/* ---- Packing ----------------------------------------------------------------------------------------------------- */

void kern_qgemm_pack_left(const void *src, size_t M, size_t K, ptrdiff_t row_stride, ptrdiff_t col_stride,
                          int src_unsigned, int8_t *dst, int32_t *row_sums) {
    const uint8_t *s = src;
    size_t K4 = kern_qgemm_k4(K);
    memset(dst, 0, kern_qgemm_left_bytes(M, K));
    for (size_t m = 0; m < M; m++) {
        int8_t *row = dst + (m / KERN_QGEMM_MR) * K4 * KERN_QGEMM_MR * 4 + (m % KERN_QGEMM_MR) * 4;
        int32_t sum = 0;
        for (size_t k = 0; k < K; k++) {
            uint8_t byte = s[(ptrdiff_t)m * row_stride + (ptrdiff_t)k * col_stride];
            int8_t v = (int8_t)(src_unsigned ? (int)byte - 128 : (int)(int8_t)byte);
            row[(k / 4) * KERN_QGEMM_MR * 4 + k % 4] = v;
            sum += v;
        }
        if (row_sums) row_sums[m] = sum;
    }
}

void kern_qgemm_pack_right_ref(const uint8_t *src, size_t K, size_t N, ptrdiff_t k_stride, ptrdiff_t n_stride,
                               int flip, uint8_t *dst, int32_t *col_sums) {
    size_t K4 = kern_qgemm_k4(K);
    uint8_t x = flip ? 0x80 : 0;
    memset(dst, 0, kern_qgemm_right_bytes(K, N));
    for (size_t n = 0; n < N; n++) {
        uint8_t *col = dst + (n / KERN_QGEMM_NR) * K4 * KERN_QGEMM_NR * 4 + (n % KERN_QGEMM_NR) * 4;
        int32_t sum = 0;
        for (size_t k = 0; k < K; k++) {
            uint8_t v = src[(ptrdiff_t)k * k_stride + (ptrdiff_t)n * n_stride] ^ x;
            col[(k / 4) * KERN_QGEMM_NR * 4 + k % 4] = v;
            sum += v;
        }
        if (col_sums) col_sums[n] = sum;
    }
}

/* ---- GEMM -------------------------------------------------------------------------------------------------------- */

static void store_one(const kern_qgemm_out *o, size_t m, size_t n, int32_t acc) {
    /* Unsigned arithmetic: the sum wraps like the int32 lanes of the fast kernels instead of overflowing. */
    uint32_t u = (uint32_t)acc;
    if (o->row_bias) u += (uint32_t)o->row_bias[m];
    if (o->row_zp) u -= (uint32_t)o->row_zp[m] * (uint32_t)o->col_sums[n];
    int32_t v = (int32_t)u;
    ptrdiff_t at = (ptrdiff_t)m * o->row_stride + (ptrdiff_t)n * o->col_stride;
    if (!o->scale) {
        ((int32_t *)o->out)[at] = v;
        return;
    }
    int32_t q = kern_requantize(v, o->scale[m], o->zero_point, o->qmin, o->qmax);
    if (o->qmin < 0) ((int8_t *)o->out)[at] = (int8_t)q;
    else ((uint8_t *)o->out)[at] = (uint8_t)q;
}

void kern_qgemm_ref(size_t M, size_t N, size_t K, const int8_t *left, const uint8_t *right, const kern_qgemm_out *out) {
    size_t K4 = kern_qgemm_k4(K);
    for (size_t m = 0; m < M; m++) {
        const int8_t *a = left + (m / KERN_QGEMM_MR) * K4 * KERN_QGEMM_MR * 4 + (m % KERN_QGEMM_MR) * 4;
        for (size_t n = 0; n < N; n++) {
            const uint8_t *b = right + (n / KERN_QGEMM_NR) * K4 * KERN_QGEMM_NR * 4 + (n % KERN_QGEMM_NR) * 4;
            uint32_t acc = 0;
            for (size_t q = 0; q < K4; q++)
                for (int j = 0; j < 4; j++)
                    acc += (uint32_t)((int32_t)a[q * KERN_QGEMM_MR * 4 + j] * (int32_t)b[q * KERN_QGEMM_NR * 4 + j]);
            store_one(out, m, n, (int32_t)acc);
        }
    }
}

/* ---- Depthwise --------------------------------------------------------------------------------------------------- */

size_t kern_qdw_scratch_bytes(const kern_qdw_shape *s) {
    /* The fast version copies the plane into a zero-point-padded buffer with slack for whole-vector loads. */
    size_t span_h = (s->out_h ? s->out_h - 1 : 0) * s->stride_h + (s->kernel_h ? s->kernel_h - 1 : 0) * s->dilation_h + 1;
    size_t span_w = (s->out_w ? s->out_w - 1 : 0) * s->stride_w + (s->kernel_w ? s->kernel_w - 1 : 0) * s->dilation_w + 1;
    size_t rows = span_h, cols = span_w + 128, bytes;
    if (!core_mul_size(rows, cols, &bytes) || !core_add_size(bytes, 256, &bytes)) return 0;
    return bytes;
}

void kern_qdwconv_ref(const kern_qdw_shape *s, const uint8_t *x, int flip, int32_t x_zp, const int16_t *w,
                      const kern_qdw_out *out) {
    kern_qgemm_out o = {.row_bias = NULL, .row_zp = NULL, .col_sums = NULL, .scale = out->scale,
                        .zero_point = out->zero_point, .qmin = out->qmin, .qmax = out->qmax, .out = out->out,
                        .row_stride = 0, .col_stride = 1};
    uint8_t fx = flip ? 0x80 : 0;
    for (size_t oy = 0; oy < s->out_h; oy++)
        for (size_t ox = 0; ox < s->out_w; ox++) {
            uint32_t acc = (uint32_t)out->bias;
            for (size_t ky = 0; ky < s->kernel_h; ky++) {
                ptrdiff_t iy = (ptrdiff_t)(oy * s->stride_h + ky * s->dilation_h) - (ptrdiff_t)s->pad_top;
                if (iy < 0 || iy >= (ptrdiff_t)s->in_h) continue;
                for (size_t kx = 0; kx < s->kernel_w; kx++) {
                    ptrdiff_t ix = (ptrdiff_t)(ox * s->stride_w + kx * s->dilation_w) - (ptrdiff_t)s->pad_left;
                    if (ix < 0 || ix >= (ptrdiff_t)s->in_w) continue;
                    int32_t v = (int32_t)(x[(size_t)iy * s->in_w + (size_t)ix] ^ fx) - x_zp;
                    acc += (uint32_t)(v * (int32_t)w[ky * s->kernel_w + kx]);
                }
            }
            store_one(&o, 0, oy * s->out_w + ox, (int32_t)acc);
        }
}

/* ---- Element-wise ------------------------------------------------------------------------------------------------ */

static inline int32_t load8(const uint8_t *p, size_t i, int is_signed) {
    return is_signed ? (int32_t)(int8_t)p[i] : (int32_t)p[i];
}

void kern_qbinary_ref(const kern_qbinary *p, const uint8_t *a, size_t a_step, const uint8_t *b, size_t b_step,
                      uint8_t *out, size_t n) {
    const int is_signed = p->qmin < 0;
    const float ratio = p->a_scale * p->b_scale / p->c_scale;
    for (size_t i = 0; i < n; i++) {
        int32_t va = load8(a, i * a_step, is_signed) - p->a_zp, vb = load8(b, i * b_step, is_signed) - p->b_zp;
        int32_t q;
        if (p->mul) {
            float f = (float)(va * vb) * ratio;
            f = f + (float)p->c_zp;
            if (!(f >= (float)p->qmin)) f = (float)p->qmin;
            if (f > (float)p->qmax) f = (float)p->qmax;
            q = (int32_t)nearbyintf(f);
        } else {
            float fa = (float)va * p->a_scale, fb = (float)vb * p->b_scale;
            float f = (fa + fb) / p->c_scale;
            float lo = (float)(p->qmin - p->c_zp), hi = (float)(p->qmax - p->c_zp);
            if (!(f >= lo)) f = lo;
            if (f > hi) f = hi;
            q = (int32_t)nearbyintf(f) + p->c_zp;
        }
        out[i] = (uint8_t)q;
    }
}

void kern_quantize_f32_ref(const float *x, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax,
                           uint8_t *out) {
    const float lo = (float)(qmin - zp), hi = (float)(qmax - zp);
    for (size_t i = 0; i < n; i++) {
        float f = x[i] / scale;
        if (!(f >= lo)) f = lo;
        if (f > hi) f = hi;
        out[i] = (uint8_t)((int32_t)nearbyintf(f) + zp);
    }
}

/* ---- Dispatch ---------------------------------------------------------------------------------------------------- */

static int use_vnni(void) {
#if defined(LENS_X86)
    const core_cpu *c = core_cpu_features();
    return c->avx512f && c->avx512bw && c->avx512vl && c->avx512_vnni;
#else
    return 0;
#endif
}

const char *kern_qgemm_name(void) { return use_vnni() ? "avx512vnni" : "generic"; }

void kern_qgemm(size_t M, size_t N, size_t K, const int8_t *left, const uint8_t *right, const kern_qgemm_out *out) {
#if defined(LENS_X86)
    if (use_vnni()) {
        kern_qgemm_avx512vnni(M, N, K, left, right, out);
        return;
    }
#endif
    kern_qgemm_ref(M, N, K, left, right, out);
}

void kern_qgemm_pack_right(const uint8_t *src, size_t K, size_t N, ptrdiff_t k_stride, ptrdiff_t n_stride, int flip,
                           uint8_t *dst, int32_t *col_sums) {
#if defined(LENS_X86)
    if (use_vnni()) {
        kern_qgemm_pack_right_avx512vnni(src, K, N, k_stride, n_stride, flip, dst, col_sums);
        return;
    }
#endif
    kern_qgemm_pack_right_ref(src, K, N, k_stride, n_stride, flip, dst, col_sums);
}

void kern_qdwconv(const kern_qdw_shape *s, const uint8_t *x, int flip, int32_t x_zp, const int16_t *w,
                  const kern_qdw_out *out, void *scratch) {
#if defined(LENS_X86)
    if (use_vnni()) {
        kern_qdwconv_avx512vnni(s, x, flip, x_zp, w, out, scratch);
        return;
    }
#endif
    (void)scratch;
    kern_qdwconv_ref(s, x, flip, x_zp, w, out);
}

void kern_qbinary_run(const kern_qbinary *p, const uint8_t *a, size_t a_step, const uint8_t *b, size_t b_step,
                      uint8_t *out, size_t n) {
#if defined(LENS_X86)
    if (use_vnni()) {
        kern_qbinary_avx512(p, a, a_step, b, b_step, out, n);
        return;
    }
#endif
    kern_qbinary_ref(p, a, a_step, b, b_step, out, n);
}

void kern_quantize_f32(const float *x, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax, uint8_t *out) {
#if defined(LENS_X86)
    if (use_vnni()) {
        kern_quantize_f32_avx512(x, n, scale, zp, qmin, qmax, out);
        return;
    }
#endif
    kern_quantize_f32_ref(x, n, scale, zp, qmin, qmax, out);
}
