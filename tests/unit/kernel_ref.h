/* Naive double-precision references used by more than one kernel test. */
#ifndef MAEC_TESTS_KERNEL_REF_H
#define MAEC_TESTS_KERNEL_REF_H

#include <math.h>
#include <stddef.h>

/* y[n] = softmax(x[n]); the max is subtracted so that logits near 200 do not overflow. */
static inline void softmax_row_ref(double *y, const double *x, size_t n)
{
    double max = x[0], sum = 0;
    for (size_t j = 1; j < n; j++)
        max = x[j] > max ? x[j] : max;
    for (size_t j = 0; j < n; j++)
        sum += y[j] = exp(x[j] - max);
    for (size_t j = 0; j < n; j++)
        y[j] /= sum;
}

/* dx[n] += y * (dy - sum_j y_j dy_j), y the forward result. */
static inline void softmax_row_backward_ref(double *dx, const double *y, const double *dy,
                                            size_t n)
{
    double dot = 0;
    for (size_t j = 0; j < n; j++)
        dot += y[j] * dy[j];
    for (size_t j = 0; j < n; j++)
        dx[j] += y[j] * (dy[j] - dot);
}

#endif
