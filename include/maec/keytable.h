/* Table-driven YAML settings: a table of typed keys (dotted path, type, range, default, one-line
 * doc, offset into a C struct) drives parsing, validation, defaults, the resolved YAML dump, the
 * markdown reference and equality, so no key needs code of its own.
 *
 * Loading is two-phase. keyload_read*() parse YAML (a file, a text, or `--set KEY=VALUE`) and
 * record which key gets which value, rejecting unknown keys, duplicates and structure errors;
 * keyload_apply() then converts and range-checks the values into the struct. Every message
 * starts with where the value came from: "FILE:LINE:COL: " or "--set KEY=VALUE: ".
 */
#ifndef MAEC_KEYTABLE_H
#define MAEC_KEYTABLE_H

#include "maec/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

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
    KEY_MIN_OPEN = 1u << 0,    /* range excludes min */
    KEY_MAX_OPEN = 1u << 1,    /* range excludes max */
    KEY_NONEMPTY = 1u << 2,    /* strings: must not be empty; empty by default means required */
    KEY_ASCENDING = 1u << 3,   /* float lists: each value >= the one before */
    KEY_APPLY_FIRST = 1u << 4, /* applied before every other key, e.g. a preset that others refine */
};

typedef struct Key {
    const char *path; /* dotted: "optim.blr"; "" never appears (it is the top level) */
    KeyType type;
    size_t offset;             /* where the value lands in the target struct */
    double min, max;           /* numbers and list elements; +-HUGE_VAL for no bound */
    unsigned flags;            /* enum KeyFlags */
    int length;                /* KEY_FLOATS: exact length, or 0 for 0..KEY_FLOATS_MAX */
    const char *const *names;  /* KEY_ENUM: the values in enum order, NULL-terminated */
    const char *def;           /* default as YAML text; NULL when another key's hook sets it */
    const char *default_from;  /* with def NULL: the key whose hook sets the default (for the docs) */
    void (*after)(void *target); /* called after the value is stored (defaults included) */
    const char *doc;           /* one line for the reference */
} Key;

/* Layout the YAML dump and the reference rely on: a section's own keys follow its row directly,
 * its subsections after them; top-level keys come before the first section. */
typedef struct KeyTable {
    const Key *keys;
    size_t count;
} KeyTable;

/* Stores every key's default (APPLY_FIRST keys first, then table order). A default that does not
 * parse is a bug in the table: fatal(). */
void keytable_defaults(void *target, const KeyTable *table);

/* The resolved settings as YAML: every key, in table order, values written so that reading the
 * text back gives equal settings. The caller frees the string. */
char *keytable_to_yaml(const void *src, const KeyTable *table);

/* Markdown: for each section a heading, its doc and a table of its keys (type, default, allowed
 * values, doc). */
void keytable_write_reference(FILE *out, const KeyTable *table);

/* True if every key has the same value in a and b. */
bool keytable_equal(const void *a, const void *b, const KeyTable *table);

/* One load: the YAML sources read so far and the values they give. */
typedef struct KeyLoad KeyLoad;

KeyLoad *keyload_new(void *target, const KeyTable *table);
void keyload_free(KeyLoad *load);

/* Reads one YAML document (a mapping of sections and keys; "optim.blr: 1" works as well as
 * nesting). name is used in messages and must live as long as load. */
int keyload_read_text(KeyLoad *load, const char *text, size_t length, const char *name, MaecError *err);
int keyload_read_file(KeyLoad *load, const char *path, MaecError *err);

/* Reads "KEY=VALUE". VALUE is YAML (a scalar, "[0.5, 1.0]", "{depth: 2}" for a section) except
 * for string keys, which take it verbatim unless it starts with a quote, so globs like
 * "data/nct-?.h5" need no quoting. arg must live as long as load. Later sources override earlier
 * ones; repeating a key within one file is an error. */
int keyload_read_set(KeyLoad *load, const char *arg, MaecError *err);

/* Converts, range-checks and stores every value read: APPLY_FIRST keys first, then the others in
 * the order read. Then reports a missing required key (KEY_NONEMPTY, empty, never given). */
int keyload_apply(KeyLoad *load, MaecError *err);

/* True if path was given in any source read. */
bool keyload_given(const KeyLoad *load, const char *path);

/* Sets err to the formatted message, prefixed by where path's value was given ("FILE:L:C: ",
 * "--set K=V: "), or by the first source's name when it was not given. Returns -1. */
int keyload_error(const KeyLoad *load, const char *path, MaecError *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
