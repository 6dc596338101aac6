#include "maec/finetune.h"

#include "maec/cross_entropy.h"

#include "maec/layernorm.h"
#include "maec/linear.h"
#include "maec/rng.h"
#include "maec/schedule.h"
#include "maec/tensor_ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

FinetuneOptions finetune_defaults(void)
{
    return (FinetuneOptions){.epochs = 30, .batch = 16, .blr = 2e-2, .min_lr = 1e-6, .warmup_epochs = 5,
                             .layer_decay = 0.75, .weight_decay = 0.05, .label_smoothing = 0.1,
                             .crop_scale_min = 0.5, .hflip = true, .seed = 0};
}

int fewshot_sample(size_t *chosen, const int32_t *labels, size_t n, int num_classes, size_t per_class,
                   uint64_t seed, int fold, MaecError *err)
{
    size_t *members = xmalloc((n + 1) * sizeof *members, "class members");
    for (int k = 0; k < num_classes; k++) {
        size_t count = 0;
        for (size_t i = 0; i < n; i++)
            if (labels[i] == k)
                members[count++] = i;
        if (count < per_class) {
            free(members);
            return error_set(err, "class %d has %zu labelled samples, fewer than the %zu per class asked for: "
                             "lower --per-class", k, count, per_class);
        }
        Rng r = rng_make(seed, RNG_EVAL, (uint64_t)fold, (uint64_t)k);
        for (size_t j = 0; j < per_class; j++) { /* partial Fisher-Yates: the first per_class of a shuffle */
            size_t pick = j + (size_t)rng_below(&r, count - j), tmp = members[j];
            members[j] = members[pick], members[pick] = tmp;
            chosen[(size_t)k * per_class + j] = members[j];
        }
    }
    free(members);
    return 0;
}

static void declare(ParamTable *t, const ModelConfig *m, size_t K)
{
    size_t D = (size_t)m->embed_dim;
    param_table_init(t);
    encoder_declare(t, m, "", false);
    param_table_add(t, "fc_norm.weight", 1, (size_t[]){D});
    param_table_add(t, "fc_norm.bias", 1, (size_t[]){D});
    param_table_add(t, "head.weight", 2, (size_t[]){K, D});
    param_table_add(t, "head.bias", 1, (size_t[]){K});
    param_table_finish(t, 1);
    for (size_t i = 0; i < t->count; i++) /* main_finetune.py: no_weight_decay = {pos_embed, cls_token} */
        if (!strcmp(t->tensors[i].name, "cls_token"))
            t->tensors[i].decay = false;
}

/* Encoder weights from the pretrained model (its tensors carry the encoder's prefix); fc_norm 1/0; head normal(0, 2e-5) and 0, as the
 * reference's trunc_normal_(std=2e-5) (the truncation at 2 std never binds at that scale). */
static void init_weights(Classifier *c, const Pretrained *p, uint64_t seed)
{
    for (size_t i = 0; i < c->table.count; i++) {
        const ParamTensor *t = &c->table.tensors[i];
        char name[2 * PARAM_NAME_MAX];
        snprintf(name, sizeof name, "%s%s", p->enc->prefix, t->name);
        const ParamTensor *src = param_table_find(&p->obj.table, name);
        if (src)
            memcpy(c->params + t->offset, p->obj.params + src->offset, t->numel * sizeof(float));
    }
    Rng r = rng_make(seed, RNG_EVAL, 1u << 20, 0);
    for (size_t i = 0; i < c->dim; i++)
        c->fc_norm_w[i] = 1, c->fc_norm_b[i] = 0;
    for (size_t i = 0; i < c->num_classes * c->dim; i++)
        c->head_w[i] = (float)(2e-5 * rng_normal(&r));
    memset(c->head_b, 0, c->num_classes * sizeof(float));
}

static void bind(Classifier *c)
{
    const ParamTable *t = &c->table;
    c->fc_norm_w = param_ptr(t, c->params, "fc_norm.weight"), c->fc_norm_b = param_ptr(t, c->params, "fc_norm.bias");
    c->head_w = param_ptr(t, c->params, "head.weight"), c->head_b = param_ptr(t, c->params, "head.bias");
    c->dfc_norm_w = param_ptr(t, c->grads, "fc_norm.weight"), c->dfc_norm_b = param_ptr(t, c->grads, "fc_norm.bias");
    c->dhead_w = param_ptr(t, c->grads, "head.weight"), c->dhead_b = param_ptr(t, c->grads, "head.bias");
}

static void alloc_activations(Classifier *c)
{
    const size_t B = c->batch, D = c->dim, K = c->num_classes, S = (size_t)c->enc.cfg.img_size;
    const size_t sizes[] = {B * S * S * (size_t)c->enc.cfg.in_chans, B * D, B * D, B, B, B * K, B * K, B * D, B * D,
                            B * (1 + c->tokens) * D};
    float **bufs[] = {&c->images, &c->pooled, &c->normed, &c->mean, &c->rstd, &c->logits, &c->dlogits,
                      &c->dnormed, &c->dpooled, &c->dout};
    size_t bytes = encoder_acts_bytes(&c->enc, B, c->tokens, true);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        bytes += arena_floats_size(sizes[i]);
    arena_init(&c->arena, bytes, "fine-tuning activations");
    encoder_acts_init(&c->acts, &c->enc, B, c->tokens, true, &c->arena);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        *bufs[i] = arena_floats(&c->arena, sizes[i]);
}

void classifier_init(Classifier *c, const Pretrained *p, size_t num_classes, size_t batch, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    const ModelConfig *m = p->model;
    c->dim = (size_t)m->embed_dim, c->tokens = (size_t)vit_num_patches(m), c->num_classes = num_classes;
    c->batch = batch, c->input = p->input;
    declare(&c->table, m, num_classes);
    size_t bytes = c->table.padded * sizeof(float);
    c->params = xalloc_aligned(bytes, "fine-tuning parameters"), c->grads = xalloc_aligned(bytes, "gradients");
    c->m = xcalloc(c->table.padded, sizeof(float), "AdamW m"), c->v = xcalloc(c->table.padded, sizeof(float), "AdamW v");
    memset(c->params, 0, bytes), memset(c->grads, 0, bytes);
    encoder_bind(&c->enc, m, "", &c->table, c->params, c->grads, false);
    bind(c);
    init_weights(c, p, seed);
    alloc_activations(c);
}

void classifier_free(Classifier *c)
{
    encoder_acts_free(&c->acts);
    arena_free(&c->arena);
    encoder_free(&c->enc);
    param_table_free(&c->table);
    free(c->params), free(c->grads), free(c->m), free(c->v);
}

/* logits [B, K] of the images in c->images */
static void forward(Classifier *c, size_t B)
{
    const size_t D = c->dim, L = c->tokens, T = 1 + L;
    encoder_forward(&c->enc, &c->acts, c->images, NULL, 0, B, L);
    for (size_t b = 0; b < B; b++) /* global pool: the patch tokens, not the CLS token */
        meanpool_forward(c->pooled + b * D, c->acts.stack.out + (b * T + 1) * D, 1, L, D);
    layernorm_forward(c->normed, c->mean, c->rstd, c->pooled, c->fc_norm_w, c->fc_norm_b, B, D);
    linear_forward(c->logits, c->normed, c->head_w, c->head_b, B, D, c->num_classes);
}

/* Cross-entropy with label smoothing eps, mean over the batch: the target puts 1 - eps on the
 * label and eps / K on every class. Fills dlogits; returns the loss. */
static double smoothed_cross_entropy(Classifier *c, const int32_t *labels, size_t B, double eps)
{
    memset(c->dlogits, 0, B * c->num_classes * sizeof(float));
    return cross_entropy_forward_backward(c->dlogits, c->logits, labels, B, c->num_classes, 1.0, eps,
                                          1.0 / (double)B) / (double)B;
}

static void backward(Classifier *c, size_t B)
{
    const size_t D = c->dim, L = c->tokens, T = 1 + L;
    memset(c->dnormed, 0, B * D * sizeof(float));
    linear_backward(c->dnormed, c->dhead_w, c->dhead_b, c->dlogits, c->normed, c->head_w, B, D, c->num_classes);
    memset(c->dpooled, 0, B * D * sizeof(float));
    layernorm_backward(c->dpooled, c->dfc_norm_w, c->dfc_norm_b, c->dnormed, c->pooled, c->fc_norm_w, c->mean,
                       c->rstd, B, D);
    memset(c->dout, 0, B * T * D * sizeof(float));
    for (size_t b = 0; b < B; b++)
        meanpool_backward(c->dout + (b * T + 1) * D, c->dpooled + b * D, 1, L, D);
    encoder_backward(&c->enc, &c->acts, c->dout, NULL, 0, B, L, NULL);
}

/* main_finetune.py's param_groups_lrd: patch embedding and CLS token are layer 0, block i is
 * layer i + 1, the head and fc_norm layer depth + 1. */
static double layer_scale(const ParamTensor *t, int depth, double decay)
{
    int layer = depth + 1, block;
    if (!strcmp(t->name, "cls_token") || !strncmp(t->name, "patch_embed.", 12))
        layer = 0;
    else if (sscanf(t->name, "blocks.%d.", &block) == 1)
        layer = block + 1;
    return pow(decay, (double)(depth + 1 - layer));
}

double classifier_forward_backward(Classifier *c, const int32_t *labels, size_t B, double label_smoothing)
{
    forward(c, B);
    double loss = smoothed_cross_entropy(c, labels, B, label_smoothing);
    backward(c, B);
    return loss;
}

static void optimizer_step(Classifier *c, const FinetuneOptions *o, double lr, long step)
{
    AdamWConfig cfg = {0.9, 0.999, 1e-8, o->weight_decay}; /* torch.optim.AdamW defaults, as main_finetune.py */
    for (size_t i = 0; i < c->table.count; i++) {
        const ParamTensor *t = &c->table.tensors[i];
        double scaled = lr * layer_scale(t, c->enc.cfg.depth, o->layer_decay);
        adamw_update(c->params, c->grads + t->offset, c->m + t->offset, c->v + t->offset, t->offset,
                     t->offset + t->numel, &c->table, &cfg, scaled, step);
    }
}

/* Reads samples[n] and writes the network input for each (augmented when aug is not NULL). */
static int load_batch(Classifier *c, Dataset *ds, Augmenter *a, const AugmentConfig *cfg, const size_t *samples,
                      size_t n, uint32_t epoch, uint8_t *raw, int32_t *labels, MaecError *err)
{
    if (dataset_read_many(ds, samples, n, raw, labels, err))
        return -1;
    const size_t in = dataset_sample_bytes(ds), S = (size_t)c->enc.cfg.img_size;
    const size_t out = S * S * (size_t)c->enc.cfg.in_chans;
    for (size_t i = 0; i < n; i++) {
        AugmentDraw d = augment_draw(cfg, dataset_height(ds), dataset_width(ds), 0, epoch, samples[i]);
        augment_apply(a, c->images + i * out, raw + i * in, &d);
    }
    return 0;
}

double classifier_train(Classifier *c, Dataset *ds, const size_t *samples, size_t n, const FinetuneOptions *o,
                        MaecError *err)
{
    AugmentConfig cfg = c->input;
    cfg.random = true, cfg.scale[0] = o->crop_scale_min, cfg.scale[1] = 1;
    cfg.ratio[0] = 3.0 / 4.0, cfg.ratio[1] = 4.0 / 3.0, cfg.hflip = o->hflip;
    Augmenter *a = augmenter_create(dataset_height(ds), dataset_width(ds), dataset_channels(ds), &cfg);
    uint8_t *raw = xmalloc(c->batch * dataset_sample_bytes(ds), "fine-tuning batch");
    size_t *order = xmalloc(n * sizeof *order, "fine-tuning order");
    int32_t *labels = xmalloc(c->batch * sizeof *labels, "labels");
    const size_t per_epoch = (n + c->batch - 1) / c->batch;
    LrSchedule sched = {o->blr * (double)c->batch / 256, o->min_lr, o->warmup_epochs * (double)per_epoch,
                        (double)(o->epochs * (long)per_epoch)};
    double epoch_loss = 0;
    long step = 0;
    int rc = 0;
    for (int epoch = 0; epoch < o->epochs && !rc; epoch++) {
        memcpy(order, samples, n * sizeof *order);
        Rng r = rng_make(o->seed, RNG_EVAL, (uint64_t)epoch, 1u << 21);
        rng_shuffle(&r, order, n, sizeof *order);
        epoch_loss = 0;
        for (size_t first = 0; first < n && !rc; first += c->batch, step++) {
            size_t B = n - first < c->batch ? n - first : c->batch;
            rc = load_batch(c, ds, a, &cfg, order + first, B, (uint32_t)epoch, raw, labels, err);
            if (rc)
                break;
            memset(c->grads, 0, c->table.padded * sizeof(float));
            epoch_loss += classifier_forward_backward(c, labels, B, o->label_smoothing) * (double)B / (double)n;
            optimizer_step(c, o, lr_at(&sched, (double)step), step + 1);
        }
    }
    augmenter_free(a);
    free(raw), free(order), free(labels);
    return rc ? NAN : epoch_loss;
}

static int32_t argmax(const float *z, size_t K)
{
    size_t best = 0;
    for (size_t k = 1; k < K; k++)
        best = z[k] > z[best] ? k : best;
    return (int32_t)best;
}

int classifier_predict(Classifier *c, Dataset *ds, int32_t *predicted, MaecError *err)
{
    Augmenter *a = augmenter_create(dataset_height(ds), dataset_width(ds), dataset_channels(ds), &c->input);
    uint8_t *raw = xmalloc(c->batch * dataset_sample_bytes(ds), "evaluation batch");
    size_t *indices = xmalloc(c->batch * sizeof *indices, "indices");
    int32_t *labels = xmalloc(c->batch * sizeof *labels, "labels");
    int rc = 0;
    for (size_t first = 0; first < dataset_count(ds) && !rc; first += c->batch) {
        size_t B = dataset_count(ds) - first < c->batch ? dataset_count(ds) - first : c->batch;
        for (size_t i = 0; i < B; i++)
            indices[i] = first + i;
        rc = load_batch(c, ds, a, &c->input, indices, B, 0, raw, labels, err);
        if (!rc) {
            forward(c, B);
            for (size_t i = 0; i < B; i++)
                predicted[first + i] = argmax(c->logits + i * c->num_classes, c->num_classes);
        }
    }
    augmenter_free(a);
    free(raw), free(indices), free(labels);
    return rc;
}
