#include "maec/synthetic.h"

#include "maec/alloc.h"
#include "maec/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { PATTERN_ELLIPSE, PATTERN_RING, PATTERN_GRATING, PATTERN_CHECKER, NUM_PATTERNS };
static const char *const pattern_names[NUM_PATTERNS] = {"ellipse", "ring", "grating", "checker"};

/* Class c's orientation: 67 degrees apart modulo 180, so classes that share a pattern (c, c + 4)
 * differ by 88 degrees and the first dozen classes never come within 20 degrees of each other. */
static int class_angle_degrees(int c) { return (c * 67) % 180; }

int32_t synthetic_label(const SyntheticConfig *cfg, size_t index) { return (int32_t)(index % (size_t)cfg->classes); }

void synthetic_class_name(char *name, size_t size, int c)
{
    snprintf(name, size, "%s-%ddeg", pattern_names[c % NUM_PATTERNS], class_angle_degrees(c));
}

/* What one sample looks like, drawn from its own generator. */
typedef struct Shape {
    int pattern;
    float cx, cy, radius, cos_a, sin_a, cycles;
    float fg[16], bg[16];
} Shape;

static float smooth_edge(float inside, float radius)
{
    /* inside > 0 within the shape, in units of the radius; a soft edge of about 1.5 pixels. */
    float m = inside * radius / 1.5f + 0.5f;
    return m < 0.0f ? 0.0f : m > 1.0f ? 1.0f : m;
}

/* Coverage in [0, 1] of the pattern at pixel (x, y). */
static float pattern_at(const Shape *s, float x, float y)
{
    float dx = (x - s->cx) / s->radius, dy = (y - s->cy) / s->radius;
    float u = dx * s->cos_a + dy * s->sin_a, v = -dx * s->sin_a + dy * s->cos_a;
    const float two_pi = 6.2831853f;
    switch (s->pattern) {
    case PATTERN_ELLIPSE:
        return smooth_edge(1.0f - sqrtf(u * u + 4.0f * v * v), s->radius);
    case PATTERN_RING:
        return smooth_edge(0.22f - fabsf(sqrtf(u * u + 2.8f * v * v) - 0.72f), s->radius);
    case PATTERN_GRATING:
        return smooth_edge(1.0f - sqrtf(u * u + v * v), s->radius) * (0.5f + 0.5f * sinf(two_pi * s->cycles * u));
    default:
        return smooth_edge(1.0f - sqrtf(u * u + v * v), s->radius) *
               (sinf(two_pi * s->cycles * u) * sinf(two_pi * s->cycles * v) > 0.0f ? 1.0f : 0.0f);
    }
}

static Shape draw_shape(const SyntheticConfig *cfg, int c, Rng *rng)
{
    Shape s;
    float size = (float)(cfg->height < cfg->width ? cfg->height : cfg->width);
    s.pattern = c % NUM_PATTERNS;
    s.cycles = (float)(2 + (c / NUM_PATTERNS) % 3);
    s.cx = 0.5f * (float)cfg->width + (rng_uniform(rng) - 0.5f) * 0.3f * size;
    s.cy = 0.5f * (float)cfg->height + (rng_uniform(rng) - 0.5f) * 0.3f * size;
    s.radius = (0.30f + 0.12f * rng_uniform(rng)) * size;
    float angle = ((float)class_angle_degrees(c) + (rng_uniform(rng) - 0.5f) * 20.0f) * 0.0174533f;
    s.cos_a = cosf(angle);
    s.sin_a = sinf(angle);
    float bright = 0.8f + 0.2f * rng_uniform(rng), dark = 0.05f + 0.25f * rng_uniform(rng);
    float hue = (float)c * 0.618034f;
    hue -= floorf(hue);
    for (int k = 0; k < cfg->channels; k++) {
        float phase = 6.2831853f * (hue + (float)k / (float)cfg->channels);
        s.fg[k] = cfg->channels == 1 ? 0.9f * bright : bright * (0.55f + 0.45f * cosf(phase));
        s.bg[k] = cfg->channels == 1 ? dark : dark * (0.7f - 0.3f * cosf(phase));
    }
    return s;
}

int32_t synthetic_image(uint8_t *out, const SyntheticConfig *cfg, size_t index)
{
    int32_t label = synthetic_label(cfg, index);
    Rng rng = rng_make(cfg->seed, RNG_SYNTHETIC, 0, index);
    Shape s = draw_shape(cfg, label, &rng);
    const float noise = 24.0f / 255.0f / 256.0f; /* +-12 grey levels from one random byte */
    uint32_t bits = 0;
    int bytes_left = 0;
    for (int y = 0; y < cfg->height; y++)
        for (int x = 0; x < cfg->width; x++) {
            float m = pattern_at(&s, (float)x + 0.5f, (float)y + 0.5f);
            for (int k = 0; k < cfg->channels; k++) {
                if (bytes_left == 0) {
                    bits = rng_u32(&rng);
                    bytes_left = 4;
                }
                float n = ((float)(bits & 0xff) - 127.5f) * noise;
                bits >>= 8;
                bytes_left--;
                float v = s.bg[k] + (s.fg[k] - s.bg[k]) * m + n;
                v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                *out++ = (uint8_t)lrintf(v * 255.0f);
            }
        }
    return label;
}

static ItemStatus read_synthetic(void *ctx, const PrepItem *item, uint8_t *out, int thread, MaecError *err)
{
    (void)thread, (void)err;
    synthetic_image(out, ctx, (size_t)item->record);
    return ITEM_OK;
}

void synthetic_source(PrepSource *src, const SyntheticConfig *cfg)
{
    source_init(src, "images");
    SyntheticConfig *copy = xmalloc(sizeof *copy, "synthetic config");
    *copy = *cfg;
    src->ctx = copy;
    src->free_ctx = free;
    src->read = read_synthetic;
    src->height = cfg->height;
    src->width = cfg->width;
    src->channels = cfg->channels;
    char **names = xmalloc((size_t)cfg->classes * sizeof *names, "class names");
    for (int c = 0; c < cfg->classes; c++) {
        char name[64];
        synthetic_class_name(name, sizeof name, c);
        names[c] = xstrdup(name);
    }
    source_set_classes(src, names, (size_t)cfg->classes);
    int32_t source = source_add_source(src, "synthetic");
    for (size_t i = 0; i < cfg->count; i++)
        source_add_item(src, source, synthetic_label(cfg, i), (int64_t)i, -1, -1);
    source_set_description(src, "synthetic: %zu images %dx%dx%d, %d classes, seed %llu", cfg->count, cfg->height,
                           cfg->width, cfg->channels, cfg->classes, (unsigned long long)cfg->seed);
}
