#include "maec/mae.h"

#include "maec/masking.h"
#include "maec/patchify.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NORM_PIX_EPS 1e-6 /* inside the sqrt, as the reference */

int mae_init(Mae *mae, const MaeConfig *cfg, size_t pad_multiple, MaecError *err)
{
    memset(mae, 0, sizeof *mae);
    if (vit_config_validate(&cfg->model, err))
        return -1;
    mae->cfg = *cfg;
    mae->num_patches = (size_t)vit_num_patches(&cfg->model);
    mae->patch_dim = (size_t)vit_patch_dim(&cfg->model);
    if (mae_set_mask_ratio(mae, cfg->mask_ratio, err))
        return -1;
    param_table_init(&mae->table);
    encoder_declare(&mae->table, &cfg->model, true);
    decoder_declare(&mae->table, &cfg->model);
    param_table_finish(&mae->table, pad_multiple);
    mae->params = xalloc_aligned(mae->table.padded * sizeof(float), "model parameters");
    mae->grads = xalloc_aligned(mae->table.padded * sizeof(float), "parameter gradients");
    encoder_bind(&mae->enc, &cfg->model, &mae->table, mae->params, mae->grads, true);
    decoder_bind(&mae->dec, &cfg->model, &mae->table, mae->params, mae->grads);
    return 0;
}

int mae_set_mask_ratio(Mae *mae, double ratio, MaecError *err)
{
    size_t keep = mask_keep_count(mae->num_patches, ratio);
    if (!(ratio >= 0.0 && ratio < 1.0) || keep < 1)
        return error_set(err, "masking.ratio = %g leaves %zu of %zu patches visible; the encoder needs "
                              "at least one (use a ratio below %g)", ratio, keep, mae->num_patches,
                         1.0 - 1.0 / (double)mae->num_patches);
    mae->cfg.mask_ratio = ratio;
    mae->keep = keep;
    return 0;
}

void mae_free(Mae *mae)
{
    encoder_free(&mae->enc);
    decoder_free(&mae->dec);
    free(mae->params);
    free(mae->grads);
    param_table_free(&mae->table);
    memset(mae, 0, sizeof *mae);
}

void mae_acts_init(MaeActs *acts, const Mae *mae, size_t B)
{
    const size_t L = mae->num_patches, P = mae->patch_dim, D = mae->enc.dim;
    size_t bytes = encoder_acts_bytes(&mae->enc, B, mae->keep) + decoder_acts_bytes(&mae->dec, B, mae->keep) +
                   arena_floats_size(B * L * P) + arena_floats_size(B * (1 + L) * P) +
                   arena_floats_size(B * (1 + mae->keep) * D);
    memset(acts, 0, sizeof *acts);
    acts->B = B;
    arena_init(&acts->arena, bytes, "MAE activations");
    encoder_acts_init(&acts->enc, &mae->enc, B, mae->keep, &acts->arena);
    decoder_acts_init(&acts->dec, &mae->dec, B, mae->keep, &acts->arena);
    acts->target = arena_floats(&acts->arena, B * L * P);
    acts->dpred = arena_floats(&acts->arena, B * (1 + L) * P);
    acts->dlatent = arena_floats(&acts->arena, B * (1 + mae->keep) * D);
}

void mae_acts_free(MaeActs *acts)
{
    encoder_acts_free(&acts->enc);
    decoder_acts_free(&acts->dec);
    arena_free(&acts->arena);
}

/* The mean and sqrt(var + eps) of a patch, var unbiased (torch.var default). */
static void patch_stats(const float *patch, size_t n, double *mean, double *scale)
{
    double sum = 0.0, sq = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += patch[i];
    *mean = sum / (double)n;
    for (size_t i = 0; i < n; i++)
        sq += ((double)patch[i] - *mean) * ((double)patch[i] - *mean);
    *scale = sqrt(sq / (double)(n - 1) + NORM_PIX_EPS);
}

/* target[n] <- (target - mean) / sqrt(var + eps) */
static void normalize_patch(float *target, size_t n)
{
    double mean, scale;
    patch_stats(target, n, &mean, &scale);
    double inv = 1.0 / scale;
    for (size_t i = 0; i < n; i++)
        target[i] = (float)(((double)target[i] - mean) * inv);
}

static void make_targets(const Mae *mae, MaeActs *acts, const float *images, size_t B)
{
    const Encoder *enc = &mae->enc;
    patchify(acts->target, images, B, enc->geometry);
    if (mae->cfg.norm_pix_loss)
        for (size_t i = 0; i < B * mae->num_patches; i++)
            normalize_patch(acts->target + i * mae->patch_dim, mae->patch_dim);
}

/* Mean over masked patches of the per-patch MSE. With dpred, also writes its gradient times
 * grad_scale (zero on visible patches and on the CLS row). */
static double masked_loss(const Mae *mae, MaeActs *acts, const int32_t *ids_shuffle, size_t B,
                          float *dpred, float grad_scale)
{
    const size_t L = mae->num_patches, P = mae->patch_dim, masked = L - mae->keep;
    const double count = (double)(B * masked);
    if (dpred)
        memset(dpred, 0, B * (1 + L) * P * sizeof(float));
    double total = 0.0;
    for (size_t b = 0; b < B; b++)
        for (size_t j = mae->keep; j < L; j++) {
            size_t patch = (size_t)ids_shuffle[b * L + j];
            const float *pred = acts->dec.pred + (b * (1 + L) + 1 + patch) * P;
            const float *target = acts->target + (b * L + patch) * P;
            double sq = 0.0;
            for (size_t k = 0; k < P; k++)
                sq += ((double)pred[k] - target[k]) * ((double)pred[k] - target[k]);
            total += sq / (double)P;
            if (dpred) {
                float *d = dpred + (b * (1 + L) + 1 + patch) * P;
                float scale = (float)(2.0 * grad_scale / ((double)P * count));
                for (size_t k = 0; k < P; k++)
                    d[k] = scale * (pred[k] - target[k]);
            }
        }
    return total / count;
}

static void run_forward(const Mae *mae, MaeActs *acts, const float *images, const int32_t *ids_shuffle, size_t B)
{
    if (B > acts->B)
        fatal("internal: MAE batch of %zu exceeds the %zu its activations were sized for", B, acts->B);
    encoder_forward(&mae->enc, &acts->enc, images, ids_shuffle, mae->num_patches, B, mae->keep);
    decoder_forward(&mae->dec, &acts->dec, acts->enc.stack.out, ids_shuffle, mae->keep, B);
    make_targets(mae, acts, images, B);
}

double mae_forward(const Mae *mae, MaeActs *acts, const float *images, const int32_t *ids_shuffle, size_t B)
{
    run_forward(mae, acts, images, ids_shuffle, B);
    return masked_loss(mae, acts, ids_shuffle, B, NULL, 0.0f);
}

double mae_forward_backward(const Mae *mae, MaeActs *acts, const float *images, const int32_t *ids_shuffle,
                            size_t B, float grad_scale, const GradReady *ready)
{
    run_forward(mae, acts, images, ids_shuffle, B);
    double loss = masked_loss(mae, acts, ids_shuffle, B, acts->dpred, grad_scale);
    memset(acts->dlatent, 0, B * (1 + mae->keep) * mae->enc.dim * sizeof(float));
    decoder_backward(&mae->dec, &acts->dec, acts->enc.stack.out, acts->dpred, acts->dlatent, ids_shuffle,
                     mae->keep, B, ready);
    encoder_backward(&mae->enc, &acts->enc, acts->dlatent, B, mae->keep, ready);
    return loss;
}

void mae_pixel_prediction(const Mae *mae, const MaeActs *acts, const float *images, size_t B, float *pixels)
{
    const size_t L = mae->num_patches, P = mae->patch_dim;
    patchify(pixels, images, B, mae->enc.geometry);
    for (size_t b = 0; b < B; b++)
        for (size_t n = 0; n < L; n++) {
            const float *pred = acts->dec.pred + (b * (1 + L) + 1 + n) * P;
            float *out = pixels + (b * L + n) * P;
            double mean = 0.0, scale = 1.0;
            if (mae->cfg.norm_pix_loss)
                patch_stats(out, P, &mean, &scale);
            for (size_t k = 0; k < P; k++)
                out[k] = (float)(pred[k] * scale + mean);
        }
}
