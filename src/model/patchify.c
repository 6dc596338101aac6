#include "maec/patchify.h"

#include <string.h>

void patches_embed_order(float *out, const float *images, const int32_t *ids, size_t ids_stride,
                         size_t n, size_t B, PatchGeometry g)
{
    const size_t p = (size_t)g.patch, C = (size_t)g.chans, W = (size_t)g.img_size;
    const size_t G = W / p, dim = C * p * p;
    for (size_t b = 0; b < B; b++) {
        const float *img = images + b * W * W * C;
        for (size_t t = 0; t < n; t++) {
            size_t patch = ids ? (size_t)ids[b * ids_stride + t] : t;
            size_t y0 = patch / G * p, x0 = patch % G * p;
            float *dst = out + (b * n + t) * dim;
            for (size_t c = 0; c < C; c++)
                for (size_t i = 0; i < p; i++)
                    for (size_t j = 0; j < p; j++)
                        dst[(c * p + i) * p + j] = img[((y0 + i) * W + x0 + j) * C + c];
        }
    }
}

/* A patch row in (row, col, c) order is p*C contiguous floats of one image row: both directions
 * are row copies. Offset of row i of patch n of image b inside the image batch: */
static size_t image_offset(size_t b, size_t n, size_t i, PatchGeometry g)
{
    const size_t p = (size_t)g.patch, C = (size_t)g.chans, W = (size_t)g.img_size, G = W / p;
    return b * W * W * C + ((n / G * p + i) * W + n % G * p) * C;
}

void patchify(float *out, const float *images, size_t B, PatchGeometry g)
{
    const size_t p = (size_t)g.patch, row = p * (size_t)g.chans, G = (size_t)(g.img_size / g.patch);
    for (size_t b = 0; b < B; b++)
        for (size_t n = 0; n < G * G; n++)
            for (size_t i = 0; i < p; i++)
                memcpy(out + ((b * G * G + n) * p + i) * row, images + image_offset(b, n, i, g),
                       row * sizeof(float));
}

void unpatchify(float *images, const float *patches, size_t B, PatchGeometry g)
{
    const size_t p = (size_t)g.patch, row = p * (size_t)g.chans, G = (size_t)(g.img_size / g.patch);
    for (size_t b = 0; b < B; b++)
        for (size_t n = 0; n < G * G; n++)
            for (size_t i = 0; i < p; i++)
                memcpy(images + image_offset(b, n, i, g), patches + ((b * G * G + n) * p + i) * row,
                       row * sizeof(float));
}
