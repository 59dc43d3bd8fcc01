/* examples.h — labelled examples from TSV files, as GLUE ships them
 * (docs/data.md): one example per line, tab-separated columns, an optional
 * header row naming them. The keys text_column (and text2_column for pairs)
 * and label_column choose columns by header name or 0-based index. Labels
 * are class ids (classification) or numbers (regression); a file without
 * the label column (GLUE's test files) reads without labels.
 *
 *     Examples ex;
 *     examples_read(&ex, "glue/SST-2/train.tsv", &cfg, true, &err);   // texts and labels
 *     examples_encode(&ex, &tokenizer, &err);                        // token ids per text
 */
#ifndef SEQLAB_EXAMPLES_H
#define SEQLAB_EXAMPLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/config.h"
#include "../data/tokenizer.h"

typedef struct {
    size_t chars, starts, labels, reals; /* room of the arrays while examples are added */
} ExamplesCaps;

typedef struct {
    size_t n;               /* examples */
    int texts;              /* texts per example: 1, or 2 for pairs */
    char *chars;            /* owned: every text's bytes, one after another */
    size_t *text_start;     /* owned (n * texts + 1): text i is chars[text_start[i], text_start[i + 1]) */
    bool labelled;
    int32_t *labels;        /* owned (n), classification */
    float *values;          /* owned (n), regression */
    int32_t *ids;           /* owned: every text's token ids, after examples_encode */
    size_t *id_start;       /* owned (n * texts + 1) */
    size_t unknown;         /* symbols mapped to <unk> while encoding */
    float *reals;           /* owned, or NULL (texts): signals instead of texts, example i's values at
                               id_start[i] .. id_start[i + 1]: pixel intensities 0..255, audio samples in [-1, 1) */
    ExamplesCaps cap;
    char path[CFG_PATH];
} Examples;

/* The file a split reads (key train_file, valid_file or test_file; "" for none). */
const char *examples_split_file(const Config *c, int split);

/* Reads the file's examples. regression: labels are numbers; else class
 * ids (non-negative integers). need_labels: a missing label column is an
 * error (training data). Errors name the file and line. */
int examples_read(Examples *ex, const char *path, const Config *c, bool regression, bool need_labels, Error *err);
/* All the texts of ex joined by newlines, for building a vocabulary
 * (owned by the caller). */
char *examples_text(const Examples *ex, size_t *n, Error *err);
int examples_encode(Examples *ex, const Tokenizer *tok, Error *err);
void examples_free(Examples *ex);

/* Examples added one at a time by the readers of folders and binary files
 * (tasks/lra.h, tasks/speech_commands.h): begin an empty labelled set named
 * `path` in errors, then add texts (one per example, encoded later) or
 * signals (never encoded: the task turns them into ids or inputs). */
void examples_begin(Examples *ex, const char *path);
int examples_add_text(Examples *ex, const char *text, size_t len, int32_t label, Error *err);
int examples_add_signal(Examples *ex, const float *x, size_t n, int32_t label, Error *err);

#endif
