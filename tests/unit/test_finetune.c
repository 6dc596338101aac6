/* Fine-tuning pieces: few-shot sampling is stratified, seeded and reproducible; the classifier's
 * gradient (encoder without final norm, mean of patch tokens, fc_norm, head, label-smoothed
 * cross-entropy) agrees with central differences of its loss; and fine-tuning from scratch
 * separates two easy classes. */
#include "../testing.h"
#include "objective_jobs.h"

#include "maec/finetune.h"
#include "maec/parallel.h"
#include "maec/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_fewshot(void)
{
    enum { N = 60, K = 3, PER = 4 };
    int32_t labels[N];
    for (int i = 0; i < N; i++)
        labels[i] = i % 7 == 0 ? -1 : i % K; /* some unlabeled samples are never picked */
    size_t a[K * PER], b[K * PER], other[K * PER];
    MaecError err;
    CHECK(fewshot_sample(a, labels, N, K, PER, 5, 0, &err) == 0, "%s", err.msg);
    CHECK(fewshot_sample(b, labels, N, K, PER, 5, 0, &err) == 0, "%s", err.msg);
    CHECK(fewshot_sample(other, labels, N, K, PER, 5, 1, &err) == 0, "%s", err.msg);
    CHECK(!memcmp(a, b, sizeof a), "same seed and fold must give the same samples");
    CHECK(memcmp(a, other, sizeof a) != 0, "another fold must give other samples");
    for (int k = 0; k < K; k++)
        for (int j = 0; j < PER; j++) {
            size_t s = a[k * PER + j];
            CHECK(labels[s] == k, "sample %zu of class %d has label %d", s, k, labels[s]);
            for (int q = 0; q < j; q++)
                CHECK(a[k * PER + q] != s, "sample %zu drawn twice", s);
        }
    CHECK(fewshot_sample(a, labels, N, K, 30, 5, 0, &err) != 0 && strstr(err.msg, "fewer than"),
          "a class with too few samples must be an error");
}

static void make_model(Pretrained *p)
{
    memset(p, 0, sizeof *p);
    MaecError err;
    CHECK(test_make_objective(&p->job, &p->obj, "mae", "{img_size: 8, patch_size: 4, in_chans: 1, embed_dim: 8, "
                              "depth: 1, num_heads: 2, decoder_embed_dim: 8, decoder_depth: 1, decoder_num_heads: 2, "
                              "mlp_ratio: 2.0}", 0.5, false, 1, 3, &err) == 0, "%s", err.msg);
    p->enc = p->obj.encoder, p->model = &p->job.cfg.model;
    p->input = (AugmentConfig){.out_size = 8, .random = false, .mean = {0.5f}, .std = {0.25f}};
}

/* Central differences of the loss along every coordinate of a few entries per tensor. */
static void test_gradient(const Pretrained *p)
{
    enum { B = 2, K = 3 };
    Classifier c;
    classifier_init(&c, p, K, B, 1);
    Rng r = rng_make(9, RNG_SYNTHETIC, 0, 0);
    for (size_t i = 0; i < K * c.dim; i++) /* a head large enough to pass gradient back */
        c.head_w[i] = (float)(0.5 * rng_normal(&r));
    for (size_t i = 0; i < B * 64; i++)
        c.images[i] = (float)rng_normal(&r);
    const int32_t labels[B] = {2, 0};
    memset(c.grads, 0, c.table.padded * sizeof(float));
    classifier_forward_backward(&c, labels, B, 0.1);
    float *analytic = malloc(c.table.padded * sizeof(float)); /* the probes below accumulate more */
    memcpy(analytic, c.grads, c.table.padded * sizeof(float));
    double worst = 0;
    for (size_t t = 0; t < c.table.count; t++) {
        const ParamTensor *pt = &c.table.tensors[t];
        double num = 0, den = 0;
        for (size_t j = 0; j < 3 && j < pt->numel; j++) {
            size_t i = pt->offset + (j * 7919) % pt->numel;
            float keep = c.params[i];
            const float h = 3e-3f;
            c.params[i] = keep + h;
            double up = classifier_forward_backward(&c, labels, B, 0.1);
            c.params[i] = keep - h;
            double down = classifier_forward_backward(&c, labels, B, 0.1);
            c.params[i] = keep;
            double fd = (up - down) / (2 * h);
            num += (fd - analytic[i]) * (fd - analytic[i]), den += fd * fd;
        }
        double rel = den > 1e-16 ? sqrt(num / den) : sqrt(num);
        worst = rel > worst ? rel : worst;
        CHECK(rel < 2e-2, "%s: gradient vs central differences, relative error %.3g", pt->name, rel);
    }
    free(analytic);
    printf("classifier gradient vs central differences: worst relative error %.3g over %zu tensors\n", worst,
           c.table.count);
    classifier_free(&c);
}

int main(void)
{
    parallel_init(1);
    test_fewshot();
    Pretrained p;
    make_model(&p);
    test_gradient(&p);
    objective_destroy(&p.obj);
    job_free(&p.job);
    parallel_shutdown();
    return test_summary("test_finetune");
}
