/* The maec dataset (docs/formats.md, "Dataset"): reading one HDF5 file or a set of shards as one
 * indexed collection of uint8 images [H, W, C] with int32 labels (-1 = unlabeled).
 *
 * Global sample order: the files in the order of the spec (a glob's matches sorted by name, a
 * comma list as given), and within each file its own order. Sample i of the collection is
 * sample i - dataset_file_first(f) of file f.
 *
 * Reads are safe from any thread (the trainer's prefetch thread) and from several at once: every
 * HDF5 call takes the lock of maec/h5.h. Files are opened read-only and independently on each
 * rank; nothing here is collective. */
#ifndef MAEC_DATASET_H
#define MAEC_DATASET_H

#include "maec/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DATASET_FORMAT "maec-dataset"
#define DATASET_FORMAT_VERSION 1
#define DATASET_MAX_CHANNELS 16
/* Datasets whose images take at most this many bytes are read into memory on open. */
#define DATASET_DEFAULT_MEMORY_LIMIT ((size_t)256 << 20)

typedef struct Dataset Dataset;

typedef struct DatasetOpenOptions {
    size_t memory_limit; /* images up to this many bytes are read into memory; 0 = never */
} DatasetOpenOptions;

/* spec: one file, a glob ("data/nct-*-of-00016.h5") or a comma-separated list of files or globs.
 * Checks every file's format and version, shapes and labels, and that all files agree on height,
 * width, channels and class names; a failure names the file and what is wrong with it. */
Dataset *dataset_open(const char *spec, MaecError *err);
Dataset *dataset_open_with(const char *spec, const DatasetOpenOptions *options, MaecError *err);
void dataset_close(Dataset *ds);

size_t dataset_count(const Dataset *ds);
int dataset_height(const Dataset *ds);
int dataset_width(const Dataset *ds);
int dataset_channels(const Dataset *ds);
size_t dataset_sample_bytes(const Dataset *ds); /* H * W * C */
int dataset_num_classes(const Dataset *ds);     /* 0 for an unlabeled dataset */
const char *dataset_class_name(const Dataset *ds, int c);
/* All labels in global order (read on open). */
const int32_t *dataset_labels(const Dataset *ds);
/* Per-channel mean and standard deviation of the pixel values divided by 255, over every pixel of
 * every file: combined exactly from each file's integer sums. */
const double *dataset_mean(const Dataset *ds);
const double *dataset_std(const Dataset *ds);
double dataset_mpp(const Dataset *ds); /* microns per pixel; 0 when unknown or files differ */
const char *dataset_source(const Dataset *ds);
bool dataset_in_memory(const Dataset *ds);

size_t dataset_file_count(const Dataset *ds);
const char *dataset_file_path(const Dataset *ds, size_t f);
size_t dataset_file_first(const Dataset *ds, size_t f); /* global index of file f's first sample */

/* out[H * W * C] = sample index (row-major, channels last); *label = its label (label may be NULL). */
int dataset_read(Dataset *ds, size_t index, uint8_t *out, int32_t *label, MaecError *err);
/* out[n][H * W * C], labels[n] (may be NULL) for the given global indices, in the given order. */
int dataset_read_many(Dataset *ds, const size_t *indices, size_t n, uint8_t *out, int32_t *labels,
                      MaecError *err);

/* [begin, end): rank's contiguous share of count samples; shares differ by at most one. */
void dataset_rank_range(size_t count, int rank, int size, size_t *begin, size_t *end);

/* mean[c], std[c] of pixel/255 from exact sums of values and squares over count pixels per channel.
 * The writer and the reader both use it, so a file and its shards agree to the last bit. */
void dataset_channel_stats(double *mean, double *std, const uint64_t *sum, const uint64_t *sum_sq,
                           uint64_t count, int channels);

#endif
