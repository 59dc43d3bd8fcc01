/* words.h — word-level vocabulary, as the Transformer-XL / FMMformer trainer
 * builds it for WikiText (shared/spec/tasks-fmm-nystrom.md A.1):
 *
 * - a line is a run of text ending at '\n' (or "\r\n", or '\r': Python's
 *   universal newlines), or at the end of the text;
 * - a line's tokens are what Python's str.split() gives: runs of anything
 *   but Unicode whitespace (str.isspace: \t \n \v \f \r \x1c-\x1f, space,
 *   U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F,
 *   U+3000);
 * - every line, empty ones too, ends with the token <eos>;
 * - the vocabulary, counted on the training text only: <eos> is id 0, then
 *   every word by decreasing count, ties in order of first occurrence;
 * - a word outside the vocabulary becomes <unk> when the vocabulary has that
 *   word (WikiText does: its text holds literal "<unk>"); otherwise it is an
 *   error.
 *
 *     Words w;
 *     if (words_build(&w, train, n, "wiki.train.tokens", &err)) ...
 *     if (words_encode(&w, valid, m, &ids, &n_ids, &unknown, "wiki.valid.tokens", &err)) ...
 *     size_t len; const char *s = words_symbol(&w, ids[0], &len);
 *     words_free(&w);
 */
#ifndef SEQLAB_WORDS_H
#define SEQLAB_WORDS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/strmap.h"

#define WORDS_EOS "<eos>"
#define WORDS_UNK "<unk>"

typedef struct {
    StrMap ids;          /* word -> id */
    size_t n;            /* vocabulary size, <eos> included */
    size_t *offset;      /* owned, n: where word id's bytes start in ids.chars */
    uint32_t *len;       /* owned, n: its length */
    int32_t unk;         /* id of <unk>, or -1 */
} Words;

/* Builds the vocabulary from n bytes of (UTF-8) training text. Errors name
 * `name`: invalid UTF-8 (with the byte offset). */
int words_build(Words *w, const unsigned char *text, size_t n, const char *name, Error *err);
/* Builds the vocabulary from its symbols in id order (symbols[0] must be
 * <eos>, none repeated), as read back from vocab.json. */
int words_from_symbols(Words *w, const char *const *symbols, size_t n, const char *name, Error *err);
/* The same for a list of symbols that encodes no text (a generated task's
 * vocabulary): no <eos> is required. */
int words_from_list(Words *w, const char *const *symbols, size_t n, const char *name, Error *err);
/* Encodes text into a new array *ids (caller frees) with one <eos> per line;
 * *n_unknown (may be NULL) counts words mapped to <unk>. A word outside a
 * vocabulary without <unk> is an error naming `name`, the line and the word. */
int words_encode(const Words *w, const unsigned char *text, size_t n, int32_t **ids, size_t *n_ids,
                 size_t *n_unknown, const char *name, Error *err);
/* The bytes of word `id` (not NUL-terminated) and their count; NULL for an
 * id outside the vocabulary. */
const char *words_symbol(const Words *w, int32_t id, size_t *len);
/* Frees everything; accepts a zeroed Words. */
void words_free(Words *w);

#endif
