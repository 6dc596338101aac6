#include "maec/augment.h"

#include "maec/alloc.h"
#include "maec/error.h"
#include "maec/rng.h"

#include <math.h>
#include <stdlib.h>

struct Augmenter {
    AugmentConfig cfg;
    int H, W, C;
    int max_taps;
    float *rows;     /* [H, S, C]: after the horizontal pass */
    float *square;   /* [S, S, C]: after both passes, before flips */
    float *weights;  /* [S, max_taps] */
    int *first;      /* [S]: first input index of each output position */
    int *taps;       /* [S] */
};

/* Taps of the widest filter: support 2 * (input / output) on each side, plus rounding. */
static int max_taps_for(int in, int out)
{
    double scale = (double)in / out;
    return (int)ceil(2.0 * 2.0 * (scale > 1.0 ? scale : 1.0)) + 2;
}

Augmenter *augmenter_create(int H, int W, int C, const AugmentConfig *cfg)
{
    if (C < 1 || C > AUGMENT_MAX_CHANNELS)
        fatal("images with %d channels: maec handles 1 to %d", C, AUGMENT_MAX_CHANNELS);
    Augmenter *a = xcalloc(1, sizeof *a, "augmenter");
    const int S = cfg->out_size;
    a->cfg = *cfg;
    a->H = H, a->W = W, a->C = C;
    a->max_taps = max_taps_for(H > W ? H : W, S);
    a->rows = xmalloc((size_t)H * S * C * sizeof(float), "augmentation rows");
    a->square = xmalloc((size_t)S * S * C * sizeof(float), "augmentation image");
    a->weights = xmalloc((size_t)S * a->max_taps * sizeof(float), "resampling weights");
    a->first = xmalloc((size_t)S * sizeof(int), "resampling offsets");
    a->taps = xmalloc((size_t)S * sizeof(int), "resampling taps");
    return a;
}

void augmenter_free(Augmenter *a)
{
    if (!a)
        return;
    free(a->rows), free(a->square), free(a->weights), free(a->first), free(a->taps);
    free(a);
}

static int round_half_even(double x) { return (int)nearbyint(x); } /* Python's round() */

static double uniform(Rng *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform_double(r); }

/* torchvision RandomResizedCrop.get_params */
static void draw_crop(AugmentDraw *d, const AugmentConfig *cfg, int H, int W, Rng *r)
{
    const double area = (double)H * W, lr0 = log(cfg->ratio[0]), lr1 = log(cfg->ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * uniform(r, cfg->scale[0], cfg->scale[1]);
        double aspect = exp(uniform(r, lr0, lr1));
        int w = round_half_even(sqrt(target * aspect)), h = round_half_even(sqrt(target / aspect));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            d->top = (int)rng_below(r, (uint64_t)(H - h + 1));
            d->left = (int)rng_below(r, (uint64_t)(W - w + 1));
            d->height = h, d->width = w;
            return;
        }
    }
    double in_ratio = (double)W / H;
    int w = W, h = H;
    if (in_ratio < cfg->ratio[0])
        h = round_half_even(w / cfg->ratio[0]);
    else if (in_ratio > cfg->ratio[1])
        w = round_half_even(h * cfg->ratio[1]);
    d->top = (H - h) / 2, d->left = (W - w) / 2, d->height = h, d->width = w;
}

AugmentDraw augment_draw(const AugmentConfig *cfg, int H, int W, uint64_t seed, uint32_t epoch, uint64_t sample)
{
    AugmentDraw d = {0, 0, H, W, false, false, 0};
    if (!cfg->random)
        return d;
    Rng r = rng_make(seed, RNG_AUGMENT, epoch, sample);
    draw_crop(&d, cfg, H, W, &r);
    d.hflip = cfg->hflip && rng_uniform(&r) < 0.5f;
    d.vflip = cfg->vflip && rng_uniform(&r) < 0.5f;
    d.rot90 = cfg->rot90 ? (int)rng_below(&r, 4) : 0;
    return d;
}

static double bicubic(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0)
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* PIL's precompute_coeffs for one axis: in_size input pixels (inside the crop) to out_size. */
static void resample_weights(Augmenter *a, int in_size, int out_size)
{
    const double scale = (double)in_size / out_size, filterscale = scale > 1.0 ? scale : 1.0;
    const double support = 2.0 * filterscale;
    for (int x = 0; x < out_size; x++) {
        double center = (x + 0.5) * scale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        lo = lo < 0 ? 0 : lo;
        hi = hi > in_size ? in_size : hi;
        if (hi - lo > a->max_taps)
            fatal("internal: resampling needs %d taps, sized for %d", hi - lo, a->max_taps);
        float *w = a->weights + (size_t)x * a->max_taps;
        double total = 0.0;
        for (int k = 0; k < hi - lo; k++)
            total += w[k] = (float)bicubic((lo + k - center + 0.5) / filterscale);
        for (int k = 0; k < hi - lo; k++)
            w[k] = (float)(w[k] / total);
        a->first[x] = lo;
        a->taps[x] = hi - lo;
    }
}

static void horizontal_pass(Augmenter *a, const uint8_t *in, const AugmentDraw *d)
{
    const int S = a->cfg.out_size, C = a->C;
    resample_weights(a, d->width, S);
    for (int y = 0; y < d->height; y++) {
        const uint8_t *row = in + ((size_t)(d->top + y) * a->W + d->left) * C;
        float *dst = a->rows + (size_t)y * S * C;
        for (int x = 0; x < S; x++) {
            const float *w = a->weights + (size_t)x * a->max_taps;
            const uint8_t *src = row + (size_t)a->first[x] * C;
            for (int c = 0; c < C; c++) {
                float v = 0.0f;
                for (int k = 0; k < a->taps[x]; k++)
                    v += w[k] * src[k * C + c];
                dst[x * C + c] = v;
            }
        }
    }
}

static void vertical_pass(Augmenter *a, const AugmentDraw *d)
{
    const int S = a->cfg.out_size, C = a->C;
    resample_weights(a, d->height, S);
    for (int y = 0; y < S; y++) {
        const float *w = a->weights + (size_t)y * a->max_taps;
        float *dst = a->square + (size_t)y * S * C;
        for (int i = 0; i < S * C; i++)
            dst[i] = 0.0f;
        for (int k = 0; k < a->taps[y]; k++) {
            const float *src = a->rows + (size_t)(a->first[y] + k) * S * C;
            for (int i = 0; i < S * C; i++)
                dst[i] += w[k] * src[i];
        }
    }
}

/* Source position in the resampled square of output pixel (y, x). */
static void dihedral_source(const AugmentDraw *d, int S, int y, int x, int *sy, int *sx)
{
    for (int r = 0; r < d->rot90; r++) { /* a quarter turn: (y, x) <- (x, S-1-y) */
        int t = y;
        y = x;
        x = S - 1 - t;
    }
    *sy = d->vflip ? S - 1 - y : y;
    *sx = d->hflip ? S - 1 - x : x;
}

void augment_apply(Augmenter *a, float *out, const uint8_t *in, const AugmentDraw *d)
{
    const int S = a->cfg.out_size, C = a->C;
    horizontal_pass(a, in, d);
    vertical_pass(a, d);
    float inv_std[AUGMENT_MAX_CHANNELS], shift[AUGMENT_MAX_CHANNELS];
    for (int c = 0; c < C; c++) {
        inv_std[c] = 1.0f / (255.0f * a->cfg.std[c]);
        shift[c] = a->cfg.mean[c] / a->cfg.std[c];
    }
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int sy, sx;
            dihedral_source(d, S, y, x, &sy, &sx);
            const float *src = a->square + ((size_t)sy * S + sx) * C;
            float *dst = out + ((size_t)y * S + x) * C;
            for (int c = 0; c < C; c++) {
                float v = src[c] < 0.0f ? 0.0f : src[c] > 255.0f ? 255.0f : src[c]; /* PIL keeps uint8 */
                dst[c] = v * inv_std[c] - shift[c];
            }
        }
}
