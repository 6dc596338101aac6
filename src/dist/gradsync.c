#include "maec/gradsync.h"

#include "maec/alloc.h"
#include "maec/dist.h"
#include "maec/error.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BUCKETS 256

void gradsync_init(GradSync *s, GradSyncKind kind, float *grads, size_t padded, size_t bucket_floats,
                   float *shard, float *scratch, GradSyncNames names)
{
    memset(s, 0, sizeof *s);
    s->kind = kind, s->grads = grads, s->shard = shard, s->scratch = scratch, s->padded = padded;
    s->names = names;
    s->world = dist_size(), s->rank = dist_rank();
    size_t bucket = bucket_floats == 0 || bucket_floats > padded ? padded : bucket_floats;
    if ((padded + bucket - 1) / bucket > MAX_BUCKETS)
        bucket = (padded + MAX_BUCKETS - 1) / MAX_BUCKETS;
    if (bucket > INT_MAX)
        fatal("a gradient bucket of %zu floats exceeds MPI's int count; the model is too large for "
              "%d buckets", bucket, MAX_BUCKETS);
    s->bucket = bucket;
    s->buckets = (int)((padded + bucket - 1) / bucket);
    s->requests = xcalloc((size_t)s->buckets, sizeof(MPI_Request), "gradient requests");
    if (kind == GRADSYNC_REDUCE_SCATTER)
        s->recvcounts = xcalloc((size_t)s->buckets * (size_t)s->world, sizeof(int), "reduce-scatter counts");
}

void gradsync_free(GradSync *s)
{
    free(s->requests);
    free(s->recvcounts);
    memset(s, 0, sizeof *s);
}

void gradsync_begin(GradSync *s, bool accumulate)
{
    s->started = 0;
    s->accumulate = accumulate;
    s->lowest = s->padded;
    for (int k = 0; k < s->buckets; k++)
        s->requests[k] = MPI_REQUEST_NULL;
}

static size_t bucket_lo(const GradSync *s, int k)
{
    size_t hi = s->padded - (size_t)k * s->bucket;
    return hi > s->bucket ? hi - s->bucket : 0;
}

/* Rank r receives the part of [lo, hi) that lies in its shard [r S, (r+1) S). */
static void start_reduce_scatter(GradSync *s, int k, size_t lo, size_t hi)
{
    const size_t S = s->padded / (size_t)s->world;
    int *counts = s->recvcounts + (size_t)k * (size_t)s->world;
    for (int r = 0; r < s->world; r++) {
        size_t a = lo > r * S ? lo : r * S, b = hi < (r + 1) * S ? hi : (r + 1) * S;
        counts[r] = b > a ? (int)(b - a) : 0;
    }
    size_t mine = s->rank * S;
    float *dst = (s->accumulate ? s->scratch : s->shard) + (lo > mine ? lo - mine : 0);
    if (s->world == 1)
        memcpy(dst, s->grads + lo, (hi - lo) * sizeof(float));
    else
        dist_check(MPI_Ireduce_scatter(s->grads + lo, dst, counts, MPI_FLOAT, MPI_SUM, dist_comm(),
                                       &s->requests[k]), "MPI_Ireduce_scatter (gradients)");
}

static void start_bucket(GradSync *s, int k)
{
    size_t lo = bucket_lo(s, k), hi = s->padded - (size_t)k * s->bucket;
    if (s->kind == GRADSYNC_REDUCE_SCATTER)
        start_reduce_scatter(s, k, lo, hi);
    else if (s->world > 1)
        dist_check(MPI_Iallreduce(MPI_IN_PLACE, s->grads + lo, (int)(hi - lo), MPI_FLOAT, MPI_SUM, dist_comm(),
                                  &s->requests[k]), "MPI_Iallreduce (gradients)");
}

void gradsync_ready(void *ctx, const float *from)
{
    GradSync *s = ctx;
    if (from < s->grads || from > s->grads + s->padded)
        fatal("internal: gradient-ready pointer outside the gradient buffer");
    size_t off = (size_t)(from - s->grads);
    if (off > s->lowest)
        fatal("internal: gradient order: the backward pass reported %s final after it had reported "
              "everything from %s on: an objective must declare its tensors so that their gradients finish "
              "from the end of the table down (docs/variants/README.md)", s->names.at(s->names.ctx, off),
              s->names.at(s->names.ctx, s->lowest));
    s->lowest = off;
    while (s->started < s->buckets && bucket_lo(s, s->started) >= off)
        start_bucket(s, s->started++);
    /* Open MPI advances non-blocking collectives only inside MPI calls: this one lets the buckets
     * in flight move on while the backward pass computes the next layer. */
    int done;
    if (s->world > 1 && s->started > 0)
        dist_check(MPI_Testall(s->started, s->requests, &done, MPI_STATUSES_IGNORE), "MPI_Testall (gradients)");
}

static void scale(float *x, size_t n, float a)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= a;
}

void gradsync_finish(GradSync *s)
{
    while (s->started < s->buckets)
        start_bucket(s, s->started++);
    if (s->world > 1)
        dist_check(MPI_Waitall(s->buckets, s->requests, MPI_STATUSES_IGNORE), "MPI_Waitall (gradients)");
    const float inv = 1.0f / (float)s->world;
    if (s->kind == GRADSYNC_ALLREDUCE) {
        if (s->world > 1)
            scale(s->grads, s->padded, inv);
        return;
    }
    const size_t S = s->padded / (size_t)s->world;
    if (s->accumulate)
        for (size_t i = 0; i < S; i++)
            s->shard[i] += inv * s->scratch[i];
    else if (s->world > 1)
        scale(s->shard, S, inv);
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
