#include "maec/adamw.h"

#include "maec/parallel.h"

#include <math.h>

AdamWConfig adamw_defaults(void) { return (AdamWConfig){0.9, 0.95, 1e-8, 0.05}; }

/* One contiguous piece of one tensor: every pointer already at the piece's first element. */
typedef struct AdamWPiece {
    float *p, *m, *v;
    const float *g;
    float decay; /* 1 - lr * wd where the tensor decays, else 1 */
    float b1, b2, step_size, bc2_sqrt, eps;
} AdamWPiece;

static void adamw_range(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const AdamWPiece *j = ctx;
    float *restrict p = j->p, *restrict m = j->m, *restrict v = j->v;
    const float *restrict g = j->g;
    for (size_t i = begin; i < end; i++) {
        p[i] *= j->decay;
        m[i] = j->b1 * m[i] + (1.0f - j->b1) * g[i];
        v[i] = j->b2 * v[i] + (1.0f - j->b2) * g[i] * g[i];
        p[i] -= j->step_size * m[i] / (sqrtf(v[i]) / j->bc2_sqrt + j->eps);
    }
}

/* Calls fn(ctx, a, b, tensor) for each piece [a, b) of [lo, hi) inside one tensor. */
static void for_each_piece(size_t lo, size_t hi, const ParamTable *table,
                           void (*fn)(void *ctx, size_t a, size_t b, const ParamTensor *t), void *ctx)
{
    for (size_t i = 0; i < table->count; i++) {
        const ParamTensor *t = &table->tensors[i];
        size_t a = t->offset > lo ? t->offset : lo;
        size_t b = t->offset + t->numel < hi ? t->offset + t->numel : hi;
        if (a < b)
            fn(ctx, a, b, t);
    }
}

typedef struct AdamWCall {
    float *params, *m, *v;
    const float *grads;
    const ParamTable *table;
    size_t lo;
    double lr, wd;
    AdamWPiece hyper; /* the step's constants; pointers and decay are set per piece */
} AdamWCall;

static void adamw_piece(void *ctx, size_t a, size_t b, const ParamTensor *t)
{
    const AdamWCall *c = ctx;
    AdamWPiece piece = c->hyper;
    piece.p = c->params + a;
    piece.m = c->m + (a - c->lo);
    piece.v = c->v + (a - c->lo);
    piece.g = c->grads + (a - c->lo);
    piece.decay = t->decay ? (float)(1.0 - c->lr * c->wd) : 1.0f;
    adamw_range(&piece, 0, b - a, 0);
}

/* Elements [lo + begin, lo + end): one pool job for the whole update instead of one per tensor
 * (a model has hundreds of tensors, many smaller than a thread wake-up is worth). */
static void adamw_elements(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    AdamWCall *c = ctx;
    for_each_piece(c->lo + begin, c->lo + end, c->table, adamw_piece, c);
}

void adamw_update(float *params, const float *grads, float *m, float *v, size_t lo, size_t hi,
                  const ParamTable *table, const AdamWConfig *cfg, double lr, long step)
{
    double bc1 = 1.0 - pow(cfg->beta1, (double)step), bc2 = 1.0 - pow(cfg->beta2, (double)step);
    AdamWCall call = {params, m, v, grads, table, lo, lr, cfg->weight_decay,
                      {.b1 = (float)cfg->beta1, .b2 = (float)cfg->beta2, .step_size = (float)(lr / bc1),
                       .bc2_sqrt = (float)sqrt(bc2), .eps = (float)cfg->eps}};
    parallel_for(hi > lo ? hi - lo : 0, 4096, adamw_elements, &call);
}

typedef struct SquaresCall {
    const float *grads;
    size_t lo;
    double sum;
} SquaresCall;

static void squares_piece(void *ctx, size_t a, size_t b, const ParamTensor *t)
{
    (void)t;
    SquaresCall *call = ctx;
    for (size_t i = a; i < b; i++)
        call->sum += (double)call->grads[i - call->lo] * call->grads[i - call->lo];
}

double grad_sum_squares(const float *grads, size_t lo, size_t hi, const ParamTable *table)
{
    SquaresCall call = {grads, lo, 0.0};
    for_each_piece(lo, hi, table, squares_piece, &call);
    return call.sum;
}

void grad_scale(float *grads, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        grads[i] *= scale;
}
