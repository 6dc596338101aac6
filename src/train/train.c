/* sched_getaffinity and CPU_COUNT (the cores this process may use) are GNU extensions. */
#define _GNU_SOURCE

#include "maec/train.h"

#include "maec/alloc.h"
#include "maec/checkpoint.h"
#include "maec/dist.h"
#include "maec/files.h"
#include "maec/log.h"
#include "maec/parallel.h"
#include "maec/prefetch.h"
#include "maec/sampler.h"
#include "maec/schedule.h"
#include "maec/step.h"
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

#define PATH_TEXT 4096

/* Sizes that follow from the job, the dataset and the rank count. */
typedef struct TrainPlan {
    int world, rank, accum, threads;
    size_t batch; /* images per rank per micro-step */
    long global_batch, steps_per_epoch, total_steps;
    LrSchedule schedule;
} TrainPlan;

struct Trainer {
    Job job;
    char *config_yaml;
    TrainPlan plan;
    DistMode mode;
    Dataset *data;
    Sampler sampler;
    Objective obj;
    Stepper stepper;
    long step;           /* the next optimizer step to run */
    long stop_at;        /* stop (as on a signal) after this step; 0: never */
    AugmentConfig input; /* the augmentation and normalisation of the training images */
    char last_checkpoint[PATH_TEXT];
    double last_checkpoint_time;
    FILE *metrics;
};

_Static_assert(CHECKPOINT_MAX_CHANNELS == AUGMENT_MAX_CHANNELS, "checkpoints store the augmenter's mean/std");

static volatile sig_atomic_t g_stop_signal = 0;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

void install_stop_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
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

void train_input(const JobConfig *cfg, const Dataset *ds, AugmentConfig *a)
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

static void print_memory(const Trainer *t, size_t activations)
{
    TrainStateBytes b = zero_state_bytes(t->mode, t->obj.table.padded, t->plan.world);
    const double mib = 1024.0 * 1024.0;
    log_info("memory per rank (%s, %d ranks): parameters %.2f MiB, gradients %.2f MiB%s, optimizer state "
             "%.2f MiB, objective state %.2f MiB, activations %.2f MiB",
             dist_mode_name(t->mode), t->plan.world, (double)b.params / mib, (double)b.grads / mib,
             b.grads_work ? " (+ one backward's workspace)" : "", (double)b.optimizer / mib,
             (double)(t->obj.state.padded * sizeof(float)) / mib, (double)activations / mib);
}

static void print_start(const Trainer *t)
{
    log_info("maec %s: resolved configuration\n---\n%s---", MAEC_VERSION, t->config_yaml);
    const TrainPlan *p = &t->plan;
    log_info("data: %s, %zu images %dx%dx%d, %ld steps per epoch", t->job.cfg.data.train, dataset_count(t->data),
             dataset_height(t->data), dataset_width(t->data), dataset_channels(t->data), p->steps_per_epoch);
    log_info("objective %s: %zu parameters; %d ranks x %d threads; global batch %ld = %d ranks x %zu x accum %d; "
             "%ld steps, peak lr %.3g, warm-up %g steps",
             t->obj.cls->name, t->obj.table.numel, p->world, p->threads, p->global_batch, p->world, p->batch,
             p->accum, p->total_steps, p->schedule.peak, p->schedule.warmup);
}

static int setup(Trainer *t, MaecError *err)
{
    const JobConfig *cfg = &t->job.cfg;
    TrainPlan *p = &t->plan;
    p->world = dist_size(), p->rank = dist_rank();
    if (plan_batches(&cfg->optim, p, err))
        return -1;
    if (!(t->data = dataset_open(cfg->data.train, err)))
        return error_prefix(err, "data.train (make a dataset with maec prep, or point data.train at one)");
    if (check_dataset(cfg, t->data, err) || plan_schedule(&cfg->optim, dataset_count(t->data), p, err) ||
        sampler_init(&t->sampler, dataset_count(t->data), (size_t)p->global_batch, (uint64_t)cfg->seed, err) ||
        job_make_objective(&t->job, &t->obj, t->data, (size_t)p->world, err))
        return -1;
    t->config_yaml = job_to_yaml(&t->job);
    vit_init_weights(&t->obj.table, t->obj.params, (uint64_t)cfg->seed);
    t->mode = dist_mode_from_config(cfg->dist.mode);
    StepperConfig sc = {t->mode, p->accum, cfg->dist.bucket_mb, cfg->dist.overlap,
                        {cfg->optim.beta1, cfg->optim.beta2, cfg->optim.eps, cfg->optim.weight_decay},
                        cfg->optim.clip_grad};
    stepper_init(&t->stepper, &t->obj, &sc);
    train_input(cfg, t->data, &t->input);
    return 0;
}

/* The stored run must be this run's model, mask, objective and data order; only the rank count
 * may differ. */
static int check_resumable(const Trainer *t, const CheckpointMeta *meta, const char *path, MaecError *err)
{
    Job stored;
    if (job_load_string(&stored, meta->config_yaml, path, NULL, 0, err))
        return error_prefix(err, "%s: stored configuration", path);
    bool same = job_same_training(&stored, &t->job);
    job_free(&stored);
    if (!same)
        return error_set(err, "%s was written for another model, mask or objective than this job's: resume with "
                         "the job that wrote it, or start in a new checkpoint.dir", path);
    if (meta->global_batch != t->plan.global_batch)
        return error_set(err, "%s was written with global batch %ld, this run has %ld: set "
                         "optim.global_batch=%ld so the data order and schedule continue",
                         path, meta->global_batch, t->plan.global_batch, meta->global_batch);
    return 0;
}

/* Returns 0 when the run starts fresh or resumed, -1 with err otherwise. */
static int resume(Trainer *t, const char *how, MaecError *err)
{
    char path[PATH_TEXT] = "";
    const char *dir = t->job.cfg.checkpoint.dir;
    int found = 0;
    if (!strcmp(how, "auto") || !strcmp(how, "none")) {
        if (dir[0] && (found = checkpoint_find_latest(dir, path, sizeof path, err)) < 0)
            return -1;
        if (found && !strcmp(how, "none"))
            return error_set(err, "%s already holds checkpoints of an earlier run (newest: %s): pass --resume "
                             "auto to continue it, or choose another checkpoint.dir", dir, path);
    } else {
        snprintf(path, sizeof path, "%s", how);
        found = 1;
    }
    if (!found)
        return 0;
    CheckpointMeta meta = {0};
    const Stepper *s = &t->stepper;
    CheckpointRead r = {&t->obj.table, t->obj.params, s->m, s->v, s->lo, s->hi, &t->obj.state, t->obj.state_values};
    if (checkpoint_load(path, &r, &meta, err) || check_resumable(t, &meta, path, err)) {
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
    const JobConfig *cfg = &t->job.cfg;
    const char *name = cfg->log.metrics;
    if (t->plan.rank != 0 || !name[0])
        return 0;
    char path[PATH_TEXT];
    if (cfg->checkpoint.dir[0] && make_dirs(cfg->checkpoint.dir, err))
        return -1;
    if (name[0] != '/' && cfg->checkpoint.dir[0])
        snprintf(path, sizeof path, "%s/%s", cfg->checkpoint.dir, name);
    else
        snprintf(path, sizeof path, "%s", name);
    if (!(t->metrics = fopen(path, t->step > 0 ? "a" : "w")))
        return error_set(err, "cannot write the metrics file %s: %s (set log.metrics to a writable path, or "
                         "\"\" for none)", path, strerror(errno));
    return 0;
}

int trainer_open(Trainer **out, Job *job, const TrainOptions *opts, MaecError *err)
{
    Trainer *t = *out = xcalloc(1, sizeof *t, "trainer");
    t->job = *job;
    memset(job, 0, sizeof *job);
    t->stop_at = opts->stop_at;
    t->plan.threads = t->job.cfg.threads > 0 ? t->job.cfg.threads : auto_threads();
    parallel_init(t->plan.threads);
    if (setup(t, err))
        return -1;
    print_start(t);
    print_memory(t, t->obj.cls->reserve(&t->obj, t->plan.batch));
    return resume(t, opts->resume, err) || open_metrics(t, err) ? -1 : 0;
}

static void save_checkpoint(Trainer *t)
{
    const JobConfig *cfg = &t->job.cfg;
    if (!cfg->checkpoint.dir[0])
        return;
    CheckpointMeta meta = {.step = t->step, .global_batch = t->plan.global_batch, .world_size = t->plan.world,
                           .config_yaml = t->config_yaml};
    snprintf(meta.dist_mode, sizeof meta.dist_mode, "%s", dist_mode_name(t->mode));
    snprintf(meta.objective, sizeof meta.objective, "%s", t->obj.cls->name);
    snprintf(meta.code_version, sizeof meta.code_version, "%s", MAEC_VERSION);
    meta.channels = cfg->model.in_chans;
    memcpy(meta.input_mean, t->input.mean, sizeof meta.input_mean);
    memcpy(meta.input_std, t->input.std, sizeof meta.input_std);
    const Stepper *s = &t->stepper;
    size_t lo, hi;
    zero_shard_range(t->obj.table.padded, t->plan.rank, t->plan.world, &lo, &hi);
    CheckpointWrite w = {cfg->checkpoint.dir, &meta, &t->obj.table, t->obj.params, s->m + (lo - s->lo),
                         s->v + (lo - s->lo), lo, hi, &t->obj.state, t->obj.state_values, t->obj.fixed,
                         t->obj.n_fixed, cfg->checkpoint.keep_last};
    checkpoint_save(&w, t->last_checkpoint, sizeof t->last_checkpoint);
    t->last_checkpoint_time = now_seconds();
    log_info("checkpoint: %s", t->last_checkpoint);
}

static Prefetch *start_prefetch(Trainer *t)
{
    const JobConfig *cfg = &t->job.cfg;
    PrefetchConfig pc = {.dataset = t->data, .sampler = &t->sampler, .augment = t->input,
                         .seed = (uint64_t)cfg->seed, .batch = t->plan.batch, .rank = t->plan.rank,
                         .world = t->plan.world, .accum = t->plan.accum, .first_step = t->step,
                         .end_step = t->plan.total_steps, .depth = cfg->data.prefetch, .mask = t->obj.mask};
    return prefetch_start(&pc);
}

typedef struct Progress {
    double start, window_start, window_loss, window_wait;
    double window_terms[OBJECTIVE_MAX_TERMS];
    long window_steps, first_step;
} Progress;

static void format_duration(char *buf, size_t size, double seconds)
{
    long s = lround(seconds);
    snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

/* "  rec_loss 0.1234  cls_loss 1.6" for the progress line, or ', "rec_loss": 0.1234, ...' for the
 * metrics file. */
static void format_terms(char *buf, size_t size, const Objective *obj, const double *terms, bool json)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < obj->n_terms && at < size; k++)
        at += (size_t)snprintf(buf + at, size - at, json ? ", \"%s\": %.8g" : "  %s %.4f", obj->terms[k], terms[k]);
}

static void report_progress(Trainer *t, Progress *pr, const StepResult *r)
{
    const Objective *obj = &t->obj;
    pr->window_loss += r->loss, pr->window_wait += r->data_wait, pr->window_steps++;
    for (size_t k = 0; k < obj->n_terms; k++)
        pr->window_terms[k] += r->terms[k];
    bool last = t->step == t->plan.total_steps;
    if (t->plan.rank != 0 || (t->step % t->job.cfg.log.every_steps && !last))
        return;
    double now = now_seconds(), elapsed = now - pr->window_start, n = (double)pr->window_steps;
    double images_per_s = n * (double)t->plan.global_batch / elapsed;
    double per_step = (now - pr->start) / (double)(t->step - pr->first_step);
    double epoch = (double)t->step / (double)t->plan.steps_per_epoch, loss = pr->window_loss / n;
    double terms[OBJECTIVE_MAX_TERMS];
    for (size_t k = 0; k < obj->n_terms; k++)
        terms[k] = pr->window_terms[k] / n;
    char eta[32], line_terms[256], json_terms[512];
    format_duration(eta, sizeof eta, per_step * (double)(t->plan.total_steps - t->step));
    format_terms(line_terms, sizeof line_terms, obj, terms, false);
    log_info("step %ld/%ld  epoch %.2f  loss %.4f%s  lr %.3e  %.1f img/s  data wait %.0f%%  ETA %s", t->step,
             t->plan.total_steps, epoch, loss, line_terms, r->lr, images_per_s, 100 * pr->window_wait / elapsed, eta);
    if (t->metrics) {
        format_terms(json_terms, sizeof json_terms, obj, terms, true);
        fprintf(t->metrics, "{\"step\": %ld, \"epoch\": %.6f, \"loss\": %.8g%s, \"lr\": %.8g, \"grad_norm\": %.8g, "
                "\"images_per_s\": %.4g, \"data_wait_s\": %.4g, \"seconds\": %.4g}\n",
                t->step, epoch, loss, json_terms, r->lr, r->grad_norm, images_per_s, pr->window_wait,
                now - pr->start);
        fflush(t->metrics);
    }
    *pr = (Progress){.start = pr->start, .window_start = now, .first_step = pr->first_step};
}

enum { CHECKPOINT_DUE = 1, STOP_REQUESTED = 2 };

/* One small all-reduce per step so that every rank takes the same decision. */
static int agree_on_actions(const Trainer *t)
{
    long long flags[2] = {0, g_stop_signal != 0 || t->step == t->stop_at};
    const JobCheckpoint *c = &t->job.cfg.checkpoint;
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

/* The objective's epoch hook after the last step of each epoch. */
static void end_epochs(Trainer *t)
{
    if (t->obj.cls->epoch_end && t->step % t->plan.steps_per_epoch == 0)
        t->obj.cls->epoch_end(&t->obj, (uint32_t)(t->step / t->plan.steps_per_epoch - 1));
}

int trainer_run(Trainer *t)
{
    Prefetch *pf = start_prefetch(t);
    BatchSource src = batch_source_prefetch(pf);
    Progress pr = {.start = now_seconds(), .window_start = now_seconds(), .first_step = t->step};
    t->last_checkpoint_time = now_seconds();
    int rc = 0;
    long saved_at = t->last_checkpoint[0] ? t->step : -1;
    while (t->step < t->plan.total_steps) {
        StepResult r = stepper_step(&t->stepper, &src, lr_at(&t->plan.schedule, (double)t->step), t->step);
        if (!isfinite(r.loss) || !isfinite(r.grad_norm)) {
            rc = non_finite_stop(t, &r);
            break;
        }
        t->step++;
        end_epochs(t);
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

void trainer_close(Trainer *t)
{
    if (!t)
        return;
    if (t->metrics)
        fclose(t->metrics);
    stepper_free(&t->stepper);
    objective_destroy(&t->obj);
    sampler_free(&t->sampler);
    if (t->data)
        dataset_close(t->data);
    free(t->config_yaml);
    job_free(&t->job);
    parallel_shutdown();
    free(t);
}
