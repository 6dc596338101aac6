#include "maec/masking.h"

#include "maec/rng.h"

size_t mask_keep_count(size_t L, double ratio) { return (size_t)((double)L * (1.0 - ratio)); }

void mask_random(int32_t *ids_shuffle, const size_t *samples, size_t B, size_t L, uint64_t seed,
                 uint32_t epoch)
{
    for (size_t b = 0; b < B; b++) {
        Rng rng = rng_make(seed, RNG_MASK, epoch, samples[b]);
        int32_t *ids = ids_shuffle + b * L;
        for (size_t i = 0; i < L; i++)
            ids[i] = (int32_t)i;
        rng_shuffle(&rng, ids, L, sizeof *ids);
    }
}
