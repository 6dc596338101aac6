/* Tiny jobs for every registered objective, for the tests that run them all (gradient readiness,
 * overfitting, the CLI and MPI invariance use their own job files). An objective registered
 * without an entry here fails those tests: add its line with the keys it needs without a dataset. */
#ifndef MAEC_TEST_OBJECTIVE_JOBS_H
#define MAEC_TEST_OBJECTIVE_JOBS_H

#include "maec/job.h"

#include <stdio.h>
#include <string.h>

#define TEST_CLASSES 5

typedef struct TestObjectiveJob {
    const char *name, *keys; /* keys: YAML lines of the objective section */
} TestObjectiveJob;

static const TestObjectiveJob test_objective_jobs[] = {
    {"mae", ""},
    {"supmae", "  num_classes: 5\n  cls_hidden: 12\n  cls_loss_ratio: 0.5\n"},
};

/* The objective section's extra keys of name, or NULL when the table lacks it. */
static inline const char *test_objective_keys(const char *name)
{
    for (size_t i = 0; i < sizeof test_objective_jobs / sizeof test_objective_jobs[0]; i++)
        if (!strcmp(test_objective_jobs[i].name, name))
            return test_objective_jobs[i].keys;
    return NULL;
}

/* A job of objective `name` on `model` (YAML of the model section's keys, one line) with mask
 * ratio and norm_pix_loss, made into obj with its weights initialised from seed. */
static inline int test_make_objective(Job *job, Objective *obj, const char *name, const char *model, double ratio,
                                      bool norm_pix, size_t pad_multiple, uint64_t seed, MaecError *err)
{
    const char *keys = test_objective_keys(name);
    if (!keys)
        return error_set(err, "objective %s has no entry in tests/unit/objective_jobs.h", name);
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "data: {train: none}\nmodel: %s\nmasking: {ratio: %.17g}\nobjective:\n  name: %s\n"
             "  norm_pix_loss: %s\n%s", model, ratio, name, norm_pix ? "true" : "false", keys);
    if (job_load_string(job, yaml, name, NULL, 0, err))
        return -1;
    if (job_make_objective(job, obj, NULL, pad_multiple, err)) {
        job_free(job);
        return -1;
    }
    vit_init_weights(&obj->table, obj->params, seed);
    return 0;
}

#endif
