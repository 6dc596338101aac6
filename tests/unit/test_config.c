/* Job configuration: defaults, every shipped job file, each class of error with its place in the
 * text, --set overrides, presets in any order, the round trip through config_to_yaml, and the
 * objective section read by the objective named in it (job.h). */
#include "../testing.h"

#include "maec/config.h"
#include "maec/job.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static int load(const char *yaml, JobConfig *cfg, MaecError *err)
{
    return config_load_string(yaml, "job.yaml", cfg, err);
}

/* Loading the job (validation included) fails with exactly want. */
static void check_error(const char *yaml, const char *want)
{
    Job job;
    MaecError err = {{0}};
    int rc = job_load_string(&job, yaml, "job.yaml", NULL, 0, &err);
    CHECK(rc == -1, "accepted:\n%s", yaml);
    CHECK(rc == -1 && !strcmp(err.msg, want), "for:\n%s\n  got:  %s\n  want: %s", yaml, err.msg, want);
    if (rc == 0)
        job_free(&job);
}

static void check_set_error(const char *assignment, const char *want)
{
    JobConfig cfg, before;
    MaecError err = {{0}};
    config_defaults(&cfg);
    before = cfg;
    CHECK(config_set(&cfg, assignment, &err) == -1, "accepted --set %s", assignment);
    CHECK(!strcmp(err.msg, want), "--set %s\n  got:  %s\n  want: %s", assignment, err.msg, want);
    CHECK(config_equal(&cfg, &before), "a failed --set %s changed the configuration", assignment);
    config_free(&cfg);
}

static void test_defaults(void)
{
    JobConfig cfg;
    MaecError err = {{0}};
    config_defaults(&cfg);
    CHECK(config_validate(&cfg, &err) == -1 && strstr(err.msg, "missing required key 'data.train'"),
          "defaults without data.train: %s", err.msg);
    CHECK(config_set(&cfg, "data.train=data/smoke.h5", &err) == 0, "%s", err.msg);
    CHECK(config_validate(&cfg, &err) == 0, "defaults with data.train: %s", err.msg);
    ModelConfig tiny;
    vit_preset("vit-tiny", &tiny, &err);
    CHECK(!memcmp(&cfg.model, &tiny, sizeof tiny), "default model is not vit-tiny");
    CHECK(cfg.optim.blr == 1.5e-4 && cfg.optim.weight_decay == 0.05 && cfg.optim.beta1 == 0.9 &&
              cfg.optim.beta2 == 0.95 && cfg.optim.min_lr == 0 && cfg.optim.warmup_epochs == 40,
          "optimizer defaults are not the MAE paper's");
    CHECK(cfg.masking.ratio == 0.75 && cfg.masking.kind == 0 && cfg.masking.weights == MASK_WEIGHTS_NONE,
          "MAE's mask by default");
    config_free(&cfg);
    Job job;
    CHECK(job_load_string(&job, "data: {train: x.h5}\n", "job.yaml", NULL, 0, &err) == 0, "%s", err.msg);
    CHECK(!strcmp(job.cls->name, objective_names[0]) && keytable_given(job.options, job.cls->keys, "objective.name") == 0,
          "the default objective is the registry's first");
    job_free(&job);
}

static int is_yaml(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && !strcmp(name + n - 5, ".yaml");
}

/* The full example is where users look up how a key is written: it must show them all. */
static void check_every_key_given(const void *target, const KeyTable *keys, const char *path)
{
    for (size_t i = 0; i < keys->count; i++)
        CHECK(keys->keys[i].type == KEY_SECTION || keytable_given(target, keys, keys->keys[i].path),
              "%s does not show %s", path, keys->keys[i].path);
}

static void test_shipped_jobs(void)
{
    const char *root = getenv("MAEC_SOURCE_ROOT");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/jobs", root ? root : ".");
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot open %s (set MAEC_SOURCE_ROOT)", dir);
    int jobs = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!is_yaml(e->d_name))
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        Job job;
        MaecError err = {{0}};
        if (job_load(&job, path, NULL, 0, &err)) {
            CHECK(false, "%s", err.msg);
            continue;
        }
        const JobConfig *cfg = &job.cfg;
        if (!strcmp(e->d_name, "example-full.yaml")) {
            check_every_key_given(cfg, config_keys(), path);
            check_every_key_given(job.options, job.cls->keys, path);
        }
        if (!strncmp(e->d_name, "smoke", 5))
            CHECK(cfg->model.img_size == 32 && cfg->model.depth <= 2 && cfg->optim.steps > 0 &&
                      cfg->optim.steps <= 100, "%s is no longer a smoke test", path);
        job_free(&job);
        jobs++;
    }
    if (d)
        closedir(d);
    CHECK(jobs >= 2, "found %d job files in %s", jobs, dir);
}

static void test_errors(void)
{
    check_error("optim:\n  blrr: 1e-3\n", "job.yaml:2:3: unknown key 'optim.blrr'; did you mean 'optim.blr'?");
    check_error("data:\n  crop_scale: [0.5, 1]\n",
                "job.yaml:2:3: unknown key 'data.crop_scale'; did you mean 'data.augment.crop_scale'?");
    check_error("optim:\n  epochs: ten\n", "job.yaml:2:11: optim.epochs: expected a number, got 'ten'");
    check_error("optim:\n  steps: 1.5\n", "job.yaml:2:10: optim.steps: expected an integer, got '1.5'");
    check_error("objective:\n  norm_pix_loss: yes\n",
                "job.yaml:2:18: objective.norm_pix_loss: expected true or false, got 'yes'");
    check_error("masking:\n  ratio: 1.5\n", "job.yaml:2:10: masking.ratio = 1.5 is out of range (0, 1)");
    check_error("dist:\n  mode: zero3\n",
                "job.yaml:2:9: dist.mode: expected one of allreduce, zero1, zero2, got 'zero3'; did you mean "
                "'zero1'?");
    check_error("optim:\n  blr: [1e-3\n", "job.yaml:3:1: invalid YAML: did not find expected ',' or ']', "
                                         "while parsing a flow sequence at 2:8");
    check_error("seed: 1\nseed: 2\n", "job.yaml:2:1: duplicate key 'seed' (first given at 1:1)");
    check_error("optim.blr: 1e-3\noptim:\n  blr: 2e-3\n",
                "job.yaml:3:3: duplicate key 'optim.blr' (first given at 1:1)");
    check_error("model:\n  num_heads: 5\n", "job.yaml:2:14: model.num_heads = 5 must divide model.embed_dim = "
                                            "192 into equal heads (model.preset is vit-tiny)");
    check_error("data:\n  train: x.h5\nmasking:\n  ratio: 0.999\n",
                "job.yaml:4:10: masking.ratio = 0.999 leaves no patch visible: the model has 196 patches "
                "(model.img_size 224 / model.patch_size 16, squared) and keeps int(196 * (1 - ratio)) of them; "
                "lower the ratio or use smaller patches");
    check_error("seed: 0\n", "missing required key 'data.train' (The training data: an HDF5 dataset file, a "
                             "glob such as `data/nct-*.h5`, or a comma-separated list of shards. Required); "
                             "give it in the job file or with --set data.train=...");
    char names[512] = "", want[1024];
    for (int i = 0; objective_names[i]; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", objective_names[i]);
    snprintf(want, sizeof want, "job.yaml:2:9: objective.name: expected one of %s, got 'mea'; did you mean 'mae'?",
             names);
    check_error("objective:\n  name: mea\n", want);
    check_error("objective:\n  name: mae\n  cls_loss_ratio: 0.1\n", "job.yaml:3:3: unknown key "
                "'objective.cls_loss_ratio'; the keys of objective mae are: norm_pix_loss");
    check_set_error("optim.blrr=1", "--set optim.blrr=1: unknown key 'optim.blrr'; did you mean 'optim.blr'?");
    check_set_error("optim.blr=abc", "--set optim.blr=abc: optim.blr: expected a number, got 'abc'");
    check_set_error("optim.blr", "--set optim.blr: expected KEY=VALUE, e.g. --set optim.blr=1e-3");
    check_set_error("model={depth: 2, dpeth: 3}",
                    "--set model={depth: 2, dpeth: 3}: unknown key 'model.dpeth'; did you mean 'model.depth'?");
}

static void test_set(void)
{
    JobConfig cfg;
    MaecError err = {{0}};
    CHECK(load("model:\n  depth: 5\n  preset: vit-small\ndata:\n  train: a.h5\n", &cfg, &err) == 0, "%s",
          err.msg);
    CHECK(cfg.model.depth == 5 && cfg.model.embed_dim == 384, "a preset written after depth overrode it");
    const char *sets[] = {"optim.blr=1e-3", "data.augment.crop_scale=[0.3, 0.9]", "model={num_heads: 8}",
                          "model.preset=vit-base", "data.train=data/nct-?.h5"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        CHECK(config_set(&cfg, sets[i], &err) == 0, "--set %s: %s", sets[i], err.msg);
    CHECK(cfg.optim.blr == 1e-3, "optim.blr = %g", cfg.optim.blr);
    CHECK(cfg.data.augment.crop_scale.n == 2 && cfg.data.augment.crop_scale.v[0] == 0.3, "crop_scale");
    CHECK(cfg.model.embed_dim == 768 && cfg.model.depth == 5 && cfg.model.num_heads == 8,
          "--set model.preset=vit-base must keep the given depth and heads: %d %d %d", cfg.model.embed_dim,
          cfg.model.depth, cfg.model.num_heads);
    CHECK(!strcmp(cfg.data.train, "data/nct-?.h5"), "data.train = %s", cfg.data.train);
    CHECK(config_set(&cfg, "model.num_heads=7", &err) == 0 && config_validate(&cfg, &err) == -1 &&
              !strncmp(err.msg, "--set model.num_heads=7: model.num_heads = 7", 44),
          "a rule across keys names the --set that broke it: %s", err.msg);
    config_free(&cfg);
}

static void test_round_trip(void)
{
    JobConfig cfg, back;
    MaecError err = {{0}};
    const char *sets[] = {"data.train=runs/\"quoted\" \\ path:#x.h5", "data.normalize=custom",
                          "data.mean=[0.1, 0.2, 0.30000000000000004]", "data.std=[0.25, 0.5, 1]",
                          "optim.blr=1.2345678901234567e-4", "optim.epochs=100.1", "model.mlp_ratio=2.5",
                          "dist.mode=zero2", "data.augment.rot90=true"};
    config_defaults(&cfg);
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        CHECK(config_set(&cfg, sets[i], &err) == 0, "--set %s: %s", sets[i], err.msg);
    CHECK(config_validate(&cfg, &err) == 0, "%s", err.msg);
    char *yaml = config_to_yaml(&cfg);
    CHECK(load(yaml, &back, &err) == 0, "the resolved YAML does not load: %s\n%s", err.msg, yaml);
    CHECK(config_equal(&cfg, &back), "round trip changed the configuration:\n%s", yaml);
    char *again = config_to_yaml(&back);
    CHECK(!strcmp(yaml, again), "the YAML of the reloaded configuration differs");
    back.optim.eps *= 2;
    CHECK(!config_equal(&cfg, &back), "config_equal missed a changed optim.eps");
    free(yaml);
    free(again);
    config_free(&cfg);
    config_free(&back);
}

/* Objective keys from the file and --set, the selector first whatever the order; the stored
 * text of a run from before objectives had sections reads the same; the resolved text round trips. */
static void test_objective_section(void)
{
    Job job, back;
    MaecError err = {{0}};
    char *sets[] = {"objective.norm_pix_loss=false", "objective.name=mae", "optim.blr=2e-4"};
    CHECK(job_load_string(&job, "data: {train: a.h5}\nobjective: {name: mae}\n", "job.yaml", sets, 3, &err) == 0,
          "%s", err.msg);
    char *yaml = job_to_yaml(&job);
    CHECK(strstr(yaml, "objective:\n  name: mae\n  norm_pix_loss: false\n") && job.cfg.optim.blr == 2e-4,
          "the overrides did not land:\n%s", yaml);
    CHECK(job_load_string(&back, yaml, "stored", NULL, 0, &err) == 0, "%s", err.msg);
    CHECK(job_same_training(&job, &back) && config_equal(&job.cfg, &back.cfg), "round trip changed the job");
    char *again = job_to_yaml(&back);
    CHECK(!strcmp(yaml, again), "the YAML of the reloaded job differs");
    free(again);
    job_free(&back);
    CHECK(job_load_string(&back, "data: {train: a.h5}\nobjective: {name: mae, norm_pix_loss: true}\n", "stored",
                          NULL, 0, &err) == 0 && !job_same_training(&job, &back),
          "job_same_training missed a changed objective key");
    job_free(&back);
    const char *before = "seed: 0\nmodel:\n  preset: vit-tiny\nobjective:\n  name: mae\n  norm_pix_loss: false\n"
                         "masking:\n  kind: random\n  ratio: 0.75\ndata:\n  train: a.h5\n";
    CHECK(job_load_string(&back, before, "old", NULL, 0, &err) == 0, "a configuration of maec 0.x: %s", err.msg);
    CHECK(job_same_training(&job, &back), "a configuration of maec 0.x reads differently");
    job_free(&back);
    char *bad[] = {"objective.cls_loss_ratio=1"};
    CHECK(job_load_string(&back, "data: {train: a.h5}\n", "job.yaml", bad, 1, &err) == -1 &&
              strstr(err.msg, "--set objective.cls_loss_ratio=1: unknown key 'objective.cls_loss_ratio'"),
          "an objective key of another objective: %s", err.msg);
    free(yaml);
    job_free(&job);
}

int main(void)
{
    test_defaults();
    test_shipped_jobs();
    test_errors();
    test_set();
    test_round_trip();
    test_objective_section();
    return test_summary("test_config");
}
