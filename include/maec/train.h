/* Data-parallel pretraining of any objective (DESIGN.md section 4): every rank holds a replica,
 * steps over its slice of each global batch (step.h) and the ranks synchronise by all-reduce or
 * ZeRO-1/2. This layer holds the run around the step: the batch plan and learning-rate schedule,
 * the prefetch thread, checkpoint cadence, resume rules, preemption signals, epoch hooks and the
 * progress line and metrics file. */
#ifndef MAEC_TRAIN_H
#define MAEC_TRAIN_H

#include "maec/augment.h"
#include "maec/config.h"
#include "maec/dataset.h"
#include "maec/error.h"
#include "maec/job.h"

typedef struct TrainOptions {
    const char *resume; /* "none", "auto" or a checkpoint path */
    long stop_at;       /* stop after this step as if preempted; 0: run to the end */
} TrainOptions;

typedef struct Trainer Trainer;

/* Opens the data, makes the objective, plans the run and resumes as opts say; the job moves into
 * the trainer. No collective calls: the caller agrees on failure across ranks (the trainer is
 * then closed on every rank). On error *t is still set, for trainer_close. */
int trainer_open(Trainer **t, Job *job, const TrainOptions *opts, MaecError *err);
/* Runs to the end, a signal (SIGTERM, SIGUSR1: install_stop_signals) or stop_at, checkpointing
 * on the way. Collective. Returns the exit code: 0 when done or stopped, 1 on failure (reported). */
int trainer_run(Trainer *t);
void trainer_close(Trainer *t);

/* SIGTERM and SIGUSR1 stop a run after its current step, with a checkpoint. */
void install_stop_signals(void);

/* The augmentation and normalisation of a job's training images on dataset ds. */
void train_input(const JobConfig *cfg, const Dataset *ds, AugmentConfig *a);

#endif
