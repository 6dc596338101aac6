/* Errors for people: every message says what went wrong, where, and what to do.
 *
 * Two kinds:
 *  - MaecError: a recoverable failure (bad input file, bad config value). The function that
 *    detects it fills the message and returns -1; the caller decides (skip, report, abort).
 *  - fatal(): an unrecoverable one. Prints "maec: error: ..." (with the rank under MPI) and ends
 *    the job through the installed handler, which under MPI is MPI_Abort so no rank hangs.
 */
#ifndef MAEC_ERROR_H
#define MAEC_ERROR_H

#include <stddef.h>

typedef struct MaecError {
    char msg[2048];
} MaecError;

/* Formats the message into err (if err is not NULL) and returns -1, so failure paths read
 * `return error_set(err, "...", ...);`. */
int error_set(MaecError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends context to an existing message: "context: previous message". Returns -1. */
int error_prefix(MaecError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The handler that ends the job after a fatal message; default: exit(code).
 * The dist layer installs one that calls MPI_Abort when more than one rank runs. */
typedef void (*FatalHandler)(int exit_code);
void fatal_set_handler(FatalHandler handler);

/* Rank identity used to prefix messages ("[rank 3] ") when size > 1. */
void error_set_rank(int rank, int size);
int error_rank(void);
int error_world_size(void);

#endif
