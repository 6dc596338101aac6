/* Gradient and parameter synchronisation between data-parallel ranks. Each rank averages the
 * loss over its own samples; the mean over ranks of those gradients is the gradient of the global
 * batch (equal local batches), so every reduction here sums and scales by 1/world. */
#ifndef MAEC_GRADSYNC_H
#define MAEC_GRADSYNC_H

#include <stddef.h>

/* grads[0, n) <- mean over ranks, in buckets of bucket_floats started together (non-blocking)
 * and then waited for. */
void grads_allreduce_mean(float *grads, size_t n, size_t bucket_floats);

/* shard[0, S) <- mean over ranks of grads[rank S, (rank+1) S), S = padded / world; with
 * accumulate, adds to shard instead (scratch: S floats, used only then). */
void grads_reduce_scatter_mean(const float *grads, float *shard, size_t padded, int accumulate, float *scratch);

/* Every rank's owned range [rank S, (rank+1) S) of params is copied to all ranks (in place). */
void params_allgather(float *params, size_t padded);

#endif
