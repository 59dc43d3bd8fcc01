/* tokenizer.h — text to token ids and back.
 *
 * byte: id = byte value, vocabulary 256; any file is valid.
 * char: id i = the i-th distinct Unicode code point of the training text, in
 *       increasing order (the text must be UTF-8). Held-out text may hold
 *       characters the training text lacks; when the tokenizer is built with
 *       tokenizer_add_unk they map to one extra id, <unk> (= n_symbols).
 * word: the Transformer-XL word vocabulary with <eos> per line (words.h).
 * bpe:  GPT-2's byte-level BPE from a vocab.json / merges.txt pair (bpe.h);
 *       a run directory keeps copies of the pair next to its vocab.json.
 * symbols: a fixed list of symbols for generated tasks (assoc_recall's '.',
 *       "0", ..., '=>'): decodes ids, encodes no text.
 *
 *     Tokenizer tok = {.type = TOK_CHAR};
 *     if (tokenizer_build(&tok, text, n, "train.txt", &err)) ...
 *     int32_t *ids; size_t n_ids, unknown;
 *     if (tokenizer_encode(&tok, text, n, true, &ids, &n_ids, &unknown, "train.txt", &err)) ...
 *     char buf[256]; fwrite(buf, 1, tokenizer_decode_one(&tok, ids[0], buf, sizeof buf), stdout);
 *     tokenizer_save(&tok, "run/vocab.json", &err);    // format: docs/formats.md
 *     tokenizer_free(&tok);
 *
 */
#ifndef SEQLAB_TOKENIZER_H
#define SEQLAB_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/json.h"
#include "bpe.h"
#include "words.h"

typedef enum { TOK_BYTE, TOK_CHAR, TOK_WORD, TOK_BPE, TOK_SYMBOLS } TokenizerType;

#define TOKENIZER_PATH 1024

typedef struct {
    TokenizerType type;
    uint32_t *symbols; /* char: owned, n_symbols code points in increasing order; otherwise NULL */
    size_t n_symbols;
    bool unk;          /* char: id n_symbols is <unk> */
    Words words;       /* word, symbols: owned vocabulary */
    Bpe *bpe;          /* bpe: owned */
    char bpe_vocab[TOKENIZER_PATH], bpe_merges[TOKENIZER_PATH]; /* bpe: the files it was read from */
} Tokenizer;

/* "byte", "char", "word", "bpe"; and back (-1 for an unknown name). */
const char *tokenizer_type_name(TokenizerType t);
int tokenizer_type_parse(const char *name, TokenizerType *t);

/* Makes t the symbols tokenizer of n symbols in id order. */
int tokenizer_symbols(Tokenizer *t, const char *const *symbols, size_t n, Error *err);
/* Makes t the byte tokenizer. */
void tokenizer_byte(Tokenizer *t);
/* Makes t the BPE tokenizer of a vocab.json / merges.txt pair. */
int tokenizer_bpe(Tokenizer *t, const char *vocab_json, const char *merges_txt, Error *err);

/* For a char or word tokenizer: builds the vocabulary from the training
 * text (UTF-8, n bytes), replacing any it had. Errors name `name` and the
 * byte offset of invalid UTF-8. A byte tokenizer is left as it is. */
int tokenizer_build(Tokenizer *t, const unsigned char *text, size_t n, const char *name, Error *err);

/* Gives a char tokenizer the <unk> id (vocabulary grows by one). */
void tokenizer_add_unk(Tokenizer *t);

/* Vocabulary size: the number of distinct ids. */
size_t tokenizer_vocab(const Tokenizer *t);

/* True when one token is one character or byte, so the loss is reported in
 * bits per character rather than as perplexity. */
bool tokenizer_per_char(const Tokenizer *t);

/* Encodes n bytes of text into a new array *ids (owned by the caller, free()
 * it) of *n_ids ids. A symbol outside the vocabulary becomes <unk> when
 * map_unknown is true and the tokenizer has <unk> (counted in *n_unknown,
 * which may be NULL); otherwise it is an error naming `name`, the position
 * and the symbol. (Word vocabularies that hold <unk> always map to it, as
 * the original does.) */
int tokenizer_encode(const Tokenizer *t, const unsigned char *text, size_t n, bool map_unknown, int32_t **ids,
                     size_t *n_ids, size_t *n_unknown, const char *name, Error *err);

/* Writes the text of one id to out (at most cap >= 4 bytes; a longer word is
 * cut) and returns its length. Words are followed by a space, <eos> is a
 * newline; a char <unk> and ids outside the vocabulary are U+FFFD. */
size_t tokenizer_decode_one(const Tokenizer *t, int32_t id, char *out, size_t cap);

/* vocab.json (docs/formats.md): save atomically; load checks every field and
 * names the file. */
/* vocab.json's text (the BPE tables are files of their own) appended to b. */
void tokenizer_json(const Tokenizer *t, StrBuf *b);
int tokenizer_save(const Tokenizer *t, const char *path, Error *err);
int tokenizer_load(Tokenizer *t, const char *path, Error *err);

/* Frees the symbols; accepts a zeroed tokenizer. */
void tokenizer_free(Tokenizer *t);

#endif
