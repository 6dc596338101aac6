#include "maec/decoder.h"

#include "maec/linear.h"
#include "maec/posembed.h"

#include <stdlib.h>
#include <string.h>

static TransformerShape decoder_shape(const ModelConfig *cfg)
{
    return (TransformerShape){"decoder_blocks", "decoder_norm", (size_t)cfg->decoder_depth,
                              (size_t)cfg->decoder_embed_dim, (size_t)cfg->decoder_num_heads,
                              (size_t)vit_mlp_hidden(cfg, cfg->decoder_embed_dim)};
}

void decoder_declare(ParamTable *table, const ModelConfig *cfg)
{
    size_t Dd = (size_t)cfg->decoder_embed_dim, D = (size_t)cfg->embed_dim, P = (size_t)vit_patch_dim(cfg);
    param_table_add(table, "mask_token", 3, (size_t[]){1, 1, Dd});
    param_table_add(table, "decoder_embed.weight", 2, (size_t[]){Dd, D});
    param_table_add(table, "decoder_embed.bias", 1, (size_t[]){Dd});
    transformer_declare(table, decoder_shape(cfg));
    param_table_add(table, "decoder_pred.weight", 2, (size_t[]){P, Dd});
    param_table_add(table, "decoder_pred.bias", 1, (size_t[]){P});
}

void decoder_bind(Decoder *dec, const ModelConfig *cfg, const ParamTable *table, float *params, float *grads)
{
    memset(dec, 0, sizeof *dec);
    dec->dim = (size_t)cfg->decoder_embed_dim;
    dec->enc_dim = (size_t)cfg->embed_dim;
    dec->num_patches = (size_t)vit_num_patches(cfg);
    dec->patch_dim = (size_t)vit_patch_dim(cfg);
    struct { float **p, **g; const char *name; } slots[] = {
        {&dec->mask_token, &dec->dmask_token, "mask_token"},
        {&dec->embed_w, &dec->dembed_w, "decoder_embed.weight"},
        {&dec->embed_b, &dec->dembed_b, "decoder_embed.bias"},
        {&dec->pred_w, &dec->dpred_w, "decoder_pred.weight"},
        {&dec->pred_b, &dec->dpred_b, "decoder_pred.bias"},
    };
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        *slots[i].p = param_ptr(table, params, slots[i].name);
        *slots[i].g = param_ptr(table, grads, slots[i].name);
    }
    dec->pos = xmalloc((1 + dec->num_patches) * dec->dim * sizeof(float), "decoder position table");
    posembed_2d_sincos(dec->pos, cfg->decoder_embed_dim, vit_grid_size(cfg), true);
    transformer_bind(&dec->blocks, decoder_shape(cfg), table, params, grads);
}

void decoder_free(Decoder *dec)
{
    free(dec->pos);
    transformer_free(&dec->blocks);
    memset(dec, 0, sizeof *dec);
}

size_t decoder_acts_bytes(const Decoder *dec, size_t B, size_t n_keep)
{
    const size_t T = 1 + dec->num_patches, Dd = dec->dim;
    return arena_floats_size(B * (1 + n_keep) * Dd) + 3 * arena_floats_size(B * T * Dd) +
           arena_floats_size(B * T * dec->patch_dim) + transformer_acts_bytes(&dec->blocks.shape, B, T);
}

void decoder_acts_init(DecoderActs *acts, const Decoder *dec, size_t B, size_t n_keep, Arena *arena)
{
    const size_t T = 1 + dec->num_patches, Dd = dec->dim;
    acts->B = B;
    acts->n_keep = n_keep;
    acts->embedded = arena_floats(arena, B * (1 + n_keep) * Dd);
    acts->tokens = arena_floats(arena, B * T * Dd);
    acts->dtokens = arena_floats(arena, B * T * Dd);
    acts->dstack = arena_floats(arena, B * T * Dd);
    acts->pred = arena_floats(arena, B * T * dec->patch_dim);
    transformer_acts_init(&acts->stack, &dec->blocks.shape, B, T, arena);
}

void decoder_acts_free(DecoderActs *acts) { transformer_acts_free(&acts->stack); }

/* Row of the full token sequence that slot j of the shuffled order lands on. */
static size_t unshuffled_row(const int32_t *ids_shuffle, size_t L, size_t b, size_t j)
{
    return 1 + (size_t)ids_shuffle[b * L + j];
}

void decoder_forward(const Decoder *dec, DecoderActs *acts, const float *latent,
                     const int32_t *ids_shuffle, size_t n_keep, size_t B)
{
    const size_t Dd = dec->dim, L = dec->num_patches, T = 1 + L, K = 1 + n_keep;
    linear_forward(acts->embedded, latent, dec->embed_w, dec->embed_b, B * K, dec->enc_dim, Dd);
    for (size_t b = 0; b < B; b++) {
        float *tok = acts->tokens + b * T * Dd;
        const float *emb = acts->embedded + b * K * Dd;
        memcpy(tok, emb, Dd * sizeof(float)); /* CLS stays first */
        for (size_t j = 0; j < L; j++) {
            const float *src = j < n_keep ? emb + (1 + j) * Dd : dec->mask_token;
            memcpy(tok + unshuffled_row(ids_shuffle, L, b, j) * Dd, src, Dd * sizeof(float));
        }
        for (size_t i = 0; i < T * Dd; i++)
            tok[i] += dec->pos[i];
    }
    transformer_forward(&dec->blocks, &acts->stack, acts->tokens, B, T);
    linear_forward(acts->pred, acts->stack.out, dec->pred_w, dec->pred_b, B * T, Dd, dec->patch_dim);
}

void decoder_backward(const Decoder *dec, DecoderActs *acts, const float *latent, const float *dpred,
                      float *dlatent, const int32_t *ids_shuffle, size_t n_keep, size_t B,
                      const GradReady *ready)
{
    const size_t Dd = dec->dim, L = dec->num_patches, T = 1 + L, K = 1 + n_keep;
    memset(acts->dstack, 0, B * T * Dd * sizeof(float));
    linear_backward(acts->dstack, dec->dpred_w, dec->dpred_b, dpred, acts->stack.out, dec->pred_w, B * T, Dd,
                    dec->patch_dim);
    grad_ready(ready, dec->dpred_w);
    memset(acts->dtokens, 0, B * T * Dd * sizeof(float));
    transformer_backward(&dec->blocks, &acts->stack, acts->tokens, acts->dstack, acts->dtokens, B, T, ready);
    for (size_t b = 0; b < B; b++) {
        const float *dtok = acts->dtokens + b * T * Dd;
        float *demb = acts->embedded + b * K * Dd;
        memcpy(demb, dtok, Dd * sizeof(float));
        for (size_t j = 0; j < L; j++) {
            const float *src = dtok + unshuffled_row(ids_shuffle, L, b, j) * Dd;
            if (j < n_keep)
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
