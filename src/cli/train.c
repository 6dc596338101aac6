/* maec train: data-parallel pretraining of the objective a job file names (train.h holds the
 * run; this file reads the command line). */
#include "maec/cli.h"
#include "maec/job.h"
#include "maec/log.h"
#include "maec/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRAIN_MAX_OVERRIDES 64
#define PATH_TEXT 4096

typedef struct TrainArgs {
    const char *job;
    char *overrides[TRAIN_MAX_OVERRIDES];
    size_t n_overrides;
    const char *resume; /* "none", "auto" or a checkpoint path */
    long stop_at;       /* 0: run to the end */
    bool quiet;
} TrainArgs;

static void print_help(void)
{
    printf("usage: [mpiexec -n N | srun] maec train JOB.yaml [--set KEY=VALUE]... [--resume auto|PATH]\n\n"
           "Pretrains a ViT with the objective the job file names (objective.name; `maec objectives`\n"
           "lists them) on the HDF5 dataset it names (data.train).\n"
           "Every rank trains a replica on its slice of each global batch; gradients are averaged\n"
           "(dist.mode allreduce) or reduce-scattered with sharded optimizer state (zero1, zero2).\n\n"
           "Options:\n"
           "  --set KEY=VALUE   override a job key, e.g. --set optim.steps=100 (repeatable)\n"
           "  --resume auto     continue from the newest complete checkpoint in checkpoint.dir\n"
           "                    (a fresh start when there is none); any rank count may resume\n"
           "  --resume PATH     continue from this checkpoint file\n"
           "  --stop-at STEP    stop after this step as if preempted: checkpoint, exit 0\n"
           "  --quiet           no progress output (errors still print)\n"
           "  --help            this text\n\n"
           "SIGTERM or SIGUSR1: the current step finishes, a checkpoint is written, exit 0.\n"
           "Keys: docs/config.md. Example: maec prep synthetic -o data/smoke.h5 &&\n"
           "  maec train jobs/smoke.yaml\n");
}

static int parse_args(int argc, char **argv, TrainArgs *a)
{
    *a = (TrainArgs){.resume = "none"};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            print_help();
            exit(0);
        } else if (!strcmp(arg, "--quiet")) {
            a->quiet = true;
        } else if (!strcmp(arg, "--set") && has_value) {
            if (a->n_overrides == TRAIN_MAX_OVERRIDES)
                return cli_usage_error("train", "at most %d --set options", TRAIN_MAX_OVERRIDES);
            a->overrides[a->n_overrides++] = argv[++i];
        } else if (!strcmp(arg, "--stop-at") && has_value) {
            a->stop_at = cli_parse_long("train", "--stop-at", argv[++i], 1, 1L << 40);
        } else if (!strcmp(arg, "--resume") && has_value) {
            a->resume = argv[++i];
        } else if (arg[0] == '-') {
            return cli_usage_error("train", "unknown option or missing value: '%s'", arg);
        } else if (a->job) {
            return cli_usage_error("train", "one job file expected, got '%s' and '%s'", a->job, arg);
        } else {
            a->job = arg;
        }
    }
    if (!a->job)
        return cli_usage_error("train", "no job file given (e.g. maec train jobs/smoke.yaml)");
    return 0;
}

int cli_train(int argc, char **argv)
{
    TrainArgs args;
    if (parse_args(argc, argv, &args))
        return 2;
    log_set_quiet(args.quiet);
    install_stop_signals();
    MaecError err = {{0}};
    Job job;
    int rc = job_load(&job, args.job, args.overrides, args.n_overrides, &err);
    if (cli_failed_anywhere("train", rc, &err)) {
        if (!rc)
            job_free(&job);
        return 2;
    }
    Trainer *t = NULL;
    rc = trainer_open(&t, &job, &(TrainOptions){args.resume, args.stop_at}, &err);
    rc = cli_failed_anywhere("train", rc, &err) ? 1 : trainer_run(t);
    trainer_close(t);
    return rc;
}
