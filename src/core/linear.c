#include "maec/linear.h"

#include "maec/gemm.h"
#include "maec/parallel.h"

#include "kernel_util.h"

typedef struct LinearArgs {
    float *dst; /* out (bias rows) or dbias */
    const float *src; /* bias or dout */
    size_t M, N;
} LinearArgs;

static void copy_bias_rows(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const LinearArgs *a = ctx;
    for (size_t i = begin; i < end; i++)
        memcpy(a->dst + i * a->N, a->src, a->N * sizeof(float));
}

/* dbias columns [begin, end) * COLUMN_GROUP, each summed over all rows in row order: the result
 * does not depend on how the columns are split between threads. */
static void bias_grad_columns(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const LinearArgs *a = ctx;
    const size_t c_end = min_size(end * COLUMN_GROUP, a->N);
    for (size_t c0 = begin * COLUMN_GROUP; c0 < c_end; c0 += COLUMN_BLOCK) {
        size_t width = min_size(COLUMN_BLOCK, c_end - c0);
        double acc[COLUMN_BLOCK] = {0};
        column_sums_f64(acc, a->src + c0, a->M, width, a->N);
        for (size_t j = 0; j < width; j++)
            a->dst[c0 + j] += (float)acc[j];
    }
}

/* The bias is written first and the product added (beta = 1), as torch.addmm does: for beta = 0
 * OpenBLAS would spend the same pass zeroing out. */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    size_t M, size_t K, size_t N)
{
    if (bias) {
        LinearArgs a = {out, bias, M, N};
        parallel_for(M, kernel_min_chunk(N), copy_bias_rows, &a);
    }
    gemm(false, true, M, N, K, 1.0f, inp, K, weight, K, bias ? 1.0f : 0.0f, out, N);
}

void linear_backward(float *dinp, float *dweight, float *dbias,
                     const float *dout, const float *inp, const float *weight,
                     size_t M, size_t K, size_t N)
{
    if (dinp)
        gemm(false, false, M, K, N, 1.0f, dout, N, weight, K, 1.0f, dinp, K);
    gemm(true, false, N, K, M, 1.0f, dout, N, inp, K, 1.0f, dweight, K);
    if (dbias) {
        LinearArgs a = {dbias, dout, M, N};
        size_t groups = (N + COLUMN_GROUP - 1) / COLUMN_GROUP;
        parallel_for(groups, kernel_min_chunk(M * COLUMN_GROUP), bias_grad_columns, &a);
    }
}
