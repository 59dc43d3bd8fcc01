/* tokenizer.c — byte and character tokenizers and their vocab.json; see
 * tokenizer.h. The character vocabulary is the sorted set of code points of
 * the training text, the way char-rnn and nanoGPT's shakespeare_char build it. */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "../core/file.h"
#include "../core/json.h"
#include "../core/utf8.h"

#define CODE_POINTS 0x110000u
static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

void tokenizer_byte(Tokenizer *t) {
    tokenizer_free(t);
    t->type = TOK_BYTE;
}

void tokenizer_free(Tokenizer *t) {
    free(t->symbols);
    t->symbols = NULL;
    t->n_symbols = 0;
    t->unk = false;
    words_free(&t->words);
    bpe_free(t->bpe);
    t->bpe = NULL;
}

static const char *const type_names[] = {"byte", "char", "word", "bpe", "symbols"};

const char *tokenizer_type_name(TokenizerType t) { return type_names[t]; }

int tokenizer_type_parse(const char *name, TokenizerType *t) {
    for (size_t i = 0; i < sizeof type_names / sizeof *type_names; i++)
        if (strcmp(name, type_names[i]) == 0) return *t = (TokenizerType)i, 0;
    return -1;
}

size_t tokenizer_vocab(const Tokenizer *t) {
    switch (t->type) {
    case TOK_BYTE: return 256;
    case TOK_CHAR: return t->n_symbols + (t->unk ? 1 : 0);
    case TOK_WORD:
    case TOK_SYMBOLS: return t->words.n;
    case TOK_BPE: return bpe_vocab_size(t->bpe);
    }
    return 0;
}

bool tokenizer_per_char(const Tokenizer *t) { return t->type == TOK_BYTE || t->type == TOK_CHAR; }

int tokenizer_symbols(Tokenizer *t, const char *const *symbols, size_t n, Error *err) {
    tokenizer_free(t);
    t->type = TOK_SYMBOLS;
    return words_from_list(&t->words, symbols, n, "the symbols vocabulary", err);
}

int tokenizer_bpe(Tokenizer *t, const char *vocab_json, const char *merges_txt, Error *err) {
    tokenizer_free(t);
    t->type = TOK_BPE;
    if (bpe_load(&t->bpe, vocab_json, merges_txt, err)) return -1;
    if (snprintf(t->bpe_vocab, sizeof t->bpe_vocab, "%s", vocab_json) >= (int)sizeof t->bpe_vocab ||
        snprintf(t->bpe_merges, sizeof t->bpe_merges, "%s", merges_txt) >= (int)sizeof t->bpe_merges)
        return err_set(err, "path too long: '%.200s'", vocab_json);
    return 0;
}

void tokenizer_add_unk(Tokenizer *t) {
    if (t->type == TOK_CHAR) t->unk = true;
}

static int invalid_utf8(const char *name, size_t at, Error *err) {
    return err_set(err, "%s is not valid UTF-8 at byte %zu; use tokenizer: byte for binary data", name, at);
}

static int build_chars(Tokenizer *t, const unsigned char *text, size_t n, const char *name, Error *err) {
    uint8_t *seen = xcalloc(CODE_POINTS / 8, 1, err); /* one bit per code point */
    if (!seen) return -1;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_decode(text + i, n - i, &cp);
        if (!k) {
            free(seen);
            return invalid_utf8(name, i, err);
        }
        seen[cp >> 3] |= (uint8_t)(1u << (cp & 7));
        i += k;
    }
    size_t count = 0;
    for (uint32_t cp = 0; cp < CODE_POINTS; cp++) count += (seen[cp >> 3] >> (cp & 7)) & 1;
    uint32_t *symbols = xmalloc((count ? count : 1) * sizeof *symbols, err);
    if (symbols) {
        size_t k = 0;
        for (uint32_t cp = 0; cp < CODE_POINTS; cp++)
            if ((seen[cp >> 3] >> (cp & 7)) & 1) symbols[k++] = cp;
        tokenizer_free(t);
        t->symbols = symbols;
        t->n_symbols = count;
    }
    free(seen);
    return symbols ? 0 : -1;
}

int tokenizer_build(Tokenizer *t, const unsigned char *text, size_t n, const char *name, Error *err) {
    if (t->type == TOK_CHAR) return build_chars(t, text, n, name, err);
    if (t->type != TOK_WORD) return 0;
    Words w;
    if (words_build(&w, text, n, name, err)) return -1;
    words_free(&t->words);
    t->words = w;
    return 0;
}

/* The id of code point cp, or -1 when it is not in the vocabulary. */
static int32_t char_id(const Tokenizer *t, uint32_t cp) {
    size_t lo = 0, hi = t->n_symbols;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->symbols[mid] < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < t->n_symbols && t->symbols[lo] == cp ? (int32_t)lo : -1;
}

static int unknown_char(const char *name, size_t at, const unsigned char *s, size_t k, uint32_t cp, Error *err) {
    if (cp < 0x20 || cp == 0x7F)
        return err_set(err, "%s: character U+%04X at byte %zu is not in the vocabulary", name, (unsigned)cp, at);
    return err_set(err, "%s: character '%.*s' (U+%04X) at byte %zu is not in the vocabulary", name, (int)k,
                   (const char *)s, (unsigned)cp, at);
}

/* Character ids of text into ids (at most n of them); returns the count or
 * (size_t)-1 after setting err. */
static size_t encode_chars(const Tokenizer *t, const unsigned char *text, size_t n, bool map_unknown, int32_t *ids,
                           size_t *n_unknown, const char *name, Error *err) {
    size_t count = 0, unknown = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_decode(text + i, n - i, &cp);
        if (!k) return invalid_utf8(name, i, err), (size_t)-1;
        int32_t id = char_id(t, cp);
        if (id < 0 && !(map_unknown && t->unk)) return unknown_char(name, i, text + i, k, cp, err), (size_t)-1;
        if (id < 0) id = (int32_t)t->n_symbols, unknown++;
        ids[count++] = id;
        i += k;
    }
    if (n_unknown) *n_unknown = unknown;
    return count;
}

int tokenizer_encode(const Tokenizer *t, const unsigned char *text, size_t n, bool map_unknown, int32_t **ids,
                     size_t *n_ids, size_t *n_unknown, const char *name, Error *err) {
    *ids = NULL;
    *n_ids = 0;
    if (n_unknown) *n_unknown = 0;
    if (t->type == TOK_SYMBOLS)
        return err_set(err, "%s: a symbols vocabulary (a generated task's) encodes no text", name);
    int32_t *out = xmalloc((n ? n : 1) * sizeof *out, err); /* at most one id per byte */
    if (!out) return -1;
    if (t->type == TOK_WORD || t->type == TOK_BPE) {
        free(out);
        if (t->type == TOK_WORD) return words_encode(&t->words, text, n, ids, n_ids, n_unknown, name, err);
        return bpe_encode(t->bpe, text, n, ids, n_ids, err) ? err_prefix(err, "%s", name) : 0;
    }
    size_t count = n;
    if (t->type == TOK_BYTE)
        for (size_t i = 0; i < n; i++) out[i] = text[i];
    else
        count = encode_chars(t, text, n, map_unknown, out, n_unknown, name, err);
    if (count == (size_t)-1) {
        free(out);
        return -1;
    }
    *ids = out;
    *n_ids = count;
    return 0;
}

/* A word and its trailing space (a text vocabulary's <eos>, id 0: a newline), cut to cap bytes. */
static size_t decode_word(const Words *w, int32_t id, bool text, char *out, size_t cap) {
    size_t len;
    const char *s = words_symbol(w, id, &len);
    if (text && id == 0) return out[0] = '\n', 1;
    if (len + 1 > cap) len = cap - 1;
    memcpy(out, s, len);
    out[len] = ' ';
    return len + 1;
}

size_t tokenizer_decode_one(const Tokenizer *t, int32_t id, char *out, size_t cap) {
    if (t->type == TOK_BYTE && id >= 0 && id < 256) {
        out[0] = (char)id;
        return 1;
    }
    if ((t->type == TOK_WORD || t->type == TOK_SYMBOLS) && id >= 0 && (size_t)id < t->words.n)
        return decode_word(&t->words, id, t->type == TOK_WORD, out, cap);
    if (t->type == TOK_BPE) {
        size_t len = bpe_decode_one(t->bpe, id, out, cap);
        if (len) return len < cap ? len : cap;
    }
    if (t->type == TOK_CHAR && id >= 0 && (size_t)id < t->n_symbols) return utf8_encode(t->symbols[id], out);
    memcpy(out, replacement, 3);
    return 3;
}

/* ------------------------------------------------------------------------ */
/* vocab.json                                                                */

/* "symbols": code points (char) or word strings (word). */
static void append_symbols(StrBuf *b, const Tokenizer *t) {
    for (size_t i = 0; i < t->n_symbols; i++) sb_appendf(b, "%s%u", i ? ", " : "", (unsigned)t->symbols[i]);
    for (size_t i = 0; (t->type == TOK_WORD || t->type == TOK_SYMBOLS) && i < t->words.n; i++) {
        size_t len;
        const char *w = words_symbol(&t->words, (int32_t)i, &len);
        sb_appendf(b, "%s", i ? ", " : "");
        sb_append_json_string(b, w, len);
    }
}

/* The BPE pair lives next to vocab.json under these names. */
static const char bpe_vocab_name[] = "bpe-vocab.json", bpe_merges_name[] = "bpe-merges.txt";

/* dir_of("a/b/vocab.json") + name -> "a/b/name" (TOKENIZER_PATH bytes). */
static int sibling(char *out, const char *path, const char *name, Error *err) {
    const char *slash = strrchr(path, '/');
    int n = snprintf(out, TOKENIZER_PATH, "%.*s%s", slash ? (int)(slash - path + 1) : 0, path, name);
    return n < TOKENIZER_PATH ? 0 : err_set(err, "path too long beside '%.200s'", path);
}

/* Copies src to dst atomically (nothing to do when they are one file). */
static int copy_file(const char *src, const char *dst, Error *err) {
    if (strcmp(src, dst) == 0) return 0;
    FileMap m;
    if (file_map(&m, src, NULL, err)) return -1;
    const void *parts[] = {m.data};
    int rc = file_write_atomic(dst, parts, &m.size, 1, err);
    file_unmap(&m);
    return rc;
}

static int save_bpe_files(const Tokenizer *t, const char *path, Error *err) {
    char vocab[TOKENIZER_PATH], merges[TOKENIZER_PATH];
    return sibling(vocab, path, bpe_vocab_name, err) || sibling(merges, path, bpe_merges_name, err) ||
                   copy_file(t->bpe_vocab, vocab, err) || copy_file(t->bpe_merges, merges, err)
               ? -1
               : 0;
}

void tokenizer_json(const Tokenizer *t, StrBuf *b) {
    sb_appendf(b, "{\"type\": \"%s\", \"symbols\": [", tokenizer_type_name(t->type));
    append_symbols(b, t);
    sb_appendf(b, "], \"unk\": %s", t->unk ? "true" : "false");
    if (t->type == TOK_BPE)
        sb_appendf(b, ", \"vocab\": \"%s\", \"merges\": \"%s\", \"vocab_size\": %zu", bpe_vocab_name,
                   bpe_merges_name, tokenizer_vocab(t));
    sb_appendf(b, "}\n");
}

int tokenizer_save(const Tokenizer *t, const char *path, Error *err) {
    if (t->type == TOK_BPE && save_bpe_files(t, path, err)) return -1;
    StrBuf b;
    sb_init(&b);
    tokenizer_json(t, &b);
    int rc = b.failed ? err_set(err, "cannot write '%s': out of memory", path) : 0;
    const void *parts[] = {b.data};
    if (!rc) rc = file_write_atomic(path, parts, &b.len, 1, err);
    sb_free(&b);
    return rc;
}

/* Reads the "symbols" array of a char tokenizer: code points, strictly
 * increasing, valid Unicode scalars. */
static int load_code_points(Tokenizer *t, const JsonValue *arr, const char *path, Error *err) {
    size_t n = json_len(arr);
    if (n < 1) return err_set(err, "'%s': a char tokenizer needs at least one symbol", path);
    if (!(t->symbols = xmalloc(n * sizeof *t->symbols, err))) return -1;
    for (size_t i = 0; i < n; i++) {
        long long cp;
        if (!json_int(json_at(arr, i), &cp) || cp < 0 || cp >= CODE_POINTS || (cp >= 0xD800 && cp <= 0xDFFF))
            return err_set(err, "'%s': symbols[%zu] is not a Unicode code point", path, i);
        if (i && (uint32_t)cp <= t->symbols[i - 1])
            return err_set(err, "'%s': symbols[%zu] = %lld is not above the one before it", path, i, cp);
        t->symbols[i] = (uint32_t)cp;
    }
    t->n_symbols = n;
    return 0;
}

/* Reads the "symbols" array of a word tokenizer: strings, <eos> first. */
static int load_words(Tokenizer *t, const JsonValue *arr, const char *path, Error *err) {
    size_t n = json_len(arr);
    const char **words = xmalloc((n ? n : 1) * sizeof *words, err);
    if (!words) return -1;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if (!(words[i] = json_str(json_at(arr, i))) || strlen(words[i]) != json_at(arr, i)->string_len)
            rc = err_set(err, "'%s': symbols[%zu] is not a string without NUL characters", path, i);
    char name[1100];
    snprintf(name, sizeof name, "'%s'", path);
    if (!rc) rc = t->type == TOK_SYMBOLS ? words_from_list(&t->words, words, n, name, err)
                                         : words_from_symbols(&t->words, words, n, name, err);
    free(words);
    return rc;
}

/* A bpe vocab.json names its pair (next to it) and the vocabulary size it expects. */
static int load_bpe(Tokenizer *t, const JsonValue *v, const char *path, Error *err) {
    const char *vname = json_str(json_get(v, "vocab")), *mname = json_str(json_get(v, "merges"));
    long long size;
    if (!vname || !mname || strchr(vname, '/') || strchr(mname, '/') || !json_int(json_get(v, "vocab_size"), &size))
        return err_set(err, "'%s': a bpe tokenizer names \"vocab\" and \"merges\" files beside it and its "
                            "\"vocab_size\"", path);
    char vocab[TOKENIZER_PATH], merges[TOKENIZER_PATH];
    if (sibling(vocab, path, vname, err) || sibling(merges, path, mname, err) || tokenizer_bpe(t, vocab, merges, err))
        return -1;
    if ((long long)tokenizer_vocab(t) != size)
        return err_set(err, "'%s': the BPE files give %zu ids, the vocabulary says %lld", path, tokenizer_vocab(t),
                       size);
    return 0;
}

static int load_symbols(Tokenizer *t, const JsonValue *arr, const char *path, Error *err) {
    if (t->type == TOK_BYTE || t->type == TOK_BPE)
        return arr && json_len(arr) ? err_set(err, "'%s': a %s tokenizer has no \"symbols\"", path,
                                              tokenizer_type_name(t->type))
                                    : 0;
    if (!arr || arr->type != JSON_ARRAY) return err_set(err, "'%s': \"symbols\" must be an array", path);
    return t->type == TOK_CHAR ? load_code_points(t, arr, path, err) : load_words(t, arr, path, err);
}

static int load_fields(Tokenizer *t, const JsonValue *v, const char *path, Error *err) {
    const char *type = json_str(json_get(v, "type"));
    const JsonValue *unk = json_get(v, "unk");
    if (!type || tokenizer_type_parse(type, &t->type))
        return err_set(err, "'%s': \"type\" must be \"byte\", \"char\", \"word\" or \"bpe\"", path);
    if (!unk || unk->type != JSON_BOOL) return err_set(err, "'%s': \"unk\" must be true or false", path);
    if (load_symbols(t, json_get(v, "symbols"), path, err)) return -1;
    if (t->type == TOK_BPE && load_bpe(t, v, path, err)) return -1;
    if (unk->boolean && t->type != TOK_CHAR) return err_set(err, "'%s': only a char tokenizer has \"unk\" true", path);
    t->unk = unk->boolean;
    return 0;
}

int tokenizer_load(Tokenizer *t, const char *path, Error *err) {
    memset(t, 0, sizeof *t);
    JsonValue *v;
    if (json_parse_file(path, &v, err)) return -1;
    int rc = v->type == JSON_OBJECT ? load_fields(t, v, path, err) : err_set(err, "'%s': expected a JSON object", path);
    json_free(v);
    if (rc) tokenizer_free(t);
    return rc;
}
