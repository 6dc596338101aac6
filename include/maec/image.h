/* Decoded 8-bit images for maec prep: reading TIFF (strips or tiles), PNG and JPEG files, and the
 * resizing, cropping and channel conversions that make every sample of a dataset the same shape.
 *
 * Pixels are row-major with channels last, 1 channel (gray) or 3 (RGB); an alpha channel is
 * dropped. The format is recognised from the file's first bytes, not from its name. Every
 * function is safe to call from several threads at once. */
#ifndef MAEC_IMAGE_H
#define MAEC_IMAGE_H

#include "maec/error.h"

#include <stdint.h>

typedef struct Image {
    uint8_t *pixels; /* height * width * channels, malloc'd */
    int height, width, channels;
} Image;

/* Decodes path into img. A missing, empty, truncated or corrupt file, or one that is not 8-bit
 * gray or RGB, fails with the reason; the caller adds the path. */
int image_read(Image *img, const char *path, MaecError *err);
void image_free(Image *img);

/* out = in scaled to height x width with a triangle (bilinear) filter widened when shrinking, so
 * downscaling averages every input pixel instead of skipping some. */
void image_resize(Image *out, const Image *in, int height, int width);
/* out = the central height x width region of in (height <= in->height, width <= in->width). */
void image_center_crop(Image *out, const Image *in, int height, int width);
/* out = in with 1 or 3 channels: gray is repeated into R, G and B; RGB becomes ITU-R BT.601 luma. */
void image_convert_channels(Image *out, const Image *in, int channels);

#endif
