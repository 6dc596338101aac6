#include "maec/fewshot.h"

#include "maec/alloc.h"
#include "maec/rng.h"

#include <stdlib.h>

/* prep's splits use a = 0 and a = 1 of RNG_SPLIT; folds start after them. */
#define FOLD_KEY_BASE 2u

static int compare_index(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Appends to chosen the `shots` members of class c that come first in its permutation. */
static void draw_class(size_t *chosen, size_t *members, const int32_t *labels, size_t n, size_t available,
                       size_t shots, int32_t c, uint64_t seed, uint32_t fold)
{
    size_t *order = xmalloc(available * sizeof *order, "few-shot order");
    Rng rng = rng_make(seed, RNG_SPLIT, FOLD_KEY_BASE + fold, (uint64_t)c);
    rng_permutation(&rng, order, available);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (labels[i] == c)
            members[m++] = i;
    for (size_t s = 0; s < shots; s++)
        chosen[s] = members[order[s]];
    free(order);
}

int fewshot_draw(size_t *chosen, const int32_t *labels, const char *const *class_names, uint64_t seed, uint32_t fold,
                 size_t n, size_t num_classes, size_t shots, MaecError *err)
{
    size_t *counts = xcalloc(num_classes, sizeof *counts, "class counts");
    for (size_t i = 0; i < n; i++)
        if (labels[i] >= 0)
            counts[labels[i]]++;
    int rc = 0;
    for (size_t c = 0; c < num_classes && !rc; c++)
        if (counts[c] < shots)
            rc = error_set(err, "class %zu (%s) has %zu labelled samples, fewer than the %zu shots asked for", c,
                           class_names[c], counts[c], shots);
    size_t *members = rc ? NULL : xmalloc(n * sizeof *members, "class members");
    for (size_t c = 0; c < num_classes && !rc; c++)
        draw_class(chosen + c * shots, members, labels, n, counts[c], shots, (int32_t)c, seed, fold);
    if (!rc)
        qsort(chosen, shots * num_classes, sizeof *chosen, compare_index);
    free(members);
    free(counts);
    return rc;
}
