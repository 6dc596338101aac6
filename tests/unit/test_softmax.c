/* softmax_forward / softmax_backward against a double-precision reference and finite
 * differences (tests/unit/kernel_check.h), out of place and in place, with logits far from 0. */
#include "kernel_check.h"
#include "kernel_ref.h"

#include "maec/softmax.h"

#include <stdbool.h>

/* exp_nonpositive is about 1 ulp, the row sum double, one reciprocal and one product float:
 * a few ulps per element (measured: 4e-8 forward, 1e-7 backward). */
#define SOFTMAX_TOL 1e-6
/* Logits of spread 3 make softmax curve sharply: at step 1e-2 the O(h^2) error reaches 1e-3
 * over short rows. A wrong term would be O(1). */
#define SOFTMAX_FD_TOL 5e-3

typedef struct SoftmaxShape {
    size_t M, N;
    double offset, spread; /* of the logits */
    bool in_place;
} SoftmaxShape;

static void forward(const GradCase *c, float *out)
{
    const SoftmaxShape *s = c->ctx;
    if (s->in_place) {
        memcpy(out, c->x[0], s->M * s->N * sizeof(float));
        softmax_forward(out, out, s->M, s->N);
    } else {
        softmax_forward(out, c->x[0], s->M, s->N);
    }
}

static void backward(const GradCase *c, const float *out, float *const *grads)
{
    const SoftmaxShape *s = c->ctx;
    softmax_backward(grads[0], out, c->w, s->M, s->N);
}

static void forward_ref(const GradCase *c, double *out)
{
    const SoftmaxShape *s = c->ctx;
    for (size_t i = 0; i < s->M; i++)
        softmax_row_ref(out + i * s->N, c->xd[0] + i * s->N, s->N);
}

static void backward_ref(const GradCase *c, double *const *grads)
{
    const SoftmaxShape *s = c->ctx;
    double *y = doubles(s->M * s->N);
    forward_ref(c, y);
    for (size_t i = 0; i < s->M; i++)
        softmax_row_backward_ref(grads[0] + i * s->N, y + i * s->N, c->wd + i * s->N, s->N);
    free(y);
}

static const GradKernel softmax_kernel = {"softmax", forward, backward, forward_ref, backward_ref,
                                          SOFTMAX_TOL, SOFTMAX_TOL, SOFTMAX_FD_TOL};

static void check_shape(SoftmaxShape *s, Rng *r)
{
    GradCase c;
    grad_case_init(&c, &softmax_kernel, s, s->M * s->N, r, "softmax M=%zu N=%zu logits %g+-%g%s",
                   s->M, s->N, s->offset, s->spread, s->in_place ? " in place" : "");
    grad_case_input(&c, "inp", s->M * s->N, s->offset, s->spread, r);
    check_grad_case(&c, r);
    grad_case_free(&c);
}

static void check_all(Rng *r)
{
    /* One row; N = 7 and 17 (shorter than and not a multiple of the 16 lanes); logits at 200,
     * where exp without the max would overflow; 400 x 197 (decoder attention rows), which the
     * pool splits. */
    SoftmaxShape shapes[] = {{1, 17, 0.0, 3.0, false},    {5, 7, 0.0, 3.0, true},
                             {17, 17, 0.0, 1.0, false},   {3, 50, 200.0, 3.0, false},
                             {400, 197, 0.0, 3.0, false}, {400, 197, 0.0, 3.0, true}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_shape(&shapes[i], r);
}

int main(void) { return kernel_check_main("test_softmax", check_all); }
