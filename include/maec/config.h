/* The job file's settings that every run has, read from YAML plus `--set KEY=VALUE` overrides,
 * validated strictly (unknown keys, types, ranges, cross-field rules, each error with
 * FILE:LINE:COL), printed at the start of training and stored in every checkpoint. The `objective`
 * section is not read here: the objective layer reads it from the same sources (job.h), with
 * the keys of the objective it names.
 * docs/config.md is the reference for every key; its tables are generated from the table in
 * config.c (tests/lint/config_docs checks them).
 *
 * What the configuration cannot know is checked by the trainer: the rank count (global_batch
 * must split evenly), the dataset (its channels, its size for epoch <-> step conversions, and so
 * warm-up in epochs against a run in steps or the reverse), and the peak lr derived from blr. */
#ifndef MAEC_CONFIG_H
#define MAEC_CONFIG_H

#include "maec/error.h"
#include "maec/keytable.h"
#include "maec/masking.h"
#include "maec/vit.h"

#include <stdbool.h>
#include <stddef.h>

/* Enum values are in the order of their names in the job file. */
typedef enum JobNormalize {
    JOB_NORMALIZE_DATASET,  /* per-channel mean/std stored in the dataset file */
    JOB_NORMALIZE_IMAGENET, /* 0.485 0.456 0.406 / 0.229 0.224 0.225 (RGB only) */
    JOB_NORMALIZE_NONE,
    JOB_NORMALIZE_CUSTOM, /* data.mean, data.std */
} JobNormalize;
typedef enum JobDistMode { JOB_DIST_ALLREDUCE, JOB_DIST_ZERO1, JOB_DIST_ZERO2 } JobDistMode;

/* The job's mask, for the objectives that take one (masking.h). */
typedef struct JobMasking {
    int kind;     /* index into mask_kind_names */
    double ratio; /* visible patches: (int)(num_patches * (1 - ratio)) >= 1, as MAE's len_keep */
    int weights;  /* MaskWeights */
    double block_ratio; /* patches the block generator covers, as a fraction; 0 = ratio */
    int block_min_patches;
    double block_min_aspect;
} JobMasking;

typedef struct JobAugment {
    FloatList crop_scale, crop_ratio; /* 2 values each, low <= high */
    bool hflip, vflip, rot90;
} JobAugment;

typedef struct JobData {
    char train[KEY_TEXT_MAX]; /* file, glob or comma-separated list; never empty */
    char val[KEY_TEXT_MAX];   /* same forms; "" = no validation set */
    JobNormalize normalize;
    FloatList mean, std; /* model.in_chans values with JOB_NORMALIZE_CUSTOM, empty otherwise */
    int prefetch;
    JobAugment augment;
} JobData;

typedef struct JobOptim {
    double blr, lr, min_lr; /* lr > 0 is the peak; otherwise peak = blr * global batch / 256 */
    double epochs;
    int steps; /* > 0: run length in optimizer steps, replacing epochs */
    double warmup_epochs;
    int warmup_steps; /* > 0: replaces warmup_epochs */
    int batch_per_rank;
    int global_batch; /* > 0: batch_per_rank = global_batch / (ranks * accum_iter) */
    int accum_iter;
    double weight_decay, beta1, beta2, eps;
    double clip_grad; /* 0 = off */
} JobOptim;

typedef struct JobDist {
    JobDistMode mode;
    double bucket_mb;
    bool overlap;
} JobDist;

typedef struct JobCheckpoint {
    char dir[KEY_TEXT_MAX];
    int every_steps;      /* 0 = off */
    double every_minutes; /* 0 = off */
    int keep_last;
} JobCheckpoint;

typedef struct JobLog {
    int every_steps;
    char metrics[KEY_TEXT_MAX]; /* relative paths are inside checkpoint.dir */
} JobLog;

typedef struct JobConfig {
    int seed;
    int threads;      /* worker threads per rank; 0 = automatic */
    int model_preset; /* index into vit_preset_names: the preset model was filled from */
    ModelConfig model;
    JobMasking masking;
    JobData data;
    JobOptim optim;
    JobDist dist;
    JobCheckpoint checkpoint;
    JobLog log;
    KeySources *sources; /* where each key was given, for messages; freed by config_free() */
} JobConfig;

/* Usage, as `maec train JOB.yaml --set K=V ...` does it:
 *     JobConfig cfg;
 *     if (config_load(path, &cfg, &err)) ...          defaults, then the file
 *     for each --set:  if (config_set(&cfg, arg, &err)) ...
 *     if (config_validate(&cfg, &err)) ...             rules across keys, required keys
 *     ...
 *     config_free(&cfg);
 * Every message starts with where the value was given: "FILE:LINE:COL: " or "--set KEY=VALUE: ".
 * Setting model.preset (in the file or with --set) refills the model.* keys that were not given
 * explicitly; the ones that were keep their values, whatever the order. */

/* Every key at its default, the model from the default preset. Passes config_validate() except
 * for the required data.train. Owns nothing until a load or set. */
void config_defaults(JobConfig *cfg);

/* config_defaults(), then the job file. Unknown keys (with the nearest valid one), duplicates,
 * malformed YAML, wrong types and values out of range are errors; rules across keys wait for
 * config_validate(), so that --set can still complete the file. On error *cfg owns nothing. */
int config_load(const char *path, JobConfig *cfg, MaecError *err);
/* The same from YAML text (e.g. a checkpoint's stored configuration); name stands for the file
 * in messages. */
int config_load_string(const char *yaml_text, const char *name, JobConfig *cfg, MaecError *err);

/* One "KEY=VALUE" override, checked as a file's value is; on error cfg is unchanged. VALUE is
 * YAML ("[0.5, 1.0]", "{depth: 2}" for a section), but string keys take it verbatim. */
int config_set(JobConfig *cfg, const char *assignment, MaecError *err);

/* The rules across keys and the required keys: the model's shape, masking leaves a patch
 * visible, data.mean/std match model.in_chans exactly when data.normalize is custom, warm-up
 * shorter than the run in the same unit, min_lr not above an absolute lr. */
int config_validate(const JobConfig *cfg, MaecError *err);

/* The resolved configuration as YAML: every key, in a fixed order. config_load_string() of the
 * text gives a configuration config_equal() to cfg. The caller frees it. */
char *config_to_yaml(const JobConfig *cfg);

bool config_equal(const JobConfig *a, const JobConfig *b);

/* Frees what loads and sets allocated; cfg's values stay readable. */
void config_free(JobConfig *cfg);

/* The markdown reference of every key (type, default, allowed values, meaning): the generated
 * part of docs/config.md. The caller frees it. */
char *config_docs_markdown(void);

/* The key table behind all of the above (for tests and tools that list keys). */
const KeyTable *config_keys(void);

#endif
