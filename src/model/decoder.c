#include "maec/decoder.h"

#include "maec/linear.h"
#include "maec/posembed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

DecoderConfig decoder_config_mae(const ModelConfig *cfg)
{
    DecoderConfig d = {.enc_dim = (size_t)cfg->embed_dim, .dim = (size_t)cfg->decoder_embed_dim,
                       .depth = (size_t)cfg->decoder_depth, .heads = (size_t)cfg->decoder_num_heads,
                       .hidden = (size_t)vit_mlp_hidden(cfg, cfg->decoder_embed_dim),
                       .out_dim = (size_t)vit_patch_dim(cfg), .grid = vit_grid_size(cfg)};
    snprintf(d.prefix, sizeof d.prefix, "decoder");
    snprintf(d.mask_token, sizeof d.mask_token, "mask_token");
    return d;
}

static void tensor_name(char *buf, const DecoderConfig *cfg, const char *part)
{
    if ((size_t)snprintf(buf, PARAM_NAME_MAX, "%s_%s", cfg->prefix, part) >= PARAM_NAME_MAX)
        fatal("internal: decoder tensor name '%s_%s' is too long", cfg->prefix, part);
}

static TransformerShape decoder_shape(const DecoderConfig *cfg)
{
    char blocks[PARAM_NAME_MAX], norm[PARAM_NAME_MAX];
    tensor_name(blocks, cfg, "blocks");
    tensor_name(norm, cfg, "norm");
    return transformer_shape(blocks, norm, cfg->depth, cfg->dim, cfg->heads, cfg->hidden);
}

void decoder_declare(ParamTable *table, const DecoderConfig *cfg)
{
    char name[PARAM_NAME_MAX];
    param_table_add(table, cfg->mask_token, 3, (size_t[]){1, 1, cfg->dim});
    tensor_name(name, cfg, "embed.weight");
    param_table_add(table, name, 2, (size_t[]){cfg->dim, cfg->enc_dim});
    tensor_name(name, cfg, "embed.bias");
    param_table_add(table, name, 1, (size_t[]){cfg->dim});
    TransformerShape shape = decoder_shape(cfg);
    transformer_declare(table, &shape);
    tensor_name(name, cfg, "pred.weight");
    param_table_add(table, name, 2, (size_t[]){cfg->out_dim, cfg->dim});
    tensor_name(name, cfg, "pred.bias");
    param_table_add(table, name, 1, (size_t[]){cfg->out_dim});
}

void decoder_bind(Decoder *dec, const DecoderConfig *cfg, const ParamTable *table, float *params, float *grads)
{
    memset(dec, 0, sizeof *dec);
    dec->cfg = *cfg;
    dec->dim = cfg->dim;
    dec->enc_dim = cfg->enc_dim;
    dec->num_patches = (size_t)cfg->grid * (size_t)cfg->grid;
    dec->out_dim = cfg->out_dim;
    struct { float **p, **g; const char *part; } slots[] = {
        {&dec->mask_token, &dec->dmask_token, NULL},
        {&dec->embed_w, &dec->dembed_w, "embed.weight"},
        {&dec->embed_b, &dec->dembed_b, "embed.bias"},
        {&dec->pred_w, &dec->dpred_w, "pred.weight"},
        {&dec->pred_b, &dec->dpred_b, "pred.bias"},
    };
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        char name[PARAM_NAME_MAX];
        if (slots[i].part)
            tensor_name(name, cfg, slots[i].part);
        else
            snprintf(name, sizeof name, "%s", cfg->mask_token);
        *slots[i].p = param_ptr(table, params, name);
        *slots[i].g = grads ? param_ptr(table, grads, name) : NULL;
    }
    dec->pos = xmalloc((1 + dec->num_patches) * dec->dim * sizeof(float), "decoder position table");
    posembed_2d_sincos(dec->pos, (int)dec->dim, cfg->grid, true);
    TransformerShape shape = decoder_shape(cfg);
    transformer_bind(&dec->blocks, &shape, table, params, grads);
}

void decoder_free(Decoder *dec)
{
    free(dec->pos);
    transformer_free(&dec->blocks);
    memset(dec, 0, sizeof *dec);
}

size_t decoder_acts_bytes(const Decoder *dec, size_t B, size_t n_keep, size_t n_masked)
{
    const size_t T = 1 + n_keep + n_masked, Dd = dec->dim;
    return arena_floats_size(B * dec->num_patches) + arena_floats_size(B * (1 + n_keep) * Dd) +
           3 * arena_floats_size(B * T * Dd) + arena_floats_size(B * T * dec->out_dim) +
           transformer_acts_bytes(&dec->blocks.shape, B, T, true);
}

void decoder_acts_init(DecoderActs *acts, const Decoder *dec, size_t B, size_t n_keep, size_t n_masked,
                       Arena *arena)
{
    const size_t T = 1 + n_keep + n_masked, Dd = dec->dim;
    acts->B = B;
    acts->n_keep = n_keep;
    acts->T = T;
    acts->rows = (int32_t *)arena_floats(arena, B * dec->num_patches); /* int32 and float are both 4 bytes */
    acts->embedded = arena_floats(arena, B * (1 + n_keep) * Dd);
    acts->tokens = arena_floats(arena, B * T * Dd);
    acts->dtokens = arena_floats(arena, B * T * Dd);
    acts->dstack = arena_floats(arena, B * T * Dd);
    acts->pred = arena_floats(arena, B * T * dec->out_dim);
    transformer_acts_init(&acts->stack, &dec->blocks.shape, B, T, true, arena);
}

void decoder_acts_free(DecoderActs *acts) { transformer_acts_free(&acts->stack); }

/* rows[L] <- the decoder row of every patch: 1 + its rank among the decoded patches by id, -1 for
 * a thrown one (with nothing thrown, 1 + the patch id). */
static void place_rows(int32_t *rows, const int32_t *order, size_t decoded, size_t L)
{
    for (size_t p = 0; p < L; p++)
        rows[p] = -1;
    for (size_t j = 0; j < decoded; j++)
        rows[order[j]] = 0;
    int32_t next = 1;
    for (size_t p = 0; p < L; p++)
        if (rows[p] == 0)
            rows[p] = next++;
}

void decoder_forward(const Decoder *dec, DecoderActs *acts, const float *latent, const int32_t *order,
                     size_t visible, size_t masked, size_t B)
{
    const size_t Dd = dec->dim, L = dec->num_patches, T = 1 + visible + masked, K = 1 + visible;
    if (B > acts->B || visible > acts->n_keep || T > acts->T)
        fatal("internal: decoder_forward of %zu images, %zu + %zu patches exceeds its activations", B, visible,
              masked);
    linear_forward(acts->embedded, latent, dec->embed_w, dec->embed_b, B * K, dec->enc_dim, Dd);
    for (size_t b = 0; b < B; b++) {
        float *tok = acts->tokens + b * T * Dd;
        const float *emb = acts->embedded + b * K * Dd;
        int32_t *rows = acts->rows + b * L;
        place_rows(rows, order + b * L, visible + masked, L);
        for (size_t d = 0; d < Dd; d++) /* CLS stays first */
            tok[d] = emb[d] + dec->pos[d];
        for (size_t j = 0; j < visible + masked; j++) {
            size_t patch = (size_t)order[b * L + j];
            const float *src = j < visible ? emb + (1 + j) * Dd : dec->mask_token, *pos = dec->pos + (1 + patch) * Dd;
            float *dst = tok + (size_t)rows[patch] * Dd;
            for (size_t d = 0; d < Dd; d++)
                dst[d] = src[d] + pos[d];
        }
    }
    transformer_forward(&dec->blocks, &acts->stack, acts->tokens, B, T);
    linear_forward(acts->pred, acts->stack.out, dec->pred_w, dec->pred_b, B * T, Dd, dec->out_dim);
}

void decoder_backward(const Decoder *dec, DecoderActs *acts, const float *latent, const float *dpred,
                      float *dlatent, const int32_t *order, size_t visible, size_t masked, size_t B,
                      const GradReady *ready)
{
    const size_t Dd = dec->dim, L = dec->num_patches, T = 1 + visible + masked, K = 1 + visible;
    memset(acts->dstack, 0, B * T * Dd * sizeof(float));
    linear_backward(acts->dstack, dec->dpred_w, dec->dpred_b, dpred, acts->stack.out, dec->pred_w, B * T, Dd,
                    dec->out_dim);
    grad_ready(ready, dec->dpred_w);
    memset(acts->dtokens, 0, B * T * Dd * sizeof(float));
    transformer_backward(&dec->blocks, &acts->stack, acts->tokens, acts->dstack, NULL, 0, acts->dtokens, B, T,
                         ready);
    for (size_t b = 0; b < B; b++) {
        const float *dtok = acts->dtokens + b * T * Dd;
        const int32_t *rows = acts->rows + b * L;
        float *demb = acts->embedded + b * K * Dd;
        memcpy(demb, dtok, Dd * sizeof(float));
        for (size_t j = 0; j < visible + masked; j++) {
            const float *src = dtok + (size_t)rows[order[b * L + j]] * Dd;
            if (j < visible)
                memcpy(demb + (1 + j) * Dd, src, Dd * sizeof(float));
            else
                for (size_t d = 0; d < Dd; d++)
                    dec->dmask_token[d] += src[d];
        }
    }
    linear_backward(dlatent, dec->dembed_w, dec->dembed_b, acts->embedded, latent, dec->embed_w, B * K,
                    dec->enc_dim, Dd);
    grad_ready(ready, dec->dmask_token); /* the decoder's first tensor in the table */
}
