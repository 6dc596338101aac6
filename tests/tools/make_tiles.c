/* make_tiles DIR COUNT SIZE CLASSES FORMAT CHANNELS: writes COUNT synthetic SIZE x SIZE tiles
 * into DIR/class-K/NNNNNN.EXT (class folders only when CLASSES > 0), for the CLI tests and the
 * prep benchmark. FORMAT: tif (strips, PackBits, like NCT-CRC-HE), tiled, png, jpg, or mixed
 * (cycling through all four). */
#include "../image_files.h"

#include "maec/synthetic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void write_tile(const char *path_stem, const char *format, size_t i, const uint8_t *pixels, int size,
                       int channels)
{
    static const char *const cycle[] = {"tif", "tiled", "png", "jpg"};
    if (!strcmp(format, "mixed"))
        format = cycle[i % 4];
    char path[4096];
    bool tiff = !strcmp(format, "tif") || !strcmp(format, "tiled");
    snprintf(path, sizeof path, "%s.%s", path_stem, tiff ? "tif" : format);
    if (!strcmp(format, "tif"))
        write_tiff(path, pixels, size, size, channels, 0, COMPRESSION_PACKBITS);
    else if (!strcmp(format, "tiled"))
        write_tiff(path, pixels, size, size, channels, 16, COMPRESSION_LZW);
    else if (!strcmp(format, "png"))
        write_png(path, pixels, size, size, channels);
    else
        write_jpeg(path, pixels, size, size);
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: make_tiles DIR COUNT SIZE CLASSES FORMAT CHANNELS\n");
        return 2;
    }
    const char *dir = argv[1], *format = argv[5];
    SyntheticConfig cfg = {.count = strtoull(argv[2], NULL, 10), .height = atoi(argv[3]), .width = atoi(argv[3]),
                           .channels = atoi(argv[6]), .classes = atoi(argv[4]) > 0 ? atoi(argv[4]) : 1, .seed = 1};
    if (!strcmp(format, "jpg") && cfg.channels != 3) {
        fprintf(stderr, "make_tiles: JPEG tiles are RGB only\n");
        return 2;
    }
    mkdir(dir, 0755);
    uint8_t *pixels = malloc((size_t)cfg.height * (size_t)cfg.width * (size_t)cfg.channels);
    for (size_t i = 0; i < cfg.count; i++) {
        int32_t label = synthetic_image(pixels, &cfg, i);
        char stem[4096];
        if (atoi(argv[4]) > 0) {
            snprintf(stem, sizeof stem, "%s/class-%d", dir, label);
            if (mkdir(stem, 0755) != 0 && errno != EEXIST) {
                perror(stem);
                return 1;
            }
            snprintf(stem, sizeof stem, "%s/class-%d/%06zu", dir, label, i);
        } else {
            snprintf(stem, sizeof stem, "%s/%06zu", dir, i);
        }
        write_tile(stem, format, i, pixels, cfg.height, cfg.channels);
    }
    free(pixels);
    return 0;
}
