/* cross_entropy_forward_backward against a double-precision reference and finite differences
 * (tests/unit/kernel_check.h; the loss is the one output and its weight the dscale), with
 * temperatures, label smoothing and unlabelled rows; worked examples; unlabelled rows that hold
 * NaN and add nothing; an all-unlabelled batch; the refusal of a label beyond the classes. */
#include "expect_fatal.h"
#include "kernel_check.h"
#include "kernel_ref.h"

#include "maec/cross_entropy.h"

#include <stdint.h>

/* Double throughout and a float result: the rounding of the loss and of each gradient element
 * (measured: 3e-8 forward, 6e-8 backward). */
#define CE_TOL 1e-6
/* Softmax curvature over the float loss at step 1e-2, as in test_softmax.c. */
#define CE_FD_TOL 5e-3

typedef struct CeShape {
    size_t N, K;
    double offset, spread;         /* of the logits */
    double temperature, smoothing;
    size_t unlabelled_every;       /* rows i with i % this == 1 are -1; 0: none */
    int32_t *labels;
} CeShape;

static void forward(const GradCase *c, float *out)
{
    const CeShape *s = c->ctx;
    out[0] = (float)cross_entropy_forward_backward(NULL, c->x[0], s->labels, s->N, s->K,
                                                   s->temperature, s->smoothing, 1.0);
}

static void backward(const GradCase *c, const float *out, float *const *grads)
{
    (void)out;
    const CeShape *s = c->ctx;
    cross_entropy_forward_backward(grads[0], c->x[0], s->labels, s->N, s->K, s->temperature,
                                   s->smoothing, c->w[0]);
}

/* p[K] = softmax(logits / temperature) of row i; the target of class k. */
static void row_probs_ref(const CeShape *s, const double *logits, double *p)
{
    double *z = doubles(s->K);
    for (size_t k = 0; k < s->K; k++)
        z[k] = logits[k] / s->temperature;
    softmax_row_ref(p, z, s->K);
    free(z);
}

static double target_ref(const CeShape *s, size_t k, int32_t label)
{
    return s->smoothing / (double)s->K + ((int32_t)k == label ? 1 - s->smoothing : 0);
}

static void forward_ref(const GradCase *c, double *out)
{
    const CeShape *s = c->ctx;
    double *p = doubles(s->K), loss = 0;
    for (size_t i = 0; i < s->N; i++) {
        if (s->labels[i] < 0)
            continue;
        row_probs_ref(s, c->xd[0] + i * s->K, p);
        for (size_t k = 0; k < s->K; k++)
            loss -= target_ref(s, k, s->labels[i]) * log(p[k]);
    }
    out[0] = loss;
    free(p);
}

/* d loss / d logit_k = (p_k - target_k) / temperature, times the loss weight. */
static void backward_ref(const GradCase *c, double *const *grads)
{
    const CeShape *s = c->ctx;
    double *p = doubles(s->K);
    for (size_t i = 0; i < s->N; i++) {
        if (s->labels[i] < 0)
            continue;
        row_probs_ref(s, c->xd[0] + i * s->K, p);
        for (size_t k = 0; k < s->K; k++)
            grads[0][i * s->K + k] +=
                c->wd[0] * (p[k] - target_ref(s, k, s->labels[i])) / s->temperature;
    }
    free(p);
}

static const GradKernel ce_kernel = {"xentropy", forward, backward, forward_ref, backward_ref,
                                     CE_TOL, CE_TOL, CE_FD_TOL};

static void check_shape(CeShape *s, Rng *r)
{
    s->labels = xmalloc(s->N * sizeof *s->labels, "labels");
    for (size_t i = 0; i < s->N; i++) {
        bool unlabelled = s->unlabelled_every && i % s->unlabelled_every == 1;
        s->labels[i] = unlabelled ? -1 : (int32_t)rng_below(r, s->K);
    }
    GradCase c;
    grad_case_init(&c, &ce_kernel, s, 1, r, "xentropy N=%zu K=%zu logits %g+-%g T=%g eps=%g%s",
                   s->N, s->K, s->offset, s->spread, s->temperature, s->smoothing,
                   s->unlabelled_every ? " some unlabelled" : "");
    grad_case_input(&c, "logits", s->N * s->K, s->offset, s->spread, r);
    check_grad_case(&c, r);
    grad_case_free(&c);
    free(s->labels);
}

/* Two classes: logits (10, 0) at temperature 10 are z = (1, 0), log p = (-l, -1 - l) with
 * l = log(1 + e^-1); the gradient is (p - target) / 10. */
static void check_worked_examples(void)
{
    const float even[2] = {0, 0}, apart[2] = {10, 0};
    const int32_t label = 0;
    const double l = log1p(exp(-1.0)), p0 = 1 / (1 + exp(-1.0));
    double loss = cross_entropy_forward_backward(NULL, even, &label, 1, 2, 1.0, 0.3, 1.0);
    CHECK(fabs(loss - log(2.0)) < 1e-15, "even logits: loss %.17g, want log 2", loss);
    loss = cross_entropy_forward_backward(NULL, apart, &label, 1, 2, 10.0, 0.0, 1.0);
    CHECK(fabs(loss - l) < 1e-15, "temperature 10: loss %.17g, want %.17g", loss, l);
    float d[2] = {0, 0};
    loss = cross_entropy_forward_backward(d, apart, &label, 1, 2, 10.0, 0.2, 2.0);
    double want = 0.9 * l + 0.1 * (1 + l); /* targets 0.9, 0.1 */
    CHECK(fabs(loss - want) < 1e-15, "temperature 10, smoothing 0.2: loss %.17g, want %.17g",
          loss, want);
    double want_d0 = 2.0 * (p0 - 0.9) / 10;
    CHECK(fabs(d[0] - want_d0) < 1e-8 && fabs(d[1] + want_d0) < 1e-8,
          "temperature 10, smoothing 0.2, dscale 2: dlogits (%.8g, %.8g), want (%.8g, %.8g)",
          d[0], d[1], want_d0, -want_d0);
}

/* Rows labelled -1 add no term and no gradient: they hold NaN, which any use would spread, and
 * the loss is the sum of the labelled rows' losses taken one at a time. */
static void check_unlabelled_rows(Rng *r)
{
    enum { N = 4, K = 5 };
    const int32_t labels[N] = {2, -1, 0, -1};
    float logits[N * K], d[N * K], pre[N * K];
    fill_normal(logits, N * K, 0.0, 2.0, r);
    fill_normal(d, N * K, 0.0, 1.0, r);
    for (size_t k = 0; k < K; k++)
        logits[1 * K + k] = logits[3 * K + k] = NAN;
    memcpy(pre, d, sizeof d);
    double loss = cross_entropy_forward_backward(d, logits, labels, N, K, 2.0, 0.1, 1.0);
    double want = cross_entropy_forward_backward(NULL, logits, labels, 1, K, 2.0, 0.1, 1.0) +
                  cross_entropy_forward_backward(NULL, logits + 2 * K, labels + 2, 1, K, 2.0,
                                                 0.1, 1.0);
    CHECK(loss == want, "with unlabelled rows: loss %.17g, want the labelled rows' %.17g", loss,
          want);
    CHECK(!memcmp(d + K, pre + K, K * sizeof(float)) && !memcmp(d + 3 * K, pre + 3 * K, K * sizeof(float)),
          "an unlabelled row's dlogits changed");
    CHECK(memcmp(d, pre, K * sizeof(float)) != 0, "a labelled row's dlogits did not change");
    CHECK(cross_entropy_labeled(labels, N) == 2, "cross_entropy_labeled counts %zu of 2",
          cross_entropy_labeled(labels, N));
}

static void check_all_unlabelled(void)
{
    enum { N = 3, K = 4 };
    const int32_t labels[N] = {-1, -1, -1};
    float logits[N * K] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, d[N * K] = {0};
    double loss = cross_entropy_forward_backward(d, logits, labels, N, K, 1.0, 0.1, 1.0);
    float zero[N * K] = {0};
    CHECK(loss == 0, "an all-unlabelled batch: loss %g, want 0", loss);
    CHECK(!memcmp(d, zero, sizeof d), "an all-unlabelled batch has a gradient");
    CHECK(cross_entropy_labeled(labels, N) == 0, "cross_entropy_labeled counts %zu of 0",
          cross_entropy_labeled(labels, N));
}

static void label_beyond_classes(void *ctx)
{
    (void)ctx;
    const float logits[6] = {0};
    const int32_t labels[2] = {1, 3};
    cross_entropy_forward_backward(NULL, logits, labels, 2, 3, 1.0, 0.0, 1.0);
}

static void check_all(Rng *r)
{
    /* One row of two classes; K = 7 and 17 (shorter than and not a multiple of the 16 lanes of
     * the max); SupMAE's temperature 10; label smoothing; unlabelled rows; logits at 1000, where
     * exp without the max would overflow even in double; 64 x 1000 classes. */
    CeShape shapes[] = {
        {.N = 1, .K = 2, .spread = 1, .temperature = 1},
        {.N = 5, .K = 7, .spread = 3, .temperature = 1, .smoothing = 0.1, .unlabelled_every = 2},
        {.N = 17, .K = 17, .spread = 3, .temperature = 10},
        {.N = 12, .K = 10, .spread = 3, .temperature = 10, .smoothing = 0.1, .unlabelled_every = 3},
        {.N = 3, .K = 50, .offset = 1000, .spread = 3, .temperature = 1},
        {.N = 64, .K = 1000, .spread = 3, .temperature = 2, .smoothing = 0.2, .unlabelled_every = 5}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_shape(&shapes[i], r);
    check_worked_examples();
    check_unlabelled_rows(r);
    check_all_unlabelled();
    check_fatal(label_beyond_classes, NULL, "row 1 has label 3 but there are 3 classes",
                "label beyond the classes");
}

int main(void) { return kernel_check_main("test_cross_entropy", check_all); }
