#include "maec/pixel_recon.h"

#include "maec/patchify.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NORM_PIX_EPS 1e-6 /* inside the sqrt, as the reference */

void pixel_recon_declare(ParamTable *table, const ModelConfig *model)
{
    DecoderConfig dc = decoder_config_mae(model);
    encoder_declare(table, model, "", true);
    decoder_declare(table, &dc);
}

void pixel_recon_bind(PixelRecon *r, const ModelConfig *model, bool norm_pix_loss, const ParamTable *table,
                      float *params, float *grads)
{
    DecoderConfig dc = decoder_config_mae(model);
    memset(r, 0, sizeof *r);
    r->model = *model;
    r->norm_pix_loss = norm_pix_loss;
    r->num_patches = (size_t)vit_num_patches(model);
    r->patch_dim = (size_t)vit_patch_dim(model);
    encoder_bind(&r->enc, model, "", table, params, grads, true);
    decoder_bind(&r->dec, &dc, table, params, grads);
}

static void pixel_recon_acts_free(PixelRecon *r)
{
    if (!r->arena.base)
        return;
    encoder_acts_free(&r->acts.enc);
    decoder_acts_free(&r->acts.dec);
    arena_free(&r->arena);
    memset(&r->acts, 0, sizeof r->acts);
}

void pixel_recon_free(PixelRecon *r)
{
    pixel_recon_acts_free(r);
    encoder_free(&r->enc);
    decoder_free(&r->dec);
    memset(r, 0, sizeof *r);
}

void pixel_recon_fixed(const PixelRecon *r, FixedTensor fixed[2])
{
    const Encoder *e = &r->enc;
    const Decoder *d = &r->dec;
    fixed[0] = (FixedTensor){"pos_embed", 3, {1, e->num_patches + 1, e->dim}, e->pos};
    fixed[1] = (FixedTensor){"decoder_pos_embed", 3, {1, d->num_patches + 1, d->dim}, d->pos};
}

static size_t decoded_rows(const MaskSpec *spec) { return 1 + spec->visible + spec->masked; }

size_t pixel_recon_reserve(PixelRecon *r, size_t B, const MaskSpec *spec)
{
    const size_t L = r->num_patches, P = r->patch_dim, D = r->enc.dim;
    size_t bytes = encoder_acts_bytes(&r->enc, B, spec->visible, true) +
                   decoder_acts_bytes(&r->dec, B, spec->visible, spec->masked) + arena_floats_size(B * L * P) +
                   arena_floats_size(B * decoded_rows(spec) * P) + arena_floats_size(B * (1 + spec->visible) * D);
    PixelReconActs *a = &r->acts;
    pixel_recon_acts_free(r);
    arena_init(&r->arena, bytes, "reconstruction activations");
    a->B = B;
    encoder_acts_init(&a->enc, &r->enc, B, spec->visible, true, &r->arena);
    decoder_acts_init(&a->dec, &r->dec, B, spec->visible, spec->masked, &r->arena);
    a->target = arena_floats(&r->arena, B * L * P);
    a->dpred = arena_floats(&r->arena, B * decoded_rows(spec) * P);
    a->dlatent = arena_floats(&r->arena, B * (1 + spec->visible) * D);
    return bytes;
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

static void make_targets(const PixelRecon *r, PixelReconActs *a, const float *images, size_t B)
{
    patchify(a->target, images, B, r->enc.geometry);
    if (r->norm_pix_loss)
        for (size_t i = 0; i < B * r->num_patches; i++)
            normalize_patch(a->target + i * r->patch_dim, r->patch_dim);
}

/* Mean over masked patches of the per-patch MSE (each weighted by the mask's weight when it has
 * any). With dpred, also writes its gradient times grad_scale (zero on every other row). */
static double masked_loss(const PixelRecon *r, float *dpred, float grad_scale)
{
    const PixelReconActs *a = &r->acts;
    const MaskSet *mask = r->mask;
    const size_t B = r->B;
    const size_t L = r->num_patches, P = r->patch_dim, T = a->dec.T, V = mask->visible, M = mask->masked;
    const double count = (double)(B * M);
    if (dpred)
        memset(dpred, 0, B * T * P * sizeof(float));
    double total = 0.0;
    for (size_t b = 0; b < B; b++)
        for (size_t j = V; j < V + M; j++) {
            size_t patch = (size_t)mask->order[b * L + j], row = (size_t)a->dec.rows[b * L + patch];
            const float *pred = a->dec.pred + (b * T + row) * P;
            const float *target = a->target + (b * L + patch) * P;
            double w = mask->weights ? mask->weights[b * L + patch] : 1.0, sq = 0.0;
            for (size_t k = 0; k < P; k++)
                sq += ((double)pred[k] - target[k]) * ((double)pred[k] - target[k]);
            total += mask->weights ? w * sq / (double)P : sq / (double)P;
            if (dpred) {
                float *d = dpred + (b * T + row) * P;
                float scale = (float)(2.0 * grad_scale * w / ((double)P * count));
                for (size_t k = 0; k < P; k++)
                    d[k] = scale * (pred[k] - target[k]);
            }
        }
    return total / count;
}

double pixel_recon_forward(PixelRecon *r, const float *images, const MaskSet *mask, size_t B)
{
    PixelReconActs *a = &r->acts;
    if (B > a->B || mask->visible > a->enc.n || 1 + mask->visible + mask->masked > a->dec.T)
        fatal("internal: a batch of %zu (%zu + %zu patches) exceeds what pixel_recon_reserve sized", B,
              mask->visible, mask->masked);
    r->mask = mask, r->B = B;
    encoder_forward(&r->enc, &a->enc, images, mask->order, r->num_patches, B, mask->visible);
    decoder_forward(&r->dec, &a->dec, a->enc.stack.out, mask->order, mask->visible, mask->masked, B);
    make_targets(r, a, images, B);
    memset(a->dlatent, 0, B * (1 + mask->visible) * r->enc.dim * sizeof(float));
    return masked_loss(r, NULL, 0.0f);
}

void pixel_recon_backward(PixelRecon *r, float grad_scale, const GradReady *ready)
{
    PixelReconActs *a = &r->acts;
    const MaskSet *mask = r->mask;
    masked_loss(r, a->dpred, grad_scale);
    decoder_backward(&r->dec, &a->dec, a->enc.stack.out, a->dpred, a->dlatent, mask->order, mask->visible,
                     mask->masked, r->B, ready);
    encoder_backward(&r->enc, &a->enc, a->dlatent, NULL, 0, r->B, mask->visible, ready);
}

size_t pixel_recon_output(const PixelRecon *r, const char *name, float *dst)
{
    const PixelReconActs *a = &r->acts;
    const size_t L = r->num_patches, P = r->patch_dim, T = a->dec.T, B = r->B;
    if (!strcmp(name, "latent")) {
        size_t n = B * (1 + r->mask->visible) * r->enc.dim;
        if (dst)
            memcpy(dst, a->enc.stack.out, n * sizeof(float));
        return n;
    }
    if (strcmp(name, "pred"))
        return 0;
    for (size_t b = 0; dst && b < B; b++)
        for (size_t p = 0; p < L; p++) {
            int32_t row = a->dec.rows[b * L + p];
            float *out = dst + (b * L + p) * P;
            if (row < 0)
                memset(out, 0, P * sizeof(float));
            else
                memcpy(out, a->dec.pred + (b * T + (size_t)row) * P, P * sizeof(float));
        }
    return B * L * P;
}

void pixel_recon_pixels(const PixelRecon *r, const float *images, float *pixels)
{
    const PixelReconActs *a = &r->acts;
    const size_t L = r->num_patches, P = r->patch_dim, T = a->dec.T, B = r->B;
    patchify(pixels, images, B, r->enc.geometry);
    for (size_t b = 0; b < B; b++)
        for (size_t n = 0; n < L; n++) {
            int32_t row = a->dec.rows[b * L + n];
            if (row < 0)
                continue;
            const float *pred = a->dec.pred + (b * T + (size_t)row) * P;
            float *out = pixels + (b * L + n) * P;
            double mean = 0.0, scale = 1.0;
            if (r->norm_pix_loss)
                patch_stats(out, P, &mean, &scale);
            for (size_t k = 0; k < P; k++)
                out[k] = (float)(pred[k] * scale + mean);
        }
}
