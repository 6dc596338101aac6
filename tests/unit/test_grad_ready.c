/* The backward pass's GradReady promise, on which overlapped gradient reduction rests: once it
 * says the gradients from some offset to the end are final, none of them changes again. Each
 * report copies the newly final range; at the end the copies must equal the final gradients bit
 * for bit, the reports must descend to offset 0, and there must be one per block at least (the
 * granularity overlap needs). Checked for every registered objective (supmae: a second head on
 * the encoder output) with norm_pix on and off and an odd decoder. Then gradsync's side of the
 * promise: a report that goes back up the buffer is fatal, naming the tensor. */
#include "../testing.h"
#include "objective_jobs.h"

#include "maec/gradsync.h"
#include "maec/rng.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Three random images with labels 1, -1 (unlabeled) and 3, masked as obj says. */
static void make_batch(Batch *b, const Objective *obj, const ModelConfig *m)
{
    enum { B = 3 };
    static size_t samples[B] = {0, 1, 2};
    static int32_t labels[B] = {1, -1, 3};
    size_t pixels = (size_t)B * m->img_size * m->img_size * m->in_chans;
    *b = (Batch){.n = B, .labels = labels, .samples = samples, .images = malloc(pixels * sizeof(float))};
    Rng rng = rng_make(5, RNG_SYNTHETIC, 0, 0);
    for (size_t i = 0; i < pixels; i++)
        b->images[i] = 2 * rng_uniform(&rng) - 1;
    mask_set_init(&b->masks, &obj->mask, B);
    mask_draw(&b->masks, &obj->mask, samples, B, 9, 0);
}

static void check_objective(const char *name, const char *model, double ratio, bool norm_pix, int blocks,
                            const char *what)
{
    Job job;
    Objective obj;
    MaecError err;
    if (test_make_objective(&job, &obj, name, model, ratio, norm_pix, 2, 3, &err)) {
        CHECK(false, "%s %s: %s", name, what, err.msg);
        return;
    }
    Batch b;
    make_batch(&b, &obj, &job.cfg.model);
    obj.cls->reserve(&obj, b.n);
    Recorder rec = {.grads = obj.grads, .copy = calloc(obj.table.padded, sizeof(float)),
                    .final_from = obj.table.padded};
    GradReady ready = {record, &rec};
    double terms[OBJECTIVE_MAX_TERMS];
    obj.cls->step(&obj, &b, 1.0f, &ready, terms);
    CHECK(rec.out_of_order == 0, "%s %s: %d reports went up the buffer, not down", name, what, rec.out_of_order);
    CHECK(rec.final_from == 0, "%s %s: reports stopped at offset %zu of %zu", name, what, rec.final_from,
          obj.table.padded);
    CHECK(rec.reports >= blocks, "%s %s: %d reports for %d blocks", name, what, rec.reports, blocks);
    size_t changed = 0, nonzero = 0;
    for (size_t i = 0; i < obj.table.padded; i++) {
        changed += memcmp(&rec.copy[i], &obj.grads[i], sizeof(float)) != 0;
        nonzero += obj.grads[i] != 0;
    }
    CHECK(changed == 0, "%s %s: %zu gradients changed after being reported final", name, what, changed);
    CHECK(nonzero > obj.table.numel / 2, "%s %s: only %zu of %zu gradients are non-zero", name, what, nonzero,
          obj.table.numel);
    printf("%s, %s: %d reports, %zu parameters, all final when reported\n", name, what, rec.reports,
           obj.table.numel);
    free(b.images), free(rec.copy);
    mask_set_free(&b.masks);
    objective_destroy(&obj);
    job_free(&job);
}

/* In a child: a gradsync pass told "final from inside head", then "final from inside second_head". */
static void report_upwards(void)
{
    ParamTable table;
    param_table_init(&table);
    param_table_add(&table, "head.weight", 1, (size_t[]){64});
    param_table_add(&table, "second_head.weight", 1, (size_t[]){64});
    param_table_finish(&table, 1);
    float *grads = calloc(table.padded, sizeof(float));
    GradSync s;
    gradsync_init(&s, GRADSYNC_ALLREDUCE, grads, table.padded, 16, NULL, NULL,
                  (GradSyncNames){param_table_name_at, &table});
    gradsync_begin(&s, false);
    gradsync_ready(&s, grads + 30);
    gradsync_ready(&s, grads + 100);
    exit(0);
}

static void check_upward_report_is_fatal(void)
{
    int pipefd[2];
    if (pipe(pipefd))
        return;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        report_upwards();
    }
    close(pipefd[1]);
    char msg[1024] = "";
    ssize_t n = read(pipefd[0], msg, sizeof msg - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 0, "an upward report did not end the process");
    CHECK(strstr(msg, "second_head.weight") != NULL, "the message does not name the tensor: %s", msg);
    printf("upward report: fatal, \"%.*s\"\n", (int)strcspn(msg, "\n"), msg);
}

int main(void)
{
    for (int i = 0; objective_names[i]; i++) {
        const char *name = objective_names[i];
        check_objective(name, "{img_size: 16, patch_size: 4, in_chans: 3, embed_dim: 32, depth: 3, num_heads: 2, "
                        "decoder_embed_dim: 24, decoder_depth: 2, decoder_num_heads: 3, mlp_ratio: 2.0}",
                        0.75, false, 5, "pixel targets, depth 3 + 2");
        check_objective(name, "{img_size: 12, patch_size: 4, in_chans: 1, embed_dim: 16, depth: 2, num_heads: 4, "
                        "decoder_embed_dim: 8, decoder_depth: 1, decoder_num_heads: 2, mlp_ratio: 4.0}",
                        0.5, true, 3, "norm_pix, depth 2 + 1");
    }
    check_upward_report_is_fatal();
    return test_summary("test_grad_ready");
}
