/* Which patches each network sees. A mask set holds, for every sample of a batch, an order of its
 * L patch ids: the first `visible` are encoded (in that order), the next `masked` are the ones to
 * predict, and the rest are thrown: neither encoded, decoded nor in the loss (AMT). The counts are
 * the same for every sample, so that batches stay rectangular. Optional per-patch loss weights
 * scale each masked patch's term of a loss that is still normalised by the masked count.
 *
 * Generators draw one sample's order from rng_make(seed, RNG_MASK, epoch, sample), with
 * `stream` added to the epoch's high bits for a second, independent set of the same samples: a
 * sample gets the same mask on any rank or thread. A new generator is one file defining a
 * MaskGenerator and one line in the list in masking.c; it becomes a value of masking.kind. */
#ifndef MAEC_MASKING_H
#define MAEC_MASKING_H

#include "maec/error.h"
#include "maec/rng.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum MaskWeights {
    MASK_WEIGHTS_NONE,       /* every masked patch weighs 1 */
    MASK_WEIGHTS_NEIGHBOURS, /* BootMAE's weight_mask: m + m * avgpool3x3(m), zero-padded */
} MaskWeights;

typedef struct MaskSpec {
    int kind;               /* index into mask_kind_names */
    int grid_h, grid_w;     /* the patch grid, L = grid_h * grid_w */
    size_t visible, masked; /* per sample; thrown = L - visible - masked */
    MaskWeights weights;
    uint32_t stream;        /* 0 for the first set of a sample */
    /* Block generator (BEiT's MaskingGenerator): rectangles of at least block_min_patches patches
     * with aspect ratios in [block_min_aspect, 1 / block_min_aspect], until block_patches are
     * covered; the count is then made exact by ranking. */
    size_t block_patches, block_min_patches;
    double block_min_aspect;
} MaskSpec;

typedef struct MaskSet {
    size_t capacity, n, L, visible, masked;
    int32_t *order;  /* [n, L] */
    float *weights;  /* [n, L] by patch id, or NULL when every masked patch weighs 1 */
} MaskSet;

typedef struct MaskGenerator {
    const char *doc; /* one line for the key reference */
    /* order[L] of one sample: visible, then masked, then thrown. */
    void (*draw)(int32_t *order, const MaskSpec *spec, Rng *rng);
} MaskGenerator;

/* The values of masking.kind, in the order of the generators (NULL-terminated). */
extern const char *const mask_kind_names[];
const MaskGenerator *mask_generator(int kind);

/* int(L * (1 - ratio)), as the reference. */
size_t mask_keep_count(size_t L, double ratio);
/* spec's visible and masked counts for ratio (nothing thrown); an error if no patch stays visible. */
int mask_spec_ratio(MaskSpec *spec, double ratio, MaecError *err);
/* Number of patches of a spec's grid. */
size_t mask_patches(const MaskSpec *spec);

/* Room for n samples of spec's grid, weights included when the spec has any. */
void mask_set_init(MaskSet *set, const MaskSpec *spec, size_t n);
void mask_set_free(MaskSet *set);

/* set <- the masks of samples[n] in this epoch (n at most the set's capacity). A set drawn by
 * hand (tests, fixtures) fills order, n, visible and masked itself. */
void mask_draw(MaskSet *set, const MaskSpec *spec, const size_t *samples, size_t n, uint64_t seed, uint32_t epoch);

/* The generators. */
extern const MaskGenerator mask_random_generator, mask_block_generator;

#endif
