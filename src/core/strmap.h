/* strmap.h — a hash map from byte strings to int32 values (open addressing,
 * FNV-1a hashes), for vocabularies: word -> id, BPE symbol -> id.
 *
 * The map owns copies of its keys; values are whatever the caller stores.
 *
 *     StrMap m; strmap_init(&m);
 *     int32_t id;
 *     if (strmap_insert(&m, "the", 3, 7, &id, &err)) ...   // id: 7, or the old value if present
 *     int32_t v = strmap_get(&m, "the", 3);                  // -1 when absent
 *     strmap_free(&m);
 */
#ifndef SEQLAB_STRMAP_H
#define SEQLAB_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct {
    uint64_t hash;
    size_t key;    /* offset of the key bytes in StrMap.chars */
    uint32_t len;  /* key length; slots with len == UINT32_MAX are empty */
    int32_t value;
} StrMapSlot;

typedef struct {
    StrMapSlot *slots; /* owned; cap slots, a power of two */
    size_t cap, count;
    char *chars;       /* owned: every key's bytes, one after another */
    size_t chars_len, chars_cap;
} StrMap;

void strmap_init(StrMap *m);
void strmap_free(StrMap *m);
/* Inserts key -> value unless the key is present. *found (may be NULL)
 * receives the value now stored for the key: `value`, or the existing one.
 * Returns 1 when the key was new, 0 when it was present, -1 out of memory. */
int strmap_insert(StrMap *m, const char *key, size_t len, int32_t value, int32_t *found, Error *err);
/* The value stored for key, or -1 when it is absent. */
int32_t strmap_get(const StrMap *m, const char *key, size_t len);
/* Replaces the value of a present key (no-op when absent). */
void strmap_set(StrMap *m, const char *key, size_t len, int32_t value);

#endif
