#include "maec/cls_head.h"

#include "maec/batchnorm.h"
#include "maec/cross_entropy.h"
#include "maec/dist.h"
#include "maec/error.h"
#include "maec/linear.h"
#include "maec/tensor_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BN_EPS 1e-5      /* torch.nn.BatchNorm1d defaults */
#define BN_MOMENTUM 0.1

static void tensor_name(char *buf, const ClsHeadConfig *cfg, const char *part)
{
    if ((size_t)snprintf(buf, PARAM_NAME_MAX, "%s%s", cfg->prefix, part) >= PARAM_NAME_MAX)
        fatal("internal: head tensor name '%s%s' is too long", cfg->prefix, part);
}

/* The layers by their nn.Sequential names: index, shapes. */
typedef struct HeadTensor {
    const char *part;
    size_t rows, cols; /* cols 0: a vector */
} HeadTensor;

static size_t head_tensors(const ClsHeadConfig *c, HeadTensor t[6])
{
    if (c->hidden == 0) {
        t[0] = (HeadTensor){".weight", c->classes, c->dim}, t[1] = (HeadTensor){".bias", c->classes, 0};
        return 2;
    }
    t[0] = (HeadTensor){".0.weight", c->hidden, c->dim}, t[1] = (HeadTensor){".0.bias", c->hidden, 0};
    t[2] = (HeadTensor){".1.weight", c->hidden, 0}, t[3] = (HeadTensor){".1.bias", c->hidden, 0};
    t[4] = (HeadTensor){".3.weight", c->classes, c->hidden}, t[5] = (HeadTensor){".3.bias", c->classes, 0};
    return 6;
}

static const char *const state_parts[] = {".1.running_mean", ".1.running_var", ".1.num_batches_tracked"};

void cls_head_declare(ParamTable *params, ParamTable *state, const ClsHeadConfig *cfg)
{
    HeadTensor t[6];
    char name[PARAM_NAME_MAX];
    for (size_t i = 0, n = head_tensors(cfg, t); i < n; i++) {
        tensor_name(name, cfg, t[i].part);
        param_table_add(params, name, t[i].cols ? 2 : 1, (size_t[]){t[i].rows, t[i].cols});
    }
    for (size_t i = 0; cfg->hidden && i < 3; i++) {
        tensor_name(name, cfg, state_parts[i]);
        param_table_add(state, name, 1, (size_t[]){i < 2 ? cfg->hidden : 1}); /* the count: torch's 0-d, here [1] */
    }
}

void cls_head_bind(ClsHead *h, const ClsHeadConfig *cfg, const ParamTable *params, float *values, float *grads,
                   const ParamTable *state, float *state_values)
{
    memset(h, 0, sizeof *h);
    h->cfg = *cfg;
    h->world = dist_size();
    float **slots[6][2] = {{&h->w0, &h->dw0}, {&h->b0, &h->db0}, {&h->bn_w, &h->dbn_w},
                           {&h->bn_b, &h->dbn_b}, {&h->w3, &h->dw3}, {&h->b3, &h->db3}};
    HeadTensor t[6];
    char name[PARAM_NAME_MAX];
    for (size_t i = 0, n = head_tensors(cfg, t); i < n; i++) {
        tensor_name(name, cfg, t[i].part);
        *slots[i][0] = param_ptr(params, values, name);
        *slots[i][1] = grads ? param_ptr(params, grads, name) : NULL;
    }
    float **state_slots[3] = {&h->running_mean, &h->running_var, &h->batches_tracked};
    for (size_t i = 0; cfg->hidden && i < 3; i++) {
        tensor_name(name, cfg, state_parts[i]);
        *state_slots[i] = param_ptr(state, state_values, name);
    }
}

void cls_head_init_state(ClsHead *h)
{
    for (size_t i = 0; h->cfg.hidden && i < h->cfg.hidden; i++)
        h->running_var[i] = 1;
}

void cls_head_free(ClsHead *h)
{
    if (h->arena.base)
        arena_free(&h->arena);
    memset(h, 0, sizeof *h);
}

size_t cls_head_reserve(ClsHead *h, size_t B)
{
    const size_t D = h->cfg.dim, H = h->cfg.hidden, K = h->cfg.classes;
    const size_t floats[] = {B * D, B * H, B * H, B * H, B * K, B * K, B * H, B * H, B * D};
    float **bufs[] = {&h->pooled, &h->hidden, &h->xhat, &h->act, &h->logits, &h->dlogits, &h->dact, &h->dhidden,
                      &h->dpooled};
    const size_t stats = (2 * H + 1) * sizeof(double);
    size_t bytes = 3 * arena_floats_size(stats / sizeof(float));
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
        bytes += arena_floats_size(floats[i]);
    if (h->arena.base)
        arena_free(&h->arena);
    arena_init(&h->arena, bytes, "classification head activations");
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
        *bufs[i] = arena_floats(&h->arena, floats[i]);
    h->mean = arena_bytes(&h->arena, stats);
    h->var = arena_bytes(&h->arena, stats);
    h->sums = arena_bytes(&h->arena, stats);
    h->B = B;
    return bytes;
}

static void pool(ClsHead *h, const float *latent, size_t B, size_t n)
{
    const size_t D = h->cfg.dim;
    for (size_t b = 0; b < B; b++) {
        const float *tokens = latent + b * (1 + n) * D;
        if (h->cfg.global_pool)
            meanpool_forward(h->pooled + b * D, tokens + D, 1, n, D);
        else
            memcpy(h->pooled + b * D, tokens, D * sizeof(float));
    }
}

/* hidden [B,H] -> act [B,H]: BatchNorm over the global micro-batch (h->labeled is all-reduced
 * with the column sums), the running statistics, ReLU. */
static void normalize_hidden(ClsHead *h, size_t B, double labeled)
{
    const size_t H = h->cfg.hidden;
    const double n_total = (double)(B * (size_t)h->world);
    memset(h->sums, 0, (H + 1) * sizeof(double));
    batchnorm_sums(h->hidden, B, H, h->sums);
    h->sums[H] = labeled;
    dist_allreduce_sum_double(h->sums, H + 1);
    h->labeled = h->sums[H];
    for (size_t c = 0; c < H; c++)
        h->mean[c] = h->sums[c] / n_total;
    memset(h->var, 0, H * sizeof(double));
    batchnorm_centered_squares(h->hidden, B, H, h->mean, h->var);
    dist_allreduce_sum_double(h->var, H);
    for (size_t c = 0; c < H; c++)
        h->var[c] /= n_total;
    batchnorm_forward(h->act, h->xhat, h->hidden, h->mean, h->var, BN_EPS, h->bn_w, h->bn_b, B, H);
    batchnorm_running_update(h->running_mean, h->running_var, h->mean, h->var, (size_t)n_total, BN_MOMENTUM, H);
    h->batches_tracked[0] += 1;
    relu_forward(h->act, h->act, B * H);
}

double cls_head_forward(ClsHead *h, const float *latent, const int32_t *labels, size_t B, size_t n,
                        float grad_scale)
{
    const size_t D = h->cfg.dim, H = h->cfg.hidden, K = h->cfg.classes;
    if (B > h->B)
        fatal("internal: a batch of %zu exceeds the %zu the head's activations were sized for", B, h->B);
    h->n = n;
    double labeled = (double)cross_entropy_labeled(labels, B);
    pool(h, latent, B, n);
    if (H == 0) {
        linear_forward(h->logits, h->pooled, h->w0, h->b0, B, D, K);
        h->labeled = labeled;
        dist_allreduce_sum_double(&h->labeled, 1);
    } else {
        linear_forward(h->hidden, h->pooled, h->w0, h->b0, B, D, H);
        normalize_hidden(h, B, labeled);
        linear_forward(h->logits, h->act, h->w3, h->b3, B, H, K);
    }
    memset(h->dlogits, 0, B * K * sizeof(float));
    if (h->labeled == 0)
        return 0; /* no labeled sample anywhere: no term, no gradient */
    double share = (double)h->world / h->labeled;
    return share * cross_entropy_forward_backward(h->dlogits, h->logits, labels, B, K, h->cfg.temperature, 0.0,
                                                  grad_scale * share);
}

void cls_head_backward(ClsHead *h, float *dlatent, const GradReady *ready)
{
    const size_t D = h->cfg.dim, H = h->cfg.hidden, K = h->cfg.classes, B = h->B, n = h->n;
    memset(h->dpooled, 0, B * D * sizeof(float));
    if (H == 0) {
        linear_backward(h->dpooled, h->dw0, h->db0, h->dlogits, h->pooled, h->w0, B, D, K);
    } else {
        memset(h->dact, 0, B * H * sizeof(float));
        linear_backward(h->dact, h->dw3, h->db3, h->dlogits, h->act, h->w3, B, H, K);
        memset(h->dhidden, 0, B * H * sizeof(float));
        relu_backward(h->dhidden, h->act, h->dact, B * H); /* act > 0 exactly where its input was */
        memcpy(h->dact, h->dhidden, B * H * sizeof(float)); /* now the gradient at the BatchNorm output */
        double *sum_dy = h->sums, *sum_dy_xhat = h->sums + H;
        memset(h->sums, 0, 2 * H * sizeof(double));
        batchnorm_backward_sums(h->dact, h->xhat, B, H, sum_dy, sum_dy_xhat);
        dist_allreduce_sum_double(h->sums, 2 * H);
        memset(h->dhidden, 0, B * H * sizeof(float));
        batchnorm_backward(h->dhidden, h->dbn_w, h->dbn_b, h->dact, h->xhat, h->var, BN_EPS, h->bn_w, sum_dy,
                           sum_dy_xhat, B * (size_t)h->world, B, H);
        /* The bias before BatchNorm has a gradient of exactly 0 (BatchNorm removes any shift of a
         * column; the global sum of dhidden over rows is 0). Summed in float it is round-off,
         * which AdamW would normalise into steps of lr's size: leave it at 0. */
        linear_backward(h->dpooled, h->dw0, NULL, h->dhidden, h->pooled, h->w0, B, D, H);
    }
    grad_ready(ready, h->dw0);
    for (size_t b = 0; b < B; b++) {
        float *dtokens = dlatent + b * (1 + n) * D;
        if (h->cfg.global_pool)
            meanpool_backward(dtokens + D, h->dpooled + b * D, 1, n, D);
        else
            for (size_t d = 0; d < D; d++)
                dtokens[d] += h->dpooled[b * D + d];
    }
}
