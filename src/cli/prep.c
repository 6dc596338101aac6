/* maec prep: converts tiles, whole-slide images, IDX files or synthetic images into the maec
 * dataset format (docs/formats.md). */
#include "maec/cli.h"
#include "maec/convert.h"
#include "maec/dist.h"
#include "maec/idx.h"
#include "maec/log.h"
#include "maec/parallel.h"
#include "maec/synthetic.h"
#include "maec/tiles.h"
#include "maec/wsi.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: maec prep tiles DIR... -o OUT.h5 [options]\n"
    "       maec prep wsi SLIDE... -o OUT.h5 [options]\n"
    "       maec prep idx IMAGES LABELS -o OUT.h5 [options]\n"
    "       maec prep synthetic -o OUT.h5 [options]\n"
    "\n"
    "Converts images into a maec dataset (docs/formats.md). Runs on one process or under\n"
    "mpiexec -n P; the output is the same for every P.\n"
    "\n"
    "tiles: DIR/CLASS/*.{tif,tiff,png,jpg,jpeg}, one class per folder name (images directly in DIR\n"
    "make an unlabeled dataset). 8-bit gray or RGB; TIFF strips or tiles, any compression.\n"
    "  --unlabeled         ignore class folders: every image is unlabeled\n"
    "  --mpp X             record the tiles' microns per pixel (NCT-CRC-HE: 0.5)\n"
    "  --resize N          scale each image so its shorter side is N pixels\n"
    "  --center-crop N     keep the central N x N pixels (after --resize)\n"
    "  --channels 1|3      convert every image to gray or RGB (default: as the first image)\n"
    "wsi: slides OpenSlide opens (Aperio .svs, tiled TIFF, ...).\n"
    "  --tile N            tile side in pixels (default 224)\n"
    "  --stride N          pixels between tiles (default: the tile side)\n"
    "  --mpp X             microns per pixel of the tiles (default: level 0 of each slide)\n"
    "  --min-tissue F      least tissue fraction of a kept tile, 0..1 (default 0.5)\n"
    "  --labels CSV        slide,label rows; tiles are unlabeled without it\n"
    "idx: MNIST-style IDX image and label files, gzip or plain.\n"
    "  --class-names LIST  a,b,c or @FILE with one name per line (default: 0..K-1)\n"
    "synthetic: labelled pattern images for tests and benchmarks.\n"
    "  --count N (1024)  --size N (32)  --channels C (3)  --classes K (10)\n"
    "\n"
    "Output:\n"
    "  -o, --output PATH   the dataset file (required)\n"
    "  --shards K          K files NAME-00000-of-0000K.h5, balanced, in a seeded random order\n"
    "  --val-fraction F    put a stratified fraction F into NAME-val.h5 (whole slides for wsi)\n"
    "  --seed S            seed of the shard order, the split and synthetic images (default 0)\n"
    "  --deflate L         compress images with deflate level 1-9 (default 0: none)\n"
    "  --force             replace existing output files\n"
    "  --strict            stop at the first unreadable input instead of skipping it\n"
    "  --threads T         decoding threads per process (default 1)\n"
    "  -q, --quiet         no progress lines\n"
    "  -h, --help          this text\n";

enum {
    OPT_RESIZE = 256, OPT_CROP, OPT_CHANNELS, OPT_TILE, OPT_STRIDE, OPT_MPP, OPT_MIN_TISSUE, OPT_LABELS,
    OPT_CLASS_NAMES, OPT_COUNT, OPT_SIZE, OPT_CLASSES, OPT_SHARDS, OPT_VAL, OPT_SEED, OPT_DEFLATE, OPT_FORCE,
    OPT_STRICT, OPT_THREADS, OPT_UNLABELED,
};

static const struct option long_options[] = {
    {"resize", required_argument, NULL, OPT_RESIZE},
    {"unlabeled", no_argument, NULL, OPT_UNLABELED},
    {"center-crop", required_argument, NULL, OPT_CROP},
    {"channels", required_argument, NULL, OPT_CHANNELS},
    {"tile", required_argument, NULL, OPT_TILE},
    {"stride", required_argument, NULL, OPT_STRIDE},
    {"mpp", required_argument, NULL, OPT_MPP},
    {"min-tissue", required_argument, NULL, OPT_MIN_TISSUE},
    {"labels", required_argument, NULL, OPT_LABELS},
    {"class-names", required_argument, NULL, OPT_CLASS_NAMES},
    {"count", required_argument, NULL, OPT_COUNT},
    {"size", required_argument, NULL, OPT_SIZE},
    {"classes", required_argument, NULL, OPT_CLASSES},
    {"output", required_argument, NULL, 'o'},
    {"shards", required_argument, NULL, OPT_SHARDS},
    {"val-fraction", required_argument, NULL, OPT_VAL},
    {"seed", required_argument, NULL, OPT_SEED},
    {"deflate", required_argument, NULL, OPT_DEFLATE},
    {"force", no_argument, NULL, OPT_FORCE},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Which kinds of input accept an option; the output options apply to all. */
typedef struct OptionKinds {
    int option;
    const char *kinds;
} OptionKinds;

static const OptionKinds kind_options[] = {
    {OPT_RESIZE, "tiles"}, {OPT_UNLABELED, "tiles"}, {OPT_CROP, "tiles"}, {OPT_CHANNELS, "tiles synthetic"}, {OPT_TILE, "wsi"},
    {OPT_STRIDE, "wsi"}, {OPT_MPP, "wsi tiles"}, {OPT_MIN_TISSUE, "wsi"}, {OPT_LABELS, "wsi"},
    {OPT_CLASS_NAMES, "idx"}, {OPT_COUNT, "synthetic"}, {OPT_SIZE, "synthetic"}, {OPT_CLASSES, "synthetic"},
};

typedef struct PrepArgs {
    const char *kind;
    ConvertOptions convert;
    TilesOptions tiles;
    WsiOptions wsi;
    SyntheticConfig synthetic;
    const char *class_names;
    int threads;
    bool quiet;
} PrepArgs;

static int check_kind(const char *kind, int option, const char *name)
{
    for (size_t i = 0; i < sizeof kind_options / sizeof *kind_options; i++)
        if (kind_options[i].option == option && !strstr(kind_options[i].kinds, kind))
            return cli_usage_error("prep", "--%s does not apply to 'prep %s' (only to: %s)", name, kind,
                                   kind_options[i].kinds);
    return 0;
}

static void set_option(PrepArgs *a, int option, const char *v)
{
    const char *name = cli_option_name(long_options, option);
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", name);
    switch (option) {
    case OPT_RESIZE: a->tiles.resize = (int)cli_parse_long("prep", flag, v, 1, 65536); break;
    case OPT_CROP: a->tiles.center_crop = (int)cli_parse_long("prep", flag, v, 1, 65536); break;
    case OPT_CHANNELS:
        a->tiles.channels = a->synthetic.channels = (int)cli_parse_long("prep", flag, v, 1, 3);
        if (a->tiles.channels == 2)
            exit(cli_usage_error("prep", "--channels must be 1 (gray) or 3 (RGB)"));
        break;
    case OPT_TILE: a->wsi.tile = (int)cli_parse_long("prep", flag, v, 8, 8192); break;
    case OPT_STRIDE: a->wsi.stride = (int)cli_parse_long("prep", flag, v, 1, 65536); break;
    case OPT_MPP: a->wsi.mpp = cli_parse_double("prep", flag, v, 0.01, 1000.0); break;
    case OPT_MIN_TISSUE: a->wsi.min_tissue = cli_parse_double("prep", flag, v, 0.0, 1.0); break;
    case OPT_LABELS: a->wsi.labels_csv = v; break;
    case OPT_CLASS_NAMES: a->class_names = v; break;
    case OPT_COUNT: a->synthetic.count = (size_t)cli_parse_long("prep", flag, v, 1, 1L << 40); break;
    case OPT_SIZE: a->synthetic.height = a->synthetic.width = (int)cli_parse_long("prep", flag, v, 4, 4096); break;
    case OPT_CLASSES: a->synthetic.classes = (int)cli_parse_long("prep", flag, v, 1, 1000); break;
    case OPT_SHARDS: a->convert.shards = (int)cli_parse_long("prep", flag, v, 1, 99999); break;
    case OPT_VAL: a->convert.val_fraction = cli_parse_double("prep", flag, v, 0.0, 0.9); break;
    case OPT_SEED: a->convert.seed = a->synthetic.seed = (uint64_t)cli_parse_long("prep", flag, v, 0, 1L << 62); break;
    case OPT_DEFLATE: a->convert.deflate = (int)cli_parse_long("prep", flag, v, 0, 9); break;
    case OPT_FORCE: a->convert.force = true; break;
    case OPT_STRICT: a->convert.strict = true; break;
    case OPT_UNLABELED: a->tiles.unlabeled = true; break;
    case OPT_THREADS: a->threads = (int)cli_parse_long("prep", flag, v, 1, 256); break;
    }
}

static void set_defaults(PrepArgs *a)
{
    memset(a, 0, sizeof *a);
    a->convert.shards = 1;
    a->wsi.tile = 224;
    a->wsi.min_tissue = 0.5;
    a->synthetic = (SyntheticConfig){.count = 1024, .height = 32, .width = 32, .channels = 3, .classes = 10};
    a->threads = 1;
}

/* Returns -1 when parsing went well, else the exit code (0 after --help). */
static int parse(PrepArgs *a, int argc, char **argv)
{
    set_defaults(a);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    a->kind = argv[1];
    if (strcmp(a->kind, "tiles") && strcmp(a->kind, "wsi") && strcmp(a->kind, "idx") && strcmp(a->kind, "synthetic"))
        return cli_usage_error("prep", "'%s' is not a kind of input: tiles, wsi, idx or synthetic", a->kind);
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "o:qh", long_options, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        if (c == '?')
            return cli_usage_error("prep", "unknown option or missing value");
        if (c == 'o')
            a->convert.output = optarg;
        else if (c == 'q')
            a->quiet = true;
        else if (check_kind(a->kind, c, cli_option_name(long_options, c)))
            return 2;
        else
            set_option(a, c, optarg);
    }
    if (!a->convert.output)
        return cli_usage_error("prep", "-o OUT.h5 is required");
    return -1;
}

/* The command line, recorded in every output file. */
static char *command_line(int argc, char **argv)
{
    size_t n = 8;
    for (int i = 0; i < argc; i++)
        n += strlen(argv[i]) + 1;
    char *s = malloc(n);
    if (!s)
        return NULL;
    strcpy(s, "maec");
    for (int i = 0; i < argc; i++) {
        strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

static int check_positionals(const PrepArgs *a, int n)
{
    int want = !strcmp(a->kind, "idx") ? 2 : !strcmp(a->kind, "synthetic") ? 0 : -1;
    if (want >= 0 && n != want)
        return cli_usage_error("prep", "'prep %s' takes %d input paths, got %d", a->kind, want, n);
    if (want < 0 && n < 1)
        return cli_usage_error("prep", "'prep %s' needs at least one %s", a->kind,
                               strcmp(a->kind, "wsi") ? "folder" : "slide");
    return 0;
}

static int make_source(PrepSource *src, PrepArgs *a, char **inputs, int n, MaecError *err)
{
    if (!strcmp(a->kind, "tiles")) {
        a->tiles.roots = inputs;
        a->tiles.num_roots = (size_t)n;
        int rc = tiles_source(src, &a->tiles, err);
        src->mpp = a->wsi.mpp; /* tiles carry no resolution of their own: only what the user says */
        return rc;
    }
    if (!strcmp(a->kind, "wsi")) {
        a->wsi.slides = inputs;
        a->wsi.num_slides = (size_t)n;
        return wsi_source(src, &a->wsi, err);
    }
    if (!strcmp(a->kind, "idx")) {
        char **names = NULL;
        size_t num = 0;
        if (a->class_names && source_parse_class_names(a->class_names, &names, &num, err)) {
            source_init(src, "images"); /* so that the caller can free it like any other */
            return -1;
        }
        return idx_source(src, inputs[0], inputs[1], names, num, err);
    }
    synthetic_source(src, &a->synthetic);
    return 0;
}

int cli_prep(int argc, char **argv)
{
    PrepArgs a;
    char *command = command_line(argc, argv); /* before getopt_long reorders argv */
    int code = parse(&a, argc, argv);
    if (code >= 0) {
        free(command);
        return code;
    }
    code = check_positionals(&a, argc - optind);
    if (code) {
        free(command);
        return code;
    }
    log_set_quiet(a.quiet);
    parallel_init(a.threads);
    a.convert.command = command;
    PrepSource src;
    MaecError err = {""};
    int rc = make_source(&src, &a, argv + optind, argc - optind, &err);
    /* Every rank lists the inputs; they go on together or stop together. */
    int rank0_rc = rc;
    dist_bcast(&rank0_rc, sizeof rank0_rc, 0);
    bool any_failed = dist_any(rc != 0);
    bool report = rc && (dist_rank() == 0 || rank0_rc == 0);
    if (!any_failed) {
        rc = convert_run(&src, &a.convert, &err);
        report = rc && dist_rank() == 0;
    }
    source_free(&src);
    parallel_shutdown();
    free(command);
    if (report)
        fprintf(stderr, "maec prep: error: %s\n", err.msg);
    return rc || any_failed ? 1 : 0;
}
