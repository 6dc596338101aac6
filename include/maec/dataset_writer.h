/* Writes one maec dataset file (docs/formats.md, "Dataset") from one process with serial HDF5.
 *
 * The file is written as PATH.partial and only renamed to PATH by dataset_writer_commit(), so an
 * interrupted run never leaves a file that looks complete. Samples are appended in order; their
 * labels and provenance (/meta) are kept in memory and written on close, together with the
 * per-channel statistics, which are exact integer sums (a histogram per channel). */
#ifndef MAEC_DATASET_WRITER_H
#define MAEC_DATASET_WRITER_H

#include "maec/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct DatasetWriterConfig {
    int height, width, channels;
    const char *const *class_names; /* num_classes names; NULL when unlabeled */
    size_t num_classes;
    const char *source;   /* one line for people: what the samples are and where they came from */
    double mpp;           /* microns per pixel; 0 when unknown */
    int deflate;          /* 0 = store raw; 1-9 = deflate level */
    size_t expected_count; /* samples planned; the file may end with fewer (skipped inputs) */
    const char *split;    /* "all", "train" or "val" */
    int shard_index, shard_count;
    const char *command;  /* the command line that made the file */
} DatasetWriterConfig;

/* Where a sample came from: its source file (or "synthetic"), the record inside it (IDX record,
 * synthetic index, tile ordinal in a slide; 0 for a tile file) and its level-0 pixel position in
 * a slide (-1, -1 otherwise). */
typedef struct SampleMeta {
    const char *source;
    int64_t record;
    int32_t x, y;
} SampleMeta;

typedef struct DatasetWriter DatasetWriter;

/* Fails, naming the path, if PATH exists (or PATH.partial does) and force is false. */
DatasetWriter *dataset_writer_create(const char *path, const DatasetWriterConfig *cfg, bool force,
                                     MaecError *err);
/* pixels[H * W * C], row-major with channels last. */
int dataset_writer_append(DatasetWriter *w, const uint8_t *pixels, int32_t label, const SampleMeta *meta,
                          MaecError *err);
/* Records an input that was not usable (written to /meta/skipped). */
void dataset_writer_skip(DatasetWriter *w, const SampleMeta *meta, const char *reason);
size_t dataset_writer_count(const DatasetWriter *w);
/* Exact per-channel sums of values and of squares over the pixels appended so far. */
void dataset_writer_sums(const DatasetWriter *w, uint64_t *sum, uint64_t *sum_sq, uint64_t *pixels);

/* Writes labels, /meta and attributes and closes PATH.partial. */
int dataset_writer_close(DatasetWriter *w, MaecError *err);
/* Renames the closed PATH.partial to PATH (replacing it) and frees the writer. */
int dataset_writer_commit(DatasetWriter *w, MaecError *err);
/* Closes and removes PATH.partial and frees the writer; for any state after create. */
void dataset_writer_abort(DatasetWriter *w);

#endif
