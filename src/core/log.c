#include "maec/log.h"

#include "maec/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static bool g_quiet = false;

void log_set_quiet(bool quiet) { g_quiet = quiet; }

bool log_is_tty(void) { return error_rank() == 0 && isatty(fileno(stdout)); }

void log_info(const char *fmt, ...)
{
    if (g_quiet || error_rank() != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (error_world_size() > 1)
        fprintf(stderr, "maec: warning: [rank %d] ", error_rank());
    else
        fputs("maec: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}
