/* The pool covers every item exactly once, for any n and thread count, and runs repeatedly. */
#include "../testing.h"

#include "maec/parallel.h"

#include <stdlib.h>

typedef struct {
    int *hits;
    int *thread_of;
} Ctx;

static void mark(void *ctx, size_t begin, size_t end, int thread)
{
    Ctx *c = ctx;
    for (size_t i = begin; i < end; i++) {
        c->hits[i]++;
        c->thread_of[i] = thread;
    }
}

static void record_thread(void *ctx, size_t begin, size_t end, int thread)
{
    int *seen = ctx;
    for (size_t i = begin; i < end; i++)
        seen[i] = thread;
}

static void check_nested(void *ctx, size_t begin, size_t end, int thread)
{
    (void)ctx;
    for (size_t i = begin; i < end; i++) {
        int seen[4] = {-1, -1, -1, -1};
        CHECK(parallel_in_region(), "not in region inside parallel_for");
        parallel_for(4, 1, record_thread, seen);
        for (int k = 0; k < 4; k++)
            CHECK(seen[k] == thread, "nested item %d ran as thread %d inside thread %d", k, seen[k], thread);
    }
}

int main(void)
{
    parallel_init(3);
    CHECK(parallel_threads() == 3, "threads %d", parallel_threads());
    const size_t sizes[] = {1, 2, 3, 7, 100, 1001};
    for (int rep = 0; rep < 50; rep++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s];
            Ctx c = {calloc(n, sizeof(int)), calloc(n, sizeof(int))};
            parallel_for(n, 1, mark, &c);
            for (size_t i = 0; i < n; i++)
                CHECK(c.hits[i] == 1, "n=%zu item %zu hit %d times", n, i, c.hits[i]);
            if (n == 1001)
                CHECK(c.thread_of[0] == 0 && c.thread_of[1000] == 2, "ranges not spread: %d %d",
                      c.thread_of[0], c.thread_of[1000]);
            free(c.hits);
            free(c.thread_of);
        }
    }
    /* min_chunk larger than n runs inline on the caller. */
    int hits[5] = {0}, threads[5] = {0};
    Ctx c = {hits, threads};
    parallel_for(5, 100, mark, &c);
    CHECK(hits[4] == 1 && threads[4] == 0, "inline run: hits %d thread %d", hits[4], threads[4]);
    /* Nested calls run inline with the outer thread's index (per-thread scratch stays private). */
    parallel_for(3, 1, check_nested, NULL);
    parallel_shutdown();
    return test_summary("test_parallel");
}
