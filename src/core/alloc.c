#include "maec/alloc.h"

#include "maec/error.h"

#include <stdlib.h>
#include <string.h>

#define ALIGNMENT 64

static _Noreturn void out_of_memory(size_t bytes, const char *what)
{
    fatal("out of memory allocating %zu bytes (%.1f MiB) for %s; use a smaller batch or model, "
          "or more memory per rank", bytes, (double)bytes / (1024.0 * 1024.0), what);
}

void *xmalloc(size_t bytes, const char *what)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        out_of_memory(bytes, what);
    return p;
}

void *xcalloc(size_t count, size_t size, const char *what)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size, what);
    return p;
}

void *xrealloc(void *ptr, size_t bytes, const char *what)
{
    void *p = realloc(ptr, bytes ? bytes : 1);
    if (!p)
        out_of_memory(bytes, what);
    return p;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n, "a string");
    memcpy(p, s, n);
    return p;
}

void *xalloc_aligned(size_t bytes, const char *what)
{
    size_t rounded = (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    void *p = aligned_alloc(ALIGNMENT, rounded ? rounded : ALIGNMENT);
    if (!p)
        out_of_memory(rounded, what);
    memset(p, 0, rounded);
    return p;
}

void arena_init(Arena *arena, size_t capacity, const char *name)
{
    arena->base = xalloc_aligned(capacity, name);
    arena->capacity = capacity;
    arena->used = 0;
    arena->name = name;
}

void *arena_bytes(Arena *arena, size_t bytes)
{
    size_t rounded = (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    if (arena->used + rounded > arena->capacity)
        fatal("internal: arena '%s' is too small (%zu of %zu bytes used, %zu more requested); "
              "please report this", arena->name, arena->used, arena->capacity, rounded);
    void *p = arena->base + arena->used;
    arena->used += rounded;
    memset(p, 0, rounded);
    return p;
}

size_t arena_floats_size(size_t count)
{
    return (count * sizeof(float) + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
}

float *arena_floats(Arena *arena, size_t count) { return arena_bytes(arena, count * sizeof(float)); }

void arena_reset(Arena *arena) { arena->used = 0; }

void arena_free(Arena *arena)
{
    free(arena->base);
    arena->base = NULL;
    arena->capacity = arena->used = 0;
}
