/* Tissue detection for whole-slide tiling: H&E tissue is coloured, glass and background are
 * grey or white, so HSV saturation separates them; Otsu's threshold on its histogram adapts to
 * each slide's staining. */
#ifndef MAEC_TISSUE_H
#define MAEC_TISSUE_H

#include <stddef.h>
#include <stdint.h>

/* HSV saturation (max - min) / max of an RGB pixel, scaled to 0 .. 255; 0 for black. */
uint8_t tissue_saturation(uint8_t r, uint8_t g, uint8_t b);
/* Otsu's threshold of a 256-bin histogram: the t maximising the between-class variance of
 * {v <= t} and {v > t}; values above t are foreground. 0 for an empty or one-valued histogram. */
int tissue_otsu_threshold(const uint64_t histogram[256]);

#endif
