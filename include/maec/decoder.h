/* The MAE decoder (facebookresearch/mae forward_decoder): a linear from the encoder width to the
 * decoder width on every encoded token, mask tokens appended and un-shuffled into patch order,
 * fixed 2-D sin-cos positions, the decoder blocks and norm, and a linear prediction of the
 * p*p*C pixel values of every patch in (row, col, c) order. */
#ifndef MAEC_DECODER_H
#define MAEC_DECODER_H

#include "maec/alloc.h"
#include "maec/params.h"
#include "maec/transformer.h"
#include "maec/vit.h"

#include <stdint.h>

typedef struct Decoder {
    size_t dim, enc_dim, num_patches, patch_dim;
    float *embed_w, *embed_b, *mask_token, *pred_w, *pred_b; /* [Dd,D] [Dd] [Dd] [ppC,Dd] [ppC] */
    float *dembed_w, *dembed_b, *dmask_token, *dpred_w, *dpred_b;
    float *pos; /* [1 + L, Dd], row 0 zeros; fixed, owned */
    Transformer blocks;
} Decoder;

typedef struct DecoderActs {
    size_t B, n_keep;
    float *embedded;  /* [B, 1+n_keep, Dd]: decoder_embed of the encoder output; its gradient later */
    float *tokens;    /* [B, 1+L, Dd]: un-shuffled tokens plus positions, input of the blocks */
    float *dtokens;   /* [B, 1+L, Dd] */
    float *dstack;    /* [B, 1+L, Dd]: gradient at the blocks' output */
    float *pred;      /* [B, 1+L, ppC]: row 0 (CLS) is computed and ignored, as the reference */
    TransformerActs stack;
} DecoderActs;

/* Declares mask_token, decoder_embed.*, decoder_blocks.*, decoder_norm.*, decoder_pred.*. */
void decoder_declare(ParamTable *table, const ModelConfig *cfg);
void decoder_bind(Decoder *dec, const ModelConfig *cfg, const ParamTable *table, float *params, float *grads);
void decoder_free(Decoder *dec);

size_t decoder_acts_bytes(const Decoder *dec, size_t B, size_t n_keep);
void decoder_acts_init(DecoderActs *acts, const Decoder *dec, size_t B, size_t n_keep, Arena *arena);
void decoder_acts_free(DecoderActs *acts);

/* latent [B, 1+n_keep, D] from the encoder; ids_shuffle [B, L] (patch ids_shuffle[b][j] is
 * encoded token j+1 for j < n_keep, masked otherwise). Result: acts->pred. */
void decoder_forward(const Decoder *dec, DecoderActs *acts, const float *latent,
                     const int32_t *ids_shuffle, size_t n_keep, size_t B);
/* dpred [B, 1+L, ppC] (row 0 ignored): gradient at acts->pred. Accumulates dlatent
 * [B, 1+n_keep, D] and the parameter gradients, telling ready (may be NULL) as they become final. */
void decoder_backward(const Decoder *dec, DecoderActs *acts, const float *latent, const float *dpred,
                      float *dlatent, const int32_t *ids_shuffle, size_t n_keep, size_t B,
                      const GradReady *ready);

#endif
