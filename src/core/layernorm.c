/* Statistics are accumulated in double with a two-pass variance, so rows with a large common
 * offset (activations at 100 + N(0,1)) or long rows (C = 1024) keep float accuracy; the output
 * and gradient passes are float. Parameter gradients are column sums, split across threads by
 * columns: every column is summed in row order, so dweight and dbias are bitwise the same for
 * any thread count and need no per-thread scratch. */
#include "maec/layernorm.h"

#include "maec/parallel.h"

#include "kernel_util.h"

#include <math.h>

typedef struct LayernormArgs {
    float *out, *mean, *rstd;                   /* forward */
    float *dinp, *dweight, *dbias;              /* backward */
    const float *inp, *weight, *bias, *dout;
    const float *saved_mean, *saved_rstd;       /* backward */
    size_t M, C;
} LayernormArgs;

static double sum_sq_dev_f64(const float *restrict x, double mean, size_t n)
{
    double acc[KERNEL_LANES] = {0};
    size_t j = 0;
    for (; j + KERNEL_LANES <= n; j += KERNEL_LANES)
        for (size_t l = 0; l < KERNEL_LANES; l++) {
            double d = x[j + l] - mean;
            acc[l] += d * d;
        }
    for (size_t l = 0; j + l < n; l++) {
        double d = x[j + l] - mean;
        acc[l] += d * d;
    }
    return lanes_total(acc);
}

static void layernorm_forward_rows(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const LayernormArgs *a = ctx;
    const size_t C = a->C;
    const float *restrict w = a->weight, *restrict b = a->bias;
    for (size_t i = begin; i < end; i++) {
        const float *restrict x = a->inp + i * C;
        float *restrict out = a->out + i * C;
        double mean = sum_f64(x, C) / (double)C;
        double var = sum_sq_dev_f64(x, mean, C) / (double)C;
        float m = (float)mean, s = (float)(1.0 / sqrt(var + LAYERNORM_EPS));
        for (size_t j = 0; j < C; j++)
            out[j] = (x[j] - m) * s * w[j] + b[j];
        a->mean[i] = m;
        a->rstd[i] = s;
    }
}

/* sums[0] = sum of g, sums[1] = sum of g * xhat over one row, g = dout * weight,
 * xhat = (x - m) * s. */
static void row_grad_sums(double sums[2], const float *restrict d, const float *restrict w,
                          const float *restrict x, float m, float s, size_t n)
{
    double sg[KERNEL_LANES] = {0}, sgx[KERNEL_LANES] = {0};
    size_t j = 0;
    for (; j + KERNEL_LANES <= n; j += KERNEL_LANES)
        for (size_t l = 0; l < KERNEL_LANES; l++) {
            float g = d[j + l] * w[j + l];
            sg[l] += g;
            sgx[l] += (double)g * ((x[j + l] - m) * s);
        }
    for (size_t l = 0; j + l < n; l++) {
        float g = d[j + l] * w[j + l];
        sg[l] += g;
        sgx[l] += (double)g * ((x[j + l] - m) * s);
    }
    sums[0] = lanes_total(sg);
    sums[1] = lanes_total(sgx);
}

/* dinp = rstd * (g - mean(g) - xhat * mean(g * xhat)), g and xhat as above. */
static void layernorm_backward_rows(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const LayernormArgs *a = ctx;
    const size_t C = a->C;
    const float *restrict w = a->weight;
    for (size_t i = begin; i < end; i++) {
        const float *restrict x = a->inp + i * C, *restrict d = a->dout + i * C;
        float *restrict dinp = a->dinp + i * C;
        float m = a->saved_mean[i], s = a->saved_rstd[i];
        double sums[2];
        row_grad_sums(sums, d, w, x, m, s, C);
        float mg = (float)(sums[0] / (double)C), mgx = (float)(sums[1] / (double)C);
        for (size_t j = 0; j < C; j++)
            dinp[j] += s * ((d[j] * w[j] - mg) - (x[j] - m) * s * mgx);
    }
}

/* Columns [begin, end) * COLUMN_GROUP of dweight and dbias. */
static void layernorm_param_columns(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const LayernormArgs *a = ctx;
    const size_t C = a->C, c_end = min_size(end * COLUMN_GROUP, C);
    for (size_t c0 = begin * COLUMN_GROUP; c0 < c_end; c0 += COLUMN_BLOCK) {
        size_t width = min_size(COLUMN_BLOCK, c_end - c0);
        double dw[COLUMN_BLOCK] = {0}, db[COLUMN_BLOCK] = {0};
        for (size_t i = 0; i < a->M; i++) {
            const float *restrict x = a->inp + i * C + c0, *restrict d = a->dout + i * C + c0;
            float m = a->saved_mean[i], s = a->saved_rstd[i];
            for (size_t j = 0; j < width; j++) {
                dw[j] += (double)d[j] * ((x[j] - m) * s);
                db[j] += d[j];
            }
        }
        for (size_t j = 0; j < width; j++) {
            a->dweight[c0 + j] += (float)dw[j];
            a->dbias[c0 + j] += (float)db[j];
        }
    }
}

void layernorm_forward(float *out, float *mean, float *rstd,
                       const float *inp, const float *weight, const float *bias,
                       size_t M, size_t C)
{
    LayernormArgs a = {.out = out, .mean = mean, .rstd = rstd, .inp = inp, .weight = weight,
                       .bias = bias, .M = M, .C = C};
    parallel_for(M, kernel_min_chunk(C), layernorm_forward_rows, &a);
}

void layernorm_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *weight,
                        const float *mean, const float *rstd, size_t M, size_t C)
{
    LayernormArgs a = {.dinp = dinp, .dweight = dweight, .dbias = dbias, .inp = inp,
                       .weight = weight, .dout = dout, .saved_mean = mean, .saved_rstd = rstd,
                       .M = M, .C = C};
    parallel_for(M, kernel_min_chunk(C), layernorm_backward_rows, &a);
    size_t groups = (C + COLUMN_GROUP - 1) / COLUMN_GROUP;
    parallel_for(groups, kernel_min_chunk(M * COLUMN_GROUP), layernorm_param_columns, &a);
}
