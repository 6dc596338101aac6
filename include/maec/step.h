/* One optimizer step of any objective (objective.h): the forward and backward passes over the
 * step's micro-batches, gradient accumulation, the gradients averaged over ranks as the backward
 * passes finish them (all-reduce or ZeRO-1/2 reduce-scatter), clipping, the AdamW update of this
 * rank's range, the parameter all-gather, then the objective's after-update hook. The trainer,
 * bench_train, parity_check and the overfit test all step through here. */
#ifndef MAEC_STEP_H
#define MAEC_STEP_H

#include "maec/adamw.h"
#include "maec/gradsync.h"
#include "maec/objective.h"
#include "maec/prefetch.h"
#include "maec/zero.h"

#include <stdbool.h>
#include <stddef.h>

/* Where micro-batches come from: the prefetch thread in training, a fixed batch in tests. */
typedef struct BatchSource {
    Batch *(*next)(void *ctx, double *waited);
    void (*release)(void *ctx);
    void *ctx;
} BatchSource;

/* A source over a prefetch thread (ctx: the Prefetch). */
BatchSource batch_source_prefetch(Prefetch *p);

typedef struct StepperConfig {
    DistMode mode;
    int accum;        /* micro-batches per step */
    double bucket_mb; /* gradient message size */
    bool overlap;     /* reduce while the backward pass runs */
    AdamWConfig adamw;
    double clip_grad; /* 0 = off */
} StepperConfig;

typedef struct Stepper {
    Objective *obj;
    StepperConfig cfg;
    int rank, world;
    size_t lo, hi;       /* owned range of the flat buffers (the whole buffer for allreduce) */
    float *m, *v;        /* AdamW state for [lo, hi) */
    float *grad_shard;   /* ZeRO: the reduced gradients of [lo, hi) */
    float *grad_scratch; /* ZeRO-2 with accumulation: one micro-step's reduced shard */
    GradSync sync;
} Stepper;

typedef struct StepResult {
    double loss, grad_norm, lr, data_wait;
    /* Seconds of the objective's steps (forward and backward), of waiting for the gradient
     * reduction after them, and of clipping, the update, the all-gather and the hook. */
    double compute_s, comm_s, optim_s;
    double terms[OBJECTIVE_MAX_TERMS]; /* obj->terms, means over ranks as the loss */
} StepResult;

void stepper_init(Stepper *s, Objective *obj, const StepperConfig *cfg);
void stepper_free(Stepper *s);

/* Optimizer step number `step` (0-based) at learning rate lr. Collective. With a loss or
 * gradient norm that is not finite the parameters are left as they were (the caller stops). */
StepResult stepper_step(Stepper *s, const BatchSource *src, double lr, long step);

#endif
