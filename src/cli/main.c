/* maec: masked-autoencoder pretraining for CPU clusters. git-style subcommands. */
#include "maec/cli.h"
#include "maec/dist.h"

#include "maec_version.h"

#include <stdio.h>
#include <string.h>

const CliCommand cli_commands[] = {
    {"prep", "convert tiles, slides, IDX or synthetic images into a dataset", cli_prep, true},
    {"inspect", "describe dataset files", cli_inspect, false},
    {"objectives", "list the objectives a job can train (objective.name)", cli_objectives, false},
    {"train", "pretrain a ViT with one of the objectives (under mpiexec or srun for several ranks)", cli_train, true},
    {"embed", "features of a pretrained encoder for every image of a dataset", cli_embed, true},
    {"eval", "kNN or linear-probe evaluation of feature files, metrics as a table and JSON", cli_eval, false},
    {"recon", "draw a pretrained model's reconstructions of masked dataset images (PNG)", cli_recon, false},
    {"plot", "draw the loss and learning rate of training runs from their metrics files (SVG)", cli_plot, false},
    {0},
};

static void print_usage(FILE *out)
{
    fprintf(out, "usage: maec COMMAND [OPTIONS]\n\n"
                 "Masked-autoencoder pretraining for CPU clusters (MPI + OpenBLAS + HDF5).\n\n"
                 "Commands:\n");
    for (const CliCommand *c = cli_commands; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    fprintf(out, "\nRun 'maec COMMAND --help' for the options of a command.\n"
                 "Under MPI: mpiexec -n N maec COMMAND ... (or srun --mpi=pmix under Slurm).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("maec %s\n", MAEC_VERSION);
        return 0;
    }
    for (const CliCommand *c = cli_commands; c->name; c++) {
        if (strcmp(argv[1], c->name) != 0)
            continue;
        if (c->uses_mpi)
            dist_init(&argc, &argv);
        int rc = c->run(argc - 1, argv + 1);
        if (c->uses_mpi)
            dist_finalize();
        return rc;
    }
    fprintf(stderr, "maec: '%s' is not a command.\n\n", argv[1]);
    print_usage(stderr);
    return 2;
}
