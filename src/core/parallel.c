#include "maec/parallel.h"

#include "maec/alloc.h"
#include "maec/error.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

/* A fork-join pool: the caller publishes a job (generation++), workers run their range and the
 * caller waits until all have reported. A step makes hundreds of short calls (a residual add
 * takes 20 us), and waking a thread blocked on a condition variable takes longer than that, so
 * workers first spin on the generation for POOL_SPIN_SECONDS and only then block; the caller
 * spins on the pending count, yielding the core if it takes longer. The pool is the only one on
 * its cores (OpenBLAS runs single-threaded), so a short spin competes with nothing of maec's. */
#define POOL_SPIN_SECONDS 200e-6

typedef struct Pool {
    int nthreads;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t job_ready;
    atomic_ulong generation;
    atomic_int pending;
    int sleepers; /* workers blocked on job_ready; under lock */
    atomic_bool stopping;
    ParallelFn fn;
    void *ctx;
    size_t n, chunk;
} Pool;

static Pool g_pool = {.nthreads = 1};
/* The pool thread index while a thread runs a parallel_for range, else -1. Nested calls run
 * inline under the same index, so per-thread scratch stays private. */
static _Thread_local int tl_thread = -1;

static void run_range(int thread)
{
    size_t begin = (size_t)thread * g_pool.chunk;
    if (begin >= g_pool.n)
        return;
    size_t end = begin + g_pool.chunk < g_pool.n ? begin + g_pool.chunk : g_pool.n;
    tl_thread = thread;
    g_pool.fn(g_pool.ctx, begin, end, thread);
    tl_thread = -1;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The generation after `seen` (or `seen` when stopping): spins, then blocks. */
static unsigned long wait_for_job(unsigned long seen)
{
    double deadline = monotonic_seconds() + POOL_SPIN_SECONDS;
    for (unsigned i = 1;; i++) {
        unsigned long gen = atomic_load_explicit(&g_pool.generation, memory_order_acquire);
        if (gen != seen || atomic_load(&g_pool.stopping))
            return gen;
        if (i % 64 == 0 && monotonic_seconds() > deadline)
            break;
        cpu_relax();
    }
    pthread_mutex_lock(&g_pool.lock);
    g_pool.sleepers++;
    while (atomic_load(&g_pool.generation) == seen && !atomic_load(&g_pool.stopping))
        pthread_cond_wait(&g_pool.job_ready, &g_pool.lock);
    g_pool.sleepers--;
    pthread_mutex_unlock(&g_pool.lock);
    return atomic_load_explicit(&g_pool.generation, memory_order_acquire);
}

static void *worker_main(void *arg)
{
    int thread = (int)(size_t)arg;
    unsigned long seen = 0;
    for (;;) {
        seen = wait_for_job(seen);
        if (atomic_load(&g_pool.stopping))
            return NULL;
        run_range(thread);
        atomic_fetch_sub_explicit(&g_pool.pending, 1, memory_order_release);
    }
}

/* Publishes the job already stored in g_pool to every worker. */
static void start_job(void)
{
    atomic_store_explicit(&g_pool.pending, g_pool.nthreads - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_pool.generation, 1, memory_order_release);
    /* A worker checks the generation under the lock before it blocks, so none misses this. */
    pthread_mutex_lock(&g_pool.lock);
    if (g_pool.sleepers > 0)
        pthread_cond_broadcast(&g_pool.job_ready);
    pthread_mutex_unlock(&g_pool.lock);
}

static void join_job(void)
{
    double deadline = monotonic_seconds() + POOL_SPIN_SECONDS;
    for (unsigned i = 1; atomic_load_explicit(&g_pool.pending, memory_order_acquire) > 0; i++) {
        if (i % 64 == 0 && monotonic_seconds() > deadline)
            sched_yield();
        else
            cpu_relax();
    }
}

void parallel_init(int nthreads)
{
    if (nthreads < 1)
        fatal("internal: parallel_init(%d): need at least one thread", nthreads);
    if (g_pool.threads)
        fatal("internal: parallel_init called twice");
    g_pool.nthreads = nthreads;
    /* gemm() splits products across this pool; OpenBLAS's own threads would compete with it. */
    openblas_set_num_threads(1);
    pthread_mutex_init(&g_pool.lock, NULL);
    pthread_cond_init(&g_pool.job_ready, NULL);
    if (nthreads == 1)
        return;
    g_pool.threads = xcalloc((size_t)nthreads, sizeof(pthread_t), "worker threads");
    for (int t = 1; t < nthreads; t++)
        if (pthread_create(&g_pool.threads[t], NULL, worker_main, (void *)(size_t)t) != 0)
            fatal("could not start worker thread %d of %d; lower --threads", t, nthreads);
}

int parallel_threads(void) { return g_pool.nthreads; }

bool parallel_in_region(void) { return tl_thread >= 0; }

void parallel_for(size_t n, size_t min_chunk, ParallelFn fn, void *ctx)
{
    if (n == 0)
        return;
    if (min_chunk == 0)
        min_chunk = 1;
    size_t parts = (size_t)g_pool.nthreads;
    if (parts > (n + min_chunk - 1) / min_chunk)
        parts = (n + min_chunk - 1) / min_chunk;
    if (tl_thread >= 0) {
        fn(ctx, 0, n, tl_thread);
        return;
    }
    if (parts <= 1 || !g_pool.threads) {
        tl_thread = 0;
        fn(ctx, 0, n, 0);
        tl_thread = -1;
        return;
    }
    g_pool.fn = fn;
    g_pool.ctx = ctx;
    g_pool.n = n;
    g_pool.chunk = (n + parts - 1) / parts;
    start_job();
    run_range(0);
    join_job();
}

void parallel_shutdown(void)
{
    if (!g_pool.threads)
        return;
    pthread_mutex_lock(&g_pool.lock);
    atomic_store(&g_pool.stopping, true);
    pthread_cond_broadcast(&g_pool.job_ready);
    pthread_mutex_unlock(&g_pool.lock);
    for (int t = 1; t < g_pool.nthreads; t++)
        pthread_join(g_pool.threads[t], NULL);
    free(g_pool.threads);
    g_pool.threads = NULL;
    atomic_store(&g_pool.stopping, false);
    g_pool.nthreads = 1;
}
