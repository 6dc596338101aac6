/* Writing 8-bit gray or RGB pictures as PNG files (libpng), for the pictures maec draws. */
#ifndef MAEC_PNG_WRITER_H
#define MAEC_PNG_WRITER_H

#include "maec/error.h"

#include <stdint.h>

/* pixels [height, width, channels], channels 1 (gray) or 3 (RGB), rows top to bottom. */
int png_write(const char *path, const uint8_t *pixels, int width, int height, int channels, MaecError *err);

#endif
