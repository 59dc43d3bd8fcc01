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

/* Buffers that several users of one layout pass share (arena_shared). */
enum { ARENA_SHARED_PRE_NORM, ARENA_SHARED_SLOTS };

typedef struct {
    float *base;   /* owned when allocated by arena_alloc; NULL while counting */
    size_t used;   /* floats handed out so far */
    size_t cap;    /* floats available (0 while counting) */
    float *shared[ARENA_SHARED_SLOTS];  /* borrowed views: this pass's shared buffers */
    size_t shared_n[ARENA_SHARED_SLOTS];
} Arena;

static inline Arena arena_counting(void) {
    Arena a = {0};
    return a;
}
/* Allocates `floats` floats, 64-byte aligned, zeroed. */
int arena_alloc(Arena *a, size_t floats, Error *err);
/* The memory this process may use: the machine's, or its container's limit
 * when lower. Plans larger than it are refused before anything is allocated. */
size_t machine_memory_bytes(void);
void arena_free(Arena *a);
/* Rewinds so a layout pass can point into the block again. */
void arena_rewind(Arena *a);
/* Hands out n floats (rounded up to 16 for alignment). NULL while counting. */
float *arena_take(Arena *a, size_t n);
/* The buffer of `slot` for this layout pass: taken at its first request,
 * the same one for every later request of at most that size (larger is a
 * planning bug). */
float *arena_shared(Arena *a, int slot, size_t n);

#endif
