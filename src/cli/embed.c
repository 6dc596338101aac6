/* maec embed: features of a pretrained encoder for every image of a dataset, the input of
 * `maec eval knn|linprobe`. Under MPI each rank embeds a contiguous run of whole batches and
 * rank 0 writes the file, in dataset order: for a given --batch, the file does not depend on
 * the rank count, bit for bit. */
#include "maec/cli.h"
#include "maec/dataset.h"
#include "maec/dist.h"
#include "maec/embed.h"
#include "maec/features.h"
#include "maec/log.h"
#include "maec/parallel.h"
#include "maec/timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct EmbedArgs {
    const char *checkpoint, *data, *output;
    EmbedPooling pooling;
    long batch, threads;
    bool random_init, force, quiet;
} EmbedArgs;

static const char usage[] =
    "usage: [mpiexec -n N] maec embed CHECKPOINT DATA -o FEATURES.h5 [options]\n"
    "\n"
    "Runs the checkpoint's encoder on every whole image of DATA (a dataset file, glob or list;\n"
    "no masking) and writes one feature vector per image with its label (docs/formats.md,\n"
    "\"Features\"). Images are resampled to the model's size and normalised as in training.\n"
    "\n"
    "  -o, --output PATH   the features file (required)\n"
    "  --pool cls|mean     the CLS token, or the mean of the patch tokens (default cls);\n"
    "                      both after the encoder's final LayerNorm\n"
    "  --random-init       the checkpoint's architecture with fresh random weights (a baseline)\n"
    "  --batch N           images per forward pass (default 64)\n"
    "  --threads N         worker threads per rank (default 1)\n"
    "  --force             replace an existing output\n"
    "  -q, --quiet         no progress output\n"
    "  -h, --help          this text\n";

static int parse_args(int argc, char **argv, EmbedArgs *a)
{
    *a = (EmbedArgs){.pooling = EMBED_POOL_CLS, .batch = 64, .threads = 1};
    const char *positional[2] = {0};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            fputs(usage, stdout);
            exit(0);
        } else if ((!strcmp(arg, "-o") || !strcmp(arg, "--output")) && value) {
            a->output = argv[++i];
        } else if (!strcmp(arg, "--pool") && value) {
            if (strcmp(value, "cls") && strcmp(value, "mean"))
                return cli_usage_error("embed", "--pool must be cls or mean, not '%s'", value);
            a->pooling = !strcmp(argv[++i], "mean") ? EMBED_POOL_MEAN : EMBED_POOL_CLS;
        } else if (!strcmp(arg, "--batch") && value) {
            a->batch = cli_parse_long("embed", "--batch", argv[++i], 1, 1 << 16);
        } else if (!strcmp(arg, "--threads") && value) {
            a->threads = cli_parse_long("embed", "--threads", argv[++i], 1, 1024);
        } else if (!strcmp(arg, "--random-init")) {
            a->random_init = true;
        } else if (!strcmp(arg, "--force")) {
            a->force = true;
        } else if (!strcmp(arg, "-q") || !strcmp(arg, "--quiet")) {
            a->quiet = true;
        } else if (arg[0] == '-' || npos == 2) {
            return cli_usage_error("embed", "unexpected argument '%s'", arg);
        } else {
            positional[npos++] = arg;
        }
    }
    if (npos < 2 || !a->output)
        return cli_usage_error("embed", "expected CHECKPOINT DATA -o FEATURES.h5");
    a->checkpoint = positional[0], a->data = positional[1];
    return 0;
}

/* rows [begin, end) of ds: features [end - begin, D] */
static int embed_range(Embedder *e, Dataset *ds, size_t begin, size_t end, float *features, MaecError *err)
{
    const size_t D = embedder_dim(e), B = e->batch;
    uint8_t *raw = xmalloc(B * dataset_sample_bytes(ds), "embedding batch");
    size_t *indices = xmalloc(B * sizeof *indices, "embedding indices");
    double start = now_seconds(), last = start;
    int rc = 0;
    for (size_t first = begin; first < end && !rc; first += B) {
        size_t n = end - first < B ? end - first : B;
        for (size_t i = 0; i < n; i++)
            indices[i] = first + i;
        rc = dataset_read_many(ds, indices, n, raw, NULL, err);
        if (rc)
            break;
        embedder_prepare(e, raw, n);
        embedder_features(e, n, features + (first - begin) * D);
        if (now_seconds() - last > 5 || first + n == end) {
            last = now_seconds();
            log_info("embed: %zu / %zu images on rank 0 (%.0f images/s)", first + n - begin, end - begin,
                     (double)(first + n - begin) / (last - start));
        }
    }
    free(raw), free(indices);
    return rc;
}

static int check_inputs(const Pretrained *p, const Dataset *ds, const EmbedArgs *a, MaecError *err)
{
    if (dataset_channels(ds) != p->model->in_chans)
        return error_set(err, "%s has %d channels, the model of %s %d: embed a dataset like the training one",
                         a->data, dataset_channels(ds), a->checkpoint, p->model->in_chans);
    return 0;
}

static int write_features(const EmbedArgs *a, const Dataset *ds, float *values, size_t D, MaecError *err)
{
    size_t K = (size_t)dataset_num_classes(ds);
    char **names = xcalloc(K + 1, sizeof *names, "class names");
    for (size_t c = 0; c < K; c++)
        names[c] = (char *)dataset_class_name(ds, (int)c);
    Features f = {.count = dataset_count(ds), .dim = D, .values = values,
                  .labels = (int32_t *)dataset_labels(ds), .num_classes = K, .class_names = names,
                  .source_checkpoint = (char *)a->checkpoint, .source_dataset = (char *)a->data,
                  .pooling = a->pooling == EMBED_POOL_MEAN ? "mean" : "cls"};
    int rc = features_write(a->output, &f, a->force, err);
    free(names);
    return rc;
}

static int run(const EmbedArgs *a, Pretrained *p, Dataset *ds, MaecError *err)
{
    /* Ranks take whole batches of the same global grid: a matrix product's rounding depends on
     * its row count, so every image must meet the same batch companions on any rank count. */
    const size_t N = dataset_count(ds), B = (size_t)a->batch;
    size_t first_batch, end_batch;
    dataset_rank_range((N + B - 1) / B, dist_rank(), dist_size(), &first_batch, &end_batch);
    const size_t begin = first_batch * B < N ? first_batch * B : N, end = end_batch * B < N ? end_batch * B : N;
    Embedder e;
    embedder_init(&e, p, (size_t)a->batch, dataset_height(ds), dataset_width(ds), a->pooling);
    const size_t D = embedder_dim(&e);
    float *mine = xcalloc((end - begin) * D + 1, sizeof(float), "features");
    int rc = embed_range(&e, ds, begin, end, mine, err);
    embedder_free(&e);
    if (cli_failed_anywhere("embed", rc, err)) {
        free(mine);
        return 1;
    }
    float *all = dist_rank() == 0 ? xcalloc(N * D, sizeof(float), "all features") : NULL;
    dist_gather_rows(mine, end - begin, D * sizeof(float), all, 0);
    free(mine);
    rc = dist_rank() == 0 ? write_features(a, ds, all, D, err) : 0;
    if (!cli_failed_anywhere("embed", rc, err))
        log_info("embed: wrote %s: %zu images x %zu features (%s)", a->output, N, D,
                 a->pooling == EMBED_POOL_MEAN ? "mean of patch tokens" : "CLS token");
    free(all);
    return rc ? 1 : 0;
}

int cli_embed(int argc, char **argv)
{
    EmbedArgs a;
    if (parse_args(argc, argv, &a))
        return 2;
    log_set_quiet(a.quiet);
    parallel_init((int)a.threads);
    Pretrained p;
    MaecError err = {{0}};
    int rc = pretrained_open(&p, a.checkpoint, a.random_init, 0, &err);
    if (cli_failed_anywhere("embed", rc, &err)) {
        parallel_shutdown();
        return 1;
    }
    Dataset *ds = dataset_open(a.data, &err);
    rc = !ds || check_inputs(&p, ds, &a, &err) ? -1 : 0;
    if (!cli_failed_anywhere("embed", rc, &err))
        rc = run(&a, &p, ds, &err);
    else
        rc = 1;
    if (ds)
        dataset_close(ds);
    pretrained_close(&p);
    parallel_shutdown();
    return rc;
}
