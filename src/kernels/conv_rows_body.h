/* conv_rows_body.h — the rows kernel of conv.h (kern_conv_rows), included at the end of conv_body.h and so compiled
 * once per ISA with its conv_vec helpers.
 *
 * A tile is P output pixels of one output row by a group of output channels: P x NV accumulator vectors, each
 * holding CONV_VLEN channels of one pixel. Each step (input channel, tap) loads the group's NV weight vectors and
 * broadcasts the P input values the pixels read, which lie S floats apart in one row of the input (or of the
 * zero-padded copy of the rows a block of output rows reads). No im2col matrix is built; at the end the tile is
 * transposed so that each channel's P outputs are stored as one run of its output row. */

/* max(v, 0), a NaN lane 0: Relu as kern_activation_apply computes it (the max instructions return their second
 * operand when either is NaN). */
static inline conv_vec conv_relu(conv_vec v) {
#if CONV_VBYTES == 64 && defined(__AVX512F__)
    return (conv_vec)_mm512_max_ps((__m512)v, _mm512_setzero_ps());
#elif CONV_VBYTES == 32 && defined(__AVX2__)
    return (conv_vec)_mm256_max_ps((__m256)v, _mm256_setzero_ps());
#else
    return (conv_vec)((conv_mask)v & (conv_mask)(v > 0.0f));
#endif
}

/* The activations the rows kernel applies as it stores (the rest go over each finished row). */
enum { CONV_STORE_PLAIN, CONV_STORE_RELU, CONV_STORE_CLIP };

/* Pixels per tile and weight vectors per group: 14 x 2 accumulators (32 channels) of AVX-512's 32 registers; 6 x 2
 * (16 channels) of AVX2's 16; 3 x 4 (16 channels) with 16-byte vectors. A tile never has more pixels than a vector
 * has lanes, so that one transpose turns it around. */
#if CONV_VLEN == 16
#define CONV_ROWS_PMAX 14
#define CONV_ROWS_NV 2
#elif CONV_VLEN == 8
#define CONV_ROWS_PMAX 6
#define CONV_ROWS_NV 2
#else
#define CONV_ROWS_PMAX 3
#define CONV_ROWS_NV 4
#endif
/* blocks of KERN_CONV_ROWS_OB channels per group */
#define CONV_ROWS_GB (CONV_ROWS_NV * CONV_VLEN / KERN_CONV_ROWS_OB)
_Static_assert(CONV_ROWS_PMAX <= CONV_VLEN, "a tile's pixels fit one vector");
_Static_assert(CONV_ROWS_NV * CONV_VLEN % KERN_CONV_ROWS_OB == 0, "a group is whole blocks");

/* The tile's sums, transposed: out[v * CONV_VLEN + o] holds channel v * CONV_VLEN + o of the group for pixels
 * 0 .. P-1 in its first lanes. src + tap[k] is what pixel 0 reads at step k, pixel p reads p * S floats on; the weights
 * of step k are at w + k * KERN_CONV_ROWS_OB, the next block's wstride floats on. The first pf_steps steps each
 * prefetch CONV_ROWS_GB lines from pf on into L2. */
static inline __attribute__((always_inline)) void conv_rows_tile(const int P, const int NV, const int S,
                                                                 const float *src, const int64_t *tap, int64_t K,
                                                                 const float *w, int64_t wstride, const char *pf,
                                                                 int64_t pf_steps, conv_vec *out) {
    conv_vec acc[CONV_ROWS_PMAX][CONV_ROWS_NV];
#pragma GCC unroll 16
    for (int p = 0; p < P; p++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[p][v] = conv_splat(0.0f);
    const float *wv[CONV_ROWS_NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
        wv[v] = w + (v * CONV_VLEN / KERN_CONV_ROWS_OB) * wstride + v * CONV_VLEN % KERN_CONV_ROWS_OB;
    /* Not unrolled: with two steps in view GCC hoisted all the broadcasts above the FMAs and spilled 14 of the 28
     * accumulators (ResNet-50's layer2.0.conv2 alone, one thread: 2.215 ms unrolled, 2.09 without). */
    for (int64_t k = 0; k < K; k++) {
        const float *xk = src + tap[k];
        conv_vec wk[CONV_ROWS_NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) wk[v] = conv_load(wv[v] + k * KERN_CONV_ROWS_OB);
        /* this tile's share of the next group's weights into L2, a line per block per step */
        if (k < pf_steps)
#pragma GCC unroll 4
            for (int v = 0; v < CONV_ROWS_GB; v++) __builtin_prefetch(pf + (k * CONV_ROWS_GB + v) * 64, 0, 2);
#pragma GCC unroll 16
        for (int p = 0; p < P; p++) {
            conv_vec xs = conv_splat(xk[p * S]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[p][v] += xs * wk[v];
        }
    }
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
        conv_vec r[CONV_VLEN];
#pragma GCC unroll 16
        for (int p = 0; p < CONV_VLEN; p++) r[p] = p < P ? acc[p][v] : conv_splat(0.0f);
#if CONV_VLEN >= 8
        conv_transpose(r);
#else
        float t[CONV_VLEN][CONV_VLEN];
        for (int p = 0; p < CONV_VLEN; p++) conv_store(t[p], r[p]);
        for (int o = 0; o < CONV_VLEN; o++) {
            float u[CONV_VLEN];
            for (int p = 0; p < CONV_VLEN; p++) u[p] = t[p][o];
            r[o] = conv_load(u);
        }
#endif
#pragma GCC unroll 16
        for (int o = 0; o < CONV_VLEN; o++) out[v * CONV_VLEN + o] = r[o];
    }
}

typedef void (*conv_rows_tile_fn)(const float *src, const int64_t *tap, int64_t K, const float *w, int64_t wstride,
                                  const char *pf, int64_t pf_steps, conv_vec *out);

/* conv_rows_tiles[half][P - 1][s]: a full group, or (AVX-512) one block of it for an odd last block; stride 1 << s */
#define CONV_ROWS_FN(P, H, NV, S)                                                                                      \
    static void conv_rows_tile_##P##_##H##_##S(const float *src, const int64_t *tap, int64_t K, const float *w,      \
                                               int64_t wstride, const char *pf, int64_t pf_steps, conv_vec *out) {    \
        conv_rows_tile(P, NV, S, src, tap, K, w, wstride, pf, pf_steps, out);                                          \
    }
#if CONV_ROWS_GB == 2
#define CONV_ROWS_FNS(P)                                                                                               \
    CONV_ROWS_FN(P, 0, CONV_ROWS_NV, 1)                                                                                \
    CONV_ROWS_FN(P, 0, CONV_ROWS_NV, 2) CONV_ROWS_FN(P, 0, CONV_ROWS_NV, 4) CONV_ROWS_FN(P, 1, CONV_ROWS_NV / 2, 1)   \
    CONV_ROWS_FN(P, 1, CONV_ROWS_NV / 2, 2) CONV_ROWS_FN(P, 1, CONV_ROWS_NV / 2, 4)
#define CONV_ROWS_HALF(P) {conv_rows_tile_##P##_1_1, conv_rows_tile_##P##_1_2, conv_rows_tile_##P##_1_4}
#else
#define CONV_ROWS_FNS(P)                                                                                               \
    CONV_ROWS_FN(P, 0, CONV_ROWS_NV, 1) CONV_ROWS_FN(P, 0, CONV_ROWS_NV, 2) CONV_ROWS_FN(P, 0, CONV_ROWS_NV, 4)
#define CONV_ROWS_HALF(P) {NULL, NULL, NULL}
#endif
#define CONV_ROWS_FULL(P) {conv_rows_tile_##P##_0_1, conv_rows_tile_##P##_0_2, conv_rows_tile_##P##_0_4}
CONV_ROWS_FNS(1)
CONV_ROWS_FNS(2)
CONV_ROWS_FNS(3)
#if CONV_ROWS_PMAX == 3
static const conv_rows_tile_fn conv_rows_tiles[2][CONV_ROWS_PMAX][3] = {
    {CONV_ROWS_FULL(1), CONV_ROWS_FULL(2), CONV_ROWS_FULL(3)},
    {CONV_ROWS_HALF(1), CONV_ROWS_HALF(2), CONV_ROWS_HALF(3)},
};
#else
CONV_ROWS_FNS(4)
CONV_ROWS_FNS(5)
CONV_ROWS_FNS(6)
#if CONV_ROWS_PMAX == 6
static const conv_rows_tile_fn conv_rows_tiles[2][CONV_ROWS_PMAX][3] = {
    {CONV_ROWS_FULL(1), CONV_ROWS_FULL(2), CONV_ROWS_FULL(3), CONV_ROWS_FULL(4), CONV_ROWS_FULL(5), CONV_ROWS_FULL(6)},
    {CONV_ROWS_HALF(1), CONV_ROWS_HALF(2), CONV_ROWS_HALF(3), CONV_ROWS_HALF(4), CONV_ROWS_HALF(5), CONV_ROWS_HALF(6)},
};
#else
CONV_ROWS_FNS(7)
CONV_ROWS_FNS(8)
CONV_ROWS_FNS(9)
CONV_ROWS_FNS(10)
CONV_ROWS_FNS(11)
CONV_ROWS_FNS(12)
CONV_ROWS_FNS(13)
CONV_ROWS_FNS(14)
static const conv_rows_tile_fn conv_rows_tiles[2][CONV_ROWS_PMAX][3] = {
    {CONV_ROWS_FULL(1), CONV_ROWS_FULL(2), CONV_ROWS_FULL(3), CONV_ROWS_FULL(4), CONV_ROWS_FULL(5), CONV_ROWS_FULL(6),
     CONV_ROWS_FULL(7), CONV_ROWS_FULL(8), CONV_ROWS_FULL(9), CONV_ROWS_FULL(10), CONV_ROWS_FULL(11),
     CONV_ROWS_FULL(12), CONV_ROWS_FULL(13), CONV_ROWS_FULL(14)},
    {CONV_ROWS_HALF(1), CONV_ROWS_HALF(2), CONV_ROWS_HALF(3), CONV_ROWS_HALF(4), CONV_ROWS_HALF(5), CONV_ROWS_HALF(6),
     CONV_ROWS_HALF(7), CONV_ROWS_HALF(8), CONV_ROWS_HALF(9), CONV_ROWS_HALF(10), CONV_ROWS_HALF(11),
     CONV_ROWS_HALF(12), CONV_ROWS_HALF(13), CONV_ROWS_HALF(14)},
};
#endif
#endif

/* Rows [oh0, oh1) of the output, channel blocks [cb0, cb1): in blocks of kern_conv_rows_block rows, each block's
 * input read by all its channel groups while it is in cache, and each group's weights by all the block's rows. */
void CONV_FN(kern_conv_rows_)(const kern_conv_rows_params *p, int64_t oh0, int64_t oh1, int64_t cb0, int64_t cb1,
                              void *scratch) {
    const kern_conv_shape *s = &p->shape;
    const int64_t H = s->in[1], W = s->in[2], OH = s->out[1], OW = s->out[2], KH = s->kernel[1], KW = s->kernel[2];
    const int64_t sh = s->stride[1], sw = s->stride[2], dh = s->dilation[1], dw = s->dilation[2];
    const int64_t pt = s->pad[1], pl = s->pad[2], plane_out = OH * OW, K = p->cin * KH * KW;
    const int64_t span = kern_conv_rows_span(s); /* the input columns an output row reads, from column -pl */
    const int64_t R = kern_conv_rows_block(s, p->cin), rows_in = (R - 1) * sh + (KH - 1) * dh + 1;
    /* per step (channel, kh, kw): its offset from what pixel 0 of a tile reads at (channel 0, kh 0, kw 0), in the
     * input itself and in the zero-padded copy of a block's input rows (rows_in rows of span floats per channel) */
    int64_t *tap_in = scratch, *tap_copy = tap_in + K;
    float *copy = (float *)scratch + kern_conv_rows_tap_floats(s, p->cin);
    for (int64_t c = 0, k = 0; c < p->cin; c++)
        for (int64_t i = 0; i < KH; i++)
            for (int64_t j = 0; j < KW; j++, k++) {
                tap_in[k] = c * H * W + i * dh * W + j * dw;
                tap_copy[k] = (c * rows_in + i * dh) * span + j * dw;
            }
    /* balanced tiles: 28 columns are two of 14, 7 one of 7 */
    const int64_t tiles = conv_div_ceil(OW, CONV_ROWS_PMAX), narrow = OW / tiles, wide = OW % tiles;
    const int store = p->act.kind == KERN_ACT_RELU ? CONV_STORE_RELU
                      : p->act.kind == KERN_ACT_CLIP ? CONV_STORE_CLIP : CONV_STORE_PLAIN;
    const int late = store == CONV_STORE_PLAIN && p->act.kind != KERN_ACT_NONE;
    const conv_vec lo = conv_splat(p->act.alpha), hi = conv_splat(p->act.beta);
    for (int64_t rb = oh0; rb < oh1; rb += R) {
        const int64_t re = rb + R < oh1 ? rb + R : oh1, ih0 = rb * sh - pt;
        const int64_t need = (re - 1 - rb) * sh + (KH - 1) * dh + 1; /* input rows the block reads */
        const float *src;
        const int64_t *tap;
        int64_t pitch; /* floats between input rows */
        if (pl == 0 && span <= W && ih0 >= 0 && ih0 + need <= H) {
            src = p->x + ih0 * W; /* every tap in the input: read it in place (a 1x1 stride-2 downsample) */
            tap = tap_in;
            pitch = W;
        } else {
            for (int64_t c = 0; c < p->cin; c++)
                for (int64_t i = 0; i < need; i++) {
                    float *r = copy + (c * rows_in + i) * span;
                    const int64_t ih = ih0 + i;
                    if (ih < 0 || ih >= H) {
                        conv_zero(r, span);
                        continue;
                    }
                    const int64_t front = pl < span ? pl : span, n = W < span - front ? W : span - front;
                    conv_zero(r, front);
                    conv_copy(r + front, p->x + (c * H + ih) * W, n);
                    conv_zero(r + front + n, span - front - n);
                }
            src = copy;
            tap = tap_copy;
            pitch = span;
        }
        for (int64_t cb = cb0; cb < cb1; cb += CONV_ROWS_GB) {
            const int half = cb1 - cb < CONV_ROWS_GB;
            const int64_t co0 = cb * KERN_CONV_ROWS_OB, group = (half ? 1 : CONV_ROWS_GB) * KERN_CONV_ROWS_OB;
            const int64_t nco = p->cout - co0 < group ? p->cout - co0 : group;
            const float *wb = p->w + cb * K * KERN_CONV_ROWS_OB;
            /* with weights from memory, the next group's lines (K per block) are fetched while this one runs */
            const int64_t next = cb1 - cb - CONV_ROWS_GB < CONV_ROWS_GB ? cb1 - cb - CONV_ROWS_GB : CONV_ROWS_GB;
            const int64_t next_lines = p->prefetch && next > 0 ? next * K : 0;
            /* the tiles of the block share them out (a line is a block's step) */
            const int64_t share = conv_div_ceil(next_lines, (re - rb) * tiles);
            for (int64_t oh = rb; oh < re; oh++) {
                const float *row = src + (oh - rb) * sh * pitch;
                for (int64_t t = 0, ow0 = 0; t < tiles; t++) {
                    const int64_t P = narrow + (t < wide);
                    conv_vec out[CONV_ROWS_NV * CONV_VLEN];
                    const int64_t chunk = (oh - rb) * tiles + t;
                    const int64_t lines = next_lines - chunk * share < share ? next_lines - chunk * share : share;
                    conv_rows_tiles[half][P - 1][sw >> 1](row + ow0 * sw, tap, K, wb, K * KERN_CONV_ROWS_OB,
                                                         (const char *)(wb + CONV_ROWS_GB * K * KERN_CONV_ROWS_OB) +
                                                             chunk * share * 64,
                                                         lines > 0 ? conv_div_ceil(lines, CONV_ROWS_GB) : 0, out);
                    for (int64_t o = 0; o < nco; o++) {
                        const int64_t at = (co0 + o) * plane_out + oh * OW + ow0;
                        conv_vec v = out[o];
                        if (p->bias) v += conv_splat(p->bias[co0 + o]);
                        if (p->residual) v += conv_load_n(p->residual + at, P);
                        if (store == CONV_STORE_RELU) v = conv_relu(v);
                        else if (store == CONV_STORE_CLIP) v = conv_clamp(v, lo, hi);
                        conv_store_n(p->y + at, v, P);
                    }
                    ow0 += P;
                }
                if (late)
                    for (int64_t o = 0; o < nco; o++)
                        kern_activation_apply(&p->act, p->y + (co0 + o) * plane_out + oh * OW, (size_t)OW);
            }
        }
    }
}
