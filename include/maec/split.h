/* Where each item of a prep run goes: a training shard or the validation file.
 *
 * Validation (--val-fraction f): stratified by label. Per label, round(f * groups) groups go to
 * validation, drawn with rng_make(seed, RNG_SPLIT, 1, label + 1); a group is one item, or with
 * by_source one source (a slide, so that no slide is on both sides; a slide's label is that of
 * its items).
 * Shards (--shards K): the training items in a random order (rng_make(seed, RNG_SPLIT, 0, 0)) are
 * dealt into K contiguous runs, so shard sizes differ by at most one; inside a shard items keep
 * the input order. Everything depends only on the items and the seed. */
#ifndef MAEC_SPLIT_H
#define MAEC_SPLIT_H

#include "maec/error.h"
#include "maec/source.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* file_of_item[i] = shard of item i (0 .. shards-1), or shards when it goes to validation. Fails
 * when a shard or the validation side would be empty. */
int split_assign(int *file_of_item, const PrepItem *items, size_t n, int shards, double val_fraction,
                 bool by_source, uint64_t seed, MaecError *err);

#endif
