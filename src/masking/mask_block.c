/* Block-wise masking as BEiT's MaskingGenerator (microsoft/unilm beit/masking_generator.py):
 * random rectangles of at least block_min_patches patches, aspect ratio log-uniform in
 * [block_min_aspect, 1 / block_min_aspect], each tried up to 10 times, until block_patches are
 * covered or no rectangle fits. An MAE-style encoder needs the same count in every sample, so the
 * count is then made exact as BootMAE does (utils.py mask_to_index): patches are ranked by
 * (in a block) + uniform noise and the `masked` highest are masked, so blocks come first and any
 * shortfall is filled with random patches. */
#include "maec/masking.h"

#include "maec/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ATTEMPTS 10

static double uniform_between(Rng *rng, double a, double b) { return a + (b - a) * rng_uniform_double(rng); }

/* Python's random.randint(lo, hi): both ends included. */
static int int_between(Rng *rng, int lo, int hi) { return lo + (int)rng_below(rng, (uint64_t)(hi - lo + 1)); }

/* One rectangle of at most max_new new patches (BEiT's _mask); returns how many it added. */
static size_t add_block(uint8_t *grid, const MaskSpec *s, size_t max_new, Rng *rng)
{
    const int H = s->grid_h, W = s->grid_w;
    const double log_min = log(s->block_min_aspect), log_max = log(1.0 / s->block_min_aspect);
    for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
        double area = uniform_between(rng, (double)s->block_min_patches, (double)max_new);
        double aspect = exp(uniform_between(rng, log_min, log_max));
        int h = (int)rint(sqrt(area * aspect)), w = (int)rint(sqrt(area / aspect));
        if (w >= W || h >= H)
            continue;
        int top = int_between(rng, 0, H - h), left = int_between(rng, 0, W - w);
        size_t covered = 0, added = 0;
        for (int y = top; y < top + h; y++)
            for (int x = left; x < left + w; x++)
                covered += grid[y * W + x];
        size_t fresh = (size_t)(h * w) - covered;
        if (fresh > 0 && fresh <= max_new)
            for (int y = top; y < top + h; y++)
                for (int x = left; x < left + w; x++)
                    if (!grid[y * W + x])
                        grid[y * W + x] = 1, added++;
        if (added > 0)
            return added;
    }
    return 0;
}

typedef struct Ranked {
    double score;
    int32_t patch;
} Ranked;

static int by_score(const void *a, const void *b)
{
    const Ranked *x = a, *y = b; /* ties by patch id: qsort is not stable */
    if (x->score != y->score)
        return (x->score > y->score) - (x->score < y->score);
    return (x->patch > y->patch) - (x->patch < y->patch);
}

static void draw_block(int32_t *order, const MaskSpec *s, Rng *rng)
{
    const size_t L = mask_patches(s), thrown = L - s->visible - s->masked;
    uint8_t *grid = xcalloc(L, 1, "block mask");
    for (size_t count = 0, added = 1; count < s->block_patches && added > 0; count += added)
        added = add_block(grid, s, s->block_patches - count, rng);
    Ranked *ranked = xmalloc(L * sizeof *ranked, "block mask ranking");
    for (size_t i = 0; i < L; i++)
        ranked[i] = (Ranked){grid[i] + rng_uniform_double(rng), (int32_t)i};
    qsort(ranked, L, sizeof *ranked, by_score);
    /* ascending: the lowest are visible, the highest masked, those between thrown */
    for (size_t j = 0; j < s->visible; j++)
        order[j] = ranked[j].patch;
    for (size_t j = 0; j < s->masked; j++)
        order[s->visible + j] = ranked[L - s->masked + j].patch;
    for (size_t j = 0; j < thrown; j++)
        order[s->visible + s->masked + j] = ranked[s->visible + j].patch;
    free(ranked);
    free(grid);
}

const MaskGenerator mask_block_generator = {
    "BEiT's block-wise masking: random rectangles of patches (masking.block_*), topped up with random "
    "patches to the exact count",
    draw_block,
};
