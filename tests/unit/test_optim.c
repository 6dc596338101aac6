/* AdamW against a double-precision transcription of torch.optim.AdamW, the same update run on
 * shards cut anywhere (the ZeRO property), the learning-rate schedule, and gradient norms. */
#include "../testing.h"

#include "maec/adamw.h"
#include "maec/params.h"
#include "maec/rng.h"
#include "maec/schedule.h"

#include <stdlib.h>
#include <string.h>

/* A table with decayed and undecayed tensors of awkward sizes, padded to 4. */
static void make_table(ParamTable *t)
{
    param_table_init(t);
    param_table_add(t, "a.weight", 2, (size_t[]){3, 5});
    param_table_add(t, "a.bias", 1, (size_t[]){3});
    param_table_add(t, "cls_token", 3, (size_t[]){1, 1, 7});
    param_table_add(t, "norm.weight", 1, (size_t[]){6});
    param_table_finish(t, 4);
}

static void fill(float *x, size_t n, Rng *r, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = scale * (2.0f * rng_uniform(r) - 1.0f);
}

static void test_against_reference(void)
{
    ParamTable t;
    make_table(&t);
    const size_t n = t.padded;
    AdamWConfig cfg = {0.9, 0.95, 1e-8, 0.05};
    float *p = calloc(n, 4), *g = calloc(n, 4), *m = calloc(n, 4), *v = calloc(n, 4);
    double *rp = calloc(n, 8), *rm = calloc(n, 8), *rv = calloc(n, 8);
    Rng r = rng_make(1, RNG_INIT, 0, 0);
    fill(p, t.numel, &r, 1.0f);
    for (size_t i = 0; i < n; i++)
        rp[i] = p[i];
    const double lrs[3] = {0.0, 1e-2, 3e-3};
    for (int step = 1; step <= 3; step++) {
        fill(g, t.numel, &r, 0.1f);
        double lr = lrs[step - 1];
        adamw_update(p, g, m, v, 0, n, &t, &cfg, lr, step);
        for (size_t k = 0; k < t.count; k++) {
            const ParamTensor *pt = &t.tensors[k];
            for (size_t i = pt->offset; i < pt->offset + pt->numel; i++) {
                if (pt->decay)
                    rp[i] *= 1.0 - lr * cfg.weight_decay;
                rm[i] = cfg.beta1 * rm[i] + (1 - cfg.beta1) * g[i];
                rv[i] = cfg.beta2 * rv[i] + (1 - cfg.beta2) * (double)g[i] * g[i];
                double denom = sqrt(rv[i]) / sqrt(1 - pow(cfg.beta2, step)) + cfg.eps;
                rp[i] -= lr / (1 - pow(cfg.beta1, step)) * rm[i] / denom;
            }
        }
    }
    CHECK(test_rel_error(p, rp, n) < 1e-6, "AdamW vs reference: %g", test_rel_error(p, rp, n));
    for (size_t i = t.numel; i < n; i++)
        CHECK(p[i] == 0.0f && m[i] == 0.0f, "padding element %zu changed", i);
    free(p), free(g), free(m), free(v), free(rp), free(rm), free(rv);
    param_table_free(&t);
}

static void test_shards_equal_whole(void)
{
    ParamTable t;
    make_table(&t);
    const size_t n = t.padded;
    AdamWConfig cfg = adamw_defaults();
    float *p0 = calloc(n, 4), *p1 = calloc(n, 4), *g = calloc(n, 4);
    float *m0 = calloc(n, 4), *v0 = calloc(n, 4), *m1 = calloc(n, 4), *v1 = calloc(n, 4);
    Rng r = rng_make(2, RNG_INIT, 0, 0);
    fill(p0, t.numel, &r, 1.0f);
    memcpy(p1, p0, n * 4);
    const size_t cuts[] = {1, 4, 15, 16, 17, 24}; /* inside and at tensor borders */
    for (int step = 1; step <= 4; step++) {
        fill(g, t.numel, &r, 0.1f);
        adamw_update(p0, g, m0, v0, 0, n, &t, &cfg, 1e-2, step);
        size_t cut = cuts[step % 6];
        adamw_update(p1, g, m1, v1, 0, cut, &t, &cfg, 1e-2, step);
        adamw_update(p1, g + cut, m1 + cut, v1 + cut, cut, n, &t, &cfg, 1e-2, step);
    }
    CHECK(memcmp(p0, p1, n * 4) == 0 && memcmp(v0, v1, n * 4) == 0, "sharded AdamW differs from whole");
    double whole = grad_sum_squares(g, 0, n, &t);
    double parts = grad_sum_squares(g, 0, 10, &t) + grad_sum_squares(g + 10, 10, n, &t);
    CHECK(fabs(whole - parts) < 1e-12 * whole, "norm pieces %g vs %g", parts, whole);
    g[n - 1] = 100.0f; /* padding never counts */
    CHECK(grad_sum_squares(g, 0, n, &t) == whole, "padding counted in the gradient norm");
    free(p0), free(p1), free(g), free(m0), free(v0), free(m1), free(v1);
    param_table_free(&t);
}

static void test_schedule(void)
{
    LrSchedule s = {1e-3, 1e-5, 10, 110};
    CHECK(lr_at(&s, 0) == 0.0, "warmup starts at exactly 0, got %g", lr_at(&s, 0));
    CHECK(fabs(lr_at(&s, 5) - 5e-4) < 1e-18, "halfway through warmup %g", lr_at(&s, 5));
    CHECK(fabs(lr_at(&s, 10) - 1e-3) < 1e-18, "peak at the end of warmup %g", lr_at(&s, 10));
    CHECK(fabs(lr_at(&s, 60) - (1e-5 + (1e-3 - 1e-5) * 0.5)) < 1e-15, "cosine midpoint %g", lr_at(&s, 60));
    CHECK(fabs(lr_at(&s, 110) - 1e-5) < 1e-18 && fabs(lr_at(&s, 200) - 1e-5) < 1e-18, "ends at min_lr");
    int monotone = 1;
    for (double x = 10; x < 110; x += 0.5)
        monotone &= lr_at(&s, x + 0.5) <= lr_at(&s, x);
    CHECK(monotone, "lr must not rise after warmup");
    CHECK(fabs(lr_from_base(1.5e-4, 4096) - 2.4e-3) < 1e-15, "blr scaling");
}

int main(void)
{
    test_against_reference();
    test_shards_equal_whole();
    test_schedule();
    return test_summary("test_optim");
}
