/* loader.h — batches from a token stream, the Transformer-XL way
 * (LMOrderedIterator of kimiyoung/transformer-xl, which the FMMformer seed
 * trains with).
 *
 * The n ids are cut into `rows` contiguous rows of L = n / rows tokens (the
 * last n mod rows ids are dropped). A window at position p of every row gives
 * inputs row[p, p+len) and targets row[p+1, p+len+1), so window k of an
 * evaluation pass starts at k*T and the windows predict every token of a row
 * but its first exactly once; the last one may be shorter than T. Training
 * reads full windows of T in turn and starts over (epoch + 1) when the next
 * one would not fit. Batches are row-major: inputs[r * len + t].
 *
 *     Stream s;
 *     if (stream_init(&s, &view, B, T, T, "train", &err)) ...  // each row: >= T predictions
 *     stream_next(&s, inputs, targets);                        // B x T
 *     for (size_t k = 0; k < stream_windows(&s); k++) stream_window(&s, k, in, tg, &len);
 */
#ifndef SEQLAB_LOADER_H
#define SEQLAB_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "tokfile.h"

typedef struct {
    TokenView ids;      /* borrowed */
    size_t rows, T;
    size_t row_len;     /* L: tokens per row */
    size_t cursor;      /* training: position of the next window in each row */
    uint64_t epoch;     /* training: passes over the rows completed */
} Stream;

/* Fails, naming `name`, unless each row would hold at least min_predict
 * targets (L - 1 >= min_predict): training needs a full window, T; an
 * evaluation pass at least 1. */
int stream_init(Stream *s, const TokenView *ids, size_t rows, size_t T, size_t min_predict, const char *name,
                Error *err);
/* The next training window (rows x T) at the cursor, which then moves on by T. */
void stream_next(Stream *s, int32_t *inputs, int32_t *targets);
/* Number of evaluation windows: ceil((L - 1) / T). */
size_t stream_windows(const Stream *s);
/* Evaluation window k (rows x *len, *len <= T). */
void stream_window(const Stream *s, size_t k, int32_t *inputs, int32_t *targets, size_t *len);
/* inputs = ids[start, start + len), targets = ids[start + 1, start + len + 1). */
void token_window(const TokenView *ids, size_t start, size_t len, int32_t *inputs, int32_t *targets);

#endif
