/* The MAE objective (He et al. 2022; facebookresearch/mae): encode the visible patches, decode
 * all patches with mask tokens, and regress the pixels of the masked patches (optionally each
 * patch normalised by its own mean and unbiased variance, norm_pix_loss). The loss is the mean
 * over masked patches of the per-patch mean squared error, pooled over the batch. */
#ifndef MAEC_MAE_H
#define MAEC_MAE_H

#include "maec/alloc.h"
#include "maec/decoder.h"
#include "maec/encoder.h"
#include "maec/params.h"
#include "maec/vit.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct MaeConfig {
    ModelConfig model;
    bool norm_pix_loss;
    double mask_ratio;
} MaeConfig;

typedef struct Mae {
    MaeConfig cfg;
    size_t num_patches, keep, patch_dim; /* L, int(L (1 - ratio)), p*p*C */
    ParamTable table;
    float *params, *grads; /* flat, table.padded floats each, 64-byte aligned, zero-filled */
    Encoder enc;
    Decoder dec;
} Mae;

/* Validates cfg, declares every tensor (encoder first, then decoder), allocates params and
 * grads padded to a multiple of pad_multiple (the world size). Parameters start at zero: call
 * vit_init_weights or load a checkpoint. */
int mae_init(Mae *mae, const MaeConfig *cfg, size_t pad_multiple, MaecError *err);
void mae_free(Mae *mae);
/* Another masking ratio for a model already made (e.g. to look at reconstructions); size the
 * activations after it. */
int mae_set_mask_ratio(Mae *mae, double ratio, MaecError *err);

/* Activations for batches of up to B images, from one arena sized once. */
typedef struct MaeActs {
    size_t B;
    Arena arena;
    EncoderActs enc;
    DecoderActs dec;
    float *target;  /* [B, L, ppC] */
    float *dpred;   /* [B, 1+L, ppC] */
    float *dlatent; /* [B, 1+keep, D] */
} MaeActs;

void mae_acts_init(MaeActs *acts, const Mae *mae, size_t B);
void mae_acts_free(MaeActs *acts);

/* images [B, H, W, C] (the normalised network input), ids_shuffle [B, L] (see masking.h).
 * Returns the loss; the prediction is in acts->dec.pred and the encoder output in
 * acts->enc.stack.out. */
double mae_forward(const Mae *mae, MaeActs *acts, const float *images, const int32_t *ids_shuffle, size_t B);
/* As mae_forward, then accumulates grad_scale * d loss / d params into mae->grads, telling ready
 * (may be NULL) as they become final: from the end of the buffer down to its start. */
double mae_forward_backward(const Mae *mae, MaeActs *acts, const float *images, const int32_t *ids_shuffle,
                            size_t B, float grad_scale, const GradReady *ready);

/* pixels [B, L, ppC] (patchify order): the prediction of mae_forward on images, in the images'
 * own units. With norm_pix_loss the prediction is of normalised patches, so each is mapped back
 * with the mean and sqrt(var + eps) of the images' patch it predicts, as the loss normalised it. */
void mae_pixel_prediction(const Mae *mae, const MaeActs *acts, const float *images, size_t B, float *pixels);

#endif
