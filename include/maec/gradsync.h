/* Gradient and parameter synchronisation between data-parallel ranks. Each rank averages the
 * loss over its own samples; the mean over ranks of those gradients is the gradient of the global
 * batch (equal local batches), so every reduction here sums and scales by 1/world.
 *
 * Gradients are reduced in buckets of the flat buffer laid out from its end, because the backward
 * pass finishes the parameters in reverse table order (decoder head first, patch embedding last).
 * Given as the backward pass's GradReady, gradsync_ready starts each bucket with a non-blocking
 * collective as soon as all of it is final, so communication overlaps the rest of the backward
 * pass; gradsync_finish starts what is left and waits. Bucket boundaries depend only on the sizes,
 * so the result is the same with overlap or without. A report that goes back up the buffer breaks
 * that promise (a bucket may have left before all of its gradients were summed): it is fatal,
 * naming the tensor through the names callback. */
#ifndef MAEC_GRADSYNC_H
#define MAEC_GRADSYNC_H

#include <stdbool.h>
#include <stddef.h>

#include <mpi.h>

typedef enum GradSyncKind {
    GRADSYNC_ALLREDUCE,      /* grads[0, padded) <- mean over ranks, in place */
    GRADSYNC_REDUCE_SCATTER, /* shard[0, S) <- mean over ranks of grads[rank S, (rank+1) S) */
} GradSyncKind;

/* The name of the tensor that holds a flat offset, for messages. */
typedef struct GradSyncNames {
    const char *(*at)(const void *ctx, size_t offset);
    const void *ctx;
} GradSyncNames;

typedef struct GradSync {
    GradSyncKind kind;
    float *grads, *shard, *scratch;
    size_t padded, bucket; /* floats */
    int world, rank, buckets;
    /* One pass: buckets [started, buckets) wait; bucket k ends at padded - k * bucket. */
    int started;
    bool accumulate;
    MPI_Request *requests; /* [buckets] */
    int *recvcounts;       /* [buckets * world]: reduce-scatter counts, alive until completion */
    size_t lowest;         /* the lowest offset reported final in this pass */
    GradSyncNames names;
} GradSync;

/* bucket_floats: message size (0 = one bucket); capped so that there are at most 256 buckets.
 * For GRADSYNC_REDUCE_SCATTER, shard and scratch hold S = padded / world floats (scratch is used
 * only by passes that accumulate); for GRADSYNC_ALLREDUCE both are NULL. */
void gradsync_init(GradSync *s, GradSyncKind kind, float *grads, size_t padded, size_t bucket_floats,
                   float *shard, float *scratch, GradSyncNames names);
void gradsync_free(GradSync *s);

/* Arms one pass. With accumulate, a reduce-scatter adds its mean to the shard instead of
 * replacing it. The grads must not change between a bucket's start and gradsync_finish. */
void gradsync_begin(GradSync *s, bool accumulate);
/* GradReady callback (ctx: the GradSync): every gradient from `from` to the end is final. A
 * `from` above an earlier report of the pass is fatal. */
void gradsync_ready(void *ctx, const float *from);
/* Starts the buckets not started yet, waits for all of them and scales by 1/world. */
void gradsync_finish(GradSync *s);

/* Every rank's owned range [rank S, (rank+1) S) of params is copied to all ranks (in place). */
void params_allgather(float *params, size_t padded);

#endif
