#include "maec/image.h"

#include "maec/alloc.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

#include <jpeglib.h> /* after stdio.h: it uses FILE */

static void image_alloc(Image *img, int height, int width, int channels)
{
    img->height = height;
    img->width = width;
    img->channels = channels;
    img->pixels = xmalloc((size_t)height * (size_t)width * (size_t)channels, "an image");
}

void image_free(Image *img)
{
    free(img->pixels);
    img->pixels = NULL;
}

/* ---- TIFF ---- */

/* libtiff reports through process-wide handlers; the message goes to the thread that caused it. */
static _Thread_local char tiff_message[512];
static pthread_once_t tiff_once = PTHREAD_ONCE_INIT;

static void tiff_error(const char *module, const char *fmt, va_list ap)
{
    (void)module;
    vsnprintf(tiff_message, sizeof tiff_message, fmt, ap);
}

static void tiff_warning(const char *module, const char *fmt, va_list ap)
{
    /* Unknown tags and the like: harmless for the pixels, too noisy for a 100k-tile run. */
    (void)module, (void)fmt, (void)ap;
}

static void tiff_install_handlers(void)
{
    TIFFSetErrorHandler(tiff_error);
    TIFFSetWarningHandler(tiff_warning);
}

static int tiff_check_layout(TIFF *tif, int *channels, MaecError *err)
{
    uint16_t bits = 8, spp = 1, photometric = PHOTOMETRIC_MINISBLACK;
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric))
        photometric = spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    if (bits != 8)
        return error_set(err, "TIFF with %u bits per sample; maec prep reads 8-bit gray or RGB", bits);
    bool gray = photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE;
    if (gray && spp > 2)
        return error_set(err, "gray TIFF with %u samples per pixel", spp);
    *channels = gray ? 1 : 3;
    return 0;
}

/* TIFFReadRGBAImageOriented handles strips and tiles, every compression and photometric libtiff
 * knows (palette, YCbCr, min-is-white), so one path reads them all. */
static int read_tiff(Image *img, const char *path, MaecError *err)
{
    pthread_once(&tiff_once, tiff_install_handlers);
    tiff_message[0] = '\0';
    TIFF *tif = TIFFOpen(path, "r");
    if (!tif)
        return error_set(err, "not a readable TIFF file (libtiff: %s)", tiff_message);
    uint32_t w = 0, h = 0;
    int channels = 0, rc = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    if (w == 0 || h == 0 || w > 65536 || h > 65536)
        rc = error_set(err, "TIFF of %ux%u pixels; tiles must be 1 to 65536 pixels wide and high", w, h);
    if (!rc)
        rc = tiff_check_layout(tif, &channels, err);
    uint32_t *raster = rc ? NULL : xmalloc((size_t)w * h * sizeof *raster, "a TIFF raster");
    if (!rc && !TIFFReadRGBAImageOriented(tif, w, h, raster, ORIENTATION_TOPLEFT, 1))
        rc = error_set(err, "corrupt or truncated TIFF data (libtiff: %s)",
                       tiff_message[0] ? tiff_message : "no reason given");
    if (!rc) {
        image_alloc(img, (int)h, (int)w, channels);
        for (size_t i = 0; i < (size_t)w * h; i++) {
            img->pixels[i * (size_t)channels] = (uint8_t)TIFFGetR(raster[i]);
            if (channels == 3) {
                img->pixels[i * 3 + 1] = (uint8_t)TIFFGetG(raster[i]);
                img->pixels[i * 3 + 2] = (uint8_t)TIFFGetB(raster[i]);
            }
        }
    }
    free(raster);
    TIFFClose(tif);
    return rc;
}

/* ---- PNG ---- */

static int read_png(Image *img, const char *path, MaecError *err)
{
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&png, path))
        return error_set(err, "not a readable PNG file (libpng: %s)", png.message);
    int channels = png.format & PNG_FORMAT_FLAG_COLOR ? 3 : 1;
    /* 16-bit input is scaled to 8 bits and alpha is composed onto black by libpng. */
    png.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    image_alloc(img, (int)png.height, (int)png.width, channels);
    if (!png_image_finish_read(&png, NULL, img->pixels, 0, NULL)) {
        image_free(img);
        return error_set(err, "corrupt or truncated PNG data (libpng: %s)", png.message);
    }
    return 0;
}

/* ---- JPEG ---- */

typedef struct JpegErrors {
    struct jpeg_error_mgr mgr;
    jmp_buf escape;
    char message[JMSG_LENGTH_MAX];
} JpegErrors;

static void jpeg_fail(j_common_ptr cinfo)
{
    JpegErrors *e = (JpegErrors *)cinfo->err;
    cinfo->err->format_message(cinfo, e->message);
    longjmp(e->escape, 1);
}

/* libjpeg treats missing data as a warning and fills the rest with gray; maec treats it as the
 * corrupt input it is, so warnings end decoding too. */
static void jpeg_warn(j_common_ptr cinfo, int level)
{
    if (level < 0)
        jpeg_fail(cinfo);
}

static int read_jpeg(Image *img, FILE *f, MaecError *err)
{
    struct jpeg_decompress_struct cinfo;
    JpegErrors errors = {.message = ""};
    cinfo.err = jpeg_std_error(&errors.mgr);
    errors.mgr.error_exit = jpeg_fail;
    errors.mgr.emit_message = jpeg_warn;
    img->pixels = NULL;
    if (setjmp(errors.escape)) {
        jpeg_destroy_decompress(&cinfo);
        image_free(img);
        return error_set(err, "corrupt or truncated JPEG data (libjpeg: %s)", errors.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    image_alloc(img, (int)cinfo.output_height, (int)cinfo.output_width, cinfo.output_components);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = img->pixels + (size_t)cinfo.output_scanline * cinfo.output_width * (size_t)img->channels;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

/* ---- dispatch on the first bytes ---- */

int image_read(Image *img, const char *path, MaecError *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return error_set(err, "cannot open: %s", strerror(errno));
    unsigned char magic[4] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    int rc;
    if (got == 0)
        rc = error_set(err, "the file is empty");
    else if (got == 4 && ((magic[0] == 'I' && magic[1] == 'I' && magic[2] == 42 && magic[3] == 0) ||
                          (magic[0] == 'M' && magic[1] == 'M' && magic[2] == 0 && magic[3] == 42)))
        rc = read_tiff(img, path, err);
    else if (got == 4 && !memcmp(magic, "\x89PNG", 4))
        rc = read_png(img, path, err);
    else if (got >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) {
        rewind(f);
        rc = read_jpeg(img, f, err);
    } else
        rc = error_set(err, "not a TIFF, PNG or JPEG file (it starts with bytes %02x %02x %02x %02x)", magic[0],
                       magic[1], magic[2], magic[3]);
    fclose(f);
    return rc;
}

/* ---- resizing ---- */

/* For each output coordinate o: taps input indices starting at first[o] with weights w[o * taps]. */
typedef struct AxisWeights {
    int *first;
    float *w;
    int taps;
} AxisWeights;

static AxisWeights axis_weights(int in, int out)
{
    double scale = (double)in / out, support = scale > 1.0 ? scale : 1.0;
    AxisWeights a = {.taps = (int)ceil(2.0 * support) + 1};
    a.first = xmalloc((size_t)out * sizeof *a.first, "resize weights");
    a.w = xcalloc((size_t)out * (size_t)a.taps, sizeof *a.w, "resize weights");
    for (int o = 0; o < out; o++) {
        double center = (o + 0.5) * scale - 0.5;
        int lo = (int)ceil(center - support);
        a.first[o] = lo;
        double total = 0.0;
        for (int t = 0; t < a.taps; t++) {
            double d = fabs(lo + t - center) / support;
            a.w[o * a.taps + t] = d < 1.0 ? (float)(1.0 - d) : 0.0f;
            total += a.w[o * a.taps + t];
        }
        for (int t = 0; t < a.taps; t++)
            a.w[o * a.taps + t] = (float)(a.w[o * a.taps + t] / total);
    }
    return a;
}

static int clamp_index(int i, int n) { return i < 0 ? 0 : i >= n ? n - 1 : i; }

static uint8_t to_byte(float v) { return (uint8_t)(v <= 0.0f ? 0 : v >= 255.0f ? 255 : lrintf(v)); }

void image_resize(Image *out, const Image *in, int height, int width)
{
    const int C = in->channels;
    AxisWeights ax = axis_weights(in->width, width), ay = axis_weights(in->height, height);
    float *rows = xcalloc((size_t)in->height * (size_t)width * (size_t)C, sizeof *rows, "resize rows");
    for (int y = 0; y < in->height; y++)
        for (int o = 0; o < width; o++)
            for (int t = 0; t < ax.taps; t++) {
                float w = ax.w[o * ax.taps + t];
                const uint8_t *p = in->pixels + ((size_t)y * in->width + clamp_index(ax.first[o] + t, in->width)) * C;
                for (int c = 0; c < C; c++)
                    rows[((size_t)y * width + o) * C + c] += w * p[c];
            }
    image_alloc(out, height, width, C);
    for (int o = 0; o < height; o++)
        for (size_t x = 0; x < (size_t)width * C; x++) {
            float v = 0.0f;
            for (int t = 0; t < ay.taps; t++)
                v += ay.w[o * ay.taps + t] * rows[(size_t)clamp_index(ay.first[o] + t, in->height) * width * C + x];
            out->pixels[(size_t)o * width * C + x] = to_byte(v);
        }
    free(rows);
    free(ax.first);
    free(ax.w);
    free(ay.first);
    free(ay.w);
}

void image_center_crop(Image *out, const Image *in, int height, int width)
{
    size_t C = (size_t)in->channels, top = (size_t)(in->height - height) / 2, left = (size_t)(in->width - width) / 2;
    image_alloc(out, height, width, in->channels);
    for (size_t y = 0; y < (size_t)height; y++)
        memcpy(out->pixels + y * (size_t)width * C, in->pixels + ((top + y) * (size_t)in->width + left) * C,
               (size_t)width * C);
}

void image_convert_channels(Image *out, const Image *in, int channels)
{
    size_t pixels = (size_t)in->height * (size_t)in->width;
    image_alloc(out, in->height, in->width, channels);
    for (size_t i = 0; i < pixels; i++) {
        const uint8_t *p = in->pixels + i * (size_t)in->channels;
        uint8_t *q = out->pixels + i * (size_t)channels;
        if (in->channels == channels)
            memcpy(q, p, (size_t)channels);
        else if (channels == 3)
            q[0] = q[1] = q[2] = p[0];
        else
            q[0] = to_byte(0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]);
    }
}
