#include "maec/encoder.h"

#include "maec/linear.h"
#include "maec/posembed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void prefixed(char *buf, const char *prefix, const char *name)
{
    if ((size_t)snprintf(buf, PARAM_NAME_MAX, "%s%s", prefix, name) >= PARAM_NAME_MAX)
        fatal("internal: tensor name '%s%s' is too long", prefix, name);
}

static TransformerShape encoder_shape(const ModelConfig *cfg, const char *prefix, bool final_norm)
{
    char blocks[PARAM_NAME_MAX], norm[PARAM_NAME_MAX];
    prefixed(blocks, prefix, "blocks");
    prefixed(norm, prefix, "norm");
    return transformer_shape(blocks, final_norm ? norm : NULL, (size_t)cfg->depth, (size_t)cfg->embed_dim,
                             (size_t)cfg->num_heads, (size_t)vit_mlp_hidden(cfg, cfg->embed_dim));
}

void encoder_declare(ParamTable *table, const ModelConfig *cfg, const char *prefix, bool final_norm)
{
    size_t D = (size_t)cfg->embed_dim, C = (size_t)cfg->in_chans, p = (size_t)cfg->patch_size;
    char name[PARAM_NAME_MAX];
    prefixed(name, prefix, "cls_token");
    param_table_add(table, name, 3, (size_t[]){1, 1, D});
    prefixed(name, prefix, "patch_embed.proj.weight");
    param_table_add(table, name, 4, (size_t[]){D, C, p, p});
    prefixed(name, prefix, "patch_embed.proj.bias");
    param_table_add(table, name, 1, (size_t[]){D});
    TransformerShape shape = encoder_shape(cfg, prefix, final_norm);
    transformer_declare(table, &shape);
}

void encoder_bind(Encoder *enc, const ModelConfig *cfg, const char *prefix, const ParamTable *table,
                  float *params, float *grads, bool final_norm)
{
    memset(enc, 0, sizeof *enc);
    enc->cfg = *cfg;
    snprintf(enc->prefix, sizeof enc->prefix, "%s", prefix);
    enc->geometry = (PatchGeometry){cfg->img_size, cfg->patch_size, cfg->in_chans};
    enc->dim = (size_t)cfg->embed_dim;
    enc->num_patches = (size_t)vit_num_patches(cfg);
    enc->patch_dim = (size_t)vit_patch_dim(cfg);
    struct { float **p, **g; const char *name; } slots[] = {
        {&enc->cls, &enc->dcls, "cls_token"},
        {&enc->patch_w, &enc->dpatch_w, "patch_embed.proj.weight"},
        {&enc->patch_b, &enc->dpatch_b, "patch_embed.proj.bias"},
    };
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        char name[PARAM_NAME_MAX];
        prefixed(name, prefix, slots[i].name);
        *slots[i].p = param_ptr(table, params, name);
        *slots[i].g = grads ? param_ptr(table, grads, name) : NULL;
    }
    enc->pos = xmalloc((1 + enc->num_patches) * enc->dim * sizeof(float), "encoder position table");
    posembed_2d_sincos(enc->pos, cfg->embed_dim, vit_grid_size(cfg), true);
    TransformerShape shape = encoder_shape(cfg, prefix, final_norm);
    transformer_bind(&enc->blocks, &shape, table, params, grads);
}

void encoder_free(Encoder *enc)
{
    free(enc->pos);
    transformer_free(&enc->blocks);
    memset(enc, 0, sizeof *enc);
}

size_t encoder_acts_bytes(const Encoder *enc, size_t B, size_t n, bool backward)
{
    const size_t D = enc->dim, T = 1 + n;
    return arena_floats_size(B * n * enc->patch_dim) + arena_floats_size(B * n * D) +
           (backward ? 2 : 1) * arena_floats_size(B * T * D) +
           transformer_acts_bytes(&enc->blocks.shape, B, T, backward);
}

void encoder_acts_init(EncoderActs *acts, const Encoder *enc, size_t B, size_t n, bool backward, Arena *arena)
{
    const size_t D = enc->dim, T = 1 + n;
    acts->B = B;
    acts->n = n;
    acts->patches = arena_floats(arena, B * n * enc->patch_dim);
    acts->embedded = arena_floats(arena, B * n * D);
    acts->tokens = arena_floats(arena, B * T * D);
    acts->dtokens = backward ? arena_floats(arena, B * T * D) : NULL;
    transformer_acts_init(&acts->stack, &enc->blocks.shape, B, T, backward, arena);
}

void encoder_acts_free(EncoderActs *acts) { transformer_acts_free(&acts->stack); }

void encoder_forward(const Encoder *enc, EncoderActs *acts, const float *images, const int32_t *ids,
                     size_t ids_stride, size_t B, size_t n)
{
    const size_t D = enc->dim, T = 1 + n;
    patches_embed_order(acts->patches, images, ids, ids_stride, n, B, enc->geometry);
    linear_forward(acts->embedded, acts->patches, enc->patch_w, enc->patch_b, B * n, enc->patch_dim, D);
    for (size_t b = 0; b < B; b++) {
        float *tok = acts->tokens + b * T * D;
        for (size_t d = 0; d < D; d++)
            tok[d] = enc->cls[d] + enc->pos[d];
        for (size_t t = 0; t < n; t++) {
            size_t patch = ids ? (size_t)ids[b * ids_stride + t] : t;
            const float *e = acts->embedded + (b * n + t) * D, *pos = enc->pos + (1 + patch) * D;
            float *dst = tok + (1 + t) * D;
            for (size_t d = 0; d < D; d++)
                dst[d] = e[d] + pos[d];
        }
    }
    transformer_forward(&enc->blocks, &acts->stack, acts->tokens, B, T);
}

void encoder_backward(const Encoder *enc, EncoderActs *acts, const float *dout, const BlockGrad *taps,
                      size_t n_taps, size_t B, size_t n, const GradReady *ready)
{
    const size_t D = enc->dim, T = 1 + n;
    if (!enc->dcls || !acts->dtokens)
        fatal("internal: encoder_backward on a forward-only encoder '%s'", enc->prefix);
    memset(acts->dtokens, 0, B * T * D * sizeof(float));
    transformer_backward(&enc->blocks, &acts->stack, acts->tokens, dout, taps, n_taps, acts->dtokens, B, T, ready);
    for (size_t b = 0; b < B; b++) {
        const float *dtok = acts->dtokens + b * T * D;
        for (size_t d = 0; d < D; d++)
            enc->dcls[d] += dtok[d];
        memcpy(acts->embedded + b * n * D, dtok + D, n * D * sizeof(float));
    }
    linear_backward(NULL, enc->dpatch_w, enc->dpatch_b, acts->embedded, acts->patches, enc->patch_w,
                    B * n, enc->patch_dim, D);
    grad_ready(ready, enc->dcls); /* the encoder's first tensor in the table */
}
