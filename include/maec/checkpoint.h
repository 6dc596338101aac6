/* Training checkpoints (format v2, docs/formats.md): one HDF5 file per checkpoint holding the
 * model under its PyTorch state_dict names (/model/<name>, real shapes, so h5py and torch load
 * it in a few lines), AdamW's m and v (/optim/m/<name>, /optim/v/<name>), the objective's
 * non-trainable state (/state/<name>: running statistics, centres, EMA weights), the step, the
 * resolved configuration and the code version. Every rank writes the range of the flat buffers
 * it owns, collectively (MPI-IO), so ZeRO-sharded state never gathers on one rank; any rank count
 * can read it back. Files are written as DIR/.checkpoint-STEP.h5.tmp and renamed to
 * DIR/checkpoint-STEP.h5 only when complete, so a crash never leaves a half file as the newest.
 * Version 1 files (before /state) are read as having no state. */
#ifndef MAEC_CHECKPOINT_H
#define MAEC_CHECKPOINT_H

#include "maec/error.h"
#include "maec/params.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHECKPOINT_FORMAT "maec-checkpoint"
#define CHECKPOINT_FORMAT_VERSION 2
#define CHECKPOINT_MAX_CHANNELS 16

typedef struct CheckpointMeta {
    long step;          /* optimizer steps completed: the run continues at this step */
    long global_batch;  /* samples per optimizer step */
    int world_size;     /* ranks of the run that wrote it */
    int version;        /* the file's format version (set when read) */
    char dist_mode[16];
    char objective[32];
    char code_version[64];
    char *config_yaml;  /* resolved job configuration; malloc'd by checkpoint_load */
    /* The input normalisation of training, (pixel / 255 - mean) / std per channel: embedding and
     * fine-tuning must feed the encoder what it learnt on, whatever dataset they read. */
    int channels;
    float input_mean[CHECKPOINT_MAX_CHANNELS], input_std[CHECKPOINT_MAX_CHANNELS];
} CheckpointMeta;

/* A tensor stored under /model besides the trainable ones (the fixed position tables). */
typedef struct FixedTensor {
    const char *name;
    int ndim;
    size_t shape[PARAM_MAX_DIMS];
    const float *data;
} FixedTensor;

typedef struct CheckpointWrite {
    const char *dir;
    const CheckpointMeta *meta;
    const ParamTable *table;
    const float *params;     /* full flat buffer */
    const float *m, *v;      /* AdamW state for [lo, hi), indexed from lo */
    size_t lo, hi;           /* this rank's range; the ranks' ranges tile the buffer */
    /* Whole on every rank (the same values on each): each rank writes its zero_shard_range of
     * it. Its padded size is a multiple of the world size. */
    const ParamTable *state;
    const float *state_values;
    const FixedTensor *fixed;
    size_t nfixed;
    int keep_last;           /* older complete checkpoints beyond this many are deleted */
} CheckpointWrite;

/* Collective over all ranks. On success the final path is in path (size bytes). An I/O failure
 * ends the job with fatal() and the reason, on every rank (no rank is left waiting). */
void checkpoint_save(const CheckpointWrite *w, char *path, size_t size);

/* Newest complete checkpoint in dir: 1 and its path if there is one, 0 if none, -1 if dir can't
 * be read. Temporary files of interrupted writes are ignored. */
int checkpoint_find_latest(const char *dir, char *path, size_t size, MaecError *err);

typedef struct CheckpointRead {
    const ParamTable *table; /* every tensor is read into params from /model */
    float *params;
    float *m, *v;            /* AdamW's state for [lo, hi) (indexed from lo), or NULL */
    size_t lo, hi;
    const ParamTable *state; /* every tensor is read whole from /state, or NULL */
    float *state_values;
} CheckpointRead;

/* Reads what r names. Every tensor of r->table must be present with its shape, and, when m is
 * read, nothing else trainable; so must every tensor of r->state. Independent per rank: no MPI. */
int checkpoint_load(const char *path, const CheckpointRead *r, CheckpointMeta *meta, MaecError *err);

/* The tensors of table whose names start with `to`, from /model/<from><rest of the name> of the
 * checkpoint at path (written by maec for any objective): a teacher's encoder "teacher.blocks.0..."
 * from a student's "blocks.0...", with from "" and to "teacher.". A missing tensor or another
 * shape is an error naming both names and both shapes; *loaded gets the count. */
int checkpoint_load_renamed(const char *path, const ParamTable *table, float *params, const char *from,
                            const char *to, size_t *loaded, MaecError *err);

/* Reads only the metadata (config text, step, ...). */
int checkpoint_read_meta(const char *path, CheckpointMeta *meta, MaecError *err);
void checkpoint_meta_free(CheckpointMeta *meta);

#endif
