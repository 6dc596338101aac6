#include "maec/linprobe.h"

#include "maec/alloc.h"
#include "maec/linear.h"
#include "maec/rng.h"
#include "maec/schedule.h"
#include "maec/softmax.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* BatchNorm1d's eps in the reference's probe head. */
#define NORM_EPS 1e-6
#define INIT_STD 0.01
/* Rows normalised and scored at once in linprobe_predict. */
#define PREDICT_BLOCK 4096

LinprobeOptions linprobe_default_options(void)
{
    return (LinprobeOptions){.epochs = 100, .batch = 256, .lr = 0.1, .momentum = 0.9};
}

static void fit_normalization(LinearProbe *p, const float *x, size_t n)
{
    size_t D = p->dim;
    double *sum = xcalloc(D, sizeof *sum, "feature sums"), *sum_sq = xcalloc(D, sizeof *sum_sq, "feature squares");
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < D; j++) {
            double v = x[i * D + j];
            sum[j] += v;
            sum_sq[j] += v * v;
        }
    for (size_t j = 0; j < D; j++) {
        double mean = sum[j] / (double)n, var = sum_sq[j] / (double)n - mean * mean;
        p->mean[j] = (float)mean;
        p->inv_std[j] = (float)(1.0 / sqrt((var > 0.0 ? var : 0.0) + NORM_EPS));
    }
    free(sum);
    free(sum_sq);
}

/* out[count, dim] = (x - mean) * inv_std, row by row. */
static void normalize_rows(float *out, const LinearProbe *p, const float *x, size_t count)
{
    for (size_t i = 0; i < count * p->dim; i++)
        out[i] = (x[i] - p->mean[i % p->dim]) * p->inv_std[i % p->dim];
}

static int32_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return (int32_t)best;
}

static void init_probe(LinearProbe *p, uint64_t seed, size_t dim, size_t num_classes)
{
    p->dim = dim;
    p->num_classes = num_classes;
    p->mean = xmalloc(dim * sizeof *p->mean, "probe mean");
    p->inv_std = xmalloc(dim * sizeof *p->inv_std, "probe inverse std");
    p->weight = xmalloc(num_classes * dim * sizeof *p->weight, "probe weight");
    p->bias = xcalloc(num_classes, sizeof *p->bias, "probe bias");
    Rng rng = rng_make(seed, RNG_EVAL, 0, 0);
    for (size_t i = 0; i < num_classes * dim; i++)
        p->weight[i] = (float)(INIT_STD * rng_normal(&rng));
}

/* What one training step needs besides the probe: batch buffers, gradients and velocities. */
typedef struct Trainer {
    const LinprobeOptions *options;
    float *xb, *logits, *probs, *dlogits;   /* [batch, D], [batch, C] x3 */
    float *dweight, *dbias, *vweight, *vbias; /* like weight and bias */
    double loss_sum;
    size_t correct;
} Trainer;

static void trainer_init(Trainer *t, const LinprobeOptions *options, size_t dim, size_t num_classes)
{
    size_t B = options->batch;
    memset(t, 0, sizeof *t);
    t->options = options;
    t->xb = xmalloc(B * dim * sizeof(float), "probe batch");
    t->logits = xmalloc(B * num_classes * sizeof(float), "probe logits");
    t->probs = xmalloc(B * num_classes * sizeof(float), "probe probabilities");
    t->dlogits = xmalloc(B * num_classes * sizeof(float), "probe logit gradients");
    t->dweight = xmalloc(num_classes * dim * sizeof(float), "probe weight gradient");
    t->dbias = xmalloc(num_classes * sizeof(float), "probe bias gradient");
    t->vweight = xcalloc(num_classes * dim, sizeof(float), "probe weight velocity");
    t->vbias = xcalloc(num_classes, sizeof(float), "probe bias velocity");
}

static void trainer_free(Trainer *t)
{
    float *buffers[] = {t->xb, t->logits, t->probs, t->dlogits, t->dweight, t->dbias, t->vweight, t->vbias};
    for (size_t i = 0; i < sizeof buffers / sizeof *buffers; i++)
        free(buffers[i]);
}

/* dlogits = (softmax - one_hot) / B, the gradient of the mean cross-entropy; accumulates the
 * loss (capped at -log FLT_MIN where the probability underflows) and the hits. */
static void cross_entropy(Trainer *t, const int32_t *labels, const size_t *rows, size_t B, size_t C)
{
    softmax_forward(t->probs, t->logits, B, C);
    for (size_t i = 0; i < B; i++) {
        int32_t y = labels[rows[i]];
        const float *p = t->probs + i * C;
        t->loss_sum -= log(p[y] > FLT_MIN ? p[y] : FLT_MIN);
        t->correct += argmax(t->logits + i * C, C) == y;
        for (size_t c = 0; c < C; c++)
            t->dlogits[i * C + c] = (p[c] - (c == (size_t)y)) / (float)B;
    }
}

/* SGD with momentum, PyTorch semantics; decay (0 for biases) is added to the gradient. */
static void sgd_update(float *param, float *velocity, const float *grad, double lr, double momentum, double decay,
                       size_t n)
{
    for (size_t i = 0; i < n; i++) {
        velocity[i] = (float)(momentum * velocity[i] + grad[i] + decay * param[i]);
        param[i] -= (float)(lr * velocity[i]);
    }
}

static void train_step(Trainer *t, LinearProbe *p, const float *xn, const int32_t *labels, const size_t *rows,
                       size_t B, double lr)
{
    size_t D = p->dim, C = p->num_classes;
    for (size_t i = 0; i < B; i++)
        memcpy(t->xb + i * D, xn + rows[i] * D, D * sizeof *t->xb);
    linear_forward(t->logits, t->xb, p->weight, p->bias, B, D, C);
    cross_entropy(t, labels, rows, B, C);
    memset(t->dweight, 0, C * D * sizeof *t->dweight);
    memset(t->dbias, 0, C * sizeof *t->dbias);
    linear_backward(NULL, t->dweight, t->dbias, t->dlogits, t->xb, p->weight, B, D, C);
    sgd_update(p->weight, t->vweight, t->dweight, lr, t->options->momentum, t->options->weight_decay, C * D);
    sgd_update(p->bias, t->vbias, t->dbias, lr, t->options->momentum, 0.0, C);
}

void linprobe_train(LinearProbe *probe, const float *x, const int32_t *labels, const LinprobeOptions *options,
                    LinprobeEpochFn on_epoch, void *ctx, size_t n, size_t dim, size_t num_classes)
{
    init_probe(probe, options->seed, dim, num_classes);
    fit_normalization(probe, x, n);
    float *xn = xmalloc(n * dim * sizeof *xn, "normalised training features");
    normalize_rows(xn, probe, x, n);
    size_t *order = xmalloc(n * sizeof *order, "sample order");
    size_t steps_per_epoch = (n + options->batch - 1) / options->batch;
    LrSchedule schedule = {.peak = options->lr, .warmup = options->warmup_epochs * (double)steps_per_epoch,
                           .total = (double)options->epochs * (double)steps_per_epoch};
    Trainer t;
    trainer_init(&t, options, dim, num_classes);
    for (int epoch = 0; epoch < options->epochs; epoch++) {
        Rng rng = rng_make(options->seed, RNG_EVAL, (uint32_t)epoch, 1);
        rng_permutation(&rng, order, n);
        t.loss_sum = 0.0;
        t.correct = 0;
        for (size_t s = 0; s < steps_per_epoch; s++) {
            size_t first = s * options->batch, B = n - first < options->batch ? n - first : options->batch;
            double lr = lr_at(&schedule, (double)(epoch * steps_per_epoch + s));
            train_step(&t, probe, xn, labels, order + first, B, lr);
        }
        if (on_epoch)
            on_epoch(ctx, epoch + 1, t.loss_sum / (double)n, (double)t.correct / (double)n);
    }
    trainer_free(&t);
    free(order);
    free(xn);
}

void linprobe_predict(int32_t *predicted, const LinearProbe *probe, const float *x, size_t n)
{
    size_t D = probe->dim, C = probe->num_classes;
    size_t block = n < PREDICT_BLOCK ? n : PREDICT_BLOCK;
    float *xn = xmalloc(block * D * sizeof *xn, "normalised features");
    float *logits = xmalloc(block * C * sizeof *logits, "probe logits");
    for (size_t first = 0; first < n; first += block) {
        size_t rows = n - first < block ? n - first : block;
        normalize_rows(xn, probe, x + first * D, rows);
        linear_forward(logits, xn, probe->weight, probe->bias, rows, D, C);
        for (size_t i = 0; i < rows; i++)
            predicted[first + i] = argmax(logits + i * C, C);
    }
    free(logits);
    free(xn);
}

void linprobe_free(LinearProbe *probe)
{
    free(probe->mean);
    free(probe->inv_std);
    free(probe->weight);
    free(probe->bias);
    memset(probe, 0, sizeof *probe);
}
