/* attention_forward / attention_backward against a double-precision reference written head by
 * head from the definition, and finite differences (tests/unit/kernel_check.h). */
#include "kernel_check.h"
#include "kernel_ref.h"

#include "maec/attention.h"

/* Float GEMMs over hd and T terms around a float softmax: about 1e-7 per element. */
#define ATTENTION_TOL 1e-5
/* The softmax curvature again: O(h^2) near 1e-3 at step 1e-2; a wrong term would be O(1). */
#define ATTENTION_FD_TOL 5e-3

typedef struct AttentionShape {
    size_t B, T, C, NH;
    float *att;     /* saved by the forward for the backward */
    float *scratch; /* the backward's workspace */
} AttentionShape;

static void forward(const GradCase *c, float *out)
{
    const AttentionShape *s = c->ctx;
    attention_forward(out, s->att, c->x[0], s->B, s->T, s->C, s->NH);
}

/* The scratch is filled with NaN first: its contents on entry must not matter. */
static void backward(const GradCase *c, const float *out, float *const *grads)
{
    (void)out;
    const AttentionShape *s = c->ctx;
    size_t n = s->B * s->NH * s->T * s->T;
    for (size_t i = 0; i < n; i++)
        s->scratch[i] = NAN;
    attention_backward(grads[0], s->scratch, c->w, c->x[0], s->att, s->B, s->T, s->C, s->NH);
}

/* One (batch, head) pair: element (t, d) of q, k or v is at [t * ld + d]. */
typedef struct HeadView {
    size_t q, k, v, o; /* offsets of q, k, v in qkv and of the output columns */
    size_t T, hd, ld, ldo;
    double scale;
} HeadView;

static HeadView head_view(const AttentionShape *s, size_t b, size_t h)
{
    size_t hd = s->C / s->NH, q = b * s->T * 3 * s->C + h * hd;
    return (HeadView){q, q + s->C, q + 2 * s->C, b * s->T * s->C + h * hd, s->T, hd,
                      3 * s->C, s->C, 1.0 / sqrt((double)hd)};
}

/* P[T,T] = softmax(q k^T * scale) of one head. */
static void head_probs_ref(double *P, const double *qkv, const HeadView *v)
{
    const size_t T = v->T;
    for (size_t i = 0; i < T; i++) {
        for (size_t j = 0; j < T; j++) {
            double dot = 0;
            for (size_t d = 0; d < v->hd; d++)
                dot += qkv[v->q + i * v->ld + d] * qkv[v->k + j * v->ld + d];
            P[i * T + j] = dot * v->scale;
        }
        softmax_row_ref(P + i * T, P + i * T, T);
    }
}

static void forward_ref(const GradCase *c, double *out)
{
    const AttentionShape *s = c->ctx;
    const double *qkv = c->xd[0];
    double *P = doubles(s->T * s->T);
    for (size_t b = 0; b < s->B; b++)
        for (size_t h = 0; h < s->NH; h++) {
            HeadView v = head_view(s, b, h);
            head_probs_ref(P, qkv, &v);
            for (size_t i = 0; i < v.T; i++)
                for (size_t d = 0; d < v.hd; d++) {
                    double acc = 0;
                    for (size_t j = 0; j < v.T; j++)
                        acc += P[i * v.T + j] * qkv[v.v + j * v.ld + d];
                    out[v.o + i * v.ldo + d] = acc;
                }
        }
    free(P);
}

/* dS[T,T] = softmax backward of dP = dout v^T; dv += P^T dout. */
static void head_score_grad_ref(double *dS, double *dqkv, const double *P, const double *qkv,
                                const double *dout, const HeadView *v)
{
    const size_t T = v->T;
    double *dP = doubles(T);
    for (size_t i = 0; i < T; i++) {
        for (size_t j = 0; j < T; j++) {
            dP[j] = 0;
            for (size_t d = 0; d < v->hd; d++) {
                dP[j] += dout[v->o + i * v->ldo + d] * qkv[v->v + j * v->ld + d];
                dqkv[v->v + j * v->ld + d] += P[i * T + j] * dout[v->o + i * v->ldo + d];
            }
        }
        for (size_t j = 0; j < T; j++)
            dS[i * T + j] = 0;
        softmax_row_backward_ref(dS + i * T, P + i * T, dP, T);
    }
    free(dP);
}

static void backward_ref(const GradCase *c, double *const *grads)
{
    const AttentionShape *s = c->ctx;
    const double *qkv = c->xd[0];
    double *P = doubles(s->T * s->T), *dS = doubles(s->T * s->T), *dqkv = grads[0];
    for (size_t b = 0; b < s->B; b++)
        for (size_t h = 0; h < s->NH; h++) {
            HeadView v = head_view(s, b, h);
            head_probs_ref(P, qkv, &v);
            head_score_grad_ref(dS, dqkv, P, qkv, c->wd, &v);
            for (size_t i = 0; i < v.T; i++)
                for (size_t j = 0; j < v.T; j++)
                    for (size_t d = 0; d < v.hd; d++) {
                        double g = dS[i * v.T + j] * v.scale;
                        dqkv[v.q + i * v.ld + d] += g * qkv[v.k + j * v.ld + d];
                        dqkv[v.k + j * v.ld + d] += g * qkv[v.q + i * v.ld + d];
                    }
        }
    free(P);
    free(dS);
}

static const GradKernel attention_kernel = {"attention", forward, backward, forward_ref,
                                            backward_ref, ATTENTION_TOL, ATTENTION_TOL,
                                            ATTENTION_FD_TOL};

static void check_shape(AttentionShape *s, Rng *r)
{
    GradCase c;
    grad_case_init(&c, &attention_kernel, s, s->B * s->T * s->C, r,
                   "attention B=%zu T=%zu C=%zu NH=%zu", s->B, s->T, s->C, s->NH);
    grad_case_input(&c, "qkv", s->B * s->T * 3 * s->C, 0.0, 1.0, r);
    s->att = floats(s->B * s->NH * s->T * s->T);
    s->scratch = floats(s->B * s->NH * s->T * s->T);
    check_grad_case(&c, r);
    free(s->att);
    free(s->scratch);
    grad_case_free(&c);
}

static void check_all(Rng *r)
{
    /* One token (softmax of one score: q and k get no gradient); T = 17 with 3 heads of 8;
     * head_dim 5 and 1; the encoder shape of ViT-Tiny MAE (50 tokens, 3 heads of 64), whose
     * 2 x 3 (batch, head) pairs the pool splits. */
    AttentionShape shapes[] = {{2, 1, 8, 2, NULL, NULL},   {2, 17, 24, 3, NULL, NULL},
                               {3, 7, 20, 4, NULL, NULL},  {1, 5, 3, 3, NULL, NULL},
                               {2, 50, 192, 3, NULL, NULL}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_shape(&shapes[i], r);
}

int main(void) { return kernel_check_main("test_attention", check_all); }
