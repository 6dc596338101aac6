/* The MAE decoder (facebookresearch/mae forward_decoder): a linear from the encoder width to the
 * decoder width on every encoded token, mask tokens for the masked patches, the tokens in patch
 * order with fixed 2-D sin-cos positions, the decoder blocks and norm, and a linear prediction of
 * out_dim values per token (the p*p*C pixels of a patch in (row, col, c) order for MAE; a
 * feature width for feature targets).
 *
 * Thrown patches (masking.h) get no token: the sequence is the CLS token, then the visible and
 * masked patches in increasing patch id. With nothing thrown that is MAE's un-shuffled order,
 * 1 + L tokens. Tensor names: PREFIX_embed.*, PREFIX_blocks.*, PREFIX_norm.*, PREFIX_pred.* and
 * the mask token's own name (MAE: prefix "decoder", "mask_token"). */
#ifndef MAEC_DECODER_H
#define MAEC_DECODER_H

#include "maec/alloc.h"
#include "maec/params.h"
#include "maec/transformer.h"
#include "maec/vit.h"

#include <stdint.h>

typedef struct DecoderConfig {
    char prefix[PARAM_NAME_MAX], mask_token[PARAM_NAME_MAX];
    size_t enc_dim, dim, depth, heads, hidden, out_dim;
    int grid; /* patches per side */
} DecoderConfig;

/* MAE's decoder of a model: prefix "decoder", "mask_token", the model's decoder sizes, predicting
 * the pixels of a patch. */
DecoderConfig decoder_config_mae(const ModelConfig *cfg);

typedef struct Decoder {
    DecoderConfig cfg;
    size_t dim, enc_dim, num_patches, out_dim;
    float *embed_w, *embed_b, *mask_token, *pred_w, *pred_b; /* [Dd,D] [Dd] [Dd] [out,Dd] [out] */
    float *dembed_w, *dembed_b, *dmask_token, *dpred_w, *dpred_b;
    float *pos; /* [1 + L, Dd], row 0 zeros; fixed, owned */
    Transformer blocks;
} Decoder;

typedef struct DecoderActs {
    size_t B, n_keep, T; /* capacity: images, encoded tokens per image, decoder tokens per image */
    int32_t *rows;    /* [B, L]: the decoder row of each patch, -1 when thrown */
    float *embedded;  /* [B, 1+n_keep, Dd]: decoder_embed of the encoder output; its gradient later */
    float *tokens;    /* [B, T, Dd]: tokens plus positions, input of the blocks */
    float *dtokens;   /* [B, T, Dd] */
    float *dstack;    /* [B, T, Dd]: gradient at the blocks' output */
    float *pred;      /* [B, T, out]: row 0 (CLS) is computed and ignored, as the reference */
    TransformerActs stack;
} DecoderActs;

void decoder_declare(ParamTable *table, const DecoderConfig *cfg);
void decoder_bind(Decoder *dec, const DecoderConfig *cfg, const ParamTable *table, float *params, float *grads);
void decoder_free(Decoder *dec);

/* For up to B images of n_keep encoded and n_keep + n_masked decoded patches. */
size_t decoder_acts_bytes(const Decoder *dec, size_t B, size_t n_keep, size_t n_masked);
void decoder_acts_init(DecoderActs *acts, const Decoder *dec, size_t B, size_t n_keep, size_t n_masked,
                       Arena *arena);
void decoder_acts_free(DecoderActs *acts);

/* latent [B, 1+visible, D] from the encoder; order [B, L] (masking.h): patch order[b][j] is encoded
 * token j+1 for j < visible, masked for j < visible + masked, thrown after. Result: acts->pred,
 * row acts->rows[b * L + patch] of image b for a patch. */
void decoder_forward(const Decoder *dec, DecoderActs *acts, const float *latent, const int32_t *order,
                     size_t visible, size_t masked, size_t B);
/* dpred [B, T, out] (row 0 ignored): gradient at acts->pred. Accumulates dlatent
 * [B, 1+visible, D] and the parameter gradients, telling ready (may be NULL) as they become final. */
void decoder_backward(const Decoder *dec, DecoderActs *acts, const float *latent, const float *dpred,
                      float *dlatent, const int32_t *order, size_t visible, size_t masked, size_t B,
                      const GradReady *ready);

#endif
