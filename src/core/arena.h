/* arena.h — activation memory planned once per (model, batch shape).
 *
 * A module's `layout` function takes its buffers from an Arena. The same
 * function runs twice: first on a counting arena (base == NULL) that only sums
 * the sizes, then on the real block, where it points the module's fields into
 * it. One function for both passes means sizes and pointers cannot drift apart,
 * and nothing is allocated inside a training step.
 *
 *     Arena count = arena_counting();
 *     model_layout(m, B, T, &count);          // sizes only
 *     Arena real; arena_alloc(&real, count.used, &err);
 *     model_layout(m, B, T, &real);           // pointers set
 */
#ifndef SEQLAB_ARENA_H
#define SEQLAB_ARENA_H

#include <stddef.h>

#include "error.h"

typedef struct {
    float *base;   /* owned when allocated by arena_alloc; NULL while counting */
    size_t used;   /* floats handed out so far */
    size_t cap;    /* floats available (0 while counting) */
} Arena;

static inline Arena arena_counting(void) {
    Arena a = {0, 0, 0};
    return a;
}
/* Allocates `floats` floats, 64-byte aligned, zeroed. */
int arena_alloc(Arena *a, size_t floats, Error *err);
void arena_free(Arena *a);
/* Rewinds so a layout pass can point into the block again. */
static inline void arena_rewind(Arena *a) { a->used = 0; }
/* Hands out n floats (rounded up to 16 for alignment). NULL while counting. */
float *arena_take(Arena *a, size_t n);

#endif
