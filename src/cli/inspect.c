/* maec inspect: what a dataset or checkpoint file holds, for people or (--json) for scripts. */
#include "maec/checkpoint.h"
#include "maec/cli.h"
#include "maec/config.h"
#include "maec/dataset.h"
#include "maec/h5.h"
#include "maec/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: maec inspect FILE... [--json]\n"
    "\n"
    "Describes maec dataset files: samples, shape, classes and their counts, per-channel mean\n"
    "and std, mpp, source, split and shard, skipped inputs and the command that made the file.\n"
    "Describes checkpoints (maec train): step, epoch position, batch, ranks and mode that wrote\n"
    "it, objective, model shape, code version and the run's resolved job configuration.\n"
    "A file that is neither is reported with the reason; the exit status is then 1.\n"
    "\n"
    "  --json      one JSON object per file, one per line\n"
    "  -h, --help  this text\n";

/* What the Dataset API does not expose: the provenance attributes and the skipped inputs. */
typedef struct Provenance {
    char *split, *command, *first_skipped, *first_reason;
    int32_t shard_index, shard_count;
    size_t skipped;
} Provenance;

static void read_provenance(Provenance *p, const char *path)
{
    memset(p, 0, sizeof *p);
    MaecError err;
    hid_t f = h5_open_file(path, false, &err);
    if (f < 0)
        return;
    if (h5_attr_read_string(f, "split", &p->split, &err))
        p->split = NULL;
    if (h5_attr_read_string(f, "command", &p->command, &err))
        p->command = NULL;
    h5_attr_read_numbers(f, "shard_index", H5T_NATIVE_INT32, &p->shard_index, 1, &err);
    h5_attr_read_numbers(f, "shard_count", H5T_NATIVE_INT32, &p->shard_count, 1, &err);
    char **sources = NULL, **reasons = NULL;
    size_t n = 0, m = 0;
    if (!h5_read_strings(f, "meta/skipped/source", &sources, &n, &err) &&
        !h5_read_strings(f, "meta/skipped/reason", &reasons, &m, &err) && n > 0 && m == n) {
        p->first_skipped = strdup(sources[0]);
        p->first_reason = strdup(reasons[0]);
    }
    p->skipped = n;
    h5_strings_free(sources, n);
    h5_strings_free(reasons, m);
    h5_close_file(f);
}

static void free_provenance(Provenance *p)
{
    free(p->split);
    free(p->command);
    free(p->first_skipped);
    free(p->first_reason);
}

static void class_counts(size_t *counts, size_t *unlabeled, const Dataset *ds)
{
    const int32_t *labels = dataset_labels(ds);
    *unlabeled = 0;
    for (size_t i = 0; i < dataset_count(ds); i++) {
        if (labels[i] < 0)
            (*unlabeled)++;
        else
            counts[labels[i]]++;
    }
}

static void print_json_numbers(const char *key, const double *v, int n)
{
    printf(",\"%s\":[", key);
    for (int c = 0; c < n; c++)
        printf("%s%.17g", c ? "," : "", v[c]);
    putchar(']');
}

static void print_json(const char *path, const Dataset *ds, const Provenance *p, const size_t *counts,
                       size_t unlabeled)
{
    printf("{\"file\":");
    json_write_string(stdout, path);
    printf(",\"format\":\"%s\",\"format_version\":%d,\"count\":%zu,\"height\":%d,\"width\":%d,\"channels\":%d",
           DATASET_FORMAT, DATASET_FORMAT_VERSION, dataset_count(ds), dataset_height(ds), dataset_width(ds),
           dataset_channels(ds));
    printf(",\"classes\":[");
    for (int c = 0; c < dataset_num_classes(ds); c++) {
        printf("%s{\"name\":", c ? "," : "");
        json_write_string(stdout, dataset_class_name(ds, c));
        printf(",\"count\":%zu}", counts[c]);
    }
    printf("],\"unlabeled\":%zu", unlabeled);
    print_json_numbers("mean", dataset_mean(ds), dataset_channels(ds));
    print_json_numbers("std", dataset_std(ds), dataset_channels(ds));
    printf(",\"mpp\":%.17g,\"source\":", dataset_mpp(ds));
    json_write_string(stdout, dataset_source(ds));
    printf(",\"split\":");
    json_write_string(stdout, p->split);
    printf(",\"shard_index\":%d,\"shard_count\":%d,\"skipped\":%zu,\"command\":", p->shard_index, p->shard_count,
           p->skipped);
    json_write_string(stdout, p->command);
    printf("}\n");
}

static void print_text(const char *path, const Dataset *ds, const Provenance *p, const size_t *counts,
                       size_t unlabeled)
{
    printf("%s\n  format     %s version %d, split %s, shard %d of %d\n", path, DATASET_FORMAT, DATASET_FORMAT_VERSION,
           p->split ? p->split : "?", p->shard_index + 1, p->shard_count);
    printf("  samples    %zu of %dx%dx%d (H x W x C, uint8)\n", dataset_count(ds), dataset_height(ds),
           dataset_width(ds), dataset_channels(ds));
    printf("  classes    %d:", dataset_num_classes(ds));
    for (int c = 0; c < dataset_num_classes(ds); c++)
        printf(" %s=%zu", dataset_class_name(ds, c), counts[c]);
    printf("%s unlabeled=%zu\n", dataset_num_classes(ds) ? "," : "", unlabeled);
    printf("  mean/std  ");
    for (int c = 0; c < dataset_channels(ds); c++)
        printf(" %.4f/%.4f", dataset_mean(ds)[c], dataset_std(ds)[c]);
    printf("\n  mpp        %g%s\n  source     %s\n", dataset_mpp(ds), dataset_mpp(ds) > 0 ? "" : " (unknown)",
           dataset_source(ds));
    printf("  skipped    %zu", p->skipped);
    if (p->first_skipped)
        printf(" (first: %s: %s)", p->first_skipped, p->first_reason);
    printf("\n  command    %s\n", p->command ? p->command : "?");
}

static void print_checkpoint(const char *path, const CheckpointMeta *m, const ModelConfig *mc, bool json)
{
    if (json) {
        printf("{\"file\":");
        json_write_string(stdout, path);
        printf(",\"format\":\"%s\",\"format_version\":%d,\"step\":%ld,\"global_batch\":%ld,\"world_size\":%d,"
               "\"dist_mode\":\"%s\",\"objective\":\"%s\",\"code_version\":",
               CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, m->step, m->global_batch, m->world_size, m->dist_mode,
               m->objective);
        json_write_string(stdout, m->code_version);
        printf(",\"config\":");
        json_write_string(stdout, m->config_yaml);
        printf("}\n");
        return;
    }
    printf("%s\n  format     %s version %d, written by maec %s\n", path, CHECKPOINT_FORMAT,
           CHECKPOINT_FORMAT_VERSION, m->code_version);
    printf("  step       %ld (global batch %ld; %d ranks, %s)\n", m->step, m->global_batch, m->world_size,
           m->dist_mode);
    printf("  objective  %s; model %dpx patch %d x %d channels, encoder %d x %d (%d heads), decoder %d x %d "
           "(%d heads)\n", m->objective, mc->img_size, mc->patch_size, mc->in_chans, mc->embed_dim, mc->depth,
           mc->num_heads, mc->decoder_embed_dim, mc->decoder_depth, mc->decoder_num_heads);
    printf("  config     (resolved job configuration)\n");
    for (const char *line = m->config_yaml; *line;) {
        const char *end = strchr(line, '\n');
        int len = end ? (int)(end - line) : (int)strlen(line);
        printf("    %.*s\n", len, line);
        line += len + (end != NULL);
    }
}

static int inspect_checkpoint(const char *path, bool json)
{
    CheckpointMeta meta;
    JobConfig cfg;
    MaecError err;
    if (checkpoint_read_meta(path, &meta, &err)) {
        fprintf(stderr, "maec inspect: %s\n", err.msg);
        return 1;
    }
    int rc = config_load_string(meta.config_yaml, path, &cfg, &err);
    if (rc)
        fprintf(stderr, "maec inspect: %s: its stored configuration: %s\n", path, err.msg);
    else
        print_checkpoint(path, &meta, &cfg.model, json);
    config_free(&cfg);
    checkpoint_meta_free(&meta);
    return rc ? 1 : 0;
}

/* The file's 'format' attribute, or "" (the dataset reader then explains what is wrong). */
static void file_format(const char *path, char *format, size_t size)
{
    MaecError err;
    char *text = NULL;
    format[0] = '\0';
    hid_t file = h5_open_file(path, false, &err);
    if (file < 0)
        return;
    h5_lock();
    if (h5_attr_exists(file, "format") && h5_attr_read_string(file, "format", &text, &err) == 0)
        snprintf(format, size, "%s", text);
    h5_unlock();
    free(text);
    h5_close_file(file);
}

static int inspect_file(const char *path, bool json)
{
    char format[64];
    file_format(path, format, sizeof format);
    if (!strcmp(format, CHECKPOINT_FORMAT))
        return inspect_checkpoint(path, json);

    MaecError err;
    DatasetOpenOptions options = {.memory_limit = 0};
    Dataset *ds = dataset_open_with(path, &options, &err);
    if (!ds) {
        fprintf(stderr, "maec inspect: %s\n", err.msg);
        return 1;
    }
    Provenance p;
    read_provenance(&p, path);
    size_t unlabeled, *counts = calloc((size_t)dataset_num_classes(ds) + 1, sizeof *counts);
    if (!counts) {
        fprintf(stderr, "maec inspect: out of memory\n");
        return 1;
    }
    class_counts(counts, &unlabeled, ds);
    if (json)
        print_json(path, ds, &p, counts, unlabeled);
    else
        print_text(path, ds, &p, counts, unlabeled);
    free(counts);
    free_provenance(&p);
    dataset_close(ds);
    return 0;
}

int cli_inspect(int argc, char **argv)
{
    bool json = false;
    int files = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (argv[i][0] == '-')
            return cli_usage_error("inspect", "unknown option %s", argv[i]);
        else
            files++;
    }
    if (files == 0)
        return cli_usage_error("inspect", "name at least one dataset file");
    int rc = 0;
    for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-')
            rc |= inspect_file(argv[i], json);
    return rc;
}
