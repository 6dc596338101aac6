/* Training throughput of maec's MAE at the configurations of docs/performance.md, and the sgemm
 * ceiling measured in the same run.
 *
 *   [mpiexec -n R] bench_train CONFIG [--steps 20] [--warmup 3] [--threads N] [--bucket-kib 4096]
 *                              [--overlap 1]
 *
 * CONFIG: mnist-tiny, pathology-tiny, pathology-small. The global batch is the configuration's,
 * split over R ranks. Each step is what `maec train` runs per step without the data path:
 * forward + backward, gradient all-reduce (overlapped with the backward pass unless --overlap 0),
 * AdamW (images in memory; the data wait of the real pipeline is in maec train's metrics).
 * Communication is the time spent waiting for the all-reduce after the backward pass. Reported: images/s from the median step, the split into
 * forward, backward, optimizer and communication (medians), achieved GFLOP/s of the matrix
 * products, peak RSS, and the ceiling: FLOPs per image over the rate of sgemm on the model's own
 * product shapes. The last line is one `key=value` record for scripts. Nothing passes or fails. */
#include "maec/adamw.h"
#include "maec/alloc.h"
#include "maec/dist.h"
#include "maec/gemm.h"
#include "maec/gradsync.h"
#include "maec/mae.h"
#include "maec/masking.h"
#include "maec/parallel.h"
#include "maec/rng.h"
#include "maec/timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct BenchConfig {
    const char *name;
    MaeConfig mae;
    int batch; /* global */
} BenchConfig;

static const BenchConfig configs[] = {
    {"mnist-tiny", {{28, 4, 1, 192, 6, 3, 128, 2, 4, 4.0}, true, 0.75}, 128},
    {"pathology-tiny", {{224, 16, 3, 192, 12, 3, 128, 2, 4, 4.0}, true, 0.75}, 16},
    {"pathology-small", {{224, 16, 3, 384, 12, 6, 256, 4, 8, 4.0}, true, 0.75}, 16},
};

/* PHASE_CPU: CPU seconds of all threads over the step, the number to compare on a busy machine. */
enum { PHASE_FORWARD, PHASE_BACKWARD, PHASE_COMM, PHASE_OPTIM, PHASE_STEP, PHASE_CPU, PHASES };
static const char *const phase_names[PHASES] = {"forward", "backward", "comm", "optimizer", "step", "cpu"};

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
static double sgemm_rate(const Mae *mae, size_t B)
{
    const ModelConfig *m = &mae->cfg.model;
    size_t te = B * (1 + mae->keep), td = B * (1 + mae->num_patches);
    size_t D = (size_t)m->embed_dim, Dd = (size_t)m->decoder_embed_dim;
    double flops = 0, seconds = 0;
    time_linear_shapes(te, 4 * D, D, &flops, &seconds);
    time_linear_shapes(te, 3 * D, D, &flops, &seconds);
    time_linear_shapes(td, 4 * Dd, Dd, &flops, &seconds);
    time_linear_shapes(td, 3 * Dd, Dd, &flops, &seconds);
    return flops / seconds;
}

static void random_images(float *x, size_t n)
{
    Rng r = rng_make(1, RNG_SYNTHETIC, 0, 0);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rng_normal(&r);
}

static void usage_exit(void)
{
    fprintf(stderr, "usage: [mpiexec -n R] bench_train mnist-tiny|pathology-tiny|pathology-small "
                    "[--steps N] [--warmup N] [--threads N] [--bucket-kib N] [--overlap 0|1]\n");
    exit(2);
}

static const BenchConfig *parse(int argc, char **argv, int *steps, int *warmup, int *threads, int *bucket_kib,
                                int *overlap)
{
    const BenchConfig *cfg = NULL;
    for (int i = 1; i < argc; i++) {
        int *target = !strcmp(argv[i], "--steps") ? steps : !strcmp(argv[i], "--warmup") ? warmup
                      : !strcmp(argv[i], "--threads") ? threads : !strcmp(argv[i], "--bucket-kib") ? bucket_kib
                      : !strcmp(argv[i], "--overlap") ? overlap : NULL;
        if (target && i + 1 < argc) {
            *target = atoi(argv[++i]);
            continue;
        }
        for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++)
            if (!strcmp(argv[i], configs[c].name))
                cfg = &configs[c];
        if (!cfg)
            usage_exit();
    }
    if (!cfg || *steps < 1 || *warmup < 0 || *threads < 1 || *bucket_kib < 1 || *overlap < 0 || *overlap > 1)
        usage_exit();
    return cfg;
}

/* One training step; t[phase] gets its seconds. Forward alone is timed by a separate forward
 * pass, so backward = (forward + backward) - forward. */
static void timed_step(Mae *mae, MaeActs *acts, const float *images, int32_t *ids, size_t *samples, size_t B,
                       float *m, float *v, long step, GradSync *sync, bool overlap, double *t, double *flops)
{
    for (size_t b = 0; b < B; b++)
        samples[b] = (size_t)(step * 1000 + dist_rank()) * B + b;
    mask_random(ids, samples, B, mae->num_patches, 7, 0);
    double t0 = now_seconds();
    mae_forward(mae, acts, images, ids, B);
    double t1 = now_seconds(), c1 = cpu_seconds();
    memset(mae->grads, 0, mae->table.padded * sizeof(float));
    double f0 = gemm_flops();
    const GradReady ready = {gradsync_ready, sync};
    gradsync_begin(sync, false);
    mae_forward_backward(mae, acts, images, ids, B, 1.0f, overlap ? &ready : NULL);
    *flops = gemm_flops() - f0;
    double t2 = now_seconds();
    gradsync_finish(sync);
    double t3 = now_seconds();
    AdamWConfig opt = adamw_defaults();
    adamw_update(mae->params, mae->grads, m, v, 0, mae->table.padded, &mae->table, &opt, 1e-4, step + 1);
    double t4 = now_seconds();
    t[PHASE_CPU] = cpu_seconds() - c1;
    t[PHASE_FORWARD] = t1 - t0, t[PHASE_BACKWARD] = (t2 - t1) - (t1 - t0);
    t[PHASE_COMM] = t3 - t2, t[PHASE_OPTIM] = t4 - t3;
    t[PHASE_STEP] = t4 - t1; /* the training step proper: forward + backward, comm, optimizer */
}

int main(int argc, char **argv)
{
    dist_init(&argc, &argv);
    int steps = 20, warmup = 3, threads = 1, bucket_kib = 4096, overlap = 1; /* maec train's defaults */
    const BenchConfig *cfg = parse(argc, argv, &steps, &warmup, &threads, &bucket_kib, &overlap);
    size_t bucket = (size_t)bucket_kib * 1024 / sizeof(float);
    int world = dist_size();
    if (cfg->batch % world)
        fatal("the global batch %d of %s does not split over %d ranks", cfg->batch, cfg->name, world);
    size_t B = (size_t)(cfg->batch / world);
    parallel_init(threads);
    Mae mae;
    MaecError err;
    if (mae_init(&mae, &cfg->mae, (size_t)world, &err))
        fatal("%s", err.msg);
    vit_init_weights(&mae.table, mae.params, 0);
    MaeActs acts;
    mae_acts_init(&acts, &mae, B);
    GradSync sync;
    gradsync_init(&sync, GRADSYNC_ALLREDUCE, mae.grads, mae.table.padded, bucket, NULL, NULL);
    const ModelConfig *mc = &cfg->mae.model;
    size_t pixels = B * (size_t)(mc->img_size * mc->img_size * mc->in_chans);
    float *images = xcalloc(pixels, sizeof(float), "images");
    random_images(images, pixels);
    int32_t *ids = xcalloc(B * mae.num_patches, sizeof(int32_t), "ids");
    size_t *samples = xcalloc(B, sizeof(size_t), "samples");
    float *m = xcalloc(mae.table.padded, sizeof(float), "m"), *v = xcalloc(mae.table.padded, sizeof(float), "v");
    double *times = xcalloc((size_t)steps * PHASES, sizeof(double), "times"), t[PHASES], step_flops = 0;
    for (int s = 0; s < warmup; s++)
        timed_step(&mae, &acts, images, ids, samples, B, m, v, s, &sync, overlap, t, &step_flops);
    for (int s = 0; s < steps; s++) {
        timed_step(&mae, &acts, images, ids, samples, B, m, v, warmup + s, &sync, overlap, t, &step_flops);
        dist_allreduce_max_double(t, PHASES); /* a step lasts as long as its slowest rank */
        for (int p = 0; p < PHASES; p++)
            times[p * steps + s] = t[p];
    }
    double med[PHASES];
    for (int p = 0; p < PHASES; p++)
        med[p] = median(times + p * steps, steps);
    double rate = sgemm_rate(&mae, B);
    double per_image = step_flops / (double)B, images_per_s = cfg->batch / med[PHASE_STEP];
    double ceiling = rate / per_image * world, rss = (double)peak_rss_bytes() / (1 << 20);
    double gflops = step_flops * world / med[PHASE_STEP] / 1e9;
    if (dist_rank() == 0) {
        printf("%s: %d ranks x %d threads, global batch %d, %zu parameters, all-reduce %s\n", cfg->name, world,
               threads, cfg->batch, mae.table.numel, overlap ? "overlapped with backward" : "after backward");
        printf("  %.1f images/s (median of %d steps); per step:", images_per_s, steps);
        for (int p = 0; p < PHASES; p++)
            printf(" %s %.1f ms%s", phase_names[p], 1e3 * med[p], p + 1 < PHASES ? "," : "\n");
        printf("  %.2f GFLOP/image, %.1f GFLOP/s achieved; sgemm %.1f GFLOP/s per rank -> ceiling %.1f images/s "
               "(%.0f%%); peak RSS %.0f MiB per rank\n", per_image / 1e9, gflops, rate / 1e9, ceiling,
               100 * images_per_s / ceiling, rss);
        printf("RESULT config=%s ranks=%d threads=%d overlap=%d images_per_s=%.2f forward_ms=%.2f backward_ms=%.2f "
               "comm_ms=%.2f optimizer_ms=%.2f cpu_ms=%.2f gflops=%.2f ceiling=%.2f rss_mib=%.0f\n",
               cfg->name, world, threads, overlap, images_per_s, 1e3 * med[PHASE_FORWARD], 1e3 * med[PHASE_BACKWARD],
               1e3 * med[PHASE_COMM], 1e3 * med[PHASE_OPTIM], 1e3 * med[PHASE_CPU], gflops, ceiling, rss);
    }
    free(images), free(ids), free(samples), free(m), free(v), free(times);
    gradsync_free(&sync);
    mae_acts_free(&acts);
    mae_free(&mae);
    parallel_shutdown();
    dist_finalize();
    return 0;
}
