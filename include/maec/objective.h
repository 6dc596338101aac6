/* The objective interface: what a member of the MAE family learns, behind one seam that the
 * trainer, the benchmarks, the parity checker and the evaluation commands share (DESIGN.md
 * section 5; docs/variants/README.md says how to add one).
 *
 * An objective is one file in src/objectives/ defining an ObjectiveClass and one line in
 * registry.c. Its class declares
 *   - its config keys (a KeyTable reading the job's `objective:` section into its options);
 *   - its trainable tensors into Objective.table, in the order their gradients become final
 *     backwards (the tensor the backward pass finishes first comes last: gradsync.h), and its
 *     non-trainable state (running statistics, EMA weights, centres, queues) into Objective.state;
 *   - the mask it wants (Objective.mask), drawn per sample in the prefetch thread;
 *   - the names of its loss terms, which go to the progress line and the metrics file.
 * Its step runs forward and backward over one micro-batch; hooks run after each optimizer update
 * (EMA teachers) and at epoch ends. It exposes its encoder (embed, eval, finetune) and, when it
 * predicts pixels, a reconstruction (recon).
 *
 * Losses are means over the global micro-batch (all ranks' samples of one micro-step): each rank
 * returns, and takes gradients of, world x its share, so that gradsync's mean over ranks is the
 * global value and a run gives the same result on any rank count. */
#ifndef MAEC_OBJECTIVE_H
#define MAEC_OBJECTIVE_H

#include "maec/checkpoint.h"
#include "maec/config.h"
#include "maec/dataset.h"
#include "maec/encoder.h"
#include "maec/error.h"
#include "maec/keytable.h"
#include "maec/masking.h"
#include "maec/params.h"
#include "maec/prefetch.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OBJECTIVE_MAX_TERMS 8
#define OBJECTIVE_MAX_FIXED 8
#define OBJECTIVE_NAME_MAX 32

typedef struct ObjectiveClass ObjectiveClass;

typedef struct Objective {
    const ObjectiveClass *cls;
    void *self; /* the class's own data */
    /* Trainable: flat buffers of table.padded floats, 64-byte aligned, zero-filled. */
    ParamTable table;
    float *params, *grads;
    /* Non-trainable (may hold no tensor): the same on every rank. */
    ParamTable state;
    float *state_values;
    /* Tensors stored under /model besides the trainable ones (fixed position tables). */
    FixedTensor fixed[OBJECTIVE_MAX_FIXED];
    size_t n_fixed;
    MaskSpec mask;
    const char *terms[OBJECTIVE_MAX_TERMS]; /* names of the loss terms step reports */
    size_t n_terms;
    /* The encoder evaluation uses (NULL: none) and the prefix of its tensor names. */
    const Encoder *encoder;
    /* The MPI world the step's global means are taken over (1 rank: no communication). */
    int world;
} Objective;

/* What an objective is made from. */
typedef struct ObjectiveSetup {
    const JobConfig *cfg;
    void *options;            /* the class's options, read from the job; create may resolve them */
    const Dataset *data;      /* the training data, or NULL outside training (embed, recon) */
    size_t pad_multiple;      /* the world size */
} ObjectiveSetup;

struct ObjectiveClass {
    const char *name;    /* objective.name */
    const char *summary; /* one line for `maec objectives` */
    const KeyTable *keys;  /* section "objective"; target: the options struct */
    /* Declares into obj->table and obj->state, calls objective_alloc, binds, sets obj->mask,
     * obj->terms and obj->encoder. */
    int (*create)(Objective *obj, const ObjectiveSetup *setup, MaecError *err);
    void (*destroy)(Objective *obj);
    /* Activations for micro-batches of up to B samples masked as obj->mask says (again after
     * a change of obj->mask); returns their bytes. */
    size_t (*reserve)(Objective *obj, size_t B);
    /* Forward and backward over one micro-batch: returns the loss and writes terms[n_terms];
     * accumulates grad_scale * d loss / d params into obj->grads, telling ready (may be NULL) as
     * they become final. Collective when obj->world > 1 (every rank steps together). */
    double (*step)(Objective *obj, const Batch *batch, float grad_scale, const GradReady *ready, double *terms);
    /* NULL when there is nothing to do. */
    void (*after_update)(Objective *obj, long step);
    void (*epoch_end)(Objective *obj, uint32_t epoch);
    /* Named results of the last step, for parity checks: floats written to dst (dst NULL: only
     * counted), 0 for a name the objective does not know. */
    size_t (*output)(const Objective *obj, const char *name, size_t B, float *dst);
    /* pixels [B, L, ppC] (patchify order): the last step's reconstruction of batch->images, in
     * their units; NULL for objectives that do not predict pixels. */
    void (*pixels)(const Objective *obj, const Batch *batch, float *pixels);
};

/* ---- the registry (registry.c) ---- */

/* The registered objective names, NULL-terminated; the first is the default. */
extern const char *const objective_names[];
const ObjectiveClass *objective_class(int index);
/* NULL if no objective has this name. */
const ObjectiveClass *objective_find(const char *name);

/* ---- common parts (objective.c) ---- */

/* cls->create with fresh tables; on error obj owns nothing. */
int objective_create(Objective *obj, const ObjectiveClass *cls, const ObjectiveSetup *setup, MaecError *err);
void objective_destroy(Objective *obj);

/* For create: finishes both tables (padded to pad_multiple) and allocates params, grads and
 * state_values. */
void objective_alloc(Objective *obj, size_t pad_multiple);

/* The job's masking section as a mask of the model's patch grid; an error if no patch stays
 * visible. */
int objective_job_mask(MaskSpec *spec, const JobConfig *cfg, MaecError *err);

/* Sets obj->terms from a NULL-terminated list. */
void objective_set_terms(Objective *obj, const char *const *names);

/* The global count of a per-rank count (an all-reduce when obj->world > 1). */
double objective_global_count(const Objective *obj, double local);

#endif
