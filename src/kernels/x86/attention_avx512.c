/* attention_avx512.c — kern_attention on the AVX-512 GEMM micro-kernel (x86/gemm_avx512.c): one head, 12 query rows
 * at a time, so that their score block (12 x keys floats) stays in L1 between its three uses:
 *
 *   S = Q (scale Kᵀ)   Q's rows read in place as the micro-kernel's A (its direct-A form); scale Kᵀ packed once per
 *                      head into 32-key panels as its B
 *   P = e^(S - max)    in place, row by row, keeping each row's sum: a softmax without its normalisation
 *   Y = P V / sum      P read in place as A, V packed once per head into 32-column panels as B; 1 / sum then scales
 *                      Y's rows (dim wide) rather than P's (keys wide)
 *
 * Compiled with AVX-512 flags; called from kernels/attention.c only when the GEMM runs its AVX-512 kernel. Touches
 * only its arguments and the scratch. */
#include <immintrin.h>
#include <string.h>

#include "../gemm_internal.h"

#define ROWS KERN_GEMM_AVX512_MR  /* query rows per score block */
#define PANEL KERN_GEMM_AVX512_NR /* keys per panel of Kᵀ, columns per panel of V */

static size_t round_up(size_t a, size_t b) { return (a + b - 1) / b * b; }

/* The scratch, in floats: Kᵀ's and V's panels first (their place depends only on keys and dim, so a later row block
 * finds them where the first left them), then the score block and the row sums. */
typedef struct layout {
    size_t kt, v, s, sums, total;
    size_t ld_s; /* floats between score rows */
} layout;

static layout layout_for(size_t keys, size_t dim) {
    layout l;
    l.ld_s = round_up(keys, 16);
    l.kt = 0;
    l.v = l.kt + round_up(keys, PANEL) * dim;
    l.s = l.v + round_up(dim, PANEL) * keys;
    l.sums = l.s + ROWS * l.ld_s;
    l.total = l.sums + 16;
    return l;
}

size_t kern_attention_scratch_avx512(size_t keys, size_t dim) { return layout_for(keys, dim).total; }

/* scale Kᵀ as panels of PANEL keys, each dim steps of PANEL floats (missing keys zero), and V as panels of PANEL
 * columns, each keys steps of PANEL floats (missing columns zero). */
static void pack_kv(const kern_attention_head *h, float *kt, float *vp) {
    for (size_t t0 = 0; t0 < h->keys; t0 += PANEL) {
        size_t n = h->keys - t0 < PANEL ? h->keys - t0 : PANEL;
        kern_gemm_pack_rows_avx2(h->k + t0 * h->ldk, h->ldk, n, h->dim, h->scale, kt + t0 * h->dim, PANEL);
    }
    for (size_t c0 = 0; c0 < h->dim; c0 += PANEL) {
        size_t n = h->dim - c0 < PANEL ? h->dim - c0 : PANEL;
        __mmask16 m0 = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
        __mmask16 m1 = n >= 32 ? (__mmask16)0xffff : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
        const float *src = h->v + c0;
        float *d = vp + c0 * h->keys;
        for (size_t t = 0; t < h->keys; t++, src += h->ldv, d += PANEL) {
            _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(m0, src));
            _mm512_storeu_ps(d + 16, _mm512_maskz_loadu_ps(m1, src + 16));
        }
    }
}

/* The hot loop: rows [i0, i0 + m), m <= ROWS. */
static void block(const kern_attention_head *h, const layout *l, float *scratch, size_t i0, size_t m) {
    const size_t keys = h->keys, dim = h->dim;
    float *s = scratch + l->s, *sums = scratch + l->sums;
    const kern_gemm_tile q_direct = {.lda = h->ldq};
    const float *q = h->q + i0 * h->ldq;
    for (size_t t0 = 0; t0 < keys; t0 += PANEL) {
        kern_gemm_b b = {scratch + l->kt + t0 * dim, 0, NULL};
        size_t n = keys - t0 < PANEL ? keys - t0 : PANEL;
        kern_gemm_ukernel_avx512(dim, q, &b, s + t0, l->ld_s, m, n, &q_direct);
    }
    for (size_t i = 0; i < m; i++) sums[i] = kern_softmax_exp_row(s + i * l->ld_s, s + i * l->ld_s, keys);
    const kern_gemm_tile p_direct = {.lda = l->ld_s};
    float *y = h->y + i0 * h->ldy;
    for (size_t c0 = 0; c0 < dim; c0 += PANEL) {
        kern_gemm_b b = {scratch + l->v + c0 * keys, 0, NULL};
        size_t n = dim - c0 < PANEL ? dim - c0 : PANEL;
        kern_gemm_ukernel_avx512(keys, s, &b, y + c0, h->ldy, m, n, &p_direct);
    }
    const size_t dv = dim / 16 * 16;
    const __mmask16 tail = (__mmask16)((1u << (dim - dv)) - 1);
    for (size_t i = 0; i < m; i++) {
        const __m512 inv = _mm512_set1_ps(1.0f / sums[i]);
        float *row = y + i * h->ldy;
        for (size_t c = 0; c < dv; c += 16) _mm512_storeu_ps(row + c, _mm512_mul_ps(inv, _mm512_loadu_ps(row + c)));
        if (tail) _mm512_mask_storeu_ps(row + dv, tail, _mm512_mul_ps(inv, _mm512_maskz_loadu_ps(tail, row + dv)));
    }
}

void kern_attention_avx512(const kern_attention_head *h, float *scratch, bool kv_ready) {
    layout l = layout_for(h->keys, h->dim);
    if (!kv_ready) pack_kv(h, scratch + l.kt, scratch + l.v);
    for (size_t i0 = 0; i0 < h->rows; i0 += ROWS) block(h, &l, scratch, i0, h->rows - i0 < ROWS ? h->rows - i0 : ROWS);
}
