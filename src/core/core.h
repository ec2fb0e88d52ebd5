/* core.h — the bottom layer: status and error messages, tensors and dtypes, arena, thread pool, CPU features,
 * half-precision conversion. Includes only libc and the public header. */
#ifndef LENS_CORE_H
#define LENS_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lens.h"

/* ---- Errors ----------------------------------------------------------------------------------------------------- */

/* Records a printf-style message for lens_last_error() on this thread and returns code, so callers can write
 * `return core_fail(LENS_ERR_FORMAT, "%s: truncated", path);`. */
lens_status core_fail(lens_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with "prefix: " (for adding context such as a file or node name) and returns code. */
lens_status core_fail_context(lens_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *core_last_error(void);
void core_clear_error(void);

/* ---- Overflow-checked size arithmetic ---------------------------------------------------------------------------- */

/* Return false on overflow, leaving *out unspecified. */
static inline bool core_mul_size(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool core_add_size(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }

/* ---- Tensors ----------------------------------------------------------------------------------------------------- */

#define TENSOR_MAX_RANK 8

/* A dense, C-order tensor. data is borrowed unless the holder says otherwise. */
typedef struct tensor {
    lens_dtype dtype;
    int rank;
    int64_t dims[TENSOR_MAX_RANK];
    void *data;
} tensor;

/* Bytes per element; 0 for UNDEFINED and STRING. */
size_t dtype_size(lens_dtype dtype);
const char *dtype_name(lens_dtype dtype);
/* Product of dims (1 for rank 0). Returns -1 if any dim is negative or the product overflows. */
int64_t tensor_numel(const tensor *t);
/* numel * dtype size, or SIZE_MAX on overflow or unknown dims. */
size_t tensor_bytes(const tensor *t);
bool tensor_same_shape(const tensor *a, const tensor *b);
/* Formats dims as "[1,3,224,224]" into buf (always NUL-terminated). Returns buf. */
char *tensor_shape_string(const tensor *t, char *buf, size_t size);
/* Reads element i of an integer tensor (any int dtype or bool) as int64; of a float tensor, truncated. */
int64_t tensor_get_int(const tensor *t, int64_t i);
/* Reads element i of a numeric tensor as double. */
double tensor_get_double(const tensor *t, int64_t i);

/* ---- Half precision ---------------------------------------------------------------------------------------------- */

float core_f16_to_f32(uint16_t h);
uint16_t core_f32_to_f16(float f); /* round to nearest even */
float core_bf16_to_f32(uint16_t b);
uint16_t core_f32_to_bf16(float f); /* round to nearest even */

/* ---- Arena: many small allocations freed at once ------------------------------------------------------------------ */

typedef struct core_arena core_arena;
core_arena *core_arena_create(void);
void core_arena_free(core_arena *arena);
/* Zeroed, 64-byte aligned memory valid until core_arena_free. NULL on out-of-memory. */
void *core_arena_alloc(core_arena *arena, size_t bytes);
/* Copies len bytes of s and appends a NUL. */
char *core_arena_strndup(core_arena *arena, const char *s, size_t len);
char *core_arena_strdup(core_arena *arena, const char *s);

/* 64-byte aligned malloc/free for hot buffers. */
void *core_aligned_alloc(size_t bytes);
void core_aligned_free(void *p);

/* Gives the whole pages inside [p, p + bytes) back to the OS (partial pages at either end are kept). Their contents are
 * lost: anonymous and heap memory reads back as zeros, a private file mapping re-reads the file. For data that will
 * never be read again but lives inside something that cannot be freed on its own (a file mapping, an arena chunk). */
void core_discard_pages(void *p, size_t bytes);

/* ---- Thread pool ------------------------------------------------------------------------------------------------- */

typedef struct core_pool core_pool;

/* A persistent pool of n_threads workers in total, the calling thread included (n_threads - 1 are spawned).
 * n_threads <= 0 means the number of physical cores. */
lens_status core_pool_create(int n_threads, core_pool **out);
void core_pool_free(core_pool *pool);
/* Number of threads (>= 1); 1 for a NULL pool. */
int core_pool_size(const core_pool *pool);

/* Calls fn(ctx, task, thread) for every task in [0, n_tasks), spread over the pool, and returns when all are done.
 * thread is in [0, core_pool_size) and unique among concurrently running calls, so it can index per-thread scratch.
 * A NULL pool, n_tasks == 1, or a call from inside a task runs everything on the calling thread. */
typedef void (*core_task_fn)(void *ctx, int64_t task, int thread);
void core_pool_run(core_pool *pool, int64_t n_tasks, core_task_fn fn, void *ctx);

int core_physical_cores(void);

/* ---- CPU features ------------------------------------------------------------------------------------------------ */

typedef struct core_cpu {
    bool avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512_vnni, avx512_bf16;
    bool neon;
} core_cpu;

/* Detected once (cpuid and xgetbv: the OS must save the registers). */
const core_cpu *core_cpu_features(void);

/* Monotonic clock in seconds. */
double core_now(void);

#endif
