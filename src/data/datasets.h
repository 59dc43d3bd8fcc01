/* datasets.h — the named datasets of the seeds: where their raw files live,
 * how they are split, and which tokenizer `tokenizer: auto` means.
 *
 * | dataset      | raw files (in a folder `dir`)                       | split                    | auto |
 * | shakespeare  | tinyshakespeare/input.txt                           | by fraction (last 5%+5%) | char |
 * | enwik8       | enwik8/enwik8 (10^8 bytes)                          | by fraction: 90M/5M/5M   | byte |
 * | text8        | text8/text8 (10^8 characters, a-z and space)        | by fraction: 90M/5M/5M   | char |
 * | wikitext-103 | wikitext-103/wiki.{train,valid,test}.tokens         | the three files          | word |
 * | wikitext-2   | wikitext-2/wiki.{train,valid,test}.tokens           | the three files          | word |
 * With `tokenizer: bpe`, WikiText is the raw variant (wikitext-103-raw/
 * wiki.*.raw) tokenised row by row with <|endoftext|> after each non-blank
 * row, as the S5/Hyena configs do (shared/spec/tasks-synthetic-lra.md b.1).
 * | text         | the `data` file, or train_file/valid_file/test_file | by fraction or files     | char |
 * The fractions are the config keys valid_fraction and test_fraction (0.05
 * each by default, which on the full enwik8 and text8 is the standard split
 * of shared/spec/moe-brainformer.md §1). Published token counts are in
 * docs/data.md.
 */
#ifndef SEQLAB_DATASETS_H
#define SEQLAB_DATASETS_H

#include <stdbool.h>

#include "tokenizer.h"

typedef struct {
    const char *name;        /* the `dataset` value */
    const char *dir;         /* its folder under a data root; NULL for `text` */
    const char *file;        /* split by fraction: the one raw file */
    const char *files[3];    /* split by files: train, valid, test */
    const char *raw_dir;     /* tokenizer bpe: the raw variant's folder, ... */
    const char *raw_files[3];/* ... its files, tokenised a row at a time with <|endoftext|> after each */
    TokenizerType tokenizer; /* what `tokenizer: auto` means */
    const char *alphabet;    /* when not NULL, the only characters allowed (text8) */
} Dataset;

/* The dataset named `name`, or NULL. */
const Dataset *dataset_find(const char *name);

/* The roots searched for a dataset's folder, in order: $SEQLAB_DATA, ./data,
 * ../shared/data. Returns the number written to roots (at most 3). */
int dataset_roots(const char *roots[3]);

#endif
