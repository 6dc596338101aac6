/* What maec prep converts: a list of items, one sample each, in the dataset's order, and a
 * function that decodes one item. The tiles, wsi, idx and synthetic readers each fill one.
 *
 * Every rank builds the same list (sorted paths, deterministic tile grids) and then decodes only
 * its share, so the dataset does not depend on the number of ranks. */
#ifndef MAEC_SOURCE_H
#define MAEC_SOURCE_H

#include "maec/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How decoding one item ended: usable, unusable input (skipped and recorded unless --strict), or
 * a problem that must stop the run (a tile of the wrong size or channel count). */
typedef enum ItemStatus { ITEM_OK = 0, ITEM_SKIP = 1, ITEM_FATAL = 2 } ItemStatus;

typedef struct PrepItem {
    int32_t source; /* index into PrepSource.sources */
    int32_t label;  /* -1 = unlabeled */
    int64_t record; /* record within the source (see SampleMeta) */
    int32_t x, y;   /* level-0 position in a slide; -1 otherwise */
} PrepItem;

/* out[height * width * channels]. thread is the caller's pool thread (per-thread state). */
typedef ItemStatus (*ItemReader)(void *ctx, const PrepItem *item, uint8_t *out, int thread, MaecError *err);

typedef struct PrepSource {
    const char *unit;  /* what an item is called in progress lines: "tiles", "images" */
    char *description; /* the dataset's source attribute */
    int height, width, channels;
    double mpp;          /* 0 = unknown */
    bool split_by_source; /* a validation split keeps each source whole (slides) */
    char **class_names;
    size_t num_classes;
    char **sources;
    size_t num_sources;
    PrepItem *items;
    size_t num_items, capacity;
    /* Inputs found unusable before any item was made (a slide OpenSlide cannot open). */
    char **rejected, **rejected_reason;
    size_t num_rejected;
    ItemReader read;
    void (*free_ctx)(void *ctx);
    void *ctx;
} PrepSource;

void source_init(PrepSource *s, const char *unit);
void source_free(PrepSource *s);
int32_t source_add_source(PrepSource *s, const char *name);
void source_add_item(PrepSource *s, int32_t source, int32_t label, int64_t record, int32_t x, int32_t y);
void source_reject(PrepSource *s, const char *input, const char *reason);
/* Takes ownership of names[n] (malloc'd strings in a malloc'd array). */
void source_set_classes(PrepSource *s, char **names, size_t n);
void source_set_description(PrepSource *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The whole of a small text file (class names, slide labels), NUL-terminated; free() it. */
char *source_read_text_file(const char *path, MaecError *err);
/* --class-names: "a,b,c" or "@FILE" with one name per line. Names must be distinct and non-empty. */
int source_parse_class_names(const char *arg, char ***names, size_t *n, MaecError *err);
/* A hash of everything that decides the dataset's content and order: ranks compare it. */
uint64_t source_fingerprint(const PrepSource *s);

#endif
