#include "maec/cli.h"

#include "maec/dist.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "maec %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'maec %s --help'.\n", cmd);
    return 2;
}

long cli_parse_long(const char *cmd, const char *option, const char *value, long min, long max)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end != '\0')
        exit(cli_usage_error(cmd, "%s: '%s' is not an integer", option, value));
    if (v < min || v > max)
        exit(cli_usage_error(cmd, "%s: %ld is out of range [%ld, %ld]", option, v, min, max));
    return v;
}

double cli_parse_double(const char *cmd, const char *option, const char *value, double min, double max)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end != '\0')
        exit(cli_usage_error(cmd, "%s: '%s' is not a number", option, value));
    if (!(v >= min && v <= max))
        exit(cli_usage_error(cmd, "%s: %g is out of range [%g, %g]", option, v, min, max));
    return v;
}

const char *cli_option_name(const struct option *options, int code)
{
    for (const struct option *o = options; o->name; o++)
        if (o->val == code)
            return o->name;
    return "?";
}

bool cli_failed_anywhere(const char *cmd, int rc, const MaecError *err)
{
    bool failed = rc != 0;
    bool root_failed = dist_any(dist_rank() == 0 && failed);
    if (failed && (dist_rank() == 0 || !root_failed)) {
        char where[48] = "";
        if (dist_size() > 1)
            snprintf(where, sizeof where, " (rank %d of %d)", dist_rank(), dist_size());
        fprintf(stderr, "maec %s: error%s: %s\n", cmd, where, err->msg);
    }
    return dist_any(failed);
}
