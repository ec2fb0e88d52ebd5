/* pool.c — a persistent fork-join thread pool. Between jobs, workers spin a while and then sleep on a condition
 * variable; a job handed between threads that are spinning takes no lock. Tasks are handed out one at a time, so
 * uneven tasks balance themselves. No thread is created per job.
 *
 * The caller waits for the job's tasks, not for the workers: a worker that has not claimed a task by the time the
 * others have taken them all is not waited for. On a VM whose vCPU is preempted, or a core shared with another
 * process, a sleeping or descheduled worker would otherwise hold up every op until the scheduler runs it again
 * (ResNet-50, 2 threads, a busy loop pinned to one of the two cores: 34 -> 123 ms per run when each op waited for
 * both workers to check in). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

/* The ticket: the job's number in the high 32 bits, the next unclaimed task in the low 32. TICKET_CLOSED in the
 * low half marks a job whose fields are being rewritten. */
#define TICKET_CLOSED 0xffffffffu
#define TICKET_MAX_TASKS ((int64_t)TICKET_CLOSED - 1)

struct core_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    atomic_uint_fast64_t generation; /* bumped for each job, under lock; workers sleep until it moves */
    int stopping;
    /* The current job. Its fields are written between the ticket's close and its reopening (a seqlock: a worker
     * reads them, then checks the ticket is unchanged before claiming a task with it). */
    atomic_uint_fast64_t ticket;
    _Atomic(core_task_fn) fn;
    _Atomic(void *) ctx;
    atomic_int_fast64_t n_tasks;
    atomic_int_fast64_t finished; /* tasks of the current job run to completion */
    /* Who sleeps on a condition variable, changed under lock. The other side reads it without the lock, so a job
     * between spinning threads costs no lock: each side writes its own flag, then reads the other's (all sequentially
     * consistent), so at least one of them sees the other and either the sleeper finds its news or is woken. */
    atomic_int sleepers;        /* workers waiting on wake, for a new generation */
    atomic_int caller_sleeping; /* the caller waits on done, for its job's last task */
};

/* Between ops, workers and the caller spin this many rounds before sleeping: a model runs dozens of short ops back to
 * back, and a condition-variable wake-up costs tens of microseconds each. */
#define SPIN_ROUNDS 20000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static _Thread_local int in_pool_task;

/* Claims and runs tasks of whatever job is current until none is left unclaimed. */
static void run_tasks(core_pool *pool, int thread) {
    in_pool_task = 1;
    uint64_t t = atomic_load_explicit(&pool->ticket, memory_order_acquire);
    for (;;) {
        uint32_t task = (uint32_t)t;
        if (task == TICKET_CLOSED) break;
        core_task_fn fn = atomic_load_explicit(&pool->fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&pool->ctx, memory_order_relaxed);
        int64_t n = atomic_load_explicit(&pool->n_tasks, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        uint64_t again = atomic_load_explicit(&pool->ticket, memory_order_relaxed);
        if (again != t) { /* claimed by another thread, or a new job: read again */
            t = again;
            continue;
        }
        if ((int64_t)task >= n) break;
        /* the ticket was t when the fields were read: the claim succeeds only if it still is */
        if (!atomic_compare_exchange_weak_explicit(&pool->ticket, &t, t + 1, memory_order_acquire,
                                                   memory_order_acquire))
            continue;
        fn(ctx, task, thread);
        if (atomic_fetch_add(&pool->finished, 1) + 1 == n && atomic_load(&pool->caller_sleeping)) {
            pthread_mutex_lock(&pool->lock);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->lock);
        }
        t = atomic_load_explicit(&pool->ticket, memory_order_acquire);
    }
    in_pool_task = 0;
}

typedef struct worker_arg {
    core_pool *pool;
    int index;
} worker_arg;

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    core_pool *pool = wa.pool;
    uint64_t seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&pool->generation, memory_order_acquire) == seen && spins < SPIN_ROUNDS &&
               !__atomic_load_n(&pool->stopping, __ATOMIC_ACQUIRE)) {
            cpu_relax();
            spins++;
        }
        if (atomic_load(&pool->generation) == seen && !__atomic_load_n(&pool->stopping, __ATOMIC_ACQUIRE)) {
            /* nothing to do for a while: sleep until the caller posts a job (it wakes sleepers only) or stops */
            pthread_mutex_lock(&pool->lock);
            atomic_fetch_add(&pool->sleepers, 1);
            while (!pool->stopping && atomic_load(&pool->generation) == seen)
                pthread_cond_wait(&pool->wake, &pool->lock);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->lock);
        }
        if (__atomic_load_n(&pool->stopping, __ATOMIC_ACQUIRE)) break;
        seen = atomic_load(&pool->generation);
        run_tasks(pool, wa.index);
    }
    return NULL;
}

int core_physical_cores(void) {
    /* Count distinct (physical id, core id) pairs; fall back to online CPUs. */
    FILE *f = fopen("/proc/cpuinfo", "r");
    int cores = 0;
    if (f) {
        char line[256];
        int phys = 0, seen_pairs[1024][2], n = 0;
        while (fgets(line, sizeof line, f)) {
            int v;
            if (sscanf(line, "physical id : %d", &v) == 1) phys = v;
            else if (sscanf(line, "core id : %d", &v) == 1) {
                int dup = 0;
                for (int i = 0; i < n; i++)
                    if (seen_pairs[i][0] == phys && seen_pairs[i][1] == v) dup = 1;
                if (!dup && n < 1024) {
                    seen_pairs[n][0] = phys;
                    seen_pairs[n][1] = v;
                    n++;
                }
            }
        }
        fclose(f);
        cores = n;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores <= 0 || (online > 0 && cores > online)) cores = online > 0 ? (int)online : 1;
    return cores;
}

lens_status core_pool_create(int n_threads, core_pool **out) {
    *out = NULL;
    if (n_threads <= 0) n_threads = core_physical_cores();
    if (n_threads > 256) return core_fail(LENS_ERR_INVALID_ARGUMENT, "thread count %d is above 256", n_threads);
    core_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory creating thread pool");
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    pool->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    if (!pool->threads) {
        core_pool_free(pool);
        return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory creating thread pool");
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || pthread_create(&pool->threads[i], NULL, worker_main, wa ? (wa->pool = pool, wa->index = i, wa) : NULL)) {
            free(wa);
            pool->n_threads = i;
            core_pool_free(pool);
            return core_fail(LENS_ERR_OUT_OF_MEMORY, "cannot start thread %d of %d", i, n_threads);
        }
    }
    *out = pool;
    return LENS_OK;
}

void core_pool_free(core_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->lock);
    __atomic_store_n(&pool->stopping, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 1; i < pool->n_threads; i++) pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    free(pool->threads);
    free(pool);
}

int core_pool_size(const core_pool *pool) { return pool ? pool->n_threads : 1; }

void core_pool_run(core_pool *pool, int64_t n_tasks, core_task_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!pool || pool->n_threads == 1 || n_tasks == 1 || n_tasks > TICKET_MAX_TASKS || in_pool_task) {
        int was = in_pool_task;
        in_pool_task = 1;
        for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        in_pool_task = was;
        return;
    }
    /* The job's fields are published through the ticket (see run_tasks), not the lock: spinning workers and the
     * caller exchange a job without taking it. */
    uint64_t job = (uint64_t)(uint32_t)(atomic_load(&pool->generation) + 1) << 32;
    atomic_store_explicit(&pool->ticket, job | TICKET_CLOSED, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&pool->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&pool->n_tasks, n_tasks, memory_order_relaxed);
    atomic_store_explicit(&pool->finished, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->ticket, job, memory_order_release);
    atomic_fetch_add(&pool->generation, 1);
    if (atomic_load(&pool->sleepers)) {
        pthread_mutex_lock(&pool->lock);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->lock);
    }
    run_tasks(pool, 0);
    /* every task is claimed: wait for those still running on other threads */
    for (int spins = 0; atomic_load(&pool->finished) < n_tasks && spins < SPIN_ROUNDS; spins++) cpu_relax();
    if (atomic_load(&pool->finished) < n_tasks) {
        pthread_mutex_lock(&pool->lock);
        atomic_store(&pool->caller_sleeping, 1);
        while (atomic_load(&pool->finished) < n_tasks) pthread_cond_wait(&pool->done, &pool->lock);
        atomic_store(&pool->caller_sleeping, 0);
        pthread_mutex_unlock(&pool->lock);
    }
}

double core_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
