/* arena.c — see arena.h. */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

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
