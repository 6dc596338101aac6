#include "maec/masking.h"

#include "maec/alloc.h"
#include "maec/error.h"

#include <stdlib.h>
#include <string.h>

/* The generators, in the order of masking.kind's values: a new one is a line here. */
#define MASK_GENERATORS(X) \
    X(random)              \
    X(block)

#define NAME(g) #g,
#define ENTRY(g) &mask_##g##_generator,
const char *const mask_kind_names[] = {MASK_GENERATORS(NAME) NULL};
static const MaskGenerator *const generators[] = {MASK_GENERATORS(ENTRY)};
#undef NAME
#undef ENTRY

#define EPOCH_BITS 20 /* rng_make's a has 24 bits: the epoch below, the stream above */

const MaskGenerator *mask_generator(int kind)
{
    if (kind < 0 || (size_t)kind >= sizeof generators / sizeof generators[0])
        fatal("internal: no mask generator %d", kind);
    return generators[kind];
}

size_t mask_keep_count(size_t L, double ratio) { return (size_t)((double)L * (1.0 - ratio)); }

int mask_spec_ratio(MaskSpec *spec, double ratio, MaecError *err)
{
    size_t L = mask_patches(spec), visible = mask_keep_count(L, ratio);
    if (!(ratio >= 0.0 && ratio < 1.0) || visible < 1)
        return error_set(err, "ratio %g leaves %zu of %zu patches visible; the encoder needs at least one (use a "
                              "ratio below %g)", ratio, visible, L, 1.0 - 1.0 / (double)L);
    spec->visible = visible, spec->masked = L - visible;
    return 0;
}

size_t mask_patches(const MaskSpec *spec) { return (size_t)spec->grid_h * (size_t)spec->grid_w; }

void mask_set_init(MaskSet *set, const MaskSpec *spec, size_t n)
{
    const size_t L = mask_patches(spec), cells = (n ? n : 1) * L;
    *set = (MaskSet){.capacity = n, .L = L, .visible = spec->visible, .masked = spec->masked};
    set->order = xmalloc(cells * sizeof *set->order, "mask orders");
    if (spec->weights != MASK_WEIGHTS_NONE)
        set->weights = xmalloc(cells * sizeof *set->weights, "mask weights");
}

void mask_set_free(MaskSet *set)
{
    free(set->order);
    free(set->weights);
    memset(set, 0, sizeof *set);
}

/* weights[L] by patch id <- m + m * (sum of m over the 3x3 neighbourhood) / 9, m = 1 on masked
 * patches: torch's AvgPool2d(3, 1, padding=1) counts the zero padding (BootMAE run_pretraining.py). */
static void neighbour_weights(float *weights, const int32_t *order, const MaskSpec *spec)
{
    const int H = spec->grid_h, W = spec->grid_w;
    const size_t L = mask_patches(spec);
    memset(weights, 0, L * sizeof *weights);
    for (size_t j = spec->visible; j < spec->visible + spec->masked; j++)
        weights[order[j]] = 1;
    float *m = xmalloc(L * sizeof *m, "mask weights");
    memcpy(m, weights, L * sizeof *m);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            if (m[y * W + x] == 0)
                continue;
            float around = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                    if (y + dy >= 0 && y + dy < H && x + dx >= 0 && x + dx < W)
                        around += m[(y + dy) * W + x + dx];
            weights[y * W + x] = 1 + around / 9;
        }
    free(m);
}

void mask_draw(MaskSet *set, const MaskSpec *spec, const size_t *samples, size_t n, uint64_t seed, uint32_t epoch)
{
    if (n > set->capacity || epoch >> EPOCH_BITS || spec->stream >> (24 - EPOCH_BITS))
        fatal("internal: mask_draw of %zu samples (room for %zu), epoch %u, stream %u", n, set->capacity, epoch,
              spec->stream);
    const MaskGenerator *g = mask_generator(spec->kind);
    const uint32_t a = epoch | spec->stream << EPOCH_BITS;
    set->n = n, set->visible = spec->visible, set->masked = spec->masked;
    for (size_t b = 0; b < n; b++) {
        Rng rng = rng_make(seed, RNG_MASK, a, samples[b]);
        g->draw(set->order + b * set->L, spec, &rng);
        if (set->weights)
            neighbour_weights(set->weights + b * set->L, set->order + b * set->L, spec);
    }
}
