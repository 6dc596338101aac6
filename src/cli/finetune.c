/* maec eval finetune: few-shot fine-tuning of a pretrained encoder (finetune.h), repeated over
 * folds of stratified, seeded samples of the training set, scored on the whole test set. */
#include "maec/cli.h"
#include "maec/dataset.h"
#include "maec/embed.h"
#include "maec/finetune.h"
#include "maec/json.h"
#include "maec/log.h"
#include "maec/metrics.h"
#include "maec/parallel.h"
#include "maec/timer.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct FinetuneArgs {
    const char *checkpoint, *train, *test, *json;
    long per_class, folds, threads;
    bool random_init, quiet;
    FinetuneOptions opt;
} FinetuneArgs;

static const char usage[] =
    "usage: maec eval finetune CHECKPOINT --train DATA --test DATA [options]\n"
    "\n"
    "Few-shot fine-tuning as MAE's main_finetune.py (global pooling): the checkpoint's encoder,\n"
    "the mean of its patch tokens, a new LayerNorm and linear head; cross-entropy with label\n"
    "smoothing, AdamW with layer-wise lr decay, warm-up then cosine; random resized crop and\n"
    "horizontal flip. Each fold draws --per-class labelled images of every class from --train\n"
    "(stratified, seeded) and scores the whole --test set; the folds' mean and spread are reported.\n"
    "\n"
    "  --per-class N        labelled images per class (default 10)\n"
    "  --folds N            repetitions with other samples (default 3)\n"
    "  --epochs N           (default 30)      --batch N          (default 16)\n"
    "  --blr X              peak lr = blr * batch / 256 (default 2e-2)\n"
    "  --layer-decay X      (default 0.75)    --weight-decay X   (default 0.05)\n"
    "  --label-smoothing X  (default 0.1)     --warmup-epochs X  (default 5)\n"
    "  --crop-min X         least area fraction of the random crop (default 0.5)\n"
    "  --no-hflip           no horizontal flips\n"
    "  --random-init        the checkpoint's architecture from random weights: training from scratch\n"
    "  --seed S             (default 0)       --threads N        (default 1)\n"
    "  --json OUT           also write the results as JSON to OUT\n"
    "  -q, --quiet          only the final summary\n";

/* Returns 1 when opt is one of the numeric options (value parsed, or exit 2), else 0. */
static int parse_number_option(FinetuneArgs *a, const char *opt, const char *value)
{
    static const char *const cmd = "eval finetune";
    FinetuneOptions *o = &a->opt;
    const struct { const char *name; long *target; long max; } longs[] = {
        {"--per-class", &a->per_class, 1 << 20}, {"--folds", &a->folds, 1000}, {"--threads", &a->threads, 1024}};
    const struct { const char *name; double *target; double max; } doubles[] = {
        {"--blr", &o->blr, 10}, {"--layer-decay", &o->layer_decay, 1}, {"--weight-decay", &o->weight_decay, 10},
        {"--label-smoothing", &o->label_smoothing, 0.99}, {"--warmup-epochs", &o->warmup_epochs, 1e6},
        {"--crop-min", &o->crop_scale_min, 1}};
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++)
        if (!strcmp(opt, longs[i].name)) {
            *longs[i].target = cli_parse_long(cmd, opt, value, 1, longs[i].max);
            return 1;
        }
    for (size_t i = 0; i < sizeof doubles / sizeof doubles[0]; i++)
        if (!strcmp(opt, doubles[i].name)) {
            *doubles[i].target = cli_parse_double(cmd, opt, value, 0, doubles[i].max);
            return 1;
        }
    if (!strcmp(opt, "--epochs"))
        o->epochs = (int)cli_parse_long(cmd, opt, value, 1, 100000);
    else if (!strcmp(opt, "--batch"))
        o->batch = (size_t)cli_parse_long(cmd, opt, value, 1, 4096);
    else if (!strcmp(opt, "--seed"))
        o->seed = (uint64_t)cli_parse_long(cmd, opt, value, 0, 1L << 40);
    else
        return 0;
    return 1;
}

static int parse_args(int argc, char **argv, FinetuneArgs *a)
{
    *a = (FinetuneArgs){.per_class = 10, .folds = 3, .threads = 1, .opt = finetune_defaults()};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            fputs(usage, stdout);
            exit(0);
        } else if (!strcmp(arg, "--no-hflip")) {
            a->opt.hflip = false;
        } else if (!strcmp(arg, "--random-init")) {
            a->random_init = true;
        } else if (!strcmp(arg, "-q") || !strcmp(arg, "--quiet")) {
            a->quiet = true;
        } else if (value && (!strcmp(arg, "--train") || !strcmp(arg, "--test") || !strcmp(arg, "--json"))) {
            *(arg[2] == 't' && arg[3] == 'r' ? &a->train : arg[2] == 't' ? &a->test : &a->json) = argv[++i];
        } else if (value && parse_number_option(a, arg, value)) {
            i++;
        } else if (arg[0] == '-' || a->checkpoint) {
            return cli_usage_error("eval finetune", "unexpected argument '%s' (or a missing value)", arg);
        } else {
            a->checkpoint = arg;
        }
    }
    if (!a->checkpoint || !a->train || !a->test)
        return cli_usage_error("eval finetune", "expected CHECKPOINT --train DATA --test DATA");
    return 0;
}

static int check_datasets(const Dataset *train, const Dataset *test, const FinetuneArgs *a, int channels,
                          MaecError *err)
{
    int K = dataset_num_classes(train);
    if (K < 2)
        return error_set(err, "%s has %d classes; fine-tuning needs a labelled dataset of 2 or more", a->train, K);
    if (dataset_num_classes(test) != K)
        return error_set(err, "%s has %d classes, %s %d: train and test must share their classes", a->train, K,
                         a->test, dataset_num_classes(test));
    for (int k = 0; k < K; k++)
        if (strcmp(dataset_class_name(train, k), dataset_class_name(test, k)))
            return error_set(err, "class %d is '%s' in %s but '%s' in %s", k, dataset_class_name(train, k), a->train,
                             dataset_class_name(test, k), a->test);
    for (size_t i = 0; i < dataset_count(test); i++)
        if (dataset_labels(test)[i] < 0)
            return error_set(err, "%s: sample %zu is unlabeled; the test set must be labelled", a->test, i);
    if (dataset_channels(train) != channels || dataset_channels(test) != channels)
        return error_set(err, "the model of %s takes %d channels; %s has %d and %s %d", a->checkpoint, channels,
                         a->train, dataset_channels(train), a->test, dataset_channels(test));
    return 0;
}

typedef struct FoldResult {
    double loss, accuracy, balanced_accuracy, macro_f1, seconds;
} FoldResult;

static int run_fold(const FinetuneArgs *a, const Pretrained *p, Dataset *train, Dataset *test, int fold,
                    Metrics *m, FoldResult *r, MaecError *err)
{
    const size_t K = (size_t)dataset_num_classes(train), n = K * (size_t)a->per_class;
    size_t *chosen = xmalloc(n * sizeof *chosen, "few-shot samples");
    int32_t *predicted = xmalloc(dataset_count(test) * sizeof *predicted, "predictions");
    double start = now_seconds();
    int rc = fewshot_sample(chosen, dataset_labels(train), dataset_count(train), (int)K, (size_t)a->per_class,
                            a->opt.seed, fold, err);
    if (!rc) {
        Classifier c;
        FinetuneOptions o = a->opt;
        o.seed = a->opt.seed * 1000 + (uint64_t)fold;
        classifier_init(&c, p, K, o.batch, o.seed);
        r->loss = classifier_train(&c, train, chosen, n, &o, err);
        rc = isnan(r->loss) ? -1 : classifier_predict(&c, test, predicted, err);
        classifier_free(&c);
    }
    if (!rc) {
        metrics_compute(m, dataset_labels(test), predicted, dataset_count(test), K);
        *r = (FoldResult){r->loss, m->accuracy, m->balanced_accuracy, m->macro_f1, now_seconds() - start};
        log_info("fold %d: %zu training images, final loss %.4f, test accuracy %.4f, balanced %.4f, macro-F1 "
                 "%.4f (%.0f s)", fold, n, r->loss, r->accuracy, r->balanced_accuracy, r->macro_f1, r->seconds);
    }
    free(chosen), free(predicted);
    return rc;
}

/* One score over the folds: FoldResult is a run of doubles, so a score is a strided column. */
static void mean_std(const FoldResult *r, int n, size_t field, double *mean, double *sd)
{
    metrics_mean_std((const double *)((const char *)r + field), (size_t)n, sizeof *r / sizeof(double), mean, sd);
}

static const struct { const char *name; size_t field; } summary_fields[] = {
    {"accuracy", offsetof(FoldResult, accuracy)},
    {"balanced_accuracy", offsetof(FoldResult, balanced_accuracy)},
    {"macro_f1", offsetof(FoldResult, macro_f1)},
};

static void print_summary(const FinetuneArgs *a, const FoldResult *r, int folds)
{
    printf("fine-tune %s%s: %ld per class, %d folds, %d epochs\n", a->checkpoint,
           a->random_init ? " (random init: from scratch)" : "", a->per_class, folds, a->opt.epochs);
    for (size_t i = 0; i < 3; i++) {
        double mean, sd;
        mean_std(r, folds, summary_fields[i].field, &mean, &sd);
        printf("  %-18s %.4f +- %.4f\n", summary_fields[i].name, mean, sd);
    }
}

/* The class names of ds, for the metrics printers (free the array, not the names). */
static const char **class_names_of(const Dataset *ds)
{
    const char **names = xcalloc((size_t)dataset_num_classes(ds) + 1, sizeof *names, "class names");
    for (int k = 0; k < dataset_num_classes(ds); k++)
        names[k] = dataset_class_name(ds, k);
    return names;
}

static int write_json(const FinetuneArgs *a, const FoldResult *r, int folds, const Metrics *last,
                      const Dataset *test, MaecError *err)
{
    FILE *out = fopen(a->json, "w");
    if (!out)
        return error_set(err, "cannot write %s: check the folder exists and is writable", a->json);
    fprintf(out, "{\"method\":\"finetune\",\"checkpoint\":");
    json_write_string(out, a->checkpoint);
    fprintf(out, ",\"random_init\":%s,\"per_class\":%ld,\"folds\":%d,\"epochs\":%d", a->random_init ? "true" : "false",
            a->per_class, folds, a->opt.epochs);
    for (size_t i = 0; i < 3; i++) {
        double mean, sd;
        mean_std(r, folds, summary_fields[i].field, &mean, &sd);
        fprintf(out, ",\"%s\":%.6f,\"%s_std\":%.6f", summary_fields[i].name, mean, summary_fields[i].name, sd);
    }
    fprintf(out, ",\"fold_accuracy\":[");
    for (int f = 0; f < folds; f++)
        fprintf(out, "%s%.6f", f ? "," : "", r[f].accuracy);
    fprintf(out, "],\"last_fold\":{");
    const char **names = class_names_of(test);
    metrics_write_json(out, last, names);
    free(names);
    fprintf(out, "}}\n");
    return fclose(out) == 0 ? 0 : error_set(err, "writing %s failed (disk full?)", a->json);
}

static int run(const FinetuneArgs *a, const Pretrained *p, Dataset *train, Dataset *test, MaecError *err)
{
    FoldResult *r = xcalloc((size_t)a->folds, sizeof *r, "fold results");
    Metrics m = {0};
    int rc = 0;
    for (int f = 0; f < a->folds && !rc; f++) {
        if (f > 0)
            metrics_free(&m);
        rc = run_fold(a, p, train, test, f, &m, &r[f], err);
    }
    if (!rc) {
        if (!a->quiet) {
            const char **names = class_names_of(test);
            printf("last fold:\n");
            metrics_print(stdout, &m, names);
            free(names);
        }
        print_summary(a, r, (int)a->folds);
        rc = a->json ? write_json(a, r, (int)a->folds, &m, test, err) : 0;
    }
    metrics_free(&m);
    free(r);
    return rc;
}

int cli_eval_finetune(int argc, char **argv)
{
    FinetuneArgs a;
    if (parse_args(argc, argv, &a))
        return 2;
    log_set_quiet(a.quiet);
    parallel_init((int)a.threads);
    MaecError err = {""};
    Pretrained p;
    Dataset *train = NULL, *test = NULL;
    int rc = pretrained_open(&p, a.checkpoint, a.random_init, a.opt.seed, &err);
    if (!rc) {
        rc = !(train = dataset_open(a.train, &err)) || !(test = dataset_open(a.test, &err)) ||
             check_datasets(train, test, &a, p.model->in_chans, &err) || run(&a, &p, train, test, &err);
        pretrained_close(&p);
    }
    if (train)
        dataset_close(train);
    if (test)
        dataset_close(test);
    parallel_shutdown();
    if (rc)
        fprintf(stderr, "maec eval finetune: error: %s\n", err.msg);
    return rc ? 1 : 0;
}
