/* A job file read whole: the settings every run has (config.h) and the objective it names with
 * that objective's own keys, from the file and `--set` overrides alike. The `objective:` section
 * holds `name` (one of `maec objectives`) and the named objective's keys; a key of another
 * objective is an error naming the keys this one has. */
#ifndef MAEC_JOB_H
#define MAEC_JOB_H

#include "maec/config.h"
#include "maec/error.h"
#include "maec/objective.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct JobSelector {
    int name; /* index into objective_names */
    KeySources *sources;
} JobSelector;

typedef struct Job {
    JobConfig cfg;
    JobSelector selector;
    const ObjectiveClass *cls;
    void *options; /* cls->keys' target */
} Job;

/* Defaults, then the file at path, then each of sets[n_sets] ("KEY=VALUE"), then the rules
 * across keys (config_validate). On error *job owns nothing. */
int job_load(Job *job, const char *path, char *const *sets, size_t n_sets, MaecError *err);
/* The same from YAML text (a checkpoint's stored configuration); name stands for the file in
 * messages. A configuration written before objectives had sections of their own reads the same. */
int job_load_string(Job *job, const char *yaml_text, const char *name, char *const *sets, size_t n_sets,
                    MaecError *err);
void job_free(Job *job);

/* Every key, resolved, in a fixed order; job_load_string of it gives an equal job. The caller
 * frees it. */
char *job_to_yaml(const Job *job);

/* True if a checkpoint of one can be continued by the other: the same model, masking and
 * objective with the same keys. */
bool job_same_training(const Job *a, const Job *b);

/* The key table of objective.name (for the reference and tests). */
const KeyTable *job_selector_keys(void);

/* docs/config.md's generated part: the base keys, objective.name, then each objective's keys.
 * The caller frees it. */
char *job_docs_markdown(void);

/* The objective the job names, made for training on data (NULL outside training) with
 * pad_multiple (the world size); its resolved keys are written back into the job's options. */
int job_make_objective(Job *job, Objective *obj, const Dataset *data, size_t pad_multiple, MaecError *err);

#endif
