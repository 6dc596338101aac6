#include "maec/embed.h"

#include "maec/config.h"
#include "maec/vit.h"

#include <stdlib.h>

#include <string.h>

static int check_meta(const Pretrained *p, const char *checkpoint, MaecError *err)
{
    if (!p->obj.encoder)
        return error_set(err, "%s holds a '%s' model, which has no encoder to embed with", checkpoint,
                         p->obj.cls->name);
    if (p->meta.channels != p->model->in_chans)
        return error_set(err, "%s: its input normalisation has %d channels but the model %d", checkpoint,
                         p->meta.channels, p->model->in_chans);
    return 0;
}

static void input_transform(Pretrained *p)
{
    p->input = (AugmentConfig){.out_size = p->model->img_size, .random = false};
    memcpy(p->input.mean, p->meta.input_mean, sizeof p->input.mean);
    memcpy(p->input.std, p->meta.input_std, sizeof p->input.std);
}

static int load_weights(Pretrained *p, const char *checkpoint, bool random_init, uint64_t seed, MaecError *err)
{
    if (random_init) {
        vit_init_weights(&p->obj.table, p->obj.params, seed);
        return 0;
    }
    CheckpointMeta again;
    CheckpointRead r = {.table = &p->obj.table, .params = p->obj.params, .state = &p->obj.state,
                        .state_values = p->obj.state_values};
    if (checkpoint_load(checkpoint, &r, &again, err))
        return -1;
    checkpoint_meta_free(&again);
    return 0;
}

int pretrained_open(Pretrained *p, const char *checkpoint, bool random_init, uint64_t seed, MaecError *err)
{
    memset(p, 0, sizeof *p);
    if (checkpoint_read_meta(checkpoint, &p->meta, err))
        return -1;
    if (job_load_string(&p->job, p->meta.config_yaml, checkpoint, NULL, 0, err)) {
        checkpoint_meta_free(&p->meta);
        return error_prefix(err, "%s: stored configuration", checkpoint);
    }
    p->model = &p->job.cfg.model;
    if (job_make_objective(&p->job, &p->obj, NULL, 1, err) || check_meta(p, checkpoint, err) ||
        load_weights(p, checkpoint, random_init, seed, err)) {
        pretrained_close(p);
        return -1;
    }
    p->enc = p->obj.encoder;
    input_transform(p);
    return 0;
}

void pretrained_close(Pretrained *p)
{
    objective_destroy(&p->obj);
    job_free(&p->job);
    checkpoint_meta_free(&p->meta);
}

void embedder_init(Embedder *e, const Pretrained *p, size_t batch, int H, int W, EmbedPooling pooling)
{
    const Encoder *enc = p->enc;
    const int S = p->model->img_size, C = p->model->in_chans;
    memset(e, 0, sizeof *e);
    e->model = p, e->pooling = pooling, e->batch = batch, e->H = H, e->W = W;
    arena_init(&e->arena, encoder_acts_bytes(enc, batch, enc->num_patches, false), "embedding activations");
    encoder_acts_init(&e->acts, enc, batch, enc->num_patches, false, &e->arena);
    e->resample = augmenter_create(H, W, C, &p->input);
    e->images = xalloc_aligned(batch * (size_t)(S * S * C) * sizeof(float), "embedding input");
}

void embedder_free(Embedder *e)
{
    encoder_acts_free(&e->acts);
    arena_free(&e->arena);
    augmenter_free(e->resample);
    free(e->images);
}

size_t embedder_dim(const Embedder *e) { return e->model->enc->dim; }

void embedder_prepare(Embedder *e, const uint8_t *images, size_t n)
{
    const ModelConfig *m = e->model->model;
    const size_t in = (size_t)e->H * (size_t)e->W * (size_t)m->in_chans;
    const size_t out = (size_t)m->img_size * (size_t)m->img_size * (size_t)m->in_chans;
    const AugmentDraw whole = augment_draw(&e->model->input, e->H, e->W, 0, 0, 0);
    for (size_t i = 0; i < n; i++)
        augment_apply(e->resample, e->images + i * out, images + i * in, &whole);
}

/* features[b] = pooled tokens of out [n, 1+L, D] */
static void pool_tokens(const float *out, size_t n, size_t L, size_t D, EmbedPooling pooling, float *features)
{
    for (size_t b = 0; b < n; b++) {
        const float *tokens = out + b * (1 + L) * D;
        float *f = features + b * D;
        if (pooling == EMBED_POOL_CLS) {
            memcpy(f, tokens, D * sizeof(float));
            continue;
        }
        for (size_t d = 0; d < D; d++) {
            double sum = 0;
            for (size_t t = 1; t <= L; t++)
                sum += tokens[t * D + d];
            f[d] = (float)(sum / (double)L);
        }
    }
}

void embedder_features(Embedder *e, size_t n, float *features)
{
    const Encoder *enc = e->model->enc;
    encoder_forward(enc, &e->acts, e->images, NULL, 0, n, enc->num_patches);
    pool_tokens(e->acts.stack.out, n, enc->num_patches, enc->dim, e->pooling, features);
}
