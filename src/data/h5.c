#include "maec/h5.h"

#include "maec/alloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t g_lock;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&g_lock, &attr);
    pthread_mutexattr_destroy(&attr);
    H5open();
    /* Errors reach people through MaecError; HDF5's own stack dumps would only add noise. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void h5_lock(void)
{
    pthread_once(&g_once, init_once);
    pthread_mutex_lock(&g_lock);
}

void h5_unlock(void) { pthread_mutex_unlock(&g_lock); }

typedef struct StackText {
    char innermost[512];
    char api[128];
} StackText;

/* Walking upward starts at the most specific entry (where HDF5 detected the problem, e.g.
 * "file signature not found") and ends at the API function the caller called. */
static herr_t collect_stack(unsigned n, const H5E_error2_t *e, void *data)
{
    StackText *t = data;
    if (n == 0 && e->desc)
        snprintf(t->innermost, sizeof t->innermost, "%s", e->desc);
    if (e->func_name)
        snprintf(t->api, sizeof t->api, "%s", e->func_name);
    return 0;
}

int h5_error(MaecError *err, const char *fmt, ...)
{
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    StackText t = {"", ""};
    h5_lock();
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_stack, &t);
    H5Eclear2(H5E_DEFAULT);
    h5_unlock();
    if (t.innermost[0])
        return error_set(err, "%s: HDF5: %s (in %s)", what, t.innermost, t.api);
    return error_set(err, "%s: HDF5 gave no reason", what);
}

hid_t h5_open_file(const char *path, bool writable, MaecError *err)
{
    if (access(path, F_OK) != 0)
        return error_set(err, "%s: %s", path, strerror(errno));
    if (access(path, writable ? R_OK | W_OK : R_OK) != 0)
        return error_set(err, "%s: %s (check the file's permissions)", path, strerror(errno));
    h5_lock();
    hid_t file = -1;
    htri_t is_hdf5 = H5Fis_hdf5(path);
    if (is_hdf5 <= 0)
        error_set(err, "%s is not an HDF5 file (or it is truncated: the HDF5 signature is missing)", path);
    else if ((file = H5Fopen(path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        h5_error(err, "cannot open %s (a truncated or damaged file? h5dump -H shows what HDF5 sees)", path);
    H5Eclear2(H5E_DEFAULT);
    h5_unlock();
    return file;
}

void h5_close_file(hid_t file)
{
    if (file < 0)
        return;
    h5_lock();
    H5Fclose(file);
    h5_unlock();
}

bool h5_attr_exists(hid_t obj, const char *name)
{
    h5_lock();
    bool yes = H5Aexists(obj, name) > 0;
    h5_unlock();
    return yes;
}

bool h5_link_exists(hid_t loc, const char *path)
{
    /* H5Lexists needs every intermediate group to exist: check the path one component at a time. */
    char partial[1024];
    snprintf(partial, sizeof partial, "%s", path);
    bool yes = true;
    h5_lock();
    for (char *slash = partial; yes && slash;) {
        slash = strchr(slash + (*slash == '/'), '/');
        if (slash)
            *slash = '\0';
        yes = H5Lexists(loc, partial, H5P_DEFAULT) > 0;
        if (slash)
            *slash++ = '/';
    }
    h5_unlock();
    return yes;
}

static hid_t string_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

/* Creates (replacing) attribute name with the given type and space and writes data into it. */
static int write_attr(hid_t obj, const char *name, hid_t type, hid_t space, const void *data,
                      MaecError *err)
{
    h5_lock();
    int rc = 0;
    if (H5Aexists(obj, name) > 0 && H5Adelete(obj, name) < 0)
        rc = h5_error(err, "replacing attribute '%s'", name);
    hid_t attr = rc ? -1 : H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (!rc && attr < 0)
        rc = h5_error(err, "creating attribute '%s'", name);
    if (!rc && H5Awrite(attr, type, data) < 0)
        rc = h5_error(err, "writing attribute '%s'", name);
    if (attr >= 0)
        H5Aclose(attr);
    h5_unlock();
    return rc;
}

static hid_t vector_space(size_t n)
{
    hsize_t dims[1] = {n};
    return H5Screate_simple(1, dims, NULL);
}

int h5_attr_write_string(hid_t obj, const char *name, const char *value, MaecError *err)
{
    h5_lock();
    hid_t type = string_type(), space = H5Screate(H5S_SCALAR);
    int rc = write_attr(obj, name, type, space, &value, err);
    H5Sclose(space);
    H5Tclose(type);
    h5_unlock();
    return rc;
}

int h5_attr_write_strings(hid_t obj, const char *name, const char *const *values, size_t n,
                          MaecError *err)
{
    h5_lock();
    hid_t type = string_type(), space = vector_space(n);
    int rc = write_attr(obj, name, type, space, values, err);
    H5Sclose(space);
    H5Tclose(type);
    h5_unlock();
    return rc;
}

int h5_attr_write_scalar(hid_t obj, const char *name, hid_t type, const void *value, MaecError *err)
{
    h5_lock();
    hid_t space = H5Screate(H5S_SCALAR);
    int rc = write_attr(obj, name, type, space, value, err);
    H5Sclose(space);
    h5_unlock();
    return rc;
}

int h5_attr_write_array(hid_t obj, const char *name, hid_t type, const void *values, size_t n,
                        MaecError *err)
{
    h5_lock();
    hid_t space = vector_space(n);
    int rc = write_attr(obj, name, type, space, values, err);
    H5Sclose(space);
    h5_unlock();
    return rc;
}

void h5_strings_free(char **values, size_t n)
{
    if (!values)
        return;
    for (size_t i = 0; i < n; i++)
        free(values[i]);
    free(values);
}

/* Reads the n strings of an attribute or dataset (reader = H5Aread or H5Dread wrapper) whatever
 * their storage: variable-length (maec, h5py str) or fixed-length (h5py bytes, other tools). */
typedef herr_t (*ReadFn)(hid_t obj, hid_t mem_type, void *buf);
static herr_t read_attr(hid_t a, hid_t t, void *buf) { return H5Aread(a, t, buf); }
static herr_t read_dataset(hid_t d, hid_t t, void *buf) { return H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf); }

static int read_strings(hid_t obj, hid_t ftype, hid_t space, ReadFn read, char ***out, size_t n,
                        const char *name, MaecError *err)
{
    if (H5Tget_class(ftype) != H5T_STRING)
        return error_set(err, "'%s' holds no text (HDF5 type class %d)", name, (int)H5Tget_class(ftype));
    char **values = xcalloc(n ? n : 1, sizeof *values, "HDF5 strings");
    int rc = 0;
    if (H5Tis_variable_str(ftype) > 0) {
        hid_t mtype = string_type();
        char **raw = xcalloc(n ? n : 1, sizeof *raw, "HDF5 strings");
        if (n > 0 && read(obj, mtype, raw) < 0)
            rc = h5_error(err, "reading the text of '%s'", name);
        for (size_t i = 0; !rc && i < n; i++)
            values[i] = xstrdup(raw[i] ? raw[i] : "");
        if (!rc && n > 0)
            H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, raw);
        free(raw);
        H5Tclose(mtype);
    } else {
        size_t len = H5Tget_size(ftype);
        hid_t mtype = H5Tcopy(ftype);
        char *raw = xcalloc(n ? n : 1, len, "HDF5 strings");
        if (n > 0 && read(obj, mtype, raw) < 0)
            rc = h5_error(err, "reading the text of '%s'", name);
        for (size_t i = 0; !rc && i < n; i++) {
            size_t k = 0;
            while (k < len && raw[i * len + k])
                k++;
            while (k > 0 && raw[i * len + k - 1] == ' ') /* space-padded (Fortran-style) text */
                k--;
            values[i] = xmalloc(k + 1, "an HDF5 string");
            memcpy(values[i], raw + i * len, k);
            values[i][k] = '\0';
        }
        free(raw);
        H5Tclose(mtype);
    }
    if (rc) {
        h5_strings_free(values, n);
        return -1;
    }
    *out = values;
    return 0;
}

static size_t space_length(hid_t space)
{
    hssize_t n = H5Sget_simple_extent_npoints(space);
    return n < 0 ? 0 : (size_t)n;
}

/* The strings of an open attribute (is_attribute) or dataset; *n = their number. */
static int read_object_strings(hid_t obj, bool is_attribute, char ***values, size_t *n, const char *name,
                               MaecError *err)
{
    hid_t ftype = is_attribute ? H5Aget_type(obj) : H5Dget_type(obj);
    hid_t space = is_attribute ? H5Aget_space(obj) : H5Dget_space(obj);
    *n = space_length(space);
    int rc = read_strings(obj, ftype, space, is_attribute ? read_attr : read_dataset, values, *n, name, err);
    H5Sclose(space);
    H5Tclose(ftype);
    return rc;
}

int h5_attr_read_strings(hid_t obj, const char *name, char ***values, size_t *n, MaecError *err)
{
    h5_lock();
    int rc = 0;
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    if (attr < 0) {
        rc = h5_error(err, "attribute '%s' is missing", name);
    } else {
        rc = read_object_strings(attr, true, values, n, name, err);
        H5Aclose(attr);
    }
    h5_unlock();
    return rc;
}

int h5_attr_read_string(hid_t obj, const char *name, char **value, MaecError *err)
{
    char **values = NULL;
    size_t n = 0;
    if (h5_attr_read_strings(obj, name, &values, &n, err))
        return -1;
    if (n != 1) {
        h5_strings_free(values, n);
        return error_set(err, "attribute '%s' holds %zu strings where one was expected", name, n);
    }
    *value = values[0];
    free(values);
    return 0;
}

int h5_attr_length(hid_t obj, const char *name, size_t *n, MaecError *err)
{
    h5_lock();
    int rc = 0;
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    if (attr < 0) {
        rc = h5_error(err, "attribute '%s' is missing", name);
    } else {
        hid_t space = H5Aget_space(attr);
        *n = space_length(space);
        H5Sclose(space);
        H5Aclose(attr);
    }
    h5_unlock();
    return rc;
}

int h5_attr_read_numbers(hid_t obj, const char *name, hid_t type, void *values, size_t n,
                         MaecError *err)
{
    size_t have = 0;
    if (h5_attr_length(obj, name, &have, err))
        return -1;
    if (have != n)
        return error_set(err, "attribute '%s' holds %zu values where %zu were expected", name, have, n);
    h5_lock();
    int rc = 0;
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ftype = H5Aget_type(attr);
    H5T_class_t cls = H5Tget_class(ftype);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT)
        rc = error_set(err, "attribute '%s' is not numeric (HDF5 type class %d)", name, (int)cls);
    else if (H5Aread(attr, type, values) < 0)
        rc = h5_error(err, "reading attribute '%s'", name);
    H5Tclose(ftype);
    H5Aclose(attr);
    h5_unlock();
    return rc;
}

int h5_write_array(hid_t loc, const char *name, hid_t type, const void *values, size_t n,
                   int deflate, MaecError *err)
{
    h5_lock();
    hsize_t dims[1] = {n}, maxdims[1] = {H5S_UNLIMITED};
    bool chunked = deflate > 0 || n == 0;
    hid_t space = H5Screate_simple(1, dims, chunked ? maxdims : NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunked) {
        hsize_t chunk[1] = {n == 0 ? 1 : n < 65536 ? n : 65536};
        H5Pset_chunk(dcpl, 1, chunk);
        if (deflate > 0)
            H5Pset_deflate(dcpl, (unsigned)deflate);
    }
    int rc = 0;
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds = H5Dcreate2(loc, name, type, space, lcpl, dcpl, H5P_DEFAULT);
    if (ds < 0)
        rc = h5_error(err, "creating dataset '%s'", name);
    else if (n > 0 && H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0)
        rc = h5_error(err, "writing dataset '%s'", name);
    if (ds >= 0)
        H5Dclose(ds);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(space);
    h5_unlock();
    return rc;
}

int h5_write_strings(hid_t loc, const char *name, const char *const *values, size_t n, MaecError *err)
{
    h5_lock();
    hid_t type = string_type();
    int rc = h5_write_array(loc, name, type, values, n, 0, err);
    H5Tclose(type);
    h5_unlock();
    return rc;
}

/* Opens a 1-D dataset and returns its length; -1 with err when it is missing or not 1-D. */
static hid_t open_vector(hid_t loc, const char *name, size_t *n, MaecError *err)
{
    if (!h5_link_exists(loc, name)) {
        error_set(err, "dataset '%s' is missing", name);
        return -1;
    }
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) {
        h5_error(err, "opening dataset '%s'", name);
        return -1;
    }
    hid_t space = H5Dget_space(ds);
    int rank = H5Sget_simple_extent_ndims(space);
    *n = space_length(space);
    H5Sclose(space);
    if (rank != 1) {
        H5Dclose(ds);
        error_set(err, "dataset '%s' has %d dimensions where 1 was expected", name, rank);
        return -1;
    }
    return ds;
}

int h5_dataset_length(hid_t loc, const char *name, size_t *n, MaecError *err)
{
    h5_lock();
    hid_t ds = open_vector(loc, name, n, err);
    if (ds >= 0)
        H5Dclose(ds);
    h5_unlock();
    return ds < 0 ? -1 : 0;
}

int h5_read_array(hid_t loc, const char *name, hid_t type, void *values, size_t n, MaecError *err)
{
    h5_lock();
    size_t have = 0;
    int rc = 0;
    hid_t ds = open_vector(loc, name, &have, err);
    if (ds < 0)
        rc = -1;
    else if (have != n)
        rc = error_set(err, "dataset '%s' holds %zu values where %zu were expected", name, have, n);
    else if (n > 0 && H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0)
        rc = h5_error(err, "reading dataset '%s'", name);
    if (ds >= 0)
        H5Dclose(ds);
    h5_unlock();
    return rc;
}

int h5_read_strings(hid_t loc, const char *name, char ***values, size_t *n, MaecError *err)
{
    h5_lock();
    int rc = -1;
    hid_t ds = open_vector(loc, name, n, err);
    if (ds >= 0) {
        rc = read_object_strings(ds, false, values, n, name, err);
        H5Dclose(ds);
    }
    h5_unlock();
    return rc;
}
