/* linear_forward / linear_backward against a double-precision triple loop and finite
 * differences (tests/unit/kernel_check.h), with and without bias, and with dinp skipped. */
#include "kernel_check.h"

#include "maec/linear.h"

#include <stdbool.h>

/* Float GEMM sums K (or M) products in float: the error grows like sqrt(K) * 6e-8, under 1e-6
 * at these sizes; 1e-5 leaves room for OpenBLAS's blocking order. */
#define LINEAR_TOL 1e-5
/* The loss is linear in each input, so central differences have no truncation error: only the
 * float rounding of the two losses, about 1e-5 of their difference at step 1e-2. */
#define LINEAR_FD_TOL 1e-3

typedef struct LinearShape {
    size_t M, K, N;
    bool bias;
} LinearShape;

enum { INP, WEIGHT, BIAS };

static void forward(const GradCase *c, float *out)
{
    const LinearShape *s = c->ctx;
    linear_forward(out, c->x[INP], c->x[WEIGHT], s->bias ? c->x[BIAS] : NULL, s->M, s->K, s->N);
}

static void backward(const GradCase *c, const float *out, float *const *grads)
{
    (void)out;
    const LinearShape *s = c->ctx;
    linear_backward(grads[INP], grads[WEIGHT], s->bias ? grads[BIAS] : NULL, c->w, c->x[INP],
                    c->x[WEIGHT], s->M, s->K, s->N);
}

static void forward_ref(const GradCase *c, double *out)
{
    const LinearShape *s = c->ctx;
    const double *x = c->xd[INP], *w = c->xd[WEIGHT];
    for (size_t i = 0; i < s->M; i++)
        for (size_t j = 0; j < s->N; j++) {
            double acc = s->bias ? c->xd[BIAS][j] : 0.0;
            for (size_t k = 0; k < s->K; k++)
                acc += x[i * s->K + k] * w[j * s->K + k];
            out[i * s->N + j] = acc;
        }
}

static void backward_ref(const GradCase *c, double *const *grads)
{
    const LinearShape *s = c->ctx;
    const double *x = c->xd[INP], *w = c->xd[WEIGHT], *dout = c->wd;
    for (size_t i = 0; i < s->M; i++)
        for (size_t j = 0; j < s->N; j++) {
            double d = dout[i * s->N + j];
            for (size_t k = 0; k < s->K; k++) {
                grads[INP][i * s->K + k] += d * w[j * s->K + k];
                grads[WEIGHT][j * s->K + k] += d * x[i * s->K + k];
            }
            if (s->bias)
                grads[BIAS][j] += d;
        }
}

static const GradKernel linear_kernel = {"linear", forward, backward, forward_ref, backward_ref,
                                         LINEAR_TOL, LINEAR_TOL, LINEAR_FD_TOL};

static void make_case(GradCase *c, LinearShape *s, Rng *r)
{
    grad_case_init(c, &linear_kernel, s, s->M * s->N, r, "linear M=%zu K=%zu N=%zu %s", s->M, s->K,
                   s->N, s->bias ? "bias" : "no bias");
    grad_case_input(c, "inp", s->M * s->K, 0.0, 1.0, r);
    grad_case_input(c, "weight", s->N * s->K, 0.0, 0.2, r);
    if (s->bias)
        grad_case_input(c, "bias", s->N, 0.0, 0.2, r);
}

/* dinp = NULL (the first layer, whose input needs no gradient) leaves dweight and dbias as
 * they are with dinp. */
static void check_without_dinp(const GradCase *c)
{
    const LinearShape *s = c->ctx;
    float *with[GRAD_MAX_INPUTS], *without[GRAD_MAX_INPUTS];
    zeroed_grads(c, with);
    zeroed_grads(c, without);
    backward(c, NULL, with);
    linear_backward(NULL, without[WEIGHT], without[BIAS], c->w, c->x[INP], c->x[WEIGHT], s->M,
                    s->K, s->N);
    CHECK(memcmp(with[WEIGHT], without[WEIGHT], s->N * s->K * sizeof(float)) == 0 &&
              memcmp(with[BIAS], without[BIAS], s->N * sizeof(float)) == 0,
          "%s: dweight or dbias change when dinp is NULL", c->label);
    free_grads(c, with);
    free_grads(c, without);
}

static void check_all(Rng *r)
{
    /* One row; tiny odd sizes; ViT widths not multiples of 16; a qkv projection of 50 tokens
     * (5.5 M multiply-adds: gemm splits it across the pool); 200 x 8 -> 1000, where gemm cuts
     * all three products in two and the pool splits dbias into pieces wider than one 256-column
     * block (cut by the thread count, gemm's products differed in the last bits from one
     * thread's: OpenBLAS sums small calls in another order). */
    const size_t shapes[][3] = {{1, 24, 17}, {5, 7, 3}, {17, 24, 40}, {50, 192, 576},
                                {200, 8, 1000}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int bias = 1; bias >= 0; bias--) {
            LinearShape s = {shapes[i][0], shapes[i][1], shapes[i][2], bias};
            GradCase c;
            make_case(&c, &s, r);
            check_grad_case(&c, r);
            if (bias)
                check_without_dinp(&c);
            grad_case_free(&c);
        }
}

int main(void) { return kernel_check_main("test_linear", check_all); }
