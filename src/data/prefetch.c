#include "maec/prefetch.h"

#include "maec/alloc.h"
#include "maec/error.h"
#include "maec/timer.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct Prefetch {
    PrefetchConfig cfg;
    Batch *slots;
    uint8_t *raw;        /* [batch, H, W, C]: one micro-batch as stored */
    Augmenter *augmenter;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    long produced, consumed; /* micro-batches; slot = count % depth */
    bool stopping, failed;
    MaecError error;
};

static void alloc_slot(Batch *b, const PrefetchConfig *cfg)
{
    const size_t n = cfg->batch, S = (size_t)cfg->augment.out_size;
    const size_t C = (size_t)dataset_channels(cfg->dataset);
    b->n = n;
    b->images = xalloc_aligned(n * S * S * C * sizeof(float), "prefetched images");
    b->labels = xmalloc(n * sizeof(int32_t), "prefetched labels");
    b->samples = xmalloc(n * sizeof(size_t), "prefetched sample indices");
    mask_set_init(&b->masks, &cfg->mask, n);
}

/* Fills slot b with micro-batch number k of the run (k counts from first_step). */
static int produce(Prefetch *p, Batch *b, long k, MaecError *err)
{
    const PrefetchConfig *c = &p->cfg;
    b->step = c->first_step + k / c->accum;
    b->micro = (int)(k % c->accum);
    b->epoch = sampler_epoch(c->sampler, b->step);
    size_t first = ((size_t)b->micro * (size_t)c->world + (size_t)c->rank) * c->batch;
    sampler_indices(c->sampler, b->step, first, c->batch, b->samples);
    if (dataset_read_many(c->dataset, b->samples, c->batch, p->raw, b->labels, err))
        return -1;
    const int H = dataset_height(c->dataset), W = dataset_width(c->dataset);
    const size_t in_bytes = dataset_sample_bytes(c->dataset);
    const size_t out_floats = (size_t)c->augment.out_size * c->augment.out_size * dataset_channels(c->dataset);
    for (size_t i = 0; i < c->batch; i++) {
        AugmentDraw d = augment_draw(&c->augment, H, W, c->seed, b->epoch, b->samples[i]);
        augment_apply(p->augmenter, b->images + i * out_floats, p->raw + i * in_bytes, &d);
    }
    mask_draw(&b->masks, &c->mask, b->samples, c->batch, c->seed, b->epoch);
    return 0;
}

static void *producer_main(void *arg)
{
    Prefetch *p = arg;
    const long total = (p->cfg.end_step - p->cfg.first_step) * p->cfg.accum;
    for (long k = 0; k < total; k++) {
        pthread_mutex_lock(&p->lock);
        while (!p->stopping && p->produced - p->consumed >= p->cfg.depth)
            pthread_cond_wait(&p->changed, &p->lock);
        pthread_mutex_unlock(&p->lock);
        if (p->stopping)
            break;
        MaecError err;
        int rc = produce(p, &p->slots[k % p->cfg.depth], k, &err);
        pthread_mutex_lock(&p->lock);
        if (rc) {
            p->failed = true;
            p->error = err;
        } else {
            p->produced++;
        }
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        if (rc)
            break;
    }
    return NULL;
}

Prefetch *prefetch_start(const PrefetchConfig *cfg)
{
    Prefetch *p = xcalloc(1, sizeof *p, "prefetch state");
    p->cfg = *cfg;
    if (p->cfg.depth < 1)
        p->cfg.depth = 1;
    p->slots = xcalloc((size_t)p->cfg.depth, sizeof(Batch), "prefetch slots");
    for (int i = 0; i < p->cfg.depth; i++)
        alloc_slot(&p->slots[i], cfg);
    p->raw = xmalloc(cfg->batch * dataset_sample_bytes(cfg->dataset), "raw micro-batch");
    p->augmenter = augmenter_create(dataset_height(cfg->dataset), dataset_width(cfg->dataset),
                                    dataset_channels(cfg->dataset), &cfg->augment);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    if (pthread_create(&p->thread, NULL, producer_main, p) != 0)
        fatal("could not start the data prefetch thread");
    return p;
}

Batch *prefetch_next(Prefetch *p, double *waited)
{
    double t0 = now_seconds();
    pthread_mutex_lock(&p->lock);
    while (p->produced <= p->consumed && !p->failed)
        pthread_cond_wait(&p->changed, &p->lock);
    bool failed = p->produced <= p->consumed && p->failed;
    pthread_mutex_unlock(&p->lock);
    if (waited)
        *waited = now_seconds() - t0;
    if (failed)
        fatal("reading training data: %s", p->error.msg);
    return &p->slots[p->consumed % p->cfg.depth];
}

void prefetch_release(Prefetch *p)
{
    pthread_mutex_lock(&p->lock);
    p->consumed++;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

void prefetch_stop(Prefetch *p)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    for (int i = 0; i < p->cfg.depth; i++) {
        free(p->slots[i].images), free(p->slots[i].labels), free(p->slots[i].samples);
        mask_set_free(&p->slots[i].masks);
    }
    free(p->slots);
    free(p->raw);
    augmenter_free(p->augmenter);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->changed);
    free(p);
}
