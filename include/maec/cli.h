/* Subcommands of the maec binary and the argument helpers they share. Each command returns the
 * process exit code (0 only on success) and prints its own --help. */
#ifndef MAEC_CLI_H
#define MAEC_CLI_H

#include "maec/error.h"

#include <stdbool.h>

typedef struct CliCommand {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    bool uses_mpi;                     /* MPI is initialised before run() */
} CliCommand;

/* The table main() dispatches on, terminated by a zeroed entry. */
extern const CliCommand cli_commands[];

/* The commands (src/cli/NAME.c). */
int cli_prep(int argc, char **argv);
int cli_inspect(int argc, char **argv);
int cli_objectives(int argc, char **argv);
int cli_train(int argc, char **argv);
int cli_embed(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_eval_finetune(int argc, char **argv); /* maec eval finetune */
int cli_recon(int argc, char **argv);
int cli_plot(int argc, char **argv);

/* Ranks fail together: every rank checks the same inputs, but file systems may disagree, so one
 * failing rank makes all return true. Rank 0 prints "maec CMD: error: MSG", or the failing ranks
 * when rank 0 did not fail. Collective. */
bool cli_failed_anywhere(const char *cmd, int rc, const MaecError *err);

/* Value parsers for options: on bad input they print "maec CMD: OPTION: ..." and exit 2. */
long cli_parse_long(const char *cmd, const char *option, const char *value, long min, long max);
double cli_parse_double(const char *cmd, const char *option, const char *value, double min, double max);
struct option;
/* The long name of the option whose getopt_long code is code, in a {0}-terminated table; "?"
 * when absent. */
const char *cli_option_name(const struct option *options, int code);
/* Prints "maec CMD: message" and "Try 'maec CMD --help'." to stderr; returns 2 (usage error). */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
