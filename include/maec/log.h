/* Messages for people: info goes to stdout from rank 0 only; warnings go to stderr from
 * every rank, prefixed with the rank when there are several. */
#ifndef MAEC_LOG_H
#define MAEC_LOG_H

#include <stdbool.h>

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Silences log_info (e.g. `--quiet`, or tests that check stdout). */
void log_set_quiet(bool quiet);

/* True when rank 0's stdout is a terminal: progress lines may then use '\r'. */
bool log_is_tty(void);

#endif
