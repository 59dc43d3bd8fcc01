/* corpus.h — the token ids of a run's three splits, from the data its
 * config names (datasets.h): raw files tokenised on the spot, or a dataset
 * prepared once by `seqlab data prepare` (token files, memory-mapped).
 *
 * Where the data is (config keys, docs/data.md):
 *   dataset: NAME   a named dataset; `data` is its folder (prepared, or with
 *                   the raw files) or, for single-file datasets, the raw file
 *                   itself; empty `data`: the folder is looked up under
 *                   $SEQLAB_DATA, ./data, ../shared/data
 *   dataset: text   `data` is one text file split by fraction, or
 *                   train_file/valid_file/test_file give the splits
 *   train_file, valid_file, test_file override single splits of any raw dataset.
 * Fractions are of bytes, moved forward to the next character boundary.
 *
 *     Tokenizer tok;
 *     if (corpus_tokenizer(&cfg, &tok, &err)) ...
 *     Corpus cp;
 *     if (corpus_load(&cp, &cfg, &tok, true, &err)) ...   // builds tok from train
 *     ... cp.split[SPLIT_TRAIN] (a TokenView) ...
 *     corpus_free(&cp);
 */
#ifndef SEQLAB_CORPUS_H
#define SEQLAB_CORPUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/config.h"
#include "datasets.h"
#include "tokenizer.h"
#include "tokfile.h"

enum { SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST, SPLIT_COUNT };
extern const char *const split_names[SPLIT_COUNT]; /* "train", "valid", "test" */

/* Looks up a split by name; errors list the valid names. */
int split_parse(const char *name, int *split, Error *err);

typedef struct {
    TokenView split[SPLIT_COUNT];     /* the ids of each split (n = 0: empty) */
    int32_t *owned[SPLIT_COUNT];      /* owned ids tokenised from raw text, or NULL */
    TokFile files[SPLIT_COUNT];       /* owned mappings of a prepared dataset */
    bool prepared;                    /* read from token files */
    size_t unknown;                   /* held-out symbols mapped to <unk> */
    char path[SPLIT_COUNT][CFG_PATH]; /* the file each split was read from ("" for none) */
} Corpus;

/* Sets up the tokenizer the config means (`tokenizer: auto` -> the
 * dataset's; bpe: loads the GPT-2 files of bpe_vocab/bpe_merges, or
 * gpt2/vocab.json and gpt2/merges.txt under the data roots). A char or word
 * tokenizer gets its vocabulary later, from corpus_load. */
int corpus_tokenizer(const Config *c, Tokenizer *tok, Error *err);

/* Reads the splits. With build_vocab, the tokenizer (its type set) takes its
 * vocabulary from the training split, or from a prepared dataset; a char
 * tokenizer gains <unk> if held-out text has characters the training text
 * lacks. Without it, tok is the run's own (loaded) tokenizer and must match
 * the data's. Errors name the file: missing, empty, not UTF-8, a symbol
 * outside the vocabulary, a damaged token file, a vocabulary mismatch, an
 * empty training split. */
int corpus_load(Corpus *cp, const Config *c, Tokenizer *tok, bool build_vocab, Error *err);
/* Frees the ids and mappings; accepts a zeroed corpus. */
void corpus_free(Corpus *cp);

/* ---- prepared datasets (prepared.c) ----
 * A folder with train.bin, valid.bin, test.bin (tokfile.h), vocab.json
 * (the tokenizer) and dataset.json: {"format": "seqlab-dataset", "version": 1,
 * "dataset", "tokenizer", "vocab_size", "tokens": {"train", "valid", "test"},
 * "sources": [the raw files]}. */

/* True when dir holds a dataset.json. */
bool prepared_exists(const char *dir);
/* Writes cp and tok into dir (created if needed), each file atomically. */
int prepared_save(const Corpus *cp, const Config *c, const Tokenizer *tok, const char *dir, Error *err);
/* Maps the token files of dir into cp; see corpus_load for build_vocab. */
int prepared_load(Corpus *cp, const Config *c, const char *dir, Tokenizer *tok, bool build_vocab, Error *err);

#endif
