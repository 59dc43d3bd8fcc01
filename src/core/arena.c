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
    a->used = 0;
    return 0;
}

void arena_free(Arena *a) {
    free(a->base);
    a->base = NULL;
    a->used = a->cap = 0;
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
