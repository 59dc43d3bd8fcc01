/* bpe.c — GPT-2 byte-level BPE; see bpe.h.
 *
 * Follows OpenAI gpt-2 src/encoder.py (bytes_to_unicode, get_pairs,
 * Encoder.bpe, Encoder.encode) and, for the special token and the merges.txt
 * checks, the Hugging Face tokenizers BPE model and ByteLevel pre-tokenizer.
 *
 * Symbols are vocabulary ids from the start: a piece's bytes become the ids
 * of their one-character alphabet symbols, and a merge maps a pair of ids to
 * its rank and the id of the joined token. encoder.py merges in rounds: take
 * the lowest-ranked pair present and join all its occurrences left to right.
 * Here a min-heap of (rank, position) finds the pair in O(log n) rather than
 * a scan, and pairs created during a round wait until it ends, which is what
 * keeps the rounds exact when a merges file is not in learning order. Pieces
 * repeat (Zipf), so each encode call keeps a piece -> ids cache, bounded
 * where encoder.py's is not. Section order: byte alphabet, hash tables,
 * loading, accessors, merging, the piece cache, encoding.
 */
#include "bpe.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "../core/file.h"
#include "../core/json.h"
#include "../core/utf8.h"

/* GPT-2's pre-tokenizer, encoder.py's
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * with \s spelled out as Unicode's White_Space, which is what it means in
 * Python's regex module: PCRE2's \s also takes U+180E (Mongolian vowel
 * separator, white space before Unicode 6.3). Compiled anchored: each match
 * starts where the previous one ended; the alternatives cover every
 * character, so the pieces tile the text. */
#define WS "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char pretokenizer[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+"
                                   "|[" WS "]+(?![^" WS "])|[" WS "]+";
static const char endoftext[] = "<|endoftext|>";

#define ALPHABET 324     /* the byte alphabet uses code points U+0000..U+0143 */
#define CACHE_KEY_MAX 64 /* longer pieces are rare; they are merged every time */
#define CACHE_SLOTS_MIN 4096u
#define CACHE_SLOTS_MAX (1u << 21) /* at most 2^20 cached pieces */

typedef struct {
    int32_t left, right, into; /* ids: left + right -> into */
} Merge;

typedef struct {
    uint64_t key; /* left << 32 | right; UINT64_MAX = empty */
    int32_t rank;
} PairSlot;

struct Bpe {
    size_t n_vocab;
    char *strings;         /* owned: the token strings in id order, each NUL-terminated */
    size_t *string_at;     /* owned: (N + 1) offsets into strings */
    unsigned char *bytes;  /* owned: the decoded bytes of the tokens in id order */
    size_t *bytes_at;      /* owned: (N + 1) offsets into bytes */
    uint32_t *vocab_slots; /* owned: open addressing on the token string, id + 1 (0 = empty) */
    size_t vocab_mask;
    Merge *merges; /* owned: by rank (n_merges); an overridden repeat stays, unused */
    size_t n_merges;
    PairSlot *pairs; /* owned: open addressing on left << 32 | right */
    size_t pair_mask;
    uint32_t byte_char[256];     /* bytes_to_unicode: code point of each byte */
    int16_t char_byte[ALPHABET]; /* its inverse, -1 for code points it does not use */
    int32_t byte_id[256];        /* id of each byte's one-character symbol, -1 when absent */
    int32_t eot;                 /* id of "<|endoftext|>", -1 when absent */
    pcre2_code *re;              /* owned: pretokenizer, JIT-compiled when PCRE2 can */
};

/* ------------------------------------------------------------------------ */
/* Byte alphabet                                                             */

/* bytes_to_unicode: the printable bytes of Latin-1 ('!'..'~', U+00A1..U+00AC,
 * U+00AE..U+00FF) stand for themselves; the other 68, in byte order, take
 * U+0100 onwards, so no token string holds a space or a control character. */
static void alphabet_build(Bpe *b) {
    uint32_t next = 256;
    for (int i = 0; i < ALPHABET; i++) b->char_byte[i] = -1;
    for (uint32_t c = 0; c < 256; c++) {
        bool printable = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
        b->byte_char[c] = printable ? c : next++;
        b->char_byte[b->byte_char[c]] = (int16_t)c;
    }
}

/* ------------------------------------------------------------------------ */
/* Hash tables: token string -> id, (left id, right id) -> rank              */

/* FNV-1a, continued from h, so a joined token hashes as its two parts. */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001B3ull;
    return h;
}

#define HASH_SEED 0xCBF29CE484222325ull

/* splitmix64's finaliser: spreads every key bit into the slot index bits. */
static uint64_t mix(uint64_t h) {
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    return h ^ (h >> 31);
}

/* Power of two at least twice n: probes stay short at load factor <= 1/2. */
static size_t slot_count(size_t n) {
    size_t s = 16;
    while (s < 2 * n) s *= 2;
    return s;
}

static const char *token_str(const Bpe *b, int32_t id) { return b->strings + b->string_at[id]; }
static size_t token_len(const Bpe *b, int32_t id) { return b->string_at[id + 1] - b->string_at[id] - 1; }

/* Id of the token spelled a[0, an) followed by c[0, cn), or -1. */
static int32_t vocab_find(const Bpe *b, const char *a, size_t an, const char *c, size_t cn) {
    size_t i = mix(hash_bytes(hash_bytes(HASH_SEED, a, an), c, cn)) & b->vocab_mask;
    for (; b->vocab_slots[i]; i = (i + 1) & b->vocab_mask) {
        int32_t id = (int32_t)(b->vocab_slots[i] - 1);
        const char *s = token_str(b, id);
        if (token_len(b, id) == an + cn && memcmp(s, a, an) == 0 && memcmp(s + an, c, cn) == 0) return id;
    }
    return -1;
}

static int vocab_index(Bpe *b, Error *err) {
    size_t slots = slot_count(b->n_vocab);
    if (!(b->vocab_slots = xcalloc(slots, sizeof *b->vocab_slots, err))) return -1;
    b->vocab_mask = slots - 1;
    for (size_t id = 0; id < b->n_vocab; id++) {
        size_t i = mix(hash_bytes(HASH_SEED, token_str(b, (int32_t)id), token_len(b, (int32_t)id))) & b->vocab_mask;
        while (b->vocab_slots[i]) i = (i + 1) & b->vocab_mask;
        b->vocab_slots[i] = (uint32_t)id + 1;
    }
    return 0;
}

static uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }

/* Slot of the pair: where it is, or the empty slot where it would go. */
static size_t pair_slot(const Bpe *b, uint64_t key) {
    size_t i = mix(key) & b->pair_mask;
    while (b->pairs[i].key != UINT64_MAX && b->pairs[i].key != key) i = (i + 1) & b->pair_mask;
    return i;
}

/* Rank of the merge of ids left, right, or -1 when there is none. */
static int32_t pair_rank(const Bpe *b, int32_t left, int32_t right) {
    const PairSlot *p = &b->pairs[pair_slot(b, pair_key(left, right))];
    return p->key == UINT64_MAX ? -1 : p->rank;
}

/* ------------------------------------------------------------------------ */
/* Loading vocab.json                                                        */

/* Checks that the ids are 0..N-1, each once, and puts each member at its id. */
static int vocab_order(const JsonValue *v, const JsonMember **by_id, const char *path, Error *err) {
    size_t n = v->n_members;
    for (size_t i = 0; i < n; i++) {
        const JsonMember *m = &v->members[i];
        long long id;
        if (!json_int(&m->value, &id) || id < 0 || (unsigned long long)id >= n)
            return err_set(err, "'%s': the id of \"%.200s\" must be an integer in 0..%zu (ids are 0..N-1, N = %zu)",
                           path, m->key, n - 1, n);
        if (by_id[id])
            return err_set(err, "'%s': id %lld is given to both \"%.200s\" and \"%.200s\"", path, id, by_id[id]->key,
                           m->key);
        by_id[id] = m;
    }
    return 0;
}

/* Copies the token strings, in id order, into b->strings. */
static int vocab_strings(Bpe *b, const JsonMember **by_id, Error *err) {
    size_t total = 0;
    for (size_t id = 0; id < b->n_vocab; id++) total += by_id[id]->key_len + 1;
    b->strings = xmalloc(total, err);
    b->string_at = xmalloc((b->n_vocab + 1) * sizeof *b->string_at, err);
    if (!b->strings || !b->string_at) return -1;
    size_t at = 0;
    for (size_t id = 0; id < b->n_vocab; id++) {
        b->string_at[id] = at;
        memcpy(b->strings + at, by_id[id]->key, by_id[id]->key_len + 1);
        at += by_id[id]->key_len + 1;
    }
    b->string_at[b->n_vocab] = at;
    return 0;
}

/* Decoded bytes of one token string of len bytes into out (at most len):
 * each character through the inverse alphabet, or the string itself when
 * a character is outside the alphabet (an added token such as "<|im_start|>"). */
static size_t token_bytes(const Bpe *b, const char *s, size_t len, unsigned char *out) {
    size_t k = 0;
    for (size_t i = 0; i < len; k++) {
        uint32_t cp;
        size_t w = utf8_decode((const unsigned char *)s + i, len - i, &cp); /* JSON strings are valid UTF-8 */
        if (cp >= ALPHABET || b->char_byte[cp] < 0) {
            memcpy(out, s, len);
            return len;
        }
        out[k] = (unsigned char)b->char_byte[cp];
        i += w;
    }
    return k;
}

static int vocab_bytes(Bpe *b, Error *err) {
    b->bytes = xmalloc(b->string_at[b->n_vocab] + 1, err);
    b->bytes_at = xmalloc((b->n_vocab + 1) * sizeof *b->bytes_at, err);
    if (!b->bytes || !b->bytes_at) return -1;
    size_t at = 0;
    for (size_t id = 0; id < b->n_vocab; id++) {
        b->bytes_at[id] = at;
        at += token_bytes(b, token_str(b, (int32_t)id), token_len(b, (int32_t)id), b->bytes + at);
    }
    b->bytes_at[b->n_vocab] = at;
    return 0;
}

/* The ids the encoder starts from: one per byte, and "<|endoftext|>". */
static void vocab_find_symbols(Bpe *b) {
    for (int c = 0; c < 256; c++) {
        char s[4];
        b->byte_id[c] = vocab_find(b, s, utf8_encode(b->byte_char[c], s), "", 0);
    }
    b->eot = vocab_find(b, endoftext, sizeof endoftext - 1, "", 0);
}

static int vocab_load(Bpe *b, const char *path, Error *err) {
    JsonValue *v;
    if (json_parse_file(path, &v, err)) return -1;
    int rc = 0;
    const JsonMember **by_id = NULL;
    if (v->type != JSON_OBJECT || v->n_members == 0 || v->n_members > INT32_MAX)
        rc = err_set(err, "'%s': expected a JSON object of token -> id (1..2^31-1 tokens)", path);
    else if (!(by_id = xcalloc(v->n_members, sizeof *by_id, err)))
        rc = -1;
    else if (!(rc = vocab_order(v, by_id, path, err))) {
        b->n_vocab = v->n_members;
        rc = vocab_strings(b, by_id, err);
    }
    free(by_id);
    json_free(v);
    if (!rc) rc = vocab_index(b, err);
    if (!rc) rc = vocab_bytes(b, err);
    if (!rc) vocab_find_symbols(b);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Loading merges.txt                                                        */

static int merge_unknown(const char *path, size_t line, const char *what, const char *a, size_t an, const char *c,
                         size_t cn, Error *err) {
    return err_set(err, "'%s' line %zu: %s \"%.*s%.*s\" is not in the vocabulary", path, line, what, (int)an, a,
                   (int)cn, c);
}

/* Adds the merge on one line (len bytes, no newline) as the next rank. */
static int merge_add(Bpe *b, const char *s, size_t len, const char *path, size_t line, Error *err) {
    const char *sp = memchr(s, ' ', len);
    size_t ln = sp ? (size_t)(sp - s) : 0, rn = sp ? len - ln - 1 : 0;
    if (!sp || !ln || !rn || memchr(sp + 1, ' ', rn))
        return err_set(err, "'%s' line %zu: expected two tokens separated by one space, got \"%.*s\"", path, line,
                       (int)(len < 200 ? len : 200), s);
    int32_t left = vocab_find(b, s, ln, "", 0), right = vocab_find(b, sp + 1, rn, "", 0);
    int32_t into = vocab_find(b, s, ln, sp + 1, rn);
    if (left < 0) return merge_unknown(path, line, "token", s, ln, "", 0, err);
    if (right < 0) return merge_unknown(path, line, "token", sp + 1, rn, "", 0, err);
    if (into < 0) return merge_unknown(path, line, "the merged token", s, ln, sp + 1, rn, err);
    int32_t rank = (int32_t)b->n_merges++;
    b->merges[rank] = (Merge){left, right, into};
    /* a repeated pair takes its later rank, as encoder.py's dict does */
    b->pairs[pair_slot(b, pair_key(left, right))] = (PairSlot){pair_key(left, right), rank};
    return 0;
}

/* Room for up to n merges. */
static int merges_alloc(Bpe *b, size_t n, Error *err) {
    size_t slots = slot_count(n);
    b->merges = xmalloc((n ? n : 1) * sizeof *b->merges, err);
    b->pairs = xmalloc(slots * sizeof *b->pairs, err);
    if (!b->merges || !b->pairs) return -1;
    for (size_t i = 0; i < slots; i++) b->pairs[i] = (PairSlot){UINT64_MAX, -1};
    b->pair_mask = slots - 1;
    return 0;
}

static int merges_read(Bpe *b, const char *s, size_t n, const char *path, Error *err) {
    size_t lines = 1;
    for (size_t i = 0; i < n; i++) lines += s[i] == '\n';
    if (lines > INT32_MAX) return err_set(err, "'%s': more than 2^31-1 lines", path);
    if (merges_alloc(b, lines, err)) return -1;
    size_t at = 0, line = 1;
    for (; at < n; line++) {
        const char *nl = memchr(s + at, '\n', n - at);
        size_t end = nl ? (size_t)(nl - s) : n, len = end - at;
        if (len && s[at + len - 1] == '\r') len--; /* CRLF files */
        bool header = line == 1 && len >= 8 && memcmp(s, "#version", 8) == 0;
        if (!header && merge_add(b, s + at, len, path, line, err)) return -1;
        at = end + 1;
    }
    return 0;
}

static int merges_load(Bpe *b, const char *path, Error *err) {
    FileMap m;
    if (file_map(&m, path, "merges file", err)) return -1;
    int rc = merges_read(b, (const char *)m.data, m.size, path, err);
    file_unmap(&m);
    return rc;
}

static int regex_compile(Bpe *b, Error *err) {
    int code;
    PCRE2_SIZE at;
    b->re = pcre2_compile((PCRE2_SPTR)pretokenizer, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED,
                          &code, &at, NULL);
    if (!b->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return err_set(err, "GPT-2 pre-tokenizer regex: %s at offset %zu", (const char *)msg, (size_t)at);
    }
    pcre2_jit_compile(b->re, PCRE2_JIT_COMPLETE); /* without JIT, pcre2_match interprets: same pieces, slower */
    return 0;
}

int bpe_load(Bpe **out, const char *vocab_json_path, const char *merges_txt_path, Error *err) {
    *out = NULL;
    Bpe *b = xcalloc(1, sizeof *b, err);
    if (!b) return -1;
    alphabet_build(b);
    int rc = vocab_load(b, vocab_json_path, err);
    if (!rc) rc = merges_load(b, merges_txt_path, err);
    if (!rc) rc = regex_compile(b, err);
    if (rc) {
        bpe_free(b);
        return -1;
    }
    *out = b;
    return 0;
}

void bpe_free(Bpe *b) {
    if (!b) return;
    free(b->strings);
    free(b->string_at);
    free(b->bytes);
    free(b->bytes_at);
    free(b->vocab_slots);
    free(b->merges);
    free(b->pairs);
    pcre2_code_free(b->re);
    free(b);
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                 */

size_t bpe_vocab_size(const Bpe *b) { return b->n_vocab; }

int32_t bpe_token_id(const Bpe *b, const char *token) { return vocab_find(b, token, strlen(token), "", 0); }

size_t bpe_decode_one(const Bpe *b, int32_t id, char *out, size_t cap) {
    if (id < 0 || (size_t)id >= b->n_vocab) return 0;
    size_t len = b->bytes_at[id + 1] - b->bytes_at[id];
    memcpy(out, b->bytes + b->bytes_at[id], len < cap ? len : cap);
    return len;
}

/* ------------------------------------------------------------------------ */
/* Merging one piece                                                         */

typedef struct {
    int32_t id;         /* vocabulary id; -1 once merged into the symbol on its left */
    int32_t prev, next; /* neighbours' positions, -1 at the ends */
} Symbol;

typedef struct {
    const Bpe *b;
    pcre2_match_data *match; /* owned */
    int32_t *out;            /* owned: the ids so far */
    size_t n_out, cap_out;
    Symbol *sym; /* owned: one piece's symbols by byte position */
    size_t cap_sym;
    uint64_t *heap; /* owned: min-heap of candidate merges, rank << 32 | position */
    size_t n_heap, cap_heap;
    uint64_t *pending; /* owned: candidates found during the current round */
    size_t n_pending, cap_pending;
    struct Cache *cache; /* owned */
} Encoder;

static void heap_push(Encoder *e, uint64_t v) {
    size_t i = e->n_heap++;
    for (; i && e->heap[(i - 1) / 2] > v; i = (i - 1) / 2) e->heap[i] = e->heap[(i - 1) / 2];
    e->heap[i] = v;
}

static uint64_t heap_pop(Encoder *e) {
    uint64_t top = e->heap[0], last = e->heap[--e->n_heap];
    size_t i = 0, n = e->n_heap;
    for (size_t c; (c = 2 * i + 1) < n; i = c) {
        if (c + 1 < n && e->heap[c + 1] < e->heap[c]) c++;
        if (e->heap[c] >= last) break;
        e->heap[i] = e->heap[c];
    }
    if (n) e->heap[i] = last;
    return top;
}

/* Queues the pair starting at position pos, if it has a merge. */
static void queue_pair(Encoder *e, int32_t pos) {
    int32_t next = e->sym[pos].next;
    if (next < 0) return;
    int32_t rank = pair_rank(e->b, e->sym[pos].id, e->sym[next].id);
    if (rank >= 0) e->pending[e->n_pending++] = (uint64_t)rank << 32 | (uint32_t)pos;
}

/* True when the merge of this rank still applies at pos: the heap keeps
 * entries whose symbols were merged away since. */
static bool merge_applies(const Encoder *e, int32_t pos, int32_t rank) {
    const Merge *m = &e->b->merges[rank];
    int32_t next = e->sym[pos].next;
    return e->sym[pos].id == m->left && next >= 0 && e->sym[next].id == m->right;
}

static void merge_at(Encoder *e, int32_t pos, int32_t rank) {
    Symbol *s = e->sym;
    int32_t gone = s[pos].next;
    s[pos].id = e->b->merges[rank].into;
    s[gone].id = -1;
    s[pos].next = s[gone].next;
    if (s[pos].next >= 0) s[s[pos].next].prev = pos;
    if (s[pos].prev >= 0) queue_pair(e, s[pos].prev);
    queue_pair(e, pos);
}

/* Applies the merges to the m symbols in e->sym, as encoder.py's bpe(): each
 * round joins every occurrence, left to right, of the lowest-ranked pair. A
 * pair formed in the round joins the heap after it, so a lower-ranked pair
 * it forms cannot cut in before the round's other occurrences. */
static void merge_piece(Encoder *e, size_t m) {
    e->n_heap = e->n_pending = 0;
    for (size_t i = 0; i + 1 < m; i++) queue_pair(e, (int32_t)i);
    for (;;) {
        while (e->n_pending) heap_push(e, e->pending[--e->n_pending]);
        if (!e->n_heap) return;
        uint64_t rank = e->heap[0] >> 32;
        while (e->n_heap && e->heap[0] >> 32 == rank) {
            int32_t pos = (int32_t)(uint32_t)heap_pop(e);
            if (merge_applies(e, pos, (int32_t)rank)) merge_at(e, pos, (int32_t)rank);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Piece cache: bytes of a piece -> its ids, for the length of one call      */

/* Its lookups are the hot loop of encoding, so a hit touches two places: a
 * slot, which holds half the hash to skip other pieces without reading them,
 * and the piece's record. The table grows with the distinct pieces rather
 * than the text, to stay small enough for the CPU caches. */
typedef struct Cache {
    uint64_t *slots; /* owned: mask + 1; (hash >> 32) << 32 | (record offset + 1), 0 = empty */
    size_t mask;
    size_t n_entries; /* at most (mask + 1) / 2; past CACHE_SLOTS_MAX / 2 the cache stops growing */
    int32_t *words;   /* owned: records [key_len << 16 | n_ids] [ids] [key bytes, padded to a word] */
    size_t n_words, cap_words;
} Cache;

static size_t record_words(size_t key_len, size_t n_ids) { return 1 + n_ids + (key_len + 3) / 4; }

static Cache *cache_new(Error *err) {
    Cache *c = xcalloc(1, sizeof *c, err);
    if (c && !(c->slots = xcalloc(CACHE_SLOTS_MIN, sizeof *c->slots, err))) {
        free(c);
        return NULL;
    }
    if (c) c->mask = CACHE_SLOTS_MIN - 1;
    return c;
}

static void cache_free(Cache *c) {
    if (!c) return;
    free(c->slots);
    free(c->words);
    free(c);
}

/* The ids of piece p (m bytes, hash h), *k of them, or NULL when it is not cached. */
static const int32_t *cache_find(const Cache *c, const unsigned char *p, size_t m, uint64_t h, size_t *k) {
    for (size_t i = mix(h) & c->mask; c->slots[i]; i = (i + 1) & c->mask) {
        if ((c->slots[i] ^ h) >> 32) continue;
        const int32_t *r = c->words + (uint32_t)c->slots[i] - 1;
        size_t n = (uint32_t)r[0] & 0xFFFF;
        if ((uint32_t)r[0] >> 16 == m && memcmp(r + 1 + n, p, m) == 0) {
            *k = n;
            return r + 1;
        }
    }
    return NULL;
}

static void cache_link(Cache *c, uint64_t h, size_t at) {
    size_t i = mix(h) & c->mask;
    while (c->slots[i]) i = (i + 1) & c->mask;
    c->slots[i] = (h >> 32 << 32) | (uint64_t)(at + 1);
}

/* Doubles the slots; the hashes come again from the keys in the records. */
static int cache_rehash(Cache *c, Error *err) {
    size_t slots = 2 * (c->mask + 1);
    uint64_t *s = xcalloc(slots, sizeof *s, err);
    if (!s) return -1;
    free(c->slots);
    c->slots = s;
    c->mask = slots - 1;
    for (size_t at = 0; at < c->n_words;) {
        size_t m = (uint32_t)c->words[at] >> 16, n = (uint32_t)c->words[at] & 0xFFFF;
        cache_link(c, hash_bytes(HASH_SEED, c->words + at + 1 + n, m), at);
        at += record_words(m, n);
    }
    return 0;
}

/* Remembers piece p (m <= CACHE_KEY_MAX bytes) -> ids[0, k); a full cache keeps what it has. */
static int cache_put(Cache *c, const unsigned char *p, size_t m, uint64_t h, const int32_t *ids, size_t k, Error *err) {
    if (c->n_entries >= (c->mask + 1) / 2) {
        if (c->mask + 1 >= CACHE_SLOTS_MAX) return 0;
        if (cache_rehash(c, err)) return -1;
    }
    size_t words = record_words(m, k);
    if (xgrow(&c->words, &c->cap_words, c->n_words + words, sizeof *c->words, err)) return -1;
    int32_t *r = c->words + c->n_words;
    r[0] = (int32_t)(m << 16 | k);
    memcpy(r + 1, ids, k * sizeof *ids);
    memcpy(r + 1 + k, p, m);
    cache_link(c, h, c->n_words);
    c->n_words += words;
    c->n_entries++;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */

static int emit(Encoder *e, const int32_t *ids, size_t k, Error *err) {
    if (xgrow(&e->out, &e->cap_out, e->n_out + k, sizeof *e->out, err)) return -1;
    memcpy(e->out + e->n_out, ids, k * sizeof *ids);
    e->n_out += k;
    return 0;
}

static int missing_symbol(const Bpe *b, unsigned char byte, size_t at, Error *err) {
    char s[4];
    size_t k = utf8_encode(b->byte_char[byte], s);
    return err_set(err, "the symbol \"%.*s\" (U+%04X) of byte 0x%02X at byte %zu is not in the vocabulary", (int)k, s,
                   (unsigned)b->byte_char[byte], byte, at);
}

/* Merges piece p (m bytes at text offset at) and appends its ids. */
static int merge_and_emit(Encoder *e, const unsigned char *p, size_t m, size_t at, Error *err) {
    if (m > INT32_MAX) return err_set(err, "a pre-token of %zu bytes at byte %zu is too long", m, at);
    if (xgrow(&e->sym, &e->cap_sym, m, sizeof *e->sym, err) ||
        xgrow(&e->heap, &e->cap_heap, 3 * m, sizeof *e->heap, err) || /* m - 1 pairs + 2 per merge */
        xgrow(&e->pending, &e->cap_pending, 2 * m, sizeof *e->pending, err) ||
        xgrow(&e->out, &e->cap_out, e->n_out + m, sizeof *e->out, err))
        return -1;
    for (size_t i = 0; i < m; i++) {
        int32_t id = e->b->byte_id[p[i]];
        if (id < 0) return missing_symbol(e->b, p[i], at + i, err);
        e->sym[i] = (Symbol){id, (int32_t)i - 1, i + 1 < m ? (int32_t)i + 1 : -1};
    }
    merge_piece(e, m);
    for (int32_t i = 0; i >= 0; i = e->sym[i].next) e->out[e->n_out++] = e->sym[i].id;
    return 0;
}

/* Appends the ids of one pre-token piece, from the cache when it is there. */
static int encode_piece(Encoder *e, const unsigned char *p, size_t m, size_t at, Error *err) {
    if (m == 1) {
        int32_t id = e->b->byte_id[p[0]];
        return id < 0 ? missing_symbol(e->b, p[0], at, err) : emit(e, &id, 1, err);
    }
    uint64_t h = m <= CACHE_KEY_MAX ? hash_bytes(HASH_SEED, p, m) : 0;
    size_t k;
    const int32_t *cached = m <= CACHE_KEY_MAX ? cache_find(e->cache, p, m, h, &k) : NULL;
    if (cached) return emit(e, cached, k, err);
    size_t first = e->n_out;
    if (merge_and_emit(e, p, m, at, err)) return -1;
    return m <= CACHE_KEY_MAX ? cache_put(e->cache, p, m, h, e->out + first, e->n_out - first, err) : 0;
}

static int regex_failed(int rc, size_t at, Error *err) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return err_set(err, "GPT-2 pre-tokenizer failed at byte %zu: %s", at, (const char *)msg);
}

/* Encodes text between special tokens (s[0, n) at text offset base): the
 * regex sees only this part, so "\s+(?!\S)" ends at the special token. */
static int encode_part(Encoder *e, const unsigned char *s, size_t n, size_t base, Error *err) {
    for (size_t at = 0; at < n;) {
        int rc = pcre2_match(e->b->re, s, n, at, PCRE2_NO_UTF_CHECK, e->match, NULL);
        if (rc < 0) return regex_failed(rc, base + at, err);
        size_t end = pcre2_get_ovector_pointer(e->match)[1];
        if (encode_piece(e, s + at, end - at, base + at, err)) return -1;
        at = end;
    }
    return 0;
}

/* Splits on "<|endoftext|>" (when the vocabulary has it) before the regex,
 * as the Hugging Face tokenizer does with its special tokens. */
static int encode_text(Encoder *e, const unsigned char *text, size_t n, Error *err) {
    const size_t k = sizeof endoftext - 1;
    for (size_t at = 0;;) {
        const unsigned char *hit = e->b->eot >= 0 ? memmem(text + at, n - at, endoftext, k) : NULL;
        size_t end = hit ? (size_t)(hit - text) : n;
        if (encode_part(e, text + at, end - at, at, err)) return -1;
        if (!hit) return 0;
        if (emit(e, &e->b->eot, 1, err)) return -1;
        at = end + k;
    }
}

static void encoder_free(Encoder *e) {
    pcre2_match_data_free(e->match);
    free(e->out);
    free(e->sym);
    free(e->heap);
    free(e->pending);
    cache_free(e->cache);
}

/* A row ends after its '\n' (or at the end of the text); it is blank when it
 * holds only whitespace (Python's str.strip() would leave nothing). */
static size_t row_end(const unsigned char *text, size_t at, size_t n, bool *blank) {
    *blank = true;
    while (at < n) {
        uint32_t cp;
        size_t k = utf8_decode(text + at, n - at, &cp); /* the text is valid UTF-8 by now */
        at += k;
        if (cp == '\n') break;
        if (!utf8_is_space(cp)) *blank = false;
    }
    return at;
}

static int encode_rows(Encoder *e, const unsigned char *text, size_t n, int32_t eos, Error *err) {
    for (size_t at = 0; at < n;) {
        bool blank;
        size_t end = row_end(text, at, n, &blank);
        if (!blank && (encode_text(e, text + at, end - at, err) || emit(e, &eos, 1, err))) return -1;
        at = end;
    }
    return 0;
}

/* Encodes the whole text (eos < 0) or row by row. */
static int encode_with(const Bpe *b, const unsigned char *text, size_t n, int32_t eos, int32_t **ids, size_t *n_ids,
                       Error *err) {
    *ids = NULL;
    *n_ids = 0;
    size_t bad = utf8_first_invalid(text, n);
    if (bad < n) return err_set(err, "text is not valid UTF-8 at byte %zu", bad);
    if (n == 0) return 0;
    Encoder e = {.b = b};
    int rc = 0;
    e.match = pcre2_match_data_create_from_pattern(b->re, NULL);
    if (!e.match) rc = err_set(err, "out of memory (PCRE2 match data)");
    if (!rc && !(e.cache = cache_new(err))) rc = -1;
    if (!rc) rc = xgrow(&e.out, &e.cap_out, n / 4 + 16, sizeof *e.out, err); /* English: ~4.5 bytes per token */
    if (!rc) rc = eos < 0 ? encode_text(&e, text, n, err) : encode_rows(&e, text, n, eos, err);
    if (!rc && e.n_out) {
        int32_t *fit = realloc(e.out, e.n_out * sizeof *e.out);
        *ids = fit ? fit : e.out;
        *n_ids = e.n_out;
        e.out = NULL;
    }
    encoder_free(&e);
    return rc;
}

int bpe_encode(const Bpe *b, const unsigned char *text, size_t n, int32_t **ids, size_t *n_ids, Error *err) {
    return encode_with(b, text, n, -1, ids, n_ids, err);
}

int bpe_encode_rows(const Bpe *b, const unsigned char *text, size_t n, int32_t eos, int32_t **ids, size_t *n_ids,
                    Error *err) {
    if (eos < 0 || (size_t)eos >= b->n_vocab) return err_set(err, "end-of-row id %d is not in the vocabulary", eos);
    return encode_with(b, text, n, eos, ids, n_ids, err);
}
