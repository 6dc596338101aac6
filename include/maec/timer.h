#ifndef MAEC_TIMER_H
#define MAEC_TIMER_H

/* Monotonic wall time in seconds. */
double now_seconds(void);
/* CPU time of this process (all its threads) in seconds: on a shared machine it measures the
 * work done, where wall time also counts the time other processes held the cores. */
double cpu_seconds(void);
/* Peak resident set size of this process in bytes (from getrusage). */
long long peak_rss_bytes(void);

#endif
