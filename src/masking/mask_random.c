/* Random masking as facebookresearch/mae random_masking: a uniformly random order of the L
 * patches (the reference's argsort of uniform noise), cut into visible, masked and thrown. */
#include "maec/masking.h"

static void draw_random(int32_t *order, const MaskSpec *spec, Rng *rng)
{
    const size_t L = mask_patches(spec);
    for (size_t i = 0; i < L; i++)
        order[i] = (int32_t)i;
    rng_shuffle(rng, order, L, sizeof *order);
}

const MaskGenerator mask_random_generator = {
    "a uniformly random subset of each image's patches (MAE)",
    draw_random,
};
