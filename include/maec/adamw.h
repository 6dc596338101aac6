/* AdamW as torch.optim.AdamW (decoupled weight decay, bias-corrected moments), on any range of
 * the flat parameter buffer, so that ZeRO can run it on one rank's shard: the shard border may
 * cut a tensor anywhere, and weight decay still follows each tensor's flag in the table. */
#ifndef MAEC_ADAMW_H
#define MAEC_ADAMW_H

#include "maec/params.h"

#include <stddef.h>

typedef struct AdamWConfig {
    double beta1, beta2, eps, weight_decay;
} AdamWConfig;

/* The reference's pretraining values: betas (0.9, 0.95), eps 1e-8, weight decay 0.05. */
AdamWConfig adamw_defaults(void);

/* One step number `step` (1 for the first) at learning rate lr, on params[lo, hi):
 *   p -= lr * wd * p            (only where the tensor decays)
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
 * grads, m and v are indexed from lo (m[0] belongs to params[lo]); params from 0. Elements past
 * table->numel (padding) are left alone. */
void adamw_update(float *params, const float *grads, float *m, float *v, size_t lo, size_t hi,
                  const ParamTable *table, const AdamWConfig *cfg, double lr, long step);

/* Sum of squares of grads over [lo, hi) of the flat layout (grads indexed from lo), padding
 * excluded, in double: the local part of the global gradient norm. */
double grad_sum_squares(const float *grads, size_t lo, size_t hi, const ParamTable *table);

/* grads[0, n) *= scale. */
void grad_scale(float *grads, size_t n, float scale);

#endif
