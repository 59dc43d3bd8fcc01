/* evaluate.c — the loss of a model over a whole split, the two ways the
 * FMMformer trainer measures it (shared/spec/tasks-fmm-nystrom.md A.7):
 *
 * windows (eval_stride 0): the split is cut into eval_batch_size contiguous
 *   rows and read in eval_tgt_len windows with no context across them, so
 *   every token of a row but its first is predicted once (loader.h);
 * sliding (0 < eval_stride < eval_tgt_len): one stream, windows of
 *   eval_tgt_len starting every eval_stride tokens; the first window counts
 *   all its predictions, each later one only its last eval_stride, so every
 *   token after the first window is predicted with eval_tgt_len - eval_stride
 *   or more tokens of context (eval_sliding_window.py is stride 1). Windows
 *   are batched eval_batch_size at a time.
 *
 * With lm_batching windows (safari's and the S5 seed's loader) evaluation is
 * the sliding pass with stride eval_tgt_len over the first (n - 1) div
 * eval_tgt_len windows: non-overlapping full windows of the one stream, the
 * rest of the split unread. */
#include <stdlib.h>
#include <string.h>

#include "../data/loader.h"
#include "dist.h"
#include "trainer.h"

/* Under MPI each rank scores its share of the windows and the per-window
 * sums are added in window order, so R ranks report the bits one process
 * does. A model that keeps memory between blocks (adaptive span) reads each
 * row's windows with the memory of the row's earlier ones, as it trained:
 * then every rank reads them all. */
static int evaluate_windows(Model *m, const TokenView *ids, const char *split, double *loss, uint64_t *tokens,
                            Error *err) {
    const Config *c = &m->cfg;
    const size_t rows = (size_t)c->eval_batch_size, T = (size_t)c->eval_tgt_len;
    Stream s;
    if (stream_init(&s, ids, rows, T, 1, split, err)) return -1;
    size_t windows = stream_windows(&s);
    if (c->eval_max_batches > 0 && windows > (size_t)c->eval_max_batches) windows = (size_t)c->eval_max_batches;
    int32_t *inputs = xmalloc(rows * T * sizeof *inputs, err), *targets = xmalloc(rows * T * sizeof *targets, err);
    double *sums = xcalloc(windows + 1, sizeof *sums, err);
    int rc = inputs && targets && sums ? 0 : -1;
    uint64_t count = 0;
    ModelMemory memory = {0}; /* the rows' past, from an empty one, for a model that keeps memory between blocks */
    if (!rc && model_memory_init(m, &memory, rows, err)) rc = -1;
    size_t lo = 0, hi = windows;
    if (!memory.n) dist_share(windows, &lo, &hi);
    PassMode mode = {.training = false, .memory = &memory};
    for (size_t k = 0; k < windows && !rc; k++) {
        size_t len;
        stream_window(&s, k, inputs, targets, &len);
        count += rows * len;
        if (k < lo || k >= hi) continue;
        rc = model_plan(m, rows, len, err) || model_forward(m, inputs, targets, &mode, 0.0f, &sums[k], err);
        model_memory_advance(&memory);
    }
    if (!rc) *loss = dist_sum_in_order(sums, windows, 1) / (double)count;
    *tokens = count;
    model_memory_free(&memory);
    free(inputs);
    free(targets);
    free(sums);
    return rc;
}

/* Window k of the sliding evaluation: where it starts, how many tokens it
 * reads, and how many of its last predictions count. */
typedef struct {
    size_t start, len, counted;
} Slide;

static Slide slide_at(size_t k, size_t L, size_t S, size_t n) {
    const size_t last = n - 1; /* targets are positions 1 .. n-1 */
    Slide w = {.start = k * S};
    size_t end = w.start + L < last ? w.start + L : last;
    size_t prev_end = k == 0 ? 0 : (w.start - S + L < last ? w.start - S + L : last);
    w.len = end - w.start;
    w.counted = k == 0 ? w.len : end - prev_end;
    return w;
}

/* The windows of one length from window k on, at most R (all are full but the last). */
static size_t batch_rows(size_t k, size_t windows, size_t R, size_t L, size_t S, size_t n) {
    size_t rows = 1;
    while (rows < R && k + rows < windows && slide_at(k + rows, L, S, n).len == slide_at(k, L, S, n).len) rows++;
    return rows;
}

/* Scores `rows` windows of equal length from window k0 on (stride S): the sum of their counted losses. */
static int score_slides(Model *m, const TokenView *ids, size_t S, size_t k0, size_t rows, int32_t *inputs,
                        int32_t *targets, double *sum, Error *err) {
    const size_t L = (size_t)m->cfg.eval_tgt_len;
    const size_t len = slide_at(k0, L, S, ids->n).len;
    for (size_t r = 0; r < rows; r++)
        token_window(ids, slide_at(k0 + r, L, S, ids->n).start, len, inputs + r * len, targets + r * len);
    PassMode mode = {.training = false};
    if (model_plan(m, rows, len, err) || model_forward(m, inputs, targets, &mode, 0.0f, NULL, err)) return -1;
    for (size_t r = 0; r < rows; r++) {
        Slide w = slide_at(k0 + r, L, S, ids->n);
        for (size_t t = len - w.counted; t < len; t++) *sum += m->losses[r * len + t];
    }
    return 0;
}

/* The first `windows` windows of stride S, eval_batch_size at a time; under
 * MPI each rank scores its share of the batches, added in batch order. */
static int evaluate_slides(Model *m, const TokenView *ids, size_t S, size_t windows, double *loss, uint64_t *tokens,
                           Error *err) {
    const Config *c = &m->cfg;
    const size_t L = (size_t)c->eval_tgt_len, R = (size_t)c->eval_batch_size;
    size_t batches = 0;
    uint64_t count = 0;
    for (size_t k = 0; k < windows; batches++) {
        if (c->eval_max_batches > 0 && batches == (size_t)c->eval_max_batches) break;
        const size_t rows = batch_rows(k, windows, R, L, S, ids->n);
        for (size_t r = 0; r < rows; r++) count += slide_at(k + r, L, S, ids->n).counted;
        k += rows;
    }
    int32_t *inputs = xmalloc(R * L * sizeof *inputs, err), *targets = xmalloc(R * L * sizeof *targets, err);
    double *sums = xcalloc(batches + 1, sizeof *sums, err);
    int rc = inputs && targets && sums ? 0 : -1;
    size_t lo, hi;
    dist_share(batches, &lo, &hi);
    for (size_t k = 0, b = 0; b < hi && !rc; b++) {
        const size_t rows = batch_rows(k, windows, R, L, S, ids->n);
        if (b >= lo) rc = score_slides(m, ids, S, k, rows, inputs, targets, &sums[b], err);
        k += rows;
    }
    if (!rc) *loss = dist_sum_in_order(sums, batches, 1) / (double)count;
    *tokens = count;
    free(inputs);
    free(targets);
    free(sums);
    return rc;
}

int evaluate_split(Model *m, const TokenView *ids, const char *split, double *loss, uint64_t *tokens, Error *err) {
    const Config *c = &m->cfg;
    const size_t L = (size_t)c->eval_tgt_len, S = (size_t)c->eval_stride;
    if (!strcmp(c->lm_batching, "windows")) {
        if (ids->n < L + 1)
            return err_set(err, "the %s split has %zu tokens, too few for one window of eval_tgt_len %zu (+1 target)",
                           split, ids->n, L);
        return evaluate_slides(m, ids, L, (ids->n - 1) / L, loss, tokens, err);
    }
    if (S > 0 && S < L) {
        if (ids->n < 2) return err_set(err, "the %s split has %zu tokens: nothing to predict", split, ids->n);
        return evaluate_slides(m, ids, S, ids->n - 1 > L ? 1 + (ids->n - 1 - L + S - 1) / S : 1, loss, tokens, err);
    }
    return evaluate_windows(m, ids, split, loss, tokens, err);
}
