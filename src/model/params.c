#include "maec/params.h"

#include "maec/alloc.h"
#include "maec/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void param_table_init(ParamTable *table) { memset(table, 0, sizeof *table); }

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

size_t param_table_add(ParamTable *table, const char *name, int ndim, const size_t *shape)
{
    if (strlen(name) >= PARAM_NAME_MAX || ndim < 1 || ndim > PARAM_MAX_DIMS)
        fatal("internal: bad parameter declaration '%s' (%d dims)", name, ndim);
    if (param_table_find(table, name))
        fatal("internal: parameter '%s' declared twice", name);
    table->tensors = xrealloc(table->tensors, (table->count + 1) * sizeof(ParamTensor), "parameter table");
    ParamTensor *t = &table->tensors[table->count];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->numel *= shape[d];
    }
    t->offset = table->numel;
    t->decay = ndim > 1 && !ends_with(name, ".bias");
    table->numel += t->numel;
    table->padded = table->numel;
    return table->count++;
}

void param_table_finish(ParamTable *table, size_t pad_multiple)
{
    if (pad_multiple < 1)
        pad_multiple = 1;
    table->padded = (table->numel + pad_multiple - 1) / pad_multiple * pad_multiple;
}

const ParamTensor *param_table_find(const ParamTable *table, const char *name)
{
    for (size_t i = 0; i < table->count; i++)
        if (!strcmp(table->tensors[i].name, name))
            return &table->tensors[i];
    return NULL;
}

float *param_ptr(const ParamTable *table, float *buffer, const char *name)
{
    const ParamTensor *t = param_table_find(table, name);
    if (!t)
        fatal("internal: no parameter named '%s'", name);
    return buffer + t->offset;
}

const char *param_table_name_at(const void *ctx, size_t offset)
{
    const ParamTable *table = ctx;
    for (size_t i = 0; i < table->count; i++)
        if (offset < table->tensors[i].offset + table->tensors[i].numel)
            return table->tensors[i].name;
    return "(padding)";
}

void param_table_free(ParamTable *table)
{
    free(table->tensors);
    memset(table, 0, sizeof *table);
}

void param_shape_string(const ParamTensor *t, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s [", t->name);
    for (int d = 0; d < t->ndim && n > 0 && (size_t)n < size; d++)
        n += snprintf(buf + n, size - (size_t)n, d ? ", %zu" : "%zu", t->shape[d]);
    if (n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, "]");
}
