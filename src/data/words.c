/* words.c — see words.h. */
#include "words.h"

#include <stdlib.h>
#include <string.h>

#include "../core/utf8.h"

/* Lines and the words in them, one item at a time. */
typedef struct {
    const unsigned char *s;
    size_t n, pos;
    size_t line_end;  /* end of the current line (its newline, or n) */
    bool in_line;
    size_t line;      /* 1-based number of the current line, for messages */
    const char *name;
} Scanner;

typedef enum { SCAN_WORD, SCAN_EOL, SCAN_END, SCAN_ERROR } ScanItem;

static size_t find_line_end(const unsigned char *s, size_t from, size_t n) {
    while (from < n && s[from] != '\n' && s[from] != '\r') from++;
    return from;
}

/* Decodes the character at pos inside the line; 0 (and err set) on bad UTF-8. */
static size_t char_at(const Scanner *sc, size_t pos, uint32_t *cp, Error *err) {
    size_t k = utf8_decode(sc->s + pos, sc->line_end - pos, cp);
    if (!k) err_set(err, "%s is not valid UTF-8 at byte %zu (line %zu)", sc->name, pos, sc->line);
    return k;
}

/* Next item: a word [*start, *start + *len), the end of a line (every line
 * has one, also a last line without a newline), or the end of the text. */
static ScanItem scan_next(Scanner *sc, size_t *start, size_t *len, Error *err) {
    if (!sc->in_line) {
        if (sc->pos >= sc->n) return SCAN_END;
        sc->line_end = find_line_end(sc->s, sc->pos, sc->n);
        sc->in_line = true;
        sc->line++;
    }
    uint32_t cp = 0;
    size_t k = 0;
    while (sc->pos < sc->line_end && (k = char_at(sc, sc->pos, &cp, err)) && utf8_is_space(cp)) sc->pos += k;
    if (sc->pos < sc->line_end && !k) return SCAN_ERROR;
    if (sc->pos == sc->line_end) { /* consume the newline: "\r\n" counts as one */
        if (sc->pos < sc->n) sc->pos += sc->s[sc->pos] == '\r' && sc->pos + 1 < sc->n && sc->s[sc->pos + 1] == '\n' ? 2 : 1;
        sc->in_line = false;
        return SCAN_EOL;
    }
    *start = sc->pos;
    while (sc->pos < sc->line_end && (k = char_at(sc, sc->pos, &cp, err)) && !utf8_is_space(cp)) sc->pos += k;
    if (!k) return SCAN_ERROR;
    *len = sc->pos - *start;
    return SCAN_WORD;
}

static Scanner scanner(const unsigned char *s, size_t n, const char *name) {
    Scanner sc = {.s = s, .n = n, .name = name};
    return sc;
}

void words_free(Words *w) {
    strmap_free(&w->ids);
    free(w->offset);
    free(w->len);
    memset(w, 0, sizeof *w);
}

/* Gives id `id` to `word` (new in the map), recording where its bytes are. */
static int add_word(Words *w, const char *word, size_t len, size_t *cap, Error *err) {
    if (w->n == *cap) {
        size_t c = *cap ? 2 * *cap : 1024;
        size_t *off = realloc(w->offset, c * sizeof *off);
        if (off) w->offset = off;
        uint32_t *ln = off ? realloc(w->len, c * sizeof *ln) : NULL;
        if (!ln) return err_set(err, "out of memory for a vocabulary of %zu words", c);
        w->len = ln;
        *cap = c;
    }
    int32_t found;
    int rc = strmap_insert(&w->ids, word, len, (int32_t)w->n, &found, err);
    if (rc < 0) return -1;
    if (rc == 0) return err_set(err, "word '%.*s' is in the vocabulary twice", (int)(len > 100 ? 100 : len), word);
    w->offset[w->n] = w->ids.chars_len - len;
    w->len[w->n] = (uint32_t)len;
    w->n++;
    return 0;
}

const char *words_symbol(const Words *w, int32_t id, size_t *len) {
    if (id < 0 || (size_t)id >= w->n) return NULL;
    *len = w->len[id];
    return w->ids.chars + w->offset[id];
}

static int finish(Words *w) {
    w->unk = strmap_get(&w->ids, WORDS_UNK, strlen(WORDS_UNK));
    return 0;
}

int words_from_symbols(Words *w, const char *const *symbols, size_t n, const char *name, Error *err) {
    memset(w, 0, sizeof *w);
    if (n == 0 || strcmp(symbols[0], WORDS_EOS) != 0)
        return err_set(err, "%s: a word vocabulary starts with %s", name, WORDS_EOS);
    return words_from_list(w, symbols, n, name, err);
}

int words_from_list(Words *w, const char *const *symbols, size_t n, const char *name, Error *err) {
    memset(w, 0, sizeof *w);
    size_t cap = 0;
    if (n == 0) return err_set(err, "%s: an empty vocabulary", name);
    for (size_t i = 0; i < n; i++)
        if (add_word(w, symbols[i], strlen(symbols[i]), &cap, err)) {
            words_free(w);
            return err_prefix(err, "%s", name);
        }
    return finish(w);
}

/* Counting pass: every distinct word in order of first occurrence, with its count. */
typedef struct {
    StrMap first;     /* word -> index of first occurrence */
    size_t *count;    /* per index */
    size_t *offset;   /* per index: the word's bytes in first.chars */
    uint32_t *len;
    size_t n, cap;
} Counts;

static int grow_counts(Counts *c, Error *err) {
    size_t cap = c->cap ? 2 * c->cap : 1024;
    size_t *count = realloc(c->count, cap * sizeof *count);
    if (count) c->count = count;
    size_t *offset = count ? realloc(c->offset, cap * sizeof *offset) : NULL;
    if (offset) c->offset = offset;
    uint32_t *len = offset ? realloc(c->len, cap * sizeof *len) : NULL;
    if (!len) return err_set(err, "out of memory counting %zu distinct words", cap);
    c->len = len;
    c->cap = cap;
    return 0;
}

static int count_word(Counts *c, const char *word, size_t len, Error *err) {
    if (len == strlen(WORDS_EOS) && memcmp(word, WORDS_EOS, len) == 0) return 0; /* already id 0 */
    if (c->n == c->cap && grow_counts(c, err)) return -1;
    int32_t index;
    int rc = strmap_insert(&c->first, word, len, (int32_t)c->n, &index, err);
    if (rc < 0) return -1;
    if (rc == 1) {
        c->count[c->n] = 0;
        c->offset[c->n] = c->first.chars_len - len;
        c->len[c->n] = (uint32_t)len;
        c->n++;
    }
    c->count[index]++;
    return 0;
}

static const Counts *sort_counts; /* qsort has no context argument */
static int by_count_then_first(const void *a, const void *b) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (sort_counts->count[i] != sort_counts->count[j]) return sort_counts->count[i] > sort_counts->count[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

static int count_text(Counts *c, const unsigned char *text, size_t n, const char *name, Error *err) {
    Scanner sc = scanner(text, n, name);
    size_t start = 0, len = 0;
    for (ScanItem it; (it = scan_next(&sc, &start, &len, err)) != SCAN_END;) {
        if (it == SCAN_ERROR) return -1;
        if (it == SCAN_WORD && count_word(c, (const char *)text + start, len, err)) return -1;
    }
    return 0;
}

static void counts_free(Counts *c) {
    strmap_free(&c->first);
    free(c->count);
    free(c->offset);
    free(c->len);
}

/* <eos>, then the counted words by decreasing count, ties by first occurrence
 * (Python's Counter.most_common is a stable sort of insertion order). */
static int assign_ids(Words *w, const Counts *c, Error *err) {
    size_t *order = xmalloc((c->n ? c->n : 1) * sizeof *order, err), cap = 0;
    if (!order) return -1;
    for (size_t i = 0; i < c->n; i++) order[i] = i;
    sort_counts = c;
    qsort(order, c->n, sizeof *order, by_count_then_first);
    int rc = add_word(w, WORDS_EOS, strlen(WORDS_EOS), &cap, err);
    for (size_t k = 0; !rc && k < c->n; k++)
        rc = add_word(w, c->first.chars + c->offset[order[k]], c->len[order[k]], &cap, err);
    free(order);
    return rc;
}

int words_build(Words *w, const unsigned char *text, size_t n, const char *name, Error *err) {
    memset(w, 0, sizeof *w);
    Counts c = {0};
    strmap_init(&c.first);
    int rc = count_text(&c, text, n, name, err) || assign_ids(w, &c, err) ? -1 : 0;
    counts_free(&c);
    if (rc) words_free(w);
    return rc ? -1 : finish(w);
}

/* Appends one id, growing the array. */
static int push_id(int32_t **ids, size_t *n, size_t *cap, int32_t id, Error *err) {
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 1 << 16;
        int32_t *p = realloc(*ids, c * sizeof *p);
        if (!p) return err_set(err, "out of memory for %zu token ids", c);
        *ids = p;
        *cap = c;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

static int32_t word_id(const Words *w, const Scanner *sc, const char *word, size_t len, size_t *unknown,
                       Error *err) {
    int32_t id = strmap_get(&w->ids, word, len);
    if (id >= 0) return id;
    if (w->unk < 0)
        return err_set(err, "%s line %zu: word '%.*s' is not in the vocabulary, which has no %s", sc->name, sc->line,
                       (int)(len > 100 ? 100 : len), word, WORDS_UNK);
    (*unknown)++;
    return w->unk;
}

int words_encode(const Words *w, const unsigned char *text, size_t n, int32_t **ids, size_t *n_ids,
                 size_t *n_unknown, const char *name, Error *err) {
    *ids = NULL;
    *n_ids = 0;
    size_t cap = 0, unknown = 0, start = 0, len = 0;
    Scanner sc = scanner(text, n, name);
    int rc = 0;
    for (ScanItem it; !rc && (it = scan_next(&sc, &start, &len, err)) != SCAN_END;) {
        int32_t id = it == SCAN_ERROR ? -1 : it == SCAN_EOL ? 0 : word_id(w, &sc, (const char *)text + start, len, &unknown, err);
        rc = id < 0 ? -1 : push_id(ids, n_ids, &cap, id, err);
    }
    if (n_unknown) *n_unknown = unknown;
    if (rc) {
        free(*ids);
        *ids = NULL;
        *n_ids = 0;
    }
    return rc;
}
