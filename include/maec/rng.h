/* Counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 *
 * Every random decision in maec is keyed by what it is about, never by who computes it:
 * a generator is made for one cell (seed, stream, a, b), e.g. (seed, RNG_MASK, epoch, sample).
 * A sample therefore gets the same mask, crop and flip on any rank or thread count.
 *
 * Layout: key = seed (64 bits); counter = [block, b lo, b hi, stream << 24 | a], a < 2^24.
 */
#ifndef MAEC_RNG_H
#define MAEC_RNG_H

#include <stddef.h>
#include <stdint.h>

/* Streams keep unrelated decisions independent even with equal (a, b). */
enum RngStream {
    RNG_INIT = 1,      /* parameter initialisation: a = 0, b = parameter tensor index */
    RNG_MASK = 2,      /* token masks: a = epoch, b = global sample index */
    RNG_AUGMENT = 3,   /* crops, flips, rotations: a = epoch, b = global sample index */
    RNG_SHUFFLE = 4,   /* per-epoch dataset permutation: a = epoch, b = 0 */
    RNG_SYNTHETIC = 5, /* synthetic datasets: a = 0, b = sample index */
    RNG_SPLIT = 6,     /* shard assignment, validation split, few-shot draws */
    RNG_EVAL = 7,      /* evaluation heads (linear probe / fine-tune init and order) */
};

typedef struct Rng {
    uint32_t key[2];
    uint32_t counter[4];
    uint32_t block[4];
    int available; /* unread words left in block */
} Rng;

/* One Philox4x32-10 block: out = philox(counter, key). */
void philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

Rng rng_make(uint64_t seed, uint32_t stream, uint32_t a, uint64_t b);
uint32_t rng_u32(Rng *rng);
/* Uniform in [0, 1) with 24 random bits (every value exactly representable as float). */
float rng_uniform(Rng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double rng_uniform_double(Rng *rng);
/* Standard normal (Box-Muller on two uniform doubles). */
double rng_normal(Rng *rng);
/* Uniform integer in [0, n), unbiased (rejection). n > 0. */
uint64_t rng_below(Rng *rng, uint64_t n);
/* Shuffles n items of item_size bytes (at most 64) uniformly at random (Fisher-Yates). */
void rng_shuffle(Rng *rng, void *items, size_t n, size_t item_size);
/* perm = a uniformly random permutation of 0..n-1. */
void rng_permutation(Rng *rng, size_t *perm, size_t n);

#endif
