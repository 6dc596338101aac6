/* Per (batch, head) pair, every product is one gemm() on strided views of the fused qkv rows
 * (leading dimension 3C) and of the output rows (leading dimension C), so no head is ever
 * copied out. Pairs are independent and write disjoint columns, so they run in parallel with
 * gemm single-threaded inside each worker, and the results do not depend on the thread count. */
#include "maec/attention.h"

#include "maec/gemm.h"
#include "maec/parallel.h"
#include "maec/softmax.h"

#include "kernel_util.h"

#include <math.h>

typedef struct AttentionArgs {
    float *out, *att;          /* forward */
    float *dqkv, *scratch;     /* backward */
    const float *qkv, *dout, *saved_att;
    size_t T, C, NH;
} AttentionArgs;

/* As timm: head_dim ** -0.5, rounded once to float. */
static float head_scale(size_t hd) { return (float)(1.0 / sqrt((double)hd)); }

static void attention_forward_pairs(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const AttentionArgs *a = ctx;
    const size_t T = a->T, C = a->C, hd = C / a->NH;
    const float scale = head_scale(hd);
    for (size_t p = begin; p < end; p++) {
        size_t b = p / a->NH, h = p % a->NH;
        const float *q = a->qkv + b * T * 3 * C + h * hd, *k = q + C, *v = q + 2 * C;
        float *att = a->att + p * T * T;
        gemm(false, true, T, T, hd, scale, q, 3 * C, k, 3 * C, 0.0f, att, T);
        softmax_forward(att, att, T, T);
        gemm(false, false, T, hd, T, 1.0f, att, T, v, 3 * C, 0.0f, a->out + b * T * C + h * hd, C);
    }
}

/* dS = P * (dP - rowsum(P * dP)), overwriting dP: the softmax backward, written rather than
 * accumulated. */
static void softmax_grad_in_place(float *restrict dp, const float *restrict p, size_t T)
{
    for (size_t i = 0; i < T; i++) {
        float *restrict row = dp + i * T;
        const float *restrict prow = p + i * T;
        float dot = (float)dot_f64(prow, row, T);
        for (size_t j = 0; j < T; j++)
            row[j] = prow[j] * (row[j] - dot);
    }
}

static void attention_backward_pairs(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const AttentionArgs *a = ctx;
    const size_t T = a->T, C = a->C, hd = C / a->NH;
    const float scale = head_scale(hd);
    for (size_t p = begin; p < end; p++) {
        size_t b = p / a->NH, h = p % a->NH;
        size_t head = b * T * 3 * C + h * hd;
        const float *q = a->qkv + head, *k = q + C, *v = q + 2 * C;
        float *dq = a->dqkv + head, *dk = dq + C, *dv = dq + 2 * C;
        const float *P = a->saved_att + p * T * T, *dout = a->dout + b * T * C + h * hd;
        float *dS = a->scratch + p * T * T;
        gemm(false, true, T, T, hd, 1.0f, dout, C, v, 3 * C, 0.0f, dS, T);    /* dP = dout v^T */
        gemm(true, false, T, hd, T, 1.0f, P, T, dout, C, 1.0f, dv, 3 * C);    /* dv += P^T dout */
        softmax_grad_in_place(dS, P, T);
        gemm(false, false, T, hd, T, scale, dS, T, k, 3 * C, 1.0f, dq, 3 * C); /* dq += s dS k */
        gemm(true, false, T, hd, T, scale, dS, T, q, 3 * C, 1.0f, dk, 3 * C);  /* dk += s dS^T q */
    }
}

void attention_forward(float *out, float *att, const float *qkv,
                       size_t B, size_t T, size_t C, size_t NH)
{
    AttentionArgs a = {.out = out, .att = att, .qkv = qkv, .T = T, .C = C, .NH = NH};
    parallel_for(B * NH, 1, attention_forward_pairs, &a);
}

void attention_backward(float *dqkv, float *scratch, const float *dout,
                        const float *qkv, const float *att,
                        size_t B, size_t T, size_t C, size_t NH)
{
    AttentionArgs a = {.dqkv = dqkv, .scratch = scratch, .qkv = qkv, .dout = dout,
                       .saved_att = att, .T = T, .C = C, .NH = NH};
    parallel_for(B * NH, 1, attention_backward_pairs, &a);
}
