#include "maec/step.h"

#include "maec/alloc.h"
#include "maec/dist.h"
#include "maec/timer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static Batch *prefetch_source_next(void *ctx, double *waited) { return prefetch_next(ctx, waited); }
static void prefetch_source_release(void *ctx) { prefetch_release(ctx); }

BatchSource batch_source_prefetch(Prefetch *p)
{
    return (BatchSource){prefetch_source_next, prefetch_source_release, p};
}

void stepper_init(Stepper *s, Objective *obj, const StepperConfig *cfg)
{
    memset(s, 0, sizeof *s);
    s->obj = obj, s->cfg = *cfg;
    s->rank = dist_rank(), s->world = dist_size();
    size_t padded = obj->table.padded;
    if (cfg->mode == DIST_ALLREDUCE) {
        s->lo = 0, s->hi = padded;
    } else {
        zero_shard_range(padded, s->rank, s->world, &s->lo, &s->hi);
        s->grad_shard = xcalloc(s->hi - s->lo, sizeof(float), "gradient shard");
        if (cfg->mode == DIST_ZERO2 && cfg->accum > 1)
            s->grad_scratch = xcalloc(s->hi - s->lo, sizeof(float), "gradient shard scratch");
    }
    s->m = xcalloc(s->hi - s->lo, sizeof(float), "AdamW m");
    s->v = xcalloc(s->hi - s->lo, sizeof(float), "AdamW v");
    size_t bucket = (size_t)(cfg->bucket_mb * 1024 * 1024 / sizeof(float));
    gradsync_init(&s->sync, cfg->mode == DIST_ALLREDUCE ? GRADSYNC_ALLREDUCE : GRADSYNC_REDUCE_SCATTER, obj->grads,
                  padded, bucket > 0 ? bucket : 1, s->grad_shard, s->grad_scratch,
                  (GradSyncNames){param_table_name_at, &obj->table});
}

void stepper_free(Stepper *s)
{
    gradsync_free(&s->sync);
    free(s->m), free(s->v), free(s->grad_shard), free(s->grad_scratch);
    memset(s, 0, sizeof *s);
}

/* Forward and backward over the step's micro-batches, the gradients averaged over ranks as the
 * backward passes finish them; r gets this rank's mean loss and terms. A micro-step's gradients
 * are reduced if they are the step's last, and in ZeRO-2 every micro-step's (into the owned shard,
 * so that the full gradient buffer is only a workspace). */
static void accumulate_gradients(Stepper *s, const BatchSource *src, StepResult *r)
{
    Objective *obj = s->obj;
    const int accum = s->cfg.accum;
    const bool zero2 = s->cfg.mode == DIST_ZERO2;
    const GradReady ready = {gradsync_ready, &s->sync};
    memset(obj->grads, 0, obj->table.padded * sizeof(float));
    for (int micro = 0; micro < accum; micro++) {
        double waited = 0, terms[OBJECTIVE_MAX_TERMS] = {0};
        Batch *b = src->next(src->ctx, &waited);
        r->data_wait += waited;
        bool reduce = micro + 1 == accum || zero2;
        if (reduce)
            gradsync_begin(&s->sync, micro > 0 && zero2);
        double t0 = now_seconds();
        r->loss += obj->cls->step(obj, b, 1.0f / (float)accum, reduce && s->cfg.overlap ? &ready : NULL, terms) /
                   accum;
        double t1 = now_seconds();
        r->compute_s += t1 - t0;
        for (size_t k = 0; k < obj->n_terms; k++)
            r->terms[k] += terms[k] / accum;
        src->release(src->ctx);
        if (reduce)
            gradsync_finish(&s->sync);
        r->comm_s += now_seconds() - t1;
        if (zero2 && micro + 1 < accum)
            memset(obj->grads, 0, obj->table.padded * sizeof(float));
    }
}

/* torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1. */
static double clip_gradients(Stepper *s, float *g)
{
    double ss = grad_sum_squares(g, s->lo, s->hi, &s->obj->table);
    if (s->cfg.mode != DIST_ALLREDUCE)
        dist_allreduce_sum_double(&ss, 1);
    double norm = sqrt(ss), max_norm = s->cfg.clip_grad;
    if (max_norm > 0 && max_norm / (norm + 1e-6) < 1)
        grad_scale(g, s->hi - s->lo, (float)(max_norm / (norm + 1e-6)));
    return norm;
}

/* The loss and terms as means over ranks, in one all-reduce. */
static void average_over_ranks(Stepper *s, StepResult *r)
{
    double values[1 + OBJECTIVE_MAX_TERMS] = {r->loss};
    const size_t n = 1 + s->obj->n_terms;
    memcpy(values + 1, r->terms, s->obj->n_terms * sizeof(double));
    dist_allreduce_sum_double(values, n);
    r->loss = values[0] / s->world;
    for (size_t k = 0; k < s->obj->n_terms; k++)
        r->terms[k] = values[1 + k] / s->world;
}

StepResult stepper_step(Stepper *s, const BatchSource *src, double lr, long step)
{
    Objective *obj = s->obj;
    StepResult r = {.lr = lr};
    accumulate_gradients(s, src, &r);
    double t0 = now_seconds();
    average_over_ranks(s, &r);
    float *g = s->cfg.mode == DIST_ALLREDUCE ? obj->grads : s->grad_shard; /* [lo, hi), indexed from lo */
    r.grad_norm = clip_gradients(s, g);
    if (!isfinite(r.loss) || !isfinite(r.grad_norm))
        return r;
    adamw_update(obj->params, g, s->m, s->v, s->lo, s->hi, &obj->table, &s->cfg.adamw, lr, step + 1);
    if (s->cfg.mode != DIST_ALLREDUCE)
        params_allgather(obj->params, obj->table.padded);
    if (obj->cls->after_update)
        obj->cls->after_update(obj, step);
    r.optim_s = now_seconds() - t0;
    return r;
}
