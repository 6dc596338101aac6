/* A stack of pre-norm transformer blocks (timm 0.3.2 Block, as facebookresearch/mae uses it),
 * optionally followed by a final LayerNorm:
 *     x = x + proj(attention(qkv(norm1(x))))
 *     x = x + fc2(gelu(fc1(norm2(x))))
 *     out = norm(x)                         (when the stack has a final norm)
 * Parameter names are PREFIX.i.norm1.weight, PREFIX.i.attn.qkv.weight, PREFIX.i.attn.proj.bias,
 * PREFIX.i.mlp.fc1.weight, ... and NORM.weight / NORM.bias for the final norm.
 *
 * A stack bound without gradients runs forward only; its activations, made without backward,
 * keep each block's output (taps) but share the rest of one block's buffers. The forward pass
 * can run a range of blocks (a teacher that stops at block k), and the backward pass takes
 * gradients injected at the outputs of intermediate blocks (a loss on a tapped block). */
#ifndef MAEC_TRANSFORMER_H
#define MAEC_TRANSFORMER_H

#include "maec/alloc.h"
#include "maec/params.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct BlockParams {
    float *norm1_w, *norm1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    float *norm2_w, *norm2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} BlockParams;

typedef struct TransformerShape {
    char prefix[PARAM_NAME_MAX];    /* "blocks", "decoder_blocks", "teacher.blocks" */
    char norm_name[PARAM_NAME_MAX]; /* "norm", "decoder_norm", or "" for no final norm */
    size_t depth, dim, heads, hidden;
} TransformerShape;

typedef struct Transformer {
    TransformerShape shape;
    BlockParams *w, *g; /* [depth]: weights and their gradients (g NULL: forward only) */
    float *norm_w, *norm_b, *dnorm_w, *dnorm_b;
} Transformer;

/* The shape of a stack; norm_name NULL or "" for none. */
TransformerShape transformer_shape(const char *prefix, const char *norm_name, size_t depth, size_t dim,
                                   size_t heads, size_t hidden);
void transformer_declare(ParamTable *table, const TransformerShape *shape);
/* Points the stack at its tensors in the params and grads buffers (layout of table); grads NULL
 * makes a forward-only stack. */
void transformer_bind(Transformer *tr, const TransformerShape *shape, const ParamTable *table,
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
 * B x T tokens; carved from an arena once. Without backward, the blocks share one block's
 * buffers except their outputs, and there is no backward scratch. */
typedef struct TransformerActs {
    size_t B, T;
    bool backward;
    BlockActs *blocks;
    float *out, *norm_mean, *norm_rstd; /* the stack's output; = last block's out without a norm */
    float *dx, *dres, *dln, *datty, *dqkv, *datt, *dgelu, *dfc1;
} TransformerActs;

/* Bytes transformer_acts_init takes from an arena for B x T tokens. */
size_t transformer_acts_bytes(const TransformerShape *shape, size_t B, size_t T, bool backward);
void transformer_acts_init(TransformerActs *acts, const TransformerShape *shape, size_t B, size_t T,
                           bool backward, Arena *arena);
void transformer_acts_free(TransformerActs *acts);

/* in[B,T,C] -> acts->out[B,T,C]. B, T at most the capacity of acts. */
void transformer_forward(const Transformer *tr, TransformerActs *acts, const float *in, size_t B, size_t T);
/* Blocks [from, to) only, in[B,T,C] being the input of block `from` (acts->blocks[from - 1].out
 * after an earlier range); the final norm runs when `to` is the depth. Block l's output is
 * acts->blocks[l].out. */
void transformer_forward_blocks(const Transformer *tr, TransformerActs *acts, const float *in, size_t B,
                                size_t T, size_t from, size_t to);

/* A gradient [B,T,C] at the output of block `block` (before the final norm), from a loss on it. */
typedef struct BlockGrad {
    size_t block;
    const float *grad;
} BlockGrad;

/* dout[B,T,C] is the gradient at acts->out (NULL: none, only injected ones), taps[n_taps] the
 * gradients injected at block outputs. Accumulates din[B,T,C] (+=) and the parameter gradients
 * (+=). in is the forward input. Tells ready (may be NULL) after the final norm and after each
 * block, from the last block down. */
void transformer_backward(const Transformer *tr, TransformerActs *acts, const float *in, const float *dout,
                          const BlockGrad *taps, size_t n_taps, float *din, size_t B, size_t T,
                          const GradReady *ready);

#endif
