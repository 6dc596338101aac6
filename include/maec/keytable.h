/* Table-driven YAML settings: a table of typed keys (dotted path, type, range, default, one-line
 * doc, offset into a C struct) drives parsing, validation, defaults, the resolved YAML dump, the
 * markdown reference and equality, so no key needs code of its own.
 *
 * The target struct holds a KeySources pointer (at KeyTable.sources_offset): where each key's
 * value was last given ("FILE:LINE:COL" or "--set KEY=VALUE"), so that messages about a value,
 * including rules across keys checked later, point at what the user wrote. */
#ifndef MAEC_KEYTABLE_H
#define MAEC_KEYTABLE_H

#include "maec/error.h"

#include <stdbool.h>
#include <stddef.h>

/* Capacity of a string value, NUL included (paths, shard lists). */
#define KEY_TEXT_MAX 4096
/* Capacity of a float list (per-channel values: model.in_chans is at most 16). */
#define KEY_FLOATS_MAX 16

typedef struct FloatList {
    int n;
    double v[KEY_FLOATS_MAX];
} FloatList;

typedef enum KeyType {
    KEY_SECTION, /* a mapping of keys; its row comes before its keys */
    KEY_INT,     /* int */
    KEY_FLOAT,   /* double; integers are accepted */
    KEY_BOOL,    /* bool: true or false */
    KEY_STRING,  /* char[KEY_TEXT_MAX] */
    KEY_ENUM,    /* int index into names */
    KEY_FLOATS,  /* FloatList */
} KeyType;

enum KeyFlags {
    KEY_MIN_OPEN = 1u << 0,  /* range excludes min */
    KEY_MAX_OPEN = 1u << 1,  /* range excludes max */
    KEY_NONEMPTY = 1u << 2,  /* strings: must not be empty; empty by default means required */
    KEY_ASCENDING = 1u << 3, /* float lists: each value >= the one before */
};

typedef struct Key {
    const char *path;          /* dotted: "optim.blr" */
    KeyType type;
    size_t offset;             /* where the value lands in the target struct */
    double min, max;           /* numbers and list elements; +-HUGE_VAL for no bound */
    unsigned flags;            /* enum KeyFlags */
    int length;                /* KEY_FLOATS: exact length, or 0 for 0..KEY_FLOATS_MAX */
    const char *const *names;  /* KEY_ENUM: the values in enum order, NULL-terminated */
    const char *def;           /* default as YAML text; NULL when another key's hook sets it */
    const char *default_from;  /* with def NULL: the key whose hook sets the default (for the docs) */
    /* Called after the value is stored (e.g. a preset that fills other keys). Keys given
     * explicitly, before or after, keep their values, so the order they are written in does
     * not matter. */
    void (*after)(void *target);
    const char *doc;           /* one line for the reference */
} Key;

/* Where each key's value was given; owned by the target, freed by keytable_sources_free(). */
typedef struct KeySources KeySources;

/* Layout the YAML dump and the reference rely on: a section's own keys follow its row directly,
 * its subsections after them; top-level keys come before the first section. */
typedef struct KeyTable {
    const Key *keys;
    size_t count;
    size_t target_size;    /* sizeof the target struct */
    size_t sources_offset; /* offsetof its KeySources pointer */
    /* Several tables may read one document, each into its own target: a table passes over the
     * paths in `skip` (sections or keys that another table reads), and, when `section` is set,
     * everything outside that section, which then has no row of its own (the table that owns it
     * writes its header). With `lenient` a key it does not know is passed over too, for another
     * table to judge. `title` and `doc` head the reference of a table with a section, and
     * `title` names it in messages ("objective supmae"). */
    const char *const *skip;
    const char *section;
    bool lenient;
    const char *title, *doc;
} KeyTable;

/* Stores every key's default (table order, hooks run) and clears the sources pointer without
 * freeing it. A default that does not parse is a bug in the table: fatal(). */
void keytable_defaults(void *target, const KeyTable *table);

/* Reads one YAML document (a mapping of sections and keys; "optim.blr: 1" works as well as
 * nesting) over the target. Unknown keys, duplicates, wrong types and values out of range are
 * errors with "NAME:LINE:COL: "; on error the target is unchanged. */
int keytable_read_text(void *target, const KeyTable *table, const char *text, size_t length, const char *name,
                       MaecError *err);
int keytable_read_file(void *target, const KeyTable *table, const char *path, MaecError *err);

/* Reads "KEY=VALUE" with the same checks, messages starting "--set KEY=VALUE: ". VALUE is YAML
 * (a scalar, "[0.5, 1.0]", "{depth: 2}" for a section) except for string keys, which take it
 * verbatim unless it starts with a quote, so globs like "data/nct-?.h5" need no quoting. */
int keytable_set(void *target, const KeyTable *table, const char *assignment, MaecError *err);

/* True if path was given in any source read. */
bool keytable_given(const void *target, const KeyTable *table, const char *path);

/* Sets err to the formatted message, prefixed by where path's value was given ("FILE:L:C: ",
 * "--set K=V: ") when it was. Returns -1. */
int keytable_error(const void *target, const KeyTable *table, const char *path, MaecError *err, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));

/* Reports the first required key (KEY_NONEMPTY string) that is empty. */
int keytable_check_required(const void *target, const KeyTable *table, MaecError *err);

/* The resolved settings as YAML: every key, in table order, values written so that reading the
 * text back gives equal settings. The caller frees the string. */
char *keytable_to_yaml(const void *target, const KeyTable *table);

/* Markdown: for each section a heading, its doc and a table of its keys (type, default, allowed
 * values, doc). The caller frees the string. */
char *keytable_reference_markdown(const KeyTable *table);

/* True if every key has the same value in a and b (where they were given does not count). */
bool keytable_equal(const void *a, const void *b, const KeyTable *table);
/* The same for the keys in section (a section path such as "model") only. */
bool keytable_equal_within(const void *a, const void *b, const KeyTable *table, const char *section);

void keytable_sources_free(void *target, const KeyTable *table);

/* Row builders for a table's Key array: define KEYROW_TARGET as the target struct first. */
#define KEYROW_AT(field) offsetof(KEYROW_TARGET, field)
#define KEYROW_SECTION(p, d) {.path = p, .type = KEY_SECTION, .doc = d}
#define KEYROW_INT(p, f, lo, hi, d, text) \
    {.path = p, .type = KEY_INT, .offset = KEYROW_AT(f), .min = lo, .max = hi, .def = d, .doc = text}
#define KEYROW_FLOAT(p, f, lo, hi, fl, d, text)                                                              \
    {.path = p, .type = KEY_FLOAT, .offset = KEYROW_AT(f), .min = lo, .max = hi, .flags = fl, .def = d, \
     .doc = text}
#define KEYROW_BOOL(p, f, d, text) {.path = p, .type = KEY_BOOL, .offset = KEYROW_AT(f), .def = d, .doc = text}
#define KEYROW_STRING(p, f, fl, d, text) \
    {.path = p, .type = KEY_STRING, .offset = KEYROW_AT(f), .flags = fl, .def = d, .doc = text}
#define KEYROW_ENUM(p, f, n, d, text) \
    {.path = p, .type = KEY_ENUM, .offset = KEYROW_AT(f), .names = n, .def = d, .doc = text}
#define KEYROW_FLOATS(p, f, len, lo, hi, fl, d, text)                                                           \
    {.path = p, .type = KEY_FLOATS, .offset = KEYROW_AT(f), .min = lo, .max = hi, .flags = fl, .length = len, \
     .def = d, .doc = text}
#define KEY_OPEN (KEY_MIN_OPEN | KEY_MAX_OPEN)

#endif
