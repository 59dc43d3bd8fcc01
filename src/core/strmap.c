/* strmap.c — see strmap.h. Linear probing at load factor <= 1/2. */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#define EMPTY UINT32_MAX

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

void strmap_init(StrMap *m) { memset(m, 0, sizeof *m); }

void strmap_free(StrMap *m) {
    free(m->slots);
    free(m->chars);
    strmap_init(m);
}

/* The slot holding key, or the empty slot where it would go. */
static StrMapSlot *probe(const StrMap *m, const char *key, size_t len, uint64_t h) {
    size_t i = (size_t)h & (m->cap - 1);
    for (;; i = (i + 1) & (m->cap - 1)) {
        StrMapSlot *s = &m->slots[i];
        if (s->len == EMPTY) return s;
        if (s->hash == h && s->len == len && memcmp(m->chars + s->key, key, len) == 0) return s;
    }
}

static int grow_slots(StrMap *m, Error *err) {
    size_t cap = m->cap ? 2 * m->cap : 64;
    StrMapSlot *slots = xmalloc(cap * sizeof *slots, err);
    if (!slots) return -1;
    for (size_t i = 0; i < cap; i++) slots[i].len = EMPTY;
    StrMap bigger = *m;
    bigger.slots = slots;
    bigger.cap = cap;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].len != EMPTY) *probe(&bigger, m->chars + m->slots[i].key, m->slots[i].len, m->slots[i].hash) = m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

static int store_key(StrMap *m, const char *key, size_t len, Error *err) {
    if (m->chars_len + len > m->chars_cap) {
        size_t cap = m->chars_cap ? 2 * m->chars_cap : 4096;
        while (cap < m->chars_len + len) cap *= 2;
        char *chars = realloc(m->chars, cap);
        if (!chars) return err_set(err, "out of memory for %zu bytes of vocabulary", cap);
        m->chars = chars;
        m->chars_cap = cap;
    }
    memcpy(m->chars + m->chars_len, key, len);
    m->chars_len += len;
    return 0;
}

int strmap_insert(StrMap *m, const char *key, size_t len, int32_t value, int32_t *found, Error *err) {
    if (len >= EMPTY) return err_set(err, "vocabulary entry of %zu bytes is too long", len);
    if (2 * (m->count + 1) > m->cap && grow_slots(m, err)) return -1;
    uint64_t h = fnv1a(key, len);
    StrMapSlot *s = probe(m, key, len, h);
    if (s->len != EMPTY) {
        if (found) *found = s->value;
        return 0;
    }
    if (store_key(m, key, len, err)) return -1;
    *s = (StrMapSlot){.hash = h, .key = m->chars_len - len, .len = (uint32_t)len, .value = value};
    m->count++;
    if (found) *found = value;
    return 1;
}

int32_t strmap_get(const StrMap *m, const char *key, size_t len) {
    if (!m->cap) return -1;
    const StrMapSlot *s = probe(m, key, len, fnv1a(key, len));
    return s->len == EMPTY ? -1 : s->value;
}

void strmap_set(StrMap *m, const char *key, size_t len, int32_t value) {
    if (!m->cap) return;
    StrMapSlot *s = probe(m, key, len, fnv1a(key, len));
    if (s->len != EMPTY) s->value = value;
}
