/* Few-shot draws: a stratified, seeded choice of `shots` labelled samples per class, repeated
 * over folds, for evaluating an encoder with few labels (MMAE's protocol on NCT-CRC). */
#ifndef MAEC_FEWSHOT_H
#define MAEC_FEWSHOT_H

#include "maec/error.h"

#include <stddef.h>
#include <stdint.h>

/* chosen[shots * num_classes] = for fold `fold`, `shots` samples of every class, in increasing
 * index order. A class's samples are taken in the order of a permutation drawn from stream
 * RNG_SPLIT, (a, b) = (2 + fold, class) (prep's splits use a = 0 and 1), so a draw depends only
 * on (seed, fold) and the labels, and folds differ. Labels of -1 are never chosen. Fails, naming
 * the class (class_names[c]), when a class has fewer than `shots` samples. */
int fewshot_draw(size_t *chosen, const int32_t *labels, const char *const *class_names, uint64_t seed, uint32_t fold,
                 size_t n, size_t num_classes, size_t shots, MaecError *err);

#endif
