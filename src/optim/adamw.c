#include "maec/adamw.h"

#include "maec/alloc.h"
#include "maec/parallel.h"

#include <math.h>
#include <stdlib.h>

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

#define SQUARES_LANES 8

/* Eight running sums, lane i % 8, added in lane order at the end: one chain of dependent double
 * adds would take four times as long. The order depends only on the offsets, not on threads. */
static void squares_piece(void *ctx, size_t a, size_t b, const ParamTensor *t)
{
    (void)t;
    SquaresCall *call = ctx;
    const float *g = call->grads - call->lo;
    double lane[SQUARES_LANES] = {0};
    size_t i = a;
    for (; i + SQUARES_LANES <= b; i += SQUARES_LANES)
        for (size_t k = 0; k < SQUARES_LANES; k++)
            lane[k] += (double)g[i + k] * g[i + k];
    for (size_t k = 0; i < b; i++, k++)
        lane[k] += (double)g[i] * g[i];
    for (size_t k = 0; k < SQUARES_LANES; k++)
        call->sum += lane[k];
}

#define SQUARES_BLOCK ((size_t)1 << 16)

typedef struct SquaresBlocks {
    const float *grads;
    size_t lo, hi;
    const ParamTable *table;
    double *sums; /* one per block of SQUARES_BLOCK floats from lo */
} SquaresBlocks;

static void squares_blocks(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    SquaresBlocks *s = ctx;
    for (size_t k = begin; k < end; k++) {
        size_t a = s->lo + k * SQUARES_BLOCK, b = a + SQUARES_BLOCK < s->hi ? a + SQUARES_BLOCK : s->hi;
        SquaresCall call = {s->grads, s->lo, 0.0};
        for_each_piece(a, b, s->table, squares_piece, &call);
        s->sums[k] = call.sum;
    }
}

/* Blocks of fixed size summed on the pool, then added in block order: the same result on any
 * number of threads. */
double grad_sum_squares(const float *grads, size_t lo, size_t hi, const ParamTable *table)
{
    size_t blocks = hi > lo ? (hi - lo + SQUARES_BLOCK - 1) / SQUARES_BLOCK : 0;
    SquaresBlocks s = {grads, lo, hi, table, xcalloc(blocks ? blocks : 1, sizeof(double), "gradient norm sums")};
    parallel_for(blocks, 1, squares_blocks, &s);
    double sum = 0.0;
    for (size_t k = 0; k < blocks; k++)
        sum += s.sums[k];
    free(s.sums);
    return sum;
}

void grad_scale(float *grads, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        grads[i] *= scale;
}
