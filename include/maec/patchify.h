/* Cutting images into patches, in the two orders facebookresearch/mae uses:
 *  - embedding order (c, row, col): matches the Conv2d patch-embedding weight [D, C, p, p], so
 *    the patch embedding is a linear layer over these vectors;
 *  - target order (row, col, c): patchify() of the reference, the layout of predictions and of
 *    reconstruction targets.
 * Images are float [B, H, W, C] (channels last, as stored in maec datasets). Patch n of an image
 * is at grid row n / G, column n % G, with G = H / p. */
#ifndef MAEC_PATCHIFY_H
#define MAEC_PATCHIFY_H

#include <stddef.h>
#include <stdint.h>

typedef struct PatchGeometry {
    int img_size; /* H = W */
    int patch;    /* p */
    int chans;    /* C */
} PatchGeometry;

/* out[B, n, C*p*p] in (c, row, col) order for the patches ids[b, 0..n) of each image
 * (ids is [B, ids_stride]); ids NULL means all G*G patches in order. */
void patches_embed_order(float *out, const float *images, const int32_t *ids, size_t ids_stride,
                         size_t n, size_t B, PatchGeometry g);

/* out[B, G*G, p*p*C] in (row, col, c) order: the reference's patchify(). */
void patchify(float *out, const float *images, size_t B, PatchGeometry g);
/* images[B, H, W, C] from patches[B, G*G, p*p*C]: the reference's unpatchify(). */
void unpatchify(float *images, const float *patches, size_t B, PatchGeometry g);

#endif
