/* The model's fixed pieces: position tables, the two patch orders, the parameter table (names,
 * shapes, counts, decay flags, padding), initialisation statistics, random masking, another
 * masking ratio on a made model, and the prediction mapped back to pixels. The
 * whole model is checked against PyTorch in tests/parity. */
#include "../testing.h"

#include "maec/masking.h"
#include "maec/params.h"
#include "maec/patchify.h"
#include "maec/posembed.h"
#include "maec/rng.h"
#include "maec/mae.h"
#include "maec/vit.h"

#include <stdlib.h>
#include <string.h>

static void test_posembed(void)
{
    enum { D = 16, G = 3 };
    float pos[(1 + G * G) * D];
    posembed_2d_sincos(pos, D, G, true);
    for (int d = 0; d < D; d++)
        CHECK(pos[d] == 0.0f, "cls row channel %d = %g", d, (double)pos[d]);
    /* token (row i=2, col j=1) is row 1 + 2*3 + 1 = 8; quarter Q = 4, w_k = 10000^(-k/4) */
    const float *t = pos + 8 * D;
    for (int k = 0; k < 4; k++) {
        double w = pow(10000.0, -k / 4.0);
        CHECK(fabs(t[k] - sin(1 * w)) < 1e-7 && fabs(t[4 + k] - cos(1 * w)) < 1e-7,
              "column half, k=%d: %g %g", k, (double)t[k], (double)t[4 + k]);
        CHECK(fabs(t[8 + k] - sin(2 * w)) < 1e-7 && fabs(t[12 + k] - cos(2 * w)) < 1e-7,
              "row half, k=%d: %g %g", k, (double)t[8 + k], (double)t[12 + k]);
    }
}

/* Value that names its own position, so order mistakes show. */
static float code(size_t b, size_t y, size_t x, size_t c) { return (float)(b * 100000 + y * 1000 + x * 10 + c); }

static void test_patch_orders(void)
{
    const PatchGeometry g = {8, 4, 3};
    const size_t B = 2, H = 8, C = 3, p = 4, G = 2, P = p * p * C;
    float *img = malloc(B * H * H * C * sizeof(float)), *back = malloc(B * H * H * C * sizeof(float));
    float *tgt = malloc(B * G * G * P * sizeof(float)), *emb = malloc(B * 2 * P * sizeof(float));
    for (size_t b = 0; b < B; b++)
        for (size_t y = 0; y < H; y++)
            for (size_t x = 0; x < H; x++)
                for (size_t c = 0; c < C; c++)
                    img[((b * H + y) * H + x) * C + c] = code(b, y, x, c);
    patchify(tgt, img, B, g);
    /* patch 3 = grid row 1, column 1; element (i=2, j=1, c=2) in (row, col, c) order */
    CHECK(tgt[(1 * G * G + 3) * P + (2 * p + 1) * C + 2] == code(1, 6, 5, 2), "target order wrong: %g",
          (double)tgt[(1 * G * G + 3) * P + (2 * p + 1) * C + 2]);
    unpatchify(back, tgt, B, g);
    CHECK(memcmp(back, img, B * H * H * C * sizeof(float)) == 0, "unpatchify(patchify(x)) != x");
    const int32_t ids[2 * 4] = {2, 0, 9, 9, 1, 3, 9, 9}; /* 2 kept patches per image, stride 4 */
    patches_embed_order(emb, img, ids, 4, 2, B, g);
    /* image 1, kept slot 1 = patch 3; element (c=2, i=2, j=1) in (c, row, col) order */
    CHECK(emb[(1 * 2 + 1) * P + (2 * p + 2) * p + 1] == code(1, 6, 5, 2), "embedding order wrong: %g",
          (double)emb[(1 * 2 + 1) * P + (2 * p + 2) * p + 1]);
    CHECK(emb[0] == code(0, 4, 0, 0), "image 0 slot 0 should be patch 2 (row 1, col 0): %g", (double)emb[0]);
    free(img);
    free(back);
    free(tgt);
    free(emb);
}

static void test_param_table(void)
{
    /* Published sizes (research note mae_reference.md 1.2: trainable, pos-embeds excluded). */
    const struct { const char *preset; double millions; } sizes[] = {{"vit-base", 111.66}, {"vit-large", 329.24}};
    for (size_t i = 0; i < 2; i++) {
        MaeConfig cfg = {.norm_pix_loss = true, .mask_ratio = 0.75};
        vit_preset(sizes[i].preset, &cfg.model, NULL);
        ParamTable t;
        param_table_init(&t);
        encoder_declare(&t, &cfg.model, true);
        decoder_declare(&t, &cfg.model);
        CHECK(fabs(t.numel / 1e6 - sizes[i].millions) < 0.006, "%s has %zu parameters, expected %.2fM",
              sizes[i].preset, t.numel, sizes[i].millions);
        const ParamTensor *qkv = param_table_find(&t, "blocks.11.attn.qkv.weight");
        CHECK(qkv && qkv->shape[0] == 3 * (size_t)cfg.model.embed_dim && qkv->decay, "qkv weight");
        const ParamTensor *pe = param_table_find(&t, "patch_embed.proj.weight");
        CHECK(pe && pe->ndim == 4 && pe->shape[1] == 3 && pe->shape[3] == 16, "patch embed shape");
        CHECK(param_table_find(&t, "cls_token")->decay, "cls_token is decayed in MAE pretraining");
        CHECK(!param_table_find(&t, "decoder_pred.bias")->decay && !param_table_find(&t, "norm.weight")->decay,
              "biases and norms are not decayed");
        CHECK(param_table_find(&t, "pos_embed") == NULL, "fixed position tables are not parameters");
        param_table_finish(&t, 7);
        CHECK(t.padded % 7 == 0 && t.padded >= t.numel && t.padded < t.numel + 7, "padding %zu for %zu",
              t.padded, t.numel);
        size_t expect = 0;
        for (size_t k = 0; k < t.count; k++) {
            CHECK(t.tensors[k].offset == expect, "tensor %s not contiguous", t.tensors[k].name);
            expect += t.tensors[k].numel;
        }
        param_table_free(&t);
    }
}

static double stddev(const float *x, size_t n)
{
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    return sqrt(s2 / n - (s / n) * (s / n));
}

static void test_init(void)
{
    MaeConfig cfg = {.norm_pix_loss = true, .mask_ratio = 0.75};
    vit_preset("vit-small-light", &cfg.model, NULL);
    Mae mae;
    CHECK(mae_init(&mae, &cfg, 1, NULL) == 0, "mae_init");
    vit_init_weights(&mae.table, mae.params, 0);
    const ParamTensor *qkv = param_table_find(&mae.table, "blocks.0.attn.qkv.weight");
    double bound = sqrt(6.0 / (384 + 3 * 384)); /* fused qkv as one [1152, 384] matrix */
    CHECK(fabs(stddev(mae.params + qkv->offset, qkv->numel) - bound / sqrt(3.0)) < 0.01 * bound,
          "qkv std %g, expected %g", stddev(mae.params + qkv->offset, qkv->numel), bound / sqrt(3.0));
    const ParamTensor *pe = param_table_find(&mae.table, "patch_embed.proj.weight");
    bound = sqrt(6.0 / (768 + 384));
    CHECK(fabs(stddev(mae.params + pe->offset, pe->numel) - bound / sqrt(3.0)) < 0.01 * bound,
          "patch embed std %g, expected %g", stddev(mae.params + pe->offset, pe->numel), bound / sqrt(3.0));
    const ParamTensor *pb = param_table_find(&mae.table, "patch_embed.proj.bias");
    float maxb = 0;
    for (size_t i = 0; i < pb->numel; i++)
        maxb = fmaxf(maxb, fabsf(mae.params[pb->offset + i]));
    CHECK(maxb <= 1.0 / sqrt(768.0) && maxb > 0.5 / sqrt(768.0), "patch bias max %g vs bound %g", (double)maxb,
          1.0 / sqrt(768.0));
    const ParamTensor *mt = param_table_find(&mae.table, "mask_token");
    CHECK(fabs(stddev(mae.params + mt->offset, mt->numel) - 0.02) < 0.004, "mask token std %g",
          stddev(mae.params + mt->offset, mt->numel));
    CHECK(mae.params[param_table_find(&mae.table, "decoder_norm.weight")->offset] == 1.0f &&
              mae.params[param_table_find(&mae.table, "blocks.3.mlp.fc1.bias")->offset] == 0.0f,
          "LayerNorm weight 1, linear bias 0");
    mae_free(&mae);
}

static void test_masking(void)
{
    enum { L = 196, B = 3 };
    CHECK(mask_keep_count(196, 0.75) == 49 && mask_keep_count(49, 0.6) == 19, "keep counts %zu %zu",
          mask_keep_count(196, 0.75), mask_keep_count(49, 0.6));
    int32_t a[B * L], b[2 * L], c[B * L];
    const size_t samples_a[B] = {5, 6, 7}, samples_b[2] = {7, 5};
    mask_random(a, samples_a, B, L, 42, 3);
    mask_random(b, samples_b, 2, L, 42, 3);
    CHECK(memcmp(a, b + L, L * sizeof(int32_t)) == 0, "sample 5's mask depends on its batch");
    CHECK(memcmp(a + 2 * L, b, L * sizeof(int32_t)) == 0, "sample 7's mask depends on its position");
    mask_random(c, samples_a, B, L, 42, 4);
    CHECK(memcmp(a, c, L * sizeof(int32_t)) != 0, "a new epoch must give a new mask");
    int seen[L] = {0};
    for (int i = 0; i < L; i++)
        seen[a[i]]++;
    int ok = 1;
    for (int i = 0; i < L; i++)
        ok &= seen[i] == 1;
    CHECK(ok, "ids_shuffle is not a permutation");
}

static void test_mask_ratio(void)
{
    MaeConfig cfg = {{32, 4, 3, 64, 1, 2, 32, 1, 2, 4.0}, true, 0.75};
    Mae mae;
    MaecError err;
    CHECK(mae_init(&mae, &cfg, 1, NULL) == 0, "mae_init");
    CHECK(mae_set_mask_ratio(&mae, 0.5, &err) == 0 && mae.keep == 32 && mae.cfg.mask_ratio == 0.5,
          "ratio 0.5 keeps %zu of 64", mae.keep);
    CHECK(mae_set_mask_ratio(&mae, 1.0, &err) == -1 && strstr(err.msg, "0 of 64") && mae.keep == 32,
          "ratio 1 must be refused and leave the model as it was: %s", err.msg);
    mae_free(&mae);
}

/* Given the loss's own targets as the prediction, mae_pixel_prediction must give back the
 * image's patches: with norm_pix_loss each patch is un-normalised with its own statistics. */
static void check_pixel_prediction(bool norm_pix)
{
    enum { B = 2, S = 16, C = 3, L = 16, P = 48 }; /* patches of 4 px */
    MaeConfig cfg = {{S, 4, C, 32, 1, 2, 16, 1, 2, 4.0}, norm_pix, 0.75};
    Mae mae;
    CHECK(mae_init(&mae, &cfg, 1, NULL) == 0 && mae.num_patches == L && mae.patch_dim == P, "mae_init");
    float images[B * S * S * C], patches[B * L * P], pixels[B * L * P];
    Rng rng = rng_make(7, 0, 0, 0);
    for (size_t i = 0; i < B * S * S * C; i++)
        images[i] = 3.0f * rng_uniform(&rng) - 1.0f;
    int32_t ids[B * L];
    const size_t samples[B] = {0, 1};
    mask_random(ids, samples, B, L, 1, 0);
    MaeActs acts;
    mae_acts_init(&acts, &mae, B);
    mae_forward(&mae, &acts, images, ids, B);
    for (size_t b = 0; b < B; b++)
        memcpy(acts.dec.pred + (b * (1 + L) + 1) * P, acts.target + b * L * P, L * P * sizeof(float));
    mae_pixel_prediction(&mae, &acts, images, B, pixels);
    patchify(patches, images, B, mae.enc.geometry);
    double worst = 0;
    for (size_t i = 0; i < B * L * P; i++)
        worst = fmax(worst, fabs((double)pixels[i] - patches[i]));
    CHECK(worst < 1e-5, "norm_pix %d: prediction of the targets is %g away from the pixels", norm_pix, worst);
    mae_acts_free(&acts);
    mae_free(&mae);
}

int main(void)
{
    test_posembed();
    test_patch_orders();
    test_param_table();
    test_init();
    test_masking();
    test_mask_ratio();
    check_pixel_prediction(true);
    check_pixel_prediction(false);
    return test_summary("test_model");
}
