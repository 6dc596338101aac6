/* maec prep idx: the IDX files of MNIST and Fashion-MNIST (images uint8 [N, H, W], labels uint8
 * [N]), gzip-compressed or plain, as a PrepSource of N gray images. A bad magic number, a
 * truncated file or a label count that differs from the image count stops the run, naming the
 * file. */
#ifndef MAEC_IDX_H
#define MAEC_IDX_H

#include "maec/error.h"
#include "maec/source.h"

/* class_names (owned by the source afterwards) may be NULL: classes are then named "0" .. "K-1"
 * for the largest label K-1. Labels are checked against the class count. */
int idx_source(PrepSource *src, const char *images_path, const char *labels_path, char **class_names,
               size_t num_classes, MaecError *err);

#endif
