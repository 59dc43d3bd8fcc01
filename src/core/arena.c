/* arena.c — see arena.h. */
#include "arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

size_t machine_memory_bytes(void) {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    size_t bytes = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : SIZE_MAX;
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r"); /* a container's limit ("max" when there is none) */
    unsigned long long limit;
    if (f && fscanf(f, "%llu", &limit) == 1 && limit < bytes) bytes = (size_t)limit;
    if (f) fclose(f);
    return bytes;
}

int arena_alloc(Arena *a, size_t floats, Error *err) {
    size_t bytes = (floats ? floats : 16) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    a->base = aligned_alloc(64, bytes);
    if (!a->base) return err_set(err, "out of memory allocating the activation arena (%zu MiB)", bytes >> 20);
    memset(a->base, 0, bytes);
    a->cap = bytes / sizeof(float);
    arena_rewind(a);
    return 0;
}

void arena_free(Arena *a) {
    free(a->base);
    a->base = NULL;
    a->cap = 0;
    arena_rewind(a);
}

float *arena_take(Arena *a, size_t n) {
    size_t rounded = (n + 15) / 16 * 16;
    float *p = a->base ? a->base + a->used : NULL;
    a->used += rounded;
    /* The layout pass over a real block asks for exactly what the counting
     * pass measured; running past the end would be a planning bug. */
    if (a->base && a->used > a->cap) abort();
    return p;
}

void arena_rewind(Arena *a) {
    a->used = 0;
    memset(a->shared, 0, sizeof a->shared);
    memset(a->shared_n, 0, sizeof a->shared_n);
}

float *arena_shared(Arena *a, int slot, size_t n) {
    if (a->shared_n[slot]) {
        if (n > a->shared_n[slot]) abort(); /* every user asks for the first one's size or less */
        return a->shared[slot];
    }
    a->shared[slot] = arena_take(a, n);
    a->shared_n[slot] = n;
    return a->shared[slot];
}
