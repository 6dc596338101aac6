#include "maec/split.h"

#include "maec/alloc.h"
#include "maec/rng.h"

#include <math.h>
#include <stdlib.h>

/* group_of[i] for each item; groups are numbered in order of first appearance (items of one
 * source are contiguous). Returns the number of groups; *group_label[g] = label of group g. */
static size_t make_groups(size_t *group_of, int32_t **group_label, const PrepItem *items, size_t n,
                          bool by_source)
{
    int32_t *labels = xmalloc((n ? n : 1) * sizeof *labels, "split groups");
    size_t groups = 0;
    for (size_t i = 0; i < n; i++) {
        if (!by_source || i == 0 || items[i].source != items[i - 1].source)
            labels[groups++] = items[i].label;
        group_of[i] = groups - 1;
    }
    *group_label = labels;
    return groups;
}

/* Marks round(f * m) of the m groups of each label for validation. */
static void choose_validation(bool *to_val, const int32_t *group_label, size_t groups, double f, uint64_t seed)
{
    int32_t max_label = -1;
    for (size_t g = 0; g < groups; g++)
        max_label = group_label[g] > max_label ? group_label[g] : max_label;
    size_t *members = xmalloc((groups ? groups : 1) * sizeof *members, "split groups");
    size_t *perm = xmalloc((groups ? groups : 1) * sizeof *perm, "split permutation");
    for (int32_t label = -1; label <= max_label; label++) {
        size_t m = 0;
        for (size_t g = 0; g < groups; g++)
            if (group_label[g] == label)
                members[m++] = g;
        size_t take = (size_t)llround(f * (double)m);
        Rng rng = rng_make(seed, RNG_SPLIT, 1, (uint64_t)(label + 1));
        rng_permutation(&rng, perm, m);
        for (size_t j = 0; j < take; j++)
            to_val[members[perm[j]]] = true;
    }
    free(perm);
    free(members);
}

int split_assign(int *file_of_item, const PrepItem *items, size_t n, int shards, double val_fraction,
                 bool by_source, uint64_t seed, MaecError *err)
{
    size_t *group_of = xmalloc((n ? n : 1) * sizeof *group_of, "split groups");
    int32_t *group_label = NULL;
    size_t groups = make_groups(group_of, &group_label, items, n, by_source);
    bool *to_val = xcalloc(groups ? groups : 1, sizeof *to_val, "split groups");
    if (val_fraction > 0)
        choose_validation(to_val, group_label, groups, val_fraction, seed);
    size_t *train = xmalloc((n ? n : 1) * sizeof *train, "training items");
    size_t num_train = 0;
    for (size_t i = 0; i < n; i++) {
        if (to_val[group_of[i]])
            file_of_item[i] = shards;
        else
            train[num_train++] = i;
    }
    int rc = 0;
    if (val_fraction > 0 && num_train == n)
        rc = error_set(err, "--val-fraction %g puts none of the %zu %s into validation; use a larger fraction",
                       val_fraction, groups, by_source ? "slides" : "samples");
    else if (num_train < (size_t)shards)
        rc = error_set(err, "--shards %d needs at least %d training samples, there are %zu%s", shards, shards, num_train,
                       num_train < n ? " once --val-fraction has taken its share (per class, rounded); lower it" : "");
    size_t *perm = xmalloc((num_train ? num_train : 1) * sizeof *perm, "shard permutation");
    Rng rng = rng_make(seed, RNG_SPLIT, 0, 0);
    rng_permutation(&rng, perm, num_train);
    for (size_t j = 0; !rc && j < num_train; j++)
        file_of_item[train[perm[j]]] = (int)(j * (size_t)shards / num_train);
    free(perm);
    free(train);
    free(to_val);
    free(group_label);
    free(group_of);
    return rc;
}
