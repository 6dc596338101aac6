#include "maec/dist.h"

#include "maec/error.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static bool g_initialized = false;
static int g_rank = 0, g_size = 1;

static void abort_job(int exit_code)
{
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (g_initialized && !finalized && g_size > 1)
        MPI_Abort(MPI_COMM_WORLD, exit_code);
}

void dist_check(int mpi_rc, const char *call)
{
    if (mpi_rc == MPI_SUCCESS)
        return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(mpi_rc, text, &len);
    fatal("%s failed: %s (is every rank running the same command?)", call, text);
}

void dist_init(int *argc, char ***argv)
{
    int provided = 0;
    dist_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    g_initialized = true;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    error_set_rank(g_rank, g_size);
    fatal_set_handler(abort_job);
}

void dist_finalize(void)
{
    if (!g_initialized)
        return;
    MPI_Finalize();
    g_initialized = false;
}

int dist_local_size(void)
{
    if (g_size == 1)
        return 1;
    MPI_Comm node;
    int n = 1;
    dist_check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node),
               "MPI_Comm_split_type");
    MPI_Comm_size(node, &n);
    MPI_Comm_free(&node);
    return n;
}

bool dist_initialized(void) { return g_initialized; }
int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
MPI_Comm dist_comm(void) { return MPI_COMM_WORLD; }

void dist_barrier(void)
{
    if (g_size > 1)
        dist_check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

/* MPI counts are int: large buffers go in pieces. */
#define MAX_PIECE ((size_t)1 << 30)

void dist_bcast(void *buf, size_t bytes, int root)
{
    if (g_size == 1)
        return;
    for (size_t off = 0; off < bytes; off += MAX_PIECE) {
        size_t n = bytes - off < MAX_PIECE ? bytes - off : MAX_PIECE;
        dist_check(MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
}

static void allreduce(void *buf, size_t n, size_t elem, MPI_Datatype type, MPI_Op op)
{
    if (g_size == 1)
        return;
    for (size_t off = 0; off < n; off += MAX_PIECE / elem) {
        size_t m = n - off < MAX_PIECE / elem ? n - off : MAX_PIECE / elem;
        dist_check(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, (int)m, type, op, MPI_COMM_WORLD),
                   "MPI_Allreduce");
    }
}

void dist_allreduce_sum_float(float *buf, size_t n) { allreduce(buf, n, sizeof(float), MPI_FLOAT, MPI_SUM); }
void dist_allreduce_sum_double(double *buf, size_t n) { allreduce(buf, n, sizeof(double), MPI_DOUBLE, MPI_SUM); }
void dist_allreduce_sum_long(long long *buf, size_t n) { allreduce(buf, n, sizeof(long long), MPI_LONG_LONG, MPI_SUM); }
void dist_allreduce_max_double(double *buf, size_t n) { allreduce(buf, n, sizeof(double), MPI_DOUBLE, MPI_MAX); }

void dist_allgather(const void *send, void *recv, size_t bytes)
{
    if (g_size == 1) {
        memmove(recv, send, bytes);
        return;
    }
    if (bytes > INT_MAX)
        fatal("internal: dist_allgather of %zu bytes per rank exceeds MPI's int count", bytes);
    dist_check(MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, MPI_COMM_WORLD),
               "MPI_Allgather");
}

/* Byte counts for MPI's int arguments; the caller names what it gathers in the message. */
static int int_count(size_t bytes, const char *what)
{
    if (bytes > INT_MAX)
        fatal("%s: %zu bytes in one MPI message exceed MPI's int count; use more ranks", what, bytes);
    return (int)bytes;
}

void dist_gather_rows(const void *send, size_t rows, size_t row_bytes, void *recv, int root)
{
    if (g_size == 1) {
        memmove(recv, send, rows * row_bytes);
        return;
    }
    int mine = int_count(rows * row_bytes, "dist_gather_rows"), *counts = NULL, *offsets = NULL;
    if (g_rank == root) {
        counts = calloc((size_t)g_size, sizeof(int)), offsets = calloc((size_t)g_size, sizeof(int));
        if (!counts || !offsets)
            fatal("out of memory for %d gather counts", g_size);
    }
    dist_check(MPI_Gather(&mine, 1, MPI_INT, counts, 1, MPI_INT, root, MPI_COMM_WORLD), "MPI_Gather");
    size_t total = 0;
    for (int r = 0; g_rank == root && r < g_size; r++) {
        offsets[r] = int_count(total, "dist_gather_rows");
        total += (size_t)counts[r];
    }
    dist_check(MPI_Gatherv(send, mine, MPI_BYTE, recv, counts, offsets, MPI_BYTE, root, MPI_COMM_WORLD),
               "MPI_Gatherv");
    free(counts), free(offsets);
}

bool dist_any(bool flag)
{
    int v = flag ? 1 : 0;
    if (g_size > 1)
        dist_check(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD), "MPI_Allreduce");
    return v != 0;
}
