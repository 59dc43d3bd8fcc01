/* bpe_fixture.h — GPT-2 style BPE files written by the tests themselves
 * (there are no real GPT-2 files on a test machine): the 256 byte symbols in
 * GPT-2's id order, the tokens of a few merges, and "<|endoftext|>". */
#ifndef SEQLAB_BPE_FIXTURE_H
#define SEQLAB_BPE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A merge as the text bytes of its two parts: {" t", "he"} is "Ġt he". */
typedef struct {
    const char *left, *right;
} Pair;

/* GPT-2's bytes_to_unicode, stated independently of bpe.c: the byte of each
 * of the first 256 ids and the code point that stands for each byte. */
void bpe_fixture_alphabet(unsigned char byte_of_id[256], uint32_t cp_of_byte[256]);
/* Text bytes spelled in the byte alphabet, as vocab.json and merges.txt write them. */
void bpe_fixture_spell(const char *text, char *out);
/* Writes <dir>/vocab.json and <dir>/merges.txt: the byte symbols (without
 * byte `drop`, when it is 0..255), the merged tokens in reverse line order
 * (so that ids do not follow ranks), and "<|endoftext|>" when eot. */
void bpe_fixture_write(const char *dir, const Pair *merges, size_t n, bool eot, int drop);

#endif
