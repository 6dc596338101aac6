#include "maec/keytable.h"

#include "maec/alloc.h"

#include <yaml.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A job file is a page of text; anything bigger is a wrong path (or /dev/zero). */
#define MAX_SOURCE_BYTES (4u << 20)
#define MAX_PATH_CHARS 256

/* Where a key or value was written, for messages. */
typedef struct Place {
    const char *name;    /* file or text name; NULL for --set */
    const char *set_arg; /* the "KEY=VALUE" of --set */
    bool positioned;     /* line and col are known */
    size_t line, col;    /* 0-based, as libyaml counts */
} Place;

/* One value read for one key. */
/* One value read for one key. */
typedef struct Item {
    const Key *key;
    yaml_node_t *value;
    Place key_place, value_place;
} Item;

/* One source being read (a file, a text, one --set): its document and the values it gives.
 * Nothing reaches the target until the whole source has been checked. */
typedef struct Read {
    const KeyTable *table;
    yaml_document_t doc;
    Item *items;
    size_t n_items;
} Read;

struct KeySources {
    size_t count;  /* keys in the table */
    char *where[]; /* per key of the table: "FILE:L:C" or "--set K=V"; NULL = not given */
};

/* ---- messages ---- */

static void place_format(char *buf, size_t size, const Place *p)
{
    if (p->set_arg)
        snprintf(buf, size, "--set %s", p->set_arg);
    else if (p->positioned)
        snprintf(buf, size, "%s:%zu:%zu", p->name, p->line + 1, p->col + 1);
    else
        snprintf(buf, size, "%s", p->name ? p->name : "configuration");
}

static int verror_at(const Place *p, MaecError *err, const char *fmt, va_list ap)
{
    if (!err)
        return -1;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    char where[600];
    place_format(where, sizeof where, p);
    return error_prefix(err, "%s", where);
}

__attribute__((format(printf, 3, 4)))
static int error_at(const Place *p, MaecError *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror_at(p, err, fmt, ap);
    va_end(ap);
    return -1;
}

static Place place_of(const Place *source, const yaml_node_t *node)
{
    Place p = *source;
    p.positioned = source->set_arg == NULL;
    p.line = node->start_mark.line;
    p.col = node->start_mark.column;
    return p;
}

/* ---- the table ---- */

static const Key *find_row(const KeyTable *t, const char *path)
{
    for (size_t i = 0; i < t->count; i++)
        if (!strcmp(t->keys[i].path, path))
            return &t->keys[i];
    return NULL;
}

/* Length of the section part of a path: "data.augment.hflip" -> 12, "seed" -> 0. */
static size_t section_length(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot ? (size_t)(dot - path) : 0;
}

static const char *leaf_name(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

static bool in_section(const char *path, const char *section)
{
    size_t n = strlen(section);
    return section_length(path) == n && !strncmp(path, section, n);
}

/* path is section or lies anywhere below it. */
static bool under(const char *path, const char *section)
{
    size_t n = strlen(section);
    return !strncmp(path, section, n) && (path[n] == '\0' || path[n] == '.');
}

/* Paths another table reads (see KeyTable). The section's own path and the root are visited. */
static bool passed_over(const KeyTable *t, const char *path)
{
    for (const char *const *s = t->skip; s && *s; s++)
        if (under(path, *s))
            return true;
    return t->section && !under(path, t->section) && !under(t->section, path);
}

/* Bytes of a key's value in the target struct. */
static size_t value_size(const Key *k)
{
    switch (k->type) {
    case KEY_INT:
    case KEY_ENUM:
        return sizeof(int);
    case KEY_FLOAT:
        return sizeof(double);
    case KEY_BOOL:
        return sizeof(bool);
    case KEY_STRING:
        return KEY_TEXT_MAX;
    case KEY_FLOATS:
        return sizeof(FloatList);
    case KEY_SECTION:
        break;
    }
    return 0;
}

static int path_depth(const char *path)
{
    int depth = 0;
    for (const char *c = path; *c; c++)
        depth += *c == '.';
    return depth;
}

/* ---- nearest names ---- */

/* Optimal string alignment distance: edits plus adjacent swaps ("mdoe" is 1 from "mode"). */
static size_t edit_distance(const char *a, const char *b)
{
    enum { W = MAX_PATH_CHARS + 1 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= W || lb >= W)
        return SIZE_MAX / 2;
    size_t rows[3][W];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

/* How many edits still look like a typo rather than another word. */
static size_t typo_limit(const char *name)
{
    size_t n = strlen(name);
    return n <= 3 ? 1 : n <= 8 ? 2 : 3;
}

/* The row a misspelt path most likely meant: compared as a whole, by its last part within its
 * section, and as an exact last part elsewhere, so a key put in the wrong section ("crop_scale"
 * under data) is found while "optim.batch_size" is not mistaken for "model.patch_size". */
static const Key *nearest_row(const KeyTable *t, const char *path)
{
    const char *name = leaf_name(path);
    size_t section = section_length(path), best_score = typo_limit(name) + 1;
    const Key *best = NULL;
    for (size_t i = 0; i < t->count; i++) {
        const Key *k = &t->keys[i];
        bool same_section = section_length(k->path) == section && !strncmp(k->path, path, section);
        size_t whole = edit_distance(path, k->path);
        size_t by_leaf = same_section ? edit_distance(name, leaf_name(k->path))
                         : strcmp(name, leaf_name(k->path)) ? SIZE_MAX : 1;
        size_t score = whole < by_leaf ? whole : by_leaf;
        if (score < best_score) {
            best_score = score;
            best = k;
        }
    }
    return best;
}

static const char *nearest_name(const char *const *names, const char *text)
{
    size_t best_score = typo_limit(text) + 1;
    const char *best = NULL;
    for (const char *const *n = names; *n; n++) {
        size_t score = edit_distance(text, *n);
        if (score < best_score) {
            best_score = score;
            best = *n;
        }
    }
    return best;
}

/* "a, b, c" into buf. */
static void join_names(char *buf, size_t size, const char *const *names)
{
    size_t used = 0;
    buf[0] = '\0';
    for (const char *const *n = names; *n && used < size; n++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", n == names ? "" : ", ", *n);
}

/* The last parts of a section's rows, "blr, lr, ...", into buf. */
static void join_children(char *buf, size_t size, const KeyTable *t, const char *section)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < t->count && used < size; i++)
        if (in_section(t->keys[i].path, section))
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
                                     leaf_name(t->keys[i].path));
}

static int unknown_key(const KeyTable *t, const char *path, const Place *at, MaecError *err)
{
    const Key *near = nearest_row(t, path);
    if (near)
        return error_at(at, err, "unknown key '%s'; did you mean '%s'?", path, near->path);
    char section[MAX_PATH_CHARS], keys[1024];
    snprintf(section, sizeof section, "%.*s", (int)section_length(path), path);
    join_children(keys, sizeof keys, t, section);
    if (t->title && t->section && !strcmp(section, t->section))
        return error_at(at, err, "unknown key '%s'; the keys of %s are: %s", path, t->title,
                        keys[0] ? keys : "(none)");
    if (!section[0])
        return error_at(at, err, "unknown key '%s'; the top-level keys are: %s", path, keys);
    return error_at(at, err, "unknown key '%s'; the keys of '%s' are: %s", path, section, keys);
}

/* ---- YAML nodes ---- */

static const char *scalar_text(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static bool is_plain(const yaml_node_t *n) { return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE; }

static bool is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    if (n->type != YAML_SCALAR_NODE || !is_plain(n))
        return false;
    for (const char *const *s = nulls; *s; s++)
        if (!strcmp(scalar_text(n), *s))
            return true;
    return false;
}

/* What a node is, for "expected X, got Y". */
static void describe(char *buf, size_t size, const yaml_node_t *n)
{
    if (n->type == YAML_MAPPING_NODE)
        snprintf(buf, size, "a mapping");
    else if (n->type == YAML_SEQUENCE_NODE)
        snprintf(buf, size, "a list");
    else if (is_null(n))
        snprintf(buf, size, "nothing");
    else if (is_plain(n))
        snprintf(buf, size, "'%.80s'", scalar_text(n));
    else
        snprintf(buf, size, "the quoted string \"%.80s\"", scalar_text(n));
}

static yaml_node_t *node_at(yaml_document_t *doc, yaml_node_item_t index)
{
    return yaml_document_get_node(doc, index);
}

/* A YAML double-quoted string that reads back as s. */
static char *yaml_quote(const char *s)
{
    char *out = xmalloc(4 * strlen(s) + 3, "a quoted string");
    char *o = out;
    *o++ = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            *o++ = '\\';
            *o++ = (char)*c;
        } else if (*c < 0x20 || *c == 0x7f) {
            o += sprintf(o, "\\x%02x", *c);
        } else {
            *o++ = (char)*c;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

/* ---- parsing a document ---- */

static int syntax_error(const yaml_parser_t *p, const char *text, size_t length, const Place *source,
                        MaecError *err)
{
    Place at = *source;
    at.positioned = source->set_arg == NULL;
    size_t index = p->problem_mark.index;
    at.line = p->problem_mark.line;
    at.col = p->problem_mark.column;
    if (p->error == YAML_READER_ERROR) { /* only a byte offset: count lines ourselves */
        index = p->problem_offset;
        size_t line_start = 0;
        at.line = 0;
        for (size_t i = 0; i < index && i < length; i++)
            if (text[i] == '\n') {
                at.line++;
                line_start = i + 1;
            }
        at.col = index - line_start;
    }
    const char *hint = index < length && text[index] == '\t'
                           ? " (YAML does not allow tabs for indentation; use spaces)" : "";
    const char *problem = p->problem ? p->problem : "out of memory";
    if (p->context)
        return error_at(&at, err, "invalid YAML: %s, %s at %zu:%zu%s", problem, p->context,
                        p->context_mark.line + 1, p->context_mark.column + 1, hint);
    return error_at(&at, err, "invalid YAML: %s%s", problem, hint);
}

/* A second document ("---") would be silently ignored; say so instead. */
static int check_no_second_document(yaml_parser_t *parser, const char *text, size_t length,
                                    const Place *source, MaecError *err)
{
    yaml_document_t extra;
    if (!yaml_parser_load(parser, &extra))
        return syntax_error(parser, text, length, source, err);
    yaml_node_t *root = yaml_document_get_root_node(&extra);
    int rc = 0;
    if (root) {
        Place at = place_of(source, root);
        rc = error_at(&at, err, "a second YAML document starts here; a job file holds one");
    }
    yaml_document_delete(&extra);
    return rc;
}

/* Parses exactly one YAML document into doc; on success the caller deletes it. */
static int parse_document(yaml_document_t *doc, const char *text, size_t length, const Place *source,
                          MaecError *err)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        fatal("out of memory starting the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, length);
    int rc = 0;
    if (!yaml_parser_load(&parser, doc)) {
        rc = syntax_error(&parser, text, length, source, err);
    } else if (check_no_second_document(&parser, text, length, source, err)) {
        yaml_document_delete(doc);
        rc = -1;
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* ---- collecting values ---- */

static const Item *read_item(const Read *read, const Key *key)
{
    for (size_t i = 0; i < read->n_items; i++)
        if (read->items[i].key == key)
            return &read->items[i];
    return NULL;
}

/* Catches a key given twice in one source in different spellings ("optim.blr" and optim: blr). */
static int add_item(Read *read, const Key *key, yaml_node_t *value, const Place *key_place, MaecError *err)
{
    const Item *old = read_item(read, key);
    if (old)
        return error_at(key_place, err, "duplicate key '%s' (first given at %zu:%zu)", key->path,
                        old->key_place.line + 1, old->key_place.col + 1);
    read->items = xrealloc(read->items, (read->n_items + 1) * sizeof *read->items, "configuration values");
    read->items[read->n_items++] = (Item){key, value, *key_place, place_of(key_place, value)};
    return 0;
}

static int visit(Read *read, const char *path, yaml_node_t *value, const Place *key_place, MaecError *err);

/* The name of one mapping pair's key. */
static int pair_key(const char **name, yaml_document_t *doc, const yaml_node_pair_t *pair, const Place *at,
                    MaecError *err)
{
    yaml_node_t *key = node_at(doc, pair->key);
    char got[128];
    describe(got, sizeof got, key);
    if (key->type != YAML_SCALAR_NODE)
        return error_at(at, err, "expected a key name, got %s", got);
    *name = scalar_text(key);
    return 0;
}

/* YAML forbids a key twice in one mapping; libyaml leaves that check to us. */
static int check_unique(yaml_document_t *doc, const yaml_node_pair_t *first, const yaml_node_pair_t *pair,
                        const char *name, const char *path, const Place *at, MaecError *err)
{
    for (const yaml_node_pair_t *p = first; p < pair; p++) {
        yaml_node_t *earlier = node_at(doc, p->key);
        if (earlier->type == YAML_SCALAR_NODE && !strcmp(scalar_text(earlier), name))
            return error_at(at, err, "duplicate key '%s' (first given at %zu:%zu)", path,
                            earlier->start_mark.line + 1, earlier->start_mark.column + 1);
    }
    return 0;
}

static int not_a_mapping(const char *section, const yaml_node_t *value, const Place *key_place, MaecError *err)
{
    Place at = place_of(key_place, value);
    char got[128];
    describe(got, sizeof got, value);
    if (!section[0])
        return error_at(&at, err, "expected a mapping of keys at the top level, got %s", got);
    return error_at(&at, err, "'%s' is a section: expected a mapping of its keys, got %s", section, got);
}

static int visit_section(Read *read, const char *section, yaml_node_t *value, const Place *key_place,
                         MaecError *err)
{
    if (is_null(value)) /* "augment:" with nothing under it */
        return 0;
    if (value->type != YAML_MAPPING_NODE)
        return not_a_mapping(section, value, key_place, err);
    yaml_document_t *doc = &read->doc;
    const yaml_node_pair_t *first = value->data.mapping.pairs.start;
    for (const yaml_node_pair_t *pair = first; pair < value->data.mapping.pairs.top; pair++) {
        Place at = place_of(key_place, node_at(doc, pair->key));
        const char *name = "";
        if (pair_key(&name, doc, pair, &at, err))
            return -1;
        char path[MAX_PATH_CHARS + 1];
        int n = snprintf(path, sizeof path, "%s%s%s", section, section[0] ? "." : "", name);
        if (n < 0 || (size_t)n >= sizeof path)
            return error_at(&at, err, "unknown key '%.60s...' (far longer than any key)", name);
        if (check_unique(doc, first, pair, name, path, &at, err) ||
            visit(read, path, node_at(doc, pair->value), &at, err))
            return -1;
    }
    return 0;
}

static int visit(Read *read, const char *path, yaml_node_t *value, const Place *key_place, MaecError *err)
{
    const KeyTable *t = read->table;
    if (path[0] && passed_over(t, path))
        return 0;
    const Key *row = path[0] ? find_row(t, path) : NULL;
    if (row && row->type != KEY_SECTION)
        return add_item(read, row, value, key_place, err);
    bool own_section = t->section && under(t->section, path);
    if (!row && path[0] && !own_section)
        return t->lenient ? 0 : unknown_key(t, path, key_place, err);
    return visit_section(read, path, value, key_place, err);
}

/* ---- converting values ---- */

static void format_double(char *buf, size_t size, double v)
{
    if (isinf(v)) {
        snprintf(buf, size, "%sinf", v < 0 ? "-" : "");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) { /* %g would write 400 as 4e+02 */
        snprintf(buf, size, "%.0f", v);
        return;
    }
    for (int precision = 1; precision <= 17; precision++) { /* the shortest text that reads back */
        snprintf(buf, size, "%.*g", precision, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void format_range(char *buf, size_t size, const Key *k)
{
    char lo[32], hi[32];
    format_double(lo, sizeof lo, k->min);
    format_double(hi, sizeof hi, k->max);
    snprintf(buf, size, "%c%s, %s%c", (k->flags & KEY_MIN_OPEN) || isinf(k->min) ? '(' : '[', lo, hi,
             (k->flags & KEY_MAX_OPEN) || isinf(k->max) ? ')' : ']');
}

static bool in_range(const Key *k, double v)
{
    bool above = k->flags & KEY_MIN_OPEN ? v > k->min : v >= k->min;
    bool below = k->flags & KEY_MAX_OPEN ? v < k->max : v <= k->max;
    return above && below;
}

/* YAML 1.2 core schema numbers, finite only: [-+]? digits [. digits] [e [-+] digits]. */
static bool number_syntax(const char *s, bool integer)
{
    size_t i = (*s == '-' || *s == '+'), digits = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (!integer && s[i] == '.')
        for (i++; s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    if (!integer && digits && (s[i] == 'e' || s[i] == 'E')) {
        i += 1 + (s[i + 1] == '-' || s[i + 1] == '+');
        size_t exponent = 0;
        for (; s[i] >= '0' && s[i] <= '9'; i++)
            exponent++;
        if (!exponent)
            return false;
    }
    return digits && s[i] == '\0';
}

/* A number from a scalar, range-checked; label names it in messages ("optim.blr", "data.std[1]"). */
static int scalar_number(double *out, const Key *k, bool integer, const char *label, const yaml_node_t *v,
                         const Place *at, MaecError *err)
{
    char got[128];
    describe(got, sizeof got, v);
    const char *want = integer ? "an integer" : "a number";
    if (v->type != YAML_SCALAR_NODE)
        return error_at(at, err, "%s: expected %s, got %s", label, want, got);
    if (!is_plain(v))
        return error_at(at, err, "%s: expected %s, got %s (write numbers without quotes)", label, want, got);
    const char *text = scalar_text(v);
    if (!number_syntax(text, integer))
        return error_at(at, err, "%s: expected %s, got %s", label, want, got);
    errno = 0;
    double x = integer ? (double)strtoll(text, NULL, 10) : strtod(text, NULL);
    if ((integer && (errno == ERANGE || x > INT_MAX || x < INT_MIN)) || !isfinite(x))
        return error_at(at, err, "%s = %s is too large", label, text);
    char range[80];
    format_range(range, sizeof range, k);
    if (!in_range(k, x))
        return error_at(at, err, "%s = %s is out of range %s", label, text, range);
    *out = x;
    return 0;
}

static int store_bool(bool *dst, const Key *k, const yaml_node_t *v, const Place *at, MaecError *err)
{
    const char *t = scalar_text(v);
    bool yes = !strcmp(t, "true") || !strcmp(t, "True") || !strcmp(t, "TRUE");
    bool no = !strcmp(t, "false") || !strcmp(t, "False") || !strcmp(t, "FALSE");
    if (!is_plain(v) || !(yes || no)) {
        char got[128];
        describe(got, sizeof got, v);
        return error_at(at, err, "%s: expected true or false, got %s", k->path, got);
    }
    *dst = yes;
    return 0;
}

static int store_enum(int *dst, const Key *k, const yaml_node_t *v, const Place *at, MaecError *err)
{
    const char *t = scalar_text(v);
    for (int i = 0; k->names[i]; i++)
        if (!strcmp(t, k->names[i])) {
            *dst = i;
            return 0;
        }
    char got[128], names[1024], hint[128] = "";
    describe(got, sizeof got, v);
    join_names(names, sizeof names, k->names);
    const char *near = nearest_name(k->names, t);
    if (near)
        snprintf(hint, sizeof hint, "; did you mean '%s'?", near);
    return error_at(at, err, "%s: expected one of %s, got %s%s", k->path, names, got, hint);
}

static int store_string(char *dst, const Key *k, const yaml_node_t *v, const Place *at, MaecError *err)
{
    const char *t = is_null(v) ? "" : scalar_text(v);
    size_t n = is_null(v) ? 0 : v->data.scalar.length;
    if (memchr(t, '\0', n))
        return error_at(at, err, "%s: the text contains a NUL character", k->path);
    if (n >= KEY_TEXT_MAX)
        return error_at(at, err, "%s: %zu characters is too long (at most %d); use a glob for many files",
                        k->path, n, KEY_TEXT_MAX - 1);
    memcpy(dst, t, n + 1);
    return 0;
}

static int store_scalar(char *dst, const Key *k, const yaml_node_t *v, const Place *at, MaecError *err)
{
    double x;
    switch (k->type) {
    case KEY_INT:
        if (scalar_number(&x, k, true, k->path, v, at, err))
            return -1;
        *(int *)dst = (int)x;
        return 0;
    case KEY_FLOAT:
        if (scalar_number(&x, k, false, k->path, v, at, err))
            return -1;
        *(double *)dst = x;
        return 0;
    case KEY_BOOL:
        return store_bool((bool *)dst, k, v, at, err);
    case KEY_ENUM:
        return store_enum((int *)dst, k, v, at, err);
    case KEY_STRING:
        return store_string(dst, k, v, at, err);
    default:
        fatal("internal: key %s has no scalar type", k->path);
    }
}

static void describe_list_type(char *buf, size_t size, const Key *k)
{
    if (k->length)
        snprintf(buf, size, "a list of %d numbers", k->length);
    else
        snprintf(buf, size, "a list of at most %d numbers", KEY_FLOATS_MAX);
}

static int store_floats(FloatList *dst, const Key *k, yaml_document_t *doc, const yaml_node_t *v,
                        const Place *at, MaecError *err)
{
    char want[64], got[128];
    describe_list_type(want, sizeof want, k);
    describe(got, sizeof got, v);
    if (v->type != YAML_SEQUENCE_NODE)
        return error_at(at, err, "%s: expected %s like [0.5, 1.0], got %s", k->path, want, got);
    const yaml_node_item_t *items = v->data.sequence.items.start;
    size_t n = (size_t)(v->data.sequence.items.top - items);
    if (k->length ? n != (size_t)k->length : n > KEY_FLOATS_MAX)
        return error_at(at, err, "%s: expected %s, got %zu", k->path, want, n);
    FloatList list = {.n = (int)n};
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = node_at(doc, items[i]);
        Place item_at = place_of(at, item);
        char label[MAX_PATH_CHARS + 16];
        snprintf(label, sizeof label, "%s[%zu]", k->path, i);
        if (scalar_number(&list.v[i], k, false, label, item, &item_at, err))
            return -1;
        if ((k->flags & KEY_ASCENDING) && i > 0 && list.v[i] < list.v[i - 1])
            return error_at(&item_at, err, "%s = %s is less than the value before it; the values must "
                                           "not decrease", label, scalar_text(item));
    }
    *dst = list;
    return 0;
}

/* ---- where values were given ---- */

static KeySources **sources_slot(void *target, const KeyTable *t)
{
    return (KeySources **)((char *)target + t->sources_offset);
}

static const char *given_where(const void *target, const KeyTable *t, const Key *k)
{
    const KeySources *sources = *sources_slot((void *)target, t);
    return sources ? sources->where[k - t->keys] : NULL;
}

static void record_sources(void *target, const Read *read)
{
    const KeyTable *t = read->table;
    KeySources **sources = sources_slot(target, t);
    if (!*sources) {
        *sources = xcalloc(1, sizeof **sources + t->count * sizeof(char *), "configuration sources");
        (*sources)->count = t->count;
    }
    for (size_t i = 0; i < read->n_items; i++) {
        char where[600];
        place_format(where, sizeof where, &read->items[i].value_place);
        char **slot = &(*sources)->where[read->items[i].key - t->keys];
        free(*slot);
        *slot = xstrdup(where);
    }
}

void keytable_sources_free(void *target, const KeyTable *table)
{
    KeySources **sources = sources_slot(target, table);
    if (!*sources)
        return;
    for (size_t i = 0; i < (*sources)->count; i++)
        free((*sources)->where[i]);
    free(*sources);
    *sources = NULL;
}

bool keytable_given(const void *target, const KeyTable *table, const char *path)
{
    const Key *k = find_row(table, path);
    return k && given_where(target, table, k);
}

int keytable_error(const void *target, const KeyTable *table, const char *path, MaecError *err, const char *fmt,
                   ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    const Key *k = find_row(table, path);
    const char *where = k ? given_where(target, table, k) : NULL;
    return where ? error_prefix(err, "%s", where) : -1;
}

/* ---- storing a source's values ---- */

/* Runs k's hook, then puts back every other key given so far (in this source or before), so a
 * hook that fills keys (a preset) never undoes what the user wrote, whatever the order. */
static void run_hook_keeping_given(void *target, const Read *read, const Key *k)
{
    const KeyTable *t = read->table;
    char *before = xmalloc(t->target_size, "a configuration copy");
    memcpy(before, target, t->target_size);
    k->after(target);
    for (size_t i = 0; i < t->count; i++) {
        const Key *other = &t->keys[i];
        if (other != k && other->type != KEY_SECTION &&
            (given_where(target, t, other) || read_item(read, other)))
            memcpy((char *)target + other->offset, before + other->offset, value_size(other));
    }
    free(before);
}

static int store_item(void *target, Read *read, const Item *item, MaecError *err)
{
    const Key *k = item->key;
    char *dst = (char *)target + k->offset;
    int rc;
    if (k->type == KEY_FLOATS) {
        rc = store_floats((FloatList *)dst, k, &read->doc, item->value, &item->value_place, err);
    } else if (item->value->type != YAML_SCALAR_NODE) {
        char got[32];
        describe(got, sizeof got, item->value);
        rc = error_at(&item->value_place, err, "%s: expected a single value, got %s", k->path, got);
    } else {
        rc = store_scalar(dst, k, item->value, &item->value_place, err);
    }
    if (!rc && k->after)
        run_hook_keeping_given(target, read, k);
    return rc;
}

/* Stores the values in the order read, into a copy first so that an error leaves target as it was. */
static int apply_read(void *target, Read *read, MaecError *err)
{
    const KeyTable *t = read->table;
    char *scratch = xmalloc(t->target_size, "a configuration copy");
    memcpy(scratch, target, t->target_size);
    int rc = 0;
    for (size_t i = 0; i < read->n_items && !rc; i++)
        rc = store_item(scratch, read, &read->items[i], err);
    if (!rc) {
        memcpy(target, scratch, t->target_size);
        record_sources(target, read);
    }
    free(scratch);
    return rc;
}

/* Collects root's values under path (the top level: "") and stores them; frees the document. */
static int read_document(void *target, Read *read, const char *path, yaml_node_t *root, const Place *at,
                         MaecError *err)
{
    int rc = visit(read, path, root, at, err);
    if (!rc)
        rc = apply_read(target, read, err);
    yaml_document_delete(&read->doc);
    free(read->items);
    return rc;
}

int keytable_read_text(void *target, const KeyTable *table, const char *text, size_t length, const char *name,
                       MaecError *err)
{
    Place source = {.name = name};
    Read read = {.table = table};
    if (parse_document(&read.doc, text, length, &source, err))
        return -1;
    yaml_node_t *root = yaml_document_get_root_node(&read.doc);
    if (!root) { /* an empty file gives no values */
        yaml_document_delete(&read.doc);
        return 0;
    }
    Place at = place_of(&source, root);
    return read_document(target, &read, "", root, &at, err);
}

static int read_all(char **text, size_t *length, const char *path, MaecError *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return error_set(err, "cannot read %s: %s", path, strerror(errno));
    char *buf = xmalloc(MAX_SOURCE_BYTES + 1, "a job file");
    size_t n = fread(buf, 1, MAX_SOURCE_BYTES + 1, f);
    int failed = ferror(f) ? errno : 0;
    fclose(f);
    if (failed || n > MAX_SOURCE_BYTES) {
        free(buf);
        if (failed)
            return error_set(err, "cannot read %s: %s", path, strerror(failed));
        return error_set(err, "%s: larger than %u MiB; is this really a job file?", path,
                         MAX_SOURCE_BYTES >> 20);
    }
    *text = buf;
    *length = n;
    return 0;
}

int keytable_read_file(void *target, const KeyTable *table, const char *path, MaecError *err)
{
    char *text = NULL;
    size_t length = 0;
    if (read_all(&text, &length, path, err))
        return -1;
    int rc = keytable_read_text(target, table, text, length, path, err); /* libyaml copies what it keeps */
    free(text);
    return rc;
}

int keytable_set(void *target, const KeyTable *table, const char *assignment, MaecError *err)
{
    Place source = {.set_arg = assignment};
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return error_at(&source, err, "expected KEY=VALUE, e.g. --set optim.blr=1e-3");
    char path[MAX_PATH_CHARS + 1];
    if ((size_t)(eq - assignment) >= sizeof path)
        return error_at(&source, err, "unknown key (far longer than any key)");
    snprintf(path, sizeof path, "%.*s", (int)(eq - assignment), assignment);
    const Key *row = find_row(table, path);
    const char *value = eq + 1;
    char *quoted = NULL;
    if (row && row->type == KEY_STRING && value[0] != '"' && value[0] != '\'')
        value = quoted = yaml_quote(value);
    Read read = {.table = table};
    int rc = parse_document(&read.doc, value, strlen(value), &source, err);
    free(quoted);
    if (rc)
        return -1;
    yaml_node_t *root = yaml_document_get_root_node(&read.doc);
    if (!root) /* "KEY=" is an empty plain scalar, as "key:" is in a file */
        root = node_at(&read.doc, yaml_document_add_scalar(&read.doc, NULL, (yaml_char_t *)"", 0,
                                                           YAML_PLAIN_SCALAR_STYLE));
    if (!root)
        fatal("out of memory reading --set %s", assignment);
    return read_document(target, &read, path, root, &source, err);
}

int keytable_check_required(const void *target, const KeyTable *table, MaecError *err)
{
    for (size_t i = 0; i < table->count; i++) {
        const Key *k = &table->keys[i];
        const char *value = (const char *)target + k->offset;
        if (k->type != KEY_STRING || !(k->flags & KEY_NONEMPTY) || value[0])
            continue;
        if (given_where(target, table, k))
            return keytable_error(target, table, k->path, err, "%s: must not be empty", k->path);
        return error_set(err, "missing required key '%s' (%s); give it in the job file or with --set %s=...",
                         k->path, k->doc, k->path);
    }
    return 0;
}

/* ---- defaults, dump, equality, reference ---- */

static void store_default(void *target, const KeyTable *table, const Key *k)
{
    Place source = {.set_arg = k->def};
    Read read = {.table = table};
    MaecError err;
    if (parse_document(&read.doc, k->def, strlen(k->def), &source, &err))
        fatal("internal: the default of %s does not parse: %s", k->path, err.msg);
    Item item = {.key = k, .value = yaml_document_get_root_node(&read.doc), .value_place = source};
    if (!item.value || store_item(target, &read, &item, &err))
        fatal("internal: bad default of %s: %s", k->path, item.value ? err.msg : "empty");
    yaml_document_delete(&read.doc);
}

void keytable_defaults(void *target, const KeyTable *table)
{
    memset(target, 0, table->target_size);
    for (size_t i = 0; i < table->count; i++)
        if (table->keys[i].type != KEY_SECTION && table->keys[i].def)
            store_default(target, table, &table->keys[i]);
}

static void write_value(FILE *out, const void *src, const Key *k)
{
    const char *at = (const char *)src + k->offset;
    char num[32];
    switch (k->type) {
    case KEY_INT:
        fprintf(out, "%d", *(const int *)at);
        break;
    case KEY_FLOAT:
        format_double(num, sizeof num, *(const double *)at);
        fputs(num, out);
        break;
    case KEY_BOOL:
        fputs(*(const bool *)at ? "true" : "false", out);
        break;
    case KEY_ENUM:
        fputs(k->names[*(const int *)at], out);
        break;
    case KEY_STRING: {
        char *q = yaml_quote(at);
        fputs(q, out);
        free(q);
        break;
    }
    case KEY_FLOATS: {
        const FloatList *list = (const FloatList *)at;
        fputc('[', out);
        for (int i = 0; i < list->n; i++) {
            format_double(num, sizeof num, list->v[i]);
            fprintf(out, "%s%s", i ? ", " : "", num);
        }
        fputc(']', out);
        break;
    }
    case KEY_SECTION:
        break;
    }
}

static FILE *memory_file(char **text, size_t *length)
{
    FILE *out = open_memstream(text, length);
    if (!out)
        fatal("out of memory writing the configuration");
    return out;
}

char *keytable_to_yaml(const void *src, const KeyTable *table)
{
    char *text = NULL;
    size_t length = 0;
    FILE *out = memory_file(&text, &length);
    for (size_t i = 0; i < table->count; i++) {
        const Key *k = &table->keys[i];
        fprintf(out, "%*s%s:", 2 * path_depth(k->path), "", leaf_name(k->path));
        if (k->type != KEY_SECTION) {
            fputc(' ', out);
            write_value(out, src, k);
        }
        fputc('\n', out);
    }
    fclose(out);
    return text;
}

static bool value_equal(const void *a, const void *b, const Key *k)
{
    const char *x = (const char *)a + k->offset, *y = (const char *)b + k->offset;
    switch (k->type) {
    case KEY_INT:
    case KEY_ENUM:
        return *(const int *)x == *(const int *)y;
    case KEY_FLOAT:
        return *(const double *)x == *(const double *)y;
    case KEY_BOOL:
        return *(const bool *)x == *(const bool *)y;
    case KEY_STRING:
        return !strcmp(x, y);
    case KEY_FLOATS: {
        const FloatList *p = (const FloatList *)x, *q = (const FloatList *)y;
        return p->n == q->n && !memcmp(p->v, q->v, (size_t)p->n * sizeof p->v[0]);
    }
    case KEY_SECTION:
        return true;
    }
    return false;
}

bool keytable_equal(const void *a, const void *b, const KeyTable *table)
{
    for (size_t i = 0; i < table->count; i++)
        if (!value_equal(a, b, &table->keys[i]))
            return false;
    return true;
}

bool keytable_equal_within(const void *a, const void *b, const KeyTable *table, const char *section)
{
    for (size_t i = 0; i < table->count; i++)
        if (under(table->keys[i].path, section) && !value_equal(a, b, &table->keys[i]))
            return false;
    return true;
}

static const char *type_name(KeyType type)
{
    static const char *const names[] = {"section", "int", "float", "bool", "string", "enum", "float list"};
    return names[type];
}

static void write_allowed(FILE *out, const Key *k)
{
    char text[1024];
    switch (k->type) {
    case KEY_INT:
    case KEY_FLOAT:
        format_range(text, sizeof text, k);
        fputs(text, out);
        break;
    case KEY_BOOL:
        fputs("true, false", out);
        break;
    case KEY_ENUM:
        for (int i = 0; k->names[i]; i++)
            fprintf(out, "%s`%s`", i ? ", " : "", k->names[i]);
        break;
    case KEY_STRING:
        fputs(k->flags & KEY_NONEMPTY ? "non-empty" : "any", out);
        break;
    case KEY_FLOATS:
        format_range(text, sizeof text, k);
        if (k->length)
            fprintf(out, "%d values, each in %s", k->length, text);
        else
            fprintf(out, "up to %d values, each in %s", KEY_FLOATS_MAX, text);
        if (k->flags & KEY_ASCENDING)
            fputs(", not decreasing", out);
        break;
    case KEY_SECTION:
        break;
    }
}

static void write_reference_row(FILE *out, const Key *k)
{
    fprintf(out, "| `%s` | %s | ", k->path, type_name(k->type));
    if (k->def)
        fprintf(out, "`%s`", k->def);
    else
        fprintf(out, "from `%s`", k->default_from);
    fputs(" | ", out);
    write_allowed(out, k);
    fprintf(out, " | %s |\n", k->doc);
}

char *keytable_reference_markdown(const KeyTable *table)
{
    char *text = NULL;
    size_t length = 0;
    FILE *out = memory_file(&text, &length);
    bool need_header = true;
    if (table->section)
        fprintf(out, "\n### %s\n\n%s\n", table->title, table->doc);
    for (size_t i = 0; i < table->count; i++) {
        const Key *k = &table->keys[i];
        if (k->type == KEY_SECTION) {
            fprintf(out, "\n### `%s`\n\n%s\n", k->path, k->doc);
            need_header = true;
            continue;
        }
        if (i == 0 && !table->section)
            fputs("\n### Top level\n", out);
        if (need_header)
            fputs("\n| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n", out);
        need_header = false;
        write_reference_row(out, k);
    }
    fclose(out);
    return text;
}
