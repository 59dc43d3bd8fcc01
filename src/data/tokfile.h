/* tokfile.h — token files: one prepared split of a dataset, the form the
 * loader memory-maps (`seqlab data prepare` writes them).
 *
 * Layout, little-endian:
 *     bytes 0-7    magic "SEQLTOK\n"
 *     bytes 8-11   u32 format version (1)
 *     bytes 12-15  u32 token width in bytes: 1, 2 or 4 (the smallest that holds vocab - 1)
 *     bytes 16-23  u64 vocabulary size
 *     bytes 24-31  u64 token count
 *     bytes 32-    the ids, `width` bytes each
 * Opening checks the magic, the version, the width, that the file is exactly
 * 32 + count * width bytes, and that every id is below the vocabulary size,
 * so a truncated, foreign or damaged file is refused with its name.
 *
 *     if (tokfile_write("d/train.bin", ids, n, V, &err)) ...
 *     TokFile f;
 *     if (tokfile_open(&f, "d/train.bin", &err)) ...     // f.view: the ids
 *     tokfile_close(&f);
 */
#ifndef SEQLAB_TOKFILE_H
#define SEQLAB_TOKFILE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/file.h"

#define TOKFILE_HEADER 32

/* A read-only run of token ids stored `width` bytes each, little-endian. */
typedef struct {
    const unsigned char *data; /* borrowed */
    size_t width;              /* 1, 2 or 4 */
    size_t n;
} TokenView;

static inline int32_t token_at(const TokenView *v, size_t i) {
    const unsigned char *p = v->data + i * v->width;
    if (v->width == 1) return p[0];
    if (v->width == 2) return (int32_t)(p[0] | p[1] << 8);
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/* A view of n int32 ids in memory (little-endian host). */
static inline TokenView token_view_i32(const int32_t *ids, size_t n) {
    TokenView v = {(const unsigned char *)ids, 4, n};
    return v;
}

/* The narrowest width for ids below vocab. */
size_t tokfile_width(size_t vocab);

/* Writes n ids (each in [0, vocab)) atomically. */
int tokfile_write(const char *path, const int32_t *ids, size_t n, size_t vocab, Error *err);

typedef struct {
    FileMap map;    /* owned */
    size_t vocab;
    TokenView view; /* into map */
} TokFile;

/* Maps and validates a token file (see the top of this file). */
int tokfile_open(TokFile *f, const char *path, Error *err);
void tokfile_close(TokFile *f);

#endif
