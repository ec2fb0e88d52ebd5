/* winograd_avx512.c — the AVX-512 Winograd F(4x4, 3x3) tile transforms (see winograd_internal.h), 16 horizontally
 * adjacent tiles per vector: the input's vertical pass runs over whole rows, its horizontal pass deinterleaves the
 * stride-4 tile columns with permutes; the output transform interleaves its four column phases back into rows and
 * finishes with bias, residual and activation. The packed variants put four short runs (tile rows of small
 * images) in one vector, 4 lanes each, and compress / expand the lanes to the runs' adjacent tiles; F(2x2, 3x3)
 * has only those. Compiled with -mavx512f; only called after a CPU check. */
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

/* Columns x.. of a plane row where lanes cols of row_ok (all or none) are set, zero elsewhere. */
ALWAYS_INLINE __m512 load_cols(const float *row, __mmask16 row_ok, int64_t x, __mmask16 cols) {
    __mmask16 mk = cols & row_ok;
    /* masked-off lanes are never touched, so the address may lie outside the plane */
    const float *src = (const float *)((uintptr_t)row + (uintptr_t)(x * 4));
    return mk == 0xffff ? _mm512_loadu_ps(src) : mk ? _mm512_maskz_loadu_ps(mk, src) : _mm512_setzero_ps();
}

/* The row pointers and validity masks of rows y0..y0 + n - 1 of plane (row 0 for rows outside it). */
ALWAYS_INLINE void plane_rows(const float *plane, int64_t h, int64_t w, int64_t y0, int n, const float **row,
                              __mmask16 *row_ok) {
    for (int i = 0; i < n; i++) {
        int64_t yy = y0 + i;
        row_ok[i] = yy >= 0 && yy < h ? (__mmask16)0xffff : 0;
        row[i] = plane + (row_ok[i] ? yy * w : 0);
    }
}

/* The lanes of columns [x, x + span) of a row of width w that lie inside it, x the column of lane 0. */
ALWAYS_INLINE __mmask16 inside_cols(int64_t x, int64_t w, int64_t span) {
    int64_t hi = w - x < span ? w - x : span;
    return (__mmask16)(first_lanes(hi) & ~first_lanes(-x));
}

/* Bᵀ applied down the columns: t[i * width + c] for the span columns c of rows y0..y0 + 5 of plane from column x0
 * (zero outside it), in whole vectors (t holds 16 * ceil(span / 16) floats per row; past span, anything). */
ALWAYS_INLINE void input_vertical(const float *plane, int64_t h, int64_t w, int64_t y0, int64_t x0, int64_t span,
                                  float *t, size_t width) {
    /* masked loads read zero outside the plane */
    __mmask16 row_ok[6];
    const float *row[6];
    plane_rows(plane, h, w, y0, 6, row, row_ok);
    const __m512 four = _mm512_set1_ps(4), five = _mm512_set1_ps(5), two = _mm512_set1_ps(2);
    for (size_t xb = 0; xb < (size_t)span; xb += 16) {
        int64_t x = x0 + (int64_t)xb; /* plane column of lane 0 */
        __mmask16 cols = inside_cols(x, w, span - (int64_t)xb);
        __m512 d[6];
        for (int i = 0; i < 6; i++) d[i] = load_cols(row[i], row_ok[i], x, cols);
        __m512 s12 = _mm512_add_ps(d[1], d[2]), d12 = _mm512_sub_ps(d[1], d[2]);
        __m512 d4m2 = _mm512_sub_ps(d[4], d[2]), d31 = _mm512_sub_ps(d[3], d[1]);
        _mm512_store_ps(t + 0 * width + xb, _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4])));
        _mm512_store_ps(t + 1 * width + xb, _mm512_fnmadd_ps(four, s12, _mm512_add_ps(d[3], d[4])));
        _mm512_store_ps(t + 2 * width + xb, _mm512_fmadd_ps(four, d12, _mm512_sub_ps(d[4], d[3])));
        _mm512_store_ps(t + 3 * width + xb, _mm512_fmadd_ps(two, d31, d4m2));
        _mm512_store_ps(t + 4 * width + xb, _mm512_fnmadd_ps(two, d31, d4m2));
        _mm512_store_ps(t + 5 * width + xb, _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5])));
    }
}

/* Horizontal pass over one row of the vertical pass's output: lane l of v[j] is B-column j of the tile whose
 * columns start at float 4 (l % 4) of seg[l / 4] (seg[k] + 0..19 readable, seg[k] 64-byte aligned). With
 * contiguous (the seg[k] 16 floats apart), the columns 4 and 5 of each tile are columns 0 and 1 of the next, and
 * seg[0][64], seg[0][65] those of the last. */
ALWAYS_INLINE void input_horizontal(const float *const seg[4], int contiguous, __m512 v[6]) {
    const __m512 four = _mm512_set1_ps(4), five = _mm512_set1_ps(5), two = _mm512_set1_ps(2);
    __m512 q[4], e[6];
    for (int k = 0; k < 4; k++) q[k] = _mm512_load_ps(seg[k]);
    e[0] = deinterleave4(q, 0), e[1] = deinterleave4(q, 1), e[2] = deinterleave4(q, 2), e[3] = deinterleave4(q, 3);
    if (contiguous) {
        /* shift by one lane, the next tile's columns entering at the top */
        e[4] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(seg[0][64])),
                                                       _mm512_castps_si512(e[0]), 1));
        e[5] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(seg[0][65])),
                                                       _mm512_castps_si512(e[1]), 1));
    } else {
        __m512 r[4];
        for (int k = 0; k < 4; k++) r[k] = _mm512_loadu_ps(seg[k] + 4);
        e[4] = deinterleave4(r, 0), e[5] = deinterleave4(r, 1);
    }
    __m512 s12 = _mm512_add_ps(e[1], e[2]), d12 = _mm512_sub_ps(e[1], e[2]);
    __m512 d4m2 = _mm512_sub_ps(e[4], e[2]), d31 = _mm512_sub_ps(e[3], e[1]);
    v[0] = _mm512_fmadd_ps(four, e[0], _mm512_fnmadd_ps(five, e[2], e[4]));
    v[1] = _mm512_fnmadd_ps(four, s12, _mm512_add_ps(e[3], e[4]));
    v[2] = _mm512_fmadd_ps(four, d12, _mm512_sub_ps(e[4], e[3]));
    v[3] = _mm512_fmadd_ps(two, d31, d4m2);
    v[4] = _mm512_fnmadd_ps(two, d31, d4m2);
    v[5] = _mm512_fmadd_ps(four, e[1], _mm512_fnmadd_ps(five, e[3], e[5]));
}

void kern_winograd_input_avx512(const float *plane, int64_t h, int64_t w, int64_t y0, int64_t x0, size_t ntiles,
                                float *dst, size_t point_stride, float *work) {
    const size_t groups = (ntiles + 15) / 16, width = 64 * groups + 80;
    float *t = work; /* [6][width]: Bᵀ applied down the columns */
    /* only the first span columns are read back for valid tiles; the other lanes are masked off at the store */
    input_vertical(plane, h, w, y0, x0, 4 * (int64_t)ntiles + 2, t, width);
    /* horizontal pass: tile column phases 0..5, 16 tiles at a time */
    for (size_t g = 0; g < groups; g++) {
        __mmask16 mask = first_lanes((int64_t)(ntiles - 16 * g));
        for (int i = 0; i < 6; i++) {
            const float *base = t + (size_t)i * width + 64 * g;
            const float *const seg[4] = {base, base + 16, base + 32, base + 48};
            __m512 v[6];
            input_horizontal(seg, 1, v);
            for (int j = 0; j < 6; j++)
                _mm512_mask_storeu_ps(dst + (size_t)(6 * i + j) * point_stride + 16 * g, mask, v[j]);
        }
    }
}

/* Lanes of a packed group: run r owns lanes [r * lanes, r * lanes + runs[r].count). */
static __mmask16 packed_lanes(const wino_run_in *runs, size_t nruns, size_t lanes) {
    unsigned mask = 0;
    for (size_t r = 0; r < nruns; r++) mask |= (unsigned)first_lanes((int64_t)runs[r].count) << (r * lanes);
    return (__mmask16)mask;
}

void kern_winograd_input_packed_avx512(const wino_run_in *runs, size_t nruns, size_t lanes, int64_t h, int64_t w,
                                       float *dst, size_t point_stride, float *work) {
    /* per run [6][rs]: its vertical pass, 4 * lanes columns plus the 4 the last tile's phases 4, 5 read past them */
    const size_t rs = 4 * lanes + 16, per_run = lanes / 4;
    size_t total = 0;
    for (size_t r = 0; r < nruns; r++) {
        input_vertical(runs[r].plane, h, w, runs[r].y0, runs[r].x0, 4 * (int64_t)runs[r].count + 2, work + r * 6 * rs,
                       rs);
        total += runs[r].count;
    }
    const __mmask16 valid = packed_lanes(runs, nruns, lanes), out = first_lanes((int64_t)total);
    for (int i = 0; i < 6; i++) {
        const float *seg[4];
        for (size_t k = 0; k < 4; k++) {
            size_t r = k / per_run < nruns ? k / per_run : 0; /* lanes of missing runs: any readable data */
            seg[k] = work + (r * 6 + (size_t)i) * rs + 16 * (k % per_run);
        }
        __m512 v[6];
        input_horizontal(seg, 0, v);
        /* the runs' tiles are adjacent in dst: squeeze out the unused lanes */
        for (int j = 0; j < 6; j++)
            _mm512_mask_storeu_ps(dst + (size_t)(6 * i + j) * point_stride, out, _mm512_maskz_compress_ps(valid, v[j]));
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

/* Output rows of 4 * 16 columns from the four column phases o[a][0..3] of 16 tiles (lane = tile): wv[4 * l + c] =
 * o[a][c] lane l, in four vectors of 16 columns. */
ALWAYS_INLINE void output_interleave(const __m512 o[4], __m512 wv[4]) {
    /* pair phases (0,1) and (2,3) lane by lane, then pairs of pairs */
    const __m512i pair_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i pair_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512i quad_lo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const __m512i quad_hi = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    __m512 p01l = _mm512_permutex2var_ps(o[0], pair_lo, o[1]), p23l = _mm512_permutex2var_ps(o[2], pair_lo, o[3]);
    __m512 p01h = _mm512_permutex2var_ps(o[0], pair_hi, o[1]), p23h = _mm512_permutex2var_ps(o[2], pair_hi, o[3]);
    wv[0] = _mm512_permutex2var_ps(p01l, quad_lo, p23l), wv[1] = _mm512_permutex2var_ps(p01l, quad_hi, p23l);
    wv[2] = _mm512_permutex2var_ps(p01h, quad_lo, p23h), wv[3] = _mm512_permutex2var_ps(p01h, quad_hi, p23h);
}

/* o[a][c] = (Aᵀ m A)[a][c] + bias for 16 tiles, from the 36 points mv(xi). */
#define OUTPUT_TILES(mv, vbias, o)                                                                                    \
    do {                                                                                                              \
        __m512 s_[6][4];                                                                                              \
        for (int i_ = 0; i_ < 6; i_++) {                                                                              \
            __m512 m_[6];                                                                                             \
            for (int j_ = 0; j_ < 6; j_++) m_[j_] = mv(6 * i_ + j_);                                                  \
            output_1d(m_, s_[i_]);                                                                                    \
        }                                                                                                             \
        for (int c_ = 0; c_ < 4; c_++) {                                                                              \
            __m512 col_[6] = {s_[0][c_], s_[1][c_], s_[2][c_], s_[3][c_], s_[4][c_], s_[5][c_]}, out_[4];             \
            output_1d(col_, out_);                                                                                    \
            for (int a_ = 0; a_ < 4; a_++) (o)[a_][c_] = _mm512_add_ps(out_[a_], vbias);                              \
        }                                                                                                             \
    } while (0)

/* The fused epilogue of one vector of outputs: residual, then ReLU or Clip (others run afterwards). */
typedef struct out_epilogue {
    int relu, clip, late;
    __m512 lo, hi;
} out_epilogue;

ALWAYS_INLINE out_epilogue epilogue_for(const kern_activation *act) {
    out_epilogue e = {act && act->kind == KERN_ACT_RELU, act && act->kind == KERN_ACT_CLIP, 0, _mm512_setzero_ps(),
                      _mm512_setzero_ps()};
    e.late = act && act->kind != KERN_ACT_NONE && !e.relu && !e.clip;
    if (e.clip) e.lo = _mm512_set1_ps(act->alpha), e.hi = _mm512_set1_ps(act->beta);
    return e;
}

ALWAYS_INLINE void store_out(const out_epilogue *e, __m512 val, const float *residual, float *y, __mmask16 mask) {
    if (residual) val = _mm512_add_ps(val, _mm512_maskz_loadu_ps(mask, residual));
    if (e->relu) val = _mm512_max_ps(val, _mm512_setzero_ps());
    if (e->clip) val = _mm512_min_ps(e->hi, _mm512_max_ps(e->lo, val));
    _mm512_mask_storeu_ps(y, mask, val);
}

void kern_winograd_output_avx512(const float *m, size_t point_stride, size_t ntiles, float bias,
                                 const float *residual, float *y, int64_t ld, int rows, int64_t cols,
                                 const kern_activation *act) {
    const out_epilogue ep = epilogue_for(act);
    const __m512 vbias = _mm512_set1_ps(bias);
    for (size_t g = 0; g * 16 < ntiles; g++) {
        __m512 o[4][4];
#define MV(xi) _mm512_loadu_ps(m + (size_t)(xi) * point_stride + 16 * g)
        OUTPUT_TILES(MV, vbias, o);
#undef MV
        for (int a = 0; a < rows; a++) {
            __m512 wv[4];
            output_interleave(o[a], wv);
            for (int v = 0; v < 4; v++) {
                int64_t x = 64 * (int64_t)g + 16 * v;
                __mmask16 mask = first_lanes(cols - x);
                if (!mask) break;
                size_t at = (size_t)(a * ld + x);
                store_out(&ep, wv[v], residual ? residual + at : NULL, y + at, mask);
            }
        }
    }
    if (ep.late)
        kern_activation_apply_rows(act, y, (size_t)ld, (size_t)rows, (size_t)cols);
}

/* Lanes of a packed group of output runs (as packed_lanes), and their tile count. */
static __mmask16 packed_out_lanes(const wino_run_out *runs, size_t nruns, size_t lanes, size_t *total) {
    unsigned mask = 0;
    *total = 0;
    for (size_t r = 0; r < nruns; r++) {
        mask |= (unsigned)first_lanes((int64_t)runs[r].count) << (r * lanes);
        *total += runs[r].count;
    }
    return (__mmask16)mask;
}

void kern_winograd_output_packed_avx512(const float *m, size_t point_stride, const wino_run_out *runs, size_t nruns,
                                        size_t lanes, float bias, int64_t ld, const kern_activation *act) {
    const out_epilogue ep = epilogue_for(act);
    const __m512 vbias = _mm512_set1_ps(bias);
    const size_t per_run = lanes / 4;
    size_t total;
    /* the runs' tiles are adjacent in m: spread them to their runs' lanes */
    const __mmask16 spread = packed_out_lanes(runs, nruns, lanes, &total), in = first_lanes((int64_t)total);
    __m512 o[4][4];
#define MV(xi) _mm512_maskz_expand_ps(spread, _mm512_maskz_loadu_ps(in, m + (size_t)(xi) * point_stride))
    OUTPUT_TILES(MV, vbias, o);
#undef MV
    for (int a = 0; a < 4; a++) {
        __m512 wv[4];
        output_interleave(o[a], wv);
        for (size_t v = 0; v < 4; v++) {
            if (v / per_run >= nruns) break;
            const wino_run_out *r = runs + v / per_run;
            int64_t x = 16 * (int64_t)(v % per_run);
            if (a >= r->rows || x >= r->cols) continue;
            size_t at = (size_t)(a * ld + x);
            store_out(&ep, wv[v], r->residual ? r->residual + at : NULL, r->y + at, first_lanes(r->cols - x));
        }
    }
    if (ep.late)
        for (size_t r = 0; r < nruns; r++)
            kern_activation_apply_rows(act, runs[r].y, (size_t)ld, (size_t)runs[r].rows, (size_t)runs[r].cols);
}

/* ---- F(2x2, 3x3), packed only: Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], Aᵀ = [1 1 1 0; 0 1 -1 -1] ---- */

void kern_winograd_input2_packed_avx512(const wino_run_in *runs, size_t nruns, size_t lanes, int64_t h, int64_t w,
                                        float *dst, size_t point_stride, float *work) {
    (void)lanes; /* 4: run r's tile c in lane 4 r + c */
    /* Bᵀ down the columns, per row i: a[i][8 r + k] = column k of run r, b[i][8 r + k] = its column k + 2 */
    float *a = work, *b = work + 4 * 32;
    size_t total = 0;
    for (size_t r = 0; r < nruns; r++) {
        __mmask16 row_ok[4];
        const float *row[4];
        plane_rows(runs[r].plane, h, w, runs[r].y0, 4, row, row_ok);
        __mmask16 cols = inside_cols(runs[r].x0, w, 2 * (int64_t)runs[r].count + 2);
        __m512 d[4], t[4];
        for (int i = 0; i < 4; i++) d[i] = load_cols(row[i], row_ok[i], runs[r].x0, cols);
        t[0] = _mm512_sub_ps(d[0], d[2]), t[1] = _mm512_add_ps(d[1], d[2]);
        t[2] = _mm512_sub_ps(d[2], d[1]), t[3] = _mm512_sub_ps(d[1], d[3]);
        for (int i = 0; i < 4; i++) {
            _mm512_mask_storeu_ps(a + 32 * i + 8 * r, 0xff, t[i]);
            _mm512_mask_storeu_ps(b + 32 * i + 8 * r, 0xff,
                                  _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_setzero_si512(),
                                                                          _mm512_castps_si512(t[i]), 2)));
        }
        total += runs[r].count;
    }
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __mmask16 valid = packed_lanes(runs, nruns, 4), out = first_lanes((int64_t)total);
    for (int i = 0; i < 4; i++) {
        /* lane l = 4 r + c reads columns 2 c + k of run r: a[i][2 l + k] and b[i][2 l + k] */
        __m512 a0 = _mm512_load_ps(a + 32 * i), a1 = _mm512_load_ps(a + 32 * i + 16);
        __m512 b0 = _mm512_load_ps(b + 32 * i), b1 = _mm512_load_ps(b + 32 * i + 16);
        __m512 e0 = _mm512_permutex2var_ps(a0, even, a1), e1 = _mm512_permutex2var_ps(a0, odd, a1);
        __m512 e2 = _mm512_permutex2var_ps(b0, even, b1), e3 = _mm512_permutex2var_ps(b0, odd, b1);
        __m512 v[4] = {_mm512_sub_ps(e0, e2), _mm512_add_ps(e1, e2), _mm512_sub_ps(e2, e1), _mm512_sub_ps(e1, e3)};
        for (int j = 0; j < 4; j++)
            _mm512_mask_storeu_ps(dst + (size_t)(4 * i + j) * point_stride, out, _mm512_maskz_compress_ps(valid, v[j]));
    }
}

void kern_winograd_output2_packed_avx512(const float *m, size_t point_stride, const wino_run_out *runs, size_t nruns,
                                         size_t lanes, float bias, int64_t ld, const kern_activation *act) {
    (void)lanes; /* 4, as for the input */
    const out_epilogue ep = epilogue_for(act);
    const __m512 vbias = _mm512_set1_ps(bias);
    size_t total;
    const __mmask16 spread = packed_out_lanes(runs, nruns, 4, &total), in = first_lanes((int64_t)total);
    __m512 r[4][2];
    for (int i = 0; i < 4; i++) {
        __m512 mv[4];
        for (int j = 0; j < 4; j++)
            mv[j] = _mm512_maskz_expand_ps(spread, _mm512_maskz_loadu_ps(in, m + (size_t)(4 * i + j) * point_stride));
        r[i][0] = _mm512_add_ps(_mm512_add_ps(mv[0], mv[1]), mv[2]);
        r[i][1] = _mm512_sub_ps(_mm512_sub_ps(mv[1], mv[2]), mv[3]);
    }
    /* out[2 l + c] = o[a][c] lane l: runs 0, 1 in the first vector, 2, 3 in the second, 8 columns each */
    const __m512i pair_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i pair_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (int a = 0; a < 2; a++) {
        __m512 o[2];
        for (int c = 0; c < 2; c++)
            o[c] = _mm512_add_ps(vbias, a ? _mm512_sub_ps(_mm512_sub_ps(r[1][c], r[2][c]), r[3][c])
                                          : _mm512_add_ps(_mm512_add_ps(r[0][c], r[1][c]), r[2][c]));
        __m512 half[2] = {_mm512_permutex2var_ps(o[0], pair_lo, o[1]), _mm512_permutex2var_ps(o[0], pair_hi, o[1])};
        for (size_t q = 0; q < nruns; q++) {
            const wino_run_out *ru = runs + q;
            if (a >= ru->rows) continue;
            __m512 val = half[q / 2];
            if (q % 2) val = _mm512_shuffle_f32x4(val, val, 0xee);
            size_t at = (size_t)(a * ld);
            store_out(&ep, val, ru->residual ? ru->residual + at : NULL, ru->y + at, first_lanes(ru->cols));
        }
    }
    if (ep.late)
        for (size_t q = 0; q < nruns; q++)
            kern_activation_apply_rows(act, runs[q].y, (size_t)ld, (size_t)runs[q].rows, (size_t)runs[q].cols);
}
