#include "maec/vit.h"

#include "maec/rng.h"

#include <math.h>
#include <string.h>

typedef struct Preset {
    const char *name;
    ModelConfig cfg;
} Preset;

#define ENCODER(d, depth, heads) 224, 16, 3, d, depth, heads
static const Preset presets[] = {
    {"vit-tiny", {ENCODER(192, 12, 3), 512, 8, 16, 4.0}},
    {"vit-small", {ENCODER(384, 12, 6), 512, 8, 16, 4.0}},
    {"vit-base", {ENCODER(768, 12, 12), 512, 8, 16, 4.0}},
    {"vit-large", {ENCODER(1024, 24, 16), 512, 8, 16, 4.0}},
    {"vit-tiny-light", {ENCODER(192, 12, 3), 128, 2, 4, 4.0}},
    {"vit-small-light", {ENCODER(384, 12, 6), 256, 2, 8, 4.0}},
    {"vit-base-light", {ENCODER(768, 12, 12), 256, 2, 8, 4.0}},
    {"vit-large-light", {ENCODER(1024, 24, 16), 256, 2, 8, 4.0}},
};
#undef ENCODER

const char *const vit_preset_names[] = {
    "vit-tiny", "vit-small", "vit-base", "vit-large",
    "vit-tiny-light", "vit-small-light", "vit-base-light", "vit-large-light", NULL,
};

int vit_preset(const char *name, ModelConfig *cfg, MaecError *err)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name)) {
            *cfg = presets[i].cfg;
            return 0;
        }
    return error_set(err, "unknown model preset '%s'; known presets: vit-tiny, vit-small, vit-base, "
                          "vit-large and their -light variants (e.g. vit-small-light)", name);
}

static int check_width(const char *field, int dim, const char *heads_field, int heads, MaecError *err)
{
    if (dim < 4 || dim % 4 != 0)
        return error_set(err, "model.%s = %d: must be a positive multiple of 4 (the 2-D sin-cos "
                              "position table splits it into 4 parts)", field, dim);
    if (heads < 1 || dim % heads != 0)
        return error_set(err, "model.%s = %d must divide model.%s = %d into equal heads",
                         heads_field, heads, field, dim);
    return 0;
}

int vit_config_validate(const ModelConfig *c, MaecError *err)
{
    if (c->patch_size < 1 || c->img_size < c->patch_size || c->img_size % c->patch_size != 0)
        return error_set(err, "model.img_size = %d must be a positive multiple of model.patch_size = %d",
                         c->img_size, c->patch_size);
    if (c->in_chans < 1 || c->in_chans > 16)
        return error_set(err, "model.in_chans = %d: expected 1 to 16 channels", c->in_chans);
    if (c->depth < 1 || c->decoder_depth < 1)
        return error_set(err, "model.depth = %d and model.decoder_depth = %d must both be at least 1",
                         c->depth, c->decoder_depth);
    if (!(c->mlp_ratio > 0.0 && c->mlp_ratio <= 16.0))
        return error_set(err, "model.mlp_ratio = %g: expected a value in (0, 16]", c->mlp_ratio);
    if (check_width("embed_dim", c->embed_dim, "num_heads", c->num_heads, err) ||
        check_width("decoder_embed_dim", c->decoder_embed_dim, "decoder_num_heads", c->decoder_num_heads, err))
        return -1;
    return 0;
}

int vit_grid_size(const ModelConfig *c) { return c->img_size / c->patch_size; }
int vit_num_patches(const ModelConfig *c) { return vit_grid_size(c) * vit_grid_size(c); }
int vit_patch_dim(const ModelConfig *c) { return c->patch_size * c->patch_size * c->in_chans; }
int vit_mlp_hidden(const ModelConfig *c, int dim) { return (int)(dim * c->mlp_ratio); }

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static void fill_uniform(float *x, size_t n, double bound, Rng *rng)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((2.0 * rng_uniform_double(rng) - 1.0) * bound);
}

void vit_init_weights(const ParamTable *table, float *params, uint64_t seed)
{
    for (size_t i = 0; i < table->count; i++) {
        const ParamTensor *t = &table->tensors[i];
        float *x = params + t->offset;
        Rng rng = rng_make(seed, RNG_INIT, 0, i);
        if (has_suffix(t->name, "_token")) {
            for (size_t k = 0; k < t->numel; k++)
                x[k] = (float)(0.02 * rng_normal(&rng));
        } else if (t->ndim >= 2) {
            double fan_out = (double)t->shape[0], fan_in = (double)t->numel / fan_out;
            fill_uniform(x, t->numel, sqrt(6.0 / (fan_in + fan_out)), &rng);
        } else if (!strcmp(t->name, "patch_embed.proj.bias")) {
            const ParamTensor *w = param_table_find(table, "patch_embed.proj.weight");
            fill_uniform(x, t->numel, 1.0 / sqrt((double)(w->numel / w->shape[0])), &rng);
        } else {
            float value = has_suffix(t->name, ".bias") ? 0.0f : 1.0f; /* LayerNorm weight: 1 */
            for (size_t k = 0; k < t->numel; k++)
                x[k] = value;
        }
    }
}
