/* MAE learns: 200 AdamW steps on one small batch of structured images, with a new random mask
 * every step, must bring the masked-patch loss far below what any mask-blind predictor can reach.
 *
 * Why the threshold: the best predictor that ignores the visible patches outputs, for each
 * masked pixel, the mean of that pixel over the batch; its loss is the per-pixel variance across
 * the batch (computed below, "blind"). Until the network uses the visible patches it cannot go
 * below that. Requiring the final loss (mean of the last 20 steps) to be under half of it demands
 * real use of context (the steps are the trainer's step function, step.h); in our runs it ends well below that (printed), so the margin is wide
 * while the test still fails if the encoder, the decoder's un-shuffling or the gradients break. */
#include "../testing.h"
#include "objective_jobs.h"

#include "maec/rng.h"
#include "maec/schedule.h"
#include "maec/step.h"

#include <stdlib.h>
#include <string.h>

enum { B = 8, H = 32, C = 3, STEPS = 200 };

/* Smooth images: a few coloured Gaussian blobs on a gradient, then standardised per channel. */
static void make_images(float *img)
{
    for (int b = 0; b < B; b++) {
        Rng r = rng_make(11, RNG_SYNTHETIC, 0, (uint64_t)b);
        float cx[3], cy[3], rad[3], col[3][C];
        for (int k = 0; k < 3; k++) {
            cx[k] = H * rng_uniform(&r), cy[k] = H * rng_uniform(&r), rad[k] = 3 + 6 * rng_uniform(&r);
            for (int c = 0; c < C; c++)
                col[k][c] = 2 * rng_uniform(&r) - 1;
        }
        for (int y = 0; y < H; y++)
            for (int x = 0; x < H; x++)
                for (int c = 0; c < C; c++) {
                    float v = 0.3f * (float)(x - y) / H;
                    for (int k = 0; k < 3; k++) {
                        float d2 = (x - cx[k]) * (x - cx[k]) + (y - cy[k]) * (y - cy[k]);
                        v += col[k][c] * expf(-d2 / (2 * rad[k] * rad[k]));
                    }
                    img[((b * H + y) * H + x) * C + c] = v;
                }
    }
    for (int c = 0; c < C; c++) {
        double s = 0, s2 = 0, n = B * H * H;
        for (int i = c; i < B * H * H * C; i += C)
            s += img[i], s2 += (double)img[i] * img[i];
        double mean = s / n, sd = sqrt(s2 / n - mean * mean);
        for (int i = c; i < B * H * H * C; i += C)
            img[i] = (float)((img[i] - mean) / sd);
    }
}

/* Loss of predicting every pixel by its mean over the batch: the per-pixel variance. */
static double blind_loss(const float *img)
{
    double total = 0;
    for (int i = 0; i < H * H * C; i++) {
        double s = 0, s2 = 0;
        for (int b = 0; b < B; b++)
            s += img[b * H * H * C + i], s2 += (double)img[b * H * H * C + i] * img[b * H * H * C + i];
        total += s2 / B - (s / B) * (s / B);
    }
    return total / (H * H * C);
}

/* The same images every step with a new mask: the step number is the epoch of the draw. */
typedef struct Masked {
    Batch batch;
    const MaskSpec *spec;
    uint32_t step;
} Masked;

static Batch *next_batch(void *ctx, double *waited)
{
    Masked *m = ctx;
    *waited = 0;
    mask_draw(&m->batch.masks, m->spec, m->batch.samples, B, 5, m->step++);
    return &m->batch;
}

static void release_batch(void *ctx) { (void)ctx; }

int main(void)
{
    Job job;
    Objective obj;
    MaecError err;
    if (test_make_objective(&job, &obj, "mae", "{img_size: 32, patch_size: 4, in_chans: 3, embed_dim: 64, depth: 2, "
                            "num_heads: 4, decoder_embed_dim: 32, decoder_depth: 1, decoder_num_heads: 4, "
                            "mlp_ratio: 4.0}", 0.75, false, 1, 0, &err)) {
        CHECK(false, "%s", err.msg);
        return test_summary("test_mae_overfit");
    }
    obj.cls->reserve(&obj, B);
    size_t samples[B] = {0, 1, 2, 3, 4, 5, 6, 7};
    int32_t labels[B] = {-1, -1, -1, -1, -1, -1, -1, -1};
    Masked masked = {.batch = {.n = B, .images = malloc(B * H * H * C * sizeof(float)), .labels = labels,
                               .samples = samples},
                     .spec = &obj.mask};
    make_images(masked.batch.images);
    mask_set_init(&masked.batch.masks, &obj.mask, B);
    const BatchSource src = {next_batch, release_batch, &masked};
    StepperConfig sc = {.mode = DIST_ALLREDUCE, .accum = 1, .adamw = adamw_defaults()};
    Stepper stepper;
    stepper_init(&stepper, &obj, &sc);
    LrSchedule sched = {2e-3, 1e-5, 20, STEPS};
    double first = 0, last = 0;
    for (int step = 0; step < STEPS; step++) {
        double loss = stepper_step(&stepper, &src, lr_at(&sched, step), step).loss;
        CHECK(isfinite(loss), "step %d: loss %g", step, loss);
        if (step == 0)
            first = loss;
        if (step >= STEPS - 20)
            last += loss / 20;
        if (step % 40 == 0 || step == STEPS - 1)
            printf("step %3d  loss %.4f\n", step, loss);
    }
    double blind = blind_loss(masked.batch.images);
    printf("start %.4f, end (mean of last 20) %.4f, mask-blind predictor %.4f: end/blind = %.3f\n", first,
           last, blind, last / blind);
    CHECK(last < 0.5 * blind, "loss %.4f did not fall below half the mask-blind loss %.4f", last, blind);
    CHECK(last < 0.5 * first, "loss %.4f did not fall below half its start %.4f", last, first);
    free(masked.batch.images);
    mask_set_free(&masked.batch.masks);
    stepper_free(&stepper);
    objective_destroy(&obj);
    job_free(&job);
    return test_summary("test_mae_overfit");
}
