#ifndef MAEC_TIMER_H
#define MAEC_TIMER_H

/* Monotonic wall time in seconds. */
double now_seconds(void);
/* Peak resident set size of this process in bytes (from getrusage). */
long long peak_rss_bytes(void);

#endif
