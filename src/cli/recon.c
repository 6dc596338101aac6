/* maec recon: what a pretrained model makes of masked images, as a picture (for objectives that
 * predict pixels). One row per image:
 * the image as the model sees it | the masked input (masked patches grey) | the reconstruction
 * of every patch | the reconstruction with the visible patches pasted back. */
#include "maec/alloc.h"
#include "maec/augment.h"
#include "maec/cli.h"
#include "maec/dataset.h"
#include "maec/embed.h"
#include "maec/log.h"
#include "maec/masking.h"
#include "maec/parallel.h"
#include "maec/patchify.h"
#include "maec/png_writer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECON_MAX_IMAGES 64
#define RECON_PANELS 4
#define RECON_MARGIN 4          /* pixels of background around every cell */
#define RECON_MIN_CELL 128      /* small images are enlarged by a whole factor to about this size */
#define RECON_BACKGROUND 255
#define RECON_MAX_BYTES ((size_t)512 << 20)
#define RECON_MASK_GREY (128.0f / 255.0f) /* masked patches: 128 of 255, not 127.5, which rounds either way */

typedef struct ReconArgs {
    const char *checkpoint, *data, *output;
    size_t indices[RECON_MAX_IMAGES];
    size_t count;
    double mask_ratio; /* < 0: the checkpoint's masking.ratio */
    long seed, scale, threads; /* scale 0: automatic */
    bool quiet;
} ReconArgs;

static const char usage[] =
    "usage: maec recon CHECKPOINT DATA --indices I,J,... -o PICTURE.png [options]\n"
    "\n"
    "Masks the images I, J, ... of DATA (dataset indices, from 0) at random, runs the checkpoint's\n"
    "MAE on them and draws one row per image: the image as the model sees it (resampled to its\n"
    "size) | the masked input (masked patches grey) | the reconstruction of every patch | the\n"
    "reconstruction with the visible patches pasted back. For norm_pix_loss models each predicted\n"
    "patch is mapped back with the mean and variance of the image's own patch.\n"
    "\n"
    "  --indices LIST     comma-separated dataset indices (required; at most 64)\n"
    "  -o, --output PATH  the PNG picture (required)\n"
    "  --mask-ratio R     fraction of patches masked (default: the checkpoint's masking.ratio)\n"
    "  --seed S           seed of the random masks (default 0); a mask depends on (S, index)\n"
    "  --scale N          enlarge every pixel N times (default: small images to about 128 px)\n"
    "  --threads N        worker threads (default 1)\n"
    "  -q, --quiet        no progress output\n"
    "  -h, --help         this text\n";

static int parse_indices(const char *list, ReconArgs *a)
{
    const char *p = list;
    a->count = 0;
    while (*p) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || (*end != ',' && *end != '\0'))
            return cli_usage_error("recon", "--indices: '%s' is not a comma-separated list of indices "
                                   "(e.g. 0,5,9)", list);
        if (a->count == RECON_MAX_IMAGES)
            return cli_usage_error("recon", "--indices: at most %d images in one picture", RECON_MAX_IMAGES);
        a->indices[a->count++] = (size_t)v;
        p = *end ? end + 1 : end;
    }
    if (a->count == 0)
        return cli_usage_error("recon", "--indices: no index given (e.g. --indices 0,5,9)");
    return 0;
}

static int parse_option(int argc, char **argv, int *i, ReconArgs *a)
{
    const char *arg = argv[*i], *value = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!value)
        return cli_usage_error("recon", "unknown option or missing value: '%s'", arg);
    ++*i;
    if (!strcmp(arg, "--indices"))
        return parse_indices(value, a);
    if (!strcmp(arg, "-o") || !strcmp(arg, "--output"))
        a->output = value;
    else if (!strcmp(arg, "--mask-ratio"))
        a->mask_ratio = cli_parse_double("recon", arg, value, 0.0, 1.0);
    else if (!strcmp(arg, "--seed"))
        a->seed = cli_parse_long("recon", arg, value, 0, 1L << 40);
    else if (!strcmp(arg, "--scale"))
        a->scale = cli_parse_long("recon", arg, value, 1, 64);
    else if (!strcmp(arg, "--threads"))
        a->threads = cli_parse_long("recon", arg, value, 1, 1024);
    else
        return cli_usage_error("recon", "unknown option '%s'", arg);
    return 0;
}

static int parse_args(int argc, char **argv, ReconArgs *a)
{
    *a = (ReconArgs){.mask_ratio = -1, .threads = 1};
    const char *positional[2] = {0};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            fputs(usage, stdout);
            exit(0);
        } else if (!strcmp(arg, "-q") || !strcmp(arg, "--quiet")) {
            a->quiet = true;
        } else if (arg[0] == '-') {
            if (parse_option(argc, argv, &i, a))
                return 2;
        } else if (npos == 2) {
            return cli_usage_error("recon", "unexpected argument '%s'", arg);
        } else {
            positional[npos++] = arg;
        }
    }
    if (npos < 2 || !a->output || !a->count)
        return cli_usage_error("recon", "expected CHECKPOINT DATA --indices I,J,... -o PICTURE.png");
    a->checkpoint = positional[0], a->data = positional[1];
    return 0;
}

static int check_inputs(const ReconArgs *a, Pretrained *p, const Dataset *ds, MaecError *err)
{
    const int C = p->model->in_chans;
    if (!p->obj.cls->pixels)
        return error_set(err, "%s holds a '%s' model, which does not predict pixels: recon draws the "
                         "reconstructions of pixel objectives (maec objectives lists them)", a->checkpoint,
                         p->obj.cls->name);
    if (dataset_channels(ds) != C)
        return error_set(err, "%s has %d channels, the model of %s %d: use a dataset like the training one",
                         a->data, dataset_channels(ds), a->checkpoint, C);
    if (C != 1 && C != 3)
        return error_set(err, "the model of %s has %d input channels; recon draws gray (1) or RGB (3) images",
                         a->checkpoint, C);
    for (size_t i = 0; i < a->count; i++)
        if (a->indices[i] >= dataset_count(ds))
            return error_set(err, "--indices: %zu is out of range: %s holds %zu images (indices 0 to %zu)",
                             a->indices[i], a->data, dataset_count(ds), dataset_count(ds) - 1);
    if (a->mask_ratio >= 0 && mask_spec_ratio(&p->obj.mask, a->mask_ratio, err))
        return error_prefix(err, "--mask-ratio");
    return 0;
}

/* The four panels of every row as patches [B, L, ppC], in the normalised input's units. */
typedef struct Reconstruction {
    size_t B, L, P;
    float *images;                  /* [B, S, S, C]: the network input */
    Batch batch;                    /* the images, their masks and labels */
    float *panels[RECON_PANELS];
    double loss, terms[OBJECTIVE_MAX_TERMS]; /* the objective's, on these images and masks */
} Reconstruction;

/* images [B, S, S, C] <- the stored images resampled to the model's size and normalised. */
static int read_input(const ReconArgs *a, const Pretrained *p, Dataset *ds, float *images, int32_t *labels,
                      MaecError *err)
{
    const int H = dataset_height(ds), W = dataset_width(ds), C = dataset_channels(ds);
    const size_t S = (size_t)p->model->img_size, in = dataset_sample_bytes(ds);
    uint8_t *raw = xmalloc(a->count * in, "stored images");
    int rc = dataset_read_many(ds, a->indices, a->count, raw, labels, err);
    if (rc == 0) {
        Augmenter *resample = augmenter_create(H, W, C, &p->input);
        const AugmentDraw whole = augment_draw(&p->input, H, W, 0, 0, 0);
        for (size_t b = 0; b < a->count; b++)
            augment_apply(resample, images + b * S * S * (size_t)C, raw + b * in, &whole);
        augmenter_free(resample);
    }
    free(raw);
    return rc;
}

/* dst's patches ids[b, 0..n) of each image <- src's */
static void copy_patches(float *dst, const float *src, const int32_t *ids, size_t n, const Reconstruction *r)
{
    for (size_t b = 0; b < r->B; b++)
        for (size_t j = 0; j < n; j++) {
            size_t at = (b * r->L + (size_t)ids[b * r->L + j]) * r->P;
            memcpy(dst + at, src + at, r->P * sizeof(float));
        }
}

/* Every value of patches [n, P] in (row, col, c) order <- grey, normalised as the input. */
static void fill_grey(float *patches, size_t n, size_t P, const AugmentConfig *input, int C)
{
    for (size_t i = 0; i < n * P; i++) {
        int c = (int)(i % (size_t)C);
        patches[i] = (RECON_MASK_GREY - input->mean[c]) / input->std[c];
    }
}

/* The objective's step on the batch (its gradients are not used), then the panels. */
static void reconstruct(Reconstruction *r, const ReconArgs *a, Pretrained *p)
{
    Objective *obj = &p->obj;
    const size_t n = r->B * r->L * r->P, visible = obj->mask.visible;
    Batch *b = &r->batch;
    mask_set_init(&b->masks, &obj->mask, r->B);
    mask_draw(&b->masks, &obj->mask, a->indices, r->B, (uint64_t)a->seed, 0);
    obj->cls->reserve(obj, r->B);
    r->loss = obj->cls->step(obj, b, 1.0f, NULL, r->terms);
    for (int k = 0; k < RECON_PANELS; k++)
        r->panels[k] = xmalloc(n * sizeof(float), "reconstruction panel");
    patchify(r->panels[0], b->images, r->B, p->enc->geometry);
    fill_grey(r->panels[1], r->B * r->L, r->P, &p->input, p->model->in_chans);
    copy_patches(r->panels[1], r->panels[0], b->masks.order, visible, r);
    obj->cls->pixels(obj, b, r->panels[2]);
    memcpy(r->panels[3], r->panels[2], n * sizeof(float));
    copy_patches(r->panels[3], r->panels[0], b->masks.order, visible, r);
}

static void reconstruction_free(Reconstruction *r)
{
    free(r->batch.images), free(r->batch.labels);
    mask_set_free(&r->batch.masks);
    for (int k = 0; k < RECON_PANELS; k++)
        free(r->panels[k]);
}

typedef struct Canvas {
    int width, height, channels, cell, scale;
    uint8_t *pixels; /* [height, width, channels] */
} Canvas;

static int canvas_init(Canvas *cv, size_t rows, int S, int C, long scale, MaecError *err)
{
    cv->scale = scale > 0 ? (int)scale : (RECON_MIN_CELL + S - 1) / S;
    cv->cell = S * cv->scale;
    cv->channels = C;
    cv->width = RECON_PANELS * cv->cell + (RECON_PANELS + 1) * RECON_MARGIN;
    cv->height = (int)rows * (cv->cell + RECON_MARGIN) + RECON_MARGIN;
    cv->pixels = NULL;
    size_t bytes = (size_t)cv->width * (size_t)cv->height * (size_t)C;
    if (bytes > RECON_MAX_BYTES)
        return error_set(err, "the picture would be %d x %d pixels (over %d MiB): lower --scale or give fewer "
                         "--indices", cv->width, cv->height, (int)(RECON_MAX_BYTES >> 20));
    cv->pixels = xmalloc(bytes, "picture");
    memset(cv->pixels, RECON_BACKGROUND, bytes);
    return 0;
}

/* image [S, S, C] in the normalised input's units, into the cell at (row, col), back in 0..255. */
static void canvas_draw(Canvas *cv, size_t row, int col, const float *image, const AugmentConfig *input)
{
    const int S = cv->cell / cv->scale, C = cv->channels, k = cv->scale;
    const int top = RECON_MARGIN + (int)row * (cv->cell + RECON_MARGIN);
    const int left = RECON_MARGIN + col * (cv->cell + RECON_MARGIN);
    for (int y = 0; y < cv->cell; y++)
        for (int x = 0; x < cv->cell; x++)
            for (int c = 0; c < C; c++) {
                double v = ((double)image[((y / k) * S + x / k) * C + c] * input->std[c] + input->mean[c]) * 255.0;
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                cv->pixels[((size_t)(top + y) * (size_t)cv->width + (size_t)(left + x)) * (size_t)C + (size_t)c] =
                    (uint8_t)lround(v);
            }
}

static int draw(const Reconstruction *r, const ReconArgs *a, const Pretrained *p, MaecError *err)
{
    const ModelConfig *m = p->model;
    const size_t visible = p->obj.mask.visible, image_floats = (size_t)m->img_size * (size_t)m->img_size * (size_t)m->in_chans;
    Canvas cv;
    if (canvas_init(&cv, r->B, m->img_size, m->in_chans, a->scale, err))
        return -1;
    float *images = xmalloc(r->B * image_floats * sizeof(float), "panel images");
    for (int k = 0; k < RECON_PANELS; k++) {
        unpatchify(images, r->panels[k], r->B, p->enc->geometry);
        for (size_t b = 0; b < r->B; b++)
            canvas_draw(&cv, b, k, images + b * image_floats, &p->input);
    }
    int rc = png_write(a->output, cv.pixels, cv.width, cv.height, cv.channels, err);
    if (rc == 0) { /* with nothing masked the reconstruction loss is 0 / 0 */
        char terms[256] = "";
        for (size_t k = 0, at = 0; k < p->obj.n_terms && at < sizeof terms; k++)
            at += (size_t)snprintf(terms + at, sizeof terms - at, ", %s %.4f", p->obj.terms[k], r->terms[k]);
        log_info("recon: wrote %s: %zu rows x 4 panels of %d px (x%d), %zu of %zu patches masked, %s loss %.4f%s",
                 a->output, r->B, m->img_size, cv.scale, r->L - visible, r->L, p->obj.cls->name,
                 visible < r->L ? r->loss : 0.0, terms);
    }
    free(images), free(cv.pixels);
    return rc;
}

static int make_picture(const ReconArgs *a, Pretrained *p, Dataset *ds, MaecError *err)
{
    const ModelConfig *m = p->model;
    Reconstruction r = {.B = a->count, .L = mask_patches(&p->obj.mask), .P = (size_t)vit_patch_dim(m)};
    Batch *b = &r.batch;
    *b = (Batch){.n = r.B, .samples = (size_t *)a->indices};
    b->images = xmalloc(r.B * (size_t)(m->img_size * m->img_size * m->in_chans) * sizeof(float), "input images");
    b->labels = xmalloc(r.B * sizeof *b->labels, "labels");
    int rc = read_input(a, p, ds, b->images, b->labels, err);
    if (rc == 0) {
        reconstruct(&r, a, p);
        rc = draw(&r, a, p, err);
    }
    reconstruction_free(&r);
    return rc;
}

static int run(const ReconArgs *a, MaecError *err)
{
    Pretrained p;
    if (pretrained_open(&p, a->checkpoint, false, 0, err))
        return -1;
    Dataset *ds = dataset_open(a->data, err);
    int rc = !ds || check_inputs(a, &p, ds, err) || make_picture(a, &p, ds, err) ? -1 : 0;
    if (ds)
        dataset_close(ds);
    pretrained_close(&p);
    return rc;
}

int cli_recon(int argc, char **argv)
{
    ReconArgs a;
    if (parse_args(argc, argv, &a))
        return 2;
    log_set_quiet(a.quiet);
    parallel_init((int)a.threads);
    MaecError err = {{0}};
    int rc = run(&a, &err);
    parallel_shutdown();
    if (rc)
        fprintf(stderr, "maec recon: error: %s\n", err.msg);
    return rc ? 1 : 0;
}
