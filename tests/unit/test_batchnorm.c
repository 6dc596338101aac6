/* The batchnorm steps (one rank) against a double-precision reference and finite differences of
 * dx, dweight and dbias (tests/unit/kernel_check.h); synchronised BatchNorm over two ranks
 * played by two unequal halves of a batch, their partial sums added by hand, against the whole
 * batch; the += of the sums steps; the running statistics against torch's formula and a
 * worked example; and the refusal of a one-row batch. */
#include "expect_fatal.h"
#include "kernel_check.h"

#include "maec/batchnorm.h"

/* Statistics, normalisation and gradients in double, rounded once; the saved float xhat costs
 * 6e-8 relative in the backward pass (measured: 6e-8 forward, 1e-7 backward). */
#define BN_TOL 1e-6
/* Over 2 or 3 rows xhat curves sharply in x: the default step leaves an O(h^2) error near
 * 1e-3. A wrong term would be O(1). */
#define BN_FD_TOL 5e-3
/* The halves' sums, added by hand, differ from the whole batch's only in the order of the
 * double additions; the outputs then differ by a float rounding at most. */
#define SPLIT_TOL 1e-6
#define SUMS_TOL 1e-12
#define TORCH_EPS 1e-5 /* torch.nn.BatchNorm1d's defaults */
#define TORCH_MOMENTUM 0.1

typedef struct BnShape {
    size_t N, C;
    double offset, spread, eps; /* of the inputs; eps of the normalisation */
    double *mean, *var, *sum_dy, *sum_dy_xhat;
    float *xhat; /* saved by the forward for the backward */
} BnShape;

enum { X, WEIGHT, BIAS };

/* The forward steps of one rank: the global mean and biased variance of x[N,C]. */
static void batch_stats(double *mean, double *var, const float *x, size_t N, size_t C)
{
    memset(mean, 0, C * sizeof(double));
    batchnorm_sums(x, N, C, mean);
    for (size_t c = 0; c < C; c++)
        mean[c] /= (double)N;
    memset(var, 0, C * sizeof(double));
    batchnorm_centered_squares(x, N, C, mean, var);
    for (size_t c = 0; c < C; c++)
        var[c] /= (double)N;
}

static void forward(const GradCase *c, float *out)
{
    BnShape *s = c->ctx;
    batch_stats(s->mean, s->var, c->x[X], s->N, s->C);
    batchnorm_forward(out, s->xhat, c->x[X], s->mean, s->var, s->eps, c->x[WEIGHT], c->x[BIAS],
                      s->N, s->C);
}

static void backward(const GradCase *c, const float *out, float *const *grads)
{
    (void)out;
    BnShape *s = c->ctx;
    memset(s->sum_dy, 0, s->C * sizeof(double));
    memset(s->sum_dy_xhat, 0, s->C * sizeof(double));
    batchnorm_backward_sums(c->w, s->xhat, s->N, s->C, s->sum_dy, s->sum_dy_xhat);
    batchnorm_backward(grads[X], grads[WEIGHT], grads[BIAS], c->w, s->xhat, s->var, s->eps,
                       c->x[WEIGHT], s->sum_dy, s->sum_dy_xhat, s->N, s->N, s->C);
}

/* Column j's mean and 1/sqrt(var + eps), biased variance. */
static void column_stats_ref(const GradCase *c, size_t j, double *mean, double *rstd)
{
    const BnShape *s = c->ctx;
    const double *x = c->xd[X];
    double m = 0, var = 0;
    for (size_t i = 0; i < s->N; i++)
        m += x[i * s->C + j];
    m /= (double)s->N;
    for (size_t i = 0; i < s->N; i++)
        var += (x[i * s->C + j] - m) * (x[i * s->C + j] - m);
    *mean = m;
    *rstd = 1.0 / sqrt(var / (double)s->N + s->eps);
}

static void forward_ref(const GradCase *c, double *out)
{
    const BnShape *s = c->ctx;
    for (size_t j = 0; j < s->C; j++) {
        double m, rs;
        column_stats_ref(c, j, &m, &rs);
        for (size_t i = 0; i < s->N; i++)
            out[i * s->C + j] =
                (c->xd[X][i * s->C + j] - m) * rs * c->xd[WEIGHT][j] + c->xd[BIAS][j];
    }
}

/* The textbook form, column by column: dx = w * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)). */
static void backward_ref(const GradCase *c, double *const *grads)
{
    const BnShape *s = c->ctx;
    const size_t N = s->N, C = s->C;
    for (size_t j = 0; j < C; j++) {
        double m, rs, mean_dy = 0, mean_dyx = 0;
        column_stats_ref(c, j, &m, &rs);
        for (size_t i = 0; i < N; i++) {
            double dy = c->wd[i * C + j], xhat = (c->xd[X][i * C + j] - m) * rs;
            mean_dy += dy / (double)N;
            mean_dyx += dy * xhat / (double)N;
            grads[WEIGHT][j] += dy * xhat;
            grads[BIAS][j] += dy;
        }
        for (size_t i = 0; i < N; i++) {
            double xhat = (c->xd[X][i * C + j] - m) * rs;
            grads[X][i * C + j] +=
                c->xd[WEIGHT][j] * rs * (c->wd[i * C + j] - mean_dy - xhat * mean_dyx);
        }
    }
}

static const GradKernel bn_kernel = {"batchnorm", forward, backward, forward_ref, backward_ref,
                                     BN_TOL, BN_TOL, BN_FD_TOL};

static void shape_alloc(BnShape *s)
{
    s->mean = doubles(s->C), s->var = doubles(s->C);
    s->sum_dy = doubles(s->C), s->sum_dy_xhat = doubles(s->C);
    s->xhat = floats(s->N * s->C);
}

static void shape_free(BnShape *s)
{
    free(s->mean), free(s->var), free(s->sum_dy), free(s->sum_dy_xhat), free(s->xhat);
}

/* A case with x drawn from N(offset, spread^2), weight from N(1, 0.5^2), bias from N(0, 0.5^2). */
static void case_init(GradCase *c, BnShape *s, Rng *r)
{
    shape_alloc(s);
    grad_case_init(c, &bn_kernel, s, s->N * s->C, r, "batchnorm N=%zu C=%zu x %g+-%g eps %g",
                   s->N, s->C, s->offset, s->spread, s->eps);
    grad_case_input(c, "x", s->N * s->C, s->offset, s->spread, r);
    grad_case_input(c, "weight", s->C, 1.0, 0.5, r);
    grad_case_input(c, "bias", s->C, 0.0, 0.5, r);
}

static void case_free(GradCase *c, BnShape *s)
{
    grad_case_free(c);
    shape_free(s);
}

static void check_shape(BnShape *s, Rng *r)
{
    GradCase c;
    case_init(&c, s, r);
    check_grad_case(&c, r);
    case_free(&c, s);
}

/* rel error of got[n] against want[n], both float */
static double rel_error_f(const float *got, const float *want, size_t n)
{
    double *w = doubles(n);
    to_double(w, want, n);
    double e = test_rel_error(got, w, n);
    free(w);
    return e;
}

static double rel_error_d(const double *got, const double *want, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    return sqrt(num) / (den > 1e-300 ? sqrt(den) : 1e-150);
}

/* One rank's share of a synchronised step: rows [first, first + n) of the whole batch. */
typedef struct Rank {
    size_t first, n;
    double *sum, *sq, *sum_dy, *sum_dy_xhat; /* its partial sums, before the "all-reduce" */
    float *y, *xhat, *dx, *dweight, *dbias;
} Rank;

/* The statistics both ranks share after each all-reduce. */
typedef struct Global {
    double *mean, *var, *sum_dy, *sum_dy_xhat;
} Global;

static void rank_alloc(Rank *k, size_t first, size_t n, size_t C)
{
    *k = (Rank){.first = first, .n = n};
    k->sum = doubles(C), k->sq = doubles(C), k->sum_dy = doubles(C), k->sum_dy_xhat = doubles(C);
    k->y = floats(n * C), k->xhat = floats(n * C), k->dx = floats(n * C);
    k->dweight = floats(C), k->dbias = floats(C);
}

static void rank_free(Rank *k)
{
    free(k->sum), free(k->sq), free(k->sum_dy), free(k->sum_dy_xhat);
    free(k->y), free(k->xhat), free(k->dx), free(k->dweight), free(k->dbias);
}

/* out[C] = (a[C] + b[C]) * scale: the all-reduce of two ranks by hand. */
static void allreduce2(double *out, const double *a, const double *b, double scale, size_t C)
{
    for (size_t j = 0; j < C; j++)
        out[j] = (a[j] + b[j]) * scale;
}

static void ranks_forward(Rank rk[2], Global *g, const GradCase *c, const BnShape *s)
{
    const size_t C = s->C, N = s->N;
    const float *x = c->x[X];
    for (int i = 0; i < 2; i++)
        batchnorm_sums(x + rk[i].first * C, rk[i].n, C, rk[i].sum);
    allreduce2(g->mean, rk[0].sum, rk[1].sum, 1.0 / (double)N, C);
    for (int i = 0; i < 2; i++)
        batchnorm_centered_squares(x + rk[i].first * C, rk[i].n, C, g->mean, rk[i].sq);
    allreduce2(g->var, rk[0].sq, rk[1].sq, 1.0 / (double)N, C);
    for (int i = 0; i < 2; i++)
        batchnorm_forward(rk[i].y, rk[i].xhat, x + rk[i].first * C, g->mean, g->var, s->eps,
                          c->x[WEIGHT], c->x[BIAS], rk[i].n, C);
}

static void ranks_backward(Rank rk[2], Global *g, const GradCase *c, const BnShape *s)
{
    const size_t C = s->C;
    for (int i = 0; i < 2; i++)
        batchnorm_backward_sums(c->w + rk[i].first * C, rk[i].xhat, rk[i].n, C, rk[i].sum_dy,
                                rk[i].sum_dy_xhat);
    allreduce2(g->sum_dy, rk[0].sum_dy, rk[1].sum_dy, 1.0, C);
    allreduce2(g->sum_dy_xhat, rk[0].sum_dy_xhat, rk[1].sum_dy_xhat, 1.0, C);
    for (int i = 0; i < 2; i++)
        batchnorm_backward(rk[i].dx, rk[i].dweight, rk[i].dbias, c->w + rk[i].first * C,
                           rk[i].xhat, g->var, s->eps, c->x[WEIGHT], g->sum_dy, g->sum_dy_xhat,
                           s->N, rk[i].n, C);
}

/* Each rank's y and dx are its rows of the whole batch's; its dweight and dbias, added over the
 * ranks (the gradient all-reduce), the whole batch's. */
static void compare_ranks(const Rank rk[2], const GradCase *c, const float *y,
                          float *const *grads)
{
    const size_t C = ((const BnShape *)c->ctx)->C;
    float *dweight = floats(C), *dbias = floats(C);
    for (int i = 0; i < 2; i++) {
        const Rank *k = &rk[i];
        double ey = rel_error_f(k->y, y + k->first * C, k->n * C);
        double edx = rel_error_f(k->dx, grads[X] + k->first * C, k->n * C);
        CHECK(ey < SPLIT_TOL, "%s: rank %d's y differs from its rows of the whole batch's: rel "
              "error %.2e", c->label, i, ey);
        CHECK(edx < SPLIT_TOL, "%s: rank %d's dx differs from its rows of the whole batch's: rel "
              "error %.2e", c->label, i, edx);
        for (size_t j = 0; j < C; j++)
            dweight[j] += k->dweight[j], dbias[j] += k->dbias[j];
    }
    double ew = rel_error_f(dweight, grads[WEIGHT], C), eb = rel_error_f(dbias, grads[BIAS], C);
    CHECK(ew < SPLIT_TOL && eb < SPLIT_TOL, "%s: the ranks' dweight, dbias added differ from the "
          "whole batch's: rel errors %.2e %.2e", c->label, ew, eb);
    free(dweight), free(dbias);
}

/* What synchronised BatchNorm over two ranks does: each rank calls the steps on its rows alone,
 * with the statistics summed by hand in between. The whole batch (c, after run_case with y and
 * grads) must come out. */
static void check_two_ranks(const GradCase *c, const BnShape *s, const float *y,
                            float *const *grads)
{
    const size_t C = s->C, first = s->N / 3 + 1; /* unequal shares */
    Rank rk[2];
    rank_alloc(&rk[0], 0, first, C);
    rank_alloc(&rk[1], first, s->N - first, C);
    Global g = {doubles(C), doubles(C), doubles(C), doubles(C)};
    ranks_forward(rk, &g, c, s);
    CHECK(rel_error_d(g.mean, s->mean, C) < SUMS_TOL && rel_error_d(g.var, s->var, C) < SUMS_TOL,
          "%s: two ranks' mean or variance differ from the whole batch's", c->label);
    ranks_backward(rk, &g, c, s);
    compare_ranks(rk, c, y, grads);
    free(g.mean), free(g.var), free(g.sum_dy), free(g.sum_dy_xhat);
    rank_free(&rk[0]);
    rank_free(&rk[1]);
}

static void check_split(BnShape *s, Rng *r)
{
    GradCase c;
    case_init(&c, s, r);
    float *y = floats(c.out_len), *grads[GRAD_MAX_INPUTS];
    zeroed_grads(&c, grads);
    run_case(&c, y, grads);
    check_two_ranks(&c, s, y, grads);
    free_grads(&c, grads);
    free(y);
    case_free(&c, s);
}

/* The sums steps add onto what their outputs hold. */
static void check_sums_accumulate(Rng *r)
{
    const size_t N = 9, C = 21;
    float *x = floats(N * C), *dy = floats(N * C);
    fill_normal(x, N * C, 3.0, 1.0, r);
    fill_normal(dy, N * C, 0.0, 1.0, r);
    double *mean = doubles(C), *var = doubles(C), *once[4], *filled[4], *want = doubles(C);
    batch_stats(mean, var, x, N, C);
    for (int i = 0; i < 4; i++) {
        once[i] = doubles(C), filled[i] = doubles(C);
        for (size_t j = 0; j < C; j++)
            filled[i][j] = 100.0 + rng_normal(r);
    }
    double *pre[4];
    for (int i = 0; i < 4; i++) {
        pre[i] = doubles(C);
        memcpy(pre[i], filled[i], C * sizeof(double));
    }
    batchnorm_sums(x, N, C, once[0]), batchnorm_sums(x, N, C, filled[0]);
    batchnorm_centered_squares(x, N, C, mean, once[1]);
    batchnorm_centered_squares(x, N, C, mean, filled[1]);
    batchnorm_backward_sums(dy, x, N, C, once[2], once[3]);
    batchnorm_backward_sums(dy, x, N, C, filled[2], filled[3]);
    const char *names[] = {"batchnorm_sums", "batchnorm_centered_squares",
                           "batchnorm_backward_sums (sum_dy)", "batchnorm_backward_sums (sum_dy_xhat)"};
    for (int i = 0; i < 4; i++) {
        for (size_t j = 0; j < C; j++)
            want[j] = pre[i][j] + once[i][j];
        double e = rel_error_d(filled[i], want, C);
        CHECK(e < SUMS_TOL, "%s does not accumulate onto its output: rel error %.2e", names[i], e);
        free(once[i]), free(filled[i]), free(pre[i]);
    }
    free(x), free(dy), free(mean), free(var), free(want);
}

/* torch.nn.BatchNorm1d(1) on the column (1, 2, 3, 6) in training mode: mean 3, biased variance
 * 14/4 for the output, unbiased 14/3 for running_var; running stats start at 0 and 1. */
static void check_worked_example(void)
{
    const float x[4] = {1, 2, 3, 6}, w = 2, b = 0.5f;
    float y[4], xhat[4], running_mean = 0, running_var = 1;
    double mean, var;
    batch_stats(&mean, &var, x, 4, 1);
    batchnorm_forward(y, xhat, x, &mean, &var, TORCH_EPS, &w, &b, 4, 1);
    batchnorm_running_update(&running_mean, &running_var, &mean, &var, 4, TORCH_MOMENTUM, 1);
    CHECK(mean == 3 && fabs(var - 3.5) < 1e-15, "worked example: mean %g, var %g, want 3, 3.5",
          mean, var);
    for (int i = 0; i < 4; i++) {
        double want = (x[i] - 3) / sqrt(3.5 + TORCH_EPS) * 2 + 0.5;
        CHECK(fabs(y[i] - want) < 1e-6, "worked example: y[%d] = %.8g, want %.8g", i, y[i], want);
    }
    CHECK(fabs(running_mean - 0.3) < 1e-7, "worked example: running_mean %.8g, want 0.3",
          running_mean);
    CHECK(fabs(running_var - (0.9 + 0.1 * 14.0 / 3.0)) < 1e-7,
          "worked example: running_var %.8g, want 0.9 + 0.1 * 14/3 = 1.3666667", running_var);
}

/* running = (1 - m) running + m stat, unbiased variance, on random stats and momentum 0.3. */
static void check_running_update(Rng *r)
{
    const size_t N = 7, C = 13;
    const double m = 0.3;
    float *x = floats(N * C), *rm = floats(C), *rv = floats(C);
    double *mean = doubles(C), *var = doubles(C), *want_m = doubles(C), *want_v = doubles(C);
    fill_normal(x, N * C, -2.0, 3.0, r);
    fill_normal(rm, C, 0.0, 1.0, r);
    for (size_t j = 0; j < C; j++)
        rv[j] = (float)(1.0 + rng_uniform(r));
    for (size_t j = 0; j < C; j++) {
        double mu = 0, ss = 0;
        for (size_t i = 0; i < N; i++)
            mu += x[i * C + j] / (double)N;
        for (size_t i = 0; i < N; i++)
            ss += (x[i * C + j] - mu) * (x[i * C + j] - mu);
        want_m[j] = (1 - m) * rm[j] + m * mu;
        want_v[j] = (1 - m) * rv[j] + m * ss / (double)(N - 1);
    }
    batch_stats(mean, var, x, N, C);
    batchnorm_running_update(rm, rv, mean, var, N, m, C);
    double em = test_rel_error(rm, want_m, C), ev = test_rel_error(rv, want_v, C);
    CHECK(em < 1e-7 && ev < 1e-7, "running statistics differ from torch's formula: rel errors "
          "%.2e (mean), %.2e (var)", em, ev);
    free(x), free(rm), free(rv), free(mean), free(var), free(want_m), free(want_v);
}

static void running_update_one_row(void *ctx)
{
    (void)ctx;
    float rm = 0, rv = 1;
    double mean = 0, var = 0;
    batchnorm_running_update(&rm, &rv, &mean, &var, 1, TORCH_MOMENTUM, 1);
}

static void check_all(Rng *r)
{
    /* N = 2 (with a large eps, else xhat is +-1 whatever x) and 3; C = 17 (not a multiple of
     * the 16-column groups); eps 0.5 where its place inside the square root shows; inputs at
     * 100 + N(0,1), where sum(x^2) - n mean^2 would lose the variance; 300 columns (two blocks
     * of 256); 256 x 1024 (a SupMAE head's hidden layer), which the pool splits. */
    BnShape shapes[] = {{.N = 2, .C = 5, .spread = 1, .eps = 0.5},
                        {.N = 3, .C = 17, .spread = 1, .eps = TORCH_EPS},
                        {.N = 16, .C = 8, .spread = 1, .eps = 0.5},
                        {.N = 50, .C = 40, .spread = 3, .eps = TORCH_EPS},
                        {.N = 33, .C = 300, .offset = 100, .spread = 1, .eps = TORCH_EPS},
                        {.N = 256, .C = 1024, .spread = 1, .eps = TORCH_EPS}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_shape(&shapes[i], r);
    BnShape split[] = {{.N = 5, .C = 3, .spread = 1, .eps = TORCH_EPS},
                       {.N = 37, .C = 300, .offset = 100, .spread = 1, .eps = TORCH_EPS}};
    for (size_t i = 0; i < sizeof split / sizeof split[0]; i++)
        check_split(&split[i], r);
    check_sums_accumulate(r);
    check_worked_example();
    check_running_update(r);
    check_fatal(running_update_one_row, NULL, "at least 2 rows", "running update of one row");
}

int main(void) { return kernel_check_main("test_batchnorm", check_all); }
