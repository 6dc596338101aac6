/* A minimal test harness: CHECK records a failure with file:line and a message and keeps going;
 * test_summary() prints the count and gives the exit code (non-zero on any failure). */
#ifndef MAEC_TESTING_H
#define MAEC_TESTING_H

#include <math.h>
#include <stddef.h>
#include <stdio.h>

static int test_checks_run = 0;
static int test_checks_failed = 0;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        test_checks_run++;                                                                \
        if (!(cond)) {                                                                    \
            test_checks_failed++;                                                         \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
        }                                                                                 \
    } while (0)

/* ||got - want|| / max(||want||, tiny) in double. */
static inline double test_rel_error(const float *got, const double *want, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d;
        den += want[i] * want[i];
    }
    return sqrt(num) / (den > 1e-300 ? sqrt(den) : 1e-150);
}

static inline int test_summary(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, test_checks_run, test_checks_failed);
    return test_checks_failed ? 1 : 0;
}

#endif
