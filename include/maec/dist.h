/* The communicator: rank identity and the collectives maec uses. One process without mpiexec
 * is a world of size 1 (MPI singleton), and every collective is then a no-op or a copy, so call
 * sites never test for MPI. A fatal() on any rank ends the whole job through MPI_Abort. */
#ifndef MAEC_DIST_H
#define MAEC_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include <mpi.h>

/* MPI_Init_thread (funneled: only the main thread calls MPI), rank-prefixed messages and the
 * MPI_Abort fatal handler. */
void dist_init(int *argc, char ***argv);
void dist_finalize(void);
bool dist_initialized(void);

int dist_rank(void);
int dist_size(void);
/* Ranks on this node (sharing memory with this one), this one included. Collective. */
int dist_local_size(void);
MPI_Comm dist_comm(void);

void dist_barrier(void);
void dist_bcast(void *buf, size_t bytes, int root);
void dist_allreduce_sum_float(float *buf, size_t n);
void dist_allreduce_sum_double(double *buf, size_t n);
void dist_allreduce_sum_long(long long *buf, size_t n);
void dist_allreduce_max_double(double *buf, size_t n);
/* recv[size * bytes] = concatenation of every rank's send[bytes], in rank order. */
void dist_allgather(const void *send, void *recv, size_t bytes);

/* recv (on root only) = every rank's rows [rows, row_bytes], in rank order; ranks may send
 * different row counts. */
void dist_gather_rows(const void *send, size_t rows, size_t row_bytes, void *recv, int root);
/* True on every rank if flag is true on any rank: lets ranks agree to fail together. */
bool dist_any(bool flag);

/* Checks an MPI return code; on failure, fatal() with the MPI error string and the call. */
void dist_check(int mpi_rc, const char *call);

#endif
