/* layernorm_forward / layernorm_backward against a double-precision reference and finite
 * differences (tests/unit/kernel_check.h), including rows with a large common offset. */
#include "kernel_check.h"

#include "maec/layernorm.h"

/* Statistics are double, the normalisation and gradient passes float: a few roundings per
 * element (1e-7), except at offset 100, where the saved float mean is off by up to 100 * 6e-8
 * and x - mean carries that into every element: 2e-6 relative to unit spread. */
#define LAYERNORM_TOL 1e-5
/* Over short rows (C = 24) 1/std curves enough that the default step of 1e-2 leaves an O(h^2)
 * error near 1e-3. A smaller step does not help: at offset 100 the float mean's rounding
 * (6e-6 per element) then dominates the difference of the losses. A wrong term would be O(1). */
#define LAYERNORM_FD_TOL 5e-3

typedef struct LayernormShape {
    size_t M, C;
    double offset;      /* the inputs' common mean */
    float *mean, *rstd; /* saved by the forward for the backward */
} LayernormShape;

enum { INP, WEIGHT, BIAS };

static void forward(const GradCase *c, float *out)
{
    LayernormShape *s = c->ctx;
    layernorm_forward(out, s->mean, s->rstd, c->x[INP], c->x[WEIGHT], c->x[BIAS], s->M, s->C);
}

static void backward(const GradCase *c, const float *out, float *const *grads)
{
    (void)out;
    const LayernormShape *s = c->ctx;
    layernorm_backward(grads[INP], grads[WEIGHT], grads[BIAS], c->w, c->x[INP], c->x[WEIGHT],
                       s->mean, s->rstd, s->M, s->C);
}

/* Row i's mean and 1/sqrt(var + eps), biased variance. */
static void row_stats_ref(const GradCase *c, size_t i, double *mean, double *rstd)
{
    const LayernormShape *s = c->ctx;
    const double *x = c->xd[INP] + i * s->C;
    double m = 0, var = 0;
    for (size_t j = 0; j < s->C; j++)
        m += x[j];
    m /= (double)s->C;
    for (size_t j = 0; j < s->C; j++)
        var += (x[j] - m) * (x[j] - m);
    *mean = m;
    *rstd = 1.0 / sqrt(var / (double)s->C + LAYERNORM_EPS);
}

static void forward_ref(const GradCase *c, double *out)
{
    const LayernormShape *s = c->ctx;
    for (size_t i = 0; i < s->M; i++) {
        double m, rs;
        row_stats_ref(c, i, &m, &rs);
        for (size_t j = 0; j < s->C; j++)
            out[i * s->C + j] =
                (c->xd[INP][i * s->C + j] - m) * rs * c->xd[WEIGHT][j] + c->xd[BIAS][j];
    }
}

/* The textbook form: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * weight. */
static void backward_ref(const GradCase *c, double *const *grads)
{
    const LayernormShape *s = c->ctx;
    const size_t C = s->C;
    for (size_t i = 0; i < s->M; i++) {
        const double *x = c->xd[INP] + i * C, *d = c->wd + i * C, *w = c->xd[WEIGHT];
        double m, rs, mean_g = 0, mean_gx = 0;
        row_stats_ref(c, i, &m, &rs);
        for (size_t j = 0; j < C; j++) {
            double xhat = (x[j] - m) * rs;
            mean_g += d[j] * w[j] / (double)C;
            mean_gx += d[j] * w[j] * xhat / (double)C;
            grads[WEIGHT][j] += d[j] * xhat;
            grads[BIAS][j] += d[j];
        }
        for (size_t j = 0; j < C; j++)
            grads[INP][i * C + j] += rs * (d[j] * w[j] - mean_g - (x[j] - m) * rs * mean_gx);
    }
}

static const GradKernel layernorm_kernel = {"layernorm", forward, backward, forward_ref,
                                            backward_ref, LAYERNORM_TOL, LAYERNORM_TOL,
                                            LAYERNORM_FD_TOL};

static void check_shape(LayernormShape *s, Rng *r)
{
    GradCase c;
    grad_case_init(&c, &layernorm_kernel, s, s->M * s->C, r, "layernorm M=%zu C=%zu offset %g",
                   s->M, s->C, s->offset);
    grad_case_input(&c, "inp", s->M * s->C, s->offset, 1.0, r);
    grad_case_input(&c, "weight", s->C, 1.0, 0.2, r);
    grad_case_input(&c, "bias", s->C, 0.0, 0.2, r);
    s->mean = floats(s->M);
    s->rstd = floats(s->M);
    check_grad_case(&c, r);
    free(s->mean);
    free(s->rstd);
    grad_case_free(&c);
}

static void check_all(Rng *r)
{
    /* One row; C = 7 (shorter than the 16 accumulator lanes); C = 24 and 1000 (not multiples of
     * 16); offset 100, where a one-pass float variance would lose every digit; 400 x 200 and
     * 100 x 1000, which the pool splits by rows and by columns of dweight (the latter in pieces
     * wider than one 256-column block). */
    LayernormShape shapes[] = {{1, 24, 0.0, NULL, NULL},    {5, 7, 0.0, NULL, NULL},
                               {17, 24, 0.0, NULL, NULL},   {3, 1000, 100.0, NULL, NULL},
                               {17, 24, 100.0, NULL, NULL}, {400, 200, 0.0, NULL, NULL},
                               {100, 1000, 0.0, NULL, NULL}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_shape(&shapes[i], r);
}

int main(void) { return kernel_check_main("test_layernorm", check_all); }
