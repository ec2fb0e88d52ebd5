/* eltwise.c — elementwise ops with numpy broadcasting: arithmetic, comparisons, logic, Where, variadic
 * Sum/Mean/Min/Max, PRelu, BitShift and unary math. Kernels are stamped out per dtype by macros. A broadcast walker
 * turns any shapes into contiguous runs in which every operand either advances with the output or stays on one
 * element, and spreads the runs over the pool. Touches only the tensors of the call. */
#include <math.h>
#include <string.h>

#include "ops.h"

/* ---- Dtypes ------------------------------------------------------------------------------------------------------ */

typedef enum elt_type {
    ET_F32, ET_F64, ET_F16, ET_BF16,
    ET_I8, ET_I16, ET_I32, ET_I64,
    ET_U8, ET_U16, ET_U32, ET_U64,
    ET_BOOL, ET_COUNT
} elt_type;

static int elt_type_of(lens_dtype dtype) {
    switch (dtype) {
    case LENS_DTYPE_FLOAT32: return ET_F32;
    case LENS_DTYPE_FLOAT64: return ET_F64;
    case LENS_DTYPE_FLOAT16: return ET_F16;
    case LENS_DTYPE_BFLOAT16: return ET_BF16;
    case LENS_DTYPE_INT8: return ET_I8;
    case LENS_DTYPE_INT16: return ET_I16;
    case LENS_DTYPE_INT32: return ET_I32;
    case LENS_DTYPE_INT64: return ET_I64;
    case LENS_DTYPE_UINT8: return ET_U8;
    case LENS_DTYPE_UINT16: return ET_U16;
    case LENS_DTYPE_UINT32: return ET_U32;
    case LENS_DTYPE_UINT64: return ET_U64;
    case LENS_DTYPE_BOOL: return ET_BOOL;
    default: return -1;
    }
}

#define LD_ID(v) (v)
#define ST_ID(v) (v)
#define LD_BOOL(v) ((uint8_t)((v) != 0))

/* X(arg, type id, NAME, storage type, compute type, LOAD, STORE, KIND); KIND is F (floating), S (signed), U
 * (unsigned). Half types compute in float. */
#define ELT_NUMERIC(X, A)                                                                   \
    X(A, ET_F32, F32, float, float, LD_ID, ST_ID, F)                                        \
    ELT_NUMERIC_BUT_F32(X, A)

#define ELT_NUMERIC_BUT_F32(X, A)                                                           \
    X(A, ET_F64, F64, double, double, LD_ID, ST_ID, F)                                      \
    X(A, ET_F16, F16, uint16_t, float, core_f16_to_f32, core_f32_to_f16, F)                 \
    X(A, ET_BF16, BF16, uint16_t, float, core_bf16_to_f32, core_f32_to_bf16, F)             \
    X(A, ET_I8, I8, int8_t, int8_t, LD_ID, ST_ID, S)                                        \
    X(A, ET_I16, I16, int16_t, int16_t, LD_ID, ST_ID, S)                                    \
    X(A, ET_I32, I32, int32_t, int32_t, LD_ID, ST_ID, S)                                    \
    X(A, ET_I64, I64, int64_t, int64_t, LD_ID, ST_ID, S)                                    \
    X(A, ET_U8, U8, uint8_t, uint8_t, LD_ID, ST_ID, U)                                      \
    X(A, ET_U16, U16, uint16_t, uint16_t, LD_ID, ST_ID, U)                                  \
    X(A, ET_U32, U32, uint32_t, uint32_t, LD_ID, ST_ID, U)                                  \
    X(A, ET_U64, U64, uint64_t, uint64_t, LD_ID, ST_ID, U)

#define ELT_UNSIGNED(X, A)                                                                  \
    X(A, ET_U8, U8, uint8_t, uint8_t, LD_ID, ST_ID, U)                                      \
    X(A, ET_U16, U16, uint16_t, uint16_t, LD_ID, ST_ID, U)                                  \
    X(A, ET_U32, U32, uint32_t, uint32_t, LD_ID, ST_ID, U)                                  \
    X(A, ET_U64, U64, uint64_t, uint64_t, LD_ID, ST_ID, U)

#define ELT_FLOATS(X, A)                                                                    \
    X(A, ET_F32, F32, float, float, LD_ID, ST_ID, F)                                        \
    X(A, ET_F64, F64, double, double, LD_ID, ST_ID, F)                                      \
    X(A, ET_F16, F16, uint16_t, float, core_f16_to_f32, core_f32_to_f16, F)                 \
    X(A, ET_BF16, BF16, uint16_t, float, core_bf16_to_f32, core_f32_to_bf16, F)

/* ---- Scalar semantics -------------------------------------------------------------------------------------------- */

/* Integer arithmetic goes through uint64_t so overflow wraps (two's complement) instead of being undefined. Division
 * and remainder by zero give 0, and INT_MIN / -1 wraps, rather than trapping: bad data must not crash. */
static inline int64_t elt_sdiv(int64_t a, int64_t b) {
    if (b == 0) return 0;
    if (b == -1) return (int64_t)(0 - (uint64_t)a);
    return a / b;
}
static inline uint64_t elt_udiv(uint64_t a, uint64_t b) { return b ? a / b : 0; }
static inline int64_t elt_srem(int64_t a, int64_t b) { return b == 0 || b == -1 ? 0 : a % b; }
static inline uint64_t elt_urem(uint64_t a, uint64_t b) { return b ? a % b : 0; }
/* Mod with fmod=0: the result takes the divisor's sign, as numpy.mod and Python's %. */
static inline int64_t elt_smod(int64_t a, int64_t b) {
    int64_t r = elt_srem(a, b);
    return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
}
static inline double elt_fmod_floor(double a, double b) {
    double r = fmod(a, b);
    return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
}

#define add_F(T, p, q) ((p) + (q))
#define add_S(T, p, q) ((T)((uint64_t)(p) + (uint64_t)(q)))
#define add_U add_S
#define sub_F(T, p, q) ((p) - (q))
#define sub_S(T, p, q) ((T)((uint64_t)(p) - (uint64_t)(q)))
#define sub_U sub_S
#define mul_F(T, p, q) ((p) * (q))
#define mul_S(T, p, q) ((T)((uint64_t)(p) * (uint64_t)(q)))
#define mul_U mul_S
#define div_F(T, p, q) ((p) / (q))
#define div_S(T, p, q) ((T)elt_sdiv((p), (q)))
#define div_U(T, p, q) ((T)elt_udiv((p), (q)))
/* NaN wins, as in numpy.minimum/maximum. */
#define min_F(T, p, q) ((p) < (q) || (p) != (p) ? (p) : (q))
#define min_S(T, p, q) ((p) < (q) ? (p) : (q))
#define min_U min_S
#define max_F(T, p, q) ((p) > (q) || (p) != (p) ? (p) : (q))
#define max_S(T, p, q) ((p) > (q) ? (p) : (q))
#define max_U max_S
#define mod_F(T, p, q) ((T)elt_fmod_floor((p), (q)))
#define mod_S(T, p, q) ((T)elt_smod((p), (q)))
#define mod_U(T, p, q) ((T)elt_urem((p), (q)))
#define fmod_F(T, p, q) ((T)fmod((p), (q)))
#define fmod_S(T, p, q) ((T)elt_srem((p), (q)))
#define fmod_U mod_U
#define prelu_F(T, p, q) ((p) < 0 ? (p) * (q) : (p))
#define prelu_S(T, p, q) ((p) < 0 ? mul_S(T, p, q) : (p))
#define prelu_U(T, p, q) ((void)(q), (p))
/* Shifting by the width or more gives 0 (undefined in C). */
#define shl_U(T, p, q) ((q) >= sizeof(T) * 8 ? (T)0 : (T)((uint64_t)(p) << (q)))
#define shr_U(T, p, q) ((q) >= sizeof(T) * 8 ? (T)0 : (T)((uint64_t)(p) >> (q)))
#define and_L(T, p, q) ((T)((p) & (q)))
#define or_L(T, p, q) ((T)((p) | (q)))
#define xor_L(T, p, q) ((T)((p) ^ (q)))

#define eq_C(p, q) ((p) == (q))
#define lt_C(p, q) ((p) < (q))
#define gt_C(p, q) ((p) > (q))
#define le_C(p, q) ((p) <= (q))
#define ge_C(p, q) ((p) >= (q))

#define neg_F(T, p) (-(p))
#define neg_S(T, p) ((T)(0 - (uint64_t)(p)))
#define neg_U neg_S
#define abs_F(T, p) ((T)fabs((double)(p)))
#define abs_S(T, p) ((p) < 0 ? neg_S(T, p) : (p))
#define abs_U(T, p) (p)
/* Sign keeps NaN and the sign of zero. */
#define sign_F(T, p) ((p) > 0 ? (T)1 : (p) < 0 ? (T)-1 : (p))
#define sign_S(T, p) ((T)(((p) > 0) - ((p) < 0)))
#define sign_U(T, p) ((T)((p) > 0))

/* ---- Broadcast walker -------------------------------------------------------------------------------------------- */

#define ELT_MAX_INPUTS 3

/* The output's index space with size-1 dims dropped and mergeable neighbours merged. strides are in elements of
 * each input; 0 where that input is broadcast. The innermost stride of every input is therefore 0 or 1. */
typedef struct elt_plan {
    int rank, n_in;
    int64_t numel;
    int64_t dims[TENSOR_MAX_RANK];
    int64_t strides[ELT_MAX_INPUTS][TENSOR_MAX_RANK];
} elt_plan;

/* mode has bit k set when input k stays on one element for the whole run. */
typedef void (*elt_span_fn)(const void *ctx, void *out, const void *const *in, size_t n, int mode);

typedef struct elt_job {
    elt_plan plan;
    elt_span_fn fn;
    const void *ctx;
    char *out;
    size_t out_size;
    const char *in[ELT_MAX_INPUTS];
    size_t in_size[ELT_MAX_INPUTS];
    int64_t chunk;
} elt_job;

/* Inputs must broadcast to out (checked by infer). */
static void elt_plan_build(elt_plan *p, const tensor *out, const tensor *const *in, int n_in) {
    int64_t dims[TENSOR_MAX_RANK], strides[ELT_MAX_INPUTS][TENSOR_MAX_RANK];
    int rank = out->rank;
    p->n_in = n_in;
    p->numel = tensor_numel(out);
    for (int k = 0; k < n_in; k++) {
        int64_t s = 1;
        for (int i = rank - 1; i >= 0; i--) {
            int j = i - (rank - in[k]->rank);
            int64_t d = j >= 0 ? in[k]->dims[j] : 1;
            strides[k][i] = d == 1 ? 0 : s;
            s *= d;
        }
    }
    for (int i = 0; i < rank; i++) dims[i] = out->dims[i];
    int r = 0;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 1) continue;
        int merge = r > 0;
        for (int k = 0; merge && k < n_in; k++)
            if (p->strides[k][r - 1] != strides[k][i] * dims[i]) merge = 0;
        if (merge) {
            p->dims[r - 1] *= dims[i];
            for (int k = 0; k < n_in; k++) p->strides[k][r - 1] = strides[k][i];
        } else {
            p->dims[r] = dims[i];
            for (int k = 0; k < n_in; k++) p->strides[k][r] = strides[k][i];
            r++;
        }
    }
    if (r == 0) {
        p->dims[0] = 1;
        for (int k = 0; k < n_in; k++) p->strides[k][0] = 0;
        r = 1;
    }
    p->rank = r;
}

static void elt_walk(const elt_job *job, int64_t start, int64_t end) {
    const elt_plan *p = &job->plan;
    int rank = p->rank, n_in = p->n_in, last = rank - 1;
    int64_t idx[TENSOR_MAX_RANK], off[ELT_MAX_INPUTS] = {0};
    int64_t rem = start;
    for (int i = last; i >= 0; i--) {
        idx[i] = rem % p->dims[i];
        rem /= p->dims[i];
        for (int k = 0; k < n_in; k++) off[k] += idx[i] * p->strides[k][i];
    }
    int mode = 0;
    for (int k = 0; k < n_in; k++)
        if (p->strides[k][last] == 0) mode |= 1 << k;
    for (int64_t pos = start; pos < end;) {
        int64_t n = p->dims[last] - idx[last];
        if (n > end - pos) n = end - pos;
        const void *ptr[ELT_MAX_INPUTS];
        for (int k = 0; k < n_in; k++) ptr[k] = job->in[k] + (size_t)off[k] * job->in_size[k];
        job->fn(job->ctx, job->out + (size_t)pos * job->out_size, ptr, (size_t)n, mode);
        pos += n;
        idx[last] += n;
        for (int k = 0; k < n_in; k++) off[k] += n * p->strides[k][last];
        for (int i = last; i > 0 && idx[i] == p->dims[i]; i--) {
            idx[i] = 0;
            idx[i - 1]++;
            for (int k = 0; k < n_in; k++) off[k] += p->strides[k][i - 1] - p->dims[i] * p->strides[k][i];
        }
    }
}

static void elt_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const elt_job *job = ctx;
    int64_t start = task * job->chunk, end = start + job->chunk;
    elt_walk(job, start, end < job->plan.numel ? end : job->plan.numel);
}

/* Below this many elements a single thread wins: the data fits in cache and waking workers costs more. At 32K
 * elements two threads already win when the operand was just written by a threaded layer (half of it sits in the
 * other core's cache): EfficientNet-B0's 1152 x 7 x 7 squeeze-excitation Muls take 0.014 ms instead of 0.020 at 2
 * threads, ConvNeXt's 768 x 7 x 7 residual Adds no worse. */
#define ELT_PARALLEL_MIN 32768
#define ELT_CHUNK_MIN 16384

/* Runs fn over out = f(in...) with broadcasting. */
static void elt_run(core_pool *pool, elt_span_fn fn, const void *ctx, tensor *out, const tensor *const *in,
                    int n_in) {
    elt_job job;
    elt_plan_build(&job.plan, out, in, n_in);
    if (job.plan.numel <= 0) return;
    job.fn = fn;
    job.ctx = ctx;
    job.out = out->data;
    job.out_size = dtype_size(out->dtype);
    for (int k = 0; k < n_in; k++) {
        job.in[k] = in[k]->data;
        job.in_size[k] = dtype_size(in[k]->dtype);
    }
    int threads = core_pool_size(pool);
    int64_t numel = job.plan.numel;
    if (threads == 1 || numel < ELT_PARALLEL_MIN) {
        elt_walk(&job, 0, numel);
        return;
    }
    int64_t chunk = (numel + threads * 4 - 1) / (threads * 4);
    if (chunk < ELT_CHUNK_MIN) chunk = ELT_CHUNK_MIN;
    chunk = (chunk + 63) & ~(int64_t)63;
    job.chunk = chunk;
    core_pool_run(pool, (numel + chunk - 1) / chunk, elt_task, &job);
}

/* ---- Binary kernels ---------------------------------------------------------------------------------------------- */

enum { ELT_VV = 0, ELT_SV = 1, ELT_VS = 2, ELT_SS = 3 }; /* S: that operand is one element for the run */

typedef void (*elt_bin_fn)(void *out, const void *a, const void *b, size_t n, int mode);

/* The hot loops: out and a may be the same buffer (variadic folding), so no restrict. */
#define ELT_BIN_KERNEL(OP, TI, NAME, ST, CT, LD, STO, KIND)                                          \
    static void bin_##OP##_##NAME(void *out_, const void *a_, const void *b_, size_t n, int mode) {   \
        ST *out = out_;                                                                               \
        const ST *a = a_, *b = b_;                                                                    \
        switch (mode) {                                                                               \
        case ELT_VV:                                                                                  \
            for (size_t i = 0; i < n; i++) {                                                          \
                CT p = LD(a[i]), q = LD(b[i]);                                                        \
                out[i] = STO(OP##_##KIND(CT, p, q));                                                  \
            }                                                                                         \
            break;                                                                                    \
        case ELT_VS: {                                                                                \
            CT q = LD(b[0]);                                                                          \
            for (size_t i = 0; i < n; i++) {                                                          \
                CT p = LD(a[i]);                                                                      \
                out[i] = STO(OP##_##KIND(CT, p, q));                                                  \
            }                                                                                         \
            break;                                                                                    \
        }                                                                                             \
        case ELT_SV: {                                                                                \
            CT p = LD(a[0]);                                                                          \
            for (size_t i = 0; i < n; i++) {                                                          \
                CT q = LD(b[i]);                                                                      \
                out[i] = STO(OP##_##KIND(CT, p, q));                                                  \
            }                                                                                         \
            break;                                                                                    \
        }                                                                                             \
        default: {                                                                                    \
            CT p = LD(a[0]), q = LD(b[0]);                                                            \
            ST v = STO(OP##_##KIND(CT, p, q));                                                        \
            for (size_t i = 0; i < n; i++) out[i] = v;                                                \
        }                                                                                             \
        }                                                                                             \
    }

#define ELT_CMP_KERNEL(OP, TI, NAME, ST, CT, LD, STO, KIND)                                          \
    static void cmp_##OP##_##NAME(void *out_, const void *a_, const void *b_, size_t n, int mode) {   \
        uint8_t *out = out_;                                                                          \
        const ST *a = a_, *b = b_;                                                                    \
        size_t sa = !(mode & ELT_SV), sb = !(mode & ELT_VS);                                          \
        if (mode == ELT_VV) {                                                                         \
            for (size_t i = 0; i < n; i++) {                                                          \
                CT p = LD(a[i]), q = LD(b[i]);                                                        \
                out[i] = (uint8_t)OP##_C(p, q);                                                       \
            }                                                                                         \
        } else {                                                                                      \
            for (size_t i = 0; i < n; i++) {                                                          \
                CT p = LD(a[i * sa]), q = LD(b[i * sb]);                                              \
                out[i] = (uint8_t)OP##_C(p, q);                                                       \
            }                                                                                         \
        }                                                                                             \
    }

/* Float32 Add, Sub, Mul, Div (residual adds, attention scaling, normalisation) with GCC/Clang vector extensions on
 * four floats: they vectorise at any optimisation level. Loads and stores go through memcpy (no alignment assumed);
 * each vector is loaded before it is stored, so out may be a. */
typedef float elt_v4f __attribute__((vector_size(16)));

#define ELT_V4_KERNEL(OP, SYM)                                                                       \
    static void bin_##OP##_F32(void *out_, const void *a_, const void *b_, size_t n, int mode) {      \
        float *out = out_;                                                                            \
        const float *a = a_, *b = b_;                                                                 \
        size_t i = 0;                                                                                 \
        elt_v4f u, v;                                                                                 \
        switch (mode) {                                                                               \
        case ELT_VV:                                                                                  \
            for (; i + 4 <= n; i += 4) {                                                              \
                memcpy(&u, a + i, sizeof u);                                                          \
                memcpy(&v, b + i, sizeof v);                                                          \
                u = u SYM v;                                                                          \
                memcpy(out + i, &u, sizeof u);                                                        \
            }                                                                                         \
            for (; i < n; i++) out[i] = a[i] SYM b[i];                                                \
            break;                                                                                    \
        case ELT_VS: {                                                                                \
            float q = b[0];                                                                           \
            v = (elt_v4f){q, q, q, q};                                                                \
            for (; i + 4 <= n; i += 4) {                                                              \
                memcpy(&u, a + i, sizeof u);                                                          \
                u = u SYM v;                                                                          \
                memcpy(out + i, &u, sizeof u);                                                        \
            }                                                                                         \
            for (; i < n; i++) out[i] = a[i] SYM q;                                                   \
            break;                                                                                    \
        }                                                                                             \
        case ELT_SV: {                                                                                \
            float p = a[0];                                                                           \
            u = (elt_v4f){p, p, p, p};                                                                \
            for (; i + 4 <= n; i += 4) {                                                              \
                memcpy(&v, b + i, sizeof v);                                                          \
                v = u SYM v;                                                                          \
                memcpy(out + i, &v, sizeof v);                                                        \
            }                                                                                         \
            for (; i < n; i++) out[i] = p SYM b[i];                                                   \
            break;                                                                                    \
        }                                                                                             \
        default: {                                                                                    \
            float r = a[0] SYM b[0];                                                                  \
            for (; i < n; i++) out[i] = r;                                                            \
        }                                                                                             \
        }                                                                                             \
    }
ELT_V4_KERNEL(add, +)
ELT_V4_KERNEL(sub, -)
ELT_V4_KERNEL(mul, *)
ELT_V4_KERNEL(div, /)

ELT_NUMERIC_BUT_F32(ELT_BIN_KERNEL, add)
ELT_NUMERIC_BUT_F32(ELT_BIN_KERNEL, sub)
ELT_NUMERIC_BUT_F32(ELT_BIN_KERNEL, mul)
ELT_NUMERIC_BUT_F32(ELT_BIN_KERNEL, div)
ELT_NUMERIC(ELT_BIN_KERNEL, min)
ELT_NUMERIC(ELT_BIN_KERNEL, max)
ELT_NUMERIC(ELT_BIN_KERNEL, mod)
ELT_NUMERIC(ELT_BIN_KERNEL, fmod)
ELT_NUMERIC(ELT_BIN_KERNEL, prelu)
ELT_UNSIGNED(ELT_BIN_KERNEL, shl)
ELT_UNSIGNED(ELT_BIN_KERNEL, shr)
ELT_NUMERIC(ELT_CMP_KERNEL, eq)
ELT_NUMERIC(ELT_CMP_KERNEL, lt)
ELT_NUMERIC(ELT_CMP_KERNEL, gt)
ELT_NUMERIC(ELT_CMP_KERNEL, le)
ELT_NUMERIC(ELT_CMP_KERNEL, ge)
ELT_CMP_KERNEL(eq, ET_BOOL, BOOL, uint8_t, uint8_t, LD_BOOL, ST_ID, L)
ELT_BIN_KERNEL(and, ET_BOOL, BOOL, uint8_t, uint8_t, LD_BOOL, ST_ID, L)
ELT_BIN_KERNEL(or, ET_BOOL, BOOL, uint8_t, uint8_t, LD_BOOL, ST_ID, L)
ELT_BIN_KERNEL(xor, ET_BOOL, BOOL, uint8_t, uint8_t, LD_BOOL, ST_ID, L)

typedef enum elt_binop {
    BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_MIN, BIN_MAX, BIN_MOD, BIN_FMOD, BIN_PRELU, BIN_SHL, BIN_SHR,
    BIN_EQ, BIN_LT, BIN_GT, BIN_LE, BIN_GE, /* comparisons: bool output */
    BIN_AND, BIN_OR, BIN_XOR,               /* logic: bool in, bool out */
    BIN_COUNT
} elt_binop;

#define ELT_BIN_ENTRY(OP, TI, NAME, ...) [TI] = bin_##OP##_##NAME,
#define ELT_CMP_ENTRY(OP, TI, NAME, ...) [TI] = cmp_##OP##_##NAME,

static const elt_bin_fn elt_bin_table[BIN_COUNT][ET_COUNT] = {
    [BIN_ADD] = {ELT_NUMERIC(ELT_BIN_ENTRY, add)},
    [BIN_SUB] = {ELT_NUMERIC(ELT_BIN_ENTRY, sub)},
    [BIN_MUL] = {ELT_NUMERIC(ELT_BIN_ENTRY, mul)},
    [BIN_DIV] = {ELT_NUMERIC(ELT_BIN_ENTRY, div)},
    [BIN_MIN] = {ELT_NUMERIC(ELT_BIN_ENTRY, min)},
    [BIN_MAX] = {ELT_NUMERIC(ELT_BIN_ENTRY, max)},
    [BIN_MOD] = {ELT_NUMERIC(ELT_BIN_ENTRY, mod)},
    [BIN_FMOD] = {ELT_NUMERIC(ELT_BIN_ENTRY, fmod)},
    [BIN_PRELU] = {ELT_NUMERIC(ELT_BIN_ENTRY, prelu)},
    [BIN_SHL] = {ELT_UNSIGNED(ELT_BIN_ENTRY, shl)},
    [BIN_SHR] = {ELT_UNSIGNED(ELT_BIN_ENTRY, shr)},
    [BIN_EQ] = {ELT_NUMERIC(ELT_CMP_ENTRY, eq)[ET_BOOL] = cmp_eq_BOOL},
    [BIN_LT] = {ELT_NUMERIC(ELT_CMP_ENTRY, lt)},
    [BIN_GT] = {ELT_NUMERIC(ELT_CMP_ENTRY, gt)},
    [BIN_LE] = {ELT_NUMERIC(ELT_CMP_ENTRY, le)},
    [BIN_GE] = {ELT_NUMERIC(ELT_CMP_ENTRY, ge)},
    [BIN_AND] = {[ET_BOOL] = bin_and_BOOL},
    [BIN_OR] = {[ET_BOOL] = bin_or_BOOL},
    [BIN_XOR] = {[ET_BOOL] = bin_xor_BOOL},
};

typedef struct elt_bin_ctx {
    elt_bin_fn fn;
} elt_bin_ctx;

static void span_binary(const void *ctx, void *out, const void *const *in, size_t n, int mode) {
    ((const elt_bin_ctx *)ctx)->fn(out, in[0], in[1], n, mode);
}

/* ---- Shared checks ----------------------------------------------------------------------------------------------- */

static lens_status elt_check_io(const op_call *call, int min_in, int max_in) {
    if (call->n_inputs < min_in || call->n_inputs > max_in || call->n_outputs < 1 || !call->outputs[0])
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s expects %d to %d inputs and one output, got %d inputs",
                         call->node->op_type, min_in, max_in, call->n_inputs);
    for (int i = 0; i < call->n_inputs; i++)
        if (!call->inputs[i])
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: input %d is missing", call->node->op_type, i);
    return LENS_OK;
}

static lens_status elt_bad_dtype(const op_call *call, lens_dtype dtype) {
    return core_fail(LENS_ERR_UNSUPPORTED, "%s does not support dtype %s", call->node->op_type, dtype_name(dtype));
}

static lens_status elt_same_dtype(const op_call *call, const tensor *a, const tensor *b) {
    if (a->dtype == b->dtype) return LENS_OK;
    return core_fail(LENS_ERR_UNSUPPORTED, "%s: input dtypes %s and %s differ", call->node->op_type,
                     dtype_name(a->dtype), dtype_name(b->dtype));
}

/* Opset < 7 binary ops broadcast by an explicit axis attribute, which numpy rules do not express. */
static lens_status elt_check_legacy(const op_call *call) {
    if (call->node->opset < 7 && op_attr_find(call->node, "axis"))
        return core_fail(LENS_ERR_UNSUPPORTED,
                         "%s: legacy broadcast with an axis attribute (opset %d) is not supported",
                         call->node->op_type, call->node->opset);
    return LENS_OK;
}

/* ---- Binary ops -------------------------------------------------------------------------------------------------- */

static lens_status elt_binary_infer(op_call *call, elt_binop op) {
    lens_status st = elt_check_io(call, 2, 2);
    if (st) return st;
    if ((st = elt_check_legacy(call))) return st;
    const tensor *a = call->inputs[0], *b = call->inputs[1];
    if ((st = elt_same_dtype(call, a, b))) return st;
    int t = elt_type_of(a->dtype);
    if (t < 0 || !elt_bin_table[op][t]) return elt_bad_dtype(call, a->dtype);
    tensor *out = call->outputs[0];
    if ((st = ops_broadcast_shape(a, b, out))) return st;
    out->dtype = op >= BIN_EQ ? LENS_DTYPE_BOOL : a->dtype;
    return LENS_OK;
}

static lens_status elt_binary_run(op_call *call, elt_binop op) {
    const tensor *a = call->inputs[0];
    int t = elt_type_of(a->dtype);
    if (t < 0 || !elt_bin_table[op][t]) return elt_bad_dtype(call, a->dtype);
    elt_bin_ctx ctx = {elt_bin_table[op][t]};
    elt_run(call->pool, span_binary, &ctx, call->outputs[0], call->inputs, 2);
    return LENS_OK;
}

#define ELT_BINARY_OP(NAME, OP)                                                                      \
    static lens_status infer_##NAME(op_call *call) { return elt_binary_infer(call, OP); }            \
    static lens_status run_##NAME(op_call *call) { return elt_binary_run(call, OP); }

ELT_BINARY_OP(Add, BIN_ADD)
ELT_BINARY_OP(Sub, BIN_SUB)
ELT_BINARY_OP(Mul, BIN_MUL)
ELT_BINARY_OP(Div, BIN_DIV)
ELT_BINARY_OP(Equal, BIN_EQ)
ELT_BINARY_OP(Less, BIN_LT)
ELT_BINARY_OP(Greater, BIN_GT)
ELT_BINARY_OP(LessOrEqual, BIN_LE)
ELT_BINARY_OP(GreaterOrEqual, BIN_GE)
ELT_BINARY_OP(And, BIN_AND)
ELT_BINARY_OP(Or, BIN_OR)
ELT_BINARY_OP(Xor, BIN_XOR)

static elt_binop elt_mod_op(const op_call *call) {
    return op_attr_int(call->node, "fmod", 0) ? BIN_FMOD : BIN_MOD;
}
static lens_status infer_Mod(op_call *call) { return elt_binary_infer(call, elt_mod_op(call)); }
static lens_status run_Mod(op_call *call) { return elt_binary_run(call, elt_mod_op(call)); }

/* BitShift: direction is "LEFT" or "RIGHT". */
static lens_status elt_shift_op(const op_call *call, elt_binop *op) {
    const char *dir = op_attr_string(call->node, "direction", "");
    if (strcmp(dir, "LEFT") && strcmp(dir, "RIGHT"))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "BitShift: direction \"%s\" is neither LEFT nor RIGHT", dir);
    *op = strcmp(dir, "LEFT") ? BIN_SHR : BIN_SHL;
    return LENS_OK;
}
static lens_status infer_BitShift(op_call *call) {
    elt_binop op;
    lens_status st = elt_shift_op(call, &op);
    return st ? st : elt_binary_infer(call, op);
}
static lens_status run_BitShift(op_call *call) {
    elt_binop op;
    lens_status st = elt_shift_op(call, &op);
    return st ? st : elt_binary_run(call, op);
}

/* PRelu: slope broadcasts to X, never the other way. */
static lens_status infer_PRelu(op_call *call) {
    lens_status st = elt_binary_infer(call, BIN_PRELU);
    if (st) return st;
    if (!tensor_same_shape(call->outputs[0], call->inputs[0])) {
        char sx[128], ss[128];
        return core_fail(LENS_ERR_SHAPE, "PRelu: slope %s does not broadcast to X %s",
                         tensor_shape_string(call->inputs[1], ss, sizeof ss),
                         tensor_shape_string(call->inputs[0], sx, sizeof sx));
    }
    return LENS_OK;
}
static lens_status run_PRelu(op_call *call) { return elt_binary_run(call, BIN_PRELU); }

/* ---- Pow --------------------------------------------------------------------------------------------------------- */

/* Reads element i of a numeric buffer as double. */
static double elt_load_double(int type, const void *p, size_t i) {
    switch (type) {
    case ET_F32: return ((const float *)p)[i];
    case ET_F64: return ((const double *)p)[i];
    case ET_F16: return core_f16_to_f32(((const uint16_t *)p)[i]);
    case ET_BF16: return core_bf16_to_f32(((const uint16_t *)p)[i]);
    case ET_I8: return ((const int8_t *)p)[i];
    case ET_I16: return ((const int16_t *)p)[i];
    case ET_I32: return ((const int32_t *)p)[i];
    case ET_I64: return (double)((const int64_t *)p)[i];
    case ET_U8: return ((const uint8_t *)p)[i];
    case ET_U16: return ((const uint16_t *)p)[i];
    case ET_U32: return ((const uint32_t *)p)[i];
    case ET_U64: return (double)((const uint64_t *)p)[i];
    default: return 0;
    }
}

/* Truncates toward zero and saturates (NaN gives 0): out-of-range float-to-int conversion is undefined in C. */
static int64_t elt_double_to_i64(double v, double lo, double hi) {
    if (!(v == v)) return 0;
    if (v <= lo) return (int64_t)lo;
    if (v >= hi) return (int64_t)hi;
    return (int64_t)v;
}

static void elt_store_double(int type, void *p, size_t i, double v) {
    switch (type) {
    case ET_F32: ((float *)p)[i] = (float)v; break;
    case ET_F64: ((double *)p)[i] = v; break;
    case ET_F16: ((uint16_t *)p)[i] = core_f32_to_f16((float)v); break;
    case ET_BF16: ((uint16_t *)p)[i] = core_f32_to_bf16((float)v); break;
    case ET_I8: ((int8_t *)p)[i] = (int8_t)elt_double_to_i64(v, INT8_MIN, INT8_MAX); break;
    case ET_I16: ((int16_t *)p)[i] = (int16_t)elt_double_to_i64(v, INT16_MIN, INT16_MAX); break;
    case ET_I32: ((int32_t *)p)[i] = (int32_t)elt_double_to_i64(v, INT32_MIN, INT32_MAX); break;
    case ET_I64:
        /* 2^63 is the first double above INT64_MAX. */
        ((int64_t *)p)[i] = !(v == v)                        ? 0
                            : v >= 9223372036854775808.0  ? INT64_MAX
                            : v <= -9223372036854775808.0 ? INT64_MIN
                                                          : (int64_t)v;
        break;
    case ET_U8: ((uint8_t *)p)[i] = (uint8_t)elt_double_to_i64(v, 0, UINT8_MAX); break;
    case ET_U16: ((uint16_t *)p)[i] = (uint16_t)elt_double_to_i64(v, 0, UINT16_MAX); break;
    case ET_U32: ((uint32_t *)p)[i] = (uint32_t)elt_double_to_i64(v, 0, UINT32_MAX); break;
    case ET_U64: ((uint64_t *)p)[i] = !(v > 0) ? 0 : v >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)v; break;
    default: break;
    }
}

static void span_pow_f32(const void *ctx, void *out_, const void *const *in, size_t n, int mode) {
    (void)ctx;
    float *out = out_;
    const float *a = in[0], *b = in[1];
    if (mode == ELT_VS) {
        float e = b[0];
        if (e == 2.0f) { /* x*x is what powf returns, exactly */
            for (size_t i = 0; i < n; i++) out[i] = a[i] * a[i];
        } else if (e == 1.0f) {
            for (size_t i = 0; i < n; i++) out[i] = a[i];
        } else {
            for (size_t i = 0; i < n; i++) out[i] = powf(a[i], e);
        }
        return;
    }
    size_t sa = !(mode & ELT_SV), sb = !(mode & ELT_VS);
    for (size_t i = 0; i < n; i++) out[i] = powf(a[i * sa], b[i * sb]);
}

typedef struct elt_pow_ctx {
    int base_type, exp_type;
} elt_pow_ctx;

/* Mixed or integer types: computed in double and converted to the base's type (truncating), as ONNX Runtime does. */
static void span_pow_generic(const void *ctx_, void *out, const void *const *in, size_t n, int mode) {
    const elt_pow_ctx *ctx = ctx_;
    size_t sa = !(mode & ELT_SV), sb = !(mode & ELT_VS);
    for (size_t i = 0; i < n; i++) {
        double x = elt_load_double(ctx->base_type, in[0], i * sa), e = elt_load_double(ctx->exp_type, in[1], i * sb);
        elt_store_double(ctx->base_type, out, i, pow(x, e));
    }
}

static lens_status infer_Pow(op_call *call) {
    lens_status st = elt_check_io(call, 2, 2);
    if (st) return st;
    if ((st = elt_check_legacy(call))) return st;
    const tensor *a = call->inputs[0], *b = call->inputs[1];
    int ta = elt_type_of(a->dtype), tb = elt_type_of(b->dtype);
    if (ta < 0 || ta == ET_BOOL) return elt_bad_dtype(call, a->dtype);
    if (tb < 0 || tb == ET_BOOL) return elt_bad_dtype(call, b->dtype);
    tensor *out = call->outputs[0];
    if ((st = ops_broadcast_shape(a, b, out))) return st;
    out->dtype = a->dtype;
    return LENS_OK;
}

static lens_status run_Pow(op_call *call) {
    const tensor *a = call->inputs[0], *b = call->inputs[1];
    elt_pow_ctx ctx = {elt_type_of(a->dtype), elt_type_of(b->dtype)};
    elt_run(call->pool, ctx.base_type == ET_F32 && ctx.exp_type == ET_F32 ? span_pow_f32 : span_pow_generic, &ctx,
            call->outputs[0], call->inputs, 2);
    return LENS_OK;
}

/* ---- Variadic Sum, Mean, Min, Max -------------------------------------------------------------------------------- */

static void span_copy(const void *ctx, void *out, const void *const *in, size_t n, int mode) {
    size_t size = *(const size_t *)ctx;
    if (mode & 1) {
        for (size_t i = 0; i < n; i++) memcpy((char *)out + i * size, in[0], size);
    } else {
        memcpy(out, in[0], n * size);
    }
}

#define ELT_MEAN_KERNEL(A, TI, NAME, ST, CT, LD, STO, KIND)                                          \
    static void mean_div_##NAME(void *data, size_t n, CT count) {                                     \
        ST *x = data;                                                                                 \
        for (size_t i = 0; i < n; i++) x[i] = STO(LD(x[i]) / count);                                  \
    }
ELT_FLOATS(ELT_MEAN_KERNEL, 0)

static elt_binop elt_variadic_op(const op_call *call) {
    const char *t = call->node->op_type;
    return !strcmp(t, "Min") ? BIN_MIN : !strcmp(t, "Max") ? BIN_MAX : BIN_ADD;
}

static lens_status infer_variadic(op_call *call) {
    lens_status st = elt_check_io(call, 1, 1 << 20);
    if (st) return st;
    const tensor *first = call->inputs[0];
    int t = elt_type_of(first->dtype);
    elt_binop op = elt_variadic_op(call);
    int is_mean = !strcmp(call->node->op_type, "Mean");
    if (t < 0 || !elt_bin_table[op][t] || (is_mean && t > ET_BF16)) return elt_bad_dtype(call, first->dtype);
    tensor shape = *first;
    for (int i = 1; i < call->n_inputs; i++) {
        tensor next = {0};
        if ((st = elt_same_dtype(call, first, call->inputs[i]))) return st;
        if ((st = ops_broadcast_shape(&shape, call->inputs[i], &next))) return st;
        shape.rank = next.rank;
        memcpy(shape.dims, next.dims, sizeof shape.dims);
    }
    ops_set_shape(call->outputs[0], first->dtype, shape.rank, shape.dims);
    return LENS_OK;
}

static lens_status run_variadic(op_call *call) {
    tensor *out = call->outputs[0];
    int t = elt_type_of(out->dtype);
    elt_binop op = elt_variadic_op(call);
    if (t < 0 || !elt_bin_table[op][t]) return elt_bad_dtype(call, out->dtype);
    if (call->n_inputs == 1) {
        size_t size = dtype_size(out->dtype);
        elt_run(call->pool, span_copy, &size, out, call->inputs, 1);
    } else {
        /* Fold into out: out = in0 op in1, then out = out op in_k. out always has the full shape, so reading and
         * writing it in the same pass is element for element. */
        elt_bin_ctx ctx = {elt_bin_table[op][t]};
        elt_run(call->pool, span_binary, &ctx, out, call->inputs, 2);
        for (int i = 2; i < call->n_inputs; i++) {
            const tensor *pair[2] = {out, call->inputs[i]};
            elt_run(call->pool, span_binary, &ctx, out, pair, 2);
        }
    }
    if (!strcmp(call->node->op_type, "Mean") && call->n_inputs > 1) {
        size_t n = (size_t)tensor_numel(out);
        switch (t) {
        case ET_F32: mean_div_F32(out->data, n, (float)call->n_inputs); break;
        case ET_F64: mean_div_F64(out->data, n, (double)call->n_inputs); break;
        case ET_F16: mean_div_F16(out->data, n, (float)call->n_inputs); break;
        case ET_BF16: mean_div_BF16(out->data, n, (float)call->n_inputs); break;
        default: return elt_bad_dtype(call, out->dtype);
        }
    }
    return LENS_OK;
}

/* ---- Where ------------------------------------------------------------------------------------------------------- */

#define ELT_WHERE_KERNEL(A, TI, NAME, ST, ...)                                                       \
    static void where_##NAME(const void *ctx, void *out_, const void *const *in, size_t n, int mode) { \
        (void)ctx;                                                                                    \
        ST *out = out_;                                                                               \
        const uint8_t *c = in[0];                                                                     \
        const ST *x = in[1], *y = in[2];                                                              \
        if (mode == 0) {                                                                              \
            for (size_t i = 0; i < n; i++) out[i] = c[i] ? x[i] : y[i];                               \
        } else {                                                                                      \
            size_t sc = !(mode & 1), sx = !(mode & 2), sy = !(mode & 4);                              \
            for (size_t i = 0; i < n; i++) out[i] = c[i * sc] ? x[i * sx] : y[i * sy];                \
        }                                                                                             \
    }
ELT_NUMERIC(ELT_WHERE_KERNEL, 0)
ELT_WHERE_KERNEL(0, ET_BOOL, BOOL, uint8_t, uint8_t)

#define ELT_SPAN_ENTRY(PREFIX, TI, NAME, ...) [TI] = PREFIX##_##NAME,
static const elt_span_fn elt_where_table[ET_COUNT] = {ELT_NUMERIC(ELT_SPAN_ENTRY, where)[ET_BOOL] = where_BOOL};

static lens_status infer_Where(op_call *call) {
    lens_status st = elt_check_io(call, 3, 3);
    if (st) return st;
    const tensor *c = call->inputs[0], *x = call->inputs[1], *y = call->inputs[2];
    if (c->dtype != LENS_DTYPE_BOOL)
        return core_fail(LENS_ERR_UNSUPPORTED, "Where: condition must be bool, not %s", dtype_name(c->dtype));
    if ((st = elt_same_dtype(call, x, y))) return st;
    if (elt_type_of(x->dtype) < 0) return elt_bad_dtype(call, x->dtype);
    tensor xy = {0}, *out = call->outputs[0];
    if ((st = ops_broadcast_shape(x, y, &xy))) return st;
    if ((st = ops_broadcast_shape(c, &xy, out))) return st;
    out->dtype = x->dtype;
    return LENS_OK;
}

static lens_status run_Where(op_call *call) {
    int t = elt_type_of(call->inputs[1]->dtype);
    if (t < 0) return elt_bad_dtype(call, call->inputs[1]->dtype);
    elt_run(call->pool, elt_where_table[t], NULL, call->outputs[0], call->inputs, 3);
    return LENS_OK;
}

/* ---- Unary ops --------------------------------------------------------------------------------------------------- */

#define ELT_UNARY_F32(NAME, EXPR)                                                                    \
    static void un_##NAME(const void *ctx, void *out_, const void *const *in, size_t n, int mode) {   \
        (void)ctx;                                                                                    \
        (void)mode;                                                                                   \
        float *out = out_;                                                                            \
        const float *x = in[0];                                                                       \
        for (size_t i = 0; i < n; i++) {                                                              \
            float v = x[i];                                                                           \
            out[i] = (EXPR);                                                                          \
        }                                                                                             \
    }                                                                                                 \
    static lens_status run_##NAME(op_call *call) {                                                    \
        elt_run(call->pool, un_##NAME, NULL, call->outputs[0], call->inputs, 1);                      \
        return LENS_OK;                                                                               \
    }

ELT_UNARY_F32(Sqrt, sqrtf(v))
ELT_UNARY_F32(Reciprocal, 1.0f / v)
/* Exp runs the kernel layer's vector exp (kernels.h states its error bound). */
static void un_Exp(const void *ctx, void *out, const void *const *in, size_t n, int mode) {
    (void)ctx;
    const kern_activation exp_act = {KERN_ACT_EXP, 0, 0};
    if (!(mode & 1)) {
        kern_activation_map(&exp_act, in[0], out, n);
        return;
    }
    float v; /* the input stays on one element */
    kern_activation_map(&exp_act, in[0], &v, 1);
    for (size_t i = 0; i < n; i++) ((float *)out)[i] = v;
}
static lens_status run_Exp(op_call *call) {
    elt_run(call->pool, un_Exp, NULL, call->outputs[0], call->inputs, 1);
    return LENS_OK;
}
ELT_UNARY_F32(Log, logf(v))
ELT_UNARY_F32(Floor, floorf(v))
ELT_UNARY_F32(Ceil, ceilf(v))
ELT_UNARY_F32(Round, nearbyintf(v)) /* half to even under the default rounding mode */
ELT_UNARY_F32(Sin, sinf(v))
ELT_UNARY_F32(Cos, cosf(v))
ELT_UNARY_F32(Tan, tanf(v))
ELT_UNARY_F32(Asin, asinf(v))
ELT_UNARY_F32(Acos, acosf(v))
ELT_UNARY_F32(Atan, atanf(v))
ELT_UNARY_F32(Sinh, sinhf(v))
ELT_UNARY_F32(Cosh, coshf(v))
ELT_UNARY_F32(Asinh, asinhf(v))
ELT_UNARY_F32(Acosh, acoshf(v))
ELT_UNARY_F32(Atanh, atanhf(v))

static lens_status infer_unary_f32(op_call *call) {
    lens_status st = elt_check_io(call, 1, 1);
    if (st) return st;
    const tensor *x = call->inputs[0];
    if (x->dtype != LENS_DTYPE_FLOAT32) return elt_bad_dtype(call, x->dtype);
    ops_set_shape(call->outputs[0], x->dtype, x->rank, x->dims);
    return LENS_OK;
}

#define ELT_UN_KERNEL(OP, TI, NAME, ST, CT, LD, STO, KIND)                                           \
    static void un_##OP##_##NAME(const void *ctx, void *out_, const void *const *in, size_t n, int mode) { \
        (void)ctx;                                                                                    \
        (void)mode;                                                                                   \
        ST *out = out_;                                                                               \
        const ST *x = in[0];                                                                          \
        for (size_t i = 0; i < n; i++) {                                                              \
            CT p = LD(x[i]);                                                                          \
            out[i] = STO(OP##_##KIND(CT, p));                                                         \
        }                                                                                             \
    }
ELT_NUMERIC(ELT_UN_KERNEL, neg)
ELT_NUMERIC(ELT_UN_KERNEL, abs)
ELT_NUMERIC(ELT_UN_KERNEL, sign)

#define ELT_UN_ENTRY(OP, TI, NAME, ...) [TI] = un_##OP##_##NAME,
enum { UN_NEG, UN_ABS, UN_SIGN, UN_COUNT };
static const elt_span_fn elt_un_table[UN_COUNT][ET_COUNT] = {
    [UN_NEG] = {ELT_NUMERIC(ELT_UN_ENTRY, neg)},
    [UN_ABS] = {ELT_NUMERIC(ELT_UN_ENTRY, abs)},
    [UN_SIGN] = {ELT_NUMERIC(ELT_UN_ENTRY, sign)},
};

static int elt_unary_op(const op_call *call) {
    const char *t = call->node->op_type;
    return !strcmp(t, "Neg") ? UN_NEG : !strcmp(t, "Abs") ? UN_ABS : UN_SIGN;
}

static lens_status infer_unary_numeric(op_call *call) {
    lens_status st = elt_check_io(call, 1, 1);
    if (st) return st;
    const tensor *x = call->inputs[0];
    int t = elt_type_of(x->dtype);
    if (t < 0 || !elt_un_table[elt_unary_op(call)][t]) return elt_bad_dtype(call, x->dtype);
    ops_set_shape(call->outputs[0], x->dtype, x->rank, x->dims);
    return LENS_OK;
}

static lens_status run_unary_numeric(op_call *call) {
    int t = elt_type_of(call->inputs[0]->dtype);
    elt_span_fn fn = t < 0 ? NULL : elt_un_table[elt_unary_op(call)][t];
    if (!fn) return elt_bad_dtype(call, call->inputs[0]->dtype);
    elt_run(call->pool, fn, NULL, call->outputs[0], call->inputs, 1);
    return LENS_OK;
}

/* IsNaN, IsInf: float in, bool out. */
typedef struct elt_isinf_ctx {
    int positive, negative;
} elt_isinf_ctx;

#define ELT_CLASSIFY_KERNELS(NAME, T)                                                                \
    static void isnan_##NAME(const void *ctx, void *out_, const void *const *in, size_t n, int mode) { \
        (void)ctx;                                                                                    \
        (void)mode;                                                                                   \
        uint8_t *out = out_;                                                                          \
        const T *x = in[0];                                                                           \
        for (size_t i = 0; i < n; i++) out[i] = x[i] != x[i];                                         \
    }                                                                                                 \
    static void isinf_##NAME(const void *ctx_, void *out_, const void *const *in, size_t n, int mode) { \
        (void)mode;                                                                                   \
        const elt_isinf_ctx *ctx = ctx_;                                                              \
        uint8_t *out = out_;                                                                          \
        const T *x = in[0];                                                                           \
        for (size_t i = 0; i < n; i++)                                                                \
            out[i] = (ctx->positive && x[i] == (T)INFINITY) || (ctx->negative && x[i] == (T)-INFINITY); \
    }
ELT_CLASSIFY_KERNELS(F32, float)
ELT_CLASSIFY_KERNELS(F64, double)

static lens_status infer_classify(op_call *call) {
    lens_status st = elt_check_io(call, 1, 1);
    if (st) return st;
    const tensor *x = call->inputs[0];
    if (x->dtype != LENS_DTYPE_FLOAT32 && x->dtype != LENS_DTYPE_FLOAT64) return elt_bad_dtype(call, x->dtype);
    ops_set_shape(call->outputs[0], LENS_DTYPE_BOOL, x->rank, x->dims);
    return LENS_OK;
}

static lens_status run_IsNaN(op_call *call) {
    int f64 = call->inputs[0]->dtype == LENS_DTYPE_FLOAT64;
    elt_run(call->pool, f64 ? isnan_F64 : isnan_F32, NULL, call->outputs[0], call->inputs, 1);
    return LENS_OK;
}

static lens_status run_IsInf(op_call *call) {
    elt_isinf_ctx ctx = {(int)op_attr_int(call->node, "detect_positive", 1) != 0,
                         (int)op_attr_int(call->node, "detect_negative", 1) != 0};
    int f64 = call->inputs[0]->dtype == LENS_DTYPE_FLOAT64;
    elt_run(call->pool, f64 ? isinf_F64 : isinf_F32, &ctx, call->outputs[0], call->inputs, 1);
    return LENS_OK;
}

static void span_not(const void *ctx, void *out_, const void *const *in, size_t n, int mode) {
    (void)ctx;
    (void)mode;
    uint8_t *out = out_;
    const uint8_t *x = in[0];
    for (size_t i = 0; i < n; i++) out[i] = x[i] == 0;
}

static lens_status infer_Not(op_call *call) {
    lens_status st = elt_check_io(call, 1, 1);
    if (st) return st;
    const tensor *x = call->inputs[0];
    if (x->dtype != LENS_DTYPE_BOOL) return elt_bad_dtype(call, x->dtype);
    ops_set_shape(call->outputs[0], x->dtype, x->rank, x->dims);
    return LENS_OK;
}

static lens_status run_Not(op_call *call) {
    elt_run(call->pool, span_not, NULL, call->outputs[0], call->inputs, 1);
    return LENS_OK;
}

/* ---- Table ------------------------------------------------------------------------------------------------------- */

#define ELT_DEF(NAME) {"", #NAME, infer_##NAME, run_##NAME, NULL, NULL, NULL}
#define ELT_DEF_F32(NAME) {"", #NAME, infer_unary_f32, run_##NAME, NULL, NULL, NULL}

const op_def ops_table_eltwise[] = {
    ELT_DEF(Add), ELT_DEF(Sub), ELT_DEF(Mul), ELT_DEF(Div), ELT_DEF(Pow), ELT_DEF(Mod), ELT_DEF(PRelu),
    ELT_DEF(BitShift),
    ELT_DEF(Equal), ELT_DEF(Less), ELT_DEF(Greater), ELT_DEF(LessOrEqual), ELT_DEF(GreaterOrEqual),
    ELT_DEF(And), ELT_DEF(Or), ELT_DEF(Xor), ELT_DEF(Not), ELT_DEF(Where),
    {"", "Sum", infer_variadic, run_variadic, NULL, NULL, NULL},
    {"", "Mean", infer_variadic, run_variadic, NULL, NULL, NULL},
    {"", "Min", infer_variadic, run_variadic, NULL, NULL, NULL},
    {"", "Max", infer_variadic, run_variadic, NULL, NULL, NULL},
    {"", "Neg", infer_unary_numeric, run_unary_numeric, NULL, NULL, NULL},
    {"", "Abs", infer_unary_numeric, run_unary_numeric, NULL, NULL, NULL},
    {"", "Sign", infer_unary_numeric, run_unary_numeric, NULL, NULL, NULL},
    {"", "IsNaN", infer_classify, run_IsNaN, NULL, NULL, NULL},
    {"", "IsInf", infer_classify, run_IsInf, NULL, NULL, NULL},
    ELT_DEF_F32(Sqrt), ELT_DEF_F32(Reciprocal), ELT_DEF_F32(Exp), ELT_DEF_F32(Log), ELT_DEF_F32(Floor),
    ELT_DEF_F32(Ceil), ELT_DEF_F32(Round), ELT_DEF_F32(Sin), ELT_DEF_F32(Cos), ELT_DEF_F32(Tan),
    ELT_DEF_F32(Asin), ELT_DEF_F32(Acos), ELT_DEF_F32(Atan), ELT_DEF_F32(Sinh), ELT_DEF_F32(Cosh),
    ELT_DEF_F32(Asinh), ELT_DEF_F32(Acosh), ELT_DEF_F32(Atanh),
    {0},
};
