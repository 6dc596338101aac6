/* maec prep wsi: tiles cut from whole-slide images (anything OpenSlide opens: Aperio SVS,
 * generic tiled TIFF, ...) as a PrepSource.
 *
 * Resolution: with a target mpp the level read is the coarsest whose mpp is at most the target
 * (within 10%), and regions are scaled from that level to the target; without one, level 0 as is.
 * Each slide is cut into a grid of tile x tile samples, stride apart (both at the target
 * resolution), starting at the top left; a tile is kept when its tissue fraction, measured on
 * the slide's lowest-resolution level with an Otsu threshold on HSV saturation, is at least
 * min_tissue. /meta records the slide and each tile's level-0 x, y.
 *
 * Labels: a CSV of "slide,label" rows (slide = file name with or without its extension; a
 * header row "slide,label" is allowed). Classes are the distinct labels in sorted order. Without
 * it tiles are unlabeled. A slide OpenSlide cannot open is rejected (skipped and recorded). */
#ifndef MAEC_WSI_H
#define MAEC_WSI_H

#include "maec/error.h"
#include "maec/source.h"

typedef struct WsiOptions {
    char **slides;
    size_t num_slides;
    int tile;          /* side of a sample in pixels */
    int stride;        /* pixels between tile origins at the target resolution; 0 = tile */
    double mpp;        /* target microns per pixel; 0 = level 0 as is */
    double min_tissue; /* 0 .. 1 */
    const char *labels_csv;
} WsiOptions;

int wsi_source(PrepSource *src, const WsiOptions *opt, MaecError *err);

#endif
