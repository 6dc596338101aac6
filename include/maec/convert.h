/* maec prep's engine: turns a PrepSource into dataset files (one, K shards, plus an optional
 * validation file), on one rank or many.
 *
 * Collective: every rank calls convert_run with the same source and options. Items are decoded in
 * blocks; in each block rank r decodes its contiguous share with the worker pool's threads, rank
 * 0 gathers the results in item order and writes them. So the files' content and order depend
 * only on the source and the options, never on the number of ranks or threads. Any failure ends
 * the run on all ranks together with rank 0's message, and no partial output is left behind.
 *
 * Output names: with one shard, OUTPUT itself; with K shards NAME-00000-of-0000K.h5 ... where
 * NAME is OUTPUT without its .h5 extension; the validation file is NAME-val.h5. */
#ifndef MAEC_CONVERT_H
#define MAEC_CONVERT_H

#include "maec/error.h"
#include "maec/source.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ConvertOptions {
    const char *output;
    bool force;          /* replace existing outputs */
    int shards;          /* >= 1 */
    double val_fraction; /* 0 = no validation file */
    uint64_t seed;       /* shard assignment and validation split */
    int deflate;         /* 0-9 */
    bool strict;         /* an unusable input stops the run instead of being skipped */
    const char *command; /* recorded in every file */
} ConvertOptions;

/* The path of output file `file`: 0 .. shards-1 the training shards, shards the validation file. */
void convert_output_path(char *path, size_t size, const char *output, int file, int shards);

/* Converts, prints progress and a summary on rank 0; returns the same result on every rank. */
int convert_run(PrepSource *src, const ConvertOptions *opt, MaecError *err);

#endif
