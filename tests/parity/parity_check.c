/* parity_check FIXTURE.h5 [--quiet]
 *
 * Checks one of maec's objectives against a PyTorch reference fixture (format: docs/parity.md):
 * builds the objective the fixture names (version 1: mae) with its config, loads its weights and
 * state by state_dict name, steps once on its images, masks and labels, compares the loss, its
 * terms, the named outputs and every gradient, then takes `steps` AdamW steps with the
 * warmup/cosine schedule through the trainer's step function and compares the parameters and
 * state after them. Prints, per tensor, the relative error ||maec - ref|| / ||ref|| and its
 * tolerance. Exit 0 only if every check passes. */
#include "../testing.h"

#include "maec/dist.h"
#include "maec/error.h"
#include "maec/job.h"
#include "maec/schedule.h"
#include "maec/step.h"

#include <hdf5.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define TOL_LOSS 1e-5
#define TOL_GRAD 1e-4
#define TOL_PARAM 1e-4
#define TOL_ACTIVATION 1e-4
#define TOL_POS 1e-6

static const char *g_path;
static bool g_quiet;

static _Noreturn void fixture_error(const char *what)
{
    fprintf(stderr, "parity_check: %s: %s (see docs/parity.md for the fixture format)\n", g_path, what);
    exit(2);
}

static double read_attr_double(hid_t obj, const char *name)
{
    double v = 0;
    hid_t a = H5Aexists(obj, name) > 0 ? H5Aopen(obj, name, H5P_DEFAULT) : -1;
    if (a < 0 || H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "missing or unreadable numeric attribute '%s'", name);
        fixture_error(msg);
    }
    H5Aclose(a);
    return v;
}

static int read_attr_int(hid_t obj, const char *name) { return (int)read_attr_double(obj, name); }

static void read_attr_string(hid_t obj, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    if (H5Aexists(obj, name) <= 0)
        return;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), type = H5Aget_type(a), mem = H5Tcopy(H5T_C_S1);
    if (H5Tis_variable_str(type) > 0) {
        char *s = NULL;
        H5Tset_size(mem, H5T_VARIABLE);
        if (H5Aread(a, mem, &s) >= 0 && s) {
            snprintf(out, size, "%s", s);
            H5free_memory(s);
        }
    } else {
        size_t n = H5Tget_size(type);
        /* one more byte than the stored string: a null-terminated type keeps room for the 0 */
        char *buf = calloc(n + 1, 1);
        H5Tset_size(mem, n + 1);
        if (H5Aread(a, mem, buf) >= 0)
            snprintf(out, size, "%s", buf);
        free(buf);
    }
    H5Tclose(mem);
    H5Tclose(type);
    H5Aclose(a);
}

/* Reads a whole dataset as doubles; *numel gets its size. NULL if absent. */
static double *read_doubles(hid_t file, const char *path, size_t *numel, int *ndim, hsize_t *dims)
{
    if (H5Lexists(file, path, H5P_DEFAULT) <= 0)
        return NULL;
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT), space = H5Dget_space(d);
    hsize_t local[8];
    int nd = H5Sget_simple_extent_dims(space, dims ? dims : local, NULL);
    size_t n = (size_t)H5Sget_simple_extent_npoints(space);
    double *buf = malloc((n ? n : 1) * sizeof(double));
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        fixture_error(path);
    H5Sclose(space);
    H5Dclose(d);
    if (numel)
        *numel = n;
    if (ndim)
        *ndim = nd;
    return buf;
}

static double *require_doubles(hid_t file, const char *path, size_t expect)
{
    size_t n = 0;
    double *x = read_doubles(file, path, &n, NULL, NULL);
    if (!x || n != expect) {
        char msg[512];
        snprintf(msg, sizeof msg, "dataset %s %s (expected %zu values, found %zu)", path,
                 x ? "has the wrong size" : "is missing", expect, n);
        fixture_error(msg);
    }
    return x;
}

typedef struct AttrYaml {
    char *yaml;
    const KeyTable *keys; /* the objective's: booleans are stored as int64 0/1 */
} AttrYaml;

static bool is_bool_key(const KeyTable *keys, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "objective.%s", name);
    for (size_t i = 0; i < keys->count; i++)
        if (!strcmp(keys->keys[i].path, path))
            return keys->keys[i].type == KEY_BOOL;
    return false;
}

/* "  KEY: VALUE\n" for every attribute of a group (integers stored as int64, the rest as float64). */
static herr_t append_attr(hid_t obj, const char *name, const H5A_info_t *info, void *ctx)
{
    (void)info;
    AttrYaml *y = ctx;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), type = H5Aget_type(a);
    bool integer = H5Tget_class(type) == H5T_INTEGER;
    H5Tclose(type);
    H5Aclose(a);
    size_t at = strlen(y->yaml);
    if (integer && is_bool_key(y->keys, name))
        snprintf(y->yaml + at, 8192 - at, "  %s: %s\n", name, read_attr_int(obj, name) ? "true" : "false");
    else if (integer)
        snprintf(y->yaml + at, 8192 - at, "  %s: %d\n", name, read_attr_int(obj, name));
    else
        snprintf(y->yaml + at, 8192 - at, "  %s: %.17g\n", name, read_attr_double(obj, name));
    return 0;
}

/* The job of the fixture as YAML: /config's model keys, its mask_ratio and norm_pix_loss (the
 * version 1 names of masking.ratio and objective.norm_pix_loss), and /objective's keys. */
static void fixture_job_yaml(hid_t file, const char *objective, char *yaml, int *batch)
{
    static const char *const model_keys[] = {"img_size", "patch_size", "in_chans", "embed_dim", "depth",
                                             "num_heads", "decoder_embed_dim", "decoder_depth",
                                             "decoder_num_heads", NULL};
    hid_t g = H5Gopen2(file, "/config", H5P_DEFAULT);
    if (g < 0)
        fixture_error("group /config is missing");
    size_t at = (size_t)snprintf(yaml, 8192, "data:\n  train: fixture\nmodel:\n");
    for (const char *const *k = model_keys; *k; k++)
        at += (size_t)snprintf(yaml + at, 8192 - at, "  %s: %d\n", *k, read_attr_int(g, *k));
    at += (size_t)snprintf(yaml + at, 8192 - at, "  mlp_ratio: %.17g\nmasking:\n  ratio: %.17g\nobjective:\n"
                           "  name: %s\n  norm_pix_loss: %s\n", read_attr_double(g, "mlp_ratio"),
                           read_attr_double(g, "mask_ratio"), objective,
                           read_attr_int(g, "norm_pix_loss") ? "true" : "false");
    *batch = read_attr_int(g, "batch");
    H5Gclose(g);
    const ObjectiveClass *cls = objective_find(objective);
    if (!cls)
        fixture_error("its objective is not registered in maec (maec objectives lists them)");
    if (H5Lexists(file, "/objective", H5P_DEFAULT) > 0) {
        hid_t o = H5Gopen2(file, "/objective", H5P_DEFAULT);
        hsize_t position = 0;
        AttrYaml y = {yaml, cls->keys};
        H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &position, append_attr, &y);
        H5Gclose(o);
    }
}

/* Copies /GROUP/<name> of every tensor of the table into the flat buffer, checking sizes. */
static void load_group(hid_t file, const char *group, const ParamTable *table, float *flat)
{
    for (size_t i = 0; i < table->count; i++) {
        const ParamTensor *t = &table->tensors[i];
        char path[PARAM_NAME_MAX + 32];
        snprintf(path, sizeof path, "/%s/%s", group, t->name);
        double *x = require_doubles(file, path, t->numel);
        for (size_t k = 0; k < t->numel; k++)
            flat[t->offset + k] = (float)x[k];
        free(x);
    }
}

/* Every trainable tensor of the fixture must exist in maec's table, and vice versa. */
static herr_t count_name(hid_t group, const char *name, const H5L_info_t *info, void *ctx)
{
    (void)group;
    (void)info;
    const ParamTable *table = ((void **)ctx)[0];
    int *missing = ((void **)ctx)[1];
    if (!param_table_find(table, name)) {
        fprintf(stderr, "parity_check: fixture tensor '%s' has no counterpart in maec\n", name);
        (*missing)++;
    }
    return 0;
}

static void check_names(hid_t file, const ParamTable *table)
{
    int missing = 0;
    void *ctx[2] = {(void *)table, &missing};
    hid_t g = H5Gopen2(file, "/grads", H5P_DEFAULT);
    if (g < 0)
        fixture_error("group /grads is missing");
    hsize_t position = 0;
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &position, count_name, ctx);
    H5G_info_t info;
    H5Gget_info(g, &info);
    H5Gclose(g);
    CHECK(missing == 0, "%d fixture tensors unknown to maec", missing);
    CHECK(info.nlinks == table->count, "fixture has %llu trainable tensors, maec %zu",
          (unsigned long long)info.nlinks, table->count);
}

static void report(const char *what, double err, double tol)
{
    bool ok = err <= tol;
    if (!g_quiet || !ok)
        printf("  %-48s %10.3e  %s (tol %.0e)\n", what, err, ok ? "ok  " : "FAIL", tol);
    CHECK(ok, "%s: relative error %.3e above %.0e", what, err, tol);
}

static void compare_tensor(const char *label, const float *got, const double *want, size_t n, double tol)
{
    report(label, test_rel_error(got, want, n), tol);
}

/* Compares the flat buffer against /GROUP/<name> for every tensor of the table. */
static void compare_group(hid_t file, const char *group, const ParamTable *table, const float *flat, double tol)
{
    for (size_t i = 0; i < table->count; i++) {
        const ParamTensor *t = &table->tensors[i];
        char path[PARAM_NAME_MAX + 32];
        snprintf(path, sizeof path, "/%s/%s", group, t->name);
        double *want = require_doubles(file, path, t->numel);
        char label[PARAM_NAME_MAX + 32];
        snprintf(label, sizeof label, "%s %s", group, t->name);
        compare_tensor(label, flat + t->offset, want, t->numel, tol);
        free(want);
    }
}

static void compare_fixed_tensors(hid_t file, const Objective *obj)
{
    for (size_t i = 0; i < obj->n_fixed; i++) {
        const FixedTensor *f = &obj->fixed[i];
        size_t n = 1;
        for (int d = 0; d < f->ndim; d++)
            n *= f->shape[d];
        char path[PARAM_NAME_MAX + 16], label[PARAM_NAME_MAX + 32];
        snprintf(path, sizeof path, "/params/%s", f->name);
        snprintf(label, sizeof label, "%s (fixed)", f->name);
        double *want = require_doubles(file, path, n);
        compare_tensor(label, f->data, want, n, TOL_POS);
        free(want);
    }
}

/* The fixture's batch: NCHW doubles -> NHWC floats, its masks, its labels (-1 without). */
static void load_batch(hid_t file, const Objective *obj, const ModelConfig *m, size_t N, Batch *b)
{
    size_t C = (size_t)m->in_chans, H = (size_t)m->img_size, n = N * C * H * H, L = mask_patches(&obj->mask);
    double *x = require_doubles(file, "/images", n);
    *b = (Batch){.n = N};
    b->images = malloc(n * sizeof(float));
    for (size_t i = 0; i < N; i++)
        for (size_t c = 0; c < C; c++)
            for (size_t k = 0; k < H * H; k++)
                b->images[(i * H * H + k) * C + c] = (float)x[(i * C + c) * H * H + k];
    free(x);
    mask_set_init(&b->masks, &obj->mask, N);
    x = require_doubles(file, "/ids_shuffle", N * L);
    for (size_t i = 0; i < N * L; i++)
        b->masks.order[i] = (int32_t)x[i];
    free(x);
    b->masks.n = N, b->masks.visible = obj->mask.visible, b->masks.masked = obj->mask.masked;
    b->labels = malloc(N * sizeof(int32_t));
    b->samples = malloc(N * sizeof(size_t));
    size_t n_labels = 0;
    double *labels = read_doubles(file, "/labels", &n_labels, NULL, NULL);
    if (labels && n_labels != N)
        fixture_error("dataset /labels does not hold one label per image");
    for (size_t i = 0; i < N; i++)
        b->labels[i] = labels ? (int32_t)labels[i] : -1, b->samples[i] = i;
    free(labels);
}

static void batch_free(Batch *b)
{
    free(b->images), free(b->labels), free(b->samples);
    mask_set_free(&b->masks);
}

static Batch *fixture_next(void *ctx, double *waited)
{
    *waited = 0;
    return ctx;
}

static void fixture_release(void *ctx) { (void)ctx; }

/* The objective's named outputs against the fixture's: latent and pred at the top level (version
 * 1), the rest under /outputs. */
static void compare_output(hid_t file, const Objective *obj, const char *name, const char *path, size_t N)
{
    size_t n = obj->cls->output(obj, name, N, NULL), found = 0;
    double *want = read_doubles(file, path, &found, NULL, NULL);
    char label[128];
    snprintf(label, sizeof label, "output %s", name);
    CHECK(n > 0 && want && found == n, "%s: maec has %zu values, the fixture %zu", label, n, found);
    if (n > 0 && want && found == n) {
        float *got = malloc(n * sizeof(float));
        obj->cls->output(obj, name, N, got);
        compare_tensor(label, got, want, n, TOL_ACTIVATION);
        free(got);
    }
    free(want);
}

static herr_t compare_listed_output(hid_t group, const char *name, const H5L_info_t *info, void *ctx)
{
    (void)group;
    (void)info;
    void **c = ctx;
    char path[128];
    snprintf(path, sizeof path, "/outputs/%s", name);
    compare_output(*(hid_t *)c[0], c[1], name, path, *(size_t *)c[2]);
    return 0;
}

static void compare_terms(hid_t file, const Objective *obj, const double *terms)
{
    for (size_t k = 0; k < obj->n_terms; k++) {
        char path[128], label[128];
        snprintf(path, sizeof path, "/terms/%s", obj->terms[k]);
        snprintf(label, sizeof label, "term %s", obj->terms[k]);
        double *want = require_doubles(file, path, 1);
        report(label, fabs(terms[k] - want[0]) / fmax(fabs(want[0]), 1e-30), TOL_LOSS);
        free(want);
    }
}

/* Forward outputs and gradients of one pass. */
static void check_one_pass(hid_t file, Objective *obj, Batch *b)
{
    double terms[OBJECTIVE_MAX_TERMS] = {0};
    memset(obj->grads, 0, obj->table.padded * sizeof(float));
    double loss = obj->cls->step(obj, b, 1.0f, NULL, terms);
    double *want = require_doubles(file, "/loss", 1);
    printf("loss: maec %.9f  reference %.9f\n", loss, want[0]);
    report("loss", fabs(loss - want[0]) / fabs(want[0]), TOL_LOSS);
    free(want);
    compare_terms(file, obj, terms);
    compare_output(file, obj, "latent", "/latent", b->n);
    compare_output(file, obj, "pred", "/pred", b->n);
    if (H5Lexists(file, "/outputs", H5P_DEFAULT) > 0) {
        hid_t g = H5Gopen2(file, "/outputs", H5P_DEFAULT);
        hsize_t position = 0;
        void *ctx[3] = {&file, obj, &b->n};
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &position, compare_listed_output, ctx);
        H5Gclose(g);
    }
    compare_group(file, "grads", &obj->table, obj->grads, TOL_GRAD);
}

static void check_training(hid_t file, Objective *obj, Batch *b)
{
    hid_t g = H5Gopen2(file, "/optim", H5P_DEFAULT);
    if (g < 0)
        fixture_error("group /optim is missing");
    StepperConfig sc = {.mode = DIST_ALLREDUCE, .accum = 1,
                        .adamw = {read_attr_double(g, "beta1"), read_attr_double(g, "beta2"),
                                  read_attr_double(g, "eps"), read_attr_double(g, "weight_decay")}};
    LrSchedule sched = {read_attr_double(g, "lr"), read_attr_double(g, "min_lr"),
                        read_attr_double(g, "warmup_steps"), read_attr_double(g, "total_steps")};
    int steps = read_attr_int(g, "steps");
    H5Gclose(g);
    double *lrs = require_doubles(file, "/lr", (size_t)steps), *losses = require_doubles(file, "/losses", (size_t)steps);
    Stepper stepper;
    stepper_init(&stepper, obj, &sc);
    const BatchSource src = {fixture_next, fixture_release, b};
    double lr_err = 0, loss_err = 0;
    for (int s = 0; s < steps; s++) {
        double lr = lr_at(&sched, s);
        StepResult r = stepper_step(&stepper, &src, lr, s);
        lr_err = fmax(lr_err, fabs(lr - lrs[s]) / fmax(fabs(lrs[s]), 1e-30));
        loss_err = fmax(loss_err, fabs(r.loss - losses[s]) / fabs(losses[s]));
        if (!g_quiet)
            printf("step %d: lr %.6e (ref %.6e)  loss %.9f (ref %.9f)\n", s, lr, lrs[s], r.loss, losses[s]);
    }
    report("learning rates of the schedule", lr_err, 1e-12);
    report("loss at every step", loss_err, TOL_LOSS);
    compare_group(file, "params_after", &obj->table, obj->params, TOL_PARAM);
    compare_group(file, "state_after", &obj->state, obj->state_values, TOL_PARAM);
    stepper_free(&stepper);
    free(lrs);
    free(losses);
}

/* The fixture's objective: root attribute `objective` from version 2 on, mae before. */
static int open_fixture(hid_t file, char *objective, size_t size)
{
    char format[128];
    read_attr_string(file, "format", format, sizeof format);
    int version = strcmp(format, "maec-parity-fixture") ? 0 : read_attr_int(file, "version");
    if (version != 1 && version != 2)
        fixture_error("not a maec parity fixture of version 1 or 2 (root attributes 'format', 'version')");
    snprintf(objective, size, "mae");
    if (version == 2)
        read_attr_string(file, "objective", objective, size);
    return version;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: parity_check FIXTURE.h5 [--quiet]\n"
                        "Checks an objective of maec against a PyTorch fixture (format: docs/parity.md).\n");
        return 2;
    }
    dist_init(&argc, &argv);
    g_path = argv[1];
    g_quiet = argc > 2 && !strcmp(argv[2], "--quiet");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t file = H5Fopen(g_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        fixture_error("cannot open as HDF5");
    char objective[64], description[512], yaml[8192];
    int version = open_fixture(file, objective, sizeof objective), N = 0;
    read_attr_string(file, "description", description, sizeof description);
    fixture_job_yaml(file, objective, yaml, &N);
    Job job;
    Objective obj;
    MaecError err;
    if (job_load_string(&job, yaml, g_path, NULL, 0, &err) || job_make_objective(&job, &obj, NULL, 1, &err)) {
        fprintf(stderr, "parity_check: %s: the fixture's config is invalid for maec: %s\n", g_path, err.msg);
        return 2;
    }
    const ModelConfig *m = &job.cfg.model;
    printf("fixture %s (version %d, objective %s): %s\n", g_path, version, objective, description);
    printf("model: img %d patch %d chans %d | encoder %dx%d heads %d | decoder %dx%d heads %d | mask %.2f | "
           "batch %d | %zu parameters\n", m->img_size, m->patch_size, m->in_chans, m->embed_dim, m->depth,
           m->num_heads, m->decoder_embed_dim, m->decoder_depth, m->decoder_num_heads, job.cfg.masking.ratio, N,
           obj.table.numel);
    check_names(file, &obj.table);
    load_group(file, "params", &obj.table, obj.params);
    load_group(file, "state", &obj.state, obj.state_values);
    compare_fixed_tensors(file, &obj);
    Batch batch;
    load_batch(file, &obj, m, (size_t)N, &batch);
    obj.cls->reserve(&obj, (size_t)N);
    check_one_pass(file, &obj, &batch);
    load_group(file, "state", &obj.state, obj.state_values); /* the pass above moved the running statistics */
    check_training(file, &obj, &batch);
    batch_free(&batch);
    objective_destroy(&obj);
    job_free(&job);
    H5Fclose(file);
    int rc = test_summary("parity_check");
    dist_finalize();
    return rc;
}
