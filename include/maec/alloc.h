/* Allocation that never returns NULL: on failure it names what was being allocated and how big
 * it was, then ends the job through fatal(). Plus an arena for a training step, sized once at
 * start so the step itself never allocates. */
#ifndef MAEC_ALLOC_H
#define MAEC_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t bytes, const char *what);
void *xcalloc(size_t count, size_t size, const char *what);
void *xrealloc(void *ptr, size_t bytes, const char *what);
char *xstrdup(const char *s);
/* 64-byte aligned (cache line / AVX-512), zero-filled; free with free(). */
void *xalloc_aligned(size_t bytes, const char *what);

/* A bump allocator over one aligned block. Reservations are 64-byte aligned and zero-filled. */
typedef struct Arena {
    char *base;
    size_t capacity;
    size_t used;
    const char *name;
} Arena;

void arena_init(Arena *arena, size_t capacity, const char *name);
/* Bytes arena_floats(count) takes, alignment included: for sizing an arena up front. */
size_t arena_floats_size(size_t count);
float *arena_floats(Arena *arena, size_t count);
void *arena_bytes(Arena *arena, size_t bytes);
void arena_reset(Arena *arena);
void arena_free(Arena *arena);

#endif
