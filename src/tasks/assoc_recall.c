/* assoc_recall.c — see assoc_recall.h. */
#include "assoc_recall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/rng.h"

enum { STREAM_AR = 0x4152 };

/* Uniform in [0, n), without modulo bias. */
static uint32_t below(Rng *r, uint32_t n) {
    const uint32_t limit = UINT32_MAX - UINT32_MAX % n;
    uint32_t x;
    do x = rng_next(r);
    while (x >= limit);
    return x % n;
}

/* One example into out (S + 3 tokens). */
static void draw_example(Rng *r, int32_t *out, size_t V, size_t S, int32_t *map, int32_t *seen_list, uint8_t *seen) {
    const uint32_t n = (uint32_t)(V - 2), K = n / 2;
    for (uint32_t k = 1; k <= K; k++) map[k] = (int32_t)(K + 1 + below(r, n - K));
    memset(seen, 0, K + 1);
    size_t n_seen = 0, at = 0;
    for (size_t i = 0; i < S / 2; i++) {
        const int32_t key = (int32_t)(1 + below(r, K));
        if (!seen[key]) seen[key] = 1, seen_list[n_seen++] = key;
        out[at++] = key;
        out[at++] = map[key];
    }
    int32_t q = (int32_t)(1 + below(r, K));
    if (!seen[q]) q = seen_list[below(r, (uint32_t)n_seen)]; /* one redraw among the keys that occurred */
    out[at++] = (int32_t)(V - 1);
    out[at++] = q;
    out[at++] = map[q];
}

static uint64_t hash_tokens(const int32_t *x, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint32_t)x[i]) * 1099511628211ull;
    return h;
}

/* n distinct examples (open addressing on their hashes, full compare on a
 * match), then shuffled with the same stream. */
static int draw_set(ArSet *s, Rng *r, size_t V, size_t S, size_t n, Error *err) {
    s->len = S + 3;
    s->n = n;
    const size_t K = (V - 2) / 2, cap = 4 * n + 16;
    s->tokens = malloc(n * s->len * sizeof *s->tokens);
    size_t *slots = malloc(cap * sizeof *slots);
    int32_t *map = malloc((K + 1) * sizeof *map), *seen_list = malloc((K + 1) * sizeof *seen_list);
    uint8_t *seen = malloc(K + 1);
    int rc = s->tokens && slots && map && seen_list && seen ? 0 : err_set(err, "out of memory for %zu examples of %zu tokens", n, s->len);
    for (size_t i = 0; !rc && i < cap; i++) slots[i] = SIZE_MAX;
    for (size_t i = 0, tries = 0; !rc && i < n;) {
        int32_t *x = s->tokens + i * s->len;
        draw_example(r, x, V, S, map, seen_list, seen);
        size_t at = hash_tokens(x, s->len) % cap;
        while (slots[at] != SIZE_MAX && memcmp(s->tokens + slots[at] * s->len, x, s->len * sizeof *x)) at = (at + 1) % cap;
        if (slots[at] == SIZE_MAX) slots[at] = i++;
        else if (++tries > 100 * n + 1000)
            rc = err_set(err, "only %zu distinct associative-recall sequences of length %zu over vocabulary %zu found; "
                              "ask for fewer examples", i, S, V);
    }
    for (size_t i = n; !rc && i > 1; i--) { /* Fisher-Yates */
        const size_t j = below(r, (uint32_t)i);
        for (size_t k = 0; k < s->len; k++) {
            int32_t t = s->tokens[(i - 1) * s->len + k];
            s->tokens[(i - 1) * s->len + k] = s->tokens[j * s->len + k];
            s->tokens[j * s->len + k] = t;
        }
    }
    free(slots), free(map), free(seen_list), free(seen);
    return rc;
}

int ar_generate(ArSet *train, ArSet *test, size_t V, size_t S, size_t n_train, size_t n_test, uint64_t seed,
                Error *err) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (V < 4 || V > 65536) return err_set(err, "key 'vocab_size': associative recall needs 4 to 65536 ids, got %zu", V);
    if (S < 2 || S % 2) return err_set(err, "key 'input_seq_len': an even number of context tokens >= 2, got %zu", S);
    Rng r = rng_make(seed, rng_stream(RNG_DATA, STREAM_AR, 0));
    if (draw_set(train, &r, V, S, n_train, err) || draw_set(test, &r, V, S, n_test, err)) {
        ar_free(train), ar_free(test);
        return -1;
    }
    return 0;
}

void ar_free(ArSet *s) {
    free(s->tokens);
    memset(s, 0, sizeof *s);
}

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

char **ar_symbols(size_t V, Error *err) {
    char **sym = calloc(V, sizeof *sym);
    char *chars = calloc(V, 16);
    if (!sym || !chars) {
        free(sym), free(chars);
        err_set(err, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < V; i++) sym[i] = chars + 16 * i;
    strcpy(sym[0], ".");
    for (size_t i = 1; i + 1 < V; i++) snprintf(sym[i], 16, "%u", (unsigned)(i - 1));
    qsort(sym + 1, V - 2, sizeof *sym, by_string); /* the reference sorts the strings */
    strcpy(sym[V - 1], "=>");
    return sym; /* sym[0] is the block of every string: free(sym[0]) frees them after a sort? no: chars */
}
