/* Which samples each optimizer step uses. Every epoch draws a permutation of the whole dataset
 * from rng_make(seed, RNG_SHUFFLE, epoch, 0); step k of an epoch takes positions
 * [k G, (k+1) G) of it, G the global batch, and the last incomplete batch is dropped (as the
 * reference's drop_last). The batch depends only on (seed, step, G), never on the rank count:
 * ranks and gradient-accumulation micro-steps take contiguous slices of it. */
#ifndef MAEC_SAMPLER_H
#define MAEC_SAMPLER_H

#include "maec/error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct Sampler {
    size_t count, global_batch, steps_per_epoch;
    uint64_t seed;
    size_t *perm;   /* permutation of the cached epoch */
    long perm_epoch; /* -1: none yet */
} Sampler;

/* Fails when the dataset holds fewer samples than one global batch. */
int sampler_init(Sampler *s, size_t count, size_t global_batch, uint64_t seed, MaecError *err);
void sampler_free(Sampler *s);

uint32_t sampler_epoch(const Sampler *s, long step);
/* out[n] = global sample indices at positions [first, first + n) of step's global batch. */
void sampler_indices(Sampler *s, long step, size_t first, size_t n, size_t *out);

#endif
