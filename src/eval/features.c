#include "maec/features.h"

#include "maec/alloc.h"
#include "maec/h5.h"

#include "maec_version.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *name_of(const Features *f) { return f->path ? f->path : "(features in memory)"; }

static int check_format(hid_t file, MaecError *err)
{
    if (!h5_attr_exists(file, "format"))
        return error_set(err, "no 'format' attribute: not a maec features file (maec embed writes them)");
    char *format = NULL;
    if (h5_attr_read_string(file, "format", &format, err))
        return -1;
    int rc = 0;
    if (strcmp(format, FEATURES_FORMAT) != 0)
        rc = error_set(err, "a '%s' file, not '%s' (maec embed makes features from a dataset and a checkpoint)",
                       format, FEATURES_FORMAT);
    free(format);
    int32_t version = 0;
    if (!rc && h5_attr_read_numbers(file, "format_version", H5T_NATIVE_INT32, &version, 1, err))
        return -1;
    if (!rc && version > FEATURES_FORMAT_VERSION)
        rc = error_set(err, "format_version %d is newer than this maec reads (%d): update maec", (int)version,
                       FEATURES_FORMAT_VERSION);
    return rc;
}

/* The shape of /features, which must be a 2-D float array. */
static int features_shape(hid_t file, hsize_t dims[2], MaecError *err)
{
    if (!h5_link_exists(file, "features"))
        return error_set(err, "no /features dataset");
    h5_lock();
    int rc = 0;
    hid_t ds = H5Dopen2(file, "features", H5P_DEFAULT);
    if (ds < 0) {
        rc = h5_error(err, "opening /features");
    } else {
        hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
        if (H5Tget_class(type) != H5T_FLOAT || H5Sget_simple_extent_ndims(space) != 2)
            rc = error_set(err, "/features is not a 2-D float array [samples, dimension]");
        else
            H5Sget_simple_extent_dims(space, dims, NULL);
        H5Sclose(space);
        H5Tclose(type);
        H5Dclose(ds);
    }
    h5_unlock();
    return rc;
}

static int read_values(Features *f, hid_t file, MaecError *err)
{
    hsize_t dims[2] = {0, 0};
    if (features_shape(file, dims, err))
        return -1;
    if (dims[0] == 0 || dims[1] == 0)
        return error_set(err, "/features is empty (%llu samples of dimension %llu): nothing to evaluate",
                         (unsigned long long)dims[0], (unsigned long long)dims[1]);
    f->count = (size_t)dims[0];
    f->dim = (size_t)dims[1];
    f->values = xmalloc(f->count * f->dim * sizeof *f->values, "features");
    h5_lock();
    int rc = 0;
    hid_t ds = H5Dopen2(file, "features", H5P_DEFAULT);
    if (ds < 0 || H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->values) < 0)
        rc = h5_error(err, "reading /features");
    if (ds >= 0)
        H5Dclose(ds);
    h5_unlock();
    return rc;
}

static int check_values_finite(const Features *f, MaecError *err)
{
    for (size_t i = 0; i < f->count * f->dim; i++)
        if (!isfinite(f->values[i]))
            return error_set(err, "sample %zu, feature %zu is %g: the encoder produced non-finite values "
                                  "(check the checkpoint)", i / f->dim, i % f->dim, (double)f->values[i]);
    return 0;
}

static int read_classes(Features *f, hid_t file, MaecError *err)
{
    int32_t num_classes = 0;
    if (h5_attr_read_numbers(file, "num_classes", H5T_NATIVE_INT32, &num_classes, 1, err))
        return -1;
    if (num_classes < 0)
        return error_set(err, "num_classes is %d", (int)num_classes);
    if (num_classes == 0)
        return 0;
    if (h5_attr_read_strings(file, "class_names", &f->class_names, &f->num_classes, err))
        return -1;
    if (f->num_classes != (size_t)num_classes)
        return error_set(err, "num_classes is %d but class_names lists %zu names", (int)num_classes,
                         f->num_classes);
    return 0;
}

static int read_labels(Features *f, hid_t file, MaecError *err)
{
    if (!h5_link_exists(file, "labels"))
        return error_set(err, "no /labels dataset (one int32 per sample, -1 = unlabeled)");
    f->labels = xmalloc(f->count * sizeof *f->labels, "labels");
    if (h5_read_array(file, "labels", H5T_NATIVE_INT32, f->labels, f->count, err))
        return error_prefix(err, "/labels must hold one label per row of /features");
    for (size_t i = 0; i < f->count; i++)
        if (f->labels[i] < -1 || f->labels[i] >= (int32_t)f->num_classes)
            return error_set(err, "sample %zu has label %d, outside -1 .. %ld (the file names %zu classes)", i,
                             (int)f->labels[i], (long)f->num_classes - 1, f->num_classes);
    return 0;
}

/* An optional string attribute: "" when absent. */
static int read_provenance(char **value, hid_t file, const char *name, MaecError *err)
{
    if (!h5_attr_exists(file, name)) {
        *value = xstrdup("");
        return 0;
    }
    return h5_attr_read_string(file, name, value, err);
}

static int read_file(Features *f, hid_t file, MaecError *err)
{
    if (check_format(file, err) || read_values(f, file, err) || check_values_finite(f, err) ||
        read_classes(f, file, err) || read_labels(f, file, err))
        return -1;
    if (read_provenance(&f->source_checkpoint, file, "source_checkpoint", err) ||
        read_provenance(&f->source_dataset, file, "source_dataset", err) ||
        read_provenance(&f->pooling, file, "pooling", err))
        return -1;
    return 0;
}

int features_read(Features *f, const char *path, MaecError *err)
{
    memset(f, 0, sizeof *f);
    hid_t file = h5_open_file(path, false, err);
    if (file < 0)
        return -1;
    int rc = read_file(f, file, err);
    h5_close_file(file);
    if (rc) {
        features_free(f);
        return error_prefix(err, "%s", path);
    }
    f->path = xstrdup(path);
    return 0;
}

void features_free(Features *f)
{
    free(f->path);
    free(f->values);
    free(f->labels);
    h5_strings_free(f->class_names, f->num_classes);
    free(f->source_checkpoint);
    free(f->source_dataset);
    free(f->pooling);
    memset(f, 0, sizeof *f);
}

static int write_values(hid_t file, const Features *f, MaecError *err)
{
    hsize_t dims[2] = {f->count, f->dim};
    h5_lock();
    int rc = 0;
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(file, "features", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (ds < 0)
        rc = h5_error(err, "creating /features");
    else if (f->count * f->dim > 0 && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->values) < 0)
        rc = h5_error(err, "writing /features (is the disk full?)");
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(space);
    h5_unlock();
    return rc;
}

static int write_attributes(hid_t file, const Features *f, MaecError *err)
{
    int32_t version = FEATURES_FORMAT_VERSION, num_classes = (int32_t)f->num_classes;
    if (h5_attr_write_string(file, "format", FEATURES_FORMAT, err) ||
        h5_attr_write_scalar(file, "format_version", H5T_NATIVE_INT32, &version, err) ||
        h5_attr_write_scalar(file, "num_classes", H5T_NATIVE_INT32, &num_classes, err))
        return -1;
    if (f->num_classes > 0 &&
        h5_attr_write_strings(file, "class_names", (const char *const *)f->class_names, f->num_classes, err))
        return -1;
    const char *provenance[3][2] = {{"source_checkpoint", f->source_checkpoint},
                                    {"source_dataset", f->source_dataset},
                                    {"pooling", f->pooling}};
    for (int i = 0; i < 3; i++)
        if (h5_attr_write_string(file, provenance[i][0], provenance[i][1] ? provenance[i][1] : "", err))
            return -1;
    return h5_attr_write_string(file, "created_by", "maec " MAEC_VERSION, err);
}

static int write_partial(const char *partial, const Features *f, MaecError *err)
{
    h5_lock();
    hid_t file = H5Fcreate(partial, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int rc = file < 0 ? h5_error(err, "cannot create %s (does the folder exist and is it writable?)", partial) : 0;
    h5_unlock();
    if (rc)
        return -1;
    rc = write_values(file, f, err) || h5_write_array(file, "labels", H5T_NATIVE_INT32, f->labels, f->count, 0, err) ||
         write_attributes(file, f, err);
    h5_lock();
    if (H5Fclose(file) < 0 && !rc)
        rc = h5_error(err, "closing %s (is the disk full?)", partial);
    h5_unlock();
    return rc ? -1 : 0;
}

int features_write(const char *path, const Features *f, bool force, MaecError *err)
{
    if (!force && access(path, F_OK) == 0)
        return error_set(err, "%s already exists; pass --force to replace it, or choose another output", path);
    char partial[4096];
    if ((size_t)snprintf(partial, sizeof partial, "%s.partial", path) >= sizeof partial)
        return error_set(err, "%s: the path is too long", path);
    if (write_partial(partial, f, err)) {
        unlink(partial);
        return error_prefix(err, "writing %s", path);
    }
    if (rename(partial, path) != 0)
        return error_set(err, "cannot rename %s to %s: %s; the complete features are in %s", partial, path,
                         strerror(errno), partial);
    return 0;
}

int features_keep_labeled(Features *f, size_t *dropped, MaecError *err)
{
    size_t kept = 0;
    for (size_t i = 0; i < f->count; i++) {
        if (f->labels[i] < 0)
            continue;
        if (kept != i) {
            memcpy(f->values + kept * f->dim, f->values + i * f->dim, f->dim * sizeof *f->values);
            f->labels[kept] = f->labels[i];
        }
        kept++;
    }
    *dropped = f->count - kept;
    if (kept == 0)
        return error_set(err, "%s: no labelled samples (all %zu labels are -1): evaluation needs labels; embed a "
                              "labelled dataset", name_of(f), f->count);
    f->count = kept;
    return 0;
}

static int check_classes(const Features *train, const Features *test, MaecError *err)
{
    if (train->num_classes != test->num_classes)
        return error_set(err, "%s has %zu classes but %s has %zu: both must come from datasets with the same "
                              "class list", name_of(train), train->num_classes, name_of(test), test->num_classes);
    for (size_t c = 0; c < train->num_classes; c++)
        if (strcmp(train->class_names[c], test->class_names[c]) != 0)
            return error_set(err, "class %zu is '%s' in %s but '%s' in %s: both files must list the same classes "
                                  "in the same order", c, train->class_names[c], name_of(train),
                             test->class_names[c], name_of(test));
    return 0;
}

int features_check_compatible(const Features *train, const Features *test, MaecError *err)
{
    if (train->dim != test->dim)
        return error_set(err, "%s has %zu-dimensional features but %s has %zu: embed both with the same "
                              "checkpoint and pooling", name_of(train), train->dim, name_of(test), test->dim);
    if (check_classes(train, test, err))
        return -1;
    if (train->pooling && test->pooling && train->pooling[0] && test->pooling[0] &&
        strcmp(train->pooling, test->pooling) != 0)
        return error_set(err, "%s pools tokens by '%s' but %s by '%s': embed both the same way", name_of(train),
                         train->pooling, name_of(test), test->pooling);
    return 0;
}
