#include "maec/source.h"

#include "maec/alloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void source_init(PrepSource *s, const char *unit)
{
    memset(s, 0, sizeof *s);
    s->unit = unit;
    s->description = xstrdup("");
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void source_free(PrepSource *s)
{
    if (s->free_ctx)
        s->free_ctx(s->ctx);
    free(s->description);
    free_strings(s->class_names, s->num_classes);
    free_strings(s->sources, s->num_sources);
    free_strings(s->rejected, s->num_rejected);
    free_strings(s->rejected_reason, s->num_rejected);
    free(s->items);
    memset(s, 0, sizeof *s);
}

int32_t source_add_source(PrepSource *s, const char *name)
{
    s->sources = xrealloc(s->sources, (s->num_sources + 1) * sizeof *s->sources, "input list");
    s->sources[s->num_sources] = xstrdup(name);
    return (int32_t)s->num_sources++;
}

void source_add_item(PrepSource *s, int32_t source, int32_t label, int64_t record, int32_t x, int32_t y)
{
    if (s->num_items == s->capacity) {
        s->capacity = s->capacity ? 2 * s->capacity : 1024;
        s->items = xrealloc(s->items, s->capacity * sizeof *s->items, "item list");
    }
    s->items[s->num_items++] = (PrepItem){.source = source, .label = label, .record = record, .x = x, .y = y};
}

void source_reject(PrepSource *s, const char *input, const char *reason)
{
    s->rejected = xrealloc(s->rejected, (s->num_rejected + 1) * sizeof *s->rejected, "rejected inputs");
    s->rejected_reason = xrealloc(s->rejected_reason, (s->num_rejected + 1) * sizeof *s->rejected_reason,
                                  "rejected inputs");
    s->rejected[s->num_rejected] = xstrdup(input);
    s->rejected_reason[s->num_rejected] = xstrdup(reason);
    s->num_rejected++;
}

void source_set_classes(PrepSource *s, char **names, size_t n)
{
    free_strings(s->class_names, s->num_classes);
    s->class_names = names;
    s->num_classes = n;
}

void source_set_description(PrepSource *s, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    free(s->description);
    s->description = xstrdup(text);
}

static void add_name(char ***names, size_t *n, const char *begin, size_t len)
{
    while (len > 0 && (*begin == ' ' || *begin == '\t'))
        begin++, len--;
    while (len > 0 && (begin[len - 1] == ' ' || begin[len - 1] == '\t' || begin[len - 1] == '\r'))
        len--;
    char *name = xmalloc(len + 1, "a class name");
    memcpy(name, begin, len);
    name[len] = '\0';
    *names = xrealloc(*names, (*n + 1) * sizeof **names, "class names");
    (*names)[(*n)++] = name;
}

char *source_read_text_file(const char *path, MaecError *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        error_set(err, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *text = xmalloc(cap, "a text file");
    size_t got;
    while ((got = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap)
            text = xrealloc(text, cap *= 2, "a text file");
    }
    fclose(f);
    text[len] = '\0';
    return text;
}

static int check_names(char **names, size_t n, const char *arg, MaecError *err)
{
    if (n == 0)
        return error_set(err, "--class-names '%s' lists no names", arg);
    for (size_t i = 0; i < n; i++) {
        if (!names[i][0])
            return error_set(err, "--class-names '%s': name %zu is empty", arg, i + 1);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return error_set(err, "--class-names '%s': '%s' appears twice", arg, names[i]);
    }
    return 0;
}

int source_parse_class_names(const char *arg, char ***names, size_t *n, MaecError *err)
{
    bool from_file = arg[0] == '@';
    char *text = from_file ? source_read_text_file(arg + 1, err) : xstrdup(arg);
    if (!text)
        return -1;
    *names = NULL;
    *n = 0;
    char sep = from_file ? '\n' : ',';
    size_t len = strlen(text);
    if (from_file && len > 0 && text[len - 1] == '\n')
        text[--len] = '\0'; /* a final newline ends the last line, it does not add an empty name */
    for (char *p = text;;) {
        char *end = strchr(p, sep);
        add_name(names, n, p, end ? (size_t)(end - p) : strlen(p));
        if (!end)
            break;
        p = end + 1;
    }
    free(text);
    if (check_names(*names, *n, arg, err)) {
        free_strings(*names, *n);
        *names = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t bytes)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < bytes; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

uint64_t source_fingerprint(const PrepSource *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    int shape[3] = {s->height, s->width, s->channels};
    h = fnv1a(h, shape, sizeof shape);
    h = fnv1a(h, &s->num_items, sizeof s->num_items);
    h = fnv1a(h, s->items, s->num_items * sizeof *s->items);
    for (size_t i = 0; i < s->num_sources; i++)
        h = fnv1a(h, s->sources[i], strlen(s->sources[i]) + 1);
    for (size_t i = 0; i < s->num_classes; i++)
        h = fnv1a(h, s->class_names[i], strlen(s->class_names[i]) + 1);
    return h;
}
