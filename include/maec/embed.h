/* A pretrained encoder (of any objective that has one) applied to whole images (no masking): the features of `maec embed`
 * and the starting point of fine-tuning. The model and the input normalisation come from a
 * training checkpoint (docs/formats.md), so the encoder sees what it learnt on whatever dataset
 * it now reads. */
#ifndef MAEC_EMBED_H
#define MAEC_EMBED_H

#include "maec/alloc.h"
#include "maec/augment.h"
#include "maec/checkpoint.h"
#include "maec/encoder.h"
#include "maec/error.h"
#include "maec/job.h"
#include "maec/objective.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum EmbedPooling {
    EMBED_POOL_CLS,  /* the CLS token after the encoder's final norm */
    EMBED_POOL_MEAN, /* the mean of the patch tokens after the final norm */
} EmbedPooling;

typedef struct Pretrained {
    Job job;             /* the stored configuration */
    Objective obj;       /* as trained: its encoder is enc, the rest is loaded but unused here */
    const Encoder *enc;
    const ModelConfig *model;
    CheckpointMeta meta;
    AugmentConfig input; /* the whole image resampled to img_size, normalised as in training */
} Pretrained;

/* Loads checkpoint; an error if its objective has no encoder. With random_init, only its configuration and normalisation are used and the
 * weights are drawn as a fresh run's with seed: the baseline a pretrained encoder must beat. */
int pretrained_open(Pretrained *p, const char *checkpoint, bool random_init, uint64_t seed, MaecError *err);
void pretrained_close(Pretrained *p);

typedef struct Embedder {
    const Pretrained *model;
    EmbedPooling pooling;
    size_t batch;
    int H, W; /* of the stored images */
    Arena arena;
    EncoderActs acts;
    Augmenter *resample;
    float *images; /* [batch, S, S, C] network input */
} Embedder;

/* For batches of up to batch stored images of H x W (the model's channel count). */
void embedder_init(Embedder *e, const Pretrained *p, size_t batch, int H, int W, EmbedPooling pooling);
void embedder_free(Embedder *e);
size_t embedder_dim(const Embedder *e);
/* Resamples and normalises stored images [n, H, W, C] into e->images (the network input). */
void embedder_prepare(Embedder *e, const uint8_t *images, size_t n);
/* features [n, D] of the images prepared by embedder_prepare. */
void embedder_features(Embedder *e, size_t n, float *features);

#endif
