/* LayerNorm over the last dimension, eps inside the square root (torch.nn.LayerNorm). */
#ifndef MAEC_LAYERNORM_H
#define MAEC_LAYERNORM_H

#include <stddef.h>

#define LAYERNORM_EPS 1e-6f /* as every LayerNorm of facebookresearch/mae */

/* out[M,C] = (inp - mean) * rstd * weight[C] + bias[C], row by row, with the biased variance
 * (divide by C). Saves mean[M] and rstd[M] = 1/sqrt(var + eps) for the backward pass. */
void layernorm_forward(float *out, float *mean, float *rstd,
                       const float *inp, const float *weight, const float *bias,
                       size_t M, size_t C);

/* Accumulates (+=) dinp[M,C], dweight[C], dbias[C] from dout[M,C]. */
void layernorm_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *weight,
                        const float *mean, const float *rstd, size_t M, size_t C);

#endif
