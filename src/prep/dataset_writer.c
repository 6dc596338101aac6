#include "maec/dataset_writer.h"

#include "maec/alloc.h"
#include "maec/dataset.h"
#include "maec/files.h"
#include "maec/h5.h"

#include "maec_version.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Chunks of about this size: several small images per chunk, one large image per chunk. Random
 * single-sample reads then touch one chunk of at most ~64 KiB, or exactly one image. */
#define CHUNK_TARGET_BYTES ((size_t)64 << 10)
#define WRITE_BUFFER_BYTES ((size_t)1 << 20)

typedef struct Column {
    void *data;
    size_t elem;
} Column;

struct DatasetWriter {
    char *path, *partial;
    DatasetWriterConfig cfg; /* strings below are the writer's own copies */
    char **class_names;
    char *source, *split, *command;
    hid_t file, images;
    size_t sample_bytes, chunk_rows, extent;
    uint8_t *buffer;
    size_t buffer_rows, buffered, written;
    uint64_t (*histogram)[256]; /* [channel][value] */
    /* per sample, written on close */
    int32_t *labels, *source_index, *x, *y;
    int64_t *record;
    size_t count, capacity;
    char **sources;
    size_t num_sources;
    /* skipped inputs */
    char **skip_source, **skip_reason;
    int32_t *skip_x, *skip_y;
    size_t num_skipped, skip_capacity;
    bool created, closed;
};

static char *join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = xmalloc(na + nb + 1, "a file name");
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

static int check_paths(const DatasetWriter *w, bool force, MaecError *err)
{
    if (!force && access(w->path, F_OK) == 0)
        return error_set(err, "%s already exists; pass --force to replace it, or choose another -o", w->path);
    if (access(w->partial, F_OK) == 0) {
        if (!force)
            return error_set(err, "%s exists: another maec prep may be writing %s, or an earlier one was "
                                  "interrupted; delete it or pass --force", w->partial, w->path);
        if (unlink(w->partial) != 0)
            return error_set(err, "cannot remove the old %s: %s", w->partial, strerror(errno));
    }
    return 0;
}

static int create_images(DatasetWriter *w, MaecError *err)
{
    const DatasetWriterConfig *c = &w->cfg;
    w->chunk_rows = CHUNK_TARGET_BYTES / w->sample_bytes;
    if (w->chunk_rows < 1)
        w->chunk_rows = 1;
    if (c->expected_count > 0 && w->chunk_rows > c->expected_count)
        w->chunk_rows = c->expected_count;
    w->buffer_rows = w->chunk_rows * (WRITE_BUFFER_BYTES / (w->chunk_rows * w->sample_bytes) + 1);
    w->buffer = xmalloc(w->buffer_rows * w->sample_bytes, "dataset write buffer");
    w->extent = c->expected_count;
    hsize_t dims[4] = {w->extent, (hsize_t)c->height, (hsize_t)c->width, (hsize_t)c->channels};
    hsize_t maxdims[4] = {H5S_UNLIMITED, dims[1], dims[2], dims[3]};
    hsize_t chunk[4] = {w->chunk_rows, dims[1], dims[2], dims[3]};
    h5_lock();
    hid_t space = H5Screate_simple(4, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, chunk);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER); /* every row is written; filling first would double the I/O */
    if (c->deflate > 0)
        H5Pset_deflate(dcpl, (unsigned)c->deflate);
    w->images = H5Dcreate2(w->file, "images", H5T_NATIVE_UINT8, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = w->images < 0 ? h5_error(err, "%s: creating /images", w->partial) : 0;
    H5Pclose(dcpl);
    H5Sclose(space);
    h5_unlock();
    return rc;
}

static void copy_config(DatasetWriter *w, const DatasetWriterConfig *cfg)
{
    w->cfg = *cfg;
    w->class_names = xcalloc(cfg->num_classes ? cfg->num_classes : 1, sizeof *w->class_names, "class names");
    for (size_t c = 0; c < cfg->num_classes; c++)
        w->class_names[c] = xstrdup(cfg->class_names[c]);
    w->source = xstrdup(cfg->source ? cfg->source : "");
    w->split = xstrdup(cfg->split ? cfg->split : "all");
    w->command = xstrdup(cfg->command ? cfg->command : "");
    w->cfg.class_names = (const char *const *)w->class_names;
    w->cfg.source = w->source;
    w->cfg.split = w->split;
    w->cfg.command = w->command;
}

/* `-o data/x.h5` works on a fresh checkout: the folders of the output are created. */
static int make_parent_dirs(const char *path, MaecError *err)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    return make_dirs(dir, err);
}

DatasetWriter *dataset_writer_create(const char *path, const DatasetWriterConfig *cfg, bool force,
                                     MaecError *err)
{
    if (cfg->height < 1 || cfg->width < 1 || cfg->channels < 1 || cfg->channels > DATASET_MAX_CHANNELS) {
        error_set(err, "internal: cannot write %dx%dx%d images (channels must be 1 to %d)", cfg->height,
                  cfg->width, cfg->channels, DATASET_MAX_CHANNELS);
        return NULL;
    }
    DatasetWriter *w = xcalloc(1, sizeof *w, "dataset writer");
    w->path = xstrdup(path);
    w->partial = join(path, ".partial");
    w->file = w->images = -1;
    copy_config(w, cfg);
    w->sample_bytes = (size_t)cfg->height * (size_t)cfg->width * (size_t)cfg->channels;
    w->histogram = xcalloc((size_t)cfg->channels, sizeof *w->histogram, "pixel histogram");
    int rc = check_paths(w, force, err) || make_parent_dirs(path, err);
    if (!rc) {
        h5_lock();
        w->file = H5Fcreate(w->partial, H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
        if (w->file < 0)
            rc = h5_error(err, "cannot create %s (does the folder exist and is it writable?)", w->partial);
        w->created = w->file >= 0;
        h5_unlock();
    }
    if (!rc)
        rc = create_images(w, err);
    if (rc) {
        dataset_writer_abort(w);
        return NULL;
    }
    return w;
}

static int flush_buffer(DatasetWriter *w, MaecError *err)
{
    if (w->buffered == 0)
        return 0;
    const DatasetWriterConfig *c = &w->cfg;
    h5_lock();
    int rc = 0;
    if (w->written + w->buffered > w->extent) {
        w->extent = 2 * (w->written + w->buffered);
        hsize_t dims[4] = {w->extent, (hsize_t)c->height, (hsize_t)c->width, (hsize_t)c->channels};
        if (H5Dset_extent(w->images, dims) < 0)
            rc = h5_error(err, "%s: growing /images to %zu samples", w->partial, w->extent);
    }
    hsize_t start[4] = {w->written, 0, 0, 0};
    hsize_t count[4] = {w->buffered, (hsize_t)c->height, (hsize_t)c->width, (hsize_t)c->channels};
    hid_t file_space = rc ? -1 : H5Dget_space(w->images);
    hid_t mem_space = rc ? -1 : H5Screate_simple(4, count, NULL);
    if (!rc && (H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
                H5Dwrite(w->images, H5T_NATIVE_UINT8, mem_space, file_space, H5P_DEFAULT, w->buffer) < 0))
        rc = h5_error(err, "%s: writing samples %zu to %zu (is the disk full?)", w->partial, w->written,
                      w->written + w->buffered - 1);
    if (file_space >= 0) {
        H5Sclose(mem_space);
        H5Sclose(file_space);
    }
    h5_unlock();
    w->written += w->buffered;
    w->buffered = 0;
    return rc;
}

static void count_pixels(DatasetWriter *w, const uint8_t *p)
{
    size_t pixels = w->sample_bytes / (size_t)w->cfg.channels;
    if (w->cfg.channels == 3) { /* the common case, unrolled: this loop sees every byte written */
        for (size_t i = 0; i < pixels; i++, p += 3) {
            w->histogram[0][p[0]]++;
            w->histogram[1][p[1]]++;
            w->histogram[2][p[2]]++;
        }
        return;
    }
    for (size_t i = 0; i < pixels; i++)
        for (int c = 0; c < w->cfg.channels; c++)
            w->histogram[c][*p++]++;
}

static void grow_samples(DatasetWriter *w)
{
    if (w->count < w->capacity)
        return;
    w->capacity = w->capacity ? 2 * w->capacity : 1024;
    w->labels = xrealloc(w->labels, w->capacity * sizeof *w->labels, "labels");
    w->source_index = xrealloc(w->source_index, w->capacity * sizeof *w->source_index, "/meta/source");
    w->x = xrealloc(w->x, w->capacity * sizeof *w->x, "/meta/x");
    w->y = xrealloc(w->y, w->capacity * sizeof *w->y, "/meta/y");
    w->record = xrealloc(w->record, w->capacity * sizeof *w->record, "/meta/record");
}

/* Index of source in the file's /meta/sources. Samples of one source arrive together, so only
 * the last entry needs comparing. */
static int32_t source_index(DatasetWriter *w, const char *source)
{
    if (w->num_sources == 0 || strcmp(w->sources[w->num_sources - 1], source) != 0) {
        w->sources = xrealloc(w->sources, (w->num_sources + 1) * sizeof *w->sources, "/meta/sources");
        w->sources[w->num_sources++] = xstrdup(source);
    }
    return (int32_t)(w->num_sources - 1);
}

int dataset_writer_append(DatasetWriter *w, const uint8_t *pixels, int32_t label, const SampleMeta *meta,
                          MaecError *err)
{
    if (label < -1 || label >= (int32_t)w->cfg.num_classes)
        return error_set(err, "internal: label %d of %s is outside -1 .. %d", label, meta->source,
                         (int)w->cfg.num_classes - 1);
    memcpy(w->buffer + w->buffered * w->sample_bytes, pixels, w->sample_bytes);
    count_pixels(w, pixels);
    grow_samples(w);
    w->labels[w->count] = label;
    w->source_index[w->count] = source_index(w, meta->source);
    w->x[w->count] = meta->x;
    w->y[w->count] = meta->y;
    w->record[w->count] = meta->record;
    w->count++;
    if (++w->buffered == w->buffer_rows)
        return flush_buffer(w, err);
    return 0;
}

void dataset_writer_skip(DatasetWriter *w, const SampleMeta *meta, const char *reason)
{
    if (w->num_skipped == w->skip_capacity) {
        w->skip_capacity = w->skip_capacity ? 2 * w->skip_capacity : 16;
        w->skip_source = xrealloc(w->skip_source, w->skip_capacity * sizeof *w->skip_source, "skipped");
        w->skip_reason = xrealloc(w->skip_reason, w->skip_capacity * sizeof *w->skip_reason, "skipped");
        w->skip_x = xrealloc(w->skip_x, w->skip_capacity * sizeof *w->skip_x, "skipped");
        w->skip_y = xrealloc(w->skip_y, w->skip_capacity * sizeof *w->skip_y, "skipped");
    }
    w->skip_source[w->num_skipped] = xstrdup(meta->source);
    w->skip_reason[w->num_skipped] = xstrdup(reason);
    w->skip_x[w->num_skipped] = meta->x;
    w->skip_y[w->num_skipped] = meta->y;
    w->num_skipped++;
}

size_t dataset_writer_count(const DatasetWriter *w) { return w->count; }

void dataset_writer_sums(const DatasetWriter *w, uint64_t *sum, uint64_t *sum_sq, uint64_t *pixels)
{
    for (int c = 0; c < w->cfg.channels; c++) {
        sum[c] = sum_sq[c] = 0;
        for (uint64_t v = 0; v < 256; v++) {
            sum[c] += v * w->histogram[c][v];
            sum_sq[c] += v * v * w->histogram[c][v];
        }
    }
    *pixels = (uint64_t)w->count * (uint64_t)w->cfg.height * (uint64_t)w->cfg.width;
}

static int write_meta(DatasetWriter *w, MaecError *err)
{
    int z = w->cfg.deflate;
    hid_t f = w->file;
    if (h5_write_array(f, "labels", H5T_NATIVE_INT32, w->labels, w->count, z, err) ||
        h5_write_array(f, "meta/source", H5T_NATIVE_INT32, w->source_index, w->count, z, err) ||
        h5_write_array(f, "meta/record", H5T_NATIVE_INT64, w->record, w->count, z, err) ||
        h5_write_array(f, "meta/x", H5T_NATIVE_INT32, w->x, w->count, z, err) ||
        h5_write_array(f, "meta/y", H5T_NATIVE_INT32, w->y, w->count, z, err) ||
        h5_write_strings(f, "meta/sources", (const char *const *)w->sources, w->num_sources, err) ||
        h5_write_strings(f, "meta/skipped/source", (const char *const *)w->skip_source, w->num_skipped, err) ||
        h5_write_strings(f, "meta/skipped/reason", (const char *const *)w->skip_reason, w->num_skipped, err) ||
        h5_write_array(f, "meta/skipped/x", H5T_NATIVE_INT32, w->skip_x, w->num_skipped, 0, err) ||
        h5_write_array(f, "meta/skipped/y", H5T_NATIVE_INT32, w->skip_y, w->num_skipped, 0, err))
        return -1;
    return 0;
}

static int write_class_attributes(DatasetWriter *w, MaecError *err)
{
    size_t k = w->cfg.num_classes;
    int32_t num_classes = (int32_t)k;
    int64_t unlabeled = 0;
    int64_t *counts = xcalloc(k ? k : 1, sizeof *counts, "class counts");
    for (size_t i = 0; i < w->count; i++) {
        if (w->labels[i] < 0)
            unlabeled++;
        else
            counts[w->labels[i]]++;
    }
    int rc = h5_attr_write_scalar(w->file, "num_classes", H5T_NATIVE_INT32, &num_classes, err) ||
             h5_attr_write_scalar(w->file, "unlabeled_count", H5T_NATIVE_INT64, &unlabeled, err);
    if (!rc && k > 0)
        rc = h5_attr_write_strings(w->file, "class_names", (const char *const *)w->class_names, k, err) ||
             h5_attr_write_array(w->file, "class_counts", H5T_NATIVE_INT64, counts, k, err);
    free(counts);
    return rc ? -1 : 0;
}

static int write_stat_attributes(DatasetWriter *w, MaecError *err)
{
    uint64_t sum[DATASET_MAX_CHANNELS], sum_sq[DATASET_MAX_CHANNELS], pixels;
    double mean[DATASET_MAX_CHANNELS], std[DATASET_MAX_CHANNELS];
    size_t c = (size_t)w->cfg.channels;
    dataset_writer_sums(w, sum, sum_sq, &pixels);
    dataset_channel_stats(mean, std, sum, sum_sq, pixels, w->cfg.channels);
    hid_t f = w->file;
    if (h5_attr_write_array(f, "pixel_sum", H5T_NATIVE_UINT64, sum, c, err) ||
        h5_attr_write_array(f, "pixel_sum_squares", H5T_NATIVE_UINT64, sum_sq, c, err) ||
        h5_attr_write_scalar(f, "pixel_count", H5T_NATIVE_UINT64, &pixels, err) ||
        h5_attr_write_array(f, "mean", H5T_NATIVE_DOUBLE, mean, c, err) ||
        h5_attr_write_array(f, "std", H5T_NATIVE_DOUBLE, std, c, err))
        return -1;
    return 0;
}

static int write_attributes(DatasetWriter *w, MaecError *err)
{
    int32_t version = DATASET_FORMAT_VERSION;
    int32_t shard[2] = {w->cfg.shard_index, w->cfg.shard_count};
    hid_t f = w->file;
    if (h5_attr_write_string(f, "format", DATASET_FORMAT, err) ||
        h5_attr_write_scalar(f, "format_version", H5T_NATIVE_INT32, &version, err) ||
        h5_attr_write_string(f, "layout", "NHWC", err) ||
        h5_attr_write_string(f, "source", w->source, err) ||
        (w->cfg.mpp > 0 && h5_attr_write_scalar(f, "mpp", H5T_NATIVE_DOUBLE, &w->cfg.mpp, err)) ||
        h5_attr_write_string(f, "split", w->split, err) ||
        h5_attr_write_scalar(f, "shard_index", H5T_NATIVE_INT32, &shard[0], err) ||
        h5_attr_write_scalar(f, "shard_count", H5T_NATIVE_INT32, &shard[1], err) ||
        h5_attr_write_string(f, "command", w->command, err) ||
        h5_attr_write_string(f, "created_by", "maec " MAEC_VERSION, err))
        return -1;
    return write_class_attributes(w, err) || write_stat_attributes(w, err) ? -1 : 0;
}

static int shrink_images(DatasetWriter *w, MaecError *err)
{
    const DatasetWriterConfig *c = &w->cfg;
    hsize_t dims[4] = {w->count, (hsize_t)c->height, (hsize_t)c->width, (hsize_t)c->channels};
    h5_lock();
    int rc = H5Dset_extent(w->images, dims) < 0 ? h5_error(err, "%s: setting /images to %zu samples", w->partial, w->count) : 0;
    h5_unlock();
    return rc;
}

int dataset_writer_close(DatasetWriter *w, MaecError *err)
{
    int rc = flush_buffer(w, err);
    if (!rc)
        rc = shrink_images(w, err);
    if (!rc && (write_meta(w, err) || write_attributes(w, err)))
        rc = error_prefix(err, "%s", w->partial);
    h5_lock();
    H5Dclose(w->images);
    w->images = -1;
    if (H5Fclose(w->file) < 0 && !rc)
        rc = h5_error(err, "closing %s (is the disk full?)", w->partial);
    w->file = -1;
    h5_unlock();
    w->closed = rc == 0;
    return rc;
}

static void writer_free(DatasetWriter *w)
{
    h5_strings_free(w->class_names, w->cfg.num_classes);
    h5_strings_free(w->sources, w->num_sources);
    h5_strings_free(w->skip_source, w->num_skipped);
    h5_strings_free(w->skip_reason, w->num_skipped);
    free(w->skip_x);
    free(w->skip_y);
    free(w->labels);
    free(w->source_index);
    free(w->x);
    free(w->y);
    free(w->record);
    free(w->histogram);
    free(w->buffer);
    free(w->source);
    free(w->split);
    free(w->command);
    free(w->path);
    free(w->partial);
    free(w);
}

int dataset_writer_commit(DatasetWriter *w, MaecError *err)
{
    int rc = 0;
    if (!w->closed)
        rc = error_set(err, "internal: %s committed before it was closed", w->partial);
    else if (rename(w->partial, w->path) != 0)
        rc = error_set(err, "cannot rename %s to %s: %s; the complete dataset is in %s", w->partial,
                       w->path, strerror(errno), w->partial);
    writer_free(w);
    return rc;
}

void dataset_writer_abort(DatasetWriter *w)
{
    if (!w)
        return;
    h5_lock();
    if (w->images >= 0)
        H5Dclose(w->images);
    if (w->file >= 0)
        H5Fclose(w->file);
    h5_unlock();
    if (w->created)
        unlink(w->partial);
    writer_free(w);
}
