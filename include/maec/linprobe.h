/* Linear probing of frozen features, the MAE reference's head: BatchNorm1d(affine=False) and a
 * linear layer, trained with cross-entropy.
 *
 * Choices (docs/eval.md says why):
 *  - The normalisation uses the mean and (biased) variance of the whole training set, eps 1e-6,
 *    fixed before training: what the reference's BatchNorm converges to in eval mode, without
 *    depending on batch composition.
 *  - SGD with momentum 0.9 (PyTorch semantics: v = mu v + g, p -= lr v), weight decay on the
 *    weights only, learning rate per step with linear warmup and a half-cosine to 0 (the
 *    DINO / kaiko eva pathology protocol; LARS, the reference's choice, buys nothing for a single
 *    layer on standardised inputs).
 *  - Weights start from N(0, 0.01^2), biases at 0, as the reference.
 *  - Every epoch visits all samples in a fresh random order; the last batch may be smaller.
 * Randomness: stream RNG_EVAL of the seed, (a, b) = (0, 0) for the initial weights and
 * (epoch, 1) for the order of an epoch, so a seed gives the same probe run after run. */
#ifndef MAEC_LINPROBE_H
#define MAEC_LINPROBE_H

#include <stddef.h>
#include <stdint.h>

typedef struct LinprobeOptions {
    int epochs;
    size_t batch;
    double lr;            /* peak learning rate */
    double momentum;
    double weight_decay;  /* on the weights, not the biases */
    double warmup_epochs; /* linear warmup from 0, may be fractional */
    uint64_t seed;
} LinprobeOptions;

/* Defaults of `maec eval linprobe`: 100 epochs, batch 256, lr 0.1, momentum 0.9, no weight
 * decay, no warmup, seed 0. */
LinprobeOptions linprobe_default_options(void);

typedef struct LinearProbe {
    size_t dim, num_classes;
    float *mean, *inv_std; /* [dim]: the frozen normalisation */
    float *weight;         /* [num_classes, dim] */
    float *bias;           /* [num_classes] */
} LinearProbe;

/* Called after each epoch with its mean training loss and training accuracy (before the
 * epoch's last update, as they are measured on the fly). */
typedef void (*LinprobeEpochFn)(void *ctx, int epoch, double loss, double accuracy);

/* Fits probe to x[n, dim] with labels[n] in 0 .. num_classes-1. on_epoch may be NULL. */
void linprobe_train(LinearProbe *probe, const float *x, const int32_t *labels, const LinprobeOptions *options,
                    LinprobeEpochFn on_epoch, void *ctx, size_t n, size_t dim, size_t num_classes);

/* predicted[n] = the highest-scoring class of each row of x[n, dim] (the lower index on a tie). */
void linprobe_predict(int32_t *predicted, const LinearProbe *probe, const float *x, size_t n);

void linprobe_free(LinearProbe *probe);

#endif
