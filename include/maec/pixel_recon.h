/* MAE's reconstruction branch, the block most of the family is built on (He et al. 2022;
 * facebookresearch/mae models_mae.py): the ViT encoder over the visible patches, the MAE decoder
 * over the visible and masked ones, and the per-patch mean squared error against the pixels of
 * the masked patches, each optionally normalised by its own mean and unbiased variance
 * (norm_pix_loss). The loss is the mean over masked patches, pooled over the batch; with mask
 * weights each patch's term is weighted and the mean is still over the masked count.
 *
 * A head on the encoder output adds its gradient into acts->dlatent between the forward and
 * the backward pass; its tensors come after the decoder's in the table, so that the backward
 * pass (the head's first) finishes gradients from the end of the buffer down. */
#ifndef MAEC_PIXEL_RECON_H
#define MAEC_PIXEL_RECON_H

#include "maec/alloc.h"
#include "maec/checkpoint.h"
#include "maec/decoder.h"
#include "maec/encoder.h"
#include "maec/masking.h"
#include "maec/params.h"
#include "maec/vit.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct PixelReconActs {
    size_t B;
    EncoderActs enc;
    DecoderActs dec;
    float *target;  /* [B, L, ppC] */
    float *dpred;   /* [B, T, ppC] */
    float *dlatent; /* [B, 1+visible, D]: the gradient at the encoder output */
} PixelReconActs;

typedef struct PixelRecon {
    ModelConfig model;
    bool norm_pix_loss;
    size_t num_patches, patch_dim; /* L, p*p*C */
    Encoder enc;
    Decoder dec;
    Arena arena; /* from pixel_recon_reserve */
    PixelReconActs acts;
    const MaskSet *mask; /* of the last forward pass, and its batch size */
    size_t B;
} PixelRecon;

/* Declares the encoder (MAE's names, with its final norm), then the decoder. */
void pixel_recon_declare(ParamTable *table, const ModelConfig *model);
void pixel_recon_bind(PixelRecon *r, const ModelConfig *model, bool norm_pix_loss, const ParamTable *table,
                      float *params, float *grads);
void pixel_recon_free(PixelRecon *r);
/* The position tables, stored under /model as the reference's frozen pos_embed and
 * decoder_pos_embed. */
void pixel_recon_fixed(const PixelRecon *r, FixedTensor fixed[2]);

/* Activations for batches of up to B images masked as spec says (again after a change); returns
 * their bytes. */
size_t pixel_recon_reserve(PixelRecon *r, size_t B, const MaskSpec *spec);

/* images [B, H, W, C] (the normalised network input); mask must stay alive until the backward
 * pass. Returns the loss; the encoder output is in r->acts.enc.stack.out [B, 1+visible, D], and
 * r->acts.dlatent is zeroed. */
double pixel_recon_forward(PixelRecon *r, const float *images, const MaskSet *mask, size_t B);
/* After pixel_recon_forward (and any head's additions to r->acts.dlatent): accumulates grad_scale *
 * d loss / d params into the gradients, telling ready (may be NULL) as they become final. */
void pixel_recon_backward(PixelRecon *r, float grad_scale, const GradReady *ready);

/* Named results of the last forward pass, for parity checks: "latent" [B, 1+visible, D] and
 * "pred" [B, L, ppC] (patch order, no CLS row; thrown patches 0). Returns the floats written to dst
 * (dst NULL: only counts), 0 for another name. */
size_t pixel_recon_output(const PixelRecon *r, const char *name, float *dst);

/* pixels [B, L, ppC] (patchify order): the prediction of the last forward pass on images, in the
 * images' own units. With norm_pix_loss each patch is mapped back with the mean and
 * sqrt(var + eps) of the images' patch it predicts; thrown patches keep the input's pixels. */
void pixel_recon_pixels(const PixelRecon *r, const float *images, float *pixels);

#endif
