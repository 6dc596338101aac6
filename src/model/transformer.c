#include "maec/transformer.h"

#include "maec/attention.h"
#include "maec/error.h"
#include "maec/gelu.h"
#include "maec/layernorm.h"
#include "maec/linear.h"
#include "maec/tensor_ops.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tensors of one block: name suffix, rank, and shape in units of (C, hidden). */
typedef struct BlockTensor {
    const char *suffix;
    size_t offset_in_struct;
    int ndim;
    char rows, cols; /* 'C' = dim, 'H' = hidden, '3' = 3*dim, 0 = absent */
} BlockTensor;

#define BLOCK_TENSOR(field, suffix, ndim, rows, cols) {suffix, offsetof(BlockParams, field), ndim, rows, cols}
static const BlockTensor block_tensors[] = {
    BLOCK_TENSOR(norm1_w, "norm1.weight", 1, 'C', 0),     BLOCK_TENSOR(norm1_b, "norm1.bias", 1, 'C', 0),
    BLOCK_TENSOR(qkv_w, "attn.qkv.weight", 2, '3', 'C'),  BLOCK_TENSOR(qkv_b, "attn.qkv.bias", 1, '3', 0),
    BLOCK_TENSOR(proj_w, "attn.proj.weight", 2, 'C', 'C'), BLOCK_TENSOR(proj_b, "attn.proj.bias", 1, 'C', 0),
    BLOCK_TENSOR(norm2_w, "norm2.weight", 1, 'C', 0),     BLOCK_TENSOR(norm2_b, "norm2.bias", 1, 'C', 0),
    BLOCK_TENSOR(fc1_w, "mlp.fc1.weight", 2, 'H', 'C'),   BLOCK_TENSOR(fc1_b, "mlp.fc1.bias", 1, 'H', 0),
    BLOCK_TENSOR(fc2_w, "mlp.fc2.weight", 2, 'C', 'H'),   BLOCK_TENSOR(fc2_b, "mlp.fc2.bias", 1, 'C', 0),
};
#undef BLOCK_TENSOR
#define NUM_BLOCK_TENSORS (sizeof block_tensors / sizeof block_tensors[0])

static size_t extent(char code, const TransformerShape *s)
{
    return code == 'C' ? s->dim : code == 'H' ? s->hidden : 3 * s->dim;
}

static void block_tensor_name(char *buf, size_t size, const TransformerShape *s, size_t layer,
                              const BlockTensor *bt)
{
    snprintf(buf, size, "%s.%zu.%s", s->prefix, layer, bt->suffix);
}

static void norm_tensor_name(char *buf, size_t size, const TransformerShape *s, const char *what)
{
    snprintf(buf, size, "%s.%s", s->norm_name, what);
}

TransformerShape transformer_shape(const char *prefix, const char *norm_name, size_t depth, size_t dim,
                                   size_t heads, size_t hidden)
{
    TransformerShape s = {.depth = depth, .dim = dim, .heads = heads, .hidden = hidden};
    if ((size_t)snprintf(s.prefix, sizeof s.prefix, "%s", prefix) >= sizeof s.prefix ||
        (size_t)snprintf(s.norm_name, sizeof s.norm_name, "%s", norm_name ? norm_name : "") >= sizeof s.norm_name)
        fatal("internal: transformer names '%s', '%s' are too long", prefix, norm_name);
    return s;
}

static bool has_norm(const TransformerShape *s) { return s->norm_name[0] != '\0'; }

void transformer_declare(ParamTable *table, const TransformerShape *s)
{
    char name[PARAM_NAME_MAX];
    for (size_t l = 0; l < s->depth; l++)
        for (size_t i = 0; i < NUM_BLOCK_TENSORS; i++) {
            const BlockTensor *bt = &block_tensors[i];
            size_t shape[2] = {extent(bt->rows, s), bt->ndim == 2 ? extent(bt->cols, s) : 0};
            block_tensor_name(name, sizeof name, s, l, bt);
            param_table_add(table, name, bt->ndim, shape);
        }
    if (has_norm(s)) {
        size_t shape[1] = {s->dim};
        norm_tensor_name(name, sizeof name, s, "weight");
        param_table_add(table, name, 1, shape);
        norm_tensor_name(name, sizeof name, s, "bias");
        param_table_add(table, name, 1, shape);
    }
}

/* The tensor's place in buffer, or NULL for a NULL buffer (a forward-only stack's gradients). */
static float *tensor_in(const ParamTable *table, float *buffer, const char *name)
{
    return buffer ? param_ptr(table, buffer, name) : NULL;
}

void transformer_bind(Transformer *tr, const TransformerShape *s, const ParamTable *table, float *params,
                      float *grads)
{
    char name[PARAM_NAME_MAX];
    memset(tr, 0, sizeof *tr);
    tr->shape = *s;
    tr->w = xcalloc(s->depth, sizeof(BlockParams), "transformer weights");
    tr->g = grads ? xcalloc(s->depth, sizeof(BlockParams), "transformer gradients") : NULL;
    for (size_t l = 0; l < s->depth; l++)
        for (size_t i = 0; i < NUM_BLOCK_TENSORS; i++) {
            block_tensor_name(name, sizeof name, s, l, &block_tensors[i]);
            size_t at = block_tensors[i].offset_in_struct;
            *(float **)((char *)&tr->w[l] + at) = param_ptr(table, params, name);
            if (grads)
                *(float **)((char *)&tr->g[l] + at) = param_ptr(table, grads, name);
        }
    if (has_norm(s)) {
        norm_tensor_name(name, sizeof name, s, "weight");
        tr->norm_w = param_ptr(table, params, name);
        tr->dnorm_w = tensor_in(table, grads, name);
        norm_tensor_name(name, sizeof name, s, "bias");
        tr->norm_b = param_ptr(table, params, name);
        tr->dnorm_b = tensor_in(table, grads, name);
    }
}

void transformer_free(Transformer *tr)
{
    free(tr->w);
    free(tr->g);
    memset(tr, 0, sizeof *tr);
}

/* One walk over every activation buffer, used both to size the arena and to carve it, so the
 * two can never disagree. With arena NULL it only counts bytes. */
static size_t carve(float **slot, size_t count, Arena *arena)
{
    if (arena)
        *slot = arena_floats(arena, count);
    return arena_floats_size(count);
}

/* Every buffer of one block but its output. */
static size_t layout_block(BlockActs *k, const TransformerShape *s, size_t BT, size_t att, Arena *arena)
{
    const size_t C = s->dim, H = s->hidden;
    size_t bytes = carve(&k->ln1, BT * C, arena) + carve(&k->ln1_mean, BT, arena) + carve(&k->ln1_rstd, BT, arena);
    bytes += carve(&k->qkv, BT * 3 * C, arena) + carve(&k->att, att, arena) + carve(&k->atty, BT * C, arena);
    bytes += carve(&k->res1, BT * C, arena);
    bytes += carve(&k->ln2, BT * C, arena) + carve(&k->ln2_mean, BT, arena) + carve(&k->ln2_rstd, BT, arena);
    return bytes + carve(&k->fc1, BT * H, arena) + carve(&k->gelu, BT * H, arena);
}

static size_t layout_acts(TransformerActs *a, const TransformerShape *s, size_t B, size_t T, Arena *arena)
{
    const size_t BT = B * T, C = s->dim, H = s->hidden, att = B * s->heads * T * T;
    size_t bytes = 0;
    for (size_t l = 0; l < s->depth; l++) {
        BlockActs *k = &a->blocks[l];
        if (a->backward || l == 0)
            bytes += layout_block(k, s, BT, att, arena);
        else /* nothing is kept for a backward pass: block 0's buffers serve every block */
            *k = a->blocks[0];
        bytes += carve(&k->out, BT * C, arena);
    }
    if (has_norm(s))
        bytes += carve(&a->out, BT * C, arena) + carve(&a->norm_mean, BT, arena) + carve(&a->norm_rstd, BT, arena);
    if (!a->backward)
        return bytes;
    bytes += carve(&a->dx, BT * C, arena) + carve(&a->dres, BT * C, arena) + carve(&a->dln, BT * C, arena);
    bytes += carve(&a->datty, BT * C, arena) + carve(&a->dqkv, BT * 3 * C, arena) + carve(&a->datt, att, arena);
    bytes += carve(&a->dgelu, BT * H, arena) + carve(&a->dfc1, BT * H, arena);
    return bytes;
}

size_t transformer_acts_bytes(const TransformerShape *shape, size_t B, size_t T, bool backward)
{
    TransformerActs scratch = {.backward = backward};
    BlockActs *blocks = xcalloc(shape->depth, sizeof(BlockActs), "activation table");
    scratch.blocks = blocks;
    size_t bytes = layout_acts(&scratch, shape, B, T, NULL);
    free(blocks);
    return bytes;
}

void transformer_acts_init(TransformerActs *acts, const TransformerShape *shape, size_t B, size_t T,
                           bool backward, Arena *arena)
{
    memset(acts, 0, sizeof *acts);
    acts->B = B;
    acts->T = T;
    acts->backward = backward;
    acts->blocks = xcalloc(shape->depth, sizeof(BlockActs), "activation table");
    layout_acts(acts, shape, B, T, arena);
    if (!has_norm(shape))
        acts->out = acts->blocks[shape->depth - 1].out;
}

void transformer_acts_free(TransformerActs *acts)
{
    free(acts->blocks);
    memset(acts, 0, sizeof *acts);
}

static void block_forward(const BlockParams *w, BlockActs *a, const float *in, const TransformerShape *s,
                          size_t B, size_t T)
{
    const size_t M = B * T, C = s->dim, H = s->hidden;
    layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, in, w->norm1_w, w->norm1_b, M, C);
    linear_forward(a->qkv, a->ln1, w->qkv_w, w->qkv_b, M, C, 3 * C);
    attention_forward(a->atty, a->att, a->qkv, B, T, C, s->heads);
    linear_forward(a->res1, a->atty, w->proj_w, w->proj_b, M, C, C);
    residual_forward(a->res1, a->res1, in, M * C);
    layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->res1, w->norm2_w, w->norm2_b, M, C);
    linear_forward(a->fc1, a->ln2, w->fc1_w, w->fc1_b, M, C, H);
    gelu_forward(a->gelu, a->fc1, M * H);
    linear_forward(a->out, a->gelu, w->fc2_w, w->fc2_b, M, H, C);
    residual_forward(a->out, a->out, a->res1, M * C);
}

void transformer_forward_blocks(const Transformer *tr, TransformerActs *acts, const float *in, size_t B,
                                size_t T, size_t from, size_t to)
{
    const TransformerShape *s = &tr->shape;
    if (B > acts->B || T > acts->T || from > to || to > s->depth)
        fatal("internal: transformer_forward_blocks [%zu, %zu) of %zu at %zu x %zu tokens (sized for %zu x %zu)",
              from, to, s->depth, B, T, acts->B, acts->T);
    const float *x = in;
    for (size_t l = from; l < to; l++) {
        block_forward(&tr->w[l], &acts->blocks[l], x, s, B, T);
        x = acts->blocks[l].out;
    }
    if (to == s->depth && has_norm(s))
        layernorm_forward(acts->out, acts->norm_mean, acts->norm_rstd, x, tr->norm_w, tr->norm_b, B * T, s->dim);
}

void transformer_forward(const Transformer *tr, TransformerActs *acts, const float *in, size_t B, size_t T)
{
    transformer_forward_blocks(tr, acts, in, B, T, 0, tr->shape.depth);
}

/* dx holds the gradient at the block's output on entry and at its input on return. */
static void block_backward(const BlockParams *w, const BlockParams *g, BlockActs *a, TransformerActs *sc,
                           const float *in, const TransformerShape *s, size_t B, size_t T)
{
    const size_t M = B * T, C = s->dim, H = s->hidden;
    /* MLP branch: out = res1 + fc2(gelu(fc1(ln2(res1)))) */
    memset(sc->dgelu, 0, M * H * sizeof(float));
    linear_backward(sc->dgelu, g->fc2_w, g->fc2_b, sc->dx, a->gelu, w->fc2_w, M, H, C);
    memset(sc->dfc1, 0, M * H * sizeof(float));
    gelu_backward(sc->dfc1, a->fc1, sc->dgelu, M * H);
    memset(sc->dln, 0, M * C * sizeof(float));
    linear_backward(sc->dln, g->fc1_w, g->fc1_b, sc->dfc1, a->ln2, w->fc1_w, M, C, H);
    memcpy(sc->dres, sc->dx, M * C * sizeof(float));
    layernorm_backward(sc->dres, g->norm2_w, g->norm2_b, sc->dln, a->res1, w->norm2_w, a->ln2_mean,
                       a->ln2_rstd, M, C);
    /* attention branch: res1 = in + proj(attention(qkv(ln1(in)))) */
    memset(sc->datty, 0, M * C * sizeof(float));
    linear_backward(sc->datty, g->proj_w, g->proj_b, sc->dres, a->atty, w->proj_w, M, C, C);
    memset(sc->dqkv, 0, M * 3 * C * sizeof(float));
    attention_backward(sc->dqkv, sc->datt, sc->datty, a->qkv, a->att, B, T, C, s->heads);
    memset(sc->dln, 0, M * C * sizeof(float));
    linear_backward(sc->dln, g->qkv_w, NULL, sc->dqkv, a->ln1, w->qkv_w, M, C, 3 * C);
    /* The key bias adds q.b_k to every score of a softmax row, which the softmax ignores: its
     * gradient is exactly zero. Summing float noise for it instead would let AdamW (which
     * normalises any nonzero gradient) move it by up to lr per step; the float64 reference
     * keeps it still, and so does this. */
    linear_bias_backward(g->qkv_b, sc->dqkv, M, C, 3 * C);
    linear_bias_backward(g->qkv_b + 2 * C, sc->dqkv + 2 * C, M, C, 3 * C);
    memcpy(sc->dx, sc->dres, M * C * sizeof(float));
    layernorm_backward(sc->dx, g->norm1_w, g->norm1_b, sc->dln, in, w->norm1_w, a->ln1_mean, a->ln1_rstd, M, C);
}

/* dx += the gradients injected at block l's output. */
static void add_taps(float *dx, const BlockGrad *taps, size_t n_taps, size_t l, size_t n)
{
    for (size_t i = 0; i < n_taps; i++)
        if (taps[i].block == l)
            for (size_t k = 0; k < n; k++)
                dx[k] += taps[i].grad[k];
}

void transformer_backward(const Transformer *tr, TransformerActs *acts, const float *in, const float *dout,
                          const BlockGrad *taps, size_t n_taps, float *din, size_t B, size_t T,
                          const GradReady *ready)
{
    const TransformerShape *s = &tr->shape;
    const size_t M = B * T, C = s->dim;
    if (!tr->g || !acts->backward)
        fatal("internal: transformer_backward on a forward-only stack (%s)", s->prefix);
    if (has_norm(s)) {
        memset(acts->dx, 0, M * C * sizeof(float));
        if (dout)
            layernorm_backward(acts->dx, tr->dnorm_w, tr->dnorm_b, dout, acts->blocks[s->depth - 1].out,
                               tr->norm_w, acts->norm_mean, acts->norm_rstd, M, C);
        grad_ready(ready, tr->dnorm_w);
    } else if (dout) {
        memcpy(acts->dx, dout, M * C * sizeof(float));
    } else {
        memset(acts->dx, 0, M * C * sizeof(float));
    }
    for (size_t l = s->depth; l-- > 0;) {
        const float *x = l ? acts->blocks[l - 1].out : in;
        add_taps(acts->dx, taps, n_taps, l, M * C);
        block_backward(&tr->w[l], &tr->g[l], &acts->blocks[l], acts, x, s, B, T);
        grad_ready(ready, tr->g[l].norm1_w); /* the block's first tensor in the table */
    }
    for (size_t i = 0; i < M * C; i++)
        din[i] += acts->dx[i];
}
