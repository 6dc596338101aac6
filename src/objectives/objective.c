#include "maec/objective.h"

#include "maec/alloc.h"
#include "maec/dist.h"

#include <stdlib.h>
#include <string.h>

int objective_create(Objective *obj, const ObjectiveClass *cls, const ObjectiveSetup *setup, MaecError *err)
{
    memset(obj, 0, sizeof *obj);
    obj->cls = cls;
    obj->world = dist_size();
    param_table_init(&obj->table);
    param_table_init(&obj->state);
    if (cls->create(obj, setup, err) == 0)
        return 0;
    objective_destroy(obj);
    return -1;
}

void objective_destroy(Objective *obj)
{
    if (obj->cls && obj->self)
        obj->cls->destroy(obj);
    free(obj->params), free(obj->grads), free(obj->state_values);
    param_table_free(&obj->table);
    param_table_free(&obj->state);
    memset(obj, 0, sizeof *obj);
}

void objective_alloc(Objective *obj, size_t pad_multiple)
{
    param_table_finish(&obj->table, pad_multiple);
    param_table_finish(&obj->state, pad_multiple);
    obj->params = xalloc_aligned(obj->table.padded * sizeof(float), "model parameters");
    obj->grads = xalloc_aligned(obj->table.padded * sizeof(float), "parameter gradients");
    /* One float at least, so that an objective without state still has a buffer to point at. */
    obj->state_values = xalloc_aligned((obj->state.padded + 1) * sizeof(float), "objective state");
}

int objective_job_mask(MaskSpec *spec, const JobConfig *cfg, MaecError *err)
{
    const JobMasking *m = &cfg->masking;
    int grid = cfg->model.img_size / cfg->model.patch_size;
    double block = m->block_ratio > 0 ? m->block_ratio : m->ratio, L = (double)grid * grid;
    *spec = (MaskSpec){.kind = m->kind, .grid_h = grid, .grid_w = grid, .weights = (MaskWeights)m->weights,
                       .block_patches = (size_t)(block * L + 0.5), .block_min_patches = (size_t)m->block_min_patches,
                       .block_min_aspect = m->block_min_aspect};
    return mask_spec_ratio(spec, m->ratio, err) ? error_prefix(err, "masking.ratio") : 0;
}

void objective_set_terms(Objective *obj, const char *const *names)
{
    obj->n_terms = 0;
    for (const char *const *n = names; *n; n++) {
        if (obj->n_terms == OBJECTIVE_MAX_TERMS)
            fatal("internal: objective %s reports more than %d terms", obj->cls->name, OBJECTIVE_MAX_TERMS);
        obj->terms[obj->n_terms++] = *n;
    }
}

double objective_global_count(const Objective *obj, double local)
{
    if (obj->world > 1)
        dist_allreduce_sum_double(&local, 1);
    return local;
}
