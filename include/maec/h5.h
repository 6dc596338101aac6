/* HDF5 for maec: one process-wide lock, error messages taken from HDF5's error stack, and the
 * attribute / string / array helpers the dataset and checkpoint formats share.
 *
 * The Debian HDF5 is built without thread safety, and the trainer reads samples on a prefetch
 * thread while the main thread writes checkpoints. So every HDF5 call in maec runs between
 * h5_lock() and h5_unlock(). The lock is recursive: code holding it may call the helpers below,
 * which take it themselves. The first h5_lock() also turns off HDF5's automatic printing of error
 * stacks; failures are reported through MaecError instead (h5_error).
 *
 * Numeric helpers take the native HDF5 type of the caller's buffer (H5T_NATIVE_INT32, ...); the
 * file type is the same, so files read the same on every machine. Strings are UTF-8,
 * variable-length, which h5py reads as str. */
#ifndef MAEC_H5_H
#define MAEC_H5_H

#include "maec/error.h"

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>

void h5_lock(void);
void h5_unlock(void);

/* Formats "what: <HDF5's most specific message>" into err, clears the HDF5 error stack and
 * returns -1. Call right after the failing HDF5 call, with the lock held. */
int h5_error(MaecError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Opens an existing file (read-only or read-write, default sec2 driver). Fails with a message
 * saying whether the file is missing, unreadable or not HDF5. */
hid_t h5_open_file(const char *path, bool writable, MaecError *err);
void h5_close_file(hid_t file);

bool h5_attr_exists(hid_t obj, const char *name);
bool h5_link_exists(hid_t loc, const char *path);

/* Attributes on a file, group or dataset; an existing attribute of that name is replaced. */
int h5_attr_write_string(hid_t obj, const char *name, const char *value, MaecError *err);
int h5_attr_write_strings(hid_t obj, const char *name, const char *const *values, size_t n,
                          MaecError *err);
/* A scalar attribute (h5py: a numpy scalar). */
int h5_attr_write_scalar(hid_t obj, const char *name, hid_t type, const void *value, MaecError *err);
/* A 1-D attribute of n >= 1 values (h5py: a numpy array). */
int h5_attr_write_array(hid_t obj, const char *name, hid_t type, const void *values, size_t n,
                        MaecError *err);

/* *value is malloc'd; free() it. */
int h5_attr_read_string(hid_t obj, const char *name, char **value, MaecError *err);
/* *values is an array of *n malloc'd strings; free with h5_strings_free. */
int h5_attr_read_strings(hid_t obj, const char *name, char ***values, size_t *n, MaecError *err);
/* Number of elements of an attribute (1 for a scalar). */
int h5_attr_length(hid_t obj, const char *name, size_t *n, MaecError *err);
/* Reads exactly n values (a scalar counts as 1) converted to type; any other count is an error. */
int h5_attr_read_numbers(hid_t obj, const char *name, hid_t type, void *values, size_t n,
                         MaecError *err);

/* 1-D datasets. deflate 0 stores them contiguous (or as one chunk when n is 0), 1-9 compresses. */
int h5_write_array(hid_t loc, const char *name, hid_t type, const void *values, size_t n,
                   int deflate, MaecError *err);
int h5_write_strings(hid_t loc, const char *name, const char *const *values, size_t n,
                     MaecError *err);
/* Length of a 1-D dataset. */
int h5_dataset_length(hid_t loc, const char *name, size_t *n, MaecError *err);
/* Reads the whole 1-D dataset of exactly n values, converted to type. */
int h5_read_array(hid_t loc, const char *name, hid_t type, void *values, size_t n, MaecError *err);
int h5_read_strings(hid_t loc, const char *name, char ***values, size_t *n, MaecError *err);

void h5_strings_free(char **values, size_t n);

#endif
