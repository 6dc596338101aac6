/* BatchNorm1d over the rows of x[N,C] in training mode (torch.nn.BatchNorm1d): batch statistics,
 * the biased variance inside the normalisation, eps inside the square root.
 *
 * Split into steps so that synchronised BatchNorm works without this layer knowing MPI: the
 * caller all-reduces the double partial sums between the calls, over the ranks' rows together.
 * One rank zeroes, calls, and divides by its own N exactly as the ranks would by n_total.
 *   forward:  sum = 0; batchnorm_sums; all-reduce; mean = sum / n_total;
 *             sq = 0; batchnorm_centered_squares; all-reduce; var = sq / n_total;
 *             batchnorm_forward; batchnorm_running_update
 *   backward: sums = 0; batchnorm_backward_sums; all-reduce; batchnorm_backward
 * Every sum is in double and in row order column by column, so results do not depend on the
 * thread count. */
#ifndef MAEC_BATCHNORM_H
#define MAEC_BATCHNORM_H

#include <stddef.h>

/* sum[C] += the column sums of x[N,C]. */
void batchnorm_sums(const float *x, size_t N, size_t C, double *sum);

/* sq[C] += sum over rows of (x - mean)^2, x[N,C], mean[C] the global mean: a second pass rather
 * than sum(x^2) - n mean^2, which loses the variance of activations with a large offset. */
void batchnorm_centered_squares(const float *x, size_t N, size_t C, const double *mean, double *sq);

/* xhat[N,C] = (x - mean) / sqrt(var + eps), y[N,C] = xhat * weight[C] + bias[C], with mean[C] and
 * the biased global variance var[C]. xhat is saved for the backward pass. */
void batchnorm_forward(float *y, float *xhat, const float *x, const double *mean, const double *var,
                       double eps, const float *weight, const float *bias, size_t N, size_t C);

/* sum_dy[C] += column sums of dy[N,C]; sum_dy_xhat[C] += column sums of dy * xhat. */
void batchnorm_backward_sums(const float *dy, const float *xhat, size_t N, size_t C,
                             double *sum_dy, double *sum_dy_xhat);

/* Accumulates (+=) dx[N,C] = weight / sqrt(var + eps) * (dy - sum_dy / n - xhat * sum_dy_xhat / n)
 * with the global sums and n = n_total rows over all ranks, and dweight[C], dbias[C] from this
 * rank's N rows alone (the gradient all-reduce adds the ranks). */
void batchnorm_backward(float *dx, float *dweight, float *dbias, const float *dy,
                        const float *xhat, const double *var, double eps, const float *weight,
                        const double *sum_dy, const double *sum_dy_xhat, size_t n_total,
                        size_t N, size_t C);

/* running = (1 - momentum) running + momentum * stat for running_mean[C] and running_var[C], the
 * latter with the unbiased variance var * n / (n - 1), as torch. n_total >= 2. */
void batchnorm_running_update(float *running_mean, float *running_var, const double *mean,
                              const double *var, size_t n_total, double momentum, size_t C);

#endif
