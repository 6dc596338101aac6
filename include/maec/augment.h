/* From a stored uint8 image [H, W, C] to the network input float [S, S, C]: an optional random
 * resized crop (torchvision RandomResizedCrop's sampling: area fraction in `scale`, log-uniform
 * aspect ratio in `ratio`, 10 tries then a centre crop), antialiased bicubic resampling (PIL's
 * filter, a = -0.5), optional horizontal and vertical flips and 90-degree rotations (for
 * pathology, whose tiles have no up or left), then (x / 255 - mean) / std per channel.
 * Every random choice comes from rng_make(seed, RNG_AUGMENT, epoch, sample). */
#ifndef MAEC_AUGMENT_H
#define MAEC_AUGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUGMENT_MAX_CHANNELS 16

typedef struct AugmentConfig {
    int out_size;   /* S */
    bool random;    /* false: the whole image resampled to S x S, nothing random */
    double scale[2], ratio[2];
    bool hflip, vflip, rot90;
    float mean[AUGMENT_MAX_CHANNELS], std[AUGMENT_MAX_CHANNELS]; /* of pixel / 255 */
} AugmentConfig;

/* A crop box and the flips/rotation applied after resampling. */
typedef struct AugmentDraw {
    int top, left, height, width;
    bool hflip, vflip;
    int rot90; /* quarter turns, 0..3 */
} AugmentDraw;

/* Scratch for one image at a time; create once per thread (no allocation per image). */
typedef struct Augmenter Augmenter;

Augmenter *augmenter_create(int H, int W, int C, const AugmentConfig *cfg);
void augmenter_free(Augmenter *a);

AugmentDraw augment_draw(const AugmentConfig *cfg, int H, int W, uint64_t seed, uint32_t epoch, uint64_t sample);
/* out [S, S, C] from in [H, W, C] with the given draw. */
void augment_apply(Augmenter *a, float *out, const uint8_t *in, const AugmentDraw *draw);

#endif
