/* tokfile.c — see tokfile.h. */
#include "tokfile.h"

#include <stdlib.h>
#include <string.h>

static const char magic[8] = {'S', 'E', 'Q', 'L', 'T', 'O', 'K', '\n'};
enum { VERSION = 1 };

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tokfile.c stores ids as in memory: it needs a little-endian host"
#endif

size_t tokfile_width(size_t vocab) { return vocab <= 256 ? 1 : vocab <= 65536 ? 2 : 4; }

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int tokfile_write(const char *path, const int32_t *ids, size_t n, size_t vocab, Error *err) {
    const size_t width = tokfile_width(vocab);
    unsigned char header[TOKFILE_HEADER];
    memcpy(header, magic, 8);
    put_u32(header + 8, VERSION);
    put_u32(header + 12, (uint32_t)width);
    put_u64(header + 16, vocab);
    put_u64(header + 24, n);
    unsigned char *body = xmalloc(n * width + 1, err);
    if (!body) return -1;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= vocab) {
            free(body);
            return err_set(err, "'%s': id %d at %zu is outside the vocabulary [0, %zu)", path, ids[i], i, vocab);
        }
        for (size_t b = 0; b < width; b++) body[i * width + b] = (unsigned char)((uint32_t)ids[i] >> (8 * b));
    }
    const void *parts[] = {header, body};
    size_t sizes[] = {TOKFILE_HEADER, n * width};
    int rc = file_write_atomic(path, parts, sizes, 2, err);
    free(body);
    return rc;
}

/* Header fields, checked against each other and the file size. */
static int check_header(TokFile *f, const char *path, Error *err) {
    const unsigned char *h = f->map.data;
    if (f->map.size < TOKFILE_HEADER || memcmp(h, magic, 8) != 0)
        return err_set(err, "'%s' is not a seqlab token file (no SEQLTOK header); make one with seqlab data prepare",
                       path);
    uint64_t version = h[8] | h[9] << 8 | (uint64_t)h[10] << 16 | (uint64_t)h[11] << 24;
    uint64_t width = h[12] | h[13] << 8 | (uint64_t)h[14] << 16 | (uint64_t)h[15] << 24;
    uint64_t vocab = get_u64(h + 16), count = get_u64(h + 24);
    if (version != VERSION)
        return err_set(err, "'%s': token file version %llu; this seqlab reads version %d", path,
                       (unsigned long long)version, VERSION);
    if (width != 1 && width != 2 && width != 4)
        return err_set(err, "'%s': token width %llu; expected 1, 2 or 4", path, (unsigned long long)width);
    if (vocab < 1 || (width < 4 && vocab > (1ull << (8 * width))))
        return err_set(err, "'%s': vocabulary %llu does not fit %llu-byte ids", path, (unsigned long long)vocab,
                       (unsigned long long)width);
    if (count > (SIZE_MAX - TOKFILE_HEADER) / width || f->map.size != TOKFILE_HEADER + count * width)
        return err_set(err, "'%s' is truncated or damaged: %zu bytes, the header says %llu tokens of %llu bytes", path,
                       f->map.size, (unsigned long long)count, (unsigned long long)width);
    f->vocab = (size_t)vocab;
    f->view = (TokenView){h + TOKFILE_HEADER, (size_t)width, (size_t)count};
    return 0;
}

static int check_ids(const TokFile *f, const char *path, Error *err) {
    for (size_t i = 0; i < f->view.n; i++) {
        int32_t id = token_at(&f->view, i);
        if (id < 0 || (size_t)id >= f->vocab)
            return err_set(err, "'%s': token %zu has id %d, outside the vocabulary [0, %zu)", path, i, id, f->vocab);
    }
    return 0;
}

int tokfile_open(TokFile *f, const char *path, Error *err) {
    memset(f, 0, sizeof *f);
    if (file_map(&f->map, path, "token file", err)) return -1;
    if (check_header(f, path, err) || check_ids(f, path, err)) {
        tokfile_close(f);
        return -1;
    }
    return 0;
}

void tokfile_close(TokFile *f) {
    file_unmap(&f->map);
    memset(f, 0, sizeof *f);
}
