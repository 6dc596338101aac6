/* The ViT encoder of MAE: patch embedding (a linear layer over patches in (c, row, col) order,
 * the Conv2d of the reference), fixed 2-D sin-cos positions added before masking, a CLS token
 * (plus its zero position) in front, then the transformer blocks and the final norm
 * (facebookresearch/mae forward_encoder). It encodes only the patches it is given.
 *
 * Tensor names carry a prefix: "" gives MAE's (cls_token, blocks.0..., norm.weight), "teacher."
 * a second encoder's. An encoder bound without gradients runs forward only. */
#ifndef MAEC_ENCODER_H
#define MAEC_ENCODER_H

#include "maec/alloc.h"
#include "maec/params.h"
#include "maec/patchify.h"
#include "maec/transformer.h"
#include "maec/vit.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct Encoder {
    ModelConfig cfg;
    char prefix[PARAM_NAME_MAX];
    PatchGeometry geometry;
    size_t dim, num_patches, patch_dim;
    float *patch_w, *patch_b, *cls;    /* [D, C*p*p], [D], [D] */
    float *dpatch_w, *dpatch_b, *dcls; /* NULL: forward only */
    float *pos;                        /* [1 + L, D], row 0 (CLS) zeros; fixed, owned */
    Transformer blocks;
} Encoder;

typedef struct EncoderActs {
    size_t B, n;       /* capacity: images and encoded patches per image */
    float *patches;    /* [B, n, C*p*p] */
    float *embedded;   /* [B*n, D]: patch embeddings; their gradient in the backward pass */
    float *tokens;     /* [B, 1+n, D]: input of the blocks */
    float *dtokens;    /* [B, 1+n, D]; NULL without backward */
    TransformerActs stack;
} EncoderActs;

/* Declares PREFIXcls_token, PREFIXpatch_embed.proj.{weight,bias}, PREFIXblocks.*, and PREFIXnorm.*
 * (with final_norm). */
void encoder_declare(ParamTable *table, const ModelConfig *cfg, const char *prefix, bool final_norm);
/* grads NULL: forward only. */
void encoder_bind(Encoder *enc, const ModelConfig *cfg, const char *prefix, const ParamTable *table,
                  float *params, float *grads, bool final_norm);
void encoder_free(Encoder *enc);

size_t encoder_acts_bytes(const Encoder *enc, size_t B, size_t n, bool backward);
void encoder_acts_init(EncoderActs *acts, const Encoder *enc, size_t B, size_t n, bool backward, Arena *arena);
void encoder_acts_free(EncoderActs *acts);

/* images [B, H, W, C]; ids [B, ids_stride] whose first n entries per row are the patches to
 * encode, in that order (NULL: all L patches in order, n = L). Result: acts->stack.out
 * [B, 1+n, D], token 0 the CLS token. */
void encoder_forward(const Encoder *enc, EncoderActs *acts, const float *images, const int32_t *ids,
                     size_t ids_stride, size_t B, size_t n);
/* dout [B, 1+n, D]: gradient at acts->stack.out (NULL: none), taps: gradients at block outputs
 * (transformer.h). Accumulates the parameter gradients, telling ready (may be NULL) as they become
 * final. */
void encoder_backward(const Encoder *enc, EncoderActs *acts, const float *dout, const BlockGrad *taps,
                      size_t n_taps, size_t B, size_t n, const GradReady *ready);

#endif
