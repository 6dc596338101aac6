/* MAE learns: 200 AdamW steps on one small batch of structured images, with a new random mask
 * every step, must bring the masked-patch loss far below what any mask-blind predictor can reach.
 *
 * Why the threshold: the best predictor that ignores the visible patches outputs, for each
 * masked pixel, the mean of that pixel over the batch; its loss is the per-pixel variance across
 * the batch (computed below, "blind"). Until the network uses the visible patches it cannot go
 * below that. Requiring the final loss (mean of the last 20 steps) to be under half of it demands
 * real use of context; in our runs it ends well below that (printed), so the margin is wide
 * while the test still fails if the encoder, the decoder's un-shuffling or the gradients break. */
#include "../testing.h"

#include "maec/adamw.h"
#include "maec/mae.h"
#include "maec/masking.h"
#include "maec/rng.h"
#include "maec/schedule.h"

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

int main(void)
{
    MaeConfig cfg = {{H, 4, C, 64, 2, 4, 32, 1, 4, 4.0}, false, 0.75};
    Mae mae;
    MaecError err;
    CHECK(mae_init(&mae, &cfg, 1, &err) == 0, "mae_init: %s", err.msg);
    vit_init_weights(&mae.table, mae.params, 0);
    MaeActs acts;
    mae_acts_init(&acts, &mae, B);
    float *img = malloc(B * H * H * C * sizeof(float));
    make_images(img);
    int32_t *ids = malloc(B * mae.num_patches * sizeof(int32_t));
    float *m = calloc(mae.table.padded, sizeof(float)), *v = calloc(mae.table.padded, sizeof(float));
    const size_t samples[B] = {0, 1, 2, 3, 4, 5, 6, 7};
    AdamWConfig opt = adamw_defaults();
    LrSchedule sched = {2e-3, 1e-5, 20, STEPS};
    double first = 0, last = 0;
    for (int step = 0; step < STEPS; step++) {
        mask_random(ids, samples, B, mae.num_patches, 5, (uint32_t)step);
        memset(mae.grads, 0, mae.table.padded * sizeof(float));
        double loss = mae_forward_backward(&mae, &acts, img, ids, B, 1.0f, NULL);
        CHECK(isfinite(loss), "step %d: loss %g", step, loss);
        adamw_update(mae.params, mae.grads, m, v, 0, mae.table.padded, &mae.table, &opt, lr_at(&sched, step), step + 1);
        if (step == 0)
            first = loss;
        if (step >= STEPS - 20)
            last += loss / 20;
        if (step % 40 == 0 || step == STEPS - 1)
            printf("step %3d  loss %.4f\n", step, loss);
    }
    double blind = blind_loss(img);
    printf("start %.4f, end (mean of last 20) %.4f, mask-blind predictor %.4f: end/blind = %.3f\n", first,
           last, blind, last / blind);
    CHECK(last < 0.5 * blind, "loss %.4f did not fall below half the mask-blind loss %.4f", last, blind);
    CHECK(last < 0.5 * first, "loss %.4f did not fall below half its start %.4f", last, first);
    free(img), free(ids), free(m), free(v);
    mae_acts_free(&acts);
    mae_free(&mae);
    return test_summary("test_mae_overfit");
}
