/* Every step works on blocks of columns, split across threads by column groups: statistics are
 * per column, so a column's sums run over the rows in order on one thread (bitwise the same for
 * any thread count, no per-thread scratch), and the per-column factors of the forward and
 * backward passes fit on the stack a block at a time instead of in an allocated buffer. The
 * elementwise passes work in double from the double statistics and round once. */
#include "maec/batchnorm.h"

#include "maec/error.h"
#include "maec/parallel.h"

#include "kernel_util.h"

#include <math.h>

typedef struct BatchnormArgs BatchnormArgs;
/* Columns [c0, c0 + width), width <= COLUMN_BLOCK. */
typedef void (*ColumnBlockFn)(const BatchnormArgs *a, size_t c0, size_t width);

struct BatchnormArgs {
    ColumnBlockFn block;
    const float *x, *dy, *xhat_in, *weight, *bias;
    const double *mean, *var, *sum_dy_in, *sum_dy_xhat_in;
    float *y, *xhat, *dx, *dweight, *dbias;
    double *sum, *sum2; /* the outputs of the sums steps */
    double eps;
    size_t n_total, N, C;
};

static void column_groups(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const BatchnormArgs *a = ctx;
    const size_t c_end = min_size(end * COLUMN_GROUP, a->C);
    for (size_t c0 = begin * COLUMN_GROUP; c0 < c_end; c0 += COLUMN_BLOCK)
        a->block(a, c0, min_size(COLUMN_BLOCK, c_end - c0));
}

static void for_column_blocks(BatchnormArgs *a, ColumnBlockFn block)
{
    a->block = block;
    size_t groups = (a->C + COLUMN_GROUP - 1) / COLUMN_GROUP;
    parallel_for(groups, kernel_min_chunk(a->N * COLUMN_GROUP), column_groups, a);
}

static void add_f64(double *restrict dst, const double *restrict src, size_t n)
{
    for (size_t j = 0; j < n; j++)
        dst[j] += src[j];
}

static void sums_block(const BatchnormArgs *a, size_t c0, size_t width)
{
    double acc[COLUMN_BLOCK] = {0};
    column_sums_f64(acc, a->x + c0, a->N, width, a->C);
    add_f64(a->sum + c0, acc, width);
}

static void squares_block(const BatchnormArgs *a, size_t c0, size_t width)
{
    double acc[COLUMN_BLOCK] = {0};
    const double *restrict mean = a->mean + c0;
    for (size_t i = 0; i < a->N; i++) {
        const float *restrict x = a->x + i * a->C + c0;
        for (size_t j = 0; j < width; j++) {
            double d = x[j] - mean[j];
            acc[j] += d * d;
        }
    }
    add_f64(a->sum + c0, acc, width);
}

/* Per column of the block: 1 / sqrt(var + eps). */
static void block_rstd(double *restrict rstd, const BatchnormArgs *a, size_t c0, size_t width)
{
    for (size_t j = 0; j < width; j++)
        rstd[j] = 1.0 / sqrt(a->var[c0 + j] + a->eps);
}

static void forward_block(const BatchnormArgs *a, size_t c0, size_t width)
{
    double rstd[COLUMN_BLOCK];
    block_rstd(rstd, a, c0, width);
    const double *restrict mean = a->mean + c0;
    const float *restrict w = a->weight + c0, *restrict b = a->bias + c0;
    for (size_t i = 0; i < a->N; i++) {
        const float *restrict x = a->x + i * a->C + c0;
        float *restrict y = a->y + i * a->C + c0, *restrict xhat = a->xhat + i * a->C + c0;
        for (size_t j = 0; j < width; j++) {
            double xh = (x[j] - mean[j]) * rstd[j];
            xhat[j] = (float)xh;
            y[j] = (float)(xh * w[j] + b[j]);
        }
    }
}

/* sdy[j], sdyx[j] = sums over this rank's rows of dy and dy * xhat, column c0 + j. */
static void dy_sums(double *restrict sdy, double *restrict sdyx, const BatchnormArgs *a,
                    size_t c0, size_t width)
{
    for (size_t i = 0; i < a->N; i++) {
        const float *restrict dy = a->dy + i * a->C + c0, *restrict xh = a->xhat_in + i * a->C + c0;
        for (size_t j = 0; j < width; j++) {
            sdy[j] += dy[j];
            sdyx[j] += (double)dy[j] * xh[j];
        }
    }
}

static void backward_sums_block(const BatchnormArgs *a, size_t c0, size_t width)
{
    double sdy[COLUMN_BLOCK] = {0}, sdyx[COLUMN_BLOCK] = {0};
    dy_sums(sdy, sdyx, a, c0, width);
    add_f64(a->sum + c0, sdy, width);
    add_f64(a->sum2 + c0, sdyx, width);
}

static void param_grads(const BatchnormArgs *a, size_t c0, size_t width)
{
    double sdy[COLUMN_BLOCK] = {0}, sdyx[COLUMN_BLOCK] = {0};
    dy_sums(sdy, sdyx, a, c0, width);
    for (size_t j = 0; j < width; j++) {
        a->dweight[c0 + j] += (float)sdyx[j];
        a->dbias[c0 + j] += (float)sdy[j];
    }
}

static void backward_block(const BatchnormArgs *a, size_t c0, size_t width)
{
    param_grads(a, c0, width);
    double scale[COLUMN_BLOCK], mean_dy[COLUMN_BLOCK], mean_dy_xhat[COLUMN_BLOCK];
    block_rstd(scale, a, c0, width);
    const double n = (double)a->n_total;
    for (size_t j = 0; j < width; j++) {
        scale[j] *= a->weight[c0 + j];
        mean_dy[j] = a->sum_dy_in[c0 + j] / n;
        mean_dy_xhat[j] = a->sum_dy_xhat_in[c0 + j] / n;
    }
    for (size_t i = 0; i < a->N; i++) {
        const float *restrict dy = a->dy + i * a->C + c0, *restrict xh = a->xhat_in + i * a->C + c0;
        float *restrict dx = a->dx + i * a->C + c0;
        for (size_t j = 0; j < width; j++)
            dx[j] += (float)(scale[j] * (dy[j] - mean_dy[j] - xh[j] * mean_dy_xhat[j]));
    }
}

void batchnorm_sums(const float *x, size_t N, size_t C, double *sum)
{
    BatchnormArgs a = {.x = x, .sum = sum, .N = N, .C = C};
    for_column_blocks(&a, sums_block);
}

void batchnorm_centered_squares(const float *x, size_t N, size_t C, const double *mean, double *sq)
{
    BatchnormArgs a = {.x = x, .mean = mean, .sum = sq, .N = N, .C = C};
    for_column_blocks(&a, squares_block);
}

void batchnorm_forward(float *y, float *xhat, const float *x, const double *mean, const double *var,
                       double eps, const float *weight, const float *bias, size_t N, size_t C)
{
    BatchnormArgs a = {.x = x, .weight = weight, .bias = bias, .mean = mean, .var = var, .y = y,
                       .xhat = xhat, .eps = eps, .N = N, .C = C};
    for_column_blocks(&a, forward_block);
}

void batchnorm_backward_sums(const float *dy, const float *xhat, size_t N, size_t C,
                             double *sum_dy, double *sum_dy_xhat)
{
    BatchnormArgs a = {.dy = dy, .xhat_in = xhat, .sum = sum_dy, .sum2 = sum_dy_xhat, .N = N,
                       .C = C};
    for_column_blocks(&a, backward_sums_block);
}

void batchnorm_backward(float *dx, float *dweight, float *dbias, const float *dy,
                        const float *xhat, const double *var, double eps, const float *weight,
                        const double *sum_dy, const double *sum_dy_xhat, size_t n_total,
                        size_t N, size_t C)
{
    BatchnormArgs a = {.dy = dy, .xhat_in = xhat, .weight = weight, .var = var,
                       .sum_dy_in = sum_dy, .sum_dy_xhat_in = sum_dy_xhat, .dx = dx,
                       .dweight = dweight, .dbias = dbias, .eps = eps, .n_total = n_total,
                       .N = N, .C = C};
    for_column_blocks(&a, backward_block);
}

void batchnorm_running_update(float *running_mean, float *running_var, const double *mean,
                              const double *var, size_t n_total, double momentum, size_t C)
{
    if (n_total < 2)
        fatal("batchnorm: the unbiased variance of the running statistics needs at least 2 rows "
              "in the global batch, got %zu (torch refuses one value per channel in training "
              "too): use a larger batch", n_total);
    const double bessel = (double)n_total / (double)(n_total - 1);
    for (size_t c = 0; c < C; c++) {
        running_mean[c] = (float)((1 - momentum) * running_mean[c] + momentum * mean[c]);
        running_var[c] = (float)((1 - momentum) * running_var[c] + momentum * var[c] * bessel);
    }
}
