#include "maec/job.h"

#include "maec/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYROW_TARGET JobSelector
static const Key selector_keys[] = {
    KEYROW_ENUM("objective.name", name, objective_names, "mae", "What the model learns: one of the objectives "
                "`maec objectives` lists, each with its page in docs/variants and its keys below"),
};
static const KeyTable selector_table = {selector_keys, 1, sizeof(JobSelector), offsetof(JobSelector, sources),
                                        .section = "objective", .lenient = true, .title = "objective",
                                        .doc = "What the model learns: `name` selects the objective, and the "
                                               "section holds that objective's keys (listed below, one table "
                                               "per objective)."};

const KeyTable *job_selector_keys(void) { return &selector_table; }

/* Which table reads an override. */
static bool is_objective_key(const char *assignment)
{
    return !strncmp(assignment, "objective", 9) && (assignment[9] == '.' || assignment[9] == '=');
}

static bool is_selector_key(const char *assignment) { return !strncmp(assignment, "objective.name=", 15); }

static void free_options(Job *job)
{
    if (!job->options)
        return;
    keytable_sources_free(job->options, job->cls->keys);
    free(job->options);
    job->options = NULL;
}

void job_free(Job *job)
{
    free_options(job);
    keytable_sources_free(&job->selector, &selector_table);
    config_free(&job->cfg);
    memset(job, 0, sizeof *job);
}

/* The selected objective's options at their defaults. */
static void select_objective(Job *job)
{
    free_options(job);
    job->cls = objective_class(job->selector.name);
    job->options = xcalloc(1, job->cls->keys->target_size, "objective options");
    keytable_defaults(job->options, job->cls->keys);
}

typedef struct Source {
    const char *path, *text, *name;
} Source;

static int read_source(void *target, const KeyTable *t, const Source *s, MaecError *err)
{
    return s->path ? keytable_read_file(target, t, s->path, err)
                   : keytable_read_text(target, t, s->text, strlen(s->text), s->name, err);
}

static int load(Job *job, const Source *src, char *const *sets, size_t n_sets, MaecError *err)
{
    memset(job, 0, sizeof *job);
    int rc = src->path ? config_load(src->path, &job->cfg, err)
                       : config_load_string(src->text, src->name, &job->cfg, err);
    keytable_defaults(&job->selector, &selector_table);
    rc = rc || read_source(&job->selector, &selector_table, src, err);
    for (size_t i = 0; !rc && i < n_sets; i++)
        if (is_selector_key(sets[i]))
            rc = keytable_set(&job->selector, &selector_table, sets[i], err);
    if (!rc) {
        select_objective(job);
        rc = read_source(job->options, job->cls->keys, src, err);
    }
    for (size_t i = 0; !rc && i < n_sets; i++) {
        if (!is_objective_key(sets[i]))
            rc = config_set(&job->cfg, sets[i], err);
        else if (!is_selector_key(sets[i]))
            rc = keytable_set(job->options, job->cls->keys, sets[i], err);
    }
    rc = rc || config_validate(&job->cfg, err);
    if (rc)
        job_free(job);
    return rc ? -1 : 0;
}

int job_load(Job *job, const char *path, char *const *sets, size_t n_sets, MaecError *err)
{
    return load(job, &(Source){.path = path}, sets, n_sets, err);
}

int job_load_string(Job *job, const char *yaml_text, const char *name, char *const *sets, size_t n_sets,
                    MaecError *err)
{
    return load(job, &(Source){.text = yaml_text, .name = name}, sets, n_sets, err);
}

char *job_to_yaml(const Job *job)
{
    char *base = config_to_yaml(&job->cfg), *name = keytable_to_yaml(&job->selector, &selector_table);
    char *own = keytable_to_yaml(job->options, job->cls->keys);
    size_t n = strlen(base) + strlen(name) + strlen(own) + 16;
    char *text = xmalloc(n, "job configuration text");
    snprintf(text, n, "%sobjective:\n%s%s", base, name, own);
    free(base), free(name), free(own);
    return text;
}

bool job_same_training(const Job *a, const Job *b)
{
    const KeyTable *base = config_keys();
    return keytable_equal_within(&a->cfg, &b->cfg, base, "model") &&
           keytable_equal_within(&a->cfg, &b->cfg, base, "masking") && a->cls == b->cls &&
           keytable_equal(a->options, b->options, a->cls->keys);
}

char *job_docs_markdown(void)
{
    size_t count = 0, n = 0, length = 0;
    while (objective_names[count])
        count++;
    char **parts = xmalloc((count + 2) * sizeof *parts, "key reference");
    parts[n++] = config_docs_markdown();
    parts[n++] = keytable_reference_markdown(&selector_table);
    for (size_t i = 0; i < count; i++)
        parts[n++] = keytable_reference_markdown(objective_class((int)i)->keys);
    for (size_t i = 0; i < n; i++)
        length += strlen(parts[i]);
    char *text = xmalloc(length + 1, "key reference"), *at = text;
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(parts[i]);
        memcpy(at, parts[i], k);
        at += k;
        free(parts[i]);
    }
    *at = '\0';
    free(parts);
    return text;
}

int job_make_objective(Job *job, Objective *obj, const Dataset *data, size_t pad_multiple, MaecError *err)
{
    ObjectiveSetup setup = {&job->cfg, job->options, data, pad_multiple};
    return objective_create(obj, job->cls, &setup, err);
}
