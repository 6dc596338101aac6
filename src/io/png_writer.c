#include "maec/png_writer.h"

#include <png.h>
#include <string.h>

int png_write(const char *path, const uint8_t *pixels, int width, int height, int channels, MaecError *err)
{
    if (channels != 1 && channels != 3)
        return error_set(err, "%s: a PNG picture has 1 (gray) or 3 (RGB) channels, not %d", path, channels);
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    png.width = (png_uint_32)width;
    png.height = (png_uint_32)height;
    png.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    if (!png_image_write_to_file(&png, path, 0, pixels, 0, NULL))
        return error_set(err, "cannot write the PNG file %s (libpng: %s): check that its folder exists and "
                         "is writable", path, png.message);
    return 0;
}
