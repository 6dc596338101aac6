/* Throughput of every kernel, forward and backward, at the shapes of ViT-Tiny/16 MAE pretraining
 * at batch 16: the encoder sees 49 visible patches + cls (T = 50, C = 192, 3 heads, MLP 768),
 * the decoder all 196 + cls (T = 197, C = 128, 4 heads, MLP 512).
 *
 *   bench_kernels [THREADS]     (default 1; the pool of include/maec/parallel.h)
 *
 * GEMM-bound kernels print GFLOP/s of their matrix products (2 flops per multiply-add; the
 * softmax inside attention is not counted). The others print GB/s of the least traffic they
 * could move: every array read once, every output written once, an accumulated gradient read
 * and written. Numbers only; nothing passes or fails. */
#include "maec/alloc.h"
#include "maec/attention.h"
#include "maec/error.h"
#include "maec/gelu.h"
#include "maec/layernorm.h"
#include "maec/linear.h"
#include "maec/parallel.h"
#include "maec/rng.h"
#include "maec/softmax.h"
#include "maec/tensor_ops.h"
#include "maec/timer.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* Each kernel runs for at least this long (after one warm-up call) and the mean is reported:
 * long enough to average out the pool's wake-ups, short enough for a shared machine. */
#define BENCH_MIN_SECONDS 0.1
#define BENCH_MIN_CALLS 3
#define BATCH 16

typedef struct Stage {
    const char *name;
    size_t B, T, C, NH, hidden;
    float *x, *y, *dx, *dy;         /* activations, [B*T, max(3C, hidden)] */
    float *w, *dw, *bias, *dbias;   /* the largest linear: [max(3C, hidden), max(C, hidden)] */
    float *mean, *rstd;             /* LayerNorm statistics, [B*T] */
    float *att, *datt, *scores;     /* [B, NH, T, T] */
} Stage;

static float *random_floats(size_t n, Rng *r)
{
    float *x = xalloc_aligned(n * sizeof(float), "benchmark buffer");
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rng_normal(r);
    return x;
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static void stage_init(Stage *s, Rng *r)
{
    size_t rows = s->B * s->T, width = max_size(3 * s->C, s->hidden);
    size_t weights = width * max_size(s->C, s->hidden), att = s->B * s->NH * s->T * s->T;
    float **activations[] = {&s->x, &s->y, &s->dx, &s->dy};
    for (size_t i = 0; i < sizeof activations / sizeof activations[0]; i++)
        *activations[i] = random_floats(rows * width, r);
    s->w = random_floats(weights, r);
    s->dw = random_floats(weights, r);
    s->bias = random_floats(width, r);
    s->dbias = random_floats(width, r);
    s->mean = random_floats(rows, r);
    s->rstd = random_floats(rows, r);
    s->att = random_floats(att, r);
    s->datt = random_floats(att, r);
    s->scores = random_floats(att, r);
    /* the backward passes read what their forward saved */
    layernorm_forward(s->y, s->mean, s->rstd, s->x, s->w, s->bias, rows, s->C);
    attention_forward(s->y, s->att, s->x, s->B, s->T, s->C, s->NH);
}

static void stage_free(Stage *s)
{
    float *buffers[] = {s->x,    s->y,    s->dx,   s->dy,   s->w,    s->dw,  s->bias,
                        s->dbias, s->mean, s->rstd, s->att, s->datt, s->scores};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        free(buffers[i]);
}

static size_t rows(const Stage *s) { return s->B * s->T; }

/* The three linears of a block: qkv C -> 3C, MLP fc1 C -> hidden, fc2 hidden -> C. */
static void run_qkv_forward(const Stage *s)
{
    linear_forward(s->y, s->x, s->w, s->bias, rows(s), s->C, 3 * s->C);
}

static void run_qkv_backward(const Stage *s)
{
    linear_backward(s->dx, s->dw, s->dbias, s->dy, s->x, s->w, rows(s), s->C, 3 * s->C);
}

static void run_fc1_forward(const Stage *s)
{
    linear_forward(s->y, s->x, s->w, s->bias, rows(s), s->C, s->hidden);
}

static void run_fc1_backward(const Stage *s)
{
    linear_backward(s->dx, s->dw, s->dbias, s->dy, s->x, s->w, rows(s), s->C, s->hidden);
}

static void run_fc2_forward(const Stage *s)
{
    linear_forward(s->y, s->x, s->w, s->bias, rows(s), s->hidden, s->C);
}

static void run_fc2_backward(const Stage *s)
{
    linear_backward(s->dx, s->dw, s->dbias, s->dy, s->x, s->w, rows(s), s->hidden, s->C);
}

static void run_layernorm_forward(const Stage *s)
{
    layernorm_forward(s->y, s->mean, s->rstd, s->x, s->w, s->bias, rows(s), s->C);
}

static void run_layernorm_backward(const Stage *s)
{
    layernorm_backward(s->dx, s->dw, s->dbias, s->dy, s->x, s->w, s->mean, s->rstd, rows(s),
                       s->C);
}

static void run_gelu_forward(const Stage *s) { gelu_forward(s->y, s->x, rows(s) * s->hidden); }

static void run_gelu_backward(const Stage *s)
{
    gelu_backward(s->dx, s->x, s->dy, rows(s) * s->hidden);
}

static void run_softmax_forward(const Stage *s)
{
    softmax_forward(s->scores, s->datt, s->B * s->NH * s->T, s->T);
}

static void run_softmax_backward(const Stage *s)
{
    softmax_backward(s->scores, s->att, s->datt, s->B * s->NH * s->T, s->T);
}

static void run_attention_forward(const Stage *s)
{
    attention_forward(s->y, s->att, s->x, s->B, s->T, s->C, s->NH);
}

static void run_attention_backward(const Stage *s)
{
    attention_backward(s->dx, s->scores, s->dy, s->x, s->att, s->B, s->T, s->C, s->NH);
}

static void run_residual_forward(const Stage *s)
{
    residual_forward(s->y, s->x, s->dx, rows(s) * s->C);
}

static void run_residual_backward(const Stage *s)
{
    residual_backward(s->dx, s->y, s->dy, rows(s) * s->C);
}

static void run_meanpool_forward(const Stage *s) { meanpool_forward(s->y, s->x, s->B, s->T, s->C); }

static void run_meanpool_backward(const Stage *s)
{
    meanpool_backward(s->dx, s->dy, s->B, s->T, s->C);
}

typedef struct Bench {
    const char *kernel;
    void (*run)(const Stage *s);
    double work; /* flops, or bytes when bytes is set */
    bool bytes;
} Bench;

static void bench_print(const Stage *s, const Bench *b)
{
    b->run(s);
    size_t calls = 0;
    double start = now_seconds(), elapsed;
    do {
        b->run(s);
        calls++;
        elapsed = now_seconds() - start;
    } while (elapsed < BENCH_MIN_SECONDS || calls < BENCH_MIN_CALLS);
    double per_call = elapsed / (double)calls;
    printf("%-8s %-18s %9.1f us %9.2f %s\n", s->name, b->kernel, per_call * 1e6,
           b->work / per_call * 1e-9, b->bytes ? "GB/s" : "GFLOP/s");
}

static void bench_stage(Stage *s, Rng *r)
{
    stage_init(s, r);
    const double M = (double)rows(s), C = (double)s->C, H = (double)s->hidden, T = (double)s->T;
    const double F = sizeof(float), scores = (double)(s->B * s->NH) * T * T;
    const Bench benches[] = {
        {"linear qkv fwd", run_qkv_forward, 2 * M * C * 3 * C, false},
        {"linear qkv bwd", run_qkv_backward, 4 * M * C * 3 * C, false},
        {"linear fc1 fwd", run_fc1_forward, 2 * M * C * H, false},
        {"linear fc1 bwd", run_fc1_backward, 4 * M * C * H, false},
        {"linear fc2 fwd", run_fc2_forward, 2 * M * H * C, false},
        {"linear fc2 bwd", run_fc2_backward, 4 * M * H * C, false},
        {"attention fwd", run_attention_forward, 4 * (double)s->B * T * T * C, false},
        {"attention bwd", run_attention_backward, 8 * (double)s->B * T * T * C, false},
        {"layernorm fwd", run_layernorm_forward, 2 * M * C * F, true},
        {"layernorm bwd", run_layernorm_backward, 4 * M * C * F, true},
        {"gelu fwd", run_gelu_forward, 2 * M * H * F, true},
        {"gelu bwd", run_gelu_backward, 4 * M * H * F, true},
        {"softmax fwd", run_softmax_forward, 2 * scores * F, true},
        {"softmax bwd", run_softmax_backward, 4 * scores * F, true},
        {"residual fwd", run_residual_forward, 3 * M * C * F, true},
        {"residual bwd", run_residual_backward, 5 * M * C * F, true},
        {"meanpool fwd", run_meanpool_forward, (M + (double)s->B) * C * F, true},
        {"meanpool bwd", run_meanpool_backward, (2 * M + (double)s->B) * C * F, true},
    };
    printf("%s: B=%zu T=%zu C=%zu heads=%zu MLP=%zu\n", s->name, s->B, s->T, s->C, s->NH,
           s->hidden);
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
        bench_print(s, &benches[i]);
    stage_free(s);
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long threads = argc > 1 ? strtol(argv[1], &end, 10) : 1;
    if (argc > 2 || (end && *end) || threads < 1 || threads > 1024)
        fatal("usage: bench_kernels [THREADS]: THREADS is a whole number from 1 to 1024, got '%s'",
              argc > 1 ? argv[1] : "");
    parallel_init((int)threads);
    printf("bench_kernels: %ld thread%s\n", threads, threads == 1 ? "" : "s");
    Rng r = rng_make(5, RNG_INIT, 0, 0);
    Stage encoder = {.name = "encoder", .B = BATCH, .T = 50, .C = 192, .NH = 3, .hidden = 768};
    Stage decoder = {.name = "decoder", .B = BATCH, .T = 197, .C = 128, .NH = 4, .hidden = 512};
    bench_stage(&encoder, &r);
    bench_stage(&decoder, &r);
    parallel_shutdown();
    return 0;
}
