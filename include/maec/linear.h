/* Fully connected layer in PyTorch's nn.Linear layout: weight [out, in], bias [out]. */
#ifndef MAEC_LINEAR_H
#define MAEC_LINEAR_H

#include <stddef.h>

/* out[M,N] = inp[M,K] @ weight[N,K]^T + bias[N]; bias may be NULL. */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    size_t M, size_t K, size_t N);

/* Accumulates (+=):
 *   dinp[M,K]    += dout[M,N] @ weight[N,K]        (skipped when dinp is NULL)
 *   dweight[N,K] += dout[M,N]^T @ inp[M,K]
 *   dbias[N]     += sum over the M rows of dout    (skipped when dbias is NULL) */
void linear_backward(float *dinp, float *dweight, float *dbias,
                     const float *dout, const float *inp, const float *weight,
                     size_t M, size_t K, size_t N);

/* dbias[N] += sum over the M rows of dout[M, ld] (its first N columns): the bias part of
 * linear_backward, for callers that need the gradient of only some output columns. */
void linear_bias_backward(float *dbias, const float *dout, size_t M, size_t N, size_t ld);

#endif
