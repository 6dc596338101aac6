/* GELU, exact erf form (nn.GELU() default): gelu(x) = 0.5 x (1 + erf(x / sqrt 2)). */
#ifndef MAEC_GELU_H
#define MAEC_GELU_H

#include <stddef.h>

/* out[n] = gelu(inp[n]); out may equal inp. */
void gelu_forward(float *out, const float *inp, size_t n);

/* dinp[n] += dout[n] * gelu'(inp[n]), gelu'(x) = Phi(x) + x phi(x). */
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);

#endif
