/* maec objectives: what objective.name can be, one line each (the registry's order). */
#include "maec/cli.h"
#include "maec/objective.h"

#include <stdio.h>
#include <string.h>

int cli_objectives(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: maec objectives\n\n"
                   "Lists the objectives maec trains, one per line: the value of objective.name in a job file,\n"
                   "then what it learns. Their keys are in docs/config.md, their pages in docs/variants/.\n");
            return 0;
        }
        return cli_usage_error("objectives", "unexpected argument '%s'", argv[i]);
    }
    for (int i = 0; objective_names[i]; i++)
        printf("%-10s %s\n", objective_names[i], objective_class(i)->summary);
    return 0;
}
