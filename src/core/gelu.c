/* GELU without erff: libm's erff is a scalar call (it would cost more than the MLP's GEMMs), and
 * 0.5 x (1 + erf(x/sqrt 2)) cancels for x << 0 (at x = -5 only a few bits survive in float).
 * Instead Phi(-|x|) = exp(-x^2/2) * t * P(t), t = 1/(1 + 0.3|x|), where P is a least-squares
 * fit of Phi(-u) exp(u^2/2) / t, a smooth function of t in (0, 1] (relative error 7e-9 for
 * u <= 13.3; beyond, exp(-x^2/2) leaves the normal float range and the tail is flushed to 0).
 * Every branch is a select, so the loops vectorise; exp(-x^2/2) also serves phi(x) in the
 * backward pass. Accuracy (a few ulps of the double formula, also in the tails) is measured
 * in tests/unit/test_gelu.c. */
#include "maec/gelu.h"

#include "maec/parallel.h"

#include "kernel_util.h"

#include <math.h>

#define INV_SQRT_2PI 0.398942280f

typedef struct GeluArgs {
    float *dst; /* out (forward) or dinp (backward) */
    const float *inp, *dout;
} GeluArgs;

/* P(t) above, Horner form; coefficients from highest degree down. */
static inline float gauss_tail_ratio(float t)
{
    float p = -2.087877318e-02f;
    p = p * t + 1.138093174e-01f;
    p = p * t - 2.314069122e-01f;
    p = p * t + 1.959830076e-01f;
    p = p * t - 8.285481483e-02f;
    p = p * t + 9.795952588e-02f;
    p = p * t + 7.778257132e-02f;
    p = p * t + 1.103614569e-01f;
    p = p * t + 1.195572093e-01f;
    p = p * t + 1.196874082e-01f;
    return p;
}

/* exp(-x^2/2) to about 1 ulp for every float x. The tail's relative sensitivity to its argument
 * is x^2, so x^2 is formed exactly as hi + lo (Dekker's product: the 12-bit halves multiply
 * without rounding) and lo joins the reduced argument. Everything stays in float: GCC will
 * not if-convert a double-to-float conversion, and so would not vectorise the loop. Past
 * |x| = 14.5 the result is 0 anyway (it flushes below 2^-126); NaN also lands there, but still
 * reaches the result through normal_cdf's t. */
static inline float exp_neg_half_square(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float u = fabsf(x);
    u = u < 14.5f ? u : 14.5f;
    float split = u * 4097.0f;
    float uh = split - (split - u), ul = u - uh;
    float hi = u * u;
    float lo = ((uh * uh - hi) + 2.0f * uh * ul) + ul * ul;
    float a = -0.5f * hi;
    float t = a * 1.44269504f + magic;
    float n = t - magic;
    float r = ((a - n * 0.693359375f) + n * 2.12194440e-4f) - 0.5f * lo;
    uint32_t tbits;
    memcpy(&tbits, &t, sizeof tbits);
    return exp_reduced(r, tbits - 0x4B400000u);
}

/* Phi(x), given e = exp(-x^2/2). 1 - q for x >= 0 is exact to rounding (q <= 1/2). */
static inline float normal_cdf(float x, float e)
{
    float t = 1.0f / (1.0f + 0.3f * fabsf(x));
    float q = e * t * gauss_tail_ratio(t);
    return x < 0.0f ? q : 1.0f - q;
}

static void gelu_forward_range(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const GeluArgs *g = ctx;
    float *out = g->dst;
    const float *inp = g->inp; /* may alias out: each element is read before it is written */
    for (size_t i = begin; i < end; i++) {
        float x = inp[i];
        out[i] = x * normal_cdf(x, exp_neg_half_square(x));
    }
}

static void gelu_backward_range(void *ctx, size_t begin, size_t end, int thread)
{
    (void)thread;
    const GeluArgs *g = ctx;
    float *restrict dinp = g->dst;
    const float *restrict inp = g->inp, *restrict dout = g->dout;
    for (size_t i = begin; i < end; i++) {
        float x = inp[i], e = exp_neg_half_square(x);
        dinp[i] += dout[i] * (normal_cdf(x, e) + x * (e * INV_SQRT_2PI));
    }
}

void gelu_forward(float *out, const float *inp, size_t n)
{
    GeluArgs g = {out, inp, NULL};
    parallel_for(n, KERNEL_MIN_WORK, gelu_forward_range, &g);
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n)
{
    GeluArgs g = {dinp, inp, dout};
    parallel_for(n, KERNEL_MIN_WORK, gelu_backward_range, &g);
}
