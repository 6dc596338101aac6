/* The model's fixed pieces: position tables, the two patch orders, the parameter table (names,
 * shapes, counts, decay flags, padding), initialisation statistics, random masking, another
 * masking ratio on a made model, and the prediction mapped back to pixels. The
 * whole model is checked against PyTorch in tests/parity. */
#include "../testing.h"

#include "maec/alloc.h"
#include "maec/masking.h"
#include "maec/params.h"
#include "maec/patchify.h"
#include "maec/posembed.h"
#include "maec/rng.h"
#include "maec/objective.h"
#include "maec/pixel_recon.h"
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
        struct { ModelConfig model; } cfg;
        vit_preset(sizes[i].preset, &cfg.model, NULL);
        ParamTable t;
        param_table_init(&t);
        pixel_recon_declare(&t, &cfg.model);
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
    ModelConfig model;
    vit_preset("vit-small-light", &model, NULL);
    ParamTable table;
    param_table_init(&table);
    pixel_recon_declare(&table, &model);
    param_table_finish(&table, 1);
    float *params = xalloc_aligned(table.padded * sizeof(float), "params");
    vit_init_weights(&table, params, 0);
    const ParamTensor *qkv = param_table_find(&table, "blocks.0.attn.qkv.weight");
    double bound = sqrt(6.0 / (384 + 3 * 384)); /* fused qkv as one [1152, 384] matrix */
    CHECK(fabs(stddev(params + qkv->offset, qkv->numel) - bound / sqrt(3.0)) < 0.01 * bound,
          "qkv std %g, expected %g", stddev(params + qkv->offset, qkv->numel), bound / sqrt(3.0));
    const ParamTensor *pe = param_table_find(&table, "patch_embed.proj.weight");
    bound = sqrt(6.0 / (768 + 384));
    CHECK(fabs(stddev(params + pe->offset, pe->numel) - bound / sqrt(3.0)) < 0.01 * bound,
          "patch embed std %g, expected %g", stddev(params + pe->offset, pe->numel), bound / sqrt(3.0));
    const ParamTensor *pb = param_table_find(&table, "patch_embed.proj.bias");
    float maxb = 0;
    for (size_t i = 0; i < pb->numel; i++)
        maxb = fmaxf(maxb, fabsf(params[pb->offset + i]));
    CHECK(maxb <= 1.0 / sqrt(768.0) && maxb > 0.5 / sqrt(768.0), "patch bias max %g vs bound %g", (double)maxb,
          1.0 / sqrt(768.0));
    const ParamTensor *mt = param_table_find(&table, "mask_token");
    CHECK(fabs(stddev(params + mt->offset, mt->numel) - 0.02) < 0.004, "mask token std %g",
          stddev(params + mt->offset, mt->numel));
    CHECK(params[param_table_find(&table, "decoder_norm.weight")->offset] == 1.0f &&
              params[param_table_find(&table, "blocks.3.mlp.fc1.bias")->offset] == 0.0f,
          "LayerNorm weight 1, linear bias 0");
    free(params);
    param_table_free(&table);
}

static MaskSpec grid_spec(int kind, int grid, size_t visible, size_t masked)
{
    return (MaskSpec){.kind = kind, .grid_h = grid, .grid_w = grid, .visible = visible, .masked = masked,
                      .block_patches = masked, .block_min_patches = 4, .block_min_aspect = 0.3};
}

static bool is_permutation(const int32_t *order, size_t L)
{
    int seen[1024] = {0};
    for (size_t i = 0; i < L; i++)
        if (order[i] < 0 || (size_t)order[i] >= L || seen[order[i]]++)
            return false;
    return true;
}

/* Every generator: a permutation per sample, the same for a sample wherever it is in a batch, a
 * new one in a new epoch or stream. */
static void test_masking(void)
{
    enum { L = 196, B = 3 };
    CHECK(mask_keep_count(196, 0.75) == 49 && mask_keep_count(49, 0.6) == 19, "keep counts %zu %zu",
          mask_keep_count(196, 0.75), mask_keep_count(49, 0.6));
    for (int kind = 0; mask_kind_names[kind]; kind++) {
        MaskSpec spec = grid_spec(kind, 14, 49, 147);
        MaskSet a, b, c;
        mask_set_init(&a, &spec, B), mask_set_init(&b, &spec, 2), mask_set_init(&c, &spec, B);
        const size_t samples_a[B] = {5, 6, 7}, samples_b[2] = {7, 5};
        mask_draw(&a, &spec, samples_a, B, 42, 3);
        mask_draw(&b, &spec, samples_b, 2, 42, 3);
        const char *name = mask_kind_names[kind];
        CHECK(memcmp(a.order, b.order + L, L * sizeof(int32_t)) == 0, "%s: sample 5's mask depends on its batch", name);
        CHECK(memcmp(a.order + 2 * L, b.order, L * sizeof(int32_t)) == 0, "%s: sample 7's mask depends on its "
              "position", name);
        mask_draw(&c, &spec, samples_a, B, 42, 4);
        CHECK(memcmp(a.order, c.order, L * sizeof(int32_t)) != 0, "%s: a new epoch must give a new mask", name);
        spec.stream = 1;
        mask_draw(&c, &spec, samples_a, B, 42, 3);
        CHECK(memcmp(a.order, c.order, L * sizeof(int32_t)) != 0, "%s: a second stream must give a new mask", name);
        for (int i = 0; i < B; i++)
            CHECK(is_permutation(a.order + i * L, L), "%s: the order of sample %d is not a permutation", name, i);
        mask_set_free(&a), mask_set_free(&b), mask_set_free(&c);
    }
}

/* The block generator covers rectangles: most masked patches have a masked 4-neighbour, which a
 * uniform draw of the same count gives far less often; with an exact count when thrown patches
 * are asked for too. */
static void test_block_masks(void)
{
    enum { G = 14, L = G * G, N = 16 };
    int block = 1;
    while (strcmp(mask_kind_names[block], "block"))
        block++;
    double neighbours[2] = {0};
    for (int kind = 0; kind < 2; kind++) {
        MaskSpec spec = grid_spec(kind == 0 ? 0 : block, G, 150, 40); /* 6 thrown */
        MaskSet set;
        size_t samples[N];
        for (size_t i = 0; i < N; i++)
            samples[i] = i;
        mask_set_init(&set, &spec, N);
        mask_draw(&set, &spec, samples, N, 1, 0);
        for (size_t i = 0; i < N; i++) {
            const int32_t *o = set.order + i * L;
            CHECK(is_permutation(o, L), "sample %zu: not a permutation", i);
            int masked[L] = {0};
            for (size_t j = 150; j < 190; j++)
                masked[o[j]] = 1;
            for (int p = 0; p < L; p++) {
                int y = p / G, x = p % G;
                bool near = (y > 0 && masked[p - G]) || (y < G - 1 && masked[p + G]) || (x > 0 && masked[p - 1]) ||
                            (x < G - 1 && masked[p + 1]);
                neighbours[kind] += masked[p] && near;
            }
        }
        neighbours[kind] /= (double)(N * 40);
        mask_set_free(&set);
    }
    printf("masked patches with a masked neighbour: random %.2f, block %.2f\n", neighbours[0], neighbours[1]);
    CHECK(neighbours[1] > 0.9 && neighbours[1] > neighbours[0] + 0.2, "block masks are not blocks: %.2f vs %.2f",
          neighbours[1], neighbours[0]);
}

/* BootMAE's weights: 1 + the masked share of the 3x3 neighbourhood (zero padding counted). */
static void test_mask_weights(void)
{
    MaskSpec spec = grid_spec(0, 3, 5, 4);
    spec.weights = MASK_WEIGHTS_NEIGHBOURS;
    MaskSet set;
    mask_set_init(&set, &spec, 1);
    mask_draw(&set, &spec, (size_t[]){0}, 1, 3, 0);
    int masked[9] = {0};
    for (size_t j = 5; j < 9; j++)
        masked[set.order[j]] = 1;
    for (int p = 0; p < 9; p++) {
        int around = 0;
        for (int q = 0; q < 9; q++)
            around += masked[q] && abs(q / 3 - p / 3) <= 1 && abs(q % 3 - p % 3) <= 1;
        double want = masked[p] ? 1.0 + around / 9.0 : 0.0;
        CHECK(fabs(set.weights[p] - want) < 1e-6, "patch %d: weight %g, expected %g", p, (double)set.weights[p], want);
    }
    mask_set_free(&set);
}

static void test_job_mask(void)
{
    JobConfig cfg;
    config_defaults(&cfg);
    cfg.model.img_size = 32, cfg.model.patch_size = 4, cfg.masking.ratio = 0.5;
    MaskSpec spec;
    MaecError err;
    CHECK(objective_job_mask(&spec, &cfg, &err) == 0 && spec.visible == 32 && spec.masked == 32 &&
              spec.grid_h == 8, "ratio 0.5 keeps %zu of 64", spec.visible);
    cfg.masking.ratio = 0.999;
    CHECK(objective_job_mask(&spec, &cfg, &err) == -1 && strstr(err.msg, "leaves 0 of 64"),
          "a ratio leaving no patch must be refused: %s", err.msg);
}

/* Given the loss's own targets as the prediction, pixel_recon_pixels must give back the image's
 * patches: with norm_pix_loss each patch is un-normalised with its own statistics. */
static void check_pixel_prediction(bool norm_pix)
{
    enum { B = 2, S = 16, C = 3, L = 16, P = 48 }; /* patches of 4 px */
    ModelConfig model = {S, 4, C, 32, 1, 2, 16, 1, 2, 4.0};
    ParamTable table;
    param_table_init(&table);
    pixel_recon_declare(&table, &model);
    param_table_finish(&table, 1);
    float *params = xalloc_aligned(table.padded * sizeof(float), "params");
    PixelRecon r;
    pixel_recon_bind(&r, &model, norm_pix, &table, params, NULL);
    CHECK(r.num_patches == L && r.patch_dim == P, "pixel_recon_bind");
    float images[B * S * S * C], patches[B * L * P], pixels[B * L * P];
    Rng rng = rng_make(7, 0, 0, 0);
    for (size_t i = 0; i < B * S * S * C; i++)
        images[i] = 3.0f * rng_uniform(&rng) - 1.0f;
    MaskSpec spec = grid_spec(0, 4, 4, 12);
    MaskSet mask;
    mask_set_init(&mask, &spec, B);
    mask_draw(&mask, &spec, (size_t[]){0, 1}, B, 1, 0);
    pixel_recon_reserve(&r, B, &spec);
    pixel_recon_forward(&r, images, &mask, B);
    for (size_t b = 0; b < B; b++)
        for (size_t p = 0; p < L; p++)
            memcpy(r.acts.dec.pred + (b * r.acts.dec.T + (size_t)r.acts.dec.rows[b * L + p]) * P,
                   r.acts.target + (b * L + p) * P, P * sizeof(float));
    pixel_recon_pixels(&r, images, pixels);
    patchify(patches, images, B, r.enc.geometry);
    double worst = 0;
    for (size_t i = 0; i < B * L * P; i++)
        worst = fmax(worst, fabs((double)pixels[i] - patches[i]));
    CHECK(worst < 1e-5, "norm_pix %d: prediction of the targets is %g away from the pixels", norm_pix, worst);
    mask_set_free(&mask);
    pixel_recon_free(&r);
    free(params);
    param_table_free(&table);
}

int main(void)
{
    test_posembed();
    test_patch_orders();
    test_param_table();
    test_init();
    test_masking();
    test_block_masks();
    test_mask_weights();
    test_job_mask();
    check_pixel_prediction(true);
    check_pixel_prediction(false);
    return test_summary("test_model");
}
