/* Row-wise softmax, max-subtracted for stability. */
#ifndef MAEC_SOFTMAX_H
#define MAEC_SOFTMAX_H

#include <stddef.h>

/* out[M,N] = softmax of each row of inp[M,N]; out may equal inp. */
void softmax_forward(float *out, const float *inp, size_t M, size_t N);

/* dinp[M,N] += out * (dout - sum_j out_j dout_j), row by row (out is the forward result). */
void softmax_backward(float *dinp, const float *out, const float *dout, size_t M, size_t N);

#endif
