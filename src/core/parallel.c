#include "maec/parallel.h"

#include "maec/alloc.h"
#include "maec/error.h"

#include <cblas.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/* A fork-join pool: the caller publishes a job (generation++), workers run their range and the
 * caller waits until all have reported. Workers block on a condition variable between jobs. */
typedef struct Pool {
    int nthreads;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t job_ready;
    pthread_cond_t job_done;
    unsigned long generation;
    int pending;
    bool stopping;
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

static void *worker_main(void *arg)
{
    int thread = (int)(size_t)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&g_pool.lock);
    for (;;) {
        while (g_pool.generation == seen && !g_pool.stopping)
            pthread_cond_wait(&g_pool.job_ready, &g_pool.lock);
        if (g_pool.stopping)
            break;
        seen = g_pool.generation;
        pthread_mutex_unlock(&g_pool.lock);
        run_range(thread);
        pthread_mutex_lock(&g_pool.lock);
        if (--g_pool.pending == 0)
            pthread_cond_signal(&g_pool.job_done);
    }
    pthread_mutex_unlock(&g_pool.lock);
    return NULL;
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
    pthread_cond_init(&g_pool.job_done, NULL);
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
    pthread_mutex_lock(&g_pool.lock);
    g_pool.fn = fn;
    g_pool.ctx = ctx;
    g_pool.n = n;
    g_pool.chunk = (n + parts - 1) / parts;
    g_pool.pending = g_pool.nthreads - 1;
    g_pool.generation++;
    pthread_cond_broadcast(&g_pool.job_ready);
    pthread_mutex_unlock(&g_pool.lock);
    run_range(0);
    pthread_mutex_lock(&g_pool.lock);
    while (g_pool.pending > 0)
        pthread_cond_wait(&g_pool.job_done, &g_pool.lock);
    pthread_mutex_unlock(&g_pool.lock);
}

void parallel_shutdown(void)
{
    if (!g_pool.threads)
        return;
    pthread_mutex_lock(&g_pool.lock);
    g_pool.stopping = true;
    pthread_cond_broadcast(&g_pool.job_ready);
    pthread_mutex_unlock(&g_pool.lock);
    for (int t = 1; t < g_pool.nthreads; t++)
        pthread_join(g_pool.threads[t], NULL);
    free(g_pool.threads);
    g_pool.threads = NULL;
    g_pool.stopping = false;
    g_pool.nthreads = 1;
}
