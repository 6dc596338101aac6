/* Training throughput of any of maec's objectives at the configurations of docs/performance.md,
 * and the sgemm ceiling measured in the same run.
 *
 *   [mpiexec -n R] bench_train CONFIG [--objective mae] [--set KEY=VALUE]... [--steps 20] [--warmup 3]
 *                              [--threads N] [--bucket-kib 4096] [--overlap 1]
 *
 * CONFIG: mnist-tiny, pathology-tiny, pathology-small. The global batch is the configuration's,
 * split over R ranks. Each step is `maec train`'s step function (step.h) without the data path:
 * forward + backward, gradient all-reduce (overlapped with the backward pass unless --overlap 0),
 * AdamW (images in memory, labels uniform over 10 classes, masks drawn per step; the data wait of
 * the real pipeline is in maec train's metrics). --set passes job keys (objective.KEY for the
 * objective's). Communication is the time spent waiting for the all-reduce after the backward
 * pass. Reported: images/s from the median step, the split into compute (forward and backward),
 * optimizer and communication (medians), achieved GFLOP/s of the matrix products, peak RSS, and
 * the ceiling: FLOPs per image over the rate of sgemm on the model's own product shapes. The last
 * line is one `key=value` record for scripts. Nothing passes or fails. */
#include "maec/alloc.h"
#include "maec/dist.h"
#include "maec/gemm.h"
#include "maec/job.h"
#include "maec/parallel.h"
#include "maec/rng.h"
#include "maec/step.h"
#include "maec/timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_MAX_SETS 32
#define BENCH_CLASSES 10

typedef struct BenchConfig {
    const char *name, *model; /* the model keys, as YAML */
    int batch;                /* global */
} BenchConfig;

#define MODEL(img, patch, chans, D, depth, heads, Dd, ddepth, dheads)                                       \
    "model: {img_size: " #img ", patch_size: " #patch ", in_chans: " #chans ", embed_dim: " #D ", depth: " \
    #depth ", num_heads: " #heads ", decoder_embed_dim: " #Dd ", decoder_depth: " #ddepth                   \
    ", decoder_num_heads: " #dheads ", mlp_ratio: 4.0}\n"
static const BenchConfig configs[] = {
    {"mnist-tiny", MODEL(28, 4, 1, 192, 6, 3, 128, 2, 4), 128},
    {"pathology-tiny", MODEL(224, 16, 3, 192, 12, 3, 128, 2, 4), 16},
    {"pathology-small", MODEL(224, 16, 3, 384, 12, 6, 256, 4, 8), 16},
};

typedef struct BenchArgs {
    const BenchConfig *cfg;
    const char *objective;
    char *sets[BENCH_MAX_SETS];
    size_t n_sets;
    int steps, warmup, threads, bucket_kib, overlap;
} BenchArgs;

/* PHASE_CPU: CPU seconds of all threads over the step, the number to compare on a busy machine. */
enum { PHASE_COMPUTE, PHASE_COMM, PHASE_OPTIM, PHASE_STEP, PHASE_CPU, PHASES };
static const char *const phase_names[PHASES] = {"compute", "comm", "optimizer", "step", "cpu"};

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Flops and seconds of gemm on one (M, N, K) in the three layouts of a linear layer's forward
 * (A B^T), input gradient (A B) and weight gradient (A^T B). */
static void time_linear_shapes(size_t M, size_t N, size_t K, double *flops, double *seconds)
{
    size_t big = (M > N ? M : N) * (K > N ? K : N) + M * N;
    float *a = xcalloc(big, sizeof(float), "a"), *b = xcalloc(big, sizeof(float), "b"),
          *c = xcalloc(big, sizeof(float), "c");
    double start = now_seconds();
    for (int rep = 0; rep < 4 || now_seconds() - start < 0.25; rep++) {
        double t0 = now_seconds();
        gemm(false, true, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);   /* out = x W^T */
        gemm(false, false, M, K, N, 1.0f, c, N, b, K, 1.0f, a, K);  /* dx += dout W */
        gemm(true, false, N, K, M, 1.0f, c, N, a, K, 1.0f, b, K);   /* dW += dout^T x */
        if (rep > 0) /* the first call warms caches and the pool */
            *seconds += now_seconds() - t0, *flops += 3 * 2.0 * (double)M * (double)N * (double)K;
    }
    free(a), free(b), free(c);
}

/* sgemm FLOP/s on the model's big products: the encoder's and decoder's MLP and qkv layers. */
static double sgemm_rate(const ModelConfig *m, const MaskSpec *mask, size_t B)
{
    size_t te = B * (1 + mask->visible), td = B * (1 + mask->visible + mask->masked);
    size_t D = (size_t)m->embed_dim, Dd = (size_t)m->decoder_embed_dim;
    double flops = 0, seconds = 0;
    time_linear_shapes(te, 4 * D, D, &flops, &seconds);
    time_linear_shapes(te, 3 * D, D, &flops, &seconds);
    time_linear_shapes(td, 4 * Dd, Dd, &flops, &seconds);
    time_linear_shapes(td, 3 * Dd, Dd, &flops, &seconds);
    return flops / seconds;
}

static void usage_exit(void)
{
    fprintf(stderr, "usage: [mpiexec -n R] bench_train mnist-tiny|pathology-tiny|pathology-small [--objective NAME] "
                    "[--set KEY=VALUE]... [--steps N] [--warmup N] [--threads N] [--bucket-kib N] [--overlap 0|1]\n");
    exit(2);
}

static int *int_option(BenchArgs *a, const char *name)
{
    return !strcmp(name, "--steps") ? &a->steps : !strcmp(name, "--warmup") ? &a->warmup
           : !strcmp(name, "--threads") ? &a->threads : !strcmp(name, "--bucket-kib") ? &a->bucket_kib
           : !strcmp(name, "--overlap") ? &a->overlap : NULL;
}

static void parse(int argc, char **argv, BenchArgs *a)
{
    *a = (BenchArgs){.objective = "mae", .steps = 20, .warmup = 3, .threads = 1, .bucket_kib = 4096, .overlap = 1};
    for (int i = 1; i < argc; i++) {
        int *target = int_option(a, argv[i]);
        if (target && i + 1 < argc) {
            *target = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--objective") && i + 1 < argc) {
            a->objective = argv[++i];
        } else if (!strcmp(argv[i], "--set") && i + 1 < argc && a->n_sets < BENCH_MAX_SETS) {
            a->sets[a->n_sets++] = argv[++i];
        } else {
            for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++)
                if (!strcmp(argv[i], configs[c].name))
                    a->cfg = &configs[c];
            if (!a->cfg)
                usage_exit();
        }
    }
    if (!a->cfg || a->steps < 1 || a->warmup < 0 || a->threads < 1 || a->bucket_kib < 1 || a->overlap < 0 ||
        a->overlap > 1)
        usage_exit();
}

/* The same images every step, new masks and labels: a step's samples are keyed by step and rank. */
typedef struct SyntheticBatches {
    Batch batch;
    const MaskSpec *mask;
    long step;
} SyntheticBatches;

static Batch *next_batch(void *ctx, double *waited)
{
    SyntheticBatches *s = ctx;
    Batch *b = &s->batch;
    *waited = 0;
    for (size_t i = 0; i < b->n; i++) {
        b->samples[i] = (size_t)(s->step * 1000 + dist_rank()) * b->n + i;
        b->labels[i] = (int32_t)(b->samples[i] % BENCH_CLASSES);
    }
    mask_draw(&b->masks, s->mask, b->samples, b->n, 7, 0);
    s->step++;
    return b;
}

static void release_batch(void *ctx) { (void)ctx; }

static void synthetic_init(SyntheticBatches *s, const ModelConfig *m, const MaskSpec *mask, size_t B)
{
    size_t pixels = B * (size_t)(m->img_size * m->img_size * m->in_chans);
    *s = (SyntheticBatches){.batch = {.n = B}, .mask = mask};
    s->batch.images = xcalloc(pixels, sizeof(float), "images");
    s->batch.labels = xcalloc(B, sizeof(int32_t), "labels");
    s->batch.samples = xcalloc(B, sizeof(size_t), "samples");
    mask_set_init(&s->batch.masks, mask, B);
    Rng r = rng_make(1, RNG_SYNTHETIC, 0, 0);
    for (size_t i = 0; i < pixels; i++)
        s->batch.images[i] = (float)rng_normal(&r);
}

static void synthetic_free(SyntheticBatches *s)
{
    free(s->batch.images), free(s->batch.labels), free(s->batch.samples);
    mask_set_free(&s->batch.masks);
}

/* The job: the configuration's model, norm_pix_loss on, mask 0.75, the objective, then --set. */
static void make_objective(const BenchArgs *a, Job *job, Objective *obj, int world)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "data: {train: synthetic}\n%smasking: {ratio: 0.75}\nobjective: {name: %s}\n",
             a->cfg->model, a->objective);
    MaecError err;
    if (job_load_string(job, yaml, "bench_train", a->sets, a->n_sets, &err) ||
        job_make_objective(job, obj, NULL, (size_t)world, &err))
        fatal("%s", err.msg);
    vit_init_weights(&obj->table, obj->params, 0);
}

/* One training step; t[phase] gets its seconds. */
static void timed_step(Stepper *stepper, const BatchSource *src, long step, double *t, double *flops)
{
    double c0 = cpu_seconds(), f0 = gemm_flops(), t0 = now_seconds();
    StepResult r = stepper_step(stepper, src, 1e-4, step);
    t[PHASE_STEP] = now_seconds() - t0;
    *flops = gemm_flops() - f0;
    t[PHASE_CPU] = cpu_seconds() - c0;
    t[PHASE_COMPUTE] = r.compute_s, t[PHASE_COMM] = r.comm_s, t[PHASE_OPTIM] = r.optim_s;
}

int main(int argc, char **argv)
{
    dist_init(&argc, &argv);
    BenchArgs a;
    parse(argc, argv, &a);
    const BenchConfig *cfg = a.cfg;
    int world = dist_size(), steps = a.steps;
    if (cfg->batch % world)
        fatal("the global batch %d of %s does not split over %d ranks", cfg->batch, cfg->name, world);
    size_t B = (size_t)(cfg->batch / world);
    parallel_init(a.threads);
    Job job;
    Objective obj;
    make_objective(&a, &job, &obj, world);
    obj.cls->reserve(&obj, B);
    StepperConfig sc = {.mode = DIST_ALLREDUCE, .accum = 1, .bucket_mb = a.bucket_kib / 1024.0,
                        .overlap = a.overlap != 0, .adamw = adamw_defaults()};
    Stepper stepper;
    stepper_init(&stepper, &obj, &sc);
    SyntheticBatches batches;
    synthetic_init(&batches, &job.cfg.model, &obj.mask, B);
    const BatchSource src = {next_batch, release_batch, &batches};
    double *times = xcalloc((size_t)steps * PHASES, sizeof(double), "times"), t[PHASES], step_flops = 0;
    for (int s = 0; s < a.warmup; s++)
        timed_step(&stepper, &src, s, t, &step_flops);
    for (int s = 0; s < steps; s++) {
        timed_step(&stepper, &src, a.warmup + s, t, &step_flops);
        dist_allreduce_max_double(t, PHASES); /* a step lasts as long as its slowest rank */
        for (int p = 0; p < PHASES; p++)
            times[p * steps + s] = t[p];
    }
    double med[PHASES];
    for (int p = 0; p < PHASES; p++)
        med[p] = median(times + p * steps, steps);
    double rate = sgemm_rate(&job.cfg.model, &obj.mask, B);
    double per_image = step_flops / (double)B, images_per_s = cfg->batch / med[PHASE_STEP];
    double ceiling = rate / per_image * world, rss = (double)peak_rss_bytes() / (1 << 20);
    double gflops = step_flops * world / med[PHASE_STEP] / 1e9;
    if (dist_rank() == 0) {
        printf("%s, objective %s: %d ranks x %d threads, global batch %d, %zu parameters, all-reduce %s\n", cfg->name,
               obj.cls->name, world, a.threads, cfg->batch, obj.table.numel,
               a.overlap ? "overlapped with backward" : "after backward");
        printf("  %.1f images/s (median of %d steps); per step:", images_per_s, steps);
        for (int p = 0; p < PHASES; p++)
            printf(" %s %.1f ms%s", phase_names[p], 1e3 * med[p], p + 1 < PHASES ? "," : "\n");
        printf("  %.2f GFLOP/image, %.1f GFLOP/s achieved; sgemm %.1f GFLOP/s per rank -> ceiling %.1f images/s "
               "(%.0f%%); peak RSS %.0f MiB per rank\n", per_image / 1e9, gflops, rate / 1e9, ceiling,
               100 * images_per_s / ceiling, rss);
        printf("RESULT config=%s objective=%s ranks=%d threads=%d overlap=%d images_per_s=%.2f compute_ms=%.2f "
               "comm_ms=%.2f optimizer_ms=%.2f cpu_ms=%.2f gflops=%.2f ceiling=%.2f rss_mib=%.0f\n",
               cfg->name, obj.cls->name, world, a.threads, a.overlap, images_per_s, 1e3 * med[PHASE_COMPUTE],
               1e3 * med[PHASE_COMM], 1e3 * med[PHASE_OPTIM], 1e3 * med[PHASE_CPU], gflops, ceiling, rss);
    }
    free(times);
    synthetic_free(&batches);
    stepper_free(&stepper);
    objective_destroy(&obj);
    job_free(&job);
    parallel_shutdown();
    dist_finalize();
    return 0;
}
