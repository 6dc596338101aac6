/* residual_*, relu_* and meanpool_* against double-precision references and finite differences
 * (tests/unit/kernel_check.h), with the residual's output aliasing either input. */
#include "kernel_check.h"

#include "maec/tensor_ops.h"

/* One float rounding per element (the mean pool sums in double): 6e-8 relative. */
#define TENSOR_OPS_TOL 1e-6
/* Both kernels are linear, so central differences carry only the rounding of the losses. */
#define TENSOR_OPS_FD_TOL 1e-3

enum ResidualAlias { OUT_SEPARATE, OUT_IS_A, OUT_IS_B };

typedef struct ResidualShape {
    size_t n;
    enum ResidualAlias alias;
} ResidualShape;

static void residual_fwd(const GradCase *c, float *out)
{
    const ResidualShape *s = c->ctx;
    const float *a = c->x[0], *b = c->x[1];
    if (s->alias != OUT_SEPARATE) {
        memcpy(out, s->alias == OUT_IS_A ? a : b, s->n * sizeof(float));
        if (s->alias == OUT_IS_A)
            a = out;
        else
            b = out;
    }
    residual_forward(out, a, b, s->n);
}

static void residual_bwd(const GradCase *c, const float *out, float *const *grads)
{
    (void)out;
    const ResidualShape *s = c->ctx;
    residual_backward(grads[0], grads[1], c->w, s->n);
}

static void residual_fwd_ref(const GradCase *c, double *out)
{
    for (size_t i = 0; i < c->out_len; i++)
        out[i] = c->xd[0][i] + c->xd[1][i];
}

static void residual_bwd_ref(const GradCase *c, double *const *grads)
{
    for (size_t i = 0; i < c->out_len; i++) {
        grads[0][i] += c->wd[i];
        grads[1][i] += c->wd[i];
    }
}

typedef struct MeanpoolShape {
    size_t B, T, C;
} MeanpoolShape;

static void meanpool_fwd(const GradCase *c, float *out)
{
    const MeanpoolShape *s = c->ctx;
    meanpool_forward(out, c->x[0], s->B, s->T, s->C);
}

static void meanpool_bwd(const GradCase *c, const float *out, float *const *grads)
{
    (void)out;
    const MeanpoolShape *s = c->ctx;
    meanpool_backward(grads[0], c->w, s->B, s->T, s->C);
}

static void meanpool_fwd_ref(const GradCase *c, double *out)
{
    const MeanpoolShape *s = c->ctx;
    for (size_t b = 0; b < s->B; b++)
        for (size_t ch = 0; ch < s->C; ch++) {
            double sum = 0;
            for (size_t t = 0; t < s->T; t++)
                sum += c->xd[0][(b * s->T + t) * s->C + ch];
            out[b * s->C + ch] = sum / (double)s->T;
        }
}

static void meanpool_bwd_ref(const GradCase *c, double *const *grads)
{
    const MeanpoolShape *s = c->ctx;
    for (size_t b = 0; b < s->B; b++)
        for (size_t t = 0; t < s->T; t++)
            for (size_t ch = 0; ch < s->C; ch++)
                grads[0][(b * s->T + t) * s->C + ch] += c->wd[b * s->C + ch] / (double)s->T;
}

static void relu_fwd(const GradCase *c, float *out) { relu_forward(out, c->x[0], *(const size_t *)c->ctx); }

static void relu_bwd(const GradCase *c, const float *out, float *const *grads)
{
    (void)out;
    relu_backward(grads[0], c->x[0], c->w, *(const size_t *)c->ctx);
}

static void relu_fwd_ref(const GradCase *c, double *out)
{
    for (size_t i = 0; i < *(const size_t *)c->ctx; i++)
        out[i] = c->xd[0][i] > 0 ? c->xd[0][i] : 0;
}

static void relu_bwd_ref(const GradCase *c, double *const *grads)
{
    for (size_t i = 0; i < *(const size_t *)c->ctx; i++)
        grads[0][i] += c->xd[0][i] > 0 ? c->wd[i] : 0;
}

static const GradKernel residual_kernel = {"residual", residual_fwd, residual_bwd, residual_fwd_ref,
                                           residual_bwd_ref, TENSOR_OPS_TOL, TENSOR_OPS_TOL,
                                           TENSOR_OPS_FD_TOL};
static const GradKernel relu_kernel = {"relu", relu_fwd, relu_bwd, relu_fwd_ref, relu_bwd_ref, TENSOR_OPS_TOL,
                                       TENSOR_OPS_TOL, TENSOR_OPS_FD_TOL};
static const GradKernel meanpool_kernel = {"meanpool", meanpool_fwd, meanpool_bwd, meanpool_fwd_ref,
                                           meanpool_bwd_ref, TENSOR_OPS_TOL, TENSOR_OPS_TOL,
                                           TENSOR_OPS_FD_TOL};

static void check_residual(ResidualShape *s, Rng *r)
{
    static const char *const alias_name[] = {"", " out = a", " out = b"};
    GradCase c;
    grad_case_init(&c, &residual_kernel, s, s->n, r, "residual n=%zu%s", s->n,
                   alias_name[s->alias]);
    grad_case_input(&c, "a", s->n, 0.0, 1.0, r);
    grad_case_input(&c, "b", s->n, 0.0, 1.0, r);
    check_grad_case(&c, r);
    grad_case_free(&c);
}

/* Inputs of both signs, none within 0.25 of the kink, so that finite differences (steps of a few
 * hundredths) stay on one side of it. */
static void check_relu(size_t *n, Rng *r)
{
    GradCase c;
    grad_case_init(&c, &relu_kernel, n, *n, r, "relu n=%zu", *n);
    grad_case_input(&c, "inp", *n, 0.0, 1.0, r);
    for (size_t i = 0; i < *n; i++) {
        c.x[0][i] += c.x[0][i] < 0 ? -0.25f : 0.25f;
        c.xd[0][i] = c.x[0][i];
    }
    check_grad_case(&c, r);
    grad_case_free(&c);
}

static void check_meanpool(MeanpoolShape *s, Rng *r)
{
    GradCase c;
    grad_case_init(&c, &meanpool_kernel, s, s->B * s->C, r, "meanpool B=%zu T=%zu C=%zu", s->B,
                   s->T, s->C);
    grad_case_input(&c, "inp", s->B * s->T * s->C, 0.5, 1.0, r);
    check_grad_case(&c, r);
    grad_case_free(&c);
}

static void check_all(Rng *r)
{
    /* 100003 elements: over twice the 32768 below which a kernel stays on one thread. */
    ResidualShape residual[] = {{1, OUT_SEPARATE}, {17, OUT_IS_A}, {1000, OUT_IS_B},
                                {100003, OUT_SEPARATE}, {100003, OUT_IS_A}};
    for (size_t i = 0; i < sizeof residual / sizeof residual[0]; i++)
        check_residual(&residual[i], r);
    size_t relu[] = {7, 1000, 100003};
    for (size_t i = 0; i < sizeof relu / sizeof relu[0]; i++)
        check_relu(&relu[i], r);
    /* One token; T = 17 over C = 24; C = 300, wider than one 256-column block of the sums;
     * 16 x 50 x 192 (a ViT-Tiny batch), which the pool splits by samples. */
    MeanpoolShape meanpool[] = {{2, 1, 5}, {3, 17, 24}, {2, 7, 300}, {16, 50, 192}};
    for (size_t i = 0; i < sizeof meanpool / sizeof meanpool[0]; i++)
        check_meanpool(&meanpool[i], r);
}

int main(void) { return kernel_check_main("test_tensor_ops", check_all); }
