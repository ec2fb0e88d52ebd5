/* winograd_avx512.c — the AVX-512 Winograd F(4x4, 3x3) tile transforms (see winograd_internal.h), 16 horizontally
 * adjacent tiles per vector: the input's vertical pass runs over whole rows, its horizontal pass deinterleaves the
 * stride-4 tile columns with permutes; the output transform interleaves its four column phases back into rows and
 * finishes with bias, residual and activation. Compiled with -mavx512f; only called after a CPU check. */
#include <immintrin.h>

#include "../winograd_internal.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

static __mmask16 first_lanes(int64_t n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* Lanes k, k + 4, ..., k + 60 of the 64 floats q[0..3]. */
ALWAYS_INLINE __m512 deinterleave4(const __m512 q[4], int k) {
    const __m512i idx = _mm512_setr_epi32(k, k + 4, k + 8, k + 12, k + 16, k + 20, k + 24, k + 28, k, k + 4, k + 8,
                                          k + 12, k + 16, k + 20, k + 24, k + 28);
    __m512 lo = _mm512_permutex2var_ps(q[0], idx, q[1]), hi = _mm512_permutex2var_ps(q[2], idx, q[3]);
    return _mm512_shuffle_f32x4(lo, hi, 0x44);
}

void kern_winograd_input_avx512(const float *plane, int64_t h, int64_t w, int64_t y0, int64_t x0, size_t ntiles,
                                float *dst, size_t point_stride, float *work) {
    const size_t groups = (ntiles + 15) / 16, width = 64 * groups + 80;
    const int64_t span = 4 * (int64_t)ntiles + 2; /* input columns the run reads */
    float *t = work;                                /* [6][width]: Bᵀ applied down the columns */
    /* Vertical pass straight from the plane: masked loads read zero outside it. */
    __mmask16 row_ok[6];
    const float *row[6];
    for (int i = 0; i < 6; i++) {
        int64_t yy = y0 + i;
        row_ok[i] = yy >= 0 && yy < h ? (__mmask16)0xffff : 0;
        row[i] = plane + (row_ok[i] ? yy * w : 0);
    }
    /* Only the first span columns are read back for valid tiles; past them t may hold anything (those lanes are
     * masked off at the store). */
    for (size_t xb = 0; xb < (size_t)span; xb += 16) {
        int64_t x = x0 + (int64_t)xb; /* plane column of lane 0 */
        int64_t lo = -x, hi = (w - x < span - (int64_t)xb ? w - x : span - (int64_t)xb);
        __mmask16 cols = (__mmask16)(first_lanes(hi) & ~first_lanes(lo));
        __m512 d[6];
        for (int i = 0; i < 6; i++) {
            __mmask16 mk = cols & row_ok[i];
            /* masked-off lanes are never touched, so the address may lie outside the plane */
            const float *src = (const float *)((uintptr_t)row[i] + (uintptr_t)(x * 4));
            d[i] = mk == 0xffff ? _mm512_loadu_ps(src) : mk ? _mm512_maskz_loadu_ps(mk, src) : _mm512_setzero_ps();
        }
        const __m512 four = _mm512_set1_ps(4), five = _mm512_set1_ps(5), two = _mm512_set1_ps(2);
        __m512 s12 = _mm512_add_ps(d[1], d[2]), d12 = _mm512_sub_ps(d[1], d[2]);
        __m512 d4m2 = _mm512_sub_ps(d[4], d[2]), d31 = _mm512_sub_ps(d[3], d[1]);
        _mm512_store_ps(t + 0 * width + xb, _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4])));
        _mm512_store_ps(t + 1 * width + xb, _mm512_fnmadd_ps(four, s12, _mm512_add_ps(d[3], d[4])));
        _mm512_store_ps(t + 2 * width + xb, _mm512_fmadd_ps(four, d12, _mm512_sub_ps(d[4], d[3])));
        _mm512_store_ps(t + 3 * width + xb, _mm512_fmadd_ps(two, d31, d4m2));
        _mm512_store_ps(t + 4 * width + xb, _mm512_fnmadd_ps(two, d31, d4m2));
        _mm512_store_ps(t + 5 * width + xb, _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5])));
    }
    /* Horizontal pass: tile column phases 0..5, 16 tiles at a time. */
    const __m512 four = _mm512_set1_ps(4), five = _mm512_set1_ps(5), two = _mm512_set1_ps(2);
    for (size_t g = 0; g < groups; g++) {
        __mmask16 mask = first_lanes((int64_t)(ntiles - 16 * g));
        for (int i = 0; i < 6; i++) {
            const float *base = t + (size_t)i * width + 64 * g;
            __m512 q[4], r[4], e[6];
            for (int k = 0; k < 4; k++) {
                q[k] = _mm512_load_ps(base + 16 * k);
                r[k] = _mm512_loadu_ps(base + 4 + 16 * k);
            }
            e[0] = deinterleave4(q, 0), e[1] = deinterleave4(q, 1), e[2] = deinterleave4(q, 2);
            e[3] = deinterleave4(q, 3), e[4] = deinterleave4(r, 0), e[5] = deinterleave4(r, 1);
            __m512 s12 = _mm512_add_ps(e[1], e[2]), d12 = _mm512_sub_ps(e[1], e[2]);
            __m512 d4m2 = _mm512_sub_ps(e[4], e[2]), d31 = _mm512_sub_ps(e[3], e[1]);
            __m512 v[6] = {
                _mm512_fmadd_ps(four, e[0], _mm512_fnmadd_ps(five, e[2], e[4])),
                _mm512_fnmadd_ps(four, s12, _mm512_add_ps(e[3], e[4])),
                _mm512_fmadd_ps(four, d12, _mm512_sub_ps(e[4], e[3])),
                _mm512_fmadd_ps(two, d31, d4m2),
                _mm512_fnmadd_ps(two, d31, d4m2),
                _mm512_fmadd_ps(four, e[1], _mm512_fnmadd_ps(five, e[3], e[5])),
            };
            for (int j = 0; j < 6; j++) _mm512_mask_storeu_ps(dst + (size_t)(6 * i + j) * point_stride + 16 * g, mask, v[j]);
        }
    }
}

/* o[0..3] = Aᵀ m for six vectors. */
ALWAYS_INLINE void output_1d(const __m512 m[6], __m512 o[4]) {
    __m512 a = _mm512_add_ps(m[1], m[2]), b = _mm512_sub_ps(m[1], m[2]);
    __m512 c = _mm512_add_ps(m[3], m[4]), e = _mm512_sub_ps(m[3], m[4]);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], a), c);
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2), e, b);
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4), c, a);
    o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8), e, b), m[5]);
}

void kern_winograd_output_avx512(const float *m, size_t point_stride, size_t ntiles, float bias,
                                 const float *residual, float *y, int64_t ld, int rows, int64_t cols,
                                 const kern_activation *act) {
    const int relu = act && act->kind == KERN_ACT_RELU, clip = act && act->kind == KERN_ACT_CLIP;
    const int late_act = act && act->kind != KERN_ACT_NONE && !relu && !clip;
    const __m512 lo = _mm512_set1_ps(clip ? act->alpha : 0), hi = _mm512_set1_ps(clip ? act->beta : 0);
    const __m512 vbias = _mm512_set1_ps(bias);
    /* out[4l + c] = o_c[l]: pair phases (0,1) and (2,3) lane by lane, then pairs of pairs */
    const __m512i pair_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i pair_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512i quad_lo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const __m512i quad_hi = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    for (size_t g = 0; g * 16 < ntiles; g++) {
        __m512 s[6][4], o[4][4];
        for (int i = 0; i < 6; i++) {
            __m512 mv[6];
            for (int j = 0; j < 6; j++) mv[j] = _mm512_loadu_ps(m + (size_t)(6 * i + j) * point_stride + 16 * g);
            output_1d(mv, s[i]);
        }
        for (int c = 0; c < 4; c++) {
            __m512 col[6] = {s[0][c], s[1][c], s[2][c], s[3][c], s[4][c], s[5][c]}, out[4];
            output_1d(col, out);
            for (int a = 0; a < 4; a++) o[a][c] = _mm512_add_ps(out[a], vbias);
        }
        for (int a = 0; a < rows; a++) {
            __m512 p01l = _mm512_permutex2var_ps(o[a][0], pair_lo, o[a][1]);
            __m512 p23l = _mm512_permutex2var_ps(o[a][2], pair_lo, o[a][3]);
            __m512 p01h = _mm512_permutex2var_ps(o[a][0], pair_hi, o[a][1]);
            __m512 p23h = _mm512_permutex2var_ps(o[a][2], pair_hi, o[a][3]);
            __m512 wv[4] = {_mm512_permutex2var_ps(p01l, quad_lo, p23l), _mm512_permutex2var_ps(p01l, quad_hi, p23l),
                            _mm512_permutex2var_ps(p01h, quad_lo, p23h), _mm512_permutex2var_ps(p01h, quad_hi, p23h)};
            for (int v = 0; v < 4; v++) {
                int64_t x = 64 * (int64_t)g + 16 * v;
                __mmask16 mask = first_lanes(cols - x);
                if (!mask) break;
                size_t at = (size_t)(a * ld + x);
                __m512 val = wv[v];
                if (residual) val = _mm512_add_ps(val, _mm512_maskz_loadu_ps(mask, residual + at));
                if (relu) val = _mm512_max_ps(val, _mm512_setzero_ps());
                if (clip) val = _mm512_min_ps(hi, _mm512_max_ps(lo, val));
                _mm512_mask_storeu_ps(y + at, mask, val);
            }
        }
    }
    if (late_act)
        for (int a = 0; a < rows; a++) kern_activation_apply(act, y + a * ld, (size_t)cols);
}
