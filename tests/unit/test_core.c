/* test_core.c — the core layer: thread pool (every task once, nested calls), arena, half-precision conversion, error
 * messages, overflow-checked sizes, the graph builder's name index and the liveness arena planner. */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "graph/graph.h"
#include "test.h"

static atomic_int hits[1000], bad_thread;
static core_pool *shared_pool;

static void count_task(void *ctx, int64_t task, int thread) {
    (void)ctx;
    if (thread < 0 || thread >= core_pool_size(shared_pool)) atomic_fetch_add(&bad_thread, 1);
    atomic_fetch_add(&hits[task], 1);
}

static void nested_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    core_pool_run(shared_pool, 10, count_task, ctx); /* runs inline */
    atomic_fetch_add(&hits[500 + task], 1);
}

/* Many short jobs back to back, as a model's ops are: every task of every job runs once, with a thread index no
 * other task holds at the same time, and a job's tasks are all done when core_pool_run returns (workers that
 * arrive late must not run a task of a finished job, nor claim one of the next twice). */
typedef struct stress_job {
    int job;
    atomic_int *runs;     /* per task of this job */
    atomic_int *in_use;   /* per thread index */
    atomic_int *overlaps; /* thread index held by two tasks at once */
} stress_job;

static void stress_task(void *ctx, int64_t task, int thread) {
    stress_job *j = ctx;
    if (atomic_exchange(&j->in_use[thread], 1)) atomic_fetch_add(j->overlaps, 1);
    if (task % 3 == 0) /* uneven tasks, so that threads race for the last ones */
        for (volatile int spin = 0; spin < 200 * (j->job % 7); spin++) {}
    atomic_fetch_add(&j->runs[task], 1);
    atomic_store(&j->in_use[thread], 0);
}

/* Runs job j's n tasks of fn with its run counts cleared; returns how many tasks did not run exactly once. */
static int run_counted(core_pool *pool, int n, core_task_fn fn, stress_job *j) {
    int wrong = 0;
    for (int t = 0; t < 16; t++) atomic_store(&j->runs[t], 0);
    core_pool_run(pool, n, fn, j);
    for (int t = 0; t < 16; t++) wrong += atomic_load(&j->runs[t]) != (t < n);
    return wrong;
}

static void test_pool_stress(void) {
    for (int threads = 2; threads <= 4; threads++) {
        core_pool *pool;
        CHECK(core_pool_create(threads, &pool) == LENS_OK);
        static atomic_int runs[16], in_use[4];
        atomic_int overlaps = 0;
        int wrong = 0, jobs = 20000;
        for (int job = 0; job < jobs; job++) {
            stress_job j = {job, runs, in_use, &overlaps};
            wrong += run_counted(pool, 2 + job % 15, stress_task, &j);
        }
        CHECK_MSG(wrong == 0, "%d threads: %d tasks ran a wrong number of times", threads, wrong);
        CHECK(atomic_load(&overlaps) == 0);
        core_pool_free(pool);
    }
}

/* The sleeping side of the pool: between jobs the caller pauses longer than workers spin, so they sleep and each job
 * must wake them (the worker then takes some of the job's tasks, which last long enough for it to wake); and some
 * tasks outlast the caller's spin, so it sleeps and the last task must wake it. Every task still runs once, and no
 * job is lost or waited on forever. */
static void pause_us(long us) {
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static atomic_int woken_tasks; /* tasks the worker ran in jobs posted while it slept */

static void sleepy_task(void *ctx, int64_t task, int thread) {
    stress_job *j = ctx;
    /* in every fourth job the worker's tasks take 3 ms, longer than the caller spins waiting for them */
    pause_us(j->job % 4 == 1 && thread == 1 ? 3000 : 300);
    if (thread == 1 && j->job % 2 == 0) atomic_fetch_add(&woken_tasks, 1);
    atomic_fetch_add(&j->runs[task], 1);
}

static void test_pool_sleeping(void) {
    core_pool *pool;
    CHECK(core_pool_create(2, &pool) == LENS_OK);
    static atomic_int runs[16];
    int wrong = 0, jobs = 80;
    for (int job = 0; job < jobs; job++) {
        if (job % 2 == 0) pause_us(3000); /* longer than the workers spin */
        stress_job j = {job, runs, NULL, NULL};
        wrong += run_counted(pool, 4 + job % 3, sleepy_task, &j);
    }
    CHECK_MSG(wrong == 0, "%d tasks ran a wrong number of times across sleeps", wrong);
    /* a worker never woken leaves every task of those jobs to the caller; a woken one takes some in most of them
     * (the bound leaves room for a busy machine, where it may wake late) */
    CHECK_MSG(atomic_load(&woken_tasks) >= jobs / 8, "the sleeping worker ran %d tasks of %d jobs",
              atomic_load(&woken_tasks), jobs / 2);
    core_pool_free(pool);
}

static void test_pool(void) {
    CHECK(core_pool_create(3, &shared_pool) == LENS_OK);
    CHECK(core_pool_size(shared_pool) == 3);
    for (int round = 0; round < 50; round++) {
        memset(hits, 0, sizeof hits);
        core_pool_run(shared_pool, 1000, count_task, NULL);
        int ok = 1;
        for (int i = 0; i < 1000; i++) ok &= hits[i] == 1;
        CHECK(ok);
    }
    memset(hits, 0, sizeof hits);
    core_pool_run(shared_pool, 20, nested_task, NULL);
    CHECK(bad_thread == 0);
    CHECK(hits[0] == 20 && hits[9] == 20 && hits[10] == 0 && hits[500] == 1 && hits[519] == 1);
    core_pool_free(shared_pool);
    core_pool_free(NULL);
    CHECK(core_pool_size(NULL) == 1);
    CHECK(core_physical_cores() >= 1);
}

static void test_half(void) {
    CHECK(core_f16_to_f32(0x3c00) == 1.0f);
    CHECK(core_f16_to_f32(0xc000) == -2.0f);
    CHECK(core_f16_to_f32(0x0001) == 5.9604644775390625e-08f);
    CHECK(isinf(core_f16_to_f32(0x7c00)));
    CHECK(core_f32_to_f16(1.0f) == 0x3c00);
    CHECK(core_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(core_f32_to_f16(1e6f) == 0x7c00);
    CHECK(core_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00); /* tie rounds to even */
    CHECK(core_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02);
    int round_trip = 1;
    for (uint32_t h = 0; h < 0x7c00; h++) round_trip &= core_f32_to_f16(core_f16_to_f32((uint16_t)h)) == h;
    CHECK(round_trip);
    CHECK(core_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(core_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(core_f32_to_bf16(1.00390625f) == 0x3f80); /* tie to even */
}

static void test_errors_and_sizes(void) {
    CHECK(core_fail(LENS_ERR_FORMAT, "x.onnx: bad %d", 7) == LENS_ERR_FORMAT);
    CHECK(!strcmp(lens_last_error(), "x.onnx: bad 7"));
    core_fail_context(LENS_ERR_FORMAT, "outer");
    CHECK(!strcmp(lens_last_error(), "outer: x.onnx: bad 7"));
    size_t s;
    CHECK(!core_mul_size(SIZE_MAX / 2, 3, &s));
    CHECK(core_mul_size(1000, 1000, &s) && s == 1000000);
    tensor t = {.dtype = LENS_DTYPE_FLOAT32, .rank = 2, .dims = {INT64_MAX / 2, 4}};
    CHECK(tensor_numel(&t) == -1 && tensor_bytes(&t) == SIZE_MAX);
    char buf[64];
    t.dims[0] = 3;
    CHECK(!strcmp(tensor_shape_string(&t, buf, sizeof buf), "[3,4]"));
}

static void test_arena(void) {
    core_arena *a = core_arena_create();
    char *p = core_arena_alloc(a, 100000), *q = core_arena_alloc(a, 10);
    CHECK(p && q && ((uintptr_t)p & 63) == 0 && ((uintptr_t)q & 63) == 0 && p[99999] == 0);
    CHECK(!strcmp(core_arena_strdup(a, "hello"), "hello"));
    core_arena_free(a);
    core_arena_free(NULL);
}

static void test_graph_names(void) {
    graph *g;
    CHECK(graph_create("test", "test", &g) == LENS_OK);
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "v%d", i);
        CHECK_MSG(graph_value_find_or_add(g, name) == i, "%s", name);
    }
    CHECK(graph_value_find(g, "v4321") == 4321 && graph_value_find(g, "nope") == -1);
    CHECK(graph_value_find_or_add(g, "v17") == 17);
    graph_free(g);
}

int main(void) {
    test_pool();
    test_pool_stress();
    test_pool_sleeping();
    test_half();
    test_errors_and_sizes();
    test_arena();
    test_graph_names();
    return test_finish("test_core");
}
