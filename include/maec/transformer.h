/* A stack of pre-norm transformer blocks (timm 0.3.2 Block, as facebookresearch/mae uses it),
 * optionally followed by a final LayerNorm:
 *     x = x + proj(attention(qkv(norm1(x))))
 *     x = x + fc2(gelu(fc1(norm2(x))))
 *     out = norm(x)                         (when the stack has a final norm)
 * Parameter names are PREFIX.i.norm1.weight, PREFIX.i.attn.qkv.weight, PREFIX.i.attn.proj.bias,
 * PREFIX.i.mlp.fc1.weight, ... and NORM.weight / NORM.bias for the final norm. */
#ifndef MAEC_TRANSFORMER_H
#define MAEC_TRANSFORMER_H

#include "maec/alloc.h"
#include "maec/params.h"

#include <stddef.h>

typedef struct BlockParams {
    float *norm1_w, *norm1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    float *norm2_w, *norm2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} BlockParams;

typedef struct TransformerShape {
    const char *prefix;    /* "blocks" or "decoder_blocks" */
    const char *norm_name; /* "norm", "decoder_norm", or NULL for no final norm */
    size_t depth, dim, heads, hidden;
} TransformerShape;

typedef struct Transformer {
    TransformerShape shape;
    BlockParams *w, *g; /* [depth]: weights and their gradients */
    float *norm_w, *norm_b, *dnorm_w, *dnorm_b;
} Transformer;

void transformer_declare(ParamTable *table, TransformerShape shape);
/* Points the stack at its tensors in the params and grads buffers (layout of table). */
void transformer_bind(Transformer *tr, TransformerShape shape, const ParamTable *table,
                      float *params, float *grads);
void transformer_free(Transformer *tr);

typedef struct BlockActs {
    float *ln1, *ln1_mean, *ln1_rstd; /* [B,T,C], [B,T], [B,T] */
    float *qkv;                       /* [B,T,3C] */
    float *att;                       /* [B,NH,T,T] */
    float *atty;                      /* [B,T,C] attention output before proj */
    float *res1;                      /* [B,T,C] x after the attention residual */
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fc1, *gelu;                /* [B,T,hidden] */
    float *out;                       /* [B,T,C] block output */
} BlockActs;

/* Everything one forward pass keeps for its backward pass, plus backward scratch, for up to
 * B x T tokens; carved from an arena once. */
typedef struct TransformerActs {
    size_t B, T;
    BlockActs *blocks;
    float *out, *norm_mean, *norm_rstd; /* the stack's output; = last block's out without a norm */
    float *dx, *dres, *dln, *datty, *dqkv, *datt, *dgelu, *dfc1;
} TransformerActs;

/* Bytes transformer_acts_init takes from an arena for B x T tokens. */
size_t transformer_acts_bytes(const TransformerShape *shape, size_t B, size_t T);
void transformer_acts_init(TransformerActs *acts, const TransformerShape *shape, size_t B, size_t T,
                           Arena *arena);
void transformer_acts_free(TransformerActs *acts);

/* in[B,T,C] -> acts->out[B,T,C]. B, T at most the capacity of acts. */
void transformer_forward(const Transformer *tr, TransformerActs *acts, const float *in, size_t B, size_t T);
/* dout[B,T,C] is the gradient at acts->out. Accumulates din[B,T,C] (+=) and the parameter
 * gradients (+=). in is the forward input. Tells ready (may be NULL) after the final norm and after
 * each block, from the last block down. */
void transformer_backward(const Transformer *tr, TransformerActs *acts, const float *in,
                          const float *dout, float *din, size_t B, size_t T, const GradReady *ready);

#endif
