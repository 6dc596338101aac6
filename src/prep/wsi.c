#include "maec/wsi.h"

#include "maec/alloc.h"
#include "maec/image.h"
#include "maec/log.h"
#include "maec/tissue.h"

#include <math.h>
#include <openslide.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A level whose mpp is within this factor of the target is read as is (no scaling). */
#define MPP_TOLERANCE 1.1
/* Otsu splits even a blank slide in two; below this saturation nothing counts as tissue. */
#define MIN_TISSUE_SATURATION 15
#define TISSUE_STRIP_ROWS 256
/* The tissue map keeps at most about this many pixels (16 MiB of saturation, 64 MiB of sums). */
#define TISSUE_MAP_PIXELS ((int64_t)16 << 20)

/* How tiles are read from one slide. */
typedef struct Slide {
    openslide_t *osr;
    int32_t level;
    int64_t region; /* side of the region read at that level, scaled to the tile side */
} Slide;

typedef struct WsiReader {
    Slide *slides; /* by source index */
    size_t num_slides;
    int tile;
} WsiReader;

/* Premultiplied ARGB to RGB; transparent pixels (outside the scanned area) become white glass. */
static void argb_to_rgb(uint8_t *rgb, const uint32_t *argb, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t p = argb[i], a = p >> 24;
        for (int c = 0; c < 3; c++) {
            uint32_t v = (p >> (16 - 8 * c)) & 0xff;
            rgb[i * 3 + (size_t)c] = (uint8_t)(a == 0 ? 255 : a == 255 ? v : (v * 255 + a / 2) / a);
        }
    }
}

static ItemStatus read_tile(void *ctx, const PrepItem *item, uint8_t *out, int thread, MaecError *err)
{
    (void)thread;
    const WsiReader *r = ctx;
    const Slide *s = &r->slides[item->source];
    size_t n = (size_t)s->region * (size_t)s->region;
    uint32_t *argb = xmalloc(n * sizeof *argb, "a slide region");
    openslide_read_region(s->osr, argb, item->x, item->y, s->level, s->region, s->region);
    const char *problem = openslide_get_error(s->osr);
    if (problem) {
        free(argb);
        error_set(err, "reading the tile at x=%d y=%d: OpenSlide: %s", item->x, item->y, problem);
        return ITEM_SKIP;
    }
    Image img = {.height = (int)s->region, .width = (int)s->region, .channels = 3};
    img.pixels = r->tile == s->region ? out : xmalloc(n * 3, "a slide region");
    argb_to_rgb(img.pixels, argb, n);
    free(argb);
    if (img.pixels != out) {
        Image scaled;
        image_resize(&scaled, &img, r->tile, r->tile);
        memcpy(out, scaled.pixels, (size_t)r->tile * (size_t)r->tile * 3);
        image_free(&scaled);
        image_free(&img);
    }
    return ITEM_OK;
}

static void free_reader(void *ctx)
{
    WsiReader *r = ctx;
    for (size_t i = 0; i < r->num_slides; i++)
        openslide_close(r->slides[i].osr);
    free(r->slides);
    free(r);
}

/* ---- tissue ---- */

/* Summed-area table of the tissue mask of the slide's lowest-resolution level. */
typedef struct TissueMap {
    uint32_t *sum; /* (width + 1) * (height + 1) */
    int64_t width, height;
    double downsample;
} TissueMap;

/* Saturation of every k-th pixel of every k-th row of the level: sat[(h / k) * (w / k)], rounded up. */
static int read_saturation(uint8_t *sat, openslide_t *osr, int32_t level, int64_t w, int64_t h, int64_t k,
                           MaecError *err)
{
    double ds = openslide_get_level_downsample(osr, level);
    size_t map_width = (size_t)((w + k - 1) / k);
    uint32_t *argb = xmalloc((size_t)w * TISSUE_STRIP_ROWS * sizeof *argb, "a slide strip");
    for (int64_t y = 0; y < h; y += TISSUE_STRIP_ROWS) {
        int64_t rows = h - y < TISSUE_STRIP_ROWS ? h - y : TISSUE_STRIP_ROWS;
        openslide_read_region(osr, argb, 0, (int64_t)(y * ds), level, w, rows);
        for (int64_t r = 0; r < rows; r++) {
            if ((y + r) % k)
                continue;
            uint8_t *out = sat + (size_t)((y + r) / k) * map_width;
            for (size_t x = 0; x < map_width; x++) {
                uint32_t p = argb[(size_t)r * (size_t)w + x * (size_t)k];
                uint8_t rgb[3];
                argb_to_rgb(rgb, &p, 1);
                out[x] = (p >> 24) ? tissue_saturation(rgb[0], rgb[1], rgb[2]) : 0;
            }
        }
    }
    free(argb);
    const char *problem = openslide_get_error(osr);
    return problem ? error_set(err, "reading level %d for tissue detection: OpenSlide: %s", level, problem) : 0;
}

static int tissue_map(TissueMap *m, openslide_t *osr, MaecError *err)
{
    int32_t level = openslide_get_level_count(osr) - 1;
    int64_t w, h;
    openslide_get_level_dimensions(osr, level, &w, &h);
    int64_t k = 1; /* a slide without a small level is sampled, not held whole */
    while ((w / k) * (h / k) > TISSUE_MAP_PIXELS)
        k++;
    m->width = (w + k - 1) / k;
    m->height = (h + k - 1) / k;
    m->downsample = openslide_get_level_downsample(osr, level) * (double)k;
    size_t mw = (size_t)m->width, mh = (size_t)m->height;
    uint8_t *sat = xmalloc(mw * mh, "a saturation map");
    if (read_saturation(sat, osr, level, w, h, k, err)) {
        free(sat);
        return -1;
    }
    uint64_t histogram[256] = {0};
    for (size_t i = 0; i < mw * mh; i++)
        histogram[sat[i]]++;
    int threshold = tissue_otsu_threshold(histogram);
    threshold = threshold < MIN_TISSUE_SATURATION ? MIN_TISSUE_SATURATION : threshold;
    m->sum = xcalloc((mw + 1) * (mh + 1), sizeof *m->sum, "a tissue map");
    for (size_t y = 0; y < mh; y++)
        for (size_t x = 0; x < mw; x++)
            m->sum[(y + 1) * (mw + 1) + x + 1] = (sat[y * mw + x] > threshold) + m->sum[y * (mw + 1) + x + 1] +
                                                 m->sum[(y + 1) * (mw + 1) + x] - m->sum[y * (mw + 1) + x];
    free(sat);
    return 0;
}

/* Fraction of tissue in the level-0 square [x, x + side) x [y, y + side). */
static double tissue_fraction(const TissueMap *m, double x, double y, double side)
{
    int64_t x0 = (int64_t)(x / m->downsample), y0 = (int64_t)(y / m->downsample);
    int64_t x1 = (int64_t)ceil((x + side) / m->downsample), y1 = (int64_t)ceil((y + side) / m->downsample);
    x1 = x1 > m->width ? m->width : x1;
    y1 = y1 > m->height ? m->height : y1;
    if (x1 <= x0 || y1 <= y0)
        return 0.0;
    size_t W = (size_t)m->width + 1;
    uint32_t in = m->sum[(size_t)y1 * W + (size_t)x1] - m->sum[(size_t)y0 * W + (size_t)x1] -
                  m->sum[(size_t)y1 * W + (size_t)x0] + m->sum[(size_t)y0 * W + (size_t)x0];
    return (double)in / (double)((x1 - x0) * (y1 - y0));
}

/* ---- slides ---- */

static double slide_mpp(openslide_t *osr)
{
    const char *v = openslide_get_property_value(osr, OPENSLIDE_PROPERTY_NAME_MPP_X);
    return v ? atof(v) : 0.0;
}

/* Chooses the level and region size; *scale = level-0 pixels per output pixel. */
static int choose_level(Slide *s, double *scale, const WsiOptions *opt, MaecError *err)
{
    double mpp0 = slide_mpp(s->osr);
    s->level = 0;
    *scale = 1.0;
    if (opt->mpp <= 0)
        return (s->region = opt->tile), 0;
    if (mpp0 <= 0)
        return error_set(err, "the slide records no microns per pixel (openslide.mpp-x), so --mpp cannot be "
                              "honoured; leave out --mpp to tile level 0");
    for (int32_t l = 0; l < openslide_get_level_count(s->osr); l++)
        if (mpp0 * openslide_get_level_downsample(s->osr, l) <= opt->mpp * MPP_TOLERANCE)
            s->level = l;
    *scale = opt->mpp / mpp0;
    s->region = (int64_t)lround(opt->tile * *scale / openslide_get_level_downsample(s->osr, s->level));
    s->region = s->region < 1 ? 1 : s->region;
    return 0;
}

static void add_tiles(PrepSource *src, int32_t source, int32_t label, const TissueMap *m, double scale,
                      const WsiOptions *opt, openslide_t *osr)
{
    int64_t w0, h0;
    openslide_get_level_dimensions(osr, 0, &w0, &h0);
    double side = opt->tile * scale, step = (opt->stride ? opt->stride : opt->tile) * scale;
    int64_t ordinal = 0;
    for (double y = 0; y + side <= (double)h0; y += step)
        for (double x = 0; x + side <= (double)w0; x += step, ordinal++)
            if (tissue_fraction(m, x, y, side) >= opt->min_tissue)
                source_add_item(src, source, label, ordinal, (int32_t)x, (int32_t)y);
}

/* Opens one slide and adds its tiles; a slide that cannot be used is rejected, not fatal. */
static void add_slide(PrepSource *src, WsiReader *r, const char *path, int32_t label, const WsiOptions *opt)
{
    MaecError err = {""};
    Slide s = {.osr = openslide_open(path)};
    const char *problem = s.osr ? openslide_get_error(s.osr) : "not a slide OpenSlide recognises (or unreadable)";
    double scale = 1.0;
    TissueMap m = {0};
    int rc = problem ? error_set(&err, "OpenSlide: %s", problem) : choose_level(&s, &scale, opt, &err);
    if (!rc)
        rc = tissue_map(&m, s.osr, &err);
    if (rc) {
        source_reject(src, path, err.msg);
        if (s.osr)
            openslide_close(s.osr);
        return;
    }
    int32_t source = source_add_source(src, path);
    r->slides = xrealloc(r->slides, (r->num_slides + 1) * sizeof *r->slides, "slides");
    r->slides[r->num_slides++] = s;
    size_t before = src->num_items;
    add_tiles(src, source, label, &m, scale, opt, s.osr);
    log_info("prep: %s: %zu tiles with tissue (level %d)", path, src->num_items - before, s.level);
    free(m.sum);
}

/* ---- labels ---- */

typedef struct SlideLabels {
    char **slides, **labels;
    size_t n;
} SlideLabels;

static char *trimmed(const char *begin, const char *end)
{
    while (begin < end && (*begin == ' ' || *begin == '\t'))
        begin++;
    while (end > begin && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    char *s = xmalloc((size_t)(end - begin) + 1, "a CSV field");
    memcpy(s, begin, (size_t)(end - begin));
    s[end - begin] = '\0';
    return s;
}

static int parse_labels(SlideLabels *l, const char *path, MaecError *err)
{
    char *text = source_read_text_file(path, err);
    if (!text)
        return -1;
    int rc = 0, line = 0;
    for (char *p = text, *next; *p && !rc; p = next) {
        char *eol = strchr(p, '\n');
        next = eol ? eol + 1 : p + strlen(p);
        eol = eol ? eol : next;
        line++;
        char *comma = memchr(p, ',', (size_t)(eol - p));
        char *slide = trimmed(p, comma ? comma : eol), *label = comma ? trimmed(comma + 1, eol) : NULL;
        bool blank = !comma && !slide[0], header = line == 1 && label && !strcmp(slide, "slide") && !strcmp(label, "label");
        if (!blank && !header && (!label || !slide[0] || !label[0] || strchr(label, ',')))
            rc = error_set(err, "%s:%d: expected 'slide,label'", path, line);
        if (!rc && !blank && !header) {
            l->slides = xrealloc(l->slides, (l->n + 1) * sizeof *l->slides, "slide labels");
            l->labels = xrealloc(l->labels, (l->n + 1) * sizeof *l->labels, "slide labels");
            l->slides[l->n] = slide;
            l->labels[l->n++] = label;
        } else {
            free(slide);
            free(label);
        }
    }
    free(text);
    return rc;
}

static void free_labels(SlideLabels *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->slides[i]);
        free(l->labels[i]);
    }
    free(l->slides);
    free(l->labels);
}

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Classes: the distinct labels, sorted. */
static void set_classes(PrepSource *src, const SlideLabels *l)
{
    char **sorted = xmalloc((l->n ? l->n : 1) * sizeof *sorted, "class names");
    for (size_t i = 0; i < l->n; i++)
        sorted[i] = l->labels[i];
    if (l->n > 0)
        qsort(sorted, l->n, sizeof *sorted, compare_strings);
    char **names = xmalloc((l->n ? l->n : 1) * sizeof *names, "class names");
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        if (k == 0 || strcmp(names[k - 1], sorted[i]))
            names[k++] = xstrdup(sorted[i]);
    free(sorted);
    source_set_classes(src, names, k);
}

/* The class of a slide: its row matched by file name, with or without the extension. */
static int slide_label(int32_t *label, const PrepSource *src, const SlideLabels *l, const char *path,
                       const char *csv, MaecError *err)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t stem = dot ? (size_t)(dot - base) : strlen(base);
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->slides[i], base) || (strlen(l->slides[i]) == stem && !strncmp(l->slides[i], base, stem)))
            for (size_t c = 0; c < src->num_classes; c++)
                if (!strcmp(src->class_names[c], l->labels[i]))
                    return (*label = (int32_t)c), 0;
    return error_set(err, "%s has no row in %s (rows are 'slide,label' with the slide's file name)", path, csv);
}

int wsi_source(PrepSource *src, const WsiOptions *opt, MaecError *err)
{
    source_init(src, "tiles");
    src->split_by_source = true;
    src->height = src->width = opt->tile;
    src->channels = 3;
    WsiReader *r = xcalloc(1, sizeof *r, "slide reader");
    r->tile = opt->tile;
    src->ctx = r;
    src->free_ctx = free_reader;
    src->read = read_tile;
    SlideLabels labels = {0};
    int rc = opt->labels_csv ? parse_labels(&labels, opt->labels_csv, err) : 0;
    if (!rc && opt->labels_csv)
        set_classes(src, &labels);
    for (size_t i = 0; i < opt->num_slides && !rc; i++) {
        int32_t label = -1;
        rc = opt->labels_csv ? slide_label(&label, src, &labels, opt->slides[i], opt->labels_csv, err) : 0;
        if (!rc)
            add_slide(src, r, opt->slides[i], label, opt);
    }
    free_labels(&labels);
    src->mpp = opt->mpp > 0 ? opt->mpp : r->num_slides ? slide_mpp(r->slides[0].osr) : 0.0;
    for (size_t i = 0; opt->mpp <= 0 && i < r->num_slides; i++)
        if (slide_mpp(r->slides[i].osr) != src->mpp)
            src->mpp = 0.0; /* level 0 of slides scanned at different resolutions: no one mpp */
    source_set_description(src, "%zu whole-slide images (first %s), %dx%d tiles, stride %d, %g um/px "
                           "(0 = level 0, mixed), min tissue %g", opt->num_slides, opt->slides[0], opt->tile,
                           opt->tile, opt->stride ? opt->stride : opt->tile, src->mpp, opt->min_tissue);
    return rc;
}
