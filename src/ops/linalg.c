/* linalg.c — Gemm, MatMul (numpy semantics, batched with broadcasting) and Einsum. Everything that is a (batched)
 * matrix product goes to the GEMM kernels, with constant right operands packed once in prepare; Einsum equations
 * that are not a matrix product fall back to plain loops. A MatMul with the internal attribute "lens.bias" (set by
 * graph passes) takes a third input, a bias of one value per column, added in the GEMM epilogue. One with "lens.residual" takes a
 * fourth input of the output's size, added to the product (MatMul: the output starts as a copy of it, then beta = 1;
 * Gemm: read by the epilogue; Gemm's C may then only be a bias row). May
 * touch only its inputs and outputs. */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

static lens_status need_float(const tensor *t, const char *op, const char *what) {
    if (t->dtype != LENS_DTYPE_FLOAT32)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s input %s has dtype %s; only float32 is supported", op, what,
                         dtype_name(t->dtype));
    return LENS_OK;
}

/* ---- Batched GEMM: C[b] = A[b] B[b] over a multi-index of batch dims with arbitrary strides ------------------ */

typedef struct bgemm {
    int nb;
    int64_t bdims[TENSOR_MAX_RANK], sa[TENSOR_MAX_RANK], sb[TENSOR_MAX_RANK], sc[TENSOR_MAX_RANK];
    int trans_a, trans_b;
    size_t M, N, K, lda, ldb, ldc;
    const float *A, *B;
    const kern_packed_b *packed_b; /* replaces B when set (then nb batch strides of B are unused) */
    float *C;
    float beta; /* 0, or 1 when C holds a residual to add */
    kern_epilogue ep;
} bgemm;

static void bgemm_one(const bgemm *j, core_pool *pool, int64_t t) {
    int64_t oa = 0, ob = 0, oc = 0;
    for (int d = j->nb - 1; d >= 0; d--) {
        int64_t i = t % j->bdims[d];
        t /= j->bdims[d];
        oa += i * j->sa[d], ob += i * j->sb[d], oc += i * j->sc[d];
    }
    if (j->packed_b)
        kern_sgemm_packed_b(pool, j->trans_a, j->M, j->A + oa, j->lda, j->packed_b, j->beta, j->C + oc, j->ldc,
                            &j->ep);
    else
        kern_sgemm(pool, j->trans_a, j->trans_b, j->M, j->N, j->K, 1.0f, j->A + oa, j->lda, j->B + ob, j->ldb, j->beta,
                   j->C + oc, j->ldc, &j->ep);
}

static void bgemm_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    bgemm_one(ctx, NULL, task);
}

static void bgemm_run(core_pool *pool, const bgemm *j) {
    int64_t count = 1;
    for (int d = 0; d < j->nb; d++) count *= j->bdims[d];
    if (count == 0 || !j->M || !j->N) return;
    int threads = core_pool_size(pool);
    /* Many small products: one per thread at a time. Few large ones: let the GEMM split each. */
    if (threads > 1 && count >= threads && (count >= 4 * threads || j->M * j->N * j->K < ((size_t)1 << 21)))
        core_pool_run(pool, count, bgemm_task, (void *)j);
    else
        for (int64_t t = 0; t < count; t++) bgemm_one(j, pool, t);
}

/* ---- Gemm ------------------------------------------------------------------------------------------------------ */

typedef struct gemm_geom {
    int64_t M, N, K;
    int trans_a, trans_b;
    float alpha, beta;
} gemm_geom;

static lens_status gemm_parse(const op_call *call, gemm_geom *g) {
    if (call->n_inputs < 2 || !call->inputs[0] || !call->inputs[1] || call->n_outputs < 1 || !call->outputs[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Gemm needs inputs A and B and output Y");
    const tensor *a = call->inputs[0], *b = call->inputs[1], *c = call->n_inputs > 2 ? call->inputs[2] : NULL;
    lens_status st;
    if ((st = need_float(a, "Gemm", "A")) || (st = need_float(b, "Gemm", "B"))) return st;
    if (c && (st = need_float(c, "Gemm", "C"))) return st;
    char sa[96], sb[96], sc[96];
    tensor_shape_string(a, sa, sizeof sa);
    tensor_shape_string(b, sb, sizeof sb);
    if (a->rank != 2 || b->rank != 2)
        return core_fail(LENS_ERR_SHAPE, "Gemm inputs A %s and B %s must be matrices", sa, sb);
    g->trans_a = op_attr_int(call->node, "transA", 0) != 0;
    g->trans_b = op_attr_int(call->node, "transB", 0) != 0;
    g->alpha = op_attr_float(call->node, "alpha", 1.0f);
    g->beta = op_attr_float(call->node, "beta", 1.0f);
    g->M = a->dims[g->trans_a ? 1 : 0];
    g->K = a->dims[g->trans_a ? 0 : 1];
    g->N = b->dims[g->trans_b ? 0 : 1];
    int64_t kb = b->dims[g->trans_b ? 1 : 0];
    if (kb != g->K)
        return core_fail(LENS_ERR_SHAPE, "Gemm inputs A %s (transA=%d) and B %s (transB=%d) do not multiply", sa,
                         g->trans_a, sb, g->trans_b);
    if (g->K < 1) return core_fail(LENS_ERR_UNSUPPORTED, "Gemm with an empty inner dimension (A %s, B %s)", sa, sb);
    if (c) {
        int64_t mn[2] = {g->M, g->N};
        int ok = c->rank <= 2;
        for (int i = 0; ok && i < c->rank; i++) {
            int64_t d = c->dims[c->rank - 1 - i], want = mn[1 - i];
            ok = d == 1 || d == want;
        }
        if (!ok)
            return core_fail(LENS_ERR_SHAPE, "Gemm input C %s does not broadcast to [%lld,%lld]",
                             tensor_shape_string(c, sc, sizeof sc), (long long)g->M, (long long)g->N);
    }
    return LENS_OK;
}

/* A Gemm's fused residual r (lens.residual) was the input of Add(Transpose(Reshape(Y), perm), r) when the node
 * carries lens.residual_perm: r has the Transpose's output shape. Whether r's bytes are in Y's order, i.e. perm
 * moves only dims of size 1 (at batch 1). */
static int residual_in_place(const op_node *node, const tensor *r) {
    const op_attr *perm = op_attr_find(node, "lens.residual_perm");
    if (!perm) return 1;
    int64_t last = -1, in_dims[TENSOR_MAX_RANK];
    for (int k = 0; k < r->rank; k++) in_dims[perm->ints[k]] = r->dims[k];
    for (int k = 0; k < r->rank; k++) {
        int64_t p = perm->ints[k];
        if (in_dims[p] == 1) continue;
        if (p < last) return 0;
        last = p;
    }
    return 1;
}

/* y = r with the Transpose undone: y holds the Transpose's input X (X[perm[k]] = r.dims[k]) row-major. */
static void copy_unpermuted(const op_node *node, const tensor *r, float *y) {
    const op_attr *perm = op_attr_find(node, "lens.residual_perm");
    int rank = r->rank;
    int64_t x_dims[TENSOR_MAX_RANK], x_stride[TENSOR_MAX_RANK], step[TENSOR_MAX_RANK], idx[TENSOR_MAX_RANK] = {0};
    for (int k = 0; k < rank; k++) x_dims[perm->ints[k]] = r->dims[k];
    int64_t size = 1;
    for (int k = rank - 1; k >= 0; k--) x_stride[k] = size, size *= x_dims[k];
    for (int k = 0; k < rank; k++) step[k] = x_stride[perm->ints[k]]; /* y stride of r's dim k */
    const float *src = r->data;
    int64_t n = tensor_numel(r), inner = rank ? r->dims[rank - 1] : 1, inner_step = rank ? step[rank - 1] : 1;
    if (!n) return;
    for (int64_t done = 0; done < n; done += inner) {
        int64_t off = 0;
        for (int k = 0; k < rank - 1; k++) off += idx[k] * step[k];
        for (int64_t i = 0; i < inner; i++) y[off + i * inner_step] = *src++;
        for (int k = rank - 2; k >= 0 && ++idx[k] == r->dims[k]; k--) idx[k] = 0;
    }
}

static lens_status gemm_infer(op_call *call) {
    gemm_geom g;
    lens_status st = gemm_parse(call, &g);
    if (st) return st;
    int64_t dims[2] = {g.M, g.N};
    ops_set_shape(call->outputs[0], LENS_DTYPE_FLOAT32, 2, dims);
    if (op_attr_int(call->node, "lens.residual", 0)) {
        const tensor *r = call->n_inputs > 3 ? call->inputs[3] : NULL, *c = call->n_inputs > 2 ? call->inputs[2] : NULL;
        if (!r) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Gemm with lens.residual needs a 4th input");
        if ((st = need_float(r, "Gemm", "residual"))) return st;
        const op_attr *perm = op_attr_find(call->node, "lens.residual_perm");
        int seen = 0;
        for (size_t k = 0; perm && k < perm->count; k++)
            if (perm->ints[k] >= 0 && perm->ints[k] < r->rank && !(seen & 1 << perm->ints[k]))
                seen |= 1 << perm->ints[k];
        if (perm && (perm->type != OP_ATTR_INTS || perm->count != (size_t)r->rank || seen != (1 << r->rank) - 1))
            return core_fail(LENS_ERR_SHAPE, "Gemm: lens.residual_perm does not fit the residual's rank");
        if (tensor_numel(r) != g.M * g.N)
            return core_fail(LENS_ERR_SHAPE, "Gemm residual has %lld values for a [%lld,%lld] output",
                             (long long)tensor_numel(r), (long long)g.M, (long long)g.N);
        if (c && (g.beta != 1.0f || tensor_numel(c) != g.N || (c->rank == 2 && c->dims[0] != 1)))
            return core_fail(LENS_ERR_UNSUPPORTED, "Gemm with lens.residual takes C only as a bias row");
    }
    return LENS_OK;
}

static void packed_b_release(void *state) { kern_packed_b_free(state); }

static lens_status gemm_prepare(op_call *call, void **state) {
    *state = NULL;
    gemm_geom g;
    lens_status st = gemm_parse(call, &g);
    if (st) return st;
    const tensor *b = call->inputs[1];
    if (!b->data) return LENS_OK;
    const float *src = b->data;
    float *scaled = NULL;
    size_t n = (size_t)(g.K * g.N);
    if (g.alpha != 1.0f) { /* packed products have no alpha: fold it into B */
        scaled = malloc(n * sizeof *scaled);
        if (!scaled) return core_fail(LENS_ERR_OUT_OF_MEMORY, "Gemm: out of memory packing B");
        for (size_t i = 0; i < n; i++) scaled[i] = g.alpha * src[i];
        src = scaled;
    }
    *state = kern_sgemm_pack_b(g.trans_b, (size_t)g.K, (size_t)g.N, src, (size_t)b->dims[1]);
    free(scaled);
    if (!*state) return core_fail(LENS_ERR_OUT_OF_MEMORY, "Gemm: out of memory packing B");
    call->taken_inputs |= 1u << 1;
    return LENS_OK;
}

static lens_status gemm_run(op_call *call) {
    gemm_geom g;
    lens_status st = gemm_parse(call, &g);
    if (st) return st;
    const tensor *a = call->inputs[0], *b = call->inputs[1], *c = call->n_inputs > 2 ? call->inputs[2] : NULL;
    float *y = call->outputs[0]->data;
    if (!a->data || (!b->data && !call->state) || !y || (c && !c->data))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Gemm: missing tensor data");
    if (!g.M || !g.N) return LENS_OK;
    kern_epilogue ep = {.act = op_fused_activation(call->node)};
    float beta = 0;
    if (c && g.beta != 0) {
        const float *cv = c->data;
        int64_t cn = tensor_numel(c);
        int64_t rows = c->rank == 2 ? c->dims[0] : 1;
        if (g.beta == 1.0f && rows == 1 && cn == g.N) {
            ep.bias = cv; /* the usual fully connected bias */
        } else if (cv != y) {
            int64_t cols = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
            for (int64_t i = 0; i < g.M; i++)
                for (int64_t jj = 0; jj < g.N; jj++)
                    y[i * g.N + jj] = cv[(rows == 1 ? 0 : i) * cols + (cols == 1 ? 0 : jj)];
            beta = g.beta;
        } else {
            beta = g.beta;
        }
    }
    if (op_attr_int(call->node, "lens.residual", 0)) {
        /* an Add fused by graph_optimize_with_shapes: the epilogue's beta term reads the residual (gemm_infer
         * allowed C only as the bias row, so beta is still 0 here) */
        const tensor *r = call->inputs[3];
        if (!r->data) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Gemm: missing residual data");
        if (residual_in_place(call->node, r)) {
            ep.residual = r->data;
            ep.ld_residual = (size_t)g.N;
        } else {
            copy_unpermuted(call->node, r, y);
        }
        beta = 1.0f;
    }
    if (call->state)
        kern_sgemm_packed_b(call->pool, g.trans_a, (size_t)g.M, a->data, (size_t)a->dims[1], call->state, beta, y,
                            (size_t)g.N, &ep);
    else
        kern_sgemm(call->pool, g.trans_a, g.trans_b, (size_t)g.M, (size_t)g.N, (size_t)g.K, g.alpha, a->data,
                   (size_t)a->dims[1], b->data, (size_t)b->dims[1], beta, y, (size_t)g.N, &ep);
    return LENS_OK;
}

/* ---- MatMul ---------------------------------------------------------------------------------------------------- */

typedef struct matmul_geom {
    int64_t M, N, K;
    int out_rank, nb;
    int64_t out_dims[TENSOR_MAX_RANK];
    int64_t bdims[TENSOR_MAX_RANK], sa[TENSOR_MAX_RANK], sb[TENSOR_MAX_RANK], sc[TENSOR_MAX_RANK];
    int b_batched; /* B has batch dims of size > 1 */
} matmul_geom;

static lens_status matmul_parse(const op_call *call, matmul_geom *g) {
    if (call->n_inputs < 2 || !call->inputs[0] || !call->inputs[1] || call->n_outputs < 1 || !call->outputs[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "MatMul needs inputs A and B and output Y");
    const tensor *a = call->inputs[0], *b = call->inputs[1];
    lens_status st;
    if ((st = need_float(a, "MatMul", "A")) || (st = need_float(b, "MatMul", "B"))) return st;
    char sa[96], sb[96];
    tensor_shape_string(a, sa, sizeof sa);
    tensor_shape_string(b, sb, sizeof sb);
    if (a->rank < 1 || b->rank < 1)
        return core_fail(LENS_ERR_SHAPE, "MatMul inputs A %s and B %s must have rank >= 1", sa, sb);
    int64_t am = a->rank >= 2 ? a->dims[a->rank - 2] : 1, ak = a->dims[a->rank - 1];
    int64_t bk = b->rank >= 2 ? b->dims[b->rank - 2] : b->dims[0], bn = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    if (ak != bk) return core_fail(LENS_ERR_SHAPE, "MatMul inputs A %s and B %s do not multiply", sa, sb);
    if (ak < 1) return core_fail(LENS_ERR_UNSUPPORTED, "MatMul with an empty inner dimension (A %s, B %s)", sa, sb);
    if (op_attr_int(call->node, "lens.bias", 0)) {
        const tensor *bias = call->n_inputs > 2 ? call->inputs[2] : NULL;
        if (!bias || b->rank < 2)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "MatMul with lens.bias needs a bias input and a matrix B %s",
                             sb);
        if ((st = need_float(bias, "MatMul", "bias"))) return st;
        if (tensor_numel(bias) != bn)
            return core_fail(LENS_ERR_SHAPE, "MatMul fused bias has %lld values for %lld columns",
                             (long long)tensor_numel(bias), (long long)bn);
    }
    if (op_attr_int(call->node, "lens.residual", 0)) {
        const tensor *r = call->n_inputs > 3 ? call->inputs[3] : NULL;
        if (!r) return core_fail(LENS_ERR_INVALID_ARGUMENT, "MatMul with lens.residual needs a 4th input");
        if ((st = need_float(r, "MatMul", "residual"))) return st;
    }
    g->M = am, g->N = bn, g->K = ak;
    int na = a->rank > 2 ? a->rank - 2 : 0, nbb = b->rank > 2 ? b->rank - 2 : 0;
    int nb = na > nbb ? na : nbb;
    g->nb = nb;
    g->b_batched = 0;
    int64_t stride_a = am * ak, stride_b = bk * bn, stride_c = am * bn;
    for (int d = nb - 1; d >= 0; d--) {
        int ia = d - (nb - na), ib = d - (nb - nbb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return core_fail(LENS_ERR_SHAPE, "MatMul batch dims of A %s and B %s do not broadcast", sa, sb);
        int64_t dc = da == 1 ? db : da;
        g->bdims[d] = dc;
        g->sa[d] = da == 1 ? 0 : stride_a;
        g->sb[d] = db == 1 ? 0 : stride_b;
        g->sc[d] = stride_c;
        if (db > 1) g->b_batched = 1;
        stride_a *= da, stride_b *= db, stride_c *= dc;
    }
    int r = 0;
    for (int d = 0; d < nb; d++) g->out_dims[r++] = g->bdims[d];
    if (a->rank >= 2) g->out_dims[r++] = am;
    if (b->rank >= 2) g->out_dims[r++] = bn;
    g->out_rank = r;
    return LENS_OK;
}

static lens_status matmul_infer(op_call *call) {
    matmul_geom g;
    lens_status st = matmul_parse(call, &g);
    if (st) return st;
    ops_set_shape(call->outputs[0], LENS_DTYPE_FLOAT32, g.out_rank, g.out_dims);
    const tensor *r = call->n_inputs > 3 ? call->inputs[3] : NULL;
    /* the residual is read as flat floats: it may have another shape of the same layout (a view, see
     * fuse_residual_through_views) */
    if (op_attr_int(call->node, "lens.residual", 0) && (!r || tensor_numel(r) != tensor_numel(call->outputs[0]))) {
        char sr[96], sy[96];
        return core_fail(LENS_ERR_SHAPE, "MatMul residual %s does not match the output %s",
                         tensor_shape_string(r, sr, sizeof sr), tensor_shape_string(call->outputs[0], sy, sizeof sy));
    }
    return LENS_OK;
}

static lens_status matmul_prepare(op_call *call, void **state) {
    *state = NULL;
    matmul_geom g;
    lens_status st = matmul_parse(call, &g);
    if (st) return st;
    const tensor *b = call->inputs[1];
    if (!b->data || b->rank > 2) return LENS_OK;
    *state = kern_sgemm_pack_b(0, (size_t)g.K, (size_t)g.N, b->data, (size_t)g.N);
    if (!*state) return core_fail(LENS_ERR_OUT_OF_MEMORY, "MatMul: out of memory packing B");
    call->taken_inputs |= 1u << 1; /* B of rank <= 2 is never batched: run always takes the packed path */
    return LENS_OK;
}

static lens_status matmul_run(op_call *call) {
    matmul_geom g;
    lens_status st = matmul_parse(call, &g);
    if (st) return st;
    const tensor *a = call->inputs[0], *b = call->inputs[1];
    float *y = call->outputs[0]->data;
    if (!a->data || (!b->data && !call->state) || !y)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "MatMul: missing tensor data");
    bgemm j = {0};
    j.M = (size_t)g.M, j.N = (size_t)g.N, j.K = (size_t)g.K;
    j.lda = (size_t)g.K, j.ldb = (size_t)g.N, j.ldc = (size_t)g.N;
    j.A = a->data, j.B = b->data, j.C = y;
    j.ep.act = op_fused_activation(call->node);
    if (op_attr_int(call->node, "lens.bias", 0)) {
        if (!call->inputs[2]->data) return core_fail(LENS_ERR_INVALID_ARGUMENT, "MatMul: missing bias data");
        j.ep.bias = call->inputs[2]->data;
    }
    if (op_attr_int(call->node, "lens.residual", 0)) {
        /* C starts as the residual (an Add fused by graph_optimize_with_shapes); each block of C is written once */
        const tensor *r = call->inputs[3];
        if (!r->data) return core_fail(LENS_ERR_INVALID_ARGUMENT, "MatMul: missing residual data");
        if (r->data != y) memcpy(y, r->data, (size_t)tensor_numel(r) * sizeof *y);
        j.beta = 1.0f;
    }
    if (!g.b_batched) {
        /* B is one matrix: every batch of A stacks into the rows of one product. A batch dim that broadcasts
         * (A smaller than the output) is handled by repeating the stacked product per output batch. */
        int a_full = 1;
        for (int d = 0; d < g.nb; d++)
            if (g.bdims[d] > 1 && g.sa[d] == 0) a_full = 0;
        if (a_full) {
            int64_t rows = g.M;
            for (int d = 0; d < g.nb; d++) rows *= g.bdims[d];
            j.M = (size_t)rows;
            j.nb = 0;
            j.packed_b = call->state;
            bgemm_run(call->pool, &j);
            return LENS_OK;
        }
    }
    j.nb = g.nb;
    memcpy(j.bdims, g.bdims, sizeof j.bdims);
    memcpy(j.sa, g.sa, sizeof j.sa);
    memcpy(j.sb, g.sb, sizeof j.sb);
    memcpy(j.sc, g.sc, sizeof j.sc);
    if (!g.b_batched) j.packed_b = call->state;
    bgemm_run(call->pool, &j);
    return LENS_OK;
}

/* ---- Einsum ---------------------------------------------------------------------------------------------------- */

#define EINSUM_MAX_OPERANDS 8
#define EINSUM_ELLIPSIS 52 /* label ids: a-z 0..25, A-Z 26..51, ellipsis dims 52.. */
#define EINSUM_LABELS (EINSUM_ELLIPSIS + TENSOR_MAX_RANK)

typedef struct einsum_spec {
    int n_ops;
    int64_t size[EINSUM_LABELS];
    int used[EINSUM_LABELS];                            /* label appears in some input */
    int in_out[EINSUM_LABELS];                          /* label appears in the output */
    int64_t stride[EINSUM_MAX_OPERANDS][EINSUM_LABELS]; /* summed over repeats: a repeat reads the diagonal */
    int count[EINSUM_MAX_OPERANDS][EINSUM_LABELS];
    int out_rank;
    int out_labels[TENSOR_MAX_RANK];
    int64_t out_dims[TENSOR_MAX_RANK];
    int64_t out_stride[EINSUM_LABELS];
} einsum_spec;

static int einsum_letter(char c) {
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return 26 + c - 'A';
    return -1;
}

/* Parses one term into labels (letters as ids, -1 for the ellipsis); returns the label count or -1 on error. */
static int einsum_term(const char *s, const char *end, int *labels, int max) {
    int n = 0, ellipsis = 0;
    while (s < end) {
        if (*s == ' ') {
            s++;
            continue;
        }
        if (*s == '.') {
            if (end - s < 3 || s[1] != '.' || s[2] != '.' || ellipsis) return -1;
            ellipsis = 1;
            if (n >= max) return -1;
            labels[n++] = -1;
            s += 3;
            continue;
        }
        int l = einsum_letter(*s);
        if (l < 0 || n >= max) return -1;
        labels[n++] = l;
        s++;
    }
    return n;
}

static lens_status einsum_parse(const op_call *call, einsum_spec *e) {
    memset(e, 0, sizeof *e);
    const char *eq = op_attr_string(call->node, "equation", NULL);
    if (!eq) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Einsum needs an equation");
    if (call->n_outputs < 1 || !call->outputs[0]) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Einsum needs an output");
    const char *arrow = strstr(eq, "->"), *lhs_end = arrow ? arrow : eq + strlen(eq);
    lens_dtype dtype = call->n_inputs > 0 && call->inputs[0] ? call->inputs[0]->dtype : LENS_DTYPE_FLOAT32;
    if (dtype != LENS_DTYPE_FLOAT32 && dtype != LENS_DTYPE_FLOAT64)
        return core_fail(LENS_ERR_UNSUPPORTED, "Einsum input 0 has dtype %s; only float32 and float64 are supported",
                         dtype_name(dtype));
    int ell_rank = 0, ell_rank_op[EINSUM_MAX_OPERANDS] = {0};
    int labels[EINSUM_MAX_OPERANDS][TENSOR_MAX_RANK + 2], n_labels[EINSUM_MAX_OPERANDS];
    const char *s = eq;
    for (int op = 0;; op++) {
        const char *comma = memchr(s, ',', (size_t)(lhs_end - s)), *term_end = comma ? comma : lhs_end;
        if (op >= EINSUM_MAX_OPERANDS || op >= call->n_inputs)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "Einsum equation '%s' names more operands than the %d inputs",
                             eq, call->n_inputs);
        const tensor *t = call->inputs[op];
        if (!t) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Einsum input %d is missing", op);
        if (t->dtype != dtype)
            return core_fail(LENS_ERR_UNSUPPORTED, "Einsum input %d has dtype %s but input 0 has %s", op,
                             dtype_name(t->dtype), dtype_name(dtype));
        int n = einsum_term(s, term_end, labels[op], TENSOR_MAX_RANK + 1);
        if (n < 0) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Einsum equation '%s' is malformed", eq);
        int has_ell = 0;
        for (int i = 0; i < n; i++) has_ell |= labels[op][i] < 0;
        int explicit = n - has_ell;
        if (t->rank < explicit || (!has_ell && t->rank != explicit)) {
            char st[96];
            return core_fail(LENS_ERR_SHAPE, "Einsum term %d of '%s' does not fit input %d of shape %s", op, eq, op,
                             tensor_shape_string(t, st, sizeof st));
        }
        n_labels[op] = n;
        ell_rank_op[op] = t->rank - explicit;
        if (ell_rank_op[op] > ell_rank) ell_rank = ell_rank_op[op];
        e->n_ops = op + 1;
        if (!comma) break;
        s = comma + 1;
    }
    if (e->n_ops != call->n_inputs)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "Einsum equation '%s' names %d operands but there are %d inputs",
                         eq, e->n_ops, call->n_inputs);
    /* Bind every axis of every operand to a label; sizes must agree (ellipsis dims broadcast). */
    for (int op = 0; op < e->n_ops; op++) {
        const tensor *t = call->inputs[op];
        int axis = 0;
        int64_t strides[TENSOR_MAX_RANK], st = 1;
        for (int d = t->rank - 1; d >= 0; d--) strides[d] = st, st *= t->dims[d];
        for (int i = 0; i < n_labels[op]; i++) {
            int first = 0, count = 1;
            if (labels[op][i] < 0) first = EINSUM_ELLIPSIS + ell_rank - ell_rank_op[op], count = ell_rank_op[op];
            for (int k = 0; k < count; k++, axis++) {
                int l = labels[op][i] < 0 ? first + k : labels[op][i];
                int64_t d = t->dims[axis];
                if (e->used[l] && e->size[l] != d) {
                    int ell = l >= EINSUM_ELLIPSIS;
                    if (ell && d == 1) continue; /* broadcast: stride stays 0 */
                    if (!(ell && e->size[l] == 1)) {
                        char sh[96];
                        return core_fail(LENS_ERR_SHAPE, "Einsum '%s': input %d of shape %s disagrees on a dim", eq,
                                         op, tensor_shape_string(t, sh, sizeof sh));
                    }
                    /* earlier operands saw size 1 here: they broadcast */
                    for (int o = 0; o < op; o++) e->stride[o][l] = 0;
                }
                e->used[l] = 1;
                e->size[l] = d;
                e->stride[op][l] += strides[axis];
                e->count[op][l]++;
            }
        }
    }
    /* The output labels. */
    int out[TENSOR_MAX_RANK + 2], n_out = 0;
    if (arrow) {
        int n = einsum_term(arrow + 2, eq + strlen(eq), out, TENSOR_MAX_RANK + 1);
        if (n < 0) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Einsum equation '%s' is malformed", eq);
        for (int i = 0; i < n; i++) {
            if (out[i] < 0) {
                for (int k = 0; k < ell_rank; k++) {
                    if (n_out >= TENSOR_MAX_RANK) goto too_many;
                    e->out_labels[n_out++] = EINSUM_ELLIPSIS + k;
                }
                continue;
            }
            if (!e->used[out[i]] || e->in_out[out[i]])
                return core_fail(LENS_ERR_INVALID_ARGUMENT,
                                 "Einsum equation '%s': output label '%c' is repeated or not in any input", eq,
                                 out[i] < 26 ? 'a' + out[i] : 'A' + out[i] - 26);
            if (n_out >= TENSOR_MAX_RANK) goto too_many;
            e->out_labels[n_out++] = out[i];
            e->in_out[out[i]] = 1;
        }
    } else {
        for (int k = 0; k < ell_rank; k++) e->out_labels[n_out++] = EINSUM_ELLIPSIS + k;
        for (int l = 0; l < EINSUM_ELLIPSIS; l++) {
            int total = 0;
            for (int op = 0; op < e->n_ops; op++) total += e->count[op][l];
            if (total == 1) {
                if (n_out >= TENSOR_MAX_RANK) goto too_many;
                e->out_labels[n_out++] = l;
            }
        }
    }
    for (int i = 0; i < n_out; i++) e->in_out[e->out_labels[i]] = 1;
    e->out_rank = n_out;
    int64_t st = 1;
    for (int i = n_out - 1; i >= 0; i--) {
        e->out_dims[i] = e->size[e->out_labels[i]];
        e->out_stride[e->out_labels[i]] = st;
        st *= e->out_dims[i];
    }
    return LENS_OK;
too_many:
    return core_fail(LENS_ERR_UNSUPPORTED, "Einsum equation '%s': output rank above %d", eq, TENSOR_MAX_RANK);
}

static lens_status einsum_infer(op_call *call) {
    einsum_spec e;
    lens_status st = einsum_parse(call, &e);
    if (st) return st;
    ops_set_shape(call->outputs[0], call->inputs[0]->dtype, e.out_rank, e.out_dims);
    return LENS_OK;
}

/* Merges labels (in the given order, none of size 1) into one matrix dim if, in each tensor t listed, every
 * label's stride is the next one's stride times its size. Returns 0 when they cannot be merged. */
static int einsum_merge(const einsum_spec *e, const int *labels, int n, const int64_t *const *strides, int n_t,
                        int64_t *size, int64_t *stride_out) {
    *size = 1;
    for (int t = 0; t < n_t; t++) stride_out[t] = 0;
    if (!n) return 1;
    for (int t = 0; t < n_t; t++) {
        for (int i = 0; i < n; i++) {
            if (strides[t][labels[i]] == 0) return 0;
            if (i + 1 < n && strides[t][labels[i]] != strides[t][labels[i + 1]] * e->size[labels[i + 1]]) return 0;
        }
        stride_out[t] = strides[t][labels[n - 1]];
    }
    for (int i = 0; i < n; i++) *size *= e->size[labels[i]];
    return 1;
}

/* The start of the longest suffix of labels that einsum_merge accepts. */
static int einsum_mergeable_suffix(const einsum_spec *e, const int *labels, int n, const int64_t *const *strides) {
    int start = n;
    int64_t size, st[2];
    while (start > 0 && einsum_merge(e, labels + start - 1, n - start + 1, strides, 2, &size, st)) start--;
    return start;
}

/* How a [rows, cols] view with these strides is handed to a GEMM; 0 when it cannot be. */
static int einsum_layout(int64_t rows, int64_t sr, int64_t cols, int64_t sc, int *trans, size_t *ld) {
    if (cols == 1 || sc == 1) {
        *trans = 0;
        *ld = (size_t)(rows == 1 ? cols : sr);
        return rows == 1 || sr >= cols;
    }
    if (rows == 1 || sr == 1) {
        *trans = 1;
        *ld = (size_t)(cols == 1 ? rows : sc);
        return cols == 1 || sc >= rows;
    }
    return 0;
}

/* Two float32 operands whose contraction is a batched matrix product: map it onto bgemm. Output labels in both
 * operands are batch dims; those in A only form M, in B only N, summed labels K (all in both operands). Leading M
 * or N labels that do not merge with the rest become batch dims too (with stride 0 in the other operand). */
static int einsum_as_gemm(const einsum_spec *e, const float *a, const float *b, float *c, bgemm *j) {
    int batch[EINSUM_LABELS], mm[EINSUM_LABELS], nn[EINSUM_LABELS], kk[EINSUM_LABELS];
    int nbatch = 0, nm = 0, nnn = 0, nk = 0;
    for (int l = 0; l < EINSUM_LABELS; l++)
        if (e->used[l] && (e->count[0][l] > 1 || e->count[1][l] > 1)) return 0;
    for (int i = 0; i < e->out_rank; i++) {
        int l = e->out_labels[i], ina = e->count[0][l] > 0, inb = e->count[1][l] > 0;
        if (e->size[l] == 1) continue;
        if (ina && inb) batch[nbatch++] = l;
        else if (ina) mm[nm++] = l;
        else nn[nnn++] = l;
    }
    for (int l = 0; l < EINSUM_LABELS; l++) {
        if (!e->used[l] || e->in_out[l]) continue;
        if (!e->count[0][l] || !e->count[1][l]) return 0; /* summed over one operand only */
        if (e->size[l] != 1) kk[nk++] = l;
    }
    /* K labels in the order of A's strides, largest first */
    for (int i = 1; i < nk; i++)
        for (int k = i; k > 0 && e->stride[0][kk[k]] > e->stride[0][kk[k - 1]]; k--) {
            int t = kk[k];
            kk[k] = kk[k - 1], kk[k - 1] = t;
        }
    const int64_t *am[2] = {e->stride[0], e->out_stride}, *bn[2] = {e->stride[1], e->out_stride};
    const int64_t *ab[2] = {e->stride[0], e->stride[1]};
    int m0 = einsum_mergeable_suffix(e, mm, nm, am), n0 = einsum_mergeable_suffix(e, nn, nnn, bn);
    int64_t M, N, K, sm[2], sn[2], sk[2];
    if (!einsum_merge(e, mm + m0, nm - m0, am, 2, &M, sm) || !einsum_merge(e, nn + n0, nnn - n0, bn, 2, &N, sn) ||
        !einsum_merge(e, kk, nk, ab, 2, &K, sk))
        return 0;
    for (int i = 0; i < m0; i++) batch[nbatch++] = mm[i];
    for (int i = 0; i < n0; i++) batch[nbatch++] = nn[i];
    if (nbatch > TENSOR_MAX_RANK || K == 0) return 0;
    int ta, tb, tc;
    size_t lda, ldb, ldc;
    if (!einsum_layout(M, sm[0], K, sk[0], &ta, &lda) || !einsum_layout(K, sk[1], N, sn[0], &tb, &ldb) ||
        !einsum_layout(M, sm[1], N, sn[1], &tc, &ldc))
        return 0;
    memset(j, 0, sizeof *j);
    for (int i = 0; i < nbatch; i++) {
        int l = batch[i];
        j->bdims[i] = e->size[l];
        j->sa[i] = e->stride[0][l];
        j->sb[i] = e->stride[1][l];
        j->sc[i] = e->out_stride[l];
    }
    j->nb = nbatch;
    if (!tc) {
        j->trans_a = ta, j->trans_b = tb;
        j->M = (size_t)M, j->N = (size_t)N, j->K = (size_t)K;
        j->A = a, j->B = b, j->lda = lda, j->ldb = ldb;
    } else { /* C is stored transposed: Cᵀ = Bᵀ Aᵀ */
        j->trans_a = !tb, j->trans_b = !ta;
        j->M = (size_t)N, j->N = (size_t)M, j->K = (size_t)K;
        j->A = b, j->B = a, j->lda = ldb, j->ldb = lda;
        for (int d = 0; d < j->nb; d++) {
            int64_t t = j->sa[d];
            j->sa[d] = j->sb[d], j->sb[d] = t;
        }
    }
    j->C = c, j->ldc = ldc;
    return 1;
}

/* Plain loops over every label: any number of operands, repeated labels (diagonals), sums over one operand. */
static void einsum_loops(const einsum_spec *e, const op_call *call, int is_double) {
    int labels[EINSUM_LABELS], n = 0;
    for (int i = 0; i < e->out_rank; i++) labels[n++] = e->out_labels[i];
    int n_out = n;
    for (int l = 0; l < EINSUM_LABELS; l++)
        if (e->used[l] && !e->in_out[l]) labels[n++] = l;
    int64_t out_count = 1, red_count = 1, idx[EINSUM_LABELS] = {0}, off[EINSUM_MAX_OPERANDS] = {0};
    for (int i = 0; i < n_out; i++) out_count *= e->size[labels[i]];
    for (int i = n_out; i < n; i++) red_count *= e->size[labels[i]];
    const void *src[EINSUM_MAX_OPERANDS];
    for (int op = 0; op < e->n_ops; op++) src[op] = call->inputs[op]->data;
    void *dst = call->outputs[0]->data;
    for (int64_t o = 0; o < out_count; o++) {
        double acc = 0;
        for (int64_t r = 0; r < red_count; r++) {
            double prod = 1;
            for (int op = 0; op < e->n_ops; op++)
                prod *= is_double ? ((const double *)src[op])[off[op]] : ((const float *)src[op])[off[op]];
            acc += prod;
            for (int i = n - 1; i >= n_out; i--) {
                int l = labels[i];
                for (int op = 0; op < e->n_ops; op++) off[op] += e->stride[op][l];
                if (++idx[l] < e->size[l]) break;
                for (int op = 0; op < e->n_ops; op++) off[op] -= e->stride[op][l] * e->size[l];
                idx[l] = 0;
            }
        }
        if (is_double) ((double *)dst)[o] = acc;
        else ((float *)dst)[o] = (float)acc;
        for (int i = n_out - 1; i >= 0; i--) {
            int l = labels[i];
            for (int op = 0; op < e->n_ops; op++) off[op] += e->stride[op][l];
            if (++idx[l] < e->size[l]) break;
            for (int op = 0; op < e->n_ops; op++) off[op] -= e->stride[op][l] * e->size[l];
            idx[l] = 0;
        }
    }
}

static lens_status einsum_run(op_call *call) {
    einsum_spec e;
    lens_status st = einsum_parse(call, &e);
    if (st) return st;
    for (int op = 0; op < e.n_ops; op++)
        if (!call->inputs[op]->data) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Einsum: missing tensor data");
    if (!call->outputs[0]->data) return core_fail(LENS_ERR_INVALID_ARGUMENT, "Einsum: missing output data");
    int is_double = call->inputs[0]->dtype == LENS_DTYPE_FLOAT64;
    bgemm j;
    if (!is_double && e.n_ops == 2 &&
        einsum_as_gemm(&e, call->inputs[0]->data, call->inputs[1]->data, call->outputs[0]->data, &j)) {
        j.ep.act.kind = KERN_ACT_NONE;
        bgemm_run(call->pool, &j);
        return LENS_OK;
    }
    einsum_loops(&e, call, is_double);
    return LENS_OK;
}

/* A fused residual in the order of the output (Gemm: not a permuted one, which is copied into place first) is read
 * by the epilogue, or copied into C before the product, only where the same output goes: the output may take its
 * buffer. */
static int linalg_inplace_input(const op_call *call) {
    int k = ops_residual_inplace(call, 3);
    return k < 0 || strcmp(call->node->op_type, "Gemm") || residual_in_place(call->node, call->inputs[k]) ? k : -1;
}

const op_def ops_table_linalg[] = {
    {"", "Gemm", gemm_infer, gemm_run, gemm_prepare, packed_b_release, linalg_inplace_input},
    {"", "MatMul", matmul_infer, matmul_run, matmul_prepare, packed_b_release, linalg_inplace_input},
    {"", "Einsum", einsum_infer, einsum_run, NULL, NULL, NULL},
    {0},
};
