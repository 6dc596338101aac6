/* gelu_forward / gelu_backward: element accuracy in ulps over the whole float range that
 * matters (tails included) against double erfc, then the gradient checks of
 * tests/unit/kernel_check.h, out of place and in place. */
#include "kernel_check.h"

#include "maec/gelu.h"

#include <float.h>
#include <stdbool.h>

/* The kernel's own promise (src/core/gelu.c): a few ulps of the double formula, tails too.
 * Measured: 2.9 forward, 1.7 derivative. */
#define GELU_MAX_ULPS 4.0
/* Below x = -13, Phi(x) < FLT_MIN: the kernel's Gaussian tail runs through subnormals and is
 * flushed to 0 a little further on (documented in src/core/gelu.c). Values there are below
 * 1e-37; the sweep allows them to be 0. */
#define GELU_FLUSH_BELOW (-13.0)
/* The sweep: every 1/128 over [-16, 16], past the flush and where Phi(x) rounds to 1. */
#define SWEEP_LIMIT 16.0
#define SWEEP_STEP (1.0 / 128)
/* Element errors of a few ulps: 1e-6 relative over a vector. */
#define GELU_TOL 1e-6
/* gelu is smooth: the O(h^2) error at step 1e-2 stays near 1e-3; a wrong term would be O(1). */
#define GELU_FD_TOL 5e-3

/* erfc keeps full relative accuracy in the left tail, where 1 + erf(x / sqrt 2) cancels. */
static double normal_cdf_ref(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }
static double normal_pdf_ref(double x) { return exp(-0.5 * x * x) / sqrt(2.0 * M_PI); }
static double gelu_ref(double x) { return x * normal_cdf_ref(x); }

/* The error of got in ulps of scale (subnormals have the ulp of FLT_MIN), beyond what flushing
 * to 0 may cost in the tail. */
static double ulps(double x, float got, double want, double scale)
{
    double flush_allowance = x < GELU_FLUSH_BELOW ? fabs(want) : 0.0;
    double ulp = fmax(fabs(scale), FLT_MIN) * FLT_EPSILON;
    return fmax(0.0, fabs((double)got - want) - flush_allowance) / ulp;
}

typedef struct WorstError {
    double ulps, x;
} WorstError;

static void worst_update(WorstError *w, double ulps_at_x, double x)
{
    if (ulps_at_x > w->ulps)
        *w = (WorstError){ulps_at_x, x};
}

static void check_ulps(void)
{
    size_t n = (size_t)(2 * SWEEP_LIMIT / SWEEP_STEP) + 1;
    float *x = floats(n), *y = floats(n), *dx = floats(n), *ones = floats(n);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(-SWEEP_LIMIT + (double)i * SWEEP_STEP);
        ones[i] = 1.0f;
    }
    gelu_forward(y, x, n);
    gelu_backward(dx, x, ones, n);
    WorstError fwd = {0, 0}, bwd = {0, 0};
    for (size_t i = 0; i < n; i++) {
        double xi = x[i], cdf = normal_cdf_ref(xi), xpdf = xi * normal_pdf_ref(xi);
        worst_update(&fwd, ulps(xi, y[i], gelu_ref(xi), gelu_ref(xi)), xi);
        /* gelu' = Phi + x phi crosses 0 near -0.75: measure against the size of its terms */
        worst_update(&bwd, ulps(xi, dx[i], cdf + xpdf, cdf + fabs(xpdf)), xi);
    }
    printf("gelu       max error over [-%g, %g]: forward %.2f ulps (x = %g), derivative %.2f ulps "
           "(x = %g), limit %g\n", SWEEP_LIMIT, SWEEP_LIMIT, fwd.ulps, fwd.x, bwd.ulps,
           bwd.x, GELU_MAX_ULPS);
    CHECK(fwd.ulps <= GELU_MAX_ULPS, "gelu(%g) is off by %.2f ulps", fwd.x, fwd.ulps);
    CHECK(bwd.ulps <= GELU_MAX_ULPS, "gelu'(%g) is off by %.2f ulps", bwd.x, bwd.ulps);
    free(x);
    free(y);
    free(dx);
    free(ones);
}

typedef struct GeluShape {
    size_t n;
    bool in_place;
} GeluShape;

static void forward(const GradCase *c, float *out)
{
    const GeluShape *s = c->ctx;
    if (s->in_place) {
        memcpy(out, c->x[0], s->n * sizeof(float));
        gelu_forward(out, out, s->n);
    } else {
        gelu_forward(out, c->x[0], s->n);
    }
}

static void backward(const GradCase *c, const float *out, float *const *grads)
{
    (void)out;
    const GeluShape *s = c->ctx;
    gelu_backward(grads[0], c->x[0], c->w, s->n);
}

static void forward_ref(const GradCase *c, double *out)
{
    for (size_t i = 0; i < c->out_len; i++)
        out[i] = gelu_ref(c->xd[0][i]);
}

static void backward_ref(const GradCase *c, double *const *grads)
{
    for (size_t i = 0; i < c->out_len; i++) {
        double x = c->xd[0][i];
        grads[0][i] += c->wd[i] * (normal_cdf_ref(x) + x * normal_pdf_ref(x));
    }
}

static const GradKernel gelu_kernel = {"gelu", forward, backward, forward_ref, backward_ref,
                                       GELU_TOL, GELU_TOL, GELU_FD_TOL};

static void check_shape(GeluShape *s, Rng *r)
{
    GradCase c;
    grad_case_init(&c, &gelu_kernel, s, s->n, r, "gelu n=%zu%s", s->n,
                   s->in_place ? " in place" : "");
    grad_case_input(&c, "inp", s->n, 0.0, 3.0, r);
    check_grad_case(&c, r);
    grad_case_free(&c);
}

static void check_all(Rng *r)
{
    check_ulps();
    /* One element; sizes off the vector width; 100003, over twice the 32768 elements below
     * which a kernel stays on one thread, so the pool splits it. */
    GeluShape shapes[] = {{1, false}, {17, true}, {1000, false}, {100003, false}, {100003, true}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_shape(&shapes[i], r);
}

int main(void) { return kernel_check_main("test_gelu", check_all); }
