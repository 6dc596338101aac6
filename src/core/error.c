#include "maec/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_rank = 0;
static int g_size = 1;
static FatalHandler g_handler = NULL;

void error_set_rank(int rank, int size)
{
    g_rank = rank;
    g_size = size;
}

int error_rank(void) { return g_rank; }
int error_world_size(void) { return g_size; }

void fatal_set_handler(FatalHandler handler) { g_handler = handler; }

int error_set(MaecError *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int error_prefix(MaecError *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    return -1;
}

_Noreturn void fatal(const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fflush(stdout);
    if (g_size > 1)
        fprintf(stderr, "maec: error: [rank %d] %s\n", g_rank, msg);
    else
        fprintf(stderr, "maec: error: %s\n", msg);
    fflush(stderr);
    if (g_handler)
        g_handler(1);
    exit(1);
}
