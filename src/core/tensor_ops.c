#include "maec/tensor_ops.h"

#include "maec/parallel.h"

#include "kernel_util.h"

typedef struct TensorArgs {
    float *dst, *dst2;
    const float *a, *b;
    size_t T, C;
} TensorArgs;

static void residual_forward_range(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const TensorArgs *r = ctx;
    float *out = r->dst; /* may alias a or b: each element is read before it is written */
    for (size_t i = begin; i < end; i++)
        out[i] = r->a[i] + r->b[i];
}

static void residual_backward_range(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const TensorArgs *r = ctx;
    float *restrict da = r->dst, *restrict db = r->dst2;
    const float *restrict dout = r->a;
    for (size_t i = begin; i < end; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}

static void relu_forward_range(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const TensorArgs *r = ctx;
    for (size_t i = begin; i < end; i++)
        r->dst[i] = r->a[i] > 0 ? r->a[i] : 0;
}

static void relu_backward_range(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const TensorArgs *r = ctx;
    for (size_t i = begin; i < end; i++)
        if (r->a[i] > 0)
            r->dst[i] += r->b[i];
}

/* Samples [begin, end): column sums over the T tokens in double, in token order. */
static void meanpool_forward_samples(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const TensorArgs *p = ctx;
    const size_t T = p->T, C = p->C;
    for (size_t b = begin; b < end; b++)
        for (size_t c0 = 0; c0 < C; c0 += COLUMN_BLOCK) {
            size_t width = min_size(COLUMN_BLOCK, C - c0);
            double acc[COLUMN_BLOCK] = {0};
            column_sums_f64(acc, p->a + b * T * C + c0, T, width, C);
            for (size_t j = 0; j < width; j++)
                p->dst[b * C + c0 + j] = (float)(acc[j] / (double)T);
        }
}

static void meanpool_backward_samples(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const TensorArgs *p = ctx;
    const size_t T = p->T, C = p->C;
    const float t_count = (float)T; /* divide, not multiply by 1/T: one rounding, as torch */
    for (size_t b = begin; b < end; b++) {
        const float *restrict dout = p->a + b * C;
        for (size_t t = 0; t < T; t++) {
            float *restrict dinp = p->dst + (b * T + t) * C;
            for (size_t c = 0; c < C; c++)
                dinp[c] += dout[c] / t_count;
        }
    }
}

void residual_forward(float *out, const float *a, const float *b, size_t n)
{
    TensorArgs r = {.dst = out, .a = a, .b = b};
    parallel_for(n, KERNEL_MIN_WORK, residual_forward_range, &r);
}

void residual_backward(float *da, float *db, const float *dout, size_t n)
{
    TensorArgs r = {.dst = da, .dst2 = db, .a = dout};
    parallel_for(n, KERNEL_MIN_WORK, residual_backward_range, &r);
}

void relu_forward(float *out, const float *inp, size_t n)
{
    TensorArgs r = {.dst = out, .a = inp};
    parallel_for(n, KERNEL_MIN_WORK, relu_forward_range, &r);
}

void relu_backward(float *dinp, const float *inp, const float *dout, size_t n)
{
    TensorArgs r = {.dst = dinp, .a = inp, .b = dout};
    parallel_for(n, KERNEL_MIN_WORK, relu_backward_range, &r);
}

void meanpool_forward(float *out, const float *inp, size_t B, size_t T, size_t C)
{
    TensorArgs p = {.dst = out, .a = inp, .T = T, .C = C};
    parallel_for(B, kernel_min_chunk(T * C), meanpool_forward_samples, &p);
}

void meanpool_backward(float *dinp, const float *dout, size_t B, size_t T, size_t C)
{
    TensorArgs p = {.dst = dinp, .a = dout, .T = T, .C = C};
    parallel_for(B, kernel_min_chunk(T * C), meanpool_backward_samples, &p);
}
