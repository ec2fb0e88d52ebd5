/* qgemm_avx512.c — AVX-512 VNNI versions of the 8-bit integer kernels in qgemm.h: right-operand packing, the GEMM
 * (8 rows x 48 columns per block, vpdpbusd) and the depthwise convolution (vpdpwssd). Same results as the references
 * in ref/qgemm_ref.c, bit for bit. Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni; called only when
 * core_cpu_features() reports them. */
#if defined(LENS_X86)

#include <immintrin.h>
#include <string.h>

#include "../qgemm.h"

/* ---- Packing the right operand ----------------------------------------------------------------------------------- */

void kern_qgemm_pack_right_avx512vnni(const uint8_t *src, size_t K, size_t N, ptrdiff_t k_stride, ptrdiff_t n_stride,
                                      int flip, uint8_t *dst, int32_t *col_sums) {
    if (n_stride != 1) {
        kern_qgemm_pack_right_ref(src, K, N, k_stride, n_stride, flip, dst, col_sums);
        return;
    }
    const size_t K4 = kern_qgemm_k4(K);
    const __m128i flip_bits = _mm_set1_epi8(flip ? (char)0x80 : 0);
    const __m512i ones = _mm512_set1_epi8(1);
    for (size_t n0 = 0; n0 < N; n0 += KERN_QGEMM_NR) {
        size_t cols = N - n0 < KERN_QGEMM_NR ? N - n0 : KERN_QGEMM_NR;
        __mmask16 cmask = (__mmask16)((1u << cols) - 1u);
        uint8_t *panel = dst + (n0 / KERN_QGEMM_NR) * K4 * 64;
        __m512i sums = _mm512_setzero_si512();
        for (size_t q = 0; q < K4; q++) {
            __m128i r[4];
            for (int j = 0; j < 4; j++) {
                size_t k = q * 4 + (size_t)j;
                if (k < K) {
                    __m128i v = _mm_maskz_loadu_epi8(cmask, src + (ptrdiff_t)k * k_stride + (ptrdiff_t)n0);
                    r[j] = _mm_maskz_mov_epi8(cmask, _mm_xor_si128(v, flip_bits));
                } else {
                    r[j] = _mm_setzero_si128();
                }
            }
            __m128i ab_lo = _mm_unpacklo_epi8(r[0], r[1]), ab_hi = _mm_unpackhi_epi8(r[0], r[1]);
            __m128i cd_lo = _mm_unpacklo_epi8(r[2], r[3]), cd_hi = _mm_unpackhi_epi8(r[2], r[3]);
            __m512i z = _mm512_castsi128_si512(_mm_unpacklo_epi16(ab_lo, cd_lo));
            z = _mm512_inserti32x4(z, _mm_unpackhi_epi16(ab_lo, cd_lo), 1);
            z = _mm512_inserti32x4(z, _mm_unpacklo_epi16(ab_hi, cd_hi), 2);
            z = _mm512_inserti32x4(z, _mm_unpackhi_epi16(ab_hi, cd_hi), 3);
            _mm512_storeu_si512(panel + q * 64, z);
            sums = _mm512_dpbusd_epi32(sums, z, ones);
        }
        if (col_sums) _mm512_mask_storeu_epi32(col_sums + n0, cmask, sums);
    }
}

/* ---- GEMM -------------------------------------------------------------------------------------------------------- */

typedef struct epilogue_consts {
    __m512 lo, hi;
    __m512i zero_point;
} epilogue_consts;

/* Applies the epilogue to 16 sums of row m, columns n .. n + 15 (mask: the valid ones). */
static inline __attribute__((always_inline)) void store16(const kern_qgemm_out *o, const epilogue_consts *c, size_t m,
                                                          size_t n, __mmask16 mask, __m512i v) {
    if (o->row_bias) v = _mm512_add_epi32(v, _mm512_set1_epi32(o->row_bias[m]));
    if (o->row_zp) {
        __m512i cs = _mm512_maskz_loadu_epi32(mask, o->col_sums + n);
        v = _mm512_sub_epi32(v, _mm512_mullo_epi32(_mm512_set1_epi32(o->row_zp[m]), cs));
    }
    ptrdiff_t at = (ptrdiff_t)m * o->row_stride + (ptrdiff_t)n * o->col_stride;
    if (!o->scale) {
        if (o->col_stride == 1) {
            _mm512_mask_storeu_epi32((int32_t *)o->out + at, mask, v);
        } else {
            int32_t tmp[16];
            _mm512_storeu_si512(tmp, v);
            for (int i = 0; i < 16; i++)
                if (mask >> i & 1) ((int32_t *)o->out)[at + i * o->col_stride] = tmp[i];
        }
        return;
    }
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_set1_ps(o->scale[m]));
    f = _mm512_min_ps(_mm512_max_ps(f, c->lo), c->hi);
    __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), c->zero_point);
    __m128i bytes = _mm512_cvtepi32_epi8(q);
    if (o->col_stride == 1) {
        _mm_mask_storeu_epi8((uint8_t *)o->out + at, mask, bytes);
    } else {
        uint8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, bytes);
        for (int i = 0; i < 16; i++)
            if (mask >> i & 1) ((uint8_t *)o->out)[at + i * o->col_stride] = tmp[i];
    }
}

static inline __attribute__((always_inline)) void block_8xnv(int nv, size_t K4, const int8_t *a, const uint8_t *b,
                                                             size_t panel_bytes, const kern_qgemm_out *o,
                                                             const epilogue_consts *c, size_t m0, size_t rows,
                                                             size_t n0, size_t cols) {
    __m512i acc[KERN_QGEMM_MR][3];
#pragma GCC unroll 8
    for (int r = 0; r < KERN_QGEMM_MR; r++)
#pragma GCC unroll 3
        for (int j = 0; j < 3; j++) acc[r][j] = _mm512_setzero_si512();
    /* The hot loop: per quad of K, 3 right vectors x 8 broadcast left dwords = 24 vpdpbusd. */
    for (size_t q = 0; q < K4; q++) {
        __m512i bv[3];
#pragma GCC unroll 3
        for (int j = 0; j < 3; j++)
            if (j < nv) bv[j] = _mm512_loadu_si512(b + (size_t)j * panel_bytes + q * 64);
        const int8_t *aq = a + q * KERN_QGEMM_MR * 4;
#pragma GCC unroll 8
        for (int r = 0; r < KERN_QGEMM_MR; r++) {
            int32_t w;
            memcpy(&w, aq + r * 4, 4);
            __m512i wv = _mm512_set1_epi32(w);
#pragma GCC unroll 3
            for (int j = 0; j < 3; j++)
                if (j < nv) acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], bv[j], wv);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < KERN_QGEMM_MR; r++) {
        if ((size_t)r >= rows) break;
#pragma GCC unroll 3
        for (int j = 0; j < 3; j++) {
            if (j >= nv) break;
            size_t left = cols - (size_t)j * 16;
            __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
            store16(o, c, m0 + (size_t)r, n0 + (size_t)j * 16, mask, acc[r][j]);
        }
    }
}

void kern_qgemm_avx512vnni(size_t M, size_t N, size_t K, const int8_t *left, const uint8_t *right,
                           const kern_qgemm_out *out) {
    const size_t K4 = kern_qgemm_k4(K);
    const size_t panel_bytes = K4 * KERN_QGEMM_NR * 4, block_bytes = K4 * KERN_QGEMM_MR * 4;
    epilogue_consts c = {_mm512_set1_ps((float)(out->qmin - out->zero_point)),
                         _mm512_set1_ps((float)(out->qmax - out->zero_point)), _mm512_set1_epi32(out->zero_point)};
    for (size_t m0 = 0; m0 < M; m0 += KERN_QGEMM_MR) {
        const int8_t *a = left + (m0 / KERN_QGEMM_MR) * block_bytes;
        size_t rows = M - m0 < KERN_QGEMM_MR ? M - m0 : KERN_QGEMM_MR;
        for (size_t n0 = 0; n0 < N; n0 += 3 * KERN_QGEMM_NR) {
            const uint8_t *b = right + (n0 / KERN_QGEMM_NR) * panel_bytes;
            size_t cols = N - n0 < 3 * KERN_QGEMM_NR ? N - n0 : 3 * KERN_QGEMM_NR;
            if (cols > 32) block_8xnv(3, K4, a, b, panel_bytes, out, &c, m0, rows, n0, cols);
            else if (cols > 16) block_8xnv(2, K4, a, b, panel_bytes, out, &c, m0, rows, n0, cols);
            else block_8xnv(1, K4, a, b, panel_bytes, out, &c, m0, rows, n0, cols);
        }
    }
}

/* ---- Depthwise --------------------------------------------------------------------------------------------------- */

#define DW_MAX_TAPS 64

/* nv vectors of 16 outputs, vector j starting at output (oy[j], ox[j]): independent accumulators, so the vpdpwssd
 * chains overlap instead of waiting on each other's latency; on narrow planes the vectors come from several rows. */
static inline __attribute__((always_inline)) void dw_block(int nv, const kern_qdw_shape *s, const uint8_t *pad,
                                                           size_t pitch, const size_t *oy, const size_t *ox,
                                                           const __m512i *wv, __m512i init, const kern_qgemm_out *o,
                                                           const epilogue_consts *c) {
    __m512i acc[4];
    const uint8_t *base[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        acc[j] = init;
        base[j] = j < nv ? pad + oy[j] * s->stride_h * pitch + ox[j] * s->stride_w : pad;
    }
    const size_t kh = s->kernel_h, kw = s->kernel_w, step = s->dilation_h * pitch;
    if (s->stride_w == 1) {
        for (size_t ky = 0; ky < kh; ky++) {
            for (size_t kx = 0; kx < kw; kx++) {
                __m512i w = wv[ky * kw + kx];
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++)
                    if (j < nv)
                        acc[j] = _mm512_dpwssd_epi32(
                            acc[j], _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(base[j] + kx))), w);
            }
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) base[j] += step;
        }
    } else {
        const size_t pairs = (kw + 1) / 2;
        for (size_t ky = 0; ky < kh; ky++) {
            for (size_t kp = 0; kp < pairs; kp++) {
                __m512i w = wv[ky * pairs + kp];
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++)
                    if (j < nv)
                        acc[j] = _mm512_dpwssd_epi32(
                            acc[j], _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(base[j] + 2 * kp))), w);
            }
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) base[j] += step;
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        if (j >= nv) break;
        size_t left = s->out_w - ox[j];
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        store16(o, c, 0, oy[j] * s->out_w + ox[j], mask, acc[j]);
    }
}

void kern_qdwconv_avx512vnni(const kern_qdw_shape *s, const uint8_t *x, int flip, int32_t x_zp, const int16_t *w,
                             const kern_qdw_out *out, void *scratch) {
    size_t taps = s->kernel_h * s->kernel_w;
    if (s->dilation_w != 1 || (s->stride_w != 1 && s->stride_w != 2) || taps == 0 || taps > DW_MAX_TAPS ||
        s->out_h == 0 || s->out_w == 0 || !scratch) {
        kern_qdwconv_ref(s, x, flip, x_zp, w, out);
        return;
    }
    /* Copy the rows and columns the outputs read into a buffer padded with the zero point, so the inner loops have no
     * bounds checks: padding then adds (x_zp - x_zp) * w = 0 like the reference's skipped taps. Past span_w the
     * buffer is left as it is: only lanes of outputs past out_w read there (or partners of zero weights), and their
     * results are never stored. */
    const size_t span_h = (s->out_h - 1) * s->stride_h + (s->kernel_h - 1) * s->dilation_h + 1;
    const size_t span_w = (s->out_w - 1) * s->stride_w + (s->kernel_w - 1) + 1;
    const size_t pitch = span_w + 128;
    uint8_t *pad = scratch;
    const uint8_t zp_byte = (uint8_t)x_zp;
    const __m512i flip_bits = _mm512_set1_epi8(flip ? (char)0x80 : 0);
    /* Buffer columns [c0, c1) hold input columns; the rest, slack included, reads as the zero point. */
    const size_t c0 = s->pad_left < span_w ? s->pad_left : span_w;
    const size_t c1 = s->pad_left + s->in_w < span_w ? s->pad_left + s->in_w : span_w;
    const __m512i zp_vec = _mm512_set1_epi8((char)zp_byte);
    for (size_t r = 0; r < span_h; r++) {
        uint8_t *dst = pad + r * pitch;
        ptrdiff_t iy = (ptrdiff_t)r - (ptrdiff_t)s->pad_top;
        /* Vector stores instead of memset: planes are often a few dozen bytes wide, where a call costs more. */
        for (size_t col = 0; col < span_w; col += 64) {
            size_t left = span_w - col;
            _mm512_mask_storeu_epi8(dst + col, left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1), zp_vec);
        }
        if (iy < 0 || iy >= (ptrdiff_t)s->in_h || c1 <= c0) continue;
        const uint8_t *src = x + (size_t)iy * s->in_w;
        for (size_t col = c0; col < c1; col += 64) {
            size_t left = c1 - col;
            __mmask64 m = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
            __m512i v = _mm512_maskz_loadu_epi8(m, src + (col - s->pad_left));
            _mm512_mask_storeu_epi8(dst + col, m, _mm512_xor_si512(v, flip_bits));
        }
    }

    __m512i wv[DW_MAX_TAPS];
    int32_t wsum = 0;
    for (size_t t = 0; t < taps; t++) wsum += w[t];
    size_t n_wv = 0;
    if (s->stride_w == 1) {
        for (size_t t = 0; t < taps; t++) wv[n_wv++] = _mm512_set1_epi32((int32_t)(uint16_t)w[t]);
    } else {
        for (size_t ky = 0; ky < s->kernel_h; ky++)
            for (size_t kx = 0; kx < s->kernel_w; kx += 2) {
                uint32_t w0 = (uint16_t)w[ky * s->kernel_w + kx];
                uint32_t w1 = kx + 1 < s->kernel_w ? (uint16_t)w[ky * s->kernel_w + kx + 1] : 0;
                wv[n_wv++] = _mm512_set1_epi32((int32_t)(w0 | w1 << 16));
            }
    }
    const __m512i init = _mm512_set1_epi32((int32_t)((uint32_t)out->bias - (uint32_t)x_zp * (uint32_t)wsum));
    kern_qgemm_out o = {.row_bias = NULL, .row_zp = NULL, .col_sums = NULL, .scale = out->scale,
                        .zero_point = out->zero_point, .qmin = out->qmin, .qmax = out->qmax, .out = out->out,
                        .row_stride = 0, .col_stride = 1};
    epilogue_consts c = {_mm512_set1_ps((float)(out->qmin - out->zero_point)),
                         _mm512_set1_ps((float)(out->qmax - out->zero_point)), _mm512_set1_epi32(out->zero_point)};

    /* Walk the output vectors (16 columns of a row) in raster order, four at a time. */
    const size_t per_row = (s->out_w + 15) / 16, total = s->out_h * per_row;
    size_t oy[4], ox[4];
    for (size_t v = 0; v < total; v += 4) {
        int nv = total - v < 4 ? (int)(total - v) : 4;
        for (int j = 0; j < nv; j++) oy[j] = (v + (size_t)j) / per_row, ox[j] = (v + (size_t)j) % per_row * 16;
        if (nv == 4) dw_block(4, s, pad, pitch, oy, ox, wv, init, &o, &c);
        else if (nv == 3) dw_block(3, s, pad, pitch, oy, ox, wv, init, &o, &c);
        else if (nv == 2) dw_block(2, s, pad, pitch, oy, ox, wv, init, &o, &c);
        else dw_block(1, s, pad, pitch, oy, ox, wv, init, &o, &c);
    }
}

/* ---- Element-wise ------------------------------------------------------------------------------------------------ */

/* The *_round_ps forms keep the compiler from fusing a multiply and an add into an FMA, which would round once where
 * the reference (and ONNX Runtime) round twice. */
#define RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

static inline __m512i load16x8(const uint8_t *p, size_t step, __mmask16 mask, int is_signed) {
    if (step == 0) return _mm512_set1_epi32(is_signed ? (int32_t)(int8_t)p[0] : (int32_t)p[0]);
    __m128i v = _mm_maskz_loadu_epi8(mask, p);
    return is_signed ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v);
}

void kern_qbinary_avx512(const kern_qbinary *p, const uint8_t *a, size_t a_step, const uint8_t *b, size_t b_step,
                         uint8_t *out, size_t n) {
    const int is_signed = p->qmin < 0;
    const __m512i za = _mm512_set1_epi32(p->a_zp), zb = _mm512_set1_epi32(p->b_zp), zc = _mm512_set1_epi32(p->c_zp);
    const __m512 sa = _mm512_set1_ps(p->a_scale), sb = _mm512_set1_ps(p->b_scale), sc = _mm512_set1_ps(p->c_scale);
    const __m512 ratio = _mm512_set1_ps(p->a_scale * p->b_scale / p->c_scale), zcf = _mm512_set1_ps((float)p->c_zp);
    const __m512 add_lo = _mm512_set1_ps((float)(p->qmin - p->c_zp)), add_hi = _mm512_set1_ps((float)(p->qmax - p->c_zp));
    const __m512 mul_lo = _mm512_set1_ps((float)p->qmin), mul_hi = _mm512_set1_ps((float)p->qmax);
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        __m512i va = _mm512_sub_epi32(load16x8(a + i * a_step, a_step, mask, is_signed), za);
        __m512i vb = _mm512_sub_epi32(load16x8(b + i * b_step, b_step, mask, is_signed), zb);
        __m512i q;
        if (p->mul) {
            __m512 f = _mm512_mul_round_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(va, vb)), ratio, RNE);
            f = _mm512_add_round_ps(f, zcf, RNE);
            f = _mm512_min_ps(_mm512_max_ps(f, mul_lo), mul_hi);
            q = _mm512_cvtps_epi32(f);
        } else {
            __m512 fa = _mm512_mul_round_ps(_mm512_cvtepi32_ps(va), sa, RNE);
            __m512 fb = _mm512_mul_round_ps(_mm512_cvtepi32_ps(vb), sb, RNE);
            __m512 f = _mm512_div_round_ps(_mm512_add_round_ps(fa, fb, RNE), sc, RNE);
            f = _mm512_min_ps(_mm512_max_ps(f, add_lo), add_hi);
            q = _mm512_add_epi32(_mm512_cvtps_epi32(f), zc);
        }
        _mm_mask_storeu_epi8(out + i, mask, _mm512_cvtepi32_epi8(q));
    }
}

void kern_quantize_f32_avx512(const float *x, size_t n, float scale, int32_t zp, int32_t qmin, int32_t qmax,
                              uint8_t *out) {
    const __m512 s = _mm512_set1_ps(scale), lo = _mm512_set1_ps((float)(qmin - zp)), hi = _mm512_set1_ps((float)(qmax - zp));
    const __m512i z = _mm512_set1_epi32(zp);
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        __m512 f = _mm512_div_round_ps(_mm512_maskz_loadu_ps(mask, x + i), s, RNE);
        f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
        __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), z);
        _mm_mask_storeu_epi8(out + i, mask, _mm512_cvtepi32_epi8(q));
    }
}

#endif
