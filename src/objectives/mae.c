/* MAE (He et al. 2022; facebookresearch/mae models_mae.py): encode the visible patches, decode
 * every patch with mask tokens, regress the pixels of the masked ones (pixel_recon.h). */
#include "maec/objective.h"
#include "maec/pixel_recon.h"

#include "maec/alloc.h"

#include <stdlib.h>

typedef struct MaeOptions {
    bool norm_pix_loss;
    KeySources *sources;
} MaeOptions;

#define KEYROW_TARGET MaeOptions
static const Key keys[] = {
    KEYROW_BOOL("objective.norm_pix_loss", norm_pix_loss, "true", "Targets are the pixels normalised per patch "
                "(mean 0, variance 1), as in the MAE paper's best models; turn off to view reconstructions "
                "directly"),
};
static const char *const selector[] = {"objective.name", NULL};
static const KeyTable table = {keys, sizeof keys / sizeof keys[0], sizeof(MaeOptions), offsetof(MaeOptions, sources),
                               .skip = selector, .section = "objective", .title = "objective mae",
                               .doc = "Reconstruct the pixels of the masked patches; the loss is on masked patches "
                                      "only (He et al. 2022). Page: docs/variants/mae.md."};

static int create(Objective *obj, const ObjectiveSetup *s, MaecError *err)
{
    const MaeOptions *o = s->options;
    if (vit_config_validate(&s->cfg->model, err) || objective_job_mask(&obj->mask, s->cfg, err))
        return -1;
    PixelRecon *r = obj->self = xcalloc(1, sizeof *r, "MAE objective");
    pixel_recon_declare(&obj->table, &s->cfg->model);
    objective_alloc(obj, s->pad_multiple);
    pixel_recon_bind(r, &s->cfg->model, o->norm_pix_loss, &obj->table, obj->params, obj->grads);
    pixel_recon_fixed(r, obj->fixed);
    obj->n_fixed = 2;
    obj->encoder = &r->enc;
    objective_set_terms(obj, (const char *const[]){NULL});
    return 0;
}

static void destroy(Objective *obj)
{
    pixel_recon_free(obj->self);
    free(obj->self);
}

static size_t reserve(Objective *obj, size_t B) { return pixel_recon_reserve(obj->self, B, &obj->mask); }

static double step(Objective *obj, const Batch *batch, float grad_scale, const GradReady *ready, double *terms)
{
    (void)terms;
    double loss = pixel_recon_forward(obj->self, batch->images, &batch->masks, batch->n);
    pixel_recon_backward(obj->self, grad_scale, ready);
    return loss;
}

static size_t output(const Objective *obj, const char *name, size_t B, float *dst)
{
    (void)B;
    return pixel_recon_output(obj->self, name, dst);
}

static void pixels(const Objective *obj, const Batch *batch, float *out)
{
    pixel_recon_pixels(obj->self, batch->images, out);
}

const ObjectiveClass mae_objective = {
    .name = "mae",
    .summary = "MAE: reconstruct the pixels of masked patches (He et al. 2022)",
    .keys = &table,
    .create = create,
    .destroy = destroy,
    .reserve = reserve,
    .step = step,
    .output = output,
    .pixels = pixels,
};
