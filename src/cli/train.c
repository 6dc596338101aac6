/* maec train: data-parallel MAE pretraining (DESIGN.md section 4). Every rank holds a replica,
 * runs the forward and backward passes on its slice of each global batch, and the ranks
 * synchronise gradients by all-reduce or ZeRO-1/2 sharding (zero.h). The loop is here; each
 * stage is one call into one layer. */
/* sched_getaffinity and CPU_COUNT (the cores this process may use) are GNU extensions. */
#define _GNU_SOURCE

#include "maec/adamw.h"
#include "maec/alloc.h"
#include "maec/checkpoint.h"
#include "maec/cli.h"
#include "maec/config.h"
#include "maec/dataset.h"
#include "maec/dist.h"
#include "maec/files.h"
#include "maec/gradsync.h"
#include "maec/log.h"
#include "maec/mae.h"
#include "maec/masking.h"
#include "maec/parallel.h"
#include "maec/prefetch.h"
#include "maec/sampler.h"
#include "maec/schedule.h"
#include "maec/timer.h"
#include "maec/zero.h"

#include "maec_version.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRAIN_MAX_OVERRIDES 64
#define PATH_TEXT 4096

typedef struct TrainArgs {
    const char *job;
    char *overrides[TRAIN_MAX_OVERRIDES];
    size_t n_overrides;
    const char *resume; /* "none", "auto" or a checkpoint path */
    long stop_at;       /* 0: run to the end */
    bool quiet;
} TrainArgs;

/* Sizes that follow from the job, the dataset and the rank count. */
typedef struct TrainPlan {
    int world, rank, accum, threads;
    size_t batch; /* images per rank per micro-step */
    long global_batch, steps_per_epoch, total_steps;
    LrSchedule schedule;
} TrainPlan;

typedef struct Trainer {
    JobConfig cfg;
    char *config_yaml;
    TrainPlan plan;
    DistMode mode;
    Dataset *data;
    Sampler sampler;
    Mae mae;
    MaeActs acts;
    AdamWConfig adamw;
    size_t lo, hi;        /* owned range of the flat buffers (the whole buffer for allreduce) */
    float *m, *v;         /* AdamW state for [lo, hi) */
    float *grad_shard;    /* ZeRO: the reduced gradients of [lo, hi) */
    float *grad_scratch;  /* ZeRO-2 with accumulation: one micro-step's reduced shard */
    GradSync sync;        /* gradient reduction, overlapped with the backward pass */
    long step;            /* the next optimizer step to run */
    long stop_at;         /* stop (as on a signal) after this step; 0: never */
    AugmentConfig input;  /* the augmentation and normalisation of the training images */
    char last_checkpoint[PATH_TEXT];
    double last_checkpoint_time;
    FILE *metrics;
} Trainer;

_Static_assert(CHECKPOINT_MAX_CHANNELS == AUGMENT_MAX_CHANNELS, "checkpoints store the augmenter's mean/std");

static volatile sig_atomic_t g_stop_signal = 0;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

static void print_help(void)
{
    printf("usage: [mpiexec -n N | srun] maec train JOB.yaml [--set KEY=VALUE]... [--resume auto|PATH]\n\n"
           "Pretrains a ViT masked autoencoder on the HDF5 dataset named in the job file (data.train).\n"
           "Every rank trains a replica on its slice of each global batch; gradients are averaged\n"
           "(dist.mode allreduce) or reduce-scattered with sharded optimizer state (zero1, zero2).\n\n"
           "Options:\n"
           "  --set KEY=VALUE   override a job key, e.g. --set optim.steps=100 (repeatable)\n"
           "  --resume auto     continue from the newest complete checkpoint in checkpoint.dir\n"
           "                    (a fresh start when there is none); any rank count may resume\n"
           "  --resume PATH     continue from this checkpoint file\n"
           "  --stop-at STEP    stop after this step as if preempted: checkpoint, exit 0\n"
           "  --quiet           no progress output (errors still print)\n"
           "  --help            this text\n\n"
           "SIGTERM or SIGUSR1: the current step finishes, a checkpoint is written, exit 0.\n"
           "Keys: docs/config.md. Example: maec prep synthetic -o data/smoke.h5 &&\n"
           "  maec train jobs/smoke.yaml\n");
}

static int parse_args(int argc, char **argv, TrainArgs *a)
{
    *a = (TrainArgs){.resume = "none"};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            print_help();
            exit(0);
        } else if (!strcmp(arg, "--quiet")) {
            a->quiet = true;
        } else if (!strcmp(arg, "--set") && has_value) {
            if (a->n_overrides == TRAIN_MAX_OVERRIDES)
                return cli_usage_error("train", "at most %d --set options", TRAIN_MAX_OVERRIDES);
            a->overrides[a->n_overrides++] = argv[++i];
        } else if (!strcmp(arg, "--stop-at") && has_value) {
            a->stop_at = cli_parse_long("train", "--stop-at", argv[++i], 1, 1L << 40);
        } else if (!strcmp(arg, "--resume") && has_value) {
            a->resume = argv[++i];
        } else if (arg[0] == '-') {
            return cli_usage_error("train", "unknown option or missing value: '%s'", arg);
        } else if (a->job) {
            return cli_usage_error("train", "one job file expected, got '%s' and '%s'", a->job, arg);
        } else {
            a->job = arg;
        }
    }
    if (!a->job)
        return cli_usage_error("train", "no job file given (e.g. maec train jobs/smoke.yaml)");
    return 0;
}

/* Worker threads per rank: the cores this process may use, shared among the ranks on its node. */
static int auto_threads(void)
{
    cpu_set_t set;
    int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    int per_rank = cores / dist_local_size();
    return per_rank > 0 ? per_rank : 1;
}

static int plan_batches(const JobOptim *o, TrainPlan *p, MaecError *err)
{
    p->accum = o->accum_iter;
    long per_step = (long)p->world * p->accum;
    if (o->global_batch > 0) {
        if (o->global_batch % per_step)
            return error_set(err, "optim.global_batch %d does not split evenly over %d ranks x accum_iter %d: "
                             "choose a multiple of %ld or change the rank count",
                             o->global_batch, p->world, p->accum, per_step);
        p->batch = (size_t)(o->global_batch / per_step);
    } else {
        p->batch = (size_t)o->batch_per_rank;
    }
    p->global_batch = (long)p->batch * per_step;
    return 0;
}

static int plan_schedule(const JobOptim *o, size_t count, TrainPlan *p, MaecError *err)
{
    p->steps_per_epoch = (long)(count / (size_t)p->global_batch);
    if (p->steps_per_epoch == 0)
        return error_set(err, "the dataset holds %zu samples, fewer than one global batch of %ld: "
                         "lower optim.batch_per_rank or optim.global_batch", count, p->global_batch);
    p->total_steps = o->steps > 0 ? o->steps : lround(o->epochs * (double)p->steps_per_epoch);
    if (p->total_steps < 1)
        return error_set(err, "optim.epochs %g is less than one step of %ld samples: raise it or set optim.steps",
                         o->epochs, p->global_batch);
    double warmup = o->warmup_steps > 0 ? o->warmup_steps : o->warmup_epochs * (double)p->steps_per_epoch;
    if (warmup > (double)p->total_steps)
        return error_set(err, "warm-up (%g steps) is longer than the run (%ld steps): lower optim.warmup_epochs "
                         "or optim.warmup_steps", warmup, p->total_steps);
    double peak = o->lr > 0 ? o->lr : lr_from_base(o->blr, p->global_batch);
    p->schedule = (LrSchedule){peak, o->min_lr, warmup, (double)p->total_steps};
    return 0;
}

static void augment_from_config(const JobConfig *cfg, const Dataset *ds, AugmentConfig *a)
{
    static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};
    const JobAugment *g = &cfg->data.augment;
    *a = (AugmentConfig){.out_size = cfg->model.img_size, .random = true,
                         .scale = {g->crop_scale.v[0], g->crop_scale.v[1]},
                         .ratio = {g->crop_ratio.v[0], g->crop_ratio.v[1]},
                         .hflip = g->hflip, .vflip = g->vflip, .rot90 = g->rot90};
    for (int c = 0; c < cfg->model.in_chans; c++) {
        switch (cfg->data.normalize) {
        case JOB_NORMALIZE_DATASET:
            a->mean[c] = (float)dataset_mean(ds)[c], a->std[c] = (float)dataset_std(ds)[c];
            break;
        case JOB_NORMALIZE_IMAGENET:
            a->mean[c] = imagenet_mean[c], a->std[c] = imagenet_std[c];
            break;
        case JOB_NORMALIZE_NONE:
            a->mean[c] = 0, a->std[c] = 1;
            break;
        case JOB_NORMALIZE_CUSTOM:
            a->mean[c] = (float)cfg->data.mean.v[c], a->std[c] = (float)cfg->data.std.v[c];
            break;
        }
        if (!(a->std[c] > 0))
            a->std[c] = 1; /* a constant channel (std 0) is only shifted */
    }
}

static int check_dataset(const JobConfig *cfg, const Dataset *ds, MaecError *err)
{
    if (dataset_channels(ds) != cfg->model.in_chans)
        return error_set(err, "%s has %d channels but model.in_chans is %d: set model.in_chans=%d",
                         cfg->data.train, dataset_channels(ds), cfg->model.in_chans, dataset_channels(ds));
    if (cfg->data.normalize == JOB_NORMALIZE_IMAGENET && dataset_channels(ds) != 3)
        return error_set(err, "data.normalize imagenet needs RGB images; %s has %d channels: use dataset",
                         cfg->data.train, dataset_channels(ds));
    return 0;
}

static DistMode dist_mode_from_config(JobDistMode m)
{
    return m == JOB_DIST_ZERO1 ? DIST_ZERO1 : m == JOB_DIST_ZERO2 ? DIST_ZERO2 : DIST_ALLREDUCE;
}

static void print_memory(const Trainer *t)
{
    TrainStateBytes b = zero_state_bytes(t->mode, t->mae.table.padded, t->plan.world);
    const double mib = 1024.0 * 1024.0;
    log_info("memory per rank (%s, %d ranks): parameters %.2f MiB, gradients %.2f MiB%s, optimizer state "
             "%.2f MiB, activations %.2f MiB",
             dist_mode_name(t->mode), t->plan.world, (double)b.params / mib, (double)b.grads / mib,
             b.grads_work ? " (+ one backward's workspace)" : "", (double)b.optimizer / mib,
             (double)t->acts.arena.capacity / mib);
}

static void print_start(const Trainer *t)
{
    log_info("maec %s: resolved configuration\n---\n%s---", MAEC_VERSION, t->config_yaml);
    const TrainPlan *p = &t->plan;
    log_info("data: %s, %zu images %dx%dx%d, %ld steps per epoch", t->cfg.data.train, dataset_count(t->data),
             dataset_height(t->data), dataset_width(t->data), dataset_channels(t->data), p->steps_per_epoch);
    log_info("model: %zu parameters; %d ranks x %d threads; global batch %ld = %d ranks x %zu x accum %d; "
             "%ld steps, peak lr %.3g, warm-up %g steps",
             t->mae.table.numel, p->world, p->threads, p->global_batch, p->world, p->batch, p->accum,
             p->total_steps, p->schedule.peak, p->schedule.warmup);
    print_memory(t);
}

static void trainer_alloc_state(Trainer *t)
{
    size_t padded = t->mae.table.padded;
    if (t->mode == DIST_ALLREDUCE) {
        t->lo = 0, t->hi = padded;
    } else {
        zero_shard_range(padded, t->plan.rank, t->plan.world, &t->lo, &t->hi);
        t->grad_shard = xcalloc(t->hi - t->lo, sizeof(float), "gradient shard");
        if (t->mode == DIST_ZERO2 && t->plan.accum > 1)
            t->grad_scratch = xcalloc(t->hi - t->lo, sizeof(float), "gradient shard scratch");
    }
    t->m = xcalloc(t->hi - t->lo, sizeof(float), "AdamW m");
    t->v = xcalloc(t->hi - t->lo, sizeof(float), "AdamW v");
    size_t bucket = (size_t)(t->cfg.dist.bucket_mb * 1024 * 1024 / sizeof(float));
    gradsync_init(&t->sync, t->mode == DIST_ALLREDUCE ? GRADSYNC_ALLREDUCE : GRADSYNC_REDUCE_SCATTER,
                  t->mae.grads, padded, bucket > 0 ? bucket : 1, t->grad_shard, t->grad_scratch);
}

static int trainer_setup(Trainer *t, MaecError *err)
{
    TrainPlan *p = &t->plan;
    p->world = dist_size(), p->rank = dist_rank();
    if (plan_batches(&t->cfg.optim, p, err))
        return -1;
    if (!(t->data = dataset_open(t->cfg.data.train, err)))
        return error_prefix(err, "data.train (make a dataset with maec prep, or point data.train at one)");
    if (check_dataset(&t->cfg, t->data, err) || plan_schedule(&t->cfg.optim, dataset_count(t->data), p, err) ||
        sampler_init(&t->sampler, dataset_count(t->data), (size_t)p->global_batch, (uint64_t)t->cfg.seed, err))
        return -1;
    MaeConfig mc = {t->cfg.model, t->cfg.objective.norm_pix_loss, t->cfg.masking.ratio};
    if (mae_init(&t->mae, &mc, (size_t)p->world, err))
        return -1;
    vit_init_weights(&t->mae.table, t->mae.params, (uint64_t)t->cfg.seed);
    t->mode = dist_mode_from_config(t->cfg.dist.mode);
    t->adamw = (AdamWConfig){t->cfg.optim.beta1, t->cfg.optim.beta2, t->cfg.optim.eps, t->cfg.optim.weight_decay};
    trainer_alloc_state(t);
    augment_from_config(&t->cfg, t->data, &t->input);
    return 0;
}

/* The stored run must be this run's model and data order; only the rank count may differ. */
static int check_resumable(const Trainer *t, const CheckpointMeta *meta, const char *path, MaecError *err)
{
    JobConfig stored;
    if (config_load_string(meta->config_yaml, path, &stored, err))
        return error_prefix(err, "%s: stored configuration", path);
    bool same = !memcmp(&stored.model, &t->cfg.model, sizeof stored.model) &&
                stored.objective.norm_pix_loss == t->cfg.objective.norm_pix_loss &&
                stored.masking.ratio == t->cfg.masking.ratio;
    config_free(&stored);
    if (!same)
        return error_set(err, "%s was written for another model or objective than this job's: resume with "
                         "the job that wrote it, or start in a new checkpoint.dir", path);
    if (meta->global_batch != t->plan.global_batch)
        return error_set(err, "%s was written with global batch %ld, this run has %ld: set "
                         "optim.global_batch=%ld so the data order and schedule continue",
                         path, meta->global_batch, t->plan.global_batch, meta->global_batch);
    return 0;
}

/* Returns 0 when the run starts fresh or resumed, -1 with err otherwise. */
static int trainer_resume(Trainer *t, const char *resume, MaecError *err)
{
    char path[PATH_TEXT] = "";
    const char *dir = t->cfg.checkpoint.dir;
    int found = 0;
    if (!strcmp(resume, "auto") || !strcmp(resume, "none")) {
        if (dir[0] && (found = checkpoint_find_latest(dir, path, sizeof path, err)) < 0)
            return -1;
        if (found && !strcmp(resume, "none"))
            return error_set(err, "%s already holds checkpoints of an earlier run (newest: %s): pass --resume "
                             "auto to continue it, or choose another checkpoint.dir", dir, path);
    } else {
        snprintf(path, sizeof path, "%s", resume);
        found = 1;
    }
    if (!found)
        return 0;
    CheckpointMeta meta = {0};
    if (checkpoint_load(path, &t->mae.table, t->mae.params, t->m, t->v, t->lo, t->hi, &meta, err) ||
        check_resumable(t, &meta, path, err)) {
        checkpoint_meta_free(&meta);
        return -1;
    }
    t->step = meta.step;
    snprintf(t->last_checkpoint, sizeof t->last_checkpoint, "%s", path);
    log_info("resumed from %s at step %ld (written by %d ranks in %s mode, maec %s)", path, meta.step,
             meta.world_size, meta.dist_mode, meta.code_version);
    checkpoint_meta_free(&meta);
    return 0;
}

static int open_metrics(Trainer *t, MaecError *err)
{
    const char *name = t->cfg.log.metrics;
    if (t->plan.rank != 0 || !name[0])
        return 0;
    char path[PATH_TEXT];
    if (t->cfg.checkpoint.dir[0] && make_dirs(t->cfg.checkpoint.dir, err))
        return -1;
    if (name[0] != '/' && t->cfg.checkpoint.dir[0])
        snprintf(path, sizeof path, "%s/%s", t->cfg.checkpoint.dir, name);
    else
        snprintf(path, sizeof path, "%s", name);
    if (!(t->metrics = fopen(path, t->step > 0 ? "a" : "w")))
        return error_set(err, "cannot write the metrics file %s: %s (set log.metrics to a writable path, or "
                         "\"\" for none)", path, strerror(errno));
    return 0;
}

static void save_checkpoint(Trainer *t)
{
    if (!t->cfg.checkpoint.dir[0])
        return;
    CheckpointMeta meta = {.step = t->step, .global_batch = t->plan.global_batch, .world_size = t->plan.world,
                           .config_yaml = t->config_yaml};
    snprintf(meta.dist_mode, sizeof meta.dist_mode, "%s", dist_mode_name(t->mode));
    snprintf(meta.objective, sizeof meta.objective, "mae");
    snprintf(meta.code_version, sizeof meta.code_version, "%s", MAEC_VERSION);
    meta.channels = t->cfg.model.in_chans;
    memcpy(meta.input_mean, t->input.mean, sizeof meta.input_mean);
    memcpy(meta.input_std, t->input.std, sizeof meta.input_std);
    const Encoder *e = &t->mae.enc;
    const Decoder *d = &t->mae.dec;
    FixedTensor fixed[2] = {{"pos_embed", 3, {1, e->num_patches + 1, e->dim}, e->pos},
                            {"decoder_pos_embed", 3, {1, d->num_patches + 1, d->dim}, d->pos}};
    size_t lo, hi;
    zero_shard_range(t->mae.table.padded, t->plan.rank, t->plan.world, &lo, &hi);
    CheckpointWrite w = {t->cfg.checkpoint.dir, &meta, &t->mae.table, t->mae.params,
                         t->m + (lo - t->lo), t->v + (lo - t->lo), lo, hi, fixed, 2, t->cfg.checkpoint.keep_last};
    checkpoint_save(&w, t->last_checkpoint, sizeof t->last_checkpoint);
    t->last_checkpoint_time = now_seconds();
    log_info("checkpoint: %s", t->last_checkpoint);
}

static void mask_batch(void *ctx, Batch *b)
{
    const Trainer *t = ctx;
    mask_random(b->masks, b->samples, b->n, t->mae.num_patches, (uint64_t)t->cfg.seed, b->epoch);
}

static Prefetch *start_prefetch(Trainer *t)
{
    PrefetchConfig pc = {.dataset = t->data, .sampler = &t->sampler, .seed = (uint64_t)t->cfg.seed,
                         .batch = t->plan.batch, .rank = t->plan.rank, .world = t->plan.world,
                         .accum = t->plan.accum, .first_step = t->step, .end_step = t->plan.total_steps,
                         .depth = t->cfg.data.prefetch, .mask_ints = t->mae.num_patches, .mask = mask_batch,
                         .mask_ctx = t};
    pc.augment = t->input;
    return prefetch_start(&pc);
}

typedef struct StepResult {
    double loss, grad_norm, lr, data_wait;
} StepResult;

/* Forward and backward over the step's micro-batches, the gradients averaged over ranks as the
 * backward passes finish them; returns this rank's mean loss. A micro-step's gradients are
 * reduced if they are the step's last, and in ZeRO-2 every micro-step's (into the owned shard,
 * so that the full gradient buffer is only a workspace). */
static double accumulate_gradients(Trainer *t, Prefetch *pf, double *data_wait)
{
    const int accum = t->plan.accum;
    const GradReady ready = {gradsync_ready, &t->sync};
    double loss = 0;
    memset(t->mae.grads, 0, t->mae.table.padded * sizeof(float));
    for (int micro = 0; micro < accum; micro++) {
        double waited = 0;
        Batch *b = prefetch_next(pf, &waited);
        *data_wait += waited;
        bool reduce = micro + 1 == accum || t->mode == DIST_ZERO2;
        if (reduce)
            gradsync_begin(&t->sync, micro > 0 && t->mode == DIST_ZERO2);
        loss += mae_forward_backward(&t->mae, &t->acts, b->images, b->masks, b->n, 1.0f / (float)accum,
                                     reduce && t->cfg.dist.overlap ? &ready : NULL) / accum;
        prefetch_release(pf);
        if (reduce)
            gradsync_finish(&t->sync);
        if (t->mode == DIST_ZERO2 && micro + 1 < accum)
            memset(t->mae.grads, 0, t->mae.table.padded * sizeof(float));
    }
    return loss;
}

/* torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1. */
static double clip_gradients(Trainer *t, float *g)
{
    double ss = grad_sum_squares(g, t->lo, t->hi, &t->mae.table);
    if (t->mode != DIST_ALLREDUCE)
        dist_allreduce_sum_double(&ss, 1);
    double norm = sqrt(ss), max_norm = t->cfg.optim.clip_grad;
    if (max_norm > 0 && max_norm / (norm + 1e-6) < 1)
        grad_scale(g, t->hi - t->lo, (float)(max_norm / (norm + 1e-6)));
    return norm;
}

static StepResult train_step(Trainer *t, Prefetch *pf)
{
    StepResult r = {.lr = lr_at(&t->plan.schedule, (double)t->step)};
    r.loss = accumulate_gradients(t, pf, &r.data_wait);
    dist_allreduce_sum_double(&r.loss, 1);
    r.loss /= t->plan.world;
    float *g = t->mode == DIST_ALLREDUCE ? t->mae.grads : t->grad_shard; /* [lo, hi), indexed from lo */
    r.grad_norm = clip_gradients(t, g);
    if (!isfinite(r.loss) || !isfinite(r.grad_norm))
        return r; /* the caller stops before the update spoils the parameters */
    adamw_update(t->mae.params, g, t->m, t->v, t->lo, t->hi, &t->mae.table, &t->adamw, r.lr, t->step + 1);
    if (t->mode != DIST_ALLREDUCE)
        params_allgather(t->mae.params, t->mae.table.padded);
    return r;
}

typedef struct Progress {
    double start, window_start, window_loss, window_wait;
    long window_steps, first_step;
} Progress;

static void format_duration(char *buf, size_t size, double seconds)
{
    long s = lround(seconds);
    snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

static void report_progress(Trainer *t, Progress *pr, const StepResult *r)
{
    pr->window_loss += r->loss, pr->window_wait += r->data_wait, pr->window_steps++;
    bool last = t->step == t->plan.total_steps;
    if (t->plan.rank != 0 || (t->step % t->cfg.log.every_steps && !last))
        return;
    double now = now_seconds(), elapsed = now - pr->window_start;
    double images_per_s = (double)(pr->window_steps * t->plan.global_batch) / elapsed;
    double per_step = (now - pr->start) / (double)(t->step - pr->first_step);
    double epoch = (double)t->step / (double)t->plan.steps_per_epoch, loss = pr->window_loss / pr->window_steps;
    char eta[32];
    format_duration(eta, sizeof eta, per_step * (double)(t->plan.total_steps - t->step));
    log_info("step %ld/%ld  epoch %.2f  loss %.4f  lr %.3e  %.1f img/s  data wait %.0f%%  ETA %s", t->step,
             t->plan.total_steps, epoch, loss, r->lr, images_per_s, 100 * pr->window_wait / elapsed, eta);
    if (t->metrics) {
        fprintf(t->metrics, "{\"step\": %ld, \"epoch\": %.6f, \"loss\": %.8g, \"lr\": %.8g, \"grad_norm\": %.8g, "
                "\"images_per_s\": %.4g, \"data_wait_s\": %.4g, \"seconds\": %.4g}\n",
                t->step, epoch, loss, r->lr, r->grad_norm, images_per_s, pr->window_wait, now - pr->start);
        fflush(t->metrics);
    }
    *pr = (Progress){pr->start, now, 0, 0, 0, pr->first_step};
}

enum { CHECKPOINT_DUE = 1, STOP_REQUESTED = 2 };

/* One small all-reduce per step so that every rank takes the same decision. */
static int agree_on_actions(const Trainer *t)
{
    long long flags[2] = {0, g_stop_signal != 0 || t->step == t->stop_at};
    const JobCheckpoint *c = &t->cfg.checkpoint;
    if (t->plan.rank == 0 && c->every_minutes > 0)
        flags[0] = now_seconds() - t->last_checkpoint_time >= c->every_minutes * 60;
    dist_allreduce_sum_long(flags, 2);
    bool every = c->every_steps > 0 && t->step % c->every_steps == 0;
    return (flags[0] || every ? CHECKPOINT_DUE : 0) | (flags[1] ? STOP_REQUESTED : 0);
}

static int non_finite_stop(const Trainer *t, const StepResult *r)
{
    if (t->plan.rank == 0)
        fprintf(stderr, "maec train: error: step %ld: loss %g, gradient norm %g (not finite); the parameters "
                "were not updated. Last good checkpoint: %s. Lower optim.blr or set optim.clip_grad, then "
                "resume from it.\n", t->step + 1, r->loss, r->grad_norm,
                t->last_checkpoint[0] ? t->last_checkpoint : "none (set checkpoint.every_steps)");
    return 1;
}

static int train_loop(Trainer *t)
{
    Prefetch *pf = start_prefetch(t);
    Progress pr = {now_seconds(), now_seconds(), 0, 0, 0, t->step};
    t->last_checkpoint_time = now_seconds();
    int rc = 0;
    long saved_at = t->last_checkpoint[0] ? t->step : -1;
    while (t->step < t->plan.total_steps) {
        StepResult r = train_step(t, pf);
        if (!isfinite(r.loss) || !isfinite(r.grad_norm)) {
            rc = non_finite_stop(t, &r);
            break;
        }
        t->step++;
        report_progress(t, &pr, &r);
        int actions = agree_on_actions(t);
        if (actions & CHECKPOINT_DUE || (actions & STOP_REQUESTED && saved_at != t->step)) {
            save_checkpoint(t);
            saved_at = t->step;
        }
        if (actions & STOP_REQUESTED) {
            log_info("stopped after step %ld (%s); resume with --resume auto", t->step,
                     g_stop_signal ? strsignal(g_stop_signal) : "--stop-at");
            break;
        }
    }
    prefetch_stop(pf);
    if (rc == 0 && t->step == t->plan.total_steps && saved_at != t->step)
        save_checkpoint(t);
    return rc;
}

static void trainer_free(Trainer *t)
{
    if (t->metrics)
        fclose(t->metrics);
    mae_acts_free(&t->acts);
    mae_free(&t->mae);
    sampler_free(&t->sampler);
    if (t->data)
        dataset_close(t->data);
    gradsync_free(&t->sync);
    free(t->m), free(t->v), free(t->grad_shard), free(t->grad_scratch), free(t->config_yaml);
    config_free(&t->cfg);
}

static int load_job(JobConfig *cfg, const TrainArgs *args, MaecError *err)
{
    if (config_load(args->job, cfg, err))
        return -1;
    for (size_t i = 0; i < args->n_overrides; i++)
        if (config_set(cfg, args->overrides[i], err))
            return -1;
    return config_validate(cfg, err);
}

static void install_signal_handlers(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int cli_train(int argc, char **argv)
{
    TrainArgs args;
    if (parse_args(argc, argv, &args))
        return 2;
    log_set_quiet(args.quiet);
    install_signal_handlers();
    Trainer t = {.stop_at = args.stop_at};
    MaecError err = {{0}};
    int rc = load_job(&t.cfg, &args, &err);
    if (cli_failed_anywhere("train", rc, &err)) {
        config_free(&t.cfg);
        return 2;
    }
    t.config_yaml = config_to_yaml(&t.cfg);
    t.plan.threads = t.cfg.threads > 0 ? t.cfg.threads : auto_threads();
    parallel_init(t.plan.threads);
    rc = trainer_setup(&t, &err);
    if (!cli_failed_anywhere("train", rc, &err)) {
        mae_acts_init(&t.acts, &t.mae, t.plan.batch);
        print_start(&t);
        rc = trainer_resume(&t, args.resume, &err) || open_metrics(&t, &err);
        rc = cli_failed_anywhere("train", rc, &err) ? 1 : train_loop(&t);
    } else {
        rc = 1;
    }
    parallel_shutdown();
    trainer_free(&t);
    return rc;
}
