/* loader.c — see loader.h. */
#include "loader.h"

#include <string.h>

int stream_init(Stream *s, const TokenView *ids, size_t rows, size_t T, size_t min_predict, const char *name,
                Error *err) {
    memset(s, 0, sizeof *s);
    if (rows == 0 || T == 0) return err_set(err, "%s split: batches need at least one row and one token", name);
    const size_t n = ids->n, L = n / rows;
    if (L < min_predict + 1)
        return err_set(err, "the %s split has %zu tokens, too few for %zu rows of %zu tokens (+1 target); use a "
                            "smaller batch or sequence length, or more data", name, n, rows, min_predict);
    *s = (Stream){.ids = *ids, .rows = rows, .T = T, .row_len = L};
    return 0;
}

void token_window(const TokenView *ids, size_t start, size_t len, int32_t *inputs, int32_t *targets) {
    for (size_t t = 0; t < len; t++) {
        inputs[t] = token_at(ids, start + t);
        targets[t] = token_at(ids, start + t + 1);
    }
}

/* Copies the window at position p, len tokens, of every row. */
static void copy_window(const Stream *s, size_t p, size_t len, int32_t *inputs, int32_t *targets) {
    for (size_t r = 0; r < s->rows; r++)
        token_window(&s->ids, r * s->row_len + p, len, inputs + r * len, targets + r * len);
}

void stream_next(Stream *s, int32_t *inputs, int32_t *targets) {
    if (s->cursor + s->T + 1 > s->row_len) { /* the next window would run off the rows */
        s->cursor = 0;
        s->epoch++;
    }
    copy_window(s, s->cursor, s->T, inputs, targets);
    s->cursor += s->T;
}

size_t stream_windows(const Stream *s) { return (s->row_len - 1 + s->T - 1) / s->T; }

void stream_window(const Stream *s, size_t k, int32_t *inputs, int32_t *targets, size_t *len) {
    size_t p = k * s->T, left = s->row_len - 1 - p;
    *len = left < s->T ? left : s->T;
    copy_window(s, p, *len, inputs, targets);
}
