/* maec eval: downstream evaluation of frozen features (kNN, linear probe), metrics as a table and
 * as JSON. Single process: the work is a few GEMMs over feature matrices that fit in memory. */
#include "maec/alloc.h"
#include "maec/cli.h"
#include "maec/features.h"
#include "maec/finetune.h"
#include "maec/json.h"
#include "maec/knn.h"
#include "maec/linprobe.h"
#include "maec/log.h"
#include "maec/metrics.h"
#include "maec/parallel.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMMON_OPTIONS                                                                               \
    "  --train FILE         features of the labelled training samples (required)\n"                  \
    "  --test FILE          features of the samples to score (required)\n"                           \
    "  --per-class N        train on N labelled samples per class, drawn per fold (default: all)\n"  \
    "  --folds F            draws with --per-class, reported as mean and std (default 3)\n"          \
    "  --seed S             seed of the draws and of the linear probe (default 0)\n"                 \
    "  --json OUT           also write the results as one JSON object to OUT ('-': stdout)\n"        \
    "  --threads T          threads for the matrix products (default 1)\n"                           \
    "  -q, --quiet          print nothing but errors (and --json -)\n"                               \
    "  -h, --help           this text\n"                                                             \
    "\n"                                                                                             \
    "FILEs are maec feature files (docs/formats.md, \"Features\"; maec embed writes them). Both must\n" \
    "have the same dimension and class list; samples labelled -1 are left out, with a warning.\n"    \
    "Reports accuracy, balanced accuracy, macro-F1, per-class precision/recall/F1 and the\n"         \
    "confusion matrix. Exit status: 0 on success, 1 on bad input files, 2 on a bad command line.\n"

static const char usage[] =
    "usage: maec eval knn      --train TRAIN.h5 --test TEST.h5 [options]\n"
    "       maec eval linprobe --train TRAIN.h5 --test TEST.h5 [options]\n"
    "       maec eval finetune CHECKPOINT --train DATA --test DATA [options]\n"
    "\n"
    "Evaluates frozen encoder features (maec embed) on a labelled downstream task:\n"
    "  knn        weighted k-nearest neighbours on cosine similarity (DINO protocol)\n"
    "  linprobe   a linear classifier on standardised features (MAE linear probing)\n"
    "  finetune   few-shot fine-tuning of a checkpoint's encoder on images (MAE fine-tuning)\n"
    "\n"
    "Run 'maec eval METHOD --help' for the options of a method; docs/eval.md has the protocols.\n";

static const char knn_usage[] =
    "usage: maec eval knn --train TRAIN.h5 --test TEST.h5 [options]\n"
    "\n"
    "Weighted kNN as DINO's eval_knn.py: features L2-normalised, cosine similarity, the k most\n"
    "similar training samples vote for their class with weight exp(similarity / T).\n"
    "\n"
    "  --k K                neighbours (default 20)\n"
    "  --temperature T      vote temperature (default 0.07)\n" COMMON_OPTIONS;

static const char linprobe_usage[] =
    "usage: maec eval linprobe --train TRAIN.h5 --test TEST.h5 [options]\n"
    "\n"
    "Linear probe as MAE's main_linprobe.py: features standardised with the training set's mean\n"
    "and variance (BatchNorm1d without affine, eval mode) and a linear layer trained with\n"
    "cross-entropy, SGD momentum and a cosine learning-rate schedule. Deterministic for a seed.\n"
    "\n"
    "  --epochs N           passes over the training features (default 100)\n"
    "  --batch B            samples per step (default 256)\n"
    "  --lr X               peak learning rate (default 0.1)\n"
    "  --momentum M         SGD momentum (default 0.9)\n"
    "  --weight-decay W     L2 decay of the weights (default 0)\n"
    "  --warmup-epochs E    linear warmup before the cosine (default 0)\n" COMMON_OPTIONS;

enum {
    OPT_TRAIN = 256, OPT_TEST, OPT_JSON, OPT_THREADS, OPT_PER_CLASS, OPT_FOLDS, OPT_SEED,
    OPT_K, OPT_TEMPERATURE,                                                   /* knn */
    OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_MOMENTUM, OPT_WEIGHT_DECAY, OPT_WARMUP, /* linprobe */
};

static const struct option long_options[] = {
    {"train", required_argument, NULL, OPT_TRAIN},
    {"test", required_argument, NULL, OPT_TEST},
    {"json", required_argument, NULL, OPT_JSON},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"per-class", required_argument, NULL, OPT_PER_CLASS},
    {"folds", required_argument, NULL, OPT_FOLDS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"k", required_argument, NULL, OPT_K},
    {"temperature", required_argument, NULL, OPT_TEMPERATURE},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"lr", required_argument, NULL, OPT_LR},
    {"momentum", required_argument, NULL, OPT_MOMENTUM},
    {"weight-decay", required_argument, NULL, OPT_WEIGHT_DECAY},
    {"warmup-epochs", required_argument, NULL, OPT_WARMUP},
    {0},
};

struct EvalMethod;

typedef struct EvalArgs {
    const struct EvalMethod *method;
    const char *train, *test, *json;
    int threads;
    bool quiet;
    size_t per_class, folds; /* per_class 0: the whole training file, one fold */
    uint64_t seed;
    KnnOptions knn;
    LinprobeOptions probe;
} EvalArgs;

typedef struct EvalMethod {
    const char *name, *command, *title, *usage; /* command: "eval NAME", for messages */
    int first_option, last_option; /* the method's own options */
    void (*predict)(int32_t *predicted, const Features *train, const Features *test, const EvalArgs *a,
                    size_t fold);
    void (*describe)(FILE *out, const EvalArgs *a, bool json); /* its options, for people or JSON */
} EvalMethod;

static void knn_predict(int32_t *predicted, const Features *train, const Features *test, const EvalArgs *a,
                        size_t fold)
{
    if (fold == 0 && a->knn.k > train->count)
        log_warn("--k %zu is more than the %zu training samples of %s: every one of them votes", a->knn.k,
                 train->count, train->path);
    knn_classify(predicted, test->values, train->values, train->labels, &a->knn, test->count, train->count,
                 train->dim, train->num_classes);
}

static void knn_describe(FILE *out, const EvalArgs *a, bool json)
{
    fprintf(out, json ? "\"k\":%zu,\"temperature\":%.10g" : "k %zu, temperature %g", a->knn.k, a->knn.temperature);
}

typedef struct ProbeProgress {
    const EvalArgs *args;
    size_t fold;
} ProbeProgress;

static void report_epoch(void *ctx, int epoch, double loss, double accuracy)
{
    const ProbeProgress *p = ctx;
    int epochs = p->args->probe.epochs;
    char fold[48] = "";
    if (p->args->folds > 1)
        snprintf(fold, sizeof fold, "fold %zu/%zu  ", p->fold + 1, p->args->folds);
    if (epoch == 1 || epoch % 10 == 0 || epoch == epochs)
        log_info("%sepoch %d/%d  loss %.4f  train accuracy %.4f", fold, epoch, epochs, loss, accuracy);
}

static void linprobe_run(int32_t *predicted, const Features *train, const Features *test, const EvalArgs *a,
                         size_t fold)
{
    LinprobeOptions options = a->probe;
    options.seed = a->seed;
    ProbeProgress progress = {a, fold};
    LinearProbe probe;
    linprobe_train(&probe, train->values, train->labels, &options, report_epoch, &progress, train->count, train->dim,
                   train->num_classes);
    linprobe_predict(predicted, &probe, test->values, test->count);
    linprobe_free(&probe);
}

static void linprobe_describe(FILE *out, const EvalArgs *a, bool json)
{
    const LinprobeOptions *o = &a->probe;
    fprintf(out,
            json ? "\"epochs\":%d,\"batch\":%zu,\"lr\":%.10g,\"momentum\":%.10g,\"weight_decay\":%.10g,"
                   "\"warmup_epochs\":%.10g"
                 : "epochs %d, batch %zu, lr %g, momentum %g, weight decay %g, warmup epochs %g",
            o->epochs, o->batch, o->lr, o->momentum, o->weight_decay, o->warmup_epochs);
}

static const EvalMethod methods[] = {
    {"knn", "eval knn", "weighted kNN", knn_usage, OPT_K, OPT_TEMPERATURE, knn_predict, knn_describe},
    {"linprobe", "eval linprobe", "linear probe", linprobe_usage, OPT_EPOCHS, OPT_WARMUP, linprobe_run, linprobe_describe},
};

static const EvalMethod *find_method(const char *name)
{
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
        if (!strcmp(methods[i].name, name))
            return &methods[i];
    return NULL;
}

/* Options of the other method are refused, so that a typo'd command cannot silently ignore them. */
static int set_option(EvalArgs *a, int code, const char *v)
{
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", cli_option_name(long_options, code));
    if (code >= OPT_K && (code < a->method->first_option || code > a->method->last_option))
        return cli_usage_error(a->method->command, "%s is not an option of '%s'", flag, a->method->command);
    const char *cmd = a->method->command;
    switch (code) {
    case OPT_TRAIN: a->train = v; break;
    case OPT_TEST: a->test = v; break;
    case OPT_JSON: a->json = v; break;
    case OPT_THREADS: a->threads = (int)cli_parse_long(cmd, flag, v, 1, 256); break;
    case OPT_PER_CLASS: a->per_class = (size_t)cli_parse_long(cmd, flag, v, 1, 1L << 30); break;
    case OPT_FOLDS: a->folds = (size_t)cli_parse_long(cmd, flag, v, 1, 1000); break;
    case OPT_SEED: a->seed = (uint64_t)cli_parse_long(cmd, flag, v, 0, 1L << 62); break;
    case OPT_K: a->knn.k = (size_t)cli_parse_long(cmd, flag, v, 1, 100000); break;
    case OPT_TEMPERATURE: a->knn.temperature = cli_parse_double(cmd, flag, v, 1e-4, 1e4); break;
    case OPT_EPOCHS: a->probe.epochs = (int)cli_parse_long(cmd, flag, v, 1, 100000); break;
    case OPT_BATCH: a->probe.batch = (size_t)cli_parse_long(cmd, flag, v, 1, 1L << 20); break;
    case OPT_LR: a->probe.lr = cli_parse_double(cmd, flag, v, 0.0, 1e3); break;
    case OPT_MOMENTUM: a->probe.momentum = cli_parse_double(cmd, flag, v, 0.0, 0.999); break;
    case OPT_WEIGHT_DECAY: a->probe.weight_decay = cli_parse_double(cmd, flag, v, 0.0, 10.0); break;
    case OPT_WARMUP: a->probe.warmup_epochs = cli_parse_double(cmd, flag, v, 0.0, 1e5); break;
    }
    return 0;
}

/* Returns -1 when parsing went well, else the exit code (0 after --help). */
static int parse(EvalArgs *a, int argc, char **argv)
{
    *a = (EvalArgs){.threads = 1, .knn = {.k = 20, .temperature = 0.07}, .probe = linprobe_default_options()};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!(a->method = find_method(argv[1])))
        return cli_usage_error("eval", "'%s' is not an evaluation method: knn, linprobe or finetune", argv[1]);
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "qh", long_options, NULL)) != -1) {
        if (c == 'h') {
            fputs(a->method->usage, stdout);
            return 0;
        }
        if (c == '?')
            return cli_usage_error(a->method->command, "unknown option or missing value");
        if (c == 'q')
            a->quiet = true;
        else if (set_option(a, c, optarg))
            return 2;
    }
    if (optind < argc)
        return cli_usage_error(a->method->command, "unexpected argument '%s' (files go after --train and --test)",
                               argv[optind]);
    if (a->probe.warmup_epochs > 0 && a->probe.warmup_epochs >= a->probe.epochs)
        return cli_usage_error(a->method->command, "--warmup-epochs %g leaves no epoch for the cosine of --epochs %d",
                               a->probe.warmup_epochs, a->probe.epochs);
    if (!a->train || !a->test)
        return cli_usage_error(a->method->command, "both --train FILE and --test FILE are required");
    if (a->folds && !a->per_class)
        return cli_usage_error(a->method->command, "--folds needs --per-class: without it the whole training "
                                                   "file is used once");
    a->folds = a->per_class ? (a->folds ? a->folds : 3) : 1;
    return -1;
}

static int load(Features *f, const char *path, MaecError *err)
{
    size_t dropped = 0;
    if (features_read(f, path, err))
        return -1;
    if (features_keep_labeled(f, &dropped, err))
        return -1;
    if (dropped)
        log_warn("%s: %zu unlabeled samples (label -1) left out", path, dropped);
    return 0;
}

/* Accuracy, balanced accuracy and macro-F1 of each fold, for the spread over folds. */
enum { SCORES = 3 };
static const char *const score_keys[SCORES] = {"accuracy", "balanced_accuracy", "macro_f1"};
static const char *const score_names[SCORES] = {"accuracy", "balanced accuracy", "macro-F1"};

/* Every fold's predictions of the test set, one after the other, and each fold's scores. */
typedef struct FoldResults {
    size_t folds, test_count, train_count; /* train_count: training samples of one fold */
    int32_t *truth, *predicted;            /* [folds * test_count] */
    double (*scores)[SCORES];              /* [folds] */
} FoldResults;

static void mean_std(const FoldResults *r, int score, double *mean, double *std)
{
    metrics_mean_std(&r->scores[0][score], r->folds, SCORES, mean, std);
}

/* "accuracy", "accuracy_std", ... as `maec eval finetune`, then every fold's scores. */
static void write_json_scores(FILE *out, const FoldResults *r)
{
    for (int s = 0; s < SCORES; s++) {
        double mean, std;
        mean_std(r, s, &mean, &std);
        fprintf(out, "\"%s\":%.10g,\"%s_std\":%.10g,", score_keys[s], mean, score_keys[s], std);
    }
    fprintf(out, "\"fold_scores\":[");
    for (size_t f = 0; f < r->folds; f++)
        fprintf(out, "%s{\"%s\":%.10g,\"%s\":%.10g,\"%s\":%.10g}", f ? "," : "", score_keys[0], r->scores[f][0],
                score_keys[1], r->scores[f][1], score_keys[2], r->scores[f][2]);
    fprintf(out, "],");
}

static int write_json(const EvalArgs *a, const Features *train, const Features *test, const FoldResults *r,
                      const Metrics *m, MaecError *err)
{
    bool to_stdout = !strcmp(a->json, "-");
    FILE *out = to_stdout ? stdout : fopen(a->json, "w");
    if (!out)
        return error_set(err, "cannot write --json %s (does the folder exist and is it writable?)", a->json);
    fprintf(out, "{\"method\":\"%s\",\"train\":", a->method->name);
    json_write_string(out, train->path);
    fprintf(out, ",\"test\":");
    json_write_string(out, test->path);
    fprintf(out, ",\"source_checkpoint\":");
    json_write_string(out, train->source_checkpoint);
    fprintf(out, ",\"pooling\":");
    json_write_string(out, train->pooling);
    fprintf(out, ",\"train_count\":%zu,\"dim\":%zu,\"per_class\":%zu,\"folds\":%zu,\"seed\":%llu,\"options\":{",
            r->train_count, train->dim, a->per_class, r->folds, (unsigned long long)a->seed);
    a->method->describe(out, a, true);
    fprintf(out, "},");
    write_json_scores(out, r);
    fprintf(out, "\"pooled\":{");
    metrics_write_json(out, m, (const char *const *)test->class_names);
    fprintf(out, "}}\n");
    bool failed = ferror(out) != 0;
    if (to_stdout ? fflush(out) != 0 : fclose(out) != 0)
        failed = true;
    return failed ? error_set(err, "writing --json %s failed (is the disk full?)", a->json) : 0;
}

static void print_folds(const FoldResults *r)
{
    for (size_t f = 0; f < r->folds; f++)
        printf("fold %zu/%zu: accuracy %.4f  balanced accuracy %.4f  macro-F1 %.4f\n", f + 1, r->folds,
               r->scores[f][0], r->scores[f][1], r->scores[f][2]);
    printf("over %zu folds, mean +- std:", r->folds);
    for (int s = 0; s < SCORES; s++) {
        double mean, std;
        mean_std(r, s, &mean, &std);
        printf("%s %s %.4f +- %.4f", s ? "," : "", score_names[s], mean, std);
    }
    printf("\n\nthe %zu folds' predictions pooled:\n", r->folds);
}

static void print_report(const EvalArgs *a, const Features *train, const Features *test, const FoldResults *r,
                         const Metrics *m)
{
    if (a->quiet)
        return;
    printf("\n%s (", a->method->title);
    a->method->describe(stdout, a, false);
    if (a->per_class)
        printf("; %zu per class, %zu folds, seed %llu", a->per_class, r->folds, (unsigned long long)a->seed);
    printf(")\ntrain %s: %zu samples", train->path, train->count);
    if (a->per_class)
        printf(", %zu of them in each fold", r->train_count);
    printf("; test %s: %zu samples; dimension %zu\n\n", test->path, test->count, train->dim);
    if (a->per_class)
        print_folds(r);
    metrics_print(stdout, m, (const char *const *)test->class_names);
}

/* The training rows of one fold: --per-class samples of every class, drawn for the fold as
 * `maec eval finetune` draws them, so both see the same samples for one seed and fold. */
static int draw_fold(Features *subset, const Features *train, const EvalArgs *a, size_t fold, MaecError *err)
{
    size_t n = a->per_class * train->num_classes, D = train->dim;
    size_t *chosen = xmalloc(n * sizeof *chosen, "few-shot draw");
    if (fewshot_sample(chosen, train->labels, train->count, (int)train->num_classes, a->per_class, a->seed, (int)fold,
                       err)) {
        free(chosen);
        return error_prefix(err, "%s", train->path);
    }
    *subset = *train; /* borrows the names; owns the rows below */
    subset->count = n;
    subset->values = xmalloc(n * D * sizeof *subset->values, "few-shot features");
    subset->labels = xmalloc(n * sizeof *subset->labels, "few-shot labels");
    for (size_t i = 0; i < n; i++) {
        memcpy(subset->values + i * D, train->values + chosen[i] * D, D * sizeof *subset->values);
        subset->labels[i] = train->labels[chosen[i]];
    }
    free(chosen);
    return 0;
}

static int run_fold(FoldResults *r, const EvalArgs *a, const Features *train, const Features *test, size_t fold,
                    MaecError *err)
{
    int32_t *predicted = r->predicted + fold * r->test_count;
    if (!a->per_class) {
        a->method->predict(predicted, train, test, a, fold);
    } else {
        Features subset;
        if (draw_fold(&subset, train, a, fold, err))
            return -1;
        a->method->predict(predicted, &subset, test, a, fold);
        free(subset.values);
        free(subset.labels);
    }
    memcpy(r->truth + fold * r->test_count, test->labels, r->test_count * sizeof *r->truth);
    Metrics m;
    metrics_compute(&m, test->labels, predicted, test->count, test->num_classes);
    r->scores[fold][0] = m.accuracy;
    r->scores[fold][1] = m.balanced_accuracy;
    r->scores[fold][2] = m.macro_f1;
    metrics_free(&m);
    return 0;
}

static int report(const EvalArgs *a, const Features *train, const Features *test, const FoldResults *r,
                  MaecError *err)
{
    Metrics pooled;
    metrics_compute(&pooled, r->truth, r->predicted, r->folds * r->test_count, test->num_classes);
    print_report(a, train, test, r, &pooled);
    int rc = a->json ? write_json(a, train, test, r, &pooled, err) : 0;
    metrics_free(&pooled);
    return rc;
}

static int evaluate(const EvalArgs *a, Features *train, Features *test, MaecError *err)
{
    if (load(train, a->train, err) || load(test, a->test, err) || features_check_compatible(train, test, err))
        return -1;
    /* Paths of one checkpoint may be spelt differently, so this is a warning, not an error. */
    if (train->source_checkpoint[0] && test->source_checkpoint[0] &&
        strcmp(train->source_checkpoint, test->source_checkpoint) != 0)
        log_warn("%s comes from checkpoint %s but %s from %s: is this the comparison you meant?", train->path,
                 train->source_checkpoint, test->path, test->source_checkpoint);
    FoldResults r = {.folds = a->folds, .test_count = test->count,
                     .train_count = a->per_class ? a->per_class * train->num_classes : train->count};
    r.truth = xmalloc(r.folds * r.test_count * sizeof *r.truth, "test labels");
    r.predicted = xmalloc(r.folds * r.test_count * sizeof *r.predicted, "predictions");
    r.scores = xmalloc(r.folds * sizeof *r.scores, "fold scores");
    int rc = 0;
    for (size_t f = 0; f < r.folds && !rc; f++)
        rc = run_fold(&r, a, train, test, f, err);
    if (!rc)
        rc = report(a, train, test, &r, err);
    free(r.truth);
    free(r.predicted);
    free(r.scores);
    return rc;
}

int cli_eval(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "finetune"))
        return cli_eval_finetune(argc - 1, argv + 1);
    EvalArgs a;
    int code = parse(&a, argc, argv);
    if (code >= 0)
        return code;
    log_set_quiet(a.quiet);
    parallel_init(a.threads);
    Features train = {0}, test = {0};
    MaecError err = {""};
    int rc = evaluate(&a, &train, &test, &err);
    features_free(&train);
    features_free(&test);
    parallel_shutdown();
    if (rc)
        fprintf(stderr, "maec eval: error: %s\n", err.msg);
    return rc ? 1 : 0;
}
