/* Checks shared by the kernel tests (test_linear.c, test_layernorm.c, ...).
 *
 * A test describes a kernel as a GradKernel (its forward and backward, a naive double-precision
 * reference of both, tolerances) and each call of it as a GradCase (shape and float inputs).
 * With the scalar loss L = sum(out * w) for random w (so dout = w), check_grad_case verifies
 *   1. the forward against the reference forward;
 *   2. the backward (into zeroed gradients) against the reference backward;
 *   3. central differences of L along random directions: on the double reference with a tight
 *      tolerance, which validates the reference backward, and on the float kernel with a loose
 *      one, which validates the kernel without trusting the reference;
 *   4. accumulation: pre-filled gradients end at pre-fill + gradient, two calls give twice it;
 *   5. threads: a run on the pool equals, bitwise, a run on one thread.
 * The largest errors are kept per kernel; kernel_errors_print shows them with the tolerances. */
#ifndef MAEC_TESTS_KERNEL_CHECK_H
#define MAEC_TESTS_KERNEL_CHECK_H

#include "../testing.h"

#include "maec/alloc.h"
#include "maec/error.h"
#include "maec/parallel.h"
#include "maec/rng.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRAD_MAX_INPUTS 3
#define FD_DIRECTIONS 2
/* Reference central differences: step 1e-5 leaves a truncation error near 1e-10 in double. */
#define FD_REF_STEP 1e-5
#define FD_REF_TOL 1e-6
/* Float central differences: a step of 1e-2 of the spread balances the O(h^2) truncation
 * against the float rounding of the two losses (6e-8 of their size, divided by h). */
#define FD_KERNEL_STEP 1e-2
/* Pre-fill + gradient and gradient twice differ from one call only by float rounding. */
#define ACCUMULATE_TOL 1e-6
/* The pool of the thread check: three, so that ranges split unevenly (the machine may have
 * fewer cores; the check is about results, not speed). */
#define KERNEL_CHECK_THREADS 3

typedef struct GradCase GradCase;

typedef struct GradKernel {
    const char *name; /* errors are reported per kernel */
    /* The kernel. backward gets the output of the forward just run at the same inputs, and
     * accumulates into grads[0..ninputs). */
    void (*forward)(const GradCase *c, float *out);
    void (*backward)(const GradCase *c, const float *out, float *const *grads);
    /* The reference, reading xd and wd. */
    void (*forward_ref)(const GradCase *c, double *out);
    void (*backward_ref)(const GradCase *c, double *const *grads);
    double tol_forward, tol_backward, tol_fd_kernel; /* relative errors */
} GradKernel;

struct GradCase {
    const GradKernel *k;
    char label[96]; /* kernel and shape, for messages */
    int ninputs;
    const char *input_name[GRAD_MAX_INPUTS];
    size_t input_len[GRAD_MAX_INPUTS];
    float *x[GRAD_MAX_INPUTS];   /* what the kernel reads */
    double *xd[GRAD_MAX_INPUTS]; /* the same values, what the reference reads */
    size_t out_len;
    float *w; /* loss weights, the dout of the backward pass */
    double *wd;
    void *ctx; /* shapes and saved state of the kernel */
};

typedef struct KernelErrors {
    const GradKernel *k;
    double forward, backward, fd_ref, fd_kernel;
} KernelErrors;

static KernelErrors kernel_errors[8];

static inline KernelErrors *kernel_errors_for(const GradKernel *k)
{
    size_t i = 0;
    while (kernel_errors[i].k && kernel_errors[i].k != k)
        i++;
    if (i + 1 >= sizeof kernel_errors / sizeof kernel_errors[0])
        fatal("kernel_check.h: too many kernels in one test");
    kernel_errors[i].k = k;
    return &kernel_errors[i];
}

static inline double max_d(double a, double b) { return a > b ? a : b; }

static inline void kernel_errors_print(void)
{
    for (size_t i = 0; kernel_errors[i].k; i++) {
        const KernelErrors *e = &kernel_errors[i];
        const GradKernel *k = e->k;
        printf("%-10s max relative error: forward %.2e (tol %.0e), backward %.2e (tol %.0e), "
               "finite differences: reference %.2e (tol %.0e), float kernel %.2e (tol %.0e)\n",
               k->name, e->forward, k->tol_forward, e->backward, k->tol_backward, e->fd_ref,
               FD_REF_TOL, e->fd_kernel, k->tol_fd_kernel);
    }
}

static inline float *floats(size_t n) { return xcalloc(n ? n : 1, sizeof(float), "test floats"); }
static inline double *doubles(size_t n)
{
    return xcalloc(n ? n : 1, sizeof(double), "test doubles");
}

static inline float *floats_copy(const float *x, size_t n)
{
    float *y = floats(n);
    memcpy(y, x, n * sizeof(float));
    return y;
}

static inline void fill_normal(float *x, size_t n, double mean, double std, Rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(mean + std * rng_normal(r));
}

static inline void to_double(double *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
}

/* A case of kernel k with out_len outputs and loss weights drawn from N(0, 1); label_fmt and
 * what follows name the shape. */
static inline void grad_case_init(GradCase *c, const GradKernel *k, void *ctx, size_t out_len,
                                  Rng *r, const char *label_fmt, ...)
    __attribute__((format(printf, 6, 7)));

static inline void grad_case_init(GradCase *c, const GradKernel *k, void *ctx, size_t out_len,
                                  Rng *r, const char *label_fmt, ...)
{
    *c = (GradCase){.k = k, .out_len = out_len, .ctx = ctx};
    va_list args;
    va_start(args, label_fmt);
    vsnprintf(c->label, sizeof c->label, label_fmt, args);
    va_end(args);
    c->w = floats(out_len);
    c->wd = doubles(out_len);
    fill_normal(c->w, out_len, 0.0, 1.0, r);
    to_double(c->wd, c->w, out_len);
}

/* Adds an input of n values drawn from N(mean, std^2). */
static inline void grad_case_input(GradCase *c, const char *name, size_t n, double mean,
                                   double std, Rng *r)
{
    int i = c->ninputs++;
    if (i >= GRAD_MAX_INPUTS)
        fatal("kernel_check.h: more than %d inputs", GRAD_MAX_INPUTS);
    c->input_name[i] = name;
    c->input_len[i] = n;
    c->x[i] = floats(n);
    c->xd[i] = doubles(n);
    fill_normal(c->x[i], n, mean, std, r);
    to_double(c->xd[i], c->x[i], n);
}

static inline void grad_case_free(GradCase *c)
{
    for (int i = 0; i < c->ninputs; i++) {
        free(c->x[i]);
        free(c->xd[i]);
    }
    free(c->w);
    free(c->wd);
}

static inline double dot_fd(const float *x, const double *y, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static inline double loss_ref(const GradCase *c, double *out)
{
    c->k->forward_ref(c, out);
    double s = 0;
    for (size_t i = 0; i < c->out_len; i++)
        s += out[i] * c->wd[i];
    return s;
}

static inline double loss_kernel(const GradCase *c, float *out)
{
    c->k->forward(c, out);
    return dot_fd(out, c->wd, c->out_len);
}

/* |numeric - analytic| relative to the analytic directional derivative, with a floor of 1e-3
 * times |grad| |dir| so that a direction nearly orthogonal to the gradient cannot fail alone. */
static inline double fd_error(double numeric, double analytic, double grad_norm, double dir_norm)
{
    return fabs(numeric - analytic) / max_d(fabs(analytic), 1e-3 * grad_norm * dir_norm);
}

static inline double norm_d(const double *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i] * x[i];
    return sqrt(s);
}

/* The scale of finite-difference steps along input x: its standard deviation, at least 1. The
 * spread rather than the magnitude, because LayerNorm ignores a common offset (inputs at
 * 100 + N(0,1)) and a step sized by the offset would leave the linear regime. */
static inline double fd_scale(const double *x, size_t n)
{
    double mean = 0, var = 0;
    for (size_t i = 0; i < n; i++)
        mean += x[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
    return max_d(1.0, sqrt(var / (double)n));
}

/* Central differences of the reference along a random direction of input i. */
static inline double fd_ref_error(const GradCase *c, int i, const double *grad, Rng *r)
{
    size_t n = c->input_len[i];
    double *dir = doubles(n), *out = doubles(c->out_len), *x = c->xd[i];
    for (size_t k = 0; k < n; k++)
        dir[k] = rng_normal(r);
    double h = FD_REF_STEP * fd_scale(x, n), analytic = 0;
    for (size_t k = 0; k < n; k++) {
        x[k] += h * dir[k];
        analytic += grad[k] * dir[k];
    }
    double up = loss_ref(c, out);
    for (size_t k = 0; k < n; k++)
        x[k] -= 2 * h * dir[k];
    double down = loss_ref(c, out);
    to_double(x, c->x[i], n); /* restore exactly */
    double err = fd_error((up - down) / (2 * h), analytic, norm_d(grad, n), norm_d(dir, n));
    free(dir);
    free(out);
    return err;
}

/* Central differences of the float kernel along a random direction of input i. The steps are
 * the float-rounded perturbed inputs themselves, so rounding them costs no accuracy. */
static inline double fd_kernel_error(const GradCase *c, int i, const float *grad, Rng *r)
{
    size_t n = c->input_len[i];
    float *x = c->x[i], *up_x = floats(n), *out = floats(c->out_len);
    double *step = doubles(n), *grad_d = doubles(n);
    double scale = fd_scale(c->xd[i], n);
    for (size_t k = 0; k < n; k++)
        up_x[k] = (float)(c->xd[i][k] + FD_KERNEL_STEP * scale * rng_normal(r));
    for (size_t k = 0; k < n; k++) { /* down = 2x - up, exact in double, rounded once */
        float down = (float)(2.0 * c->xd[i][k] - up_x[k]);
        step[k] = (double)up_x[k] - down;
        x[k] = down;
    }
    double down_loss = loss_kernel(c, out);
    memcpy(x, up_x, n * sizeof(float));
    double up_loss = loss_kernel(c, out);
    for (size_t k = 0; k < n; k++)
        x[k] = (float)c->xd[i][k]; /* restore exactly */
    to_double(grad_d, grad, n);
    double err = fd_error(up_loss - down_loss, dot_fd(grad, step, n), norm_d(grad_d, n),
                          norm_d(step, n));
    free(up_x);
    free(out);
    free(step);
    free(grad_d);
    return err;
}

/* grads[i] = zeroed buffers for every input. */
static inline void zeroed_grads(const GradCase *c, float **grads)
{
    for (int i = 0; i < c->ninputs; i++)
        grads[i] = floats(c->input_len[i]);
}

static inline void free_grads(const GradCase *c, float **grads)
{
    for (int i = 0; i < c->ninputs; i++)
        free(grads[i]);
}

static inline void run_case(const GradCase *c, float *out, float *const *grads)
{
    c->k->forward(c, out);
    c->k->backward(c, out, grads);
}

typedef struct SingleThreadRun {
    const GradCase *c;
    float *out;
    float *const *grads;
} SingleThreadRun;

static inline void single_thread_body(void *ctx, size_t begin, size_t end, int thread)
{
    (void)begin, (void)end, (void)thread;
    const SingleThreadRun *s = ctx;
    run_case(s->c, s->out, s->grads);
}

/* Inside a parallel_for range every nested parallel_for and gemm() runs inline on the calling
 * thread: exactly the single-thread code path, without a second process. */
static inline void run_case_single_thread(const GradCase *c, float *out, float *const *grads)
{
    SingleThreadRun s = {c, out, grads};
    parallel_for(1, 1, single_thread_body, &s);
}

static inline void check_accumulation(const GradCase *c, float *const *once, Rng *r)
{
    float *out = floats(c->out_len), *twice[GRAD_MAX_INPUTS], *filled[GRAD_MAX_INPUTS];
    zeroed_grads(c, twice);
    for (int i = 0; i < c->ninputs; i++) {
        filled[i] = floats(c->input_len[i]);
        fill_normal(filled[i], c->input_len[i], 0.0, 1.0, r);
    }
    float *pre[GRAD_MAX_INPUTS];
    for (int i = 0; i < c->ninputs; i++)
        pre[i] = floats_copy(filled[i], c->input_len[i]);
    run_case(c, out, filled);
    c->k->backward(c, out, twice);
    c->k->backward(c, out, twice);
    for (int i = 0; i < c->ninputs; i++) {
        size_t n = c->input_len[i];
        double *want_filled = doubles(n), *want_twice = doubles(n);
        for (size_t k = 0; k < n; k++) {
            want_filled[k] = (double)pre[i][k] + once[i][k];
            want_twice[k] = 2.0 * once[i][k];
        }
        double e1 = test_rel_error(filled[i], want_filled, n);
        double e2 = test_rel_error(twice[i], want_twice, n);
        CHECK(e1 < ACCUMULATE_TOL, "%s: d%s does not accumulate onto a pre-filled buffer: "
              "rel error %.2e", c->label, c->input_name[i], e1);
        CHECK(e2 < ACCUMULATE_TOL, "%s: two backward calls do not give twice d%s: rel error "
              "%.2e", c->label, c->input_name[i], e2);
        free(want_filled);
        free(want_twice);
        free(pre[i]);
    }
    free_grads(c, twice);
    free_grads(c, filled);
    free(out);
}

static inline void check_threads(const GradCase *c, const float *out, float *const *grads)
{
    float *out1 = floats(c->out_len), *grads1[GRAD_MAX_INPUTS];
    zeroed_grads(c, grads1);
    run_case_single_thread(c, out1, grads1);
    CHECK(memcmp(out, out1, c->out_len * sizeof(float)) == 0,
          "%s: forward on %d threads differs from one thread", c->label, parallel_threads());
    for (int i = 0; i < c->ninputs; i++)
        CHECK(memcmp(grads[i], grads1[i], c->input_len[i] * sizeof(float)) == 0,
              "%s: d%s on %d threads differs from one thread", c->label, c->input_name[i],
              parallel_threads());
    free_grads(c, grads1);
    free(out1);
}

static inline void check_grad_case(const GradCase *c, Rng *r)
{
    const GradKernel *k = c->k;
    KernelErrors *e = kernel_errors_for(k);

    float *out = floats(c->out_len), *grads[GRAD_MAX_INPUTS];
    double *out_ref = doubles(c->out_len);
    zeroed_grads(c, grads);
    run_case(c, out, grads);
    k->forward_ref(c, out_ref);
    double err = test_rel_error(out, out_ref, c->out_len);
    e->forward = max_d(e->forward, err);
    CHECK(err < k->tol_forward, "%s: forward rel error %.2e", c->label, err);

    double *grads_ref[GRAD_MAX_INPUTS];
    for (int i = 0; i < c->ninputs; i++)
        grads_ref[i] = doubles(c->input_len[i]);
    k->backward_ref(c, grads_ref);
    for (int i = 0; i < c->ninputs; i++) {
        err = test_rel_error(grads[i], grads_ref[i], c->input_len[i]);
        e->backward = max_d(e->backward, err);
        CHECK(err < k->tol_backward, "%s: d%s rel error %.2e", c->label, c->input_name[i], err);
        for (int d = 0; d < FD_DIRECTIONS; d++) {
            err = fd_ref_error(c, i, grads_ref[i], r);
            e->fd_ref = max_d(e->fd_ref, err);
            CHECK(err < FD_REF_TOL, "%s: reference d%s disagrees with finite differences: "
                  "rel error %.2e", c->label, c->input_name[i], err);
            err = fd_kernel_error(c, i, grads[i], r);
            e->fd_kernel = max_d(e->fd_kernel, err);
            CHECK(err < k->tol_fd_kernel, "%s: kernel d%s disagrees with finite differences: "
                  "rel error %.2e", c->label, c->input_name[i], err);
        }
    }
    check_accumulation(c, grads, r);
    check_threads(c, out, grads);
    for (int i = 0; i < c->ninputs; i++)
        free(grads_ref[i]);
    free_grads(c, grads);
    free(out_ref);
    free(out);
}

/* The main() of a kernel test: check_all runs its cases with the pool started (check_threads
 * compares every case against one thread); then the error table and the summary. */
static inline int kernel_check_main(const char *test_name, void (*check_all)(Rng *r))
{
    Rng r = rng_make(11, RNG_INIT, 0, 0);
    parallel_init(KERNEL_CHECK_THREADS);
    check_all(&r);
    parallel_shutdown();
    kernel_errors_print();
    return test_summary(test_name);
}

#endif
