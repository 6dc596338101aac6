/* Latency and bandwidth of the gradient collectives, for the step-time model of docs/scaling.md.
 *
 *   mpiexec -n R bench_comm [--max-floats N]      (default 2^23 floats = 32 MiB)
 *
 * For message sizes from one float to N floats (powers of 4), the median time of
 * MPI_Allreduce (in place, sum: the plain data-parallel gradient sync) and of
 * MPI_Reduce_scatter_block (ZeRO's gradient sync), each call after a barrier so that ranks start
 * together. Printed per size: microseconds and the bus bandwidth, bytes * 2 (R - 1) / R / time
 * for the all-reduce and bytes * (R - 1) / R / time for the reduce-scatter (the traffic each
 * rank's link carries in a ring; comparable across R). The last line is one key=value record:
 * the latency (time at one float) and the bus bandwidth at the largest size. Numbers only. */
#include "maec/alloc.h"
#include "maec/dist.h"
#include "maec/error.h"
#include "maec/timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_ALLREDUCE, OP_REDUCE_SCATTER, OPS };
static const char *const op_names[OPS] = {"allreduce", "reduce_scatter"};

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One collective on n floats (n a multiple of the world size for the reduce-scatter). */
static void run_op(int op, float *buf, float *out, size_t n)
{
    int world = dist_size();
    if (op == OP_ALLREDUCE)
        dist_check(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, dist_comm()), "MPI_Allreduce");
    else
        dist_check(MPI_Reduce_scatter_block(buf, out, (int)(n / (size_t)world), MPI_FLOAT, MPI_SUM, dist_comm()),
                   "MPI_Reduce_scatter_block");
}

/* Median seconds of one call, the slowest rank's time for each repetition. */
static double time_op(int op, float *buf, float *out, size_t n)
{
    enum { MAX_REPS = 50 };
    double t[MAX_REPS];
    int reps = n >= (1u << 22) ? 5 : n >= (1u << 18) ? 15 : MAX_REPS;
    run_op(op, buf, out, n); /* warm-up: connections, registration */
    for (int r = 0; r < reps; r++) {
        dist_barrier();
        double t0 = now_seconds();
        run_op(op, buf, out, n);
        t[r] = now_seconds() - t0;
        dist_allreduce_max_double(&t[r], 1);
    }
    qsort(t, (size_t)reps, sizeof t[0], compare_double);
    return t[reps / 2];
}

static double bus_bytes(int op, size_t n, int world)
{
    double bytes = (double)n * sizeof(float), share = (double)(world - 1) / world;
    return op == OP_ALLREDUCE ? 2 * share * bytes : share * bytes;
}

int main(int argc, char **argv)
{
    dist_init(&argc, &argv);
    size_t max_floats = 1u << 23;
    if (argc == 3 && !strcmp(argv[1], "--max-floats"))
        max_floats = (size_t)atol(argv[2]);
    else if (argc != 1)
        fatal("usage: mpiexec -n R bench_comm [--max-floats N]");
    int world = dist_size();
    float *buf = xcalloc(max_floats + (size_t)world, sizeof(float), "buffer");
    float *out = xcalloc(max_floats / (size_t)world + 1, sizeof(float), "shard");
    double latency[OPS] = {0}, bandwidth[OPS] = {0};
    if (dist_rank() == 0)
        printf("bench_comm: %d ranks; per size: microseconds, bus GB/s\n%12s %24s %24s\n", world, "floats",
               op_names[0], op_names[1]);
    for (size_t n = (size_t)world; n <= max_floats; n *= 4) {
        double us[OPS], gbs[OPS];
        for (int op = 0; op < OPS; op++) {
            double s = time_op(op, buf, out, n);
            us[op] = 1e6 * s, gbs[op] = bus_bytes(op, n, world) / s / 1e9;
            if (n == (size_t)world)
                latency[op] = us[op];
            bandwidth[op] = gbs[op];
        }
        if (dist_rank() == 0)
            printf("%12zu %12.1f us %6.2f GB/s %12.1f us %6.2f GB/s\n", n, us[0], gbs[0], us[1], gbs[1]);
    }
    if (dist_rank() == 0)
        printf("RESULT ranks=%d allreduce_latency_us=%.1f allreduce_busbw_gbs=%.2f reduce_scatter_latency_us=%.1f "
               "reduce_scatter_busbw_gbs=%.2f\n", world, latency[0], bandwidth[0], latency[1], bandwidth[1]);
    free(buf), free(out);
    dist_finalize();
    return 0;
}
