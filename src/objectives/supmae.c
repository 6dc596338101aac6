/* SupMAE (Liang et al. 2022, "Supervised Masked Autoencoders Are Efficient Vision Learners";
 * enyac-group/supmae models_supmae.py, engine_pretrain.py): MAE plus a classification head on
 * the global average of the visible tokens of the encoder output, trained on the dataset's
 * labels; loss = reconstruction + cls_loss_ratio * cross-entropy(logits / temperature).
 * Unlabeled samples (-1) add no cross-entropy term. docs/variants/supmae.md. */
#include "maec/cls_head.h"
#include "maec/objective.h"
#include "maec/pixel_recon.h"

#include "maec/alloc.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct SupMaeOptions {
    bool norm_pix_loss, global_pool;
    double cls_loss_ratio, temperature;
    int cls_hidden, num_classes;
    KeySources *sources;
} SupMaeOptions;

#define KEYROW_TARGET SupMaeOptions
static const Key keys[] = {
    KEYROW_BOOL("objective.norm_pix_loss", norm_pix_loss, "true", "Reconstruction targets normalised per patch, "
                "as MAE's"),
    KEYROW_FLOAT("objective.cls_loss_ratio", cls_loss_ratio, 0, HUGE_VAL, 0, "0.01", "Weight of the "
                 "cross-entropy in the loss (the paper's 0.01)"),
    KEYROW_FLOAT("objective.temperature", temperature, 0, HUGE_VAL, KEY_MIN_OPEN, "10", "The logits are divided "
                 "by it before the softmax (the paper's 10)"),
    KEYROW_INT("objective.cls_hidden", cls_hidden, 0, 1 << 16, "3072", "Width of the head's hidden layer "
               "(Linear, BatchNorm, ReLU, Linear); 0 = one Linear layer"),
    KEYROW_BOOL("objective.global_pool", global_pool, "true", "The head sees the mean of the visible patch "
                "tokens; false: the CLS token"),
    KEYROW_INT("objective.num_classes", num_classes, 0, 1 << 20, "0", "Classes of the head; 0 = the training "
               "dataset's"),
};
static const char *const selector[] = {"objective.name", NULL};
static const KeyTable table = {keys, sizeof keys / sizeof keys[0], sizeof(SupMaeOptions),
                               offsetof(SupMaeOptions, sources), .skip = selector, .section = "objective",
                               .title = "objective supmae",
                               .doc = "MAE plus a classifier on the mean of the visible tokens, trained on the "
                                      "dataset's labels (Liang et al. 2022). Needs a labeled dataset; unlabeled "
                                      "samples (-1) add no cross-entropy. Page: docs/variants/supmae.md."};

typedef struct SupMae {
    PixelRecon recon;
    ClsHead head;
    double cls_loss_ratio;
} SupMae;

/* The head's class count: the option, or the dataset's; a dataset must have labels, and none
 * beyond the head's classes. */
static int resolve_classes(SupMaeOptions *o, const ObjectiveSetup *s, MaecError *err)
{
    if (!s->data) {
        if (o->num_classes > 0)
            return 0;
        return error_set(err, "objective supmae: objective.num_classes is 0 (take the dataset's) and there is no "
                              "dataset: set objective.num_classes");
    }
    int classes = dataset_num_classes(s->data);
    if (classes == 0)
        return error_set(err, "objective supmae trains on labels, but %s has none (every label is -1): use a "
                              "labeled dataset (maec prep ... with labels), or objective.name: mae",
                         s->cfg->data.train);
    if (o->num_classes == 0)
        o->num_classes = classes;
    if (classes > o->num_classes)
        return error_set(err, "objective supmae: %s has labels up to %d but objective.num_classes is %d: raise it "
                              "or set it to 0 (the dataset's)", s->cfg->data.train, classes - 1, o->num_classes);
    return 0;
}

static int create(Objective *obj, const ObjectiveSetup *s, MaecError *err)
{
    SupMaeOptions *o = s->options;
    const ModelConfig *m = &s->cfg->model;
    if (vit_config_validate(m, err) || objective_job_mask(&obj->mask, s->cfg, err) || resolve_classes(o, s, err))
        return -1;
    SupMae *sm = obj->self = xcalloc(1, sizeof *sm, "SupMAE objective");
    ClsHeadConfig hc = {.prefix = "cls_head", .dim = (size_t)m->embed_dim, .hidden = (size_t)o->cls_hidden,
                        .classes = (size_t)o->num_classes, .global_pool = o->global_pool,
                        .temperature = o->temperature};
    pixel_recon_declare(&obj->table, m);
    cls_head_declare(&obj->table, &obj->state, &hc); /* last: its gradients are final first */
    objective_alloc(obj, s->pad_multiple);
    pixel_recon_bind(&sm->recon, m, o->norm_pix_loss, &obj->table, obj->params, obj->grads);
    cls_head_bind(&sm->head, &hc, &obj->table, obj->params, obj->grads, &obj->state, obj->state_values);
    cls_head_init_state(&sm->head);
    sm->cls_loss_ratio = o->cls_loss_ratio;
    pixel_recon_fixed(&sm->recon, obj->fixed);
    obj->n_fixed = 2;
    obj->encoder = &sm->recon.enc;
    objective_set_terms(obj, (const char *const[]){"rec_loss", "cls_loss", NULL});
    return 0;
}

static void destroy(Objective *obj)
{
    SupMae *sm = obj->self;
    pixel_recon_free(&sm->recon);
    cls_head_free(&sm->head);
    free(sm);
}

static size_t reserve(Objective *obj, size_t B)
{
    SupMae *sm = obj->self;
    return pixel_recon_reserve(&sm->recon, B, &obj->mask) + cls_head_reserve(&sm->head, B);
}

static double step(Objective *obj, const Batch *batch, float grad_scale, const GradReady *ready, double *terms)
{
    SupMae *sm = obj->self;
    const size_t B = batch->n, V = batch->masks.visible;
    terms[0] = pixel_recon_forward(&sm->recon, batch->images, &batch->masks, B);
    const float *latent = sm->recon.acts.enc.stack.out;
    terms[1] = cls_head_forward(&sm->head, latent, batch->labels, B, V, grad_scale * (float)sm->cls_loss_ratio);
    cls_head_backward(&sm->head, sm->recon.acts.dlatent, ready);
    pixel_recon_backward(&sm->recon, grad_scale, ready);
    return terms[0] + sm->cls_loss_ratio * terms[1];
}

static size_t output(const Objective *obj, const char *name, size_t B, float *dst)
{
    const SupMae *sm = obj->self;
    if (strcmp(name, "logits"))
        return pixel_recon_output(&sm->recon, name, dst);
    size_t n = B * sm->head.cfg.classes;
    if (dst)
        memcpy(dst, sm->head.logits, n * sizeof(float));
    return n;
}

static void pixels(const Objective *obj, const Batch *batch, float *out)
{
    const SupMae *sm = obj->self;
    pixel_recon_pixels(&sm->recon, batch->images, out);
}

const ObjectiveClass supmae_objective = {
    .name = "supmae",
    .summary = "SupMAE: MAE plus a classifier on the visible tokens, trained on labels (Liang et al. 2022)",
    .keys = &table,
    .create = create,
    .destroy = destroy,
    .reserve = reserve,
    .step = step,
    .output = output,
    .pixels = pixels,
};
