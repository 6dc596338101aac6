/* Few-shot fine-tuning of a pretrained MAE encoder, as facebookresearch/mae main_finetune.py
 * with global pooling: the encoder on whole images (its final norm dropped), the mean of the
 * patch tokens, a new LayerNorm (fc_norm) and linear head; cross-entropy with label smoothing;
 * AdamW with layer-wise learning-rate decay and no weight decay for biases, norms and the CLS
 * token; linear warm-up then half-cosine. Augmentation is a random resized crop and optional
 * horizontal flip (the reference's RandAugment, mixup and cutmix are left out: with a handful
 * of labels per class they are a study of their own). */
#ifndef MAEC_FINETUNE_H
#define MAEC_FINETUNE_H

#include "maec/adamw.h"
#include "maec/alloc.h"
#include "maec/augment.h"
#include "maec/dataset.h"
#include "maec/embed.h"
#include "maec/encoder.h"
#include "maec/error.h"
#include "maec/params.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct FinetuneOptions {
    int epochs;
    size_t batch;
    double blr;             /* peak lr = blr * batch / 256 */
    double min_lr, warmup_epochs;
    double layer_decay;     /* lr of layer i = peak * layer_decay^(depth + 1 - i) */
    double weight_decay, label_smoothing;
    double crop_scale_min;  /* random resized crop area fraction in [crop_scale_min, 1] */
    bool hflip;
    uint64_t seed;
} FinetuneOptions;

/* The reference's fine-tuning values where they apply to few labels: blr 1e-3, layer decay
 * 0.75, weight decay 0.05, label smoothing 0.1, warm-up 5 epochs, batch 16, 50 epochs. */
FinetuneOptions finetune_defaults(void);

/* chosen[num_classes * per_class]: per_class samples of every class of labels[n], drawn without
 * replacement from rng_make(seed, RNG_EVAL, fold, class). Fails when a class has fewer. */
int fewshot_sample(size_t *chosen, const int32_t *labels, size_t n, int num_classes, size_t per_class,
                   uint64_t seed, int fold, MaecError *err);

typedef struct Classifier {
    ParamTable table;
    float *params, *grads, *m, *v; /* flat, table.padded floats */
    Encoder enc;                   /* without its final norm */
    float *fc_norm_w, *fc_norm_b, *head_w, *head_b;    /* [D], [D], [K, D], [K] */
    float *dfc_norm_w, *dfc_norm_b, *dhead_w, *dhead_b;
    size_t dim, tokens, num_classes, batch;
    AugmentConfig input;           /* whole image at the model's size, training normalisation */
    Arena arena;
    EncoderActs acts;
    float *images, *pooled, *normed, *mean, *rstd, *logits, *dlogits, *dnormed, *dpooled, *dout;
} Classifier;

/* The encoder of p (weights copied by name) with a new head for num_classes, for batches of up
 * to batch images. */
void classifier_init(Classifier *c, const Pretrained *p, size_t num_classes, size_t batch, uint64_t seed);
void classifier_free(Classifier *c);

/* For the B images already in c->images [B, S, S, C]: the mean label-smoothed cross-entropy,
 * its gradient accumulated into c->grads. */
double classifier_forward_backward(Classifier *c, const int32_t *labels, size_t B, double label_smoothing);

/* Fine-tunes on samples[n] of ds; returns the mean training loss of the last epoch. */
double classifier_train(Classifier *c, Dataset *ds, const size_t *samples, size_t n, const FinetuneOptions *o,
                        MaecError *err);

/* predicted[dataset_count(ds)]: the class of every image of ds (whole images, no augmentation). */
int classifier_predict(Classifier *c, Dataset *ds, int32_t *predicted, MaecError *err);

#endif
