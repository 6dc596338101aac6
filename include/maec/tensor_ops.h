/* Small elementwise and pooling kernels. */
#ifndef MAEC_TENSOR_OPS_H
#define MAEC_TENSOR_OPS_H

#include <stddef.h>

/* out[n] = a[n] + b[n]; out may alias a or b. */
void residual_forward(float *out, const float *a, const float *b, size_t n);
/* da[n] += dout[n]; db[n] += dout[n]. */
void residual_backward(float *da, float *db, const float *dout, size_t n);

/* out[n] = max(inp[n], 0); out may alias inp. */
void relu_forward(float *out, const float *inp, size_t n);
/* dinp[n] += dout[n] where inp[n] > 0 (torch's gradient at 0 is 0). */
void relu_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* out[B,C] = mean over t of inp[B,T,C]. */
void meanpool_forward(float *out, const float *inp, size_t B, size_t T, size_t C);
/* dinp[B,T,C] += dout[B,C] / T. */
void meanpool_backward(float *dinp, const float *dout, size_t B, size_t T, size_t C);

#endif
