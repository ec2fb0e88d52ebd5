/* conv.c — Conv (1-D, 2-D, 3-D; groups, dilations, strides, pads, auto_pad) with fused bias, residual add and
 * activation. Five ways to compute it: pointwise convs are one GEMM on the input as it lies; depthwise 2-D convs
 * use a direct kernel; dense 3x3 stride-1 2-D convs with enough channels and tiles use Winograd (kernels/winograd.h,
 * weights transformed once in prepare); other dense 1-D and 2-D convs (stems, ResNet's stride-2 convs, ConvNeXt's
 * downsamples, pointwise convs over many channels) use the rows kernel, output rows with the channels in vectors
 * (kernels/conv.h, weights rearranged once in prepare); everything else (3-D, grouped, strides across other than
 * 1, 2 and 4) is im2col in bounded column tiles followed by a GEMM on weights packed once in prepare. May touch only
 * its inputs, outputs and the scratch it asked for. */
#include <stdlib.h>
#include <string.h>

#include "../kernels/conv.h"
#include "../kernels/winograd.h"
#include "ops.h"

/* im2col tiles are sized to stay in a core's L2 while the GEMM streams them. */
#define CONV_TILE_BYTES ((size_t)1 << 20)
#define CONV_TILE_MIN_COLS 16
#define CONV_WEIGHTS_HEAVY 1 /* see conv_run */
/* Every spatial size, kernel, stride, dilation and pad must stay below this so the geometry arithmetic (products
 * of two of them plus a few sums) cannot overflow int64. */
#define CONV_DIM_LIMIT ((int64_t)1 << 30)
/* Pointwise convs over this many input channels or more take the rows kernel (see conv_parse). */
#define CONV_ROWS_POINTWISE_MIN_CIN 384

/* The convolution with its spatial dims right-aligned into (D, H, W): a 2-D conv has D == 1, a 1-D conv
 * D == H == 1. */
typedef struct conv_geom {
    int spatial; /* 1..3 */
    int64_t batch, cin, cout, group, cin_g, cout_g;
    kern_conv_shape shape; /* in, out, kernel, stride, dilation, leading pad */
    int64_t in[3], out[3], k[3], stride[3], dil[3], pad_begin[3], pad_end[3];
    int64_t in_size, out_size; /* per-channel spatial volumes */
    int64_t kg;                /* GEMM K: cin_g * kernel volume */
    int residual;
    int input_scale; /* lens.input_scale: X's channels scaled by input 4 ([N or 1, C, 1, 1]) first; pointwise only */
    int depthwise; /* group == cin == cout: the direct kernel */
    int pointwise; /* 1x1, stride 1, no pads: the input is already the GEMM's right operand */
    int winograd_ok; /* 3x3, stride 1, group 1, enough channels: Winograd can run (with weights prepared for it) */
    int winograd;    /* the Winograd output tile edge (4 or 2) that pays at this batch, or 0: im2col */
    /* the rows kernel (kernels/conv.h): dense convs that are none of the above can run it (with weights prepared for
     * it); rows: it pays at this batch */
    int rows_ok, rows;
    kern_conv2d_params params; /* the 2-D geometry for the Winograd kernel */
    int64_t tile_cols;
    size_t slot_bytes; /* per thread: an im2col tile, the rows kernel's or a depthwise plane's scratch, rounded to 64 */
} conv_geom;

static int64_t div_ceil(int64_t a, int64_t b) { return (a + b - 1) / b; }

static lens_status check_float(const tensor *t, const char *what) {
    if (t->dtype != LENS_DTYPE_FLOAT32)
        return core_fail(LENS_ERR_UNSUPPORTED, "input %s has dtype %s; only float32 is supported", what,
                         dtype_name(t->dtype));
    return LENS_OK;
}

/* Winograd F(4x4, 3x3) pays for 2-D 3x3 stride-1 undilated convs with group 1 and enough channels to amortise its
 * tile transforms (they cost about 150 flops per tile and channel against 2.25x fewer multiply-adds per output),
 * and enough 4x4 output tiles (all images together) to reuse its 4x larger transformed weights: at least
 * CONV_WINOGRAD_MIN_TILES, and one per CONV_WINOGRAD_WEIGHTS_PER_TILE (cin x cout) pairs. Measured on ResNet-50
 * (Zen 4, one thread): 56x56 and 28x28 run 2.2-2.6x faster, 14x14x256 at batch 1 (16 tiles) 1.8x; 7x7x512 at
 * batch 1 (4 tiles, 38 MB of transformed weights) only ties im2col, so images too small for F(4x4) take F(2x2)
 * when that still gives CONV_WINOGRAD_MIN_TILES tiles. */
#define CONV_WINOGRAD_MIN_CHANNELS 16
#define CONV_WINOGRAD_MIN_TILES 16
#define CONV_WINOGRAD_WEIGHTS_PER_TILE 4096

/* Sets g->winograd_ok (and g->params) when Winograd can compute this conv, and returns the output tile edge that
 * pays at this batch size (0: im2col). Weights are prepared once, on the first plan, so a later plan for another
 * batch may run the tile chosen then. */
static int conv_winograd_tile(conv_geom *g) {
    g->winograd_ok = g->spatial == 2 && g->group == 1 && g->k[1] == 3 && g->k[2] == 3 && g->stride[1] == 1 &&
                     g->stride[2] == 1 && g->dil[1] == 1 && g->dil[2] == 1 &&
                     g->cin >= CONV_WINOGRAD_MIN_CHANNELS && g->cout >= CONV_WINOGRAD_MIN_CHANNELS;
    if (!g->winograd_ok) return 0;
    g->params = (kern_conv2d_params){
        .batch = g->batch, .in_channels = g->cin, .in_h = g->in[1], .in_w = g->in[2],
        .out_channels = g->cout, .out_h = g->out[1], .out_w = g->out[2],
        .kernel_h = 3, .kernel_w = 3, .group = 1, .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1,
        .pad_top = g->pad_begin[1], .pad_left = g->pad_begin[2],
    };
    if (!kern_winograd_available()) return 0;
    int64_t tiles4 = g->batch * div_ceil(g->out[1], 4) * div_ceil(g->out[2], 4);
    int64_t tiles2 = g->batch * div_ceil(g->out[1], 2) * div_ceil(g->out[2], 2);
    if (tiles4 >= CONV_WINOGRAD_MIN_TILES && tiles4 >= g->cin * g->cout / CONV_WINOGRAD_WEIGHTS_PER_TILE) return 4;
    return tiles2 >= CONV_WINOGRAD_MIN_TILES ? 2 : 0;
}

/* Whether the weights outweigh the input (all images) factor times over. */
static int conv_weights_heavy(const conv_geom *g, int64_t factor) {
    return g->cout * g->kg > factor * g->batch * g->cin * g->in_size;
}

/* Reads and checks attributes and input shapes; fills g. Shared by infer, prepare and run. */
static lens_status conv_parse(const op_call *call, conv_geom *g) {
    const op_node *node = call->node;
    memset(g, 0, sizeof *g);
    if (call->n_inputs < 2 || !call->inputs[0] || !call->inputs[1])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv needs inputs X and W");
    if (call->n_outputs < 1 || !call->outputs[0]) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv needs output Y");
    const tensor *x = call->inputs[0], *w = call->inputs[1];
    const tensor *b = call->n_inputs > 2 ? call->inputs[2] : NULL;
    lens_status st;
    if ((st = check_float(x, "X")) || (st = check_float(w, "W"))) return st;
    if (b && (st = check_float(b, "B"))) return st;
    /* the shapes are formatted only for an error message: this runs on every run of every Conv */
    char sx_buf[96], sw_buf[96], sb[96];
#define sx tensor_shape_string(x, sx_buf, sizeof sx_buf)
#define sw tensor_shape_string(w, sw_buf, sizeof sw_buf)
    if (x->rank < 3 || x->rank > 5)
        return core_fail(LENS_ERR_UNSUPPORTED, "Conv input X %s: only 1-D, 2-D and 3-D convolutions are supported", sx);
    if (w->rank != x->rank)
        return core_fail(LENS_ERR_SHAPE, "Conv weights W %s do not match input X %s (rank %d vs %d)", sw, sx, w->rank,
                         x->rank);
    int s = x->rank - 2, off = 3 - s;
    g->spatial = s;
    g->batch = x->dims[0];
    g->cin = x->dims[1];
    g->cout = w->dims[0];
    g->group = op_attr_int(node, "group", 1);
    if (g->group < 1 || g->group > CONV_DIM_LIMIT)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv group %lld is invalid", (long long)g->group);
    if (g->batch < 0 || g->cin < 1 || g->cout < 1 || g->cin > CONV_DIM_LIMIT || g->cout > CONV_DIM_LIMIT)
        return core_fail(LENS_ERR_SHAPE, "Conv input X %s and weights W %s: empty or oversized channels", sx, sw);
    if (w->dims[1] * g->group != g->cin || g->cout % g->group)
        return core_fail(LENS_ERR_SHAPE,
                         "Conv weights W %s do not fit input X %s with group %lld (need W[1] * group == C and "
                         "W[0] divisible by group)",
                         sw, sx, (long long)g->group);
    g->cin_g = g->cin / g->group;
    g->cout_g = g->cout / g->group;
    if (b && (b->rank != 1 || b->dims[0] != g->cout))
        return core_fail(LENS_ERR_SHAPE, "Conv bias B %s must be [%lld] for weights W %s",
                         tensor_shape_string(b, sb, sizeof sb), (long long)g->cout, sw);

    const int64_t *ks, *strides, *dils, *pads;
    size_t n_ks = op_attr_ints(node, "kernel_shape", &ks), n_strides = op_attr_ints(node, "strides", &strides);
    size_t n_dils = op_attr_ints(node, "dilations", &dils), n_pads = op_attr_ints(node, "pads", &pads);
    if ((n_ks && n_ks != (size_t)s) || (n_strides && n_strides != (size_t)s) || (n_dils && n_dils != (size_t)s) ||
        (n_pads && n_pads != 2 * (size_t)s))
        return core_fail(LENS_ERR_INVALID_ARGUMENT,
                         "Conv attributes kernel_shape/strides/dilations/pads have the wrong length for a %d-D "
                         "conv",
                         s);
    const char *auto_pad = op_attr_string(node, "auto_pad", "NOTSET");
    int same_upper = !strcmp(auto_pad, "SAME_UPPER"), same_lower = !strcmp(auto_pad, "SAME_LOWER");
    int valid = !strcmp(auto_pad, "VALID");
    if (!same_upper && !same_lower && !valid && strcmp(auto_pad, "NOTSET") && auto_pad[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv auto_pad '%s' is not one of NOTSET, SAME_UPPER, "
                         "SAME_LOWER, VALID", auto_pad);
    for (int i = 0; i < 3; i++) {
        g->in[i] = g->out[i] = g->k[i] = g->stride[i] = g->dil[i] = 1;
        g->pad_begin[i] = g->pad_end[i] = 0;
    }
    for (int i = 0; i < s; i++) {
        int d = off + i;
        g->in[d] = x->dims[2 + i];
        g->k[d] = w->dims[2 + i];
        if (n_ks && ks[i] != g->k[d])
            return core_fail(LENS_ERR_SHAPE, "Conv kernel_shape[%d] = %lld does not match weights W %s", i,
                             (long long)ks[i], sw);
        g->stride[d] = n_strides ? strides[i] : 1;
        g->dil[d] = n_dils ? dils[i] : 1;
        g->pad_begin[d] = n_pads ? pads[i] : 0;
        g->pad_end[d] = n_pads ? pads[s + i] : 0;
        if (g->in[d] < 1 || g->in[d] > CONV_DIM_LIMIT || g->k[d] < 1 || g->k[d] > CONV_DIM_LIMIT)
            return core_fail(LENS_ERR_SHAPE, "Conv input X %s or weights W %s has an empty or oversized spatial dim",
                             sx, sw);
        if (g->stride[d] < 1 || g->stride[d] > CONV_DIM_LIMIT || g->dil[d] < 1 || g->dil[d] > CONV_DIM_LIMIT ||
            g->pad_begin[d] < 0 || g->pad_begin[d] > CONV_DIM_LIMIT || g->pad_end[d] < 0 ||
            g->pad_end[d] > CONV_DIM_LIMIT)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv strides, dilations or pads out of range on axis %d", i);
        int64_t span = (g->k[d] - 1) * g->dil[d] + 1;
        if (same_upper || same_lower) {
            g->out[d] = div_ceil(g->in[d], g->stride[d]);
            int64_t total = (g->out[d] - 1) * g->stride[d] + span - g->in[d];
            if (total < 0) total = 0;
            g->pad_begin[d] = same_upper ? total / 2 : total - total / 2;
            g->pad_end[d] = total - g->pad_begin[d];
        } else {
            if (valid) g->pad_begin[d] = g->pad_end[d] = 0;
            int64_t padded = g->in[d] + g->pad_begin[d] + g->pad_end[d];
            if (padded < span)
                return core_fail(LENS_ERR_SHAPE,
                                 "Conv input X %s is smaller than the dilated kernel (%lld) on spatial axis %d", sx,
                                 (long long)span, i);
            g->out[d] = (padded - span) / g->stride[d] + 1;
        }
    }
    g->in_size = g->in[0] * g->in[1] * g->in[2];
    g->out_size = g->out[0] * g->out[1] * g->out[2];
    int64_t kvol = g->k[0] * g->k[1] * g->k[2];
    size_t kg, tmp;
    if (!core_mul_size((size_t)g->cin_g, (size_t)kvol, &kg) || kg > (size_t)INT64_MAX / 8 ||
        !core_mul_size((size_t)g->in_size, (size_t)g->cin, &tmp) || !core_mul_size(tmp, 8, &tmp) ||
        !core_mul_size((size_t)g->out_size, (size_t)g->cout, &tmp) || !core_mul_size(tmp, 8, &tmp))
        return core_fail(LENS_ERR_SHAPE, "Conv input X %s with weights W %s is too large", sx, sw);
    g->kg = (int64_t)kg;
    for (int i = 0; i < 3; i++) {
        g->shape.in[i] = g->in[i], g->shape.out[i] = g->out[i], g->shape.kernel[i] = g->k[i];
        g->shape.stride[i] = g->stride[i], g->shape.dilation[i] = g->dil[i], g->shape.pad[i] = g->pad_begin[i];
    }
    g->residual = op_attr_int(node, "lens.residual", 0) == 1;
    g->depthwise = g->group > 1 && g->group == g->cin && g->cout == g->cin && s <= 2;
    g->pointwise = !g->depthwise && kvol == 1 && g->stride[0] * g->stride[1] * g->stride[2] == 1 && !g->pad_begin[0] &&
                   !g->pad_begin[1] && !g->pad_begin[2] && !g->pad_end[0] && !g->pad_end[1] && !g->pad_end[2];
    g->winograd = conv_winograd_tile(g);
    g->input_scale = op_attr_int(node, "lens.input_scale", 0) == 1;
    /* The rows kernel for the dense convs that take none of the paths above, and for pointwise convs over 384 or more
     * channels on maps of 14x14 or more (its tiles fit those maps and the long sums amortise its transposing store:
     * ResNet-50's 1024 -> 256 on 14x14 alone, 2 threads, 0.523 -> 0.465 ms; 576 -> 96 on 14x14 0.112 -> 0.104; in
     * the networks, MobileNetV2's 384 -> 64 on 14x14 0.055 -> 0.048 and EfficientNet-B0's 480 -> 80 0.088 -> 0.072;
     * from 256, ResNet-50's 256 -> 1024 on 14x14 and 256 -> 128 on 56x56 lost, and with 64 channels, on 56x56, it
     * lost more). Not a 1x1 conv whose weights outweigh its input several times
     * over (ResNet-50's layer4.0.downsample, 8 MB of weights from memory for 0.8 MB of input: 1.06 -> 1.12 ms in the
     * network, where layer3.0.downsample, 2 MB for 1.6 MB, gained 1.07 -> 0.99); the GEMM streams those better:
     * decided, like Winograd's tile, on the batch the weights are prepared for. */
    g->rows_ok = g->group == 1 && g->spatial <= 2 && !g->depthwise && !g->winograd_ok &&
                 (g->stride[2] == 1 || g->stride[2] == 2 || g->stride[2] == 4) && !g->input_scale &&
                 (!g->pointwise || (g->cin >= CONV_ROWS_POINTWISE_MIN_CIN && g->out_size >= 196));
    g->rows = g->rows_ok && !(kvol == 1 && conv_weights_heavy(g, 4));
    if (g->input_scale) {
        /* The folded squeeze-excitation Mul: Conv(X * s) == (W diag(s)) X, the weights' columns scaled per image
         * into scratch. Only for the plain GEMM on the input as it lies. */
        const tensor *sc = call->n_inputs > 4 ? call->inputs[4] : NULL;
        if (!g->pointwise || g->group != 1)
            return core_fail(LENS_ERR_UNSUPPORTED, "Conv lens.input_scale needs a 1x1 stride-1 unpadded conv");
        if (!sc) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv with lens.input_scale needs a 5th input");
        if ((st = check_float(sc, "scale"))) return st;
        /* batch 1 broadcasts over X's batch, as the Mul it replaces would */
        if (sc->rank < 2 || (sc->dims[0] != g->batch && sc->dims[0] != 1) || sc->dims[1] != g->cin ||
            tensor_numel(sc) != sc->dims[0] * g->cin)
            return core_fail(LENS_ERR_SHAPE, "Conv input scale %s must be [%lld or 1, %lld, 1...] for input X %s",
                             tensor_shape_string(sc, sb, sizeof sb), (long long)g->batch, (long long)g->cin, sx);
    }
    if (g->pointwise) {
        g->slot_bytes = 0; /* reads the input in place */
    } else if (g->depthwise) {
        if (!core_mul_size(kern_dwconv2d_scratch(&g->shape), sizeof(float), &g->slot_bytes) ||
            g->slot_bytes > SIZE_MAX / 256)
            return core_fail(LENS_ERR_SHAPE, "Conv input X %s is too large", sx);
    } else {
        /* Equal tiles of at most about CONV_TILE_BYTES, widths a multiple of CONV_TILE_MIN_COLS (49 columns are
         * one tile of 49, not 48 + 1). */
        size_t cols = CONV_TILE_BYTES / (kg * sizeof(float)), total = (size_t)g->out_size;
        if (cols < CONV_TILE_MIN_COLS) cols = CONV_TILE_MIN_COLS;
        size_t tiles = (total + cols - 1) / cols;
        cols = (total + tiles - 1) / tiles;
        cols = (cols + CONV_TILE_MIN_COLS - 1) / CONV_TILE_MIN_COLS * CONV_TILE_MIN_COLS;
        if (cols > total) cols = total;
        g->tile_cols = (int64_t)cols;
        if (!core_mul_size(kg * sizeof(float), cols, &g->slot_bytes) || g->slot_bytes > SIZE_MAX / 256)
            return core_fail(LENS_ERR_SHAPE, "Conv weights W %s are too large", sw);
    }
    if (g->winograd_ok) {
        /* room for every path: the weights may have been prepared for either tile, or not at all (im2col) */
        for (int tile = 2; tile <= 4; tile += 2) {
            size_t wino = kern_winograd_slot_bytes(&g->params, tile);
            if (!wino) return core_fail(LENS_ERR_SHAPE, "Conv input X %s is too large", sx);
            if (wino > g->slot_bytes) g->slot_bytes = wino;
        }
    }
    if (g->rows_ok) {
        /* kern_conv_rows' scratch (too large to count: im2col's path, which has its own limits); the im2col tile's
         * room stays for a run without prepared weights */
        int64_t rows_floats = kern_conv_rows_scratch(&g->shape, g->cin);
        size_t rows_bytes = (size_t)rows_floats * sizeof(float);
        if (rows_floats < 0 || (size_t)rows_floats > SIZE_MAX / 1024) g->rows_ok = g->rows = 0;
        else if (rows_bytes > g->slot_bytes) g->slot_bytes = rows_bytes;
    }
    g->slot_bytes = (g->slot_bytes + 63) & ~(size_t)63;
#undef sx
#undef sw
    return LENS_OK;
}

static lens_status conv_infer(op_call *call) {
    conv_geom g;
    lens_status st = conv_parse(call, &g);
    if (st) return st;
    tensor *y = call->outputs[0];
    int64_t dims[5] = {g.batch, g.cout};
    for (int i = 0; i < g.spatial; i++) dims[2 + i] = g.out[3 - g.spatial + i];
    ops_set_shape(y, LENS_DTYPE_FLOAT32, g.spatial + 2, dims);
    if (g.residual) {
        const tensor *r = call->n_inputs > 3 ? call->inputs[3] : NULL;
        if (!r) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv with a fused residual needs a 4th input");
        if ((st = check_float(r, "residual"))) return st;
        if (!tensor_same_shape(r, y)) {
            char sr[96], sy[96];
            return core_fail(LENS_ERR_SHAPE, "Conv residual %s does not match the output %s",
                             tensor_shape_string(r, sr, sizeof sr), tensor_shape_string(y, sy, sizeof sy));
        }
    }
    call->scratch_bytes = 0;
    if (!g.pointwise || g.rows_ok) call->scratch_bytes = g.slot_bytes * (size_t)core_pool_size(call->pool);
    if (g.input_scale) call->scratch_bytes = kern_packed_a_scaled_floats((size_t)g.cout, (size_t)g.cin) * sizeof(float);
    return LENS_OK;
}

/* ---- Prepared weights -------------------------------------------------------------------------------------------- */

typedef struct conv_state {
    int64_t groups;
    kern_winograd_weights *winograd; /* the Winograd-transformed weights; then packed[] is all NULL */
    float *rows;                     /* the weights of the rows kernel (kern_conv_rows_params.w); likewise */
    kern_packed_a *packed[];         /* per group: W[g] as [cout_g, kg] */
} conv_state;

static void conv_release(void *state) {
    conv_state *cs = state;
    if (!cs) return;
    for (int64_t i = 0; i < cs->groups; i++) kern_packed_a_free(cs->packed[i]);
    kern_winograd_free(cs->winograd);
    core_aligned_free(cs->rows);
    free(cs);
}

/* W ([cout, kg]) as blocks of cb output channels, each kg x cb (tap by channel), zero past cout; NULL when out of
 * memory. */
static float *conv_pack_blocks(const float *w, int64_t cout, int64_t kg, int64_t cb) {
    int64_t blocks = div_ceil(cout, cb);
    float *p = core_aligned_alloc((size_t)(blocks * kg * cb) * sizeof(float));
    if (!p) return NULL;
    for (int64_t b = 0; b < blocks; b++)
        for (int64_t k = 0; k < kg; k++)
            for (int64_t c = 0, co = b * cb; c < cb; c++, co++)
                p[(b * kg + k) * cb + c] = co < cout ? w[co * kg + k] : 0.0f;
    return p;
}

static lens_status conv_prepare(op_call *call, void **state) {
    *state = NULL;
    conv_geom g;
    lens_status st = conv_parse(call, &g);
    if (st) return st;
    const float *w = call->inputs[1]->data;
    if (g.depthwise || !w) return LENS_OK;
    conv_state *cs = calloc(1, sizeof *cs + (size_t)g.group * sizeof(kern_packed_a *));
    if (!cs) return core_fail(LENS_ERR_OUT_OF_MEMORY, "Conv: out of memory packing weights");
    cs->groups = g.group;
    if (g.rows) {
        if (!(cs->rows = conv_pack_blocks(w, g.cout, g.kg, KERN_CONV_ROWS_OB))) {
            conv_release(cs);
            return core_fail(LENS_ERR_OUT_OF_MEMORY, "Conv: out of memory packing weights");
        }
        *state = cs;
        call->taken_inputs |= 1u << 1;
        return LENS_OK;
    }
    if (g.winograd && (cs->winograd = kern_winograd_pack(w, g.cout, g.cin, g.winograd))) {
        *state = cs;
        call->taken_inputs |= 1u << 1; /* every run takes the Winograd path then, whatever the batch */
        return LENS_OK;
    }
    for (int64_t i = 0; i < g.group; i++) {
        cs->packed[i] = kern_sgemm_pack_a(0, (size_t)g.cout_g, (size_t)g.kg, w + i * g.cout_g * g.kg, (size_t)g.kg);
        if (!cs->packed[i]) {
            conv_release(cs);
            return core_fail(LENS_ERR_OUT_OF_MEMORY, "Conv: out of memory packing weights");
        }
    }
    *state = cs;
    call->taken_inputs |= 1u << 1; /* every GEMM path reads the packed copy */
    return LENS_OK;
}

/* ---- GEMM paths -------------------------------------------------------------------------------------------------- */

typedef struct conv_job {
    const conv_geom *g;
    const conv_state *state;
    const float *x, *w, *bias, *residual;
    float *y;
    kern_activation act;
    char *scratch;
    int64_t tiles, tile_cols; /* column tiles per (image, group); depthwise: channel blocks per image, their width */
    /* serial-tile path: the tile being im2col'd in parallel */
    const float *xg;
    int64_t col0, ncols, row_tasks;
    /* rows path: per image, row_chunks tasks of rows by co_tasks of co_blocks channel blocks */
    int64_t row_chunks, co_tasks, co_blocks;
} conv_job;

/* C = W[g] * cols + (residual) + bias, then act, for columns [col0, col0 + ncols) of image n, group gi. */
static void conv_gemm_tile(const conv_job *job, core_pool *pool, int64_t n, int64_t gi, int64_t col0, int64_t ncols,
                           const float *cols, size_t ldb) {
    const conv_geom *g = job->g;
    float *c = job->y + (n * g->cout + gi * g->cout_g) * g->out_size + col0;
    kern_epilogue ep = {job->bias ? job->bias + gi * g->cout_g : NULL, 1, job->act, NULL, 0};
    float beta = 0;
    if (job->residual) { /* added by the micro-kernels as they store C: no copy into C first */
        ep.residual = job->residual + (n * g->cout + gi * g->cout_g) * g->out_size + col0;
        ep.ld_residual = (size_t)g->out_size;
        beta = 1;
    }
    if (job->state)
        kern_sgemm_packed_a(pool, job->state->packed[gi], 0, (size_t)ncols, cols, ldb, beta, c, (size_t)g->out_size,
                            &ep);
    else
        kern_sgemm(pool, 0, 0, (size_t)g->cout_g, (size_t)ncols, (size_t)g->kg, 1.0f, job->w + gi * g->cout_g * g->kg,
                   (size_t)g->kg, cols, ldb, beta, c, (size_t)g->out_size, &ep);
}

/* One task per (image, group, column tile): im2col into this thread's slot, then a one-thread GEMM. */
static void conv_tile_task(void *ctx, int64_t task, int thread) {
    const conv_job *job = ctx;
    const conv_geom *g = job->g;
    int64_t t = task % job->tiles, ng = task / job->tiles, gi = ng % g->group, n = ng / g->group;
    int64_t col0 = t * job->tile_cols;
    int64_t ncols = g->out_size - col0 < job->tile_cols ? g->out_size - col0 : job->tile_cols;
    float *slot = (float *)(job->scratch + (size_t)thread * g->slot_bytes);
    const float *xg = job->x + (n * g->cin + gi * g->cin_g) * g->in_size;
    kern_im2col(&g->shape, xg, col0, ncols, 0, g->kg, slot);
    conv_gemm_tile(job, NULL, n, gi, col0, ncols, slot, (size_t)ncols);
}

static void conv_im2col_rows_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const conv_job *job = ctx;
    int64_t kg = job->g->kg, r0 = kg * task / job->row_tasks, r1 = kg * (task + 1) / job->row_tasks;
    kern_im2col(&job->g->shape, job->xg, job->col0, job->ncols, r0, r1, (float *)job->scratch + r0 * job->ncols);
}

/* ---- Depthwise --------------------------------------------------------------------------------------------------- */

/* Depthwise tasks cover this many output floats (several small planes each, so per-call set-up amortises), but
 * each thread gets at least CONV_DW_TASKS_PER_THREAD of them to balance the load; channel counts are rounded up to
 * the kernel's channel block (kern_dwconv2d_channel_block). */
#define CONV_DW_TASK_FLOATS 8192
#define CONV_DW_TASKS_PER_THREAD 4

/* Channels [block * dw_block, + dw_block) of one image, with this thread's scratch. */
static void conv_depthwise_task(void *ctx, int64_t task, int thread) {
    const conv_job *job = ctx;
    const conv_geom *g = job->g;
    int64_t n = task / job->tiles, c0 = task % job->tiles * job->tile_cols;
    int64_t nc = g->cin - c0 < job->tile_cols ? g->cin - c0 : job->tile_cols, plane = n * g->cin + c0;
    float *scratch = g->slot_bytes ? (float *)(job->scratch + (size_t)thread * g->slot_bytes) : NULL;
    kern_dwconv2d(&g->shape, nc, job->x + plane * g->in_size, job->w + c0 * g->k[1] * g->k[2],
                  job->bias ? job->bias + c0 : NULL, job->residual ? job->residual + plane * g->out_size : NULL,
                  &job->act, job->y + plane * g->out_size, scratch);
}

/* ---- Rows ------------------------------------------------------------------------------------------------------- */

static void conv_rows_task(void *ctx, int64_t task, int thread) {
    const conv_job *job = ctx;
    const conv_geom *g = job->g;
    int64_t per_image = job->row_chunks * job->co_tasks, n = task / per_image, r = task % per_image / job->co_tasks;
    int64_t c = task % job->co_tasks, blocks = div_ceil(g->cout, KERN_CONV_ROWS_OB);
    /* the larger chunks first, so that threads taking tasks in turn end level (14 rows in 4: 4 4 3 3) */
    int64_t base = g->out[1] / job->row_chunks, extra = g->out[1] % job->row_chunks;
    int64_t oh0 = r * base + (r < extra ? r : extra), oh1 = oh0 + base + (r < extra);
    int64_t cb0 = c * job->co_blocks, cb1 = cb0 + job->co_blocks;
    if (cb1 > blocks) cb1 = blocks;
    int64_t in = n * g->cin * g->in_size, out = n * g->cout * g->out_size;
    kern_conv_rows_params p = {
        .shape = g->shape, .cin = g->cin, .cout = g->cout, .x = job->x + in, .w = job->state->rows,
        .bias = job->bias, .residual = job->residual ? job->residual + out : NULL, .act = job->act,
        .y = job->y + out, .prefetch = job->co_tasks > 1,
    };
    kern_conv_rows(&p, oh0, oh1, cb0, cb1, job->scratch + (size_t)thread * g->slot_bytes);
}

/* Where the weights outweigh the input (ResNet-50's layer4: 9.4 MB of them against 0.8 MB), the threads split the
 * output channels, so each reads its share of the weights once and all the input; elsewhere they split the rows, two
 * tasks per thread (a slow thread's share moves to the other; with four, ResNet-50's layer2.0.conv2 was no faster),
 * each reading all the weights. */
static void conv_rows(conv_job *job, core_pool *pool, int64_t threads) {
    const conv_geom *g = job->g;
    const int64_t blocks = div_ceil(g->cout, KERN_CONV_ROWS_OB), pairs = div_ceil(blocks, 2);
    const int weights_heavy = conv_weights_heavy(g, 1);
    int64_t co_tasks = weights_heavy ? (threads < pairs ? threads : pairs) : 1;
    job->co_blocks = 2 * div_ceil(pairs, co_tasks); /* in pairs of blocks, AVX-512's channel group */
    job->co_tasks = div_ceil(blocks, job->co_blocks);
    /* per image, in shares as equal as the rows allow */
    job->row_chunks = weights_heavy ? 1 : div_ceil(2 * threads, g->batch);
    if (job->row_chunks > g->out[1]) job->row_chunks = g->out[1];
    core_pool_run(threads > 1 ? pool : NULL, g->batch * job->row_chunks * job->co_tasks, conv_rows_task, job);
}

/* ---- run --------------------------------------------------------------------------------------------------------- */

static lens_status conv_run(op_call *call) {
    conv_geom g;
    lens_status st = conv_parse(call, &g);
    if (st) return st;
    conv_job job = {0};
    job.g = &g;
    job.state = call->state;
    job.x = call->inputs[0]->data;
    job.w = call->inputs[1]->data;
    job.bias = call->n_inputs > 2 && call->inputs[2] ? call->inputs[2]->data : NULL;
    job.residual = g.residual && call->n_inputs > 3 && call->inputs[3] ? call->inputs[3]->data : NULL;
    job.y = call->outputs[0]->data;
    job.act = op_fused_activation(call->node);
    job.scratch = call->scratch;
    if (!job.x || (!job.w && !job.state) || !job.y)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv: missing tensor data");
    if (g.residual && !job.residual) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv: missing residual input");
    if (job.state && job.state->groups != g.group)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv: prepared weights do not match the node");
    if (g.batch == 0) return LENS_OK;

    int64_t threads = core_pool_size(call->pool);
    size_t slots = g.slot_bytes ? call->scratch_bytes / g.slot_bytes : SIZE_MAX;
    if (g.slot_bytes && (!call->scratch || slots < 1))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv: scratch of %zu bytes is smaller than the %zu it asked for",
                         call->scratch_bytes, g.slot_bytes);
    if (g.depthwise) {
        /* one scratch slot per thread; with fewer (planned for a smaller pool) run on this thread alone. Tasks are
         * blocks of tile_cols channels, tiles blocks per image. */
        if (slots < (size_t)threads) threads = 1;
        int64_t blk = kern_dwconv2d_channel_block(&g.shape); /* whole blocks of channels, even if fewer tasks */
        if (g.batch == 1) {
            /* One image: one contiguous run of channel blocks per thread, so the per-call set-up is paid once per
             * thread, and where the 1x1 expand conv before it splits its output channels in halves (the GEMM's
             * choice on 28x28 and smaller maps; task 0, the caller's, takes the first rows) each thread convolves
             * what its own core wrote. A chain of 14x14x384 depthwise convs (Zen 4, 2 threads): 21 -> 17 us each,
             * where 8 dynamically shared tasks ran barely faster than one thread (34 us). */
            job.tile_cols = div_ceil(div_ceil(g.cin, blk), threads) * blk;
        } else {
            int64_t per = CONV_DW_TASK_FLOATS / g.out_size;
            int64_t most = div_ceil(g.batch * g.cin, CONV_DW_TASKS_PER_THREAD * threads);
            if (per > most) per = most;
            job.tile_cols = per < 1 ? blk : div_ceil(per, blk) * blk;
        }
        job.tiles = div_ceil(g.cin, job.tile_cols);
        core_pool_run(threads > 1 ? call->pool : NULL, g.batch * job.tiles, conv_depthwise_task, &job);
        return LENS_OK;
    }
    if (job.state && job.state->rows) {
        if (!g.rows_ok) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv: prepared weights do not match the node");
        if (slots < (size_t)threads) threads = 1;
        conv_rows(&job, call->pool, threads);
        return LENS_OK;
    }
    if (job.state && job.state->winograd) {
        if (!g.winograd_ok)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv: prepared weights do not match the node");
        kern_winograd_conv2d(call->pool, job.state->winograd, &g.params, job.x, job.bias, job.residual, &job.act,
                             job.y, job.scratch, g.slot_bytes, slots);
        return LENS_OK;
    }
    if (g.input_scale) {
        const float *scale = call->n_inputs > 4 && call->inputs[4] ? call->inputs[4]->data : NULL;
        size_t buf_floats = kern_packed_a_scaled_floats((size_t)g.cout, (size_t)g.cin);
        if (!scale || (!job.state && !job.w))
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv: missing input scale or weights");
        if (!call->scratch || call->scratch_bytes < buf_floats * sizeof(float))
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv: scratch too small for the scaled weights");
        /* W diag(s_n) per image: cout * cin floats, fewer than the C * H * W the separate Mul would stream out and
         * back in (the graph pass folds only then) */
        float *ws = (float *)call->scratch;
        const float *w = job.w;
        for (int64_t n = 0; n < g.batch; n++) {
            const float *s = scale + (call->inputs[4]->dims[0] == 1 ? 0 : n * g.cin);
            const float *xn = job.x + n * g.cin * g.in_size;
            if (job.state) {
                float *c = job.y + n * g.cout * g.out_size;
                kern_epilogue ep = {job.bias, 1, job.act, NULL, 0};
                if (job.residual) {
                    ep.residual = job.residual + n * g.cout * g.out_size;
                    ep.ld_residual = (size_t)g.out_size;
                }
                if (!kern_sgemm_packed_a_scaled(call->pool, job.state->packed[0], s, ws, buf_floats,
                                                (size_t)g.out_size, xn, (size_t)g.in_size, job.residual ? 1.0f : 0.0f,
                                                c, (size_t)g.out_size, &ep))
                    return core_fail(LENS_ERR_INVALID_ARGUMENT, "Conv: scratch too small for the scaled weights");
                continue;
            }
            for (int64_t o = 0; o < g.cout; o++)
                for (int64_t k = 0; k < g.cin; k++) ws[o * g.cin + k] = w[o * g.cin + k] * s[k];
            job.w = ws;
            conv_gemm_tile(&job, call->pool, n, 0, 0, g.out_size, xn, (size_t)g.in_size);
            job.w = w;
        }
        return LENS_OK;
    }
    if (g.pointwise) {
        for (int64_t n = 0; n < g.batch; n++)
            for (int64_t gi = 0; gi < g.group; gi++)
                conv_gemm_tile(&job, call->pool, n, gi, 0, g.out_size,
                               job.x + (n * g.cin + gi * g.cin_g) * g.in_size, (size_t)g.in_size);
        return LENS_OK;
    }

    job.tile_cols = g.tile_cols;
    job.tiles = div_ceil(g.out_size, g.tile_cols);
    int64_t planes = g.batch * g.group;
    /* Independent tiles stream all the weights through every thread. Where the weights outweigh a plane's im2col
     * matrix CONV_WEIGHTS_HEAVY times (cout_g vs out_size), the few-tiles path pays instead: its threaded GEMM
     * splits the output channels, so each thread reads a share of the weights and all of the (smaller) columns.
     * Measured while these convs took this path (the rows kernel has them now; layer4.0.downsample still comes here):
     * ResNet-50 layer3.0.downsample (1x1 stride 2, 512 -> 1024, 196 columns: 2 MB of weights, 0.4 MB of columns) on
     * two threads, its input written by a 1x1 conv as in the network: 1.08-1.13 -> 1.00-1.02 ms. layer3.0.conv2
     * (3x3 stride 2, 256 channels on 196 columns, which independent tiles cut into two of 98: three and a sixteenth
     * column panels each) 1.24-1.28 -> 1.19-1.21 ms, minima over 6 processes at a time; ConvNeXt-T's 192 -> 384
     * downsample (2x2 stride 2, 196 columns) 0.593-0.599 -> 0.575-0.578 ms. With a plane
     * (image) per thread or more, independent tiles stream the weights once per plane as the few-tiles path does,
     * without its two pool runs per plane: ResNet-50 at batch 16 lost 5% in p50 to the few-tiles path. */
    const int weights_heavy = planes < threads && g.cout_g >= CONV_WEIGHTS_HEAVY * g.out_size;
    if (threads > 1 && (size_t)threads <= slots && !weights_heavy) {
        /* Independent tiles: each thread im2cols its own and runs a one-thread GEMM, so its columns never leave its
         * core and one pool run does the layer. Round the tile count up to a multiple of the thread count (one
         * plane of 784 columns: two tiles of 392) when the tiles stay wide, and make them equal: widths rounded up
         * to 16 would leave one thread 112 of 196 columns and the other 84. */
        int64_t tiles = job.tiles;
        while ((planes * tiles) % threads) tiles++;
        int64_t width = div_ceil(g.out_size, tiles);
        int64_t wide = width >= 4 * CONV_TILE_MIN_COLS && width <= g.tile_cols;
        if (wide && planes * div_ceil(g.out_size, width) >= threads) {
            job.tile_cols = width;
            job.tiles = div_ceil(g.out_size, width);
        }
        if (planes * job.tiles >= threads) {
            core_pool_run(call->pool, planes * job.tiles, conv_tile_task, &job);
            return LENS_OK;
        }
    }
    /* Few tiles: im2col each in parallel by rows, then a GEMM threaded over the pool. */
    job.row_tasks = threads < g.kg ? threads : g.kg;
    for (int64_t n = 0; n < g.batch; n++)
        for (int64_t gi = 0; gi < g.group; gi++)
            for (int64_t t = 0; t < job.tiles; t++) {
                job.xg = job.x + (n * g.cin + gi * g.cin_g) * g.in_size;
                job.col0 = t * g.tile_cols;
                job.ncols = g.out_size - job.col0 < g.tile_cols ? g.out_size - job.col0 : g.tile_cols;
                core_pool_run(call->pool, job.row_tasks, conv_im2col_rows_task, &job);
                conv_gemm_tile(&job, call->pool, n, gi, job.col0, job.ncols, (const float *)job.scratch,
                               (size_t)job.ncols);
            }
    return LENS_OK;
}

/* A fused residual is read by every path (GEMM and rows epilogues, Winograd's output transform, the depthwise
 * kernels) only where the same output is stored: the output may overwrite it. */
static int conv_inplace_input(const op_call *call) { return ops_residual_inplace(call, 3); }

const op_def ops_table_conv[] = {
    {"", "Conv", conv_infer, conv_run, conv_prepare, conv_release, conv_inplace_input},
    {0},
};
