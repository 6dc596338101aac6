/* The learning-rate schedule of MAE pretraining (facebookresearch/mae util/lr_sched.py), applied
 * per iteration: linear warmup from exactly 0 to the peak, then a half-cosine down to min_lr.
 * Positions are in optimizer steps and may be fractional. */
#ifndef MAEC_SCHEDULE_H
#define MAEC_SCHEDULE_H

typedef struct LrSchedule {
    double peak, min_lr;
    double warmup; /* steps of linear warmup */
    double total;  /* steps in the whole run */
} LrSchedule;

/* lr at position s: peak * s / warmup for s < warmup, else
 * min_lr + (peak - min_lr) * 0.5 * (1 + cos(pi * (s - warmup) / (total - warmup))). */
double lr_at(const LrSchedule *schedule, double s);

/* The reference's scaling rule: lr = blr * global_batch / 256. */
double lr_from_base(double blr, long global_batch);

#endif
