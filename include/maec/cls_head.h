/* A classification head on the encoder output (SupMAE's cls_head; the supervised branch other
 * variants share): the mean of the visible patch tokens (or the CLS token), then
 * Linear(D, hidden), BatchNorm1d(hidden), ReLU, Linear(hidden, classes), or one Linear(D, classes)
 * when hidden is 0; cross-entropy of logits / temperature on the labels, unlabeled (-1) samples
 * adding nothing.
 *
 * Every statistic is over the global micro-batch, all ranks' samples together: BatchNorm's batch
 * mean and variance and their backward sums (synchronised BatchNorm), and the count of labeled
 * samples the cross-entropy is the mean over. So a run gives the same result on any number of
 * ranks; the price is two small all-reduces per forward pass and one per backward pass. The
 * running statistics (momentum 0.1, unbiased variance, as torch) are state, the same on every
 * rank. Tensor names: PREFIX.0.*, PREFIX.1.* (BatchNorm), PREFIX.3.*, as nn.Sequential names them. */
#ifndef MAEC_CLS_HEAD_H
#define MAEC_CLS_HEAD_H

#include "maec/alloc.h"
#include "maec/params.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ClsHeadConfig {
    char prefix[PARAM_NAME_MAX];
    size_t dim, hidden, classes; /* hidden 0: one linear layer */
    bool global_pool;            /* mean of the patch tokens; false: the CLS token */
    double temperature;
} ClsHeadConfig;

typedef struct ClsHead {
    ClsHeadConfig cfg;
    int world;
    float *w0, *b0, *bn_w, *bn_b, *w3, *b3; /* [H,D] [H] [H] [H] [K,H] [K]; w0 is the only linear with hidden 0 */
    float *dw0, *db0, *dbn_w, *dbn_b, *dw3, *db3;
    float *running_mean, *running_var, *batches_tracked; /* state */
    Arena arena;
    size_t B, n;   /* the last forward pass: images, and tokens pooled per image */
    double labeled; /* labeled samples of the global micro-batch */
    float *pooled, *hidden, *xhat, *act, *logits; /* [B,D] [B,H] [B,H] [B,H] [B,K] */
    float *dlogits, *dact, *dhidden, *dpooled;
    double *mean, *var, *sums;                    /* [H] [H] [2H + 1]: batch statistics, all-reduced sums */
} ClsHead;

void cls_head_declare(ParamTable *params, ParamTable *state, const ClsHeadConfig *cfg);
/* grads NULL: forward only. */
void cls_head_bind(ClsHead *h, const ClsHeadConfig *cfg, const ParamTable *params, float *values, float *grads,
                   const ParamTable *state, float *state_values);
/* Sets the running variance to 1, as torch initialises it (the rest of the state starts at 0). */
void cls_head_init_state(ClsHead *h);
void cls_head_free(ClsHead *h);
/* Activations for up to B images; returns their bytes. */
size_t cls_head_reserve(ClsHead *h, size_t B);

/* latent [B, 1+n, D] (the encoder output, CLS first), labels [B]. Returns this rank's share of
 * the global mean cross-entropy, times the world size (so that the mean over ranks is the global
 * value), and keeps its gradient for cls_head_backward scaled by grad_scale. Collective. */
double cls_head_forward(ClsHead *h, const float *latent, const int32_t *labels, size_t B, size_t n,
                        float grad_scale);
/* Accumulates the head's parameter gradients and dlatent [B, 1+n, D] (+=), telling ready (may be
 * NULL) when the head's gradients are final. Collective. */
void cls_head_backward(ClsHead *h, float *dlatent, const GradReady *ready);

#endif
