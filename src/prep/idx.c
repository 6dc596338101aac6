#include "maec/idx.h"

#include "maec/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* IDX type code 0x08: unsigned bytes, the only element type MNIST-style datasets use. */
#define IDX_UBYTE 0x08

typedef struct IdxArray {
    uint8_t *data;
    uint32_t dims[3];
    int rank;
} IdxArray;

static uint32_t big_endian_u32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Reads exactly bytes from a gzip or plain file (zlib reads both). */
static int read_exactly(gzFile f, void *buf, size_t bytes, const char *what, MaecError *err)
{
    int got = gzread(f, buf, (unsigned)bytes);
    if (got < 0) {
        int code;
        const char *msg = gzerror(f, &code);
        return error_set(err, "reading %s: %s", what, code == Z_ERRNO ? strerror(errno) : msg);
    }
    if ((size_t)got != bytes)
        return error_set(err, "the file ends inside %s (%d of %zu bytes): it is truncated; download it again", what,
                         got, bytes);
    return 0;
}

static int read_header(gzFile f, IdxArray *a, int expected_rank, MaecError *err)
{
    unsigned char magic[4], dim[4];
    if (read_exactly(f, magic, 4, "the IDX header", err))
        return -1;
    if (magic[0] != 0 || magic[1] != 0 || magic[2] != IDX_UBYTE || magic[3] != expected_rank)
        return error_set(err, "not an IDX file of %d-dimensional unsigned bytes (magic %02x %02x %02x %02x, "
                              "expected 00 00 08 %02x); are images and labels swapped?",
                         expected_rank, magic[0], magic[1], magic[2], magic[3], expected_rank);
    a->rank = expected_rank;
    for (int d = 0; d < expected_rank; d++) {
        if (read_exactly(f, dim, 4, "the IDX header", err))
            return -1;
        a->dims[d] = big_endian_u32(dim);
    }
    return 0;
}

static int read_idx(IdxArray *a, const char *path, int expected_rank, MaecError *err)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return error_set(err, "cannot open %s: %s", path, strerror(errno));
    int rc = read_header(f, a, expected_rank, err);
    size_t total = 1;
    for (int d = 0; !rc && d < a->rank; d++)
        total *= a->dims[d];
    if (!rc && (total == 0 || (a->rank == 3 && (a->dims[1] > 65536 || a->dims[2] > 65536))))
        rc = error_set(err, "the IDX header gives an empty or impossible shape");
    a->data = rc ? NULL : xmalloc(total, "IDX data");
    if (!rc)
        rc = read_exactly(f, a->data, total, "the IDX data", err);
    gzclose(f);
    if (rc) {
        free(a->data);
        a->data = NULL;
        return error_prefix(err, "%s", path);
    }
    return 0;
}

typedef struct IdxReader {
    IdxArray images, labels;
} IdxReader;

static ItemStatus read_record(void *ctx, const PrepItem *item, uint8_t *out, int thread, MaecError *err)
{
    (void)thread, (void)err;
    const IdxReader *r = ctx;
    size_t bytes = (size_t)r->images.dims[1] * r->images.dims[2];
    memcpy(out, r->images.data + (size_t)item->record * bytes, bytes);
    return ITEM_OK;
}

static void free_reader(void *ctx)
{
    IdxReader *r = ctx;
    free(r->images.data);
    free(r->labels.data);
    free(r);
}

static char **numbered_classes(size_t n)
{
    char **names = xmalloc(n * sizeof *names, "class names");
    for (size_t c = 0; c < n; c++) {
        char name[32];
        snprintf(name, sizeof name, "%zu", c);
        names[c] = xstrdup(name);
    }
    return names;
}

/* Without given names, the classes are "0" .. the largest label. */
static int check_classes(PrepSource *src, const IdxReader *r, const char *labels_path, MaecError *err)
{
    uint8_t max_label = 0;
    for (uint32_t i = 0; i < r->labels.dims[0]; i++)
        max_label = r->labels.data[i] > max_label ? r->labels.data[i] : max_label;
    if (!src->class_names)
        source_set_classes(src, numbered_classes((size_t)max_label + 1), (size_t)max_label + 1);
    if (max_label >= src->num_classes)
        return error_set(err, "%s has label %u but --class-names lists %zu classes", labels_path, max_label,
                         src->num_classes);
    return 0;
}

int idx_source(PrepSource *src, const char *images_path, const char *labels_path, char **class_names,
               size_t num_classes, MaecError *err)
{
    source_init(src, "images");
    IdxReader *r = xcalloc(1, sizeof *r, "IDX reader");
    src->ctx = r;
    src->free_ctx = free_reader;
    src->read = read_record;
    if (class_names)
        source_set_classes(src, class_names, num_classes);
    if (read_idx(&r->images, images_path, 3, err) || read_idx(&r->labels, labels_path, 1, err))
        return -1;
    if (r->labels.dims[0] != r->images.dims[0])
        return error_set(err, "%s holds %u labels but %s holds %u images; pass the matching pair of files",
                         labels_path, r->labels.dims[0], images_path, r->images.dims[0]);
    if (check_classes(src, r, labels_path, err))
        return -1;
    src->height = (int)r->images.dims[1];
    src->width = (int)r->images.dims[2];
    src->channels = 1;
    int32_t source = source_add_source(src, images_path);
    for (uint32_t i = 0; i < r->images.dims[0]; i++)
        source_add_item(src, source, r->labels.data[i], i, -1, -1);
    source_set_description(src, "IDX images %s, labels %s", images_path, labels_path);
    return 0;
}
