/* relative_bias.c — the "simple" relative position bias of MEGA
 * (SimpleRelativePositionalBias) and SeqBoat (FastRelativePositionalBias),
 * spec mega-seqboat.md §3.1: a learned b[2P - 1] gives query i and key j the
 * bias b[P - 1 + (j - i)]. The attention kernel takes a bias as a table of
 * 2n - 1 offsets for a length n (AttentionShape.bias); these two functions
 * make that table from b and send its gradient back. For n > P (SeqBoat
 * only; MEGA refuses it) an offset beyond the table takes its end value. */
#include "ops.h"

/* The entry of b (2P - 1) that offset k - (n - 1) of a length-n table reads. */
static size_t entry(size_t P, size_t n, size_t k) {
    const long at = (long)P - 1 + (long)k - ((long)n - 1);
    return at < 0 ? 0 : at > 2 * (long)P - 2 ? 2 * P - 2 : (size_t)at;
}

void relative_bias_table(float *table, const float *b, size_t P, size_t n) {
    for (size_t k = 0; k < 2 * n - 1; k++) table[k] = b[entry(P, n, k)];
}

void relative_bias_backward(float *db, const float *dtable, size_t P, size_t n) {
    for (size_t k = 0; k < 2 * n - 1; k++) db[entry(P, n, k)] += dtable[k];
}
