/* maec prep tiles: folders of image files (TIFF, PNG, JPEG) as a PrepSource.
 *
 * ROOT/CLASS/FILE: each sub-folder name found in the roots is a class (in name order; folders of
 * one name in several roots are one class) and its images are labelled with it. Image files
 * directly in the roots, with no sub-folders, or --unlabeled make an unlabeled dataset. Files
 * are taken in sorted order (class, root, then name); hidden files and files without an image extension are left out with a warning.
 *
 * The sample shape is that of the first readable image after --resize (shorter side to N,
 * keeping the aspect ratio) and --center-crop (the central N x N); every other image must end
 * up the same, else the run stops naming both files. An unreadable image is skipped. */
#ifndef MAEC_TILES_H
#define MAEC_TILES_H

#include "maec/error.h"
#include "maec/source.h"

#include <stdbool.h>

typedef struct TilesOptions {
    char **roots;
    size_t num_roots;
    bool unlabeled;   /* every image, in sub-folders or not, gets label -1 */
    int resize;       /* 0 = keep the size */
    int center_crop;  /* 0 = no crop */
    int channels;     /* 1 or 3 converts every image; 0 = those of the first image, all must agree */
} TilesOptions;

int tiles_source(PrepSource *src, const TilesOptions *opt, MaecError *err);

#endif
