/* The job file: every setting of a training run, read from YAML plus `--set KEY=VALUE` overrides,
 * validated strictly (unknown keys, types, ranges, cross-field rules, each error with
 * FILE:LINE:COL), printed at the start of training and stored in every checkpoint.
 * docs/config.md is the reference for every key; it is generated from the table in config.c.
 *
 * What the configuration cannot know is checked by the trainer: the rank count (global_batch
 * must split evenly), the dataset (its channels, its size for epoch <-> step conversions, and so
 * warm-up in epochs against a run in steps or the reverse), and the peak lr derived from blr. */
#ifndef MAEC_CONFIG_H
#define MAEC_CONFIG_H

#include "maec/error.h"
#include "maec/keytable.h"
#include "maec/vit.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Enum values are in the order of their names in the job file. */
typedef enum JobObjectiveName { JOB_OBJECTIVE_MAE } JobObjectiveName;
typedef enum JobMaskKind { JOB_MASK_RANDOM } JobMaskKind;
typedef enum JobNormalize {
    JOB_NORMALIZE_DATASET,  /* per-channel mean/std stored in the dataset file */
    JOB_NORMALIZE_IMAGENET, /* 0.485 0.456 0.406 / 0.229 0.224 0.225 (RGB only) */
    JOB_NORMALIZE_NONE,
    JOB_NORMALIZE_CUSTOM, /* data.mean, data.std */
} JobNormalize;
typedef enum JobDistMode { JOB_DIST_ALLREDUCE, JOB_DIST_ZERO1, JOB_DIST_ZERO2 } JobDistMode;

typedef struct JobObjective {
    JobObjectiveName name;
    bool norm_pix_loss;
} JobObjective;

typedef struct JobMasking {
    JobMaskKind kind;
    double ratio; /* visible patches: (int)(num_patches * (1 - ratio)) >= 1, as MAE's len_keep */
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
    JobObjective objective;
    JobMasking masking;
    JobData data;
    JobOptim optim;
    JobDist dist;
    JobCheckpoint checkpoint;
    JobLog log;
} JobConfig;

/* Every key at its default; model from the default preset. data.train is empty, so this alone
 * does not pass config_load's validation. */
void config_defaults(JobConfig *cfg);

/* Defaults, then the job file, then each override "KEY=VALUE" in order, then validation. The
 * model preset is applied before every other key wherever it is given, so model.* keys refine
 * it in any order. On error err says FILE:LINE:COL (or "--set KEY=VALUE") and what to do;
 * *out is untouched. */
int config_load(JobConfig *out, const char *path, char *const *overrides, size_t n_overrides,
                MaecError *err);
/* The same from YAML text (a checkpoint's stored configuration); name stands for the file in
 * messages. */
int config_load_string(JobConfig *out, const char *yaml_text, const char *name, char *const *overrides,
                       size_t n_overrides, MaecError *err);

/* The resolved configuration as YAML: every key, in a fixed order. config_load_string() of the
 * text gives a configuration config_equal() to cfg. The caller frees it. */
char *config_to_yaml(const JobConfig *cfg);

bool config_equal(const JobConfig *a, const JobConfig *b);

/* The markdown reference of every key (type, default, allowed values, meaning): the generated
 * part of docs/config.md. */
void config_write_reference(FILE *out);

/* The key table behind all of the above (for tests and tools that list keys). */
const KeyTable *config_keys(void);

#endif
