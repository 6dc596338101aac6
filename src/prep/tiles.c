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

static void sort_names(char **names, size_t n)
{
    if (n > 0) /* an empty list may be NULL, which qsort must not see */
        qsort(names, n, sizeof *names, compare_names);
}

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
    sort_names(l->files, l->num_files);
    sort_names(l->folders, l->num_folders);
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

static const char *folder_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Adds the images of the folder named name in each root that has one, with label. */
static int add_class(PrepSource *src, const Listing *roots, size_t num_roots, const char *name, int32_t label,
                     MaecError *err)
{
    size_t before = src->num_items;
    for (size_t r = 0; r < num_roots; r++)
        for (size_t f = 0; f < roots[r].num_folders; f++) {
            if (strcmp(folder_name(roots[r].folders[f]), name))
                continue;
            Listing l;
            if (list_folder(&l, roots[r].folders[f], err))
                return -1;
            add_files(src, &l, label);
            free_listing(&l);
        }
    if (label >= 0 && src->num_items == before)
        return error_set(err, "the class folder '%s' holds no images (.tif, .tiff, .png, .jpg, .jpeg): a class "
                         "without samples cannot be learned or split; add its images or remove the folder", name);
    return 0;
}

/* One class per distinct sub-folder name over all roots, in name order (some root has one). */
static int list_classes(PrepSource *src, const Listing *roots, size_t num_roots, MaecError *err)
{
    char **names = NULL;
    size_t n = 0;
    for (size_t r = 0; r < num_roots; r++) {
        if (roots[r].num_files > 0) {
            free(names);
            return error_set(err, "%s is an image file next to class folders; put every image in a class folder, "
                                  "or pass --unlabeled", roots[r].files[0]);
        }
        for (size_t f = 0; f < roots[r].num_folders; f++)
            push(&names, &n, (char *)folder_name(roots[r].folders[f]));
    }
    sort_names(names, n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(names[k - 1], names[i]))
            names[k++] = names[i];
    for (size_t c = 0; c < k; c++)
        names[c] = xstrdup(names[c]);
    source_set_classes(src, names, k);
    for (size_t c = 0; c < k; c++)
        if (add_class(src, roots, num_roots, src->class_names[c], (int32_t)c, err))
            return -1;
    return 0;
}

/* Every image in the roots and (with --unlabeled) their sub-folders, without labels. */
static int list_unlabeled(PrepSource *src, const Listing *roots, size_t num_roots, MaecError *err)
{
    for (size_t r = 0; r < num_roots; r++) {
        add_files(src, &roots[r], -1);
        for (size_t f = 0; f < roots[r].num_folders; f++)
            if (add_class(src, &roots[r], 1, folder_name(roots[r].folders[f]), -1, err))
                return -1;
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
    return error_set(err, "none of the %zu images could be read (the first: %s)", src->num_items,
                     src->num_items ? src->sources[0] : "-");
}

static int list_inputs(PrepSource *src, const TilesOptions *opt, MaecError *err)
{
    Listing *roots = xcalloc(opt->num_roots, sizeof *roots, "folder listings");
    bool any_folders = false;
    int rc = 0;
    for (size_t r = 0; r < opt->num_roots && !rc; r++) {
        rc = list_folder(&roots[r], opt->roots[r], err);
        any_folders = any_folders || roots[r].num_folders > 0;
    }
    if (!rc)
        rc = any_folders && !opt->unlabeled ? list_classes(src, roots, opt->num_roots, err)
                                            : list_unlabeled(src, roots, opt->num_roots, err);
    for (size_t r = 0; r < opt->num_roots; r++)
        free_listing(&roots[r]);
    free(roots);
    if (!rc && src->num_items == 0)
        rc = error_set(err, "%s%s holds no images (.tif .tiff .png .jpg .jpeg), neither directly nor in class folders",
                       opt->roots[0], opt->num_roots > 1 ? " (and the other folders)" : "");
    return rc;
}

int tiles_source(PrepSource *src, const TilesOptions *opt, MaecError *err)
{
    source_init(src, "tiles");
    if (list_inputs(src, opt, err))
        return -1;
    TilesReader *r = xcalloc(1, sizeof *r, "tiles reader");
    r->opt = *opt;
    r->src = src;
    src->ctx = r;
    src->free_ctx = free_reader;
    src->read = read_tile;
    if (fix_shape(src, r, err))
        return -1;
    source_set_description(src, "image tiles from %s%s (%zu classes)", opt->roots[0],
                           opt->num_roots > 1 ? " and other folders" : "", src->num_classes);
    return 0;
}
