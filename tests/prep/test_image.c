/* Image decoding, resizing and tissue thresholds: every format round-trips, corrupt files are
 * reported with a reason, resizing keeps flat colours flat and averages when shrinking. */
#include "../image_files.h"
#include "../testing.h"

#include "maec/image.h"
#include "maec/synthetic.h"
#include "maec/tissue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

/* mean_error: the largest mean absolute pixel error allowed (0: exact). */
static void check_decodes(const char *path, const uint8_t *want, int h, int w, int channels, double mean_error)
{
    Image img;
    MaecError err;
    CHECK(image_read(&img, path, &err) == 0, "%s: %s", path, err.msg);
    if (!img.pixels)
        return;
    CHECK(img.height == h && img.width == w && img.channels == channels, "%s: %dx%dx%d", path, img.height,
          img.width, img.channels);
    size_t n = (size_t)h * (size_t)w * (size_t)channels;
    double total = 0.0;
    for (size_t i = 0; i < n; i++)
        total += abs(img.pixels[i] - want[i]);
    CHECK(total / (double)n <= mean_error, "%s: mean pixel error %g", path, total / (double)n);
    image_free(&img);
}

static void expect_failure(const char *path, const char *fragment)
{
    Image img = {0};
    MaecError err = {""};
    CHECK(image_read(&img, path, &err) == -1 && strstr(err.msg, fragment), "%s: '%s' (want '%s')", path, err.msg,
          fragment);
}

static void test_formats(void)
{
    enum { H = 37, W = 50 };
    uint8_t rgb[H * W * 3], gray[H * W];
    SyntheticConfig cfg = {.count = 1, .height = H, .width = W, .channels = 3, .classes = 4, .seed = 1};
    synthetic_image(rgb, &cfg, 0);
    cfg.channels = 1;
    synthetic_image(gray, &cfg, 1);
    char path[512];
    snprintf(path, sizeof path, "%s/strips.tif", dir);
    write_tiff(path, rgb, H, W, 3, 0, COMPRESSION_LZW);
    check_decodes(path, rgb, H, W, 3, 0);
    snprintf(path, sizeof path, "%s/tiles.tif", dir);
    write_tiff(path, rgb, H, W, 3, 16, COMPRESSION_PACKBITS);
    check_decodes(path, rgb, H, W, 3, 0);
    snprintf(path, sizeof path, "%s/gray.tif", dir);
    write_tiff(path, gray, H, W, 1, 0, COMPRESSION_NONE);
    check_decodes(path, gray, H, W, 1, 0);
    snprintf(path, sizeof path, "%s/rgb.png", dir);
    write_png(path, rgb, H, W, 3);
    check_decodes(path, rgb, H, W, 3, 0);
    snprintf(path, sizeof path, "%s/gray.png", dir);
    write_png(path, gray, H, W, 1);
    check_decodes(path, gray, H, W, 1, 0);
    snprintf(path, sizeof path, "%s/rgb.jpg", dir);
    write_jpeg(path, rgb, H, W);
    check_decodes(path, rgb, H, W, 3, 8.0); /* lossy, and the pixel noise costs it most */
    const char *const truncated[][2] = {{"strips.tif", "TIFF"}, {"rgb.png", "PNG"}, {"rgb.jpg", "corrupt or truncated JPEG"}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, truncated[i][0]);
        CHECK(truncate(path, 300) == 0, "truncate %s", path);
        expect_failure(path, truncated[i][1]);
    }
    snprintf(path, sizeof path, "%s/empty.tif", dir);
    fclose(fopen(path, "w"));
    expect_failure(path, "empty");
    snprintf(path, sizeof path, "%s/missing.png", dir);
    expect_failure(path, "No such file");
    snprintf(path, sizeof path, "%s/text.jpg", dir);
    FILE *f = fopen(path, "w");
    fputs("hello", f);
    fclose(f);
    expect_failure(path, "not a TIFF, PNG or JPEG");
}

static void test_transforms(void)
{
    Image in = {.height = 10, .width = 20, .channels = 3}, out, crop, gray, back;
    in.pixels = malloc(10 * 20 * 3);
    for (int i = 0; i < 10 * 20; i++) {
        in.pixels[i * 3] = 200;
        in.pixels[i * 3 + 1] = 100;
        in.pixels[i * 3 + 2] = (uint8_t)((i % 2) * 250); /* alternating columns */
    }
    image_resize(&out, &in, 5, 10);
    bool flat = true, averaged = true;
    for (int i = 0; i < 50; i++) {
        flat = flat && out.pixels[i * 3] == 200 && out.pixels[i * 3 + 1] == 100;
        bool edge = i % 10 == 0 || i % 10 == 9; /* the filter repeats the edge pixel there */
        averaged = averaged && (edge || abs(out.pixels[i * 3 + 2] - 125) <= 3);
    }
    CHECK(flat, "a flat colour changed when resized");
    CHECK(averaged, "halving alternating columns should average them (got %d)", out.pixels[5]);
    image_center_crop(&crop, &in, 4, 6);
    CHECK(crop.height == 4 && crop.width == 6 && crop.pixels[2] == in.pixels[((3 * 20) + 7) * 3 + 2], "crop offset");
    image_convert_channels(&gray, &in, 1);
    CHECK(gray.channels == 1 && abs(gray.pixels[0] - 118) <= 1, "luma %d", gray.pixels[0]);
    image_convert_channels(&back, &gray, 3);
    CHECK(back.pixels[0] == back.pixels[1] && back.pixels[1] == back.pixels[2], "gray to RGB");
    image_free(&in);
    image_free(&out);
    image_free(&crop);
    image_free(&gray);
    image_free(&back);
}

static void test_tissue(void)
{
    uint64_t histogram[256] = {0};
    for (int v = 0; v < 20; v++)
        histogram[v] = 1000; /* glass */
    for (int v = 120; v < 180; v++)
        histogram[v] = 300; /* stained tissue */
    int t = tissue_otsu_threshold(histogram);
    CHECK(t >= 19 && t < 120, "Otsu threshold %d should separate 0..19 from 120..179", t);
    CHECK(tissue_saturation(255, 255, 255) == 0 && tissue_saturation(0, 0, 0) == 0, "grey has no saturation");
    CHECK(tissue_saturation(200, 100, 200) == 127, "saturation %d", tissue_saturation(200, 100, 200));
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/maec-test-image-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_formats();
    test_transforms();
    test_tissue();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_image");
}
