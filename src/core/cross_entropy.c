/* Double throughout, from log-softmax rather than log of a softmax: a probability that underflows
 * float still gives its exact loss, and label smoothing needs log p of every class. One thread:
 * heads have a few hundred rows of tens to a thousand classes, far below what waking the pool
 * repays, and the loss then sums in row order. */
#include "maec/cross_entropy.h"

#include "maec/error.h"

#include "kernel_util.h"

#include <math.h>

size_t cross_entropy_labeled(const int32_t *labels, size_t N)
{
    size_t n = 0;
    for (size_t i = 0; i < N; i++)
        n += labels[i] >= 0;
    return n;
}

/* One labelled row: z = logits / temperature; returns -sum_k target_k log softmax(z)_k and adds
 * dscale * (softmax(z) - target) / temperature to dz when it is not NULL. */
static double row_loss(float *restrict dz, const float *restrict logits, size_t label, size_t K,
                       double temperature, double smoothing, double dscale)
{
    /* Division by a positive number keeps the order, so the max of z is the max of logits / T. */
    double zmax = max_f32(logits, K) / temperature, sum = 0;
    for (size_t k = 0; k < K; k++)
        sum += exp(logits[k] / temperature - zmax);
    const double log_sum = log(sum), floor_target = smoothing / (double)K;
    const double gscale = dscale / temperature;
    double loss = 0;
    for (size_t k = 0; k < K; k++) {
        double logp = logits[k] / temperature - zmax - log_sum;
        double target = floor_target + (k == label ? 1 - smoothing : 0);
        loss -= target * logp;
        if (dz)
            dz[k] += (float)((exp(logp) - target) * gscale);
    }
    return loss;
}

double cross_entropy_forward_backward(float *dlogits, const float *logits, const int32_t *labels,
                                      size_t N, size_t K, double temperature, double smoothing,
                                      double dscale)
{
    double loss = 0;
    for (size_t i = 0; i < N; i++) {
        if (labels[i] < 0)
            continue;
        if ((size_t)labels[i] >= K)
            fatal("cross-entropy: row %zu has label %d but there are %zu classes: labels must be "
                  "0..%zu, or -1 for unlabelled (check the dataset's labels against the class "
                  "count)", i, labels[i], K, K - 1);
        loss += row_loss(dlogits ? dlogits + i * K : NULL, logits + i * K, (size_t)labels[i], K,
                         temperature, smoothing, dscale);
    }
    return loss;
}
