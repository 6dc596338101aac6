/* Multi-head self-attention core on a fused qkv projection, as timm's Attention:
 * qkv [B,T,3C] is read as (B, T, 3, NH, hd) with hd = C / NH: q = qkv[..., 0:C],
 * k = qkv[..., C:2C], v = qkv[..., 2C:3C], head h at columns h*hd .. h*hd+hd-1 of each.
 * The output [B,T,C] holds head h at columns h*hd (PyTorch's transpose(1,2).reshape(B,T,C)).
 * The projection linears (qkv, proj) are separate linear_* calls. */
#ifndef MAEC_ATTENTION_H
#define MAEC_ATTENTION_H

#include <stddef.h>

/* att[B,NH,T,T] = softmax(q k^T / sqrt(hd)) per (b, h), kept for the backward pass;
 * out[B,T,C] = att @ v. */
void attention_forward(float *out, float *att, const float *qkv,
                       size_t B, size_t T, size_t C, size_t NH);

/* Accumulates (+=) dqkv[B,T,3C] from dout[B,T,C]. scratch holds B*NH*T*T floats; its contents
 * on entry do not matter and are undefined on return. */
void attention_backward(float *dqkv, float *scratch, const float *dout,
                        const float *qkv, const float *att,
                        size_t B, size_t T, size_t C, size_t NH);

#endif
