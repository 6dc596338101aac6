#include "maec/gradsync.h"

#include "maec/dist.h"
#include "maec/error.h"

#include <limits.h>
#include <string.h>

#define MAX_BUCKETS 256

static void scale(float *x, size_t n, float s)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= s;
}

void grads_allreduce_mean(float *grads, size_t n, size_t bucket_floats)
{
    const int world = dist_size();
    if (world == 1)
        return;
    if (bucket_floats == 0 || bucket_floats > INT_MAX)
        bucket_floats = INT_MAX;
    if ((n + bucket_floats - 1) / bucket_floats > MAX_BUCKETS)
        bucket_floats = (n + MAX_BUCKETS - 1) / MAX_BUCKETS;
    MPI_Request req[MAX_BUCKETS];
    int count = 0;
    for (size_t off = 0; off < n; off += bucket_floats) {
        size_t len = n - off < bucket_floats ? n - off : bucket_floats;
        dist_check(MPI_Iallreduce(MPI_IN_PLACE, grads + off, (int)len, MPI_FLOAT, MPI_SUM, dist_comm(),
                                  &req[count++]), "MPI_Iallreduce");
    }
    dist_check(MPI_Waitall(count, req, MPI_STATUSES_IGNORE), "MPI_Waitall (gradient all-reduce)");
    scale(grads, n, 1.0f / (float)world);
}

void grads_reduce_scatter_mean(const float *grads, float *shard, size_t padded, int accumulate, float *scratch)
{
    const int world = dist_size();
    const size_t S = padded / (size_t)world;
    if (S > INT_MAX)
        fatal("a gradient shard of %zu floats exceeds MPI's int count; use more ranks", S);
    float *dst = accumulate ? scratch : shard;
    if (world == 1)
        memcpy(dst, grads, S * sizeof(float));
    else
        dist_check(MPI_Reduce_scatter_block(grads, dst, (int)S, MPI_FLOAT, MPI_SUM, dist_comm()),
                   "MPI_Reduce_scatter_block (gradients)");
    const float inv = 1.0f / (float)world;
    if (accumulate)
        for (size_t i = 0; i < S; i++)
            shard[i] += inv * scratch[i];
    else
        scale(shard, S, inv);
}

void params_allgather(float *params, size_t padded)
{
    const int world = dist_size();
    if (world == 1)
        return;
    const size_t S = padded / (size_t)world;
    dist_check(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, params, (int)S, MPI_FLOAT, dist_comm()),
               "MPI_Allgather (parameters)");
}
