/* The backward pass's GradReady promise, on which overlapped gradient reduction rests: once it
 * says the gradients from some offset to the end are final, none of them changes again. Each
 * report copies the newly final range; at the end the copies must equal the final gradients bit
 * for bit, the reports must descend to offset 0, and there must be one per block at least (the
 * granularity overlap needs). Checked with norm_pix on and off and an odd decoder. */
#include "../testing.h"

#include "maec/mae.h"
#include "maec/masking.h"
#include "maec/rng.h"

#include <stdlib.h>
#include <string.h>

typedef struct Recorder {
    const float *grads;
    float *copy;
    size_t final_from; /* [final_from, end) is copied */
    int reports, out_of_order;
} Recorder;

static void record(void *ctx, const float *from)
{
    Recorder *r = ctx;
    size_t off = (size_t)(from - r->grads);
    if (off > r->final_from) {
        r->out_of_order++;
        return;
    }
    memcpy(r->copy + off, r->grads + off, (r->final_from - off) * sizeof(float));
    r->final_from = off;
    r->reports++;
}

static void check_model(const MaeConfig *cfg, const char *what)
{
    enum { B = 3 };
    Mae mae;
    MaecError err;
    CHECK(mae_init(&mae, cfg, 2, &err) == 0, "%s: mae_init: %s", what, err.msg);
    vit_init_weights(&mae.table, mae.params, 3);
    MaeActs acts;
    mae_acts_init(&acts, &mae, B);
    const ModelConfig *m = &cfg->model;
    size_t pixels = (size_t)B * m->img_size * m->img_size * m->in_chans;
    float *img = malloc(pixels * sizeof(float));
    Rng rng = rng_make(5, RNG_SYNTHETIC, 0, 0);
    for (size_t i = 0; i < pixels; i++)
        img[i] = 2 * rng_uniform(&rng) - 1;
    int32_t *ids = malloc(B * mae.num_patches * sizeof(int32_t));
    const size_t samples[B] = {0, 1, 2};
    mask_random(ids, samples, B, mae.num_patches, 9, 0);
    Recorder rec = {.grads = mae.grads, .copy = calloc(mae.table.padded, sizeof(float)),
                    .final_from = mae.table.padded};
    GradReady ready = {record, &rec};
    memset(mae.grads, 0, mae.table.padded * sizeof(float));
    mae_forward_backward(&mae, &acts, img, ids, B, 1.0f, &ready);
    CHECK(rec.out_of_order == 0, "%s: %d reports went up the buffer, not down", what, rec.out_of_order);
    CHECK(rec.final_from == 0, "%s: reports stopped at offset %zu of %zu", what, rec.final_from, mae.table.padded);
    int blocks = m->depth + m->decoder_depth;
    CHECK(rec.reports >= blocks, "%s: %d reports for %d blocks", what, rec.reports, blocks);
    size_t changed = 0, nonzero = 0;
    for (size_t i = 0; i < mae.table.padded; i++) {
        changed += memcmp(&rec.copy[i], &mae.grads[i], sizeof(float)) != 0;
        nonzero += mae.grads[i] != 0;
    }
    CHECK(changed == 0, "%s: %zu gradients changed after being reported final", what, changed);
    CHECK(nonzero > mae.table.numel / 2, "%s: only %zu of %zu gradients are non-zero", what, nonzero,
          mae.table.numel);
    printf("%s: %d reports, %zu parameters, all final when reported\n", what, rec.reports, mae.table.numel);
    free(img), free(ids), free(rec.copy);
    mae_acts_free(&acts);
    mae_free(&mae);
}

int main(void)
{
    MaeConfig pixels = {{16, 4, 3, 32, 3, 2, 24, 2, 3, 2.0}, false, 0.75};
    check_model(&pixels, "pixel targets, depth 3 + 2");
    MaeConfig normpix = {{12, 4, 1, 16, 2, 4, 8, 1, 2, 4.0}, true, 0.5};
    check_model(&normpix, "norm_pix, depth 2 + 1");
    return test_summary("test_grad_ready");
}
