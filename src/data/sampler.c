#include "maec/sampler.h"

#include "maec/alloc.h"
#include "maec/rng.h"

#include <stdlib.h>

int sampler_init(Sampler *s, size_t count, size_t global_batch, uint64_t seed, MaecError *err)
{
    if (global_batch == 0 || count < global_batch)
        return error_set(err, "the training set holds %zu samples, fewer than one global batch of %zu; "
                              "use a smaller optim.batch_per_rank or optim.global_batch, fewer ranks, "
                              "or more data", count, global_batch);
    s->count = count;
    s->global_batch = global_batch;
    s->steps_per_epoch = count / global_batch;
    s->seed = seed;
    s->perm = xmalloc(count * sizeof(size_t), "the epoch permutation");
    s->perm_epoch = -1;
    return 0;
}

void sampler_free(Sampler *s)
{
    free(s->perm);
    s->perm = NULL;
}

uint32_t sampler_epoch(const Sampler *s, long step) { return (uint32_t)((size_t)step / s->steps_per_epoch); }

void sampler_indices(Sampler *s, long step, size_t first, size_t n, size_t *out)
{
    uint32_t epoch = sampler_epoch(s, step);
    if (s->perm_epoch != (long)epoch) {
        Rng rng = rng_make(s->seed, RNG_SHUFFLE, epoch, 0);
        rng_permutation(&rng, s->perm, s->count);
        s->perm_epoch = epoch;
    }
    size_t base = ((size_t)step % s->steps_per_epoch) * s->global_batch + first;
    for (size_t i = 0; i < n; i++)
        out[i] = s->perm[base + i];
}
