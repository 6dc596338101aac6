#include "maec/softmax.h"

#include "maec/parallel.h"

#include "kernel_util.h"

typedef struct SoftmaxArgs {
    float *dst; /* out (forward) or dinp (backward) */
    const float *inp, *out, *dout;
    size_t N;
} SoftmaxArgs;

/* In place, so that one vectorised loop serves both out == inp (attention) and a copy. The sum
 * is taken in double over the stored exponentials, then one reciprocal scales the row. */
static void softmax_row(float *restrict row, size_t N)
{
    float max = max_f32(row, N);
    for (size_t j = 0; j < N; j++)
        row[j] = exp_nonpositive(row[j] - max);
    float inv = (float)(1.0 / sum_f64(row, N));
    for (size_t j = 0; j < N; j++)
        row[j] *= inv;
}

static void softmax_forward_rows(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const SoftmaxArgs *s = ctx;
    for (size_t i = begin; i < end; i++) {
        float *row = s->dst + i * s->N;
        if (row != s->inp + i * s->N)
            memcpy(row, s->inp + i * s->N, s->N * sizeof(float));
        softmax_row(row, s->N);
    }
}

static void softmax_backward_rows(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const SoftmaxArgs *s = ctx;
    for (size_t i = begin; i < end; i++) {
        float *restrict dinp = s->dst + i * s->N;
        const float *restrict out = s->out + i * s->N, *restrict dout = s->dout + i * s->N;
        float dot = (float)dot_f64(out, dout, s->N);
        for (size_t j = 0; j < s->N; j++)
            dinp[j] += out[j] * (dout[j] - dot);
    }
}

void softmax_forward(float *out, const float *inp, size_t M, size_t N)
{
    SoftmaxArgs s = {out, inp, NULL, NULL, N};
    parallel_for(M, kernel_min_chunk(N), softmax_forward_rows, &s);
}

void softmax_backward(float *dinp, const float *out, const float *dout, size_t M, size_t N)
{
    SoftmaxArgs s = {dinp, NULL, out, dout, N};
    parallel_for(M, kernel_min_chunk(N), softmax_backward_rows, &s);
}
