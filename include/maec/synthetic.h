/* Synthetic labelled images for tests, smoke runs and benchmarks.
 *
 * Each class is a structure, not just a colour: a pattern (ellipse, elliptical ring, grating,
 * checkerboard) at a class-specific orientation and spatial frequency, in a class-specific hue.
 * Each sample varies position, size, angle, brightness and background and adds pixel noise, all
 * drawn from rng_make(seed, RNG_SYNTHETIC, 0, index): sample i is the same whoever makes it.
 * Labels are balanced: sample i has class i % classes. With one channel the colour cue is gone
 * and only structure separates the classes. */
#ifndef MAEC_SYNTHETIC_H
#define MAEC_SYNTHETIC_H

#include "maec/source.h"

#include <stddef.h>
#include <stdint.h>

typedef struct SyntheticConfig {
    size_t count;
    int height, width, channels, classes;
    uint64_t seed;
} SyntheticConfig;

/* out[height * width * channels] = sample index; returns its label. */
int32_t synthetic_image(uint8_t *out, const SyntheticConfig *cfg, size_t index);
int32_t synthetic_label(const SyntheticConfig *cfg, size_t index);
/* A readable name for class c, e.g. "ring-108deg". */
void synthetic_class_name(char *name, size_t size, int c);
/* maec prep synthetic: cfg->count items, decoded by synthetic_image. */
void synthetic_source(PrepSource *src, const SyntheticConfig *cfg);

#endif
