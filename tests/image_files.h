/* Writers of TIFF (strips or tiles), PNG and JPEG test images, for the tests and tools that
 * need image files to feed maec prep. */
#ifndef MAEC_TEST_IMAGE_FILES_H
#define MAEC_TEST_IMAGE_FILES_H

#include "maec/png_writer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

#include <jpeglib.h> /* after stdio.h: it uses FILE */

static inline void write_png(const char *path, const uint8_t *pixels, int h, int w, int channels)
{
    MaecError err;
    if (png_write(path, pixels, w, h, channels, &err))
        fprintf(stderr, "%s\n", err.msg);
}

static inline void write_jpeg(const char *path, const uint8_t *pixels, int h, int w)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    FILE *f = fopen(path, "wb");
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 98, TRUE);
    jpeg_start_compress(&c, TRUE);
    for (int y = 0; y < h; y++) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)y * (size_t)w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

/* A tiled TIFF when tile > 0, else strips; compression: COMPRESSION_LZW, COMPRESSION_PACKBITS, ... */
static inline void write_tiff(const char *path, const uint8_t *pixels, int h, int w, int channels, int tile,
                              uint16_t compression)
{
    TIFF *t = TIFFOpen(path, "w");
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, channels);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, channels == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
    size_t row = (size_t)w * (size_t)channels;
    if (tile > 0) {
        TIFFSetField(t, TIFFTAG_TILEWIDTH, tile);
        TIFFSetField(t, TIFFTAG_TILELENGTH, tile);
        uint8_t *buf = calloc((size_t)tile * (size_t)tile * (size_t)channels, 1);
        for (int ty = 0; ty < h; ty += tile)
            for (int tx = 0; tx < w; tx += tile) {
                for (int y = 0; y < tile && ty + y < h; y++)
                    for (int x = 0; x < tile && tx + x < w; x++)
                        memcpy(buf + ((size_t)y * tile + x) * channels, pixels + (ty + y) * row + (size_t)(tx + x) * channels,
                               (size_t)channels);
                TIFFWriteTile(t, buf, (uint32_t)tx, (uint32_t)ty, 0, 0);
            }
        free(buf);
    } else {
        for (int y = 0; y < h; y++)
            TIFFWriteScanline(t, (void *)(pixels + (size_t)y * row), (uint32_t)y, 0);
    }
    TIFFClose(t);
}

#endif
