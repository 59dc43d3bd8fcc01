/* bpe.h — GPT-2's byte-level BPE tokenizer: vocab.json + merges.txt, as read
 * by OpenAI's gpt-2 encoder.py and the Hugging Face "gpt2" tokenizer.
 *
 * Encoding splits the text on "<|endoftext|>" (when the vocabulary has it),
 * cuts each part into pieces with GPT-2's pre-tokenizer regex, spells each
 * piece's bytes in GPT-2's byte alphabet (bytes_to_unicode: printable Latin-1
 * bytes stand for themselves, the others for U+0100..U+0143, so ' ' is 'Ġ'),
 * applies the merges lowest rank first and looks the symbols up. Decoding
 * maps the characters back to bytes, so decode(encode(text)) == text.
 *
 *     Bpe *b;
 *     if (bpe_load(&b, "gpt2/vocab.json", "gpt2/merges.txt", &err)) ...
 *     int32_t *ids; size_t n_ids;
 *     if (bpe_encode(b, text, n, &ids, &n_ids, &err)) ...    // "Hello world" -> 15496, 995
 *     char buf[256];
 *     size_t k = bpe_decode_one(b, ids[0], buf, sizeof buf);  // "Hello" (k > sizeof buf: cut)
 *     free(ids);
 *     bpe_free(b);
 *
 * A loaded Bpe is read-only: threads may share it and encode at once.
 */
#ifndef SEQLAB_BPE_H
#define SEQLAB_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

typedef struct Bpe Bpe; /* opaque */

/* Loads vocab.json (an object: token string -> id, the ids 0..N-1 each used
 * once, tokens spelled in the byte alphabet) and merges.txt (an optional first
 * line "#version..."; then one "left right" pair per line, both and their
 * concatenation in the vocabulary; rank = line order, a repeated pair keeps
 * its last rank as encoder.py's dict does). On success *out is owned by the
 * caller (bpe_free). On failure *out is NULL and err names the file, and for
 * merges.txt the line. */
int bpe_load(Bpe **out, const char *vocab_json_path, const char *merges_txt_path, Error *err);

/* Encodes n bytes of UTF-8 text into *ids (malloc'ed, the caller frees it;
 * NULL when *n_ids is 0). Errors leave *ids NULL: invalid UTF-8 names its byte
 * offset; a byte whose alphabet symbol is not in the vocabulary names the
 * symbol and the offset. */
int bpe_encode(const Bpe *b, const unsigned char *text, size_t n, int32_t **ids, size_t *n_ids, Error *err);

/* Encodes text row by row as the Hugging Face wikitext loader and the
 * S5/Hyena WikiText-103 pipeline (add_eos) do (shared/spec/tasks-synthetic-lra.md
 * b.1): a row is a line with its '\n'; a row of only whitespace gives
 * nothing; every other row gives its ids followed by `eos` (in GPT-2,
 * <|endoftext|>, 50256). Errors as bpe_encode, or an eos outside the vocabulary. */
int bpe_encode_rows(const Bpe *b, const unsigned char *text, size_t n, int32_t eos, int32_t **ids, size_t *n_ids,
                    Error *err);

/* Writes the bytes of token `id` to out, at most cap of them, and returns the
 * token's full length (as snprintf: a value above cap means out holds only the
 * first cap bytes); 0 for an id outside the vocabulary. A token whose string
 * has a character outside the byte alphabet (an added special token) is its
 * string's own UTF-8. */
size_t bpe_decode_one(const Bpe *b, int32_t id, char *out, size_t cap);

/* Number of ids, N. */
size_t bpe_vocab_size(const Bpe *b);

/* Id of a token string as written in vocab.json (e.g. "<|endoftext|>",
 * "Ġthe"), or -1. */
int32_t bpe_token_id(const Bpe *b, const char *token);

/* Frees b; accepts NULL. */
void bpe_free(Bpe *b);

#endif
