/* The ViT masked autoencoder's shape: sizes, presets and their validation. */
#ifndef MAEC_VIT_H
#define MAEC_VIT_H

#include "maec/error.h"
#include "maec/params.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ModelConfig {
    int img_size, patch_size, in_chans;
    int embed_dim, depth, num_heads;
    int decoder_embed_dim, decoder_depth, decoder_num_heads;
    double mlp_ratio;
} ModelConfig;

/* Fills cfg with a named preset; returns -1 with the list of names if name is unknown.
 * vit-tiny|small|base|large: encoders of the ViT paper (192x12/3, 384x12/6, 768x12/12,
 * 1024x24/16) at 224 px, patch 16, RGB, with the MAE paper's decoder (512-d x 8 blocks,
 * 16 heads). The -light variants use a small decoder (128x2/4 for tiny, 256x2/8 otherwise). */
int vit_preset(const char *name, ModelConfig *cfg, MaecError *err);
/* The preset names, NULL-terminated. */
extern const char *const vit_preset_names[];

/* Checks divisibility and ranges (dims divisible by heads and by 4 for the sin-cos tables,
 * image divisible by patch, ...). The message names the offending field. */
int vit_config_validate(const ModelConfig *cfg, MaecError *err);

/* Patches per side and per image. */
int vit_grid_size(const ModelConfig *cfg);
int vit_num_patches(const ModelConfig *cfg);
/* Values per patch: patch_size^2 * in_chans. */
int vit_patch_dim(const ModelConfig *cfg);
/* Hidden width of the MLPs: (int)(dim * mlp_ratio), as timm. */
int vit_mlp_hidden(const ModelConfig *cfg, int dim);

/* Initialises every tensor of a ViT/MAE table as facebookresearch/mae initialize_weights():
 * 2-D+ weights xavier-uniform with fan_out = shape[0] and fan_in = the rest (the fused qkv as one
 * matrix, the patch-embedding kernel on its [D, C*p*p] view), biases 0 except the patch
 * embedding's, which keeps PyTorch's Conv2d default U(+-1/sqrt(C*p*p)), *_token normal(0, 0.02),
 * LayerNorm weight 1 and bias 0. Random draws: rng_make(seed, RNG_INIT, 0, tensor index). */
void vit_init_weights(const ParamTable *table, float *params, uint64_t seed);

#endif
