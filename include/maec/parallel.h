/* maec's own worker pool, used for all work outside OpenBLAS (LayerNorm, GELU, softmax,
 * attention, AdamW, augmentation) and for GEMM itself: OpenBLAS runs single-threaded and gemm()
 * splits large products across this pool. One pool, no second set of threads spinning on the
 * same cores. Between calls, workers spin for a moment (calls come in quick succession) and then
 * sleep on a condition variable. */
#ifndef MAEC_PARALLEL_H
#define MAEC_PARALLEL_H

#include <stdbool.h>
#include <stddef.h>

/* fn processes items [begin, end); thread is in [0, parallel_threads()) and may index
 * per-thread scratch. */
typedef void (*ParallelFn)(void *ctx, size_t begin, size_t end, int thread);

/* Starts nthreads - 1 workers (the caller is thread 0). Call once; nthreads >= 1. */
void parallel_init(int nthreads);
int parallel_threads(void);
/* Splits [0, n) into at most parallel_threads() contiguous ranges of at least min_chunk items
 * and runs fn on each; returns when all are done. Runs inline when one range suffices. */
void parallel_for(size_t n, size_t min_chunk, ParallelFn fn, void *ctx);
/* True inside a parallel_for range. A nested parallel_for runs inline on the calling thread,
 * with that thread's index, so kernels may call each other (and gemm) freely. */
bool parallel_in_region(void);
void parallel_shutdown(void);

#endif
