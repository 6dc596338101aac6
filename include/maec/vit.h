/* The ViT masked autoencoder's shape: sizes, presets and their validation. */
#ifndef MAEC_VIT_H
#define MAEC_VIT_H

#include "maec/error.h"

#include <stdbool.h>
#include <stddef.h>

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

#endif
