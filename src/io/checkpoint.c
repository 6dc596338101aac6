#include "maec/checkpoint.h"

#include "maec/alloc.h"
#include "maec/dist.h"
#include "maec/files.h"
#include "maec/h5.h"
#include "maec/log.h"
#include "maec/zero.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_PREFIX ".checkpoint-"
#define FILE_PREFIX "checkpoint-"
#define FILE_SUFFIX ".h5"

/* ---- selections of a flat range inside an N-D dataset ---------------------------------------- */

typedef struct Selection {
    hid_t space;
    int ndim;
    const hsize_t *dims;
    hsize_t start[PARAM_MAX_DIMS], count[PARAM_MAX_DIMS];
    bool any;
} Selection;

static void add_block(Selection *s, int depth, hsize_t first, hsize_t n)
{
    for (int d = 0; d < s->ndim; d++)
        if (d < depth)
            s->count[d] = 1;
        else if (d == depth)
            s->start[d] = first, s->count[d] = n;
        else
            s->start[d] = 0, s->count[d] = s->dims[d];
    H5Sselect_hyperslab(s->space, s->any ? H5S_SELECT_OR : H5S_SELECT_SET, s->start, NULL, s->count, NULL);
    s->any = true;
}

/* Selects the elements whose row-major index, within the sub-array at the fixed leading indices
 * start[0, depth), lies in [a, b): at most a partial row, a block of whole rows, a partial row. */
static void select_flat(Selection *s, int depth, hsize_t a, hsize_t b)
{
    if (a >= b)
        return;
    hsize_t row = 1;
    for (int d = depth + 1; d < s->ndim; d++)
        row *= s->dims[d];
    if (row == 1) {
        add_block(s, depth, a, b - a);
        return;
    }
    if (a % row) {
        hsize_t r = a / row, end = (r + 1) * row < b ? (r + 1) * row : b;
        s->start[depth] = r;
        select_flat(s, depth + 1, a - r * row, end - r * row);
        a = end;
    }
    if (b / row > a / row && a < b)
        add_block(s, depth, a / row, b / row - a / row);
    if (b % row && b / row * row >= a) {
        s->start[depth] = b / row;
        select_flat(s, depth + 1, 0, b % row);
    }
}

/* File selection of flat elements [a, b) of a dataset with these dims (nothing when a >= b). */
static hid_t flat_selection(int ndim, const hsize_t *dims, hsize_t a, hsize_t b)
{
    Selection s = {H5Screate_simple(ndim, dims, NULL), ndim, dims, {0}, {0}, false};
    H5Sselect_none(s.space);
    select_flat(&s, 0, a, b);
    return s.space;
}

static hid_t memory_space(hsize_t n)
{
    hsize_t one = n ? n : 1;
    hid_t space = H5Screate_simple(1, &one, NULL);
    if (!n)
        H5Sselect_none(space);
    return space;
}

/* ---- writing ---------------------------------------------------------------------------------- */

static _Noreturn void write_failed(const char *path, const char *what)
{
    MaecError err;
    h5_error(&err, "writing checkpoint %s: %s", path, what);
    fatal("%s; check free space and permissions of the checkpoint directory", err.msg);
}

/* Collective: every rank creates the dataset; each writes flat elements [a, b) from src. */
static void write_tensor(hid_t group, const char *path, const char *name, int ndim, const size_t *shape,
                         const float *src, hsize_t a, hsize_t b)
{
    hsize_t dims[PARAM_MAX_DIMS];
    for (int d = 0; d < ndim; d++)
        dims[d] = shape[d];
    hid_t fspace = H5Screate_simple(ndim, dims, NULL);
    hid_t dset = H5Dcreate2(group, name, H5T_NATIVE_FLOAT, fspace, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(fspace);
    if (dset < 0)
        write_failed(path, name);
    hid_t sel = flat_selection(ndim, dims, a, b), mem = memory_space(b > a ? b - a : 0);
    hid_t xfer = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE);
    herr_t rc = H5Dwrite(dset, H5T_NATIVE_FLOAT, mem, sel, xfer, src);
    H5Pclose(xfer), H5Sclose(mem), H5Sclose(sel), H5Dclose(dset);
    if (rc < 0)
        write_failed(path, name);
}

/* The part of [lo, hi) inside a tensor at [offset, offset + numel), relative to the tensor. */
static void overlap(size_t lo, size_t hi, size_t offset, size_t numel, hsize_t *a, hsize_t *b)
{
    size_t x = lo > offset ? lo : offset, y = hi < offset + numel ? hi : offset + numel;
    *a = x - offset;
    *b = y > x ? y - offset : x - offset;
}

/* /GROUP/<name> for every tensor of table, from a buffer holding flat elements [lo, hi) at base. */
static void write_buffer(hid_t file, const char *path, const char *group_name, const ParamTable *table,
                         const float *base, size_t lo, size_t hi)
{
    hid_t group = H5Gcreate2(file, group_name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (group < 0)
        write_failed(path, group_name);
    for (size_t i = 0; i < table->count; i++) {
        const ParamTensor *t = &table->tensors[i];
        hsize_t a, b;
        overlap(lo, hi, t->offset, t->numel, &a, &b);
        write_tensor(group, path, t->name, t->ndim, t->shape, base + (t->offset + a - lo), a, b);
    }
    H5Gclose(group);
}

static void write_fixed(hid_t file, const char *path, const CheckpointWrite *w)
{
    hid_t group = H5Gopen2(file, "model", H5P_DEFAULT);
    for (size_t i = 0; i < w->nfixed; i++) {
        const FixedTensor *f = &w->fixed[i];
        size_t numel = 1;
        for (int d = 0; d < f->ndim; d++)
            numel *= f->shape[d];
        write_tensor(group, path, f->name, f->ndim, f->shape, f->data, 0, dist_rank() == 0 ? numel : 0);
    }
    H5Gclose(group);
}

static void write_arrays_collectively(const CheckpointWrite *w, const char *tmp)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, dist_comm(), MPI_INFO_NULL);
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (file < 0)
        write_failed(tmp, "creating the file");
    write_buffer(file, tmp, "model", w->table, w->params + w->lo, w->lo, w->hi);
    write_fixed(file, tmp, w);
    hid_t optim = H5Gcreate2(file, "optim", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(optim);
    write_buffer(file, tmp, "optim/m", w->table, w->m, w->lo, w->hi);
    write_buffer(file, tmp, "optim/v", w->table, w->v, w->lo, w->hi);
    size_t lo, hi; /* every rank holds all of the state; each writes its share */
    zero_shard_range(w->state->padded, dist_rank(), dist_size(), &lo, &hi);
    write_buffer(file, tmp, "state", w->state, w->state_values + lo, lo, hi);
    if (H5Fclose(file) < 0)
        write_failed(tmp, "closing the file");
}

/* Attributes and text go in afterwards from rank 0 alone: parallel HDF5 cannot write
 * variable-length strings collectively. */
static void write_metadata(const char *tmp, const CheckpointMeta *m)
{
    MaecError err;
    hid_t file = h5_open_file(tmp, true, &err);
    if (file < 0)
        fatal("reopening checkpoint %s: %s", tmp, err.msg);
    const long long step = m->step, batch = m->global_batch;
    const int version = CHECKPOINT_FORMAT_VERSION, world = m->world_size;
    if (h5_attr_write_string(file, "format", CHECKPOINT_FORMAT, &err) ||
        h5_attr_write_scalar(file, "version", H5T_NATIVE_INT, &version, &err) ||
        h5_attr_write_scalar(file, "step", H5T_NATIVE_LLONG, &step, &err) ||
        h5_attr_write_scalar(file, "global_batch", H5T_NATIVE_LLONG, &batch, &err) ||
        h5_attr_write_scalar(file, "world_size", H5T_NATIVE_INT, &world, &err) ||
        h5_attr_write_string(file, "dist_mode", m->dist_mode, &err) ||
        h5_attr_write_string(file, "objective", m->objective, &err) ||
        h5_attr_write_string(file, "code_version", m->code_version, &err) ||
        h5_write_strings(file, "config", (const char *const *)&m->config_yaml, 1, &err) ||
        h5_attr_write_array(file, "input_mean", H5T_NATIVE_FLOAT, m->input_mean, (size_t)m->channels, &err) ||
        h5_attr_write_array(file, "input_std", H5T_NATIVE_FLOAT, m->input_std, (size_t)m->channels, &err))
        fatal("writing the metadata of checkpoint %s: %s", tmp, err.msg);
    h5_close_file(file);
}

static bool parse_step(const char *name, const char *prefix, const char *suffix, long *step)
{
    size_t np = strlen(prefix), ns = strlen(suffix), n = strlen(name);
    if (n <= np + ns || strncmp(name, prefix, np) || strcmp(name + n - ns, suffix))
        return false;
    char *end = NULL;
    *step = strtol(name + np, &end, 10);
    return end == name + n - ns;
}

static int compare_long_desc(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Steps of the complete checkpoints in dir, newest first; *n of them (malloc'd array). */
static long *list_steps(const char *dir, size_t *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    long *steps = NULL;
    size_t cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        long step;
        if (!parse_step(e->d_name, FILE_PREFIX, FILE_SUFFIX, &step))
            continue;
        if (*n == cap)
            steps = xrealloc(steps, (cap = cap ? 2 * cap : 16) * sizeof(long), "checkpoint list");
        steps[(*n)++] = step;
    }
    closedir(d);
    if (*n > 0) /* qsort must not get the NULL of an empty list */
        qsort(steps, *n, sizeof(long), compare_long_desc);
    return steps;
}

static void step_path(char *buf, size_t size, const char *dir, long step)
{
    snprintf(buf, size, "%s/" FILE_PREFIX "%08ld" FILE_SUFFIX, dir, step);
}

static void delete_old(const char *dir, int keep_last)
{
    size_t n;
    long *steps = list_steps(dir, &n);
    for (size_t i = (size_t)(keep_last > 0 ? keep_last : 1); i < n; i++) {
        char path[4096];
        step_path(path, sizeof path, dir, steps[i]);
        if (unlink(path) != 0)
            log_warn("could not delete old checkpoint %s: %s", path, strerror(errno));
    }
    free(steps);
}

void checkpoint_save(const CheckpointWrite *w, char *path, size_t size)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/" TMP_PREFIX "%08ld" FILE_SUFFIX ".tmp", w->dir, w->meta->step);
    step_path(path, size, w->dir, w->meta->step);
    MaecError err;
    if (dist_rank() == 0 && make_dirs(w->dir, &err) != 0)
        fatal("%s (set checkpoint.dir to a writable place)", err.msg);
    dist_barrier();
    h5_lock();
    write_arrays_collectively(w, tmp);
    dist_barrier();
    if (dist_rank() == 0) {
        write_metadata(tmp, w->meta);
        if (rename(tmp, path) != 0)
            fatal("renaming checkpoint %s to %s: %s", tmp, path, strerror(errno));
        delete_old(w->dir, w->keep_last);
    }
    h5_unlock();
    dist_barrier();
}

int checkpoint_find_latest(const char *dir, char *path, size_t size, MaecError *err)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return errno == ENOENT ? 0 : error_set(err, "checkpoint directory %s: %s", dir, strerror(errno));
    size_t n;
    long *steps = list_steps(dir, &n);
    if (!steps && n == 0 && access(dir, R_OK) != 0)
        return error_set(err, "cannot read checkpoint directory %s: %s", dir, strerror(errno));
    int found = n > 0;
    if (found)
        step_path(path, size, dir, steps[0]);
    free(steps);
    return found;
}

/* ---- reading ---------------------------------------------------------------------------------- */

static void shape_text(char *buf, size_t size, int ndim, const hsize_t *dims)
{
    int k = snprintf(buf, size, "[");
    for (int d = 0; d < ndim && k > 0 && (size_t)k < size; d++)
        k += snprintf(buf + k, size - (size_t)k, d ? ", %llu" : "%llu", (unsigned long long)dims[d]);
    if (k > 0 && (size_t)k < size)
        snprintf(buf + k, size - (size_t)k, "]");
}

/* Reads flat elements [a, b) of /GROUP/<stored> into dst, after checking it has t's shape. The
 * stored name differs from t's when a tensor is loaded under another name. */
static int read_tensor_as(hid_t file, const char *path, const char *group, const char *stored,
                          const ParamTensor *t, float *dst, hsize_t a, hsize_t b, MaecError *err)
{
    char name[2 * PARAM_NAME_MAX + 32];
    snprintf(name, sizeof name, "%s/%s", group, stored);
    const char *as = strcmp(stored, t->name) ? t->name : NULL;
    if (!h5_link_exists(file, name))
        return as ? error_set(err, "checkpoint %s has no tensor %s to load as %s: it holds another model",
                              path, name, as)
                  : error_set(err, "checkpoint %s has no tensor %s: it was written for another model or "
                              "objective", path, name);
    hid_t dset = H5Dopen2(file, name, H5P_DEFAULT), space = H5Dget_space(dset);
    hsize_t dims[8], want[PARAM_MAX_DIMS];
    int nd = H5Sget_simple_extent_dims(space, dims, NULL);
    bool same = nd == t->ndim;
    for (int d = 0; d < t->ndim; d++) {
        want[d] = t->shape[d];
        same = same && dims[d] == want[d];
    }
    H5Sclose(space);
    if (!same) {
        char got_s[128], want_s[128];
        shape_text(got_s, sizeof got_s, nd, dims);
        shape_text(want_s, sizeof want_s, t->ndim, want);
        H5Dclose(dset);
        if (as)
            return error_set(err, "checkpoint %s: %s has shape %s, but %s of this job's configuration has %s: "
                             "configure it as the model that wrote the checkpoint", path, name, got_s, as, want_s);
        return error_set(err, "checkpoint %s: %s has shape %s, but the model has %s: the job's model "
                              "configuration differs from the one that wrote the checkpoint", path, name, got_s, want_s);
    }
    hid_t sel = flat_selection(nd, dims, a, b), mem = memory_space(b > a ? b - a : 0);
    herr_t rc = H5Dread(dset, H5T_NATIVE_FLOAT, mem, sel, H5P_DEFAULT, dst);
    H5Sclose(mem), H5Sclose(sel), H5Dclose(dset);
    return rc < 0 ? h5_error(err, "reading %s from checkpoint %s", name, path) : 0;
}

static int read_tensor(hid_t file, const char *path, const char *group, const ParamTensor *t, float *dst,
                       hsize_t a, hsize_t b, MaecError *err)
{
    return read_tensor_as(file, path, group, t->name, t, dst, a, b, err);
}

static int read_meta_open(hid_t file, const char *path, CheckpointMeta *meta, MaecError *err)
{
    memset(meta, 0, sizeof *meta);
    char *format = NULL, *text = NULL;
    int version = 0;
    long long step = 0, batch = 0;
    if (h5_attr_read_string(file, "format", &format, err) || strcmp(format, CHECKPOINT_FORMAT) != 0) {
        free(format);
        return error_set(err, "%s is not a maec checkpoint (its 'format' attribute is missing or different)", path);
    }
    free(format);
    if (h5_attr_read_numbers(file, "version", H5T_NATIVE_INT, &version, 1, err))
        return error_prefix(err, "%s", path);
    if (version < 1 || version > CHECKPOINT_FORMAT_VERSION)
        return error_set(err, "%s is a checkpoint of format version %d; this maec reads versions 1 to %d: use "
                         "the maec that wrote it, or a newer one", path, version, CHECKPOINT_FORMAT_VERSION);
    meta->version = version;
    char **config = NULL;
    size_t nconfig = 0;
    if (h5_attr_read_numbers(file, "step", H5T_NATIVE_LLONG, &step, 1, err) ||
        h5_attr_read_numbers(file, "global_batch", H5T_NATIVE_LLONG, &batch, 1, err) ||
        h5_attr_read_numbers(file, "world_size", H5T_NATIVE_INT, &meta->world_size, 1, err) ||
        h5_read_strings(file, "config", &config, &nconfig, err))
        return error_prefix(err, "checkpoint %s", path);
    size_t channels = 0;
    if (h5_attr_length(file, "input_mean", &channels, err) || channels < 1 || channels > CHECKPOINT_MAX_CHANNELS ||
        h5_attr_read_numbers(file, "input_mean", H5T_NATIVE_FLOAT, meta->input_mean, channels, err) ||
        h5_attr_read_numbers(file, "input_std", H5T_NATIVE_FLOAT, meta->input_std, channels, err))
        return error_set(err, "checkpoint %s: its input normalisation (attributes input_mean, input_std of 1 to %d "
                         "channels) is missing or unreadable", path, CHECKPOINT_MAX_CHANNELS);
    meta->channels = (int)channels;
    meta->step = (long)step;
    meta->global_batch = (long)batch;
    meta->config_yaml = nconfig ? xstrdup(config[0]) : xstrdup("");
    h5_strings_free(config, nconfig);
    const struct { const char *attr; char *dst; size_t size; } strings[] = {
        {"dist_mode", meta->dist_mode, sizeof meta->dist_mode},
        {"objective", meta->objective, sizeof meta->objective},
        {"code_version", meta->code_version, sizeof meta->code_version},
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        if (h5_attr_read_string(file, strings[i].attr, &text, err))
            return error_prefix(err, "checkpoint %s", path);
        snprintf(strings[i].dst, strings[i].size, "%s", text);
        free(text);
    }
    return 0;
}

int checkpoint_read_meta(const char *path, CheckpointMeta *meta, MaecError *err)
{
    hid_t file = h5_open_file(path, false, err);
    if (file < 0)
        return -1;
    h5_lock();
    int rc = read_meta_open(file, path, meta, err);
    h5_unlock();
    h5_close_file(file);
    return rc;
}

void checkpoint_meta_free(CheckpointMeta *meta)
{
    free(meta->config_yaml);
    meta->config_yaml = NULL;
}

static size_t group_links(hid_t file, const char *name)
{
    hsize_t links = 0;
    hid_t group = h5_link_exists(file, name) ? H5Gopen2(file, name, H5P_DEFAULT) : -1;
    H5G_info_t info;
    if (group >= 0 && H5Gget_info(group, &info) >= 0)
        links = info.nlinks;
    if (group >= 0)
        H5Gclose(group);
    return (size_t)links;
}

static int read_state(hid_t file, const char *path, int version, const CheckpointRead *r, MaecError *err)
{
    if (!r->state || r->state->count == 0)
        return 0;
    if (version < 2)
        return error_set(err, "checkpoint %s (format 1) holds no objective state (/state), which this objective "
                         "keeps (%s, ...): it was written by another objective; start a new run", path,
                         r->state->tensors[0].name);
    for (size_t i = 0; i < r->state->count; i++) {
        const ParamTensor *t = &r->state->tensors[i];
        if (read_tensor(file, path, "state", t, r->state_values + t->offset, 0, t->numel, err))
            return -1;
    }
    return 0;
}

static int read_all(hid_t file, const char *path, int version, const CheckpointRead *r, MaecError *err)
{
    const ParamTable *table = r->table;
    for (size_t i = 0; i < table->count; i++) {
        const ParamTensor *t = &table->tensors[i];
        if (read_tensor(file, path, "model", t, r->params + t->offset, 0, t->numel, err))
            return -1;
        hsize_t a, b;
        overlap(r->lo, r->hi, t->offset, t->numel, &a, &b);
        if (r->m && (read_tensor(file, path, "optim/m", t, r->m + (t->offset + a - r->lo), a, b, err) ||
                     read_tensor(file, path, "optim/v", t, r->v + (t->offset + a - r->lo), a, b, err)))
            return -1;
    }
    size_t stored = group_links(file, "optim/m");
    if (stored != table->count)
        return error_set(err, "checkpoint %s holds %zu trainable tensors, the model %zu: it was written for "
                              "another model or objective", path, stored, table->count);
    return read_state(file, path, version, r, err);
}

int checkpoint_load(const char *path, const CheckpointRead *r, CheckpointMeta *meta, MaecError *err)
{
    hid_t file = h5_open_file(path, false, err);
    if (file < 0)
        return -1;
    h5_lock();
    int rc = read_meta_open(file, path, meta, err);
    if (rc == 0)
        rc = read_all(file, path, meta->version, r, err);
    if (rc != 0)
        checkpoint_meta_free(meta);
    h5_unlock();
    h5_close_file(file);
    return rc;
}

int checkpoint_load_renamed(const char *path, const ParamTable *table, float *params, const char *from,
                            const char *to, size_t *loaded, MaecError *err)
{
    hid_t file = h5_open_file(path, false, err);
    if (file < 0)
        return -1;
    h5_lock();
    CheckpointMeta meta;
    int rc = read_meta_open(file, path, &meta, err);
    checkpoint_meta_free(&meta);
    const size_t n_to = strlen(to);
    *loaded = 0;
    for (size_t i = 0; i < table->count && rc == 0; i++) {
        const ParamTensor *t = &table->tensors[i];
        if (strncmp(t->name, to, n_to))
            continue;
        char stored[2 * PARAM_NAME_MAX];
        snprintf(stored, sizeof stored, "%s%s", from, t->name + n_to);
        rc = read_tensor_as(file, path, "model", stored, t, params + t->offset, 0, t->numel, err);
        *loaded += rc == 0;
    }
    h5_unlock();
    h5_close_file(file);
    if (rc == 0 && *loaded == 0)
        return error_set(err, "internal: no tensor of the model starts with '%s' to load from %s", to, path);
    return rc;
}
