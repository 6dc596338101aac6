/* parity_check FIXTURE.h5 [--quiet]
 *
 * Checks maec's MAE against a PyTorch reference fixture (format: docs/parity.md): builds the
 * model of the fixture's config, loads its weights by state_dict name, runs one forward and
 * backward pass on its images and masks, then `steps` AdamW steps with the warmup/cosine
 * schedule. Prints, per tensor, the relative error ||maec - ref|| / ||ref|| and its tolerance.
 * Exit 0 only if every check passes. */
#include "../testing.h"

#include "maec/adamw.h"
#include "maec/error.h"
#include "maec/mae.h"
#include "maec/schedule.h"

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

static void load_config(hid_t file, MaeConfig *cfg, int *batch)
{
    hid_t g = H5Gopen2(file, "/config", H5P_DEFAULT);
    if (g < 0)
        fixture_error("group /config is missing");
    ModelConfig *m = &cfg->model;
    m->img_size = read_attr_int(g, "img_size");
    m->patch_size = read_attr_int(g, "patch_size");
    m->in_chans = read_attr_int(g, "in_chans");
    m->embed_dim = read_attr_int(g, "embed_dim");
    m->depth = read_attr_int(g, "depth");
    m->num_heads = read_attr_int(g, "num_heads");
    m->decoder_embed_dim = read_attr_int(g, "decoder_embed_dim");
    m->decoder_depth = read_attr_int(g, "decoder_depth");
    m->decoder_num_heads = read_attr_int(g, "decoder_num_heads");
    m->mlp_ratio = read_attr_double(g, "mlp_ratio");
    cfg->norm_pix_loss = read_attr_int(g, "norm_pix_loss") != 0;
    cfg->mask_ratio = read_attr_double(g, "mask_ratio");
    *batch = read_attr_int(g, "batch");
    H5Gclose(g);
}

/* Copies /params/<name> of every tensor of the table into the flat buffer, checking shapes. */
static void load_params(hid_t file, const Mae *mae, float *params)
{
    for (size_t i = 0; i < mae->table.count; i++) {
        const ParamTensor *t = &mae->table.tensors[i];
        char path[PARAM_NAME_MAX + 16];
        snprintf(path, sizeof path, "/params/%s", t->name);
        double *x = require_doubles(file, path, t->numel);
        for (size_t k = 0; k < t->numel; k++)
            params[t->offset + k] = (float)x[k];
        free(x);
    }
}

/* Every trainable tensor of the fixture must exist in maec's table, and vice versa. */
static herr_t count_name(hid_t group, const char *name, const H5L_info_t *info, void *ctx)
{
    (void)group;
    (void)info;
    const Mae *mae = ((void **)ctx)[0];
    int *missing = ((void **)ctx)[1];
    if (!param_table_find(&mae->table, name)) {
        fprintf(stderr, "parity_check: fixture tensor '%s' has no counterpart in maec\n", name);
        (*missing)++;
    }
    return 0;
}

static void check_names(hid_t file, const Mae *mae)
{
    int missing = 0;
    void *ctx[2] = {(void *)mae, &missing};
    hid_t g = H5Gopen2(file, "/grads", H5P_DEFAULT);
    if (g < 0)
        fixture_error("group /grads is missing");
    hsize_t position = 0;
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &position, count_name, ctx);
    H5G_info_t info;
    H5Gget_info(g, &info);
    H5Gclose(g);
    CHECK(missing == 0, "%d fixture tensors unknown to maec", missing);
    CHECK(info.nlinks == mae->table.count, "fixture has %llu trainable tensors, maec %zu",
          (unsigned long long)info.nlinks, mae->table.count);
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

/* Compares the flat buffer against /GROUP/<name> for every tensor. */
static void compare_group(hid_t file, const char *group, const Mae *mae, const float *flat, double tol)
{
    for (size_t i = 0; i < mae->table.count; i++) {
        const ParamTensor *t = &mae->table.tensors[i];
        char path[PARAM_NAME_MAX + 32];
        snprintf(path, sizeof path, "/%s/%s", group, t->name);
        double *want = require_doubles(file, path, t->numel);
        char label[PARAM_NAME_MAX + 32];
        snprintf(label, sizeof label, "%s %s", group, t->name);
        compare_tensor(label, flat + t->offset, want, t->numel, tol);
        free(want);
    }
}

static void compare_position_tables(hid_t file, const Mae *mae)
{
    size_t L1 = 1 + mae->num_patches;
    double *pos = require_doubles(file, "/params/pos_embed", L1 * mae->enc.dim);
    compare_tensor("pos_embed (fixed sin-cos)", mae->enc.pos, pos, L1 * mae->enc.dim, TOL_POS);
    free(pos);
    pos = require_doubles(file, "/params/decoder_pos_embed", L1 * mae->dec.dim);
    compare_tensor("decoder_pos_embed (fixed sin-cos)", mae->dec.pos, pos, L1 * mae->dec.dim, TOL_POS);
    free(pos);
}

/* NCHW doubles -> NHWC floats. */
static float *load_images(hid_t file, const ModelConfig *m, int N)
{
    size_t C = (size_t)m->in_chans, H = (size_t)m->img_size, n = (size_t)N * C * H * H;
    double *x = require_doubles(file, "/images", n);
    float *img = malloc(n * sizeof(float));
    for (size_t b = 0; b < (size_t)N; b++)
        for (size_t c = 0; c < C; c++)
            for (size_t i = 0; i < H * H; i++)
                img[(b * H * H + i) * C + c] = (float)x[(b * C + c) * H * H + i];
    free(x);
    return img;
}

static int32_t *load_ids(hid_t file, size_t N, size_t L)
{
    double *x = require_doubles(file, "/ids_shuffle", N * L);
    int32_t *ids = malloc(N * L * sizeof(int32_t));
    for (size_t i = 0; i < N * L; i++)
        ids[i] = (int32_t)x[i];
    free(x);
    return ids;
}

/* Forward outputs and gradients of one pass. */
static void check_one_pass(hid_t file, Mae *mae, MaeActs *acts, const float *img, const int32_t *ids, size_t N)
{
    const size_t L = mae->num_patches, P = mae->patch_dim, D = mae->enc.dim;
    memset(mae->grads, 0, mae->table.padded * sizeof(float));
    double loss = mae_forward_backward(mae, acts, img, ids, N, 1.0f, NULL);
    double *want = require_doubles(file, "/loss", 1);
    printf("loss: maec %.9f  reference %.9f\n", loss, want[0]);
    report("loss", fabs(loss - want[0]) / fabs(want[0]), TOL_LOSS);
    free(want);
    want = require_doubles(file, "/latent", N * (1 + mae->keep) * D);
    compare_tensor("latent (encoder output)", acts->enc.stack.out, want, N * (1 + mae->keep) * D, TOL_ACTIVATION);
    free(want);
    want = require_doubles(file, "/pred", N * L * P);
    float *pred = malloc(N * L * P * sizeof(float));
    for (size_t b = 0; b < N; b++) /* drop the CLS row, as the reference */
        memcpy(pred + b * L * P, acts->dec.pred + (b * (1 + L) + 1) * P, L * P * sizeof(float));
    compare_tensor("pred (decoder output)", pred, want, N * L * P, TOL_ACTIVATION);
    free(pred);
    free(want);
    compare_group(file, "grads", mae, mae->grads, TOL_GRAD);
}

static void check_training(hid_t file, Mae *mae, MaeActs *acts, const float *img, const int32_t *ids, size_t N)
{
    hid_t g = H5Gopen2(file, "/optim", H5P_DEFAULT);
    if (g < 0)
        fixture_error("group /optim is missing");
    AdamWConfig opt = {read_attr_double(g, "beta1"), read_attr_double(g, "beta2"), read_attr_double(g, "eps"),
                       read_attr_double(g, "weight_decay")};
    LrSchedule sched = {read_attr_double(g, "lr"), read_attr_double(g, "min_lr"),
                        read_attr_double(g, "warmup_steps"), read_attr_double(g, "total_steps")};
    int steps = read_attr_int(g, "steps");
    H5Gclose(g);
    double *lrs = require_doubles(file, "/lr", (size_t)steps), *losses = require_doubles(file, "/losses", (size_t)steps);
    float *m = xalloc_aligned(mae->table.padded * sizeof(float), "m"), *v = xalloc_aligned(mae->table.padded * sizeof(float), "v");
    double lr_err = 0, loss_err = 0;
    for (int s = 0; s < steps; s++) {
        memset(mae->grads, 0, mae->table.padded * sizeof(float));
        double loss = mae_forward_backward(mae, acts, img, ids, N, 1.0f, NULL);
        double lr = lr_at(&sched, s);
        lr_err = fmax(lr_err, fabs(lr - lrs[s]) / fmax(fabs(lrs[s]), 1e-30));
        loss_err = fmax(loss_err, fabs(loss - losses[s]) / fabs(losses[s]));
        if (!g_quiet)
            printf("step %d: lr %.6e (ref %.6e)  loss %.9f (ref %.9f)\n", s, lr, lrs[s], loss, losses[s]);
        adamw_update(mae->params, mae->grads, m, v, 0, mae->table.padded, &mae->table, &opt, lr, s + 1);
    }
    report("learning rates of the schedule", lr_err, 1e-12);
    report("loss at every step", loss_err, TOL_LOSS);
    compare_group(file, "params_after", mae, mae->params, TOL_PARAM);
    free(m);
    free(v);
    free(lrs);
    free(losses);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: parity_check FIXTURE.h5 [--quiet]\n"
                        "Checks maec's MAE against a PyTorch fixture (format: docs/parity.md).\n");
        return 2;
    }
    g_path = argv[1];
    g_quiet = argc > 2 && !strcmp(argv[2], "--quiet");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t file = H5Fopen(g_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        fixture_error("cannot open as HDF5");
    char format[128], description[512];
    read_attr_string(file, "format", format, sizeof format);
    if (strcmp(format, "maec-parity-fixture") || read_attr_int(file, "version") != 1)
        fixture_error("not a maec parity fixture of version 1 (root attributes 'format', 'version')");
    read_attr_string(file, "description", description, sizeof description);
    MaeConfig cfg;
    int N = 0;
    load_config(file, &cfg, &N);
    Mae mae;
    MaecError err;
    if (mae_init(&mae, &cfg, 1, &err)) {
        fprintf(stderr, "parity_check: %s: the fixture's config is invalid for maec: %s\n", g_path, err.msg);
        return 2;
    }
    printf("fixture %s: %s\n", g_path, description);
    printf("model: img %d patch %d chans %d | encoder %dx%d heads %d | decoder %dx%d heads %d | norm_pix %d mask %.2f | batch %d | %zu parameters\n",
           cfg.model.img_size, cfg.model.patch_size, cfg.model.in_chans, cfg.model.embed_dim, cfg.model.depth,
           cfg.model.num_heads, cfg.model.decoder_embed_dim, cfg.model.decoder_depth, cfg.model.decoder_num_heads,
           cfg.norm_pix_loss, cfg.mask_ratio, N, mae.table.numel);
    check_names(file, &mae);
    load_params(file, &mae, mae.params);
    compare_position_tables(file, &mae);
    float *img = load_images(file, &cfg.model, N);
    int32_t *ids = load_ids(file, (size_t)N, mae.num_patches);
    MaeActs acts;
    mae_acts_init(&acts, &mae, (size_t)N);
    check_one_pass(file, &mae, &acts, img, ids, (size_t)N);
    check_training(file, &mae, &acts, img, ids, (size_t)N);
    mae_acts_free(&acts);
    free(img);
    free(ids);
    mae_free(&mae);
    H5Fclose(file);
    return test_summary("parity_check");
}
