#include "maec/dataset.h"

#include "maec/alloc.h"
#include "maec/h5.h"

#include <glob.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One file of the collection, as found on open. */
typedef struct DatasetFile {
    char *path;
    hid_t file, images;
    hid_t file_space, sample_space; /* reused for every read, under the HDF5 lock */
    size_t count, first;
    int version, height, width, channels;
    char **class_names;
    size_t num_classes;
    uint64_t sum[DATASET_MAX_CHANNELS], sum_sq[DATASET_MAX_CHANNELS], pixel_count;
    double mpp;
    char *source;
} DatasetFile;

struct Dataset {
    DatasetFile *files;
    size_t num_files, count;
    int height, width, channels;
    int32_t *labels;
    uint8_t *memory; /* all images when they fit the memory limit, else NULL */
    double mean[DATASET_MAX_CHANNELS], std[DATASET_MAX_CHANNELS];
    double mpp;
};

void dataset_channel_stats(double *mean, double *std, const uint64_t *sum, const uint64_t *sum_sq,
                           uint64_t count, int channels)
{
    for (int c = 0; c < channels; c++) {
        if (count == 0) {
            mean[c] = std[c] = 0.0;
            continue;
        }
        /* long double keeps the 64-bit integer sums exact through the subtraction. */
        long double n = (long double)count, s = (long double)sum[c], q = (long double)sum_sq[c];
        long double m = s / n, var = q / n - m * m;
        mean[c] = (double)(m / 255.0L);
        std[c] = (double)(sqrtl(var > 0 ? var : 0) / 255.0L);
    }
}

void dataset_rank_range(size_t count, int rank, int size, size_t *begin, size_t *end)
{
    size_t r = (size_t)rank, p = (size_t)size, base = count / p, extra = count % p;
    *begin = base * r + (r < extra ? r : extra);
    *end = *begin + base + (r < extra ? 1 : 0);
}

/* ---- the spec: files, globs, comma lists ---- */

static void add_path(char ***paths, size_t *n, const char *path)
{
    *paths = xrealloc(*paths, (*n + 1) * sizeof **paths, "dataset file list");
    (*paths)[(*n)++] = xstrdup(path);
}

static int expand_spec(const char *spec, char ***paths, size_t *n, MaecError *err)
{
    char *copy = xstrdup(spec), *save = NULL;
    int rc = 0;
    for (char *item = strtok_r(copy, ",", &save); item && !rc; item = strtok_r(NULL, ",", &save)) {
        if (!strpbrk(item, "*?[")) {
            add_path(paths, n, item);
            continue;
        }
        glob_t g;
        int grc = glob(item, 0, NULL, &g);
        if (grc == GLOB_NOMATCH)
            rc = error_set(err, "'%s' matches no file (check the folder and the shard count in the name)", item);
        else if (grc != 0)
            rc = error_set(err, "cannot expand '%s' (glob error %d; is the folder readable?)", item, grc);
        for (size_t i = 0; grc == 0 && i < g.gl_pathc; i++)
            add_path(paths, n, g.gl_pathv[i]);
        if (grc == 0)
            globfree(&g);
    }
    free(copy);
    if (!rc && *n == 0)
        rc = error_set(err, "dataset '%s' names no file", spec);
    for (size_t i = 0; !rc && i < *n; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp((*paths)[i], (*paths)[j])) {
                rc = error_set(err, "dataset '%s' names %s twice; each file may appear once", spec, (*paths)[i]);
                break;
            }
    return rc;
}

/* ---- one file ---- */

static int check_format(DatasetFile *f, MaecError *err)
{
    char *format = NULL;
    if (!h5_attr_exists(f->file, "format"))
        return error_set(err, "it has no 'format' attribute, so it was not written by maec prep");
    if (h5_attr_read_string(f->file, "format", &format, err))
        return -1;
    int rc = 0;
    if (strcmp(format, DATASET_FORMAT) != 0)
        rc = error_set(err, "it is a '%s' file, not a '%s'", format, DATASET_FORMAT);
    free(format);
    int32_t version = 0;
    if (!rc && h5_attr_read_numbers(f->file, "format_version", H5T_NATIVE_INT32, &version, 1, err))
        return -1;
    if (!rc && version > DATASET_FORMAT_VERSION)
        rc = error_set(err, "it has format version %d, newer than this maec reads (%d): update maec",
                       version, DATASET_FORMAT_VERSION);
    else if (!rc && version < 1)
        rc = error_set(err, "format_version %d is not valid", version);
    f->version = version;
    return rc;
}

static int open_images(DatasetFile *f, MaecError *err)
{
    if (!h5_link_exists(f->file, "images"))
        return error_set(err, "dataset /images is missing");
    f->images = H5Dopen2(f->file, "images", H5P_DEFAULT);
    if (f->images < 0)
        return h5_error(err, "opening /images");
    hid_t type = H5Dget_type(f->images);
    bool is_u8 = H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == 1 && H5Tget_sign(type) == H5T_SGN_NONE;
    H5Tclose(type);
    if (!is_u8)
        return error_set(err, "/images must hold uint8 values");
    f->file_space = H5Dget_space(f->images);
    hsize_t dims[4] = {0, 0, 0, 0};
    if (H5Sget_simple_extent_ndims(f->file_space) != 4)
        return error_set(err, "/images must have 4 dimensions [N, H, W, C], it has %d",
                         H5Sget_simple_extent_ndims(f->file_space));
    H5Sget_simple_extent_dims(f->file_space, dims, NULL);
    if (dims[1] < 1 || dims[2] < 1 || dims[3] < 1 || dims[3] > DATASET_MAX_CHANNELS || dims[1] > 65536 || dims[2] > 65536)
        return error_set(err, "/images has shape [%llu, %llu, %llu, %llu]: height and width must be 1 to 65536 "
                              "and channels 1 to %d", (unsigned long long)dims[0], (unsigned long long)dims[1],
                         (unsigned long long)dims[2], (unsigned long long)dims[3], DATASET_MAX_CHANNELS);
    f->count = dims[0];
    f->height = (int)dims[1];
    f->width = (int)dims[2];
    f->channels = (int)dims[3];
    hsize_t sample[1] = {dims[1] * dims[2] * dims[3]};
    f->sample_space = H5Screate_simple(1, sample, NULL);
    return 0;
}

static int read_classes_and_stats(DatasetFile *f, MaecError *err)
{
    int32_t num_classes = 0;
    if (h5_attr_read_numbers(f->file, "num_classes", H5T_NATIVE_INT32, &num_classes, 1, err))
        return -1;
    if (num_classes < 0)
        return error_set(err, "num_classes is %d", num_classes);
    if (num_classes > 0 && h5_attr_read_strings(f->file, "class_names", &f->class_names, &f->num_classes, err))
        return -1;
    if (f->num_classes != (size_t)num_classes)
        return error_set(err, "num_classes is %d but class_names lists %zu names", num_classes, f->num_classes);
    size_t c = (size_t)f->channels;
    if (h5_attr_read_numbers(f->file, "pixel_sum", H5T_NATIVE_UINT64, f->sum, c, err) ||
        h5_attr_read_numbers(f->file, "pixel_sum_squares", H5T_NATIVE_UINT64, f->sum_sq, c, err) ||
        h5_attr_read_numbers(f->file, "pixel_count", H5T_NATIVE_UINT64, &f->pixel_count, 1, err))
        return -1;
    if (f->pixel_count != (uint64_t)f->count * (uint64_t)f->height * (uint64_t)f->width)
        return error_set(err, "pixel_count %llu does not match /images (%zu samples of %dx%d)",
                         (unsigned long long)f->pixel_count, f->count, f->height, f->width);
    f->mpp = 0.0;
    if (h5_attr_exists(f->file, "mpp") && h5_attr_read_numbers(f->file, "mpp", H5T_NATIVE_DOUBLE, &f->mpp, 1, err))
        return -1;
    return h5_attr_read_string(f->file, "source", &f->source, err);
}

/* Reads file f's labels into labels[f->first ...] and checks their range. */
static int read_labels(const DatasetFile *f, int32_t *labels, MaecError *err)
{
    if (h5_read_array(f->file, "labels", H5T_NATIVE_INT32, labels, f->count, err))
        return -1;
    for (size_t i = 0; i < f->count; i++)
        if (labels[i] < -1 || labels[i] >= (int32_t)f->num_classes)
            return error_set(err, "/labels[%zu] = %d is outside -1 .. %d (the dataset has %zu classes)",
                             i, labels[i], (int)f->num_classes - 1, f->num_classes);
    return 0;
}

static int open_file(DatasetFile *f, MaecError *err)
{
    f->file = f->images = f->file_space = f->sample_space = -1;
    f->file = h5_open_file(f->path, false, err);
    if (f->file < 0)
        return -1;
    h5_lock();
    int rc = check_format(f, err) || open_images(f, err) || read_classes_and_stats(f, err) ? -1 : 0;
    h5_unlock();
    return rc;
}

static void close_file(DatasetFile *f)
{
    h5_lock();
    if (f->sample_space >= 0)
        H5Sclose(f->sample_space);
    if (f->file_space >= 0)
        H5Sclose(f->file_space);
    if (f->images >= 0)
        H5Dclose(f->images);
    h5_unlock();
    h5_close_file(f->file);
    h5_strings_free(f->class_names, f->num_classes);
    free(f->source);
    free(f->path);
}

/* ---- the collection ---- */

static int check_agreement(const DatasetFile *a, const DatasetFile *b, MaecError *err)
{
    const char *what = "?";
    char mine[256] = "", theirs[256] = "";
    if (a->version != b->version) {
        what = "format_version";
        snprintf(mine, sizeof mine, "%d", b->version);
        snprintf(theirs, sizeof theirs, "%d", a->version);
    } else if (a->height != b->height || a->width != b->width || a->channels != b->channels) {
        what = "image shape (H, W, C)";
        snprintf(mine, sizeof mine, "%dx%dx%d", b->height, b->width, b->channels);
        snprintf(theirs, sizeof theirs, "%dx%dx%d", a->height, a->width, a->channels);
    } else if (a->num_classes != b->num_classes) {
        what = "num_classes";
        snprintf(mine, sizeof mine, "%zu", b->num_classes);
        snprintf(theirs, sizeof theirs, "%zu", a->num_classes);
    } else {
        for (size_t c = 0; c < a->num_classes; c++)
            if (strcmp(a->class_names[c], b->class_names[c]) != 0) {
                what = "class_names";
                snprintf(mine, sizeof mine, "class %zu is '%s'", c, b->class_names[c]);
                snprintf(theirs, sizeof theirs, "'%s'", a->class_names[c]);
                break;
            }
        if (!mine[0])
            return 0;
    }
    return error_set(err, "%s does not match %s: %s: %s where the first file has %s; shards of one dataset "
                          "must come from one maec prep run", b->path, a->path, what, mine, theirs);
}

static void combine_stats(Dataset *ds)
{
    uint64_t sum[DATASET_MAX_CHANNELS] = {0}, sum_sq[DATASET_MAX_CHANNELS] = {0}, count = 0;
    ds->mpp = ds->files[0].mpp;
    for (size_t f = 0; f < ds->num_files; f++) {
        for (int c = 0; c < ds->channels; c++) {
            sum[c] += ds->files[f].sum[c];
            sum_sq[c] += ds->files[f].sum_sq[c];
        }
        count += ds->files[f].pixel_count;
        if (ds->files[f].mpp != ds->mpp)
            ds->mpp = 0.0;
    }
    dataset_channel_stats(ds->mean, ds->std, sum, sum_sq, count, ds->channels);
}

static int load_into_memory(Dataset *ds, MaecError *err)
{
    size_t bytes = dataset_sample_bytes(ds);
    ds->memory = xalloc_aligned(ds->count * bytes, "dataset images in memory");
    for (size_t f = 0; f < ds->num_files; f++) {
        DatasetFile *file = &ds->files[f];
        if (file->count == 0)
            continue;
        h5_lock();
        herr_t rc = H5Dread(file->images, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                            ds->memory + file->first * bytes);
        h5_unlock();
        if (rc < 0)
            return h5_error(err, "%s: reading /images into memory (%zu samples; a damaged file?)",
                            file->path, file->count);
    }
    return 0;
}

/* Names the file at the start of a message, unless it is there already (h5_open_file's are). */
static int name_file(MaecError *err, const char *path)
{
    return strncmp(err->msg, path, strlen(path)) ? error_prefix(err, "%s", path) : -1;
}

static int open_all(Dataset *ds, const DatasetOpenOptions *options, MaecError *err)
{
    for (size_t f = 0; f < ds->num_files; f++) {
        DatasetFile *file = &ds->files[f];
        if (open_file(file, err))
            return name_file(err, file->path);
        if (f > 0 && check_agreement(&ds->files[0], file, err))
            return -1;
        file->first = ds->count;
        ds->count += file->count;
    }
    ds->height = ds->files[0].height;
    ds->width = ds->files[0].width;
    ds->channels = ds->files[0].channels;
    ds->labels = xmalloc((ds->count ? ds->count : 1) * sizeof *ds->labels, "dataset labels");
    for (size_t f = 0; f < ds->num_files; f++)
        if (read_labels(&ds->files[f], ds->labels + ds->files[f].first, err))
            return name_file(err, ds->files[f].path);
    combine_stats(ds);
    if (ds->count * dataset_sample_bytes(ds) <= options->memory_limit)
        return load_into_memory(ds, err);
    return 0;
}

Dataset *dataset_open_with(const char *spec, const DatasetOpenOptions *options, MaecError *err)
{
    char **paths = NULL;
    size_t n = 0;
    if (expand_spec(spec, &paths, &n, err)) {
        h5_strings_free(paths, n);
        return NULL;
    }
    Dataset *ds = xcalloc(1, sizeof *ds, "dataset");
    ds->files = xcalloc(n, sizeof *ds->files, "dataset files");
    for (size_t f = 0; f < n; f++) {
        ds->files[f].path = paths[f];
        ds->files[f].file = ds->files[f].images = ds->files[f].file_space = ds->files[f].sample_space = -1;
    }
    free(paths);
    ds->num_files = n;
    if (open_all(ds, options, err)) {
        dataset_close(ds);
        return NULL;
    }
    return ds;
}

Dataset *dataset_open(const char *spec, MaecError *err)
{
    DatasetOpenOptions options = {.memory_limit = DATASET_DEFAULT_MEMORY_LIMIT};
    return dataset_open_with(spec, &options, err);
}

void dataset_close(Dataset *ds)
{
    if (!ds)
        return;
    for (size_t f = 0; f < ds->num_files; f++)
        close_file(&ds->files[f]);
    free(ds->files);
    free(ds->labels);
    free(ds->memory);
    free(ds);
}

size_t dataset_count(const Dataset *ds) { return ds->count; }
int dataset_height(const Dataset *ds) { return ds->height; }
int dataset_width(const Dataset *ds) { return ds->width; }
int dataset_channels(const Dataset *ds) { return ds->channels; }
size_t dataset_sample_bytes(const Dataset *ds) { return (size_t)ds->height * (size_t)ds->width * (size_t)ds->channels; }
int dataset_num_classes(const Dataset *ds) { return (int)ds->files[0].num_classes; }
const char *dataset_class_name(const Dataset *ds, int c) { return ds->files[0].class_names[c]; }
const int32_t *dataset_labels(const Dataset *ds) { return ds->labels; }
const double *dataset_mean(const Dataset *ds) { return ds->mean; }
const double *dataset_std(const Dataset *ds) { return ds->std; }
double dataset_mpp(const Dataset *ds) { return ds->mpp; }
const char *dataset_source(const Dataset *ds) { return ds->files[0].source; }
bool dataset_in_memory(const Dataset *ds) { return ds->memory != NULL; }
size_t dataset_file_count(const Dataset *ds) { return ds->num_files; }
const char *dataset_file_path(const Dataset *ds, size_t f) { return ds->files[f].path; }
size_t dataset_file_first(const Dataset *ds, size_t f) { return ds->files[f].first; }

/* The file holding global sample index: the last file whose first sample is <= index. */
static DatasetFile *file_of(Dataset *ds, size_t index)
{
    size_t lo = 0, hi = ds->num_files - 1;
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        if (ds->files[mid].first <= index)
            lo = mid;
        else
            hi = mid - 1;
    }
    /* An empty file shares its first index with the next one, so the search never ends on it. */
    return &ds->files[lo];
}

int dataset_read(Dataset *ds, size_t index, uint8_t *out, int32_t *label, MaecError *err)
{
    if (index >= ds->count)
        return error_set(err, "sample %zu does not exist: the dataset holds %zu samples", index, ds->count);
    if (label)
        *label = ds->labels[index];
    size_t bytes = dataset_sample_bytes(ds);
    if (ds->memory) {
        memcpy(out, ds->memory + index * bytes, bytes);
        return 0;
    }
    DatasetFile *f = file_of(ds, index);
    hsize_t start[4] = {index - f->first, 0, 0, 0};
    hsize_t count[4] = {1, (hsize_t)ds->height, (hsize_t)ds->width, (hsize_t)ds->channels};
    h5_lock();
    herr_t rc = H5Sselect_hyperslab(f->file_space, H5S_SELECT_SET, start, NULL, count, NULL);
    if (rc >= 0)
        rc = H5Dread(f->images, H5T_NATIVE_UINT8, f->sample_space, f->file_space, H5P_DEFAULT, out);
    h5_unlock();
    if (rc < 0)
        return h5_error(err, "%s: reading sample %zu (global sample %zu); the file may be damaged",
                        f->path, index - f->first, index);
    return 0;
}

int dataset_read_many(Dataset *ds, const size_t *indices, size_t n, uint8_t *out, int32_t *labels,
                      MaecError *err)
{
    size_t bytes = dataset_sample_bytes(ds);
    for (size_t i = 0; i < n; i++)
        if (dataset_read(ds, indices[i], out + i * bytes, labels ? &labels[i] : NULL, err))
            return -1;
    return 0;
}
