/* corpus.h — the token ids of a run's three splits, read from the files its
 * config names.
 *
 * Sources (config keys, docs/guide.md "Data"):
 *   dataset: shakespeare   tiny shakespeare's input.txt, found under
 *                          $SEQLAB_DATA, ./data or ../shared/data
 *                          (scripts/getdata.sh fetches it); split by fraction
 *   data: FILE             one text file: the last test_fraction of it is the
 *                          test split, the valid_fraction before that valid
 *   train_file/valid_file/test_file   the three splits given directly
 * Fractions are of bytes, moved forward to the next character boundary.
 *
 *     Corpus cp = {0};
 *     if (corpus_load(&cp, &cfg, &tok, true, &err)) ...   // builds tok from train
 *     ... cp.ids[SPLIT_TRAIN], cp.n[SPLIT_TRAIN] ...
 *     corpus_free(&cp);
 */
#ifndef SEQLAB_CORPUS_H
#define SEQLAB_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/config.h"
#include "tokenizer.h"

enum { SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST, SPLIT_COUNT };
extern const char *const split_names[SPLIT_COUNT]; /* "train", "valid", "test" */

/* Looks up a split by name; errors list the valid names. */
int split_parse(const char *name, int *split, Error *err);

typedef struct {
    int32_t *ids[SPLIT_COUNT]; /* owned; NULL when the split is empty */
    size_t n[SPLIT_COUNT];     /* tokens per split */
    size_t unknown;            /* held-out characters mapped to <unk> */
    char path[SPLIT_COUNT][CFG_PATH]; /* the file each split was read from ("" for none) */
} Corpus;

/* Reads and tokenizes the splits. With build_vocab, a char tokenizer takes
 * its vocabulary from the training split, and gains <unk> if held-out text
 * has characters the training text lacks; otherwise tok is used as loaded
 * (its <unk>, if any, takes unknown characters of any split). Errors name the
 * file: missing, empty, not UTF-8, a character outside the vocabulary, an
 * empty training split. */
int corpus_load(Corpus *cp, const Config *c, Tokenizer *tok, bool build_vocab, Error *err);
/* Frees the ids; accepts a zeroed corpus. */
void corpus_free(Corpus *cp);

#endif
