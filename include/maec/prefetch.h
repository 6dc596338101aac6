/* A background thread that keeps the next training micro-batches ready: it reads this rank's
 * slice of each step's global batch (sampler.h) from the dataset, augments every image and
 * draws the masks, into a ring of `depth` slots. The trainer takes them in order, so reading and
 * augmentation overlap with the forward and backward passes. The thread never calls MPI, never
 * uses the worker pool, and reports read errors to the trainer instead of ending the job itself. */
#ifndef MAEC_PREFETCH_H
#define MAEC_PREFETCH_H

#include "maec/augment.h"
#include "maec/dataset.h"
#include "maec/masking.h"
#include "maec/sampler.h"

#include <stddef.h>
#include <stdint.h>

typedef struct Batch {
    size_t n;            /* images */
    long step;           /* optimizer step */
    int micro;           /* micro-step within the step (gradient accumulation) */
    uint32_t epoch;
    float *images;       /* [n, S, S, C], normalised */
    int32_t *labels;     /* [n] */
    size_t *samples;     /* [n] global sample indices */
    MaskSet masks;       /* of the n samples in this epoch */
} Batch;

typedef struct PrefetchConfig {
    Dataset *dataset;
    Sampler *sampler;     /* owned by the prefetch thread while it runs */
    AugmentConfig augment;
    uint64_t seed;
    size_t batch;         /* images per micro-batch on this rank */
    int rank, world, accum;
    long first_step, end_step;
    int depth;            /* slots, >= 1 */
    MaskSpec mask;        /* the objective's */
} PrefetchConfig;

typedef struct Prefetch Prefetch;

Prefetch *prefetch_start(const PrefetchConfig *cfg);
/* The next micro-batch in order (blocks until ready); *waited gets the seconds spent blocking.
 * A read error in the thread ends the job through fatal() with its message. */
Batch *prefetch_next(Prefetch *p, double *waited);
/* Gives back the batch returned by the last prefetch_next. */
void prefetch_release(Prefetch *p);
void prefetch_stop(Prefetch *p);

#endif
