/* Which patches the encoder sees. Random masking as facebookresearch/mae random_masking: per
 * sample a uniformly random order of the L patches (the reference's argsort of uniform noise);
 * the first keep_count are encoded, the rest are masked. The order is drawn from
 * rng_make(seed, RNG_MASK, epoch, sample): a sample gets the same mask on any rank or thread. */
#ifndef MAEC_MASKING_H
#define MAEC_MASKING_H

#include <stddef.h>
#include <stdint.h>

/* int(L * (1 - ratio)), as the reference. */
size_t mask_keep_count(size_t L, double ratio);

/* ids_shuffle[B, L]: row b is the random order of sample samples[b] in this epoch. */
void mask_random(int32_t *ids_shuffle, const size_t *samples, size_t B, size_t L, uint64_t seed,
                 uint32_t epoch);

#endif
