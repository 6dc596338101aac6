/* Feature files: frozen-encoder features with their labels, the input of `maec eval` (format
 * "maec-features", docs/formats.md "Features"). A file is read whole: evaluation needs every row
 * at once, and features are small next to the images they came from. */
#ifndef MAEC_FEATURES_H
#define MAEC_FEATURES_H

#include "maec/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FEATURES_FORMAT "maec-features"
#define FEATURES_FORMAT_VERSION 1

typedef struct Features {
    char *path;          /* the file read (NULL for features built in memory); named in messages */
    size_t count, dim;   /* N samples of D features */
    float *values;       /* [count, dim], row-major */
    int32_t *labels;     /* [count]: class index, or -1 = unlabeled */
    size_t num_classes;
    char **class_names;  /* [num_classes] */
    /* Provenance, "" when unknown: the checkpoint and dataset the features came from, and how
     * tokens were pooled into one vector ("cls" or "mean"). */
    char *source_checkpoint, *source_dataset, *pooling;
} Features;

/* Reads path and checks what evaluation relies on: the format and version, /features a 2-D
 * float array with at least one sample, /labels one per sample within -1 .. num_classes-1,
 * class names matching num_classes, finite values. Messages start with the path. On failure f
 * holds nothing to free. */
int features_read(Features *f, const char *path, MaecError *err);

/* Writes f to path as PATH.partial renamed when complete, so a file with the final name is
 * always whole. An existing path is replaced only when force. NULL provenance strings are
 * written as "". */
int features_write(const char *path, const Features *f, bool force, MaecError *err);

void features_free(Features *f);

/* Keeps only the labelled rows, in order, and says how many were left out (never silently).
 * Fails when no labelled row remains. */
int features_keep_labeled(Features *f, size_t *dropped, MaecError *err);

/* Checks that test can be scored by a classifier fitted on train: the same feature dimension,
 * the same class names in the same order and, where both files say, the same pooling. */
int features_check_compatible(const Features *train, const Features *test, MaecError *err);

#endif
