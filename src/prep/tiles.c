#include "maec/tiles.h"

#include "maec/alloc.h"
#include "maec/image.h"
#include "maec/log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct TilesReader {
    TilesOptions opt;
    const PrepSource *src;
    char *first_path; /* the image that fixed the sample shape, for messages */
    int first_channels;
} TilesReader;

typedef struct Listing {
    char **files, **folders;
    size_t num_files, num_folders, ignored;
    char *ignored_example;
} Listing;

static bool has_image_extension(const char *name)
{
    static const char *const extensions[] = {".tif", ".tiff", ".png", ".jpg", ".jpeg"};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof extensions / sizeof *extensions; i++)
        if (!strcasecmp(dot, extensions[i]))
            return true;
    return false;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void push(char ***list, size_t *n, char *value)
{
    *list = xrealloc(*list, (*n + 1) * sizeof **list, "a file list");
    (*list)[(*n)++] = value;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = xmalloc(n, "a path");
    snprintf(path, n, "%s/%s", dir, name);
    return path;
}

/* Sorted image files and sub-folders of dir. */
static int list_folder(Listing *l, const char *dir, MaecError *err)
{
    memset(l, 0, sizeof *l);
    DIR *d = opendir(dir);
    if (!d)
        return error_set(err, "cannot read the folder %s: %s", dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char *path = join_path(dir, e->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            push(&l->folders, &l->num_folders, path);
        else if (has_image_extension(e->d_name))
            push(&l->files, &l->num_files, path);
        else if (l->ignored++ == 0)
            l->ignored_example = path;
        else
            free(path);
    }
    closedir(d);
    if (l->num_files > 0) /* qsort must not get the NULL of an empty list */
        qsort(l->files, l->num_files, sizeof *l->files, compare_names);
    if (l->num_folders > 0)
        qsort(l->folders, l->num_folders, sizeof *l->folders, compare_names);
    if (l->ignored)
        log_warn("%s: left out %zu files without an image extension (.tif .tiff .png .jpg .jpeg), e.g. %s", dir,
                 l->ignored, l->ignored_example);
    return 0;
}

static void free_listing(Listing *l)
{
    for (size_t i = 0; i < l->num_files; i++)
        free(l->files[i]);
    for (size_t i = 0; i < l->num_folders; i++)
        free(l->folders[i]);
    free(l->files);
    free(l->folders);
    free(l->ignored_example);
}

static void add_files(PrepSource *src, const Listing *l, int32_t label)
{
    for (size_t i = 0; i < l->num_files; i++)
        source_add_item(src, source_add_source(src, l->files[i]), label, 0, -1, -1);
}

/* One class per sub-folder of the root, in name order. */
static int list_classes(PrepSource *src, const Listing *root, MaecError *err)
{
    if (root->num_files > 0)
        return error_set(err, "%s holds both image files (e.g. %s) and class folders (e.g. %s); put every image "
                              "in a class folder, or remove the folders for an unlabeled dataset",
                         src->description, root->files[0], root->folders[0]);
    char **names = xmalloc(root->num_folders * sizeof *names, "class names");
    for (size_t c = 0; c < root->num_folders; c++) {
        const char *slash = strrchr(root->folders[c], '/');
        names[c] = xstrdup(slash ? slash + 1 : root->folders[c]);
    }
    source_set_classes(src, names, root->num_folders);
    for (size_t c = 0; c < root->num_folders; c++) {
        Listing l;
        if (list_folder(&l, root->folders[c], err))
            return -1;
        if (l.num_files == 0)
            log_warn("class folder %s holds no images; class '%s' will have no samples", root->folders[c],
                     src->class_names[c]);
        add_files(src, &l, (int32_t)c);
        free_listing(&l);
    }
    return 0;
}

/* Decodes path and applies --resize, --center-crop and --channels. */
static int load_tile(Image *out, const char *path, const TilesOptions *opt, MaecError *err)
{
    Image img;
    if (image_read(&img, path, err))
        return -1;
    if (opt->resize > 0) {
        double scale = (double)opt->resize / (img.height < img.width ? img.height : img.width);
        Image resized;
        int h = (int)(img.height * scale + 0.5), w = (int)(img.width * scale + 0.5);
        image_resize(&resized, &img, h < 1 ? 1 : h, w < 1 ? 1 : w);
        image_free(&img);
        img = resized;
    }
    if (opt->center_crop > 0) {
        if (img.height < opt->center_crop || img.width < opt->center_crop) {
            int h = img.height, w = img.width;
            image_free(&img);
            return error_set(err, "is %dx%d (after --resize), smaller than --center-crop %d", w, h, opt->center_crop);
        }
        Image cropped;
        image_center_crop(&cropped, &img, opt->center_crop, opt->center_crop);
        image_free(&img);
        img = cropped;
    }
    if (opt->channels > 0 && opt->channels != img.channels) {
        Image converted;
        image_convert_channels(&converted, &img, opt->channels);
        image_free(&img);
        img = converted;
    }
    *out = img;
    return 0;
}

static ItemStatus read_tile(void *ctx, const PrepItem *item, uint8_t *out, int thread, MaecError *err)
{
    (void)thread;
    const TilesReader *r = ctx;
    const PrepSource *src = r->src;
    const char *path = src->sources[item->source];
    Image img;
    if (load_tile(&img, path, &r->opt, err)) {
        error_prefix(err, "%s", path);
        return ITEM_SKIP;
    }
    ItemStatus status = ITEM_FATAL;
    if (img.channels != src->channels)
        error_set(err, "%s has %d channels but %s, the first image, has %d; pass --channels 1 or 3 to convert "
                       "every image", path, img.channels, r->first_path, src->channels);
    else if (img.height != src->height || img.width != src->width)
        error_set(err, "%s is %dx%d but the first image, %s, gives %dx%d samples; pass --resize and/or "
                       "--center-crop to make every image the same size", path, img.width, img.height,
                  r->first_path, src->width, src->height);
    else {
        memcpy(out, img.pixels, (size_t)img.height * (size_t)img.width * (size_t)img.channels);
        status = ITEM_OK;
    }
    image_free(&img);
    return status;
}

static void free_reader(void *ctx)
{
    TilesReader *r = ctx;
    free(r->first_path);
    free(r);
}

/* The sample shape is that of the first image that decodes; the ones before it will be skipped. */
static int fix_shape(PrepSource *src, TilesReader *r, MaecError *err)
{
    for (size_t i = 0; i < src->num_items; i++) {
        const char *path = src->sources[src->items[i].source];
        Image img;
        MaecError ignored;
        if (load_tile(&img, path, &r->opt, &ignored))
            continue;
        src->height = img.height;
        src->width = img.width;
        src->channels = img.channels;
        r->first_path = xstrdup(path);
        image_free(&img);
        return 0;
    }
    return error_set(err, "none of the %zu images under %s could be read (the first: %s)", src->num_items,
                     r->opt.root, src->num_items ? src->sources[0] : "-");
}

int tiles_source(PrepSource *src, const TilesOptions *opt, MaecError *err)
{
    source_init(src, "tiles");
    source_set_description(src, "%s", opt->root);
    Listing root;
    if (list_folder(&root, opt->root, err))
        return -1;
    int rc = root.num_folders > 0 ? list_classes(src, &root, err) : 0;
    if (!rc && root.num_folders == 0)
        add_files(src, &root, -1);
    free_listing(&root);
    if (!rc && src->num_items == 0)
        rc = error_set(err, "%s holds no images (.tif .tiff .png .jpg .jpeg), neither directly nor in class folders",
                       opt->root);
    if (rc)
        return -1;
    TilesReader *r = xcalloc(1, sizeof *r, "tiles reader");
    r->opt = *opt;
    r->src = src;
    src->ctx = r;
    src->free_ctx = free_reader;
    src->read = read_tile;
    if (fix_shape(src, r, err))
        return -1;
    source_set_description(src, "image tiles from %s (%zu classes)", opt->root, src->num_classes);
    return 0;
}
