/* kernels.h — numeric kernels: the scalar references (src/kernels/ref/) and the fast versions chosen at run time by
 * CPU features (src/kernels/x86/, src/kernels/arm/). Kernels see raw pointers and sizes, never graphs or nodes.
 * Includes only core. */
#ifndef LENS_KERNELS_H
#define LENS_KERNELS_H

#include "../core/core.h"

/* ---- Activations (also used as fused GEMM/conv epilogues) -------------------------------------------------------- */

typedef enum kern_act_kind {
    KERN_ACT_NONE = 0,
    KERN_ACT_RELU,
    KERN_ACT_CLIP,          /* min(max(x, alpha), beta) */
    KERN_ACT_LEAKY_RELU,    /* x < 0 ? alpha * x : x */
    KERN_ACT_SIGMOID,
    KERN_ACT_HARD_SIGMOID,  /* max(0, min(1, alpha * x + beta)) */
    KERN_ACT_HARD_SWISH,    /* x * max(0, min(1, x / 6 + 0.5)) */
    KERN_ACT_TANH,
    KERN_ACT_GELU,          /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
    KERN_ACT_SILU,          /* x * sigmoid(x) */
    KERN_ACT_ERF,           /* erf(x): the ONNX Erf op */
    KERN_ACT_EXP,           /* e^x: the ONNX Exp op */
    KERN_ACT_GELU_TANH,     /* 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) */
    KERN_ACT_QUICK_GELU     /* x * sigmoid(alpha * x) */
} kern_act_kind;

typedef struct kern_activation {
    kern_act_kind kind;
    float alpha, beta;
} kern_activation;

/* y[i] = a(x[i]) for i < n; x and y may be the same buffer (not otherwise overlapping). Vectorised at the CPU's
 * widest vector (AVX-512, AVX2+FMA, else SSE2/NEON). Error bounds against the exact function (tests/unit/test_act.c
 * checks them on every build over all lengths and ~2*10^5 random, raw-bit-pattern and edge inputs each; measured
 * maxima in brackets):
 *   exp <= 2 ulp [0.95]; tanh <= 2 ulp [1.3]; sigmoid, SiLU, QuickGELU, erf <= 4 ulp [2.6, 3.0, 3.1, 2.4];
 *   GELU, GELU-tanh <= 4 ulp + 2^-24 |x|: relative precision fades in the far negative tail (x < -4, |y| < 1.3e-4)
 *   where x / sqrt 2 and its square round (GELU) or 1 + tanh cancels (GELU-tanh, as in the formula itself);
 *   a result whose sigmoid factor is denormal (SiLU, QuickGELU at x < -87) may be off by |x| denormal steps;
 *   the piecewise-linear ones as written above, HardSigmoid and HardSwish to within an FMA's rounding.
 * Large |x| saturates correctly (exp: 0 below -103.9, with gradual underflow, +inf above 88.72; sigmoid 0 or 1; tanh
 * and erf +-1), +-inf gives the limit, NaN gives NaN (except Relu, Clip, HardSigmoid and HardSwish, whose comparisons
 * map NaN as the reference's do), denormal inputs are exact enough. x * sigmoid(x) and GELU at -inf are NaN, as the
 * formulas (and PyTorch) give. */
void kern_activation_map(const kern_activation *a, const float *x, float *y, size_t n);
/* Applies a in place to n floats. */
void kern_activation_apply(const kern_activation *a, float *x, size_t n);
/* Applies a in place to rows x n floats, row r at x + r * ld (a GEMM tile): one call instead of one per short row. */
void kern_activation_apply_rows(const kern_activation *a, float *x, size_t ld, size_t rows, size_t n);
/* The scalar reference: libm's expf, tanhf, erff; the oracle in tests. */
void kern_activation_apply_ref(const kern_activation *a, float *x, size_t n);

/* Softmax (log_form: LogSoftmax) of one contiguous row of n floats; x and y may be the same buffer. Uses the
 * activations' exp. */
void kern_softmax_row(const float *x, float *y, size_t n, int log_form);
/* Softmax's numerators: y[i] = e^(x[i] - max x) for i < n, returning their sum (0 for n = 0); x and y may be the
 * same buffer. For callers that fold 1 / sum into a later product (attention). */
float kern_softmax_exp_row(const float *x, float *y, size_t n);
/* LayerNormalization of one row: y[i] = (x[i] - mean) / sqrt(var + epsilon) * scale[i] + bias[i] (bias may be NULL)
 * for i < n, var the biased variance; returns the mean and 1 / sqrt(var + epsilon) in mean_out and inv_out. x and y
 * may be the same buffer. */
void kern_layernorm_row(const float *x, float *y, size_t n, const float *scale, const float *bias, float epsilon,
                        float *mean_out, float *inv_out);

/* Test hook: makes later activation calls use one build (generic, or the x86 AVX2 / AVX-512 ones). Returns false,
 * changing nothing, when this CPU or build cannot run it. Not thread-safe: call while no activation runs. */
typedef enum kern_act_isa {
    KERN_ACT_ISA_AUTO = 0,
    KERN_ACT_ISA_GENERIC,
    KERN_ACT_ISA_AVX2,
    KERN_ACT_ISA_AVX512
} kern_act_isa;
bool kern_activation_force_isa(kern_act_isa isa);

/* ---- GEMM --------------------------------------------------------------------------------------------------------- */

/* What happens to each output after C = alpha * op(A) op(B) + beta * C: add bias, then apply act. With a residual,
 * the beta term reads it instead of C: C = alpha * op(A) op(B) + beta * residual + bias (C's old contents are never
 * read; residual is C itself, with the same stride, or does not overlap it). A conv's fused skip connection, added
 * as the tiles are stored instead of copied into C first. */
typedef struct kern_epilogue {
    const float *bias; /* NULL, or bias[m] when bias_per_row, else bias[n] */
    int bias_per_row;
    kern_activation act;
    const float *residual; /* NULL, or [M, N] with rows ld_residual apart */
    size_t ld_residual;
} kern_epilogue;

/* C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, then the epilogue (ep may be NULL). Row-major; op(X) is X or
 * Xᵀ by trans_x; lda/ldb/ldc are row strides in elements of the stored matrices. beta == 0 ignores C's old contents
 * (NaN included). Multithreaded over pool (NULL: one thread). */
void kern_sgemm(core_pool *pool, int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha, const float *A,
                size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc, const kern_epilogue *ep);

/* The scalar reference, same contract, one thread: the oracle for every fast GEMM. */
void kern_sgemm_ref(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc, const kern_epilogue *ep);

/* A matrix packed once (at load time) for repeated use as the left operand: conv weights [Cout, Cin*kh*kw]. */
typedef struct kern_packed_a kern_packed_a;
/* Packs op(A) [M,K]. Returns NULL on out-of-memory. The result does not reference A. */
kern_packed_a *kern_sgemm_pack_a(int trans_a, size_t M, size_t K, const float *A, size_t lda);
void kern_packed_a_free(kern_packed_a *packed);
size_t kern_packed_a_bytes(const kern_packed_a *packed);
/* C[M,N] = packed[M,K] * op(B)[K,N] + beta * C, then the epilogue. One contiguous column (N == 1, ldc == 1, and
 * trans_b or ldb == 1: a 1x1 conv on a 1x1 map) runs as a matrix-vector product over the same panels. */
void kern_sgemm_packed_a(core_pool *pool, const kern_packed_a *A, int trans_b, size_t N, const float *B, size_t ldb,
                         float beta, float *C, size_t ldc, const kern_epilogue *ep);

/* C = packed[M,K] diag(scale[K]) B + beta * C, then the epilogue: the weights of a 1x1 conv whose input channels
 * were scaled (a folded squeeze-excitation gate). The scaled panels are written to buf, which must hold
 * kern_packed_a_scaled_floats(M, K) floats, 64-byte aligned. Returns 0 (computing nothing) when buf is too small. */
#define KERN_PACKED_A_MAX_MR 32
size_t kern_packed_a_scaled_floats(size_t M, size_t K);
int kern_sgemm_packed_a_scaled(core_pool *pool, const kern_packed_a *A, const float *scale, float *buf,
                               size_t buf_floats, size_t N, const float *B, size_t ldb, float beta, float *C,
                               size_t ldc, const kern_epilogue *ep);

/* A matrix packed once for repeated use as the right operand: fully connected weights. */
typedef struct kern_packed_b kern_packed_b;
/* Packs op(B) [K,N]. Returns NULL on out-of-memory. */
kern_packed_b *kern_sgemm_pack_b(int trans_b, size_t K, size_t N, const float *B, size_t ldb);
void kern_packed_b_free(kern_packed_b *packed);
size_t kern_packed_b_bytes(const kern_packed_b *packed);
/* C[M,N] = op(A)[M,K] * packed[K,N] + beta * C, then the epilogue. */
void kern_sgemm_packed_b(core_pool *pool, int trans_a, size_t M, const float *A, size_t lda, const kern_packed_b *B,
                         float beta, float *C, size_t ldc, const kern_epilogue *ep);

/* Which GEMM implementation runs here ("avx512", "avx2", "generic"). */
const char *kern_sgemm_name(void);

/* ---- Attention (attention.c) ------------------------------------------------------------------------------------- */

/* One head of scaled dot-product attention over a block of query rows: y[i] = softmax(scale * q[i] Kᵀ) V for
 * i < rows, with row i of Q at q + i*ldq, key t of K and V at k + t*ldk and v + t*ldv (keys of them), every row dim
 * floats, and row i of y at y + i*ldy. Rows may lie inside wider tensors (a packed QKV projection). */
typedef struct kern_attention_head {
    size_t rows, keys, dim;
    float scale;
    const float *q, *k, *v;
    size_t ldq, ldk, ldv;
    float *y;
    size_t ldy;
} kern_attention_head;

/* The query rows the kernel works through at a time: callers that split a head into row blocks use multiples. */
size_t kern_attention_row_step(void);
/* Floats of scratch a call with these sizes needs. */
size_t kern_attention_scratch_floats(size_t rows, size_t keys, size_t dim);
/* Computes one head's rows. scratch: kern_attention_scratch_floats(rows, keys, dim) floats, 64-byte aligned, owned
 * by the caller. kv_ready: the scratch still holds this head's K and V as an earlier call with the same k, v, ldk,
 * ldv, keys and dim (and no other call in between) prepared them, so they are not prepared again: a thread that
 * takes several row blocks of one head. One thread; callers split heads and row blocks over the pool. */
void kern_attention(const kern_attention_head *h, float *scratch, bool kv_ready);

/* ---- Transpose ---------------------------------------------------------------------------------------------------- */

/* dst[j * ld_dst + i] = src[i * ld_src + j] (+ res[j * ld_dst + i] if res is not NULL) for i < rows, j < cols
 * (transpose.c). Meant for cache-sized tiles: the caller blocks large matrices. src must not overlap dst or res;
 * res may be dst (each value is read before its place is written). */
void kern_transpose_f32(const float *src, size_t ld_src, float *dst, size_t ld_dst, size_t rows, size_t cols,
                        const float *res);

#endif
