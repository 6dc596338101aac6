/* maec prep tiles: a folder of image files (TIFF, PNG, JPEG) as a PrepSource.
 *
 * ROOT/CLASS/FILE: each sub-folder of ROOT is a class (in name order) and its images are
 * labelled with it. Image files directly in ROOT, with no sub-folders, make an unlabeled
 * dataset. Files are taken in sorted order (class, then name); hidden files and files without an image extension are left out with a warning.
 *
 * The sample shape is that of the first readable image after --resize (shorter side to N,
 * keeping the aspect ratio) and --center-crop (the central N x N); every other image must end
 * up the same, else the run stops naming both files. An unreadable image is skipped. */
#ifndef MAEC_TILES_H
#define MAEC_TILES_H

#include "maec/error.h"
#include "maec/source.h"

typedef struct TilesOptions {
    const char *root;
    int resize;       /* 0 = keep the size */
    int center_crop;  /* 0 = no crop */
    int channels;     /* 1 or 3 converts every image; 0 = those of the first image, all must agree */
} TilesOptions;

int tiles_source(PrepSource *src, const TilesOptions *opt, MaecError *err);

#endif
