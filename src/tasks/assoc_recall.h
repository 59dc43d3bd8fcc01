/* assoc_recall.h — the associative-recall task of the Hyena and S5 papers
 * (spec tasks-synthetic-lra.md §(a)): sequences of key-value pairs, then the
 * query marker, a key of the context, and its value, which the model must
 * recall.
 *
 * Vocabulary V: id 0 the no-op '.', ids 1 .. V-2 the symbols "0" .. str(V-3)
 * in string order, id V-1 the marker '=>'. Keys are ids 1 .. K (K = (V-2)/2),
 * values K+1 .. V-2. One example of context length S (even):
 *   k_1 v_1 ... k_{S/2} v_{S/2} => k_q v_q        (S + 3 tokens)
 * each example with its own key -> value map (values drawn with
 * replacement), context keys drawn uniformly, the query a key that occurs
 * in the context. The model reads tokens 0 .. S+1 and predicts 1 .. S+2.
 *
 *     ArSet train, test;
 *     ar_generate(&train, &test, 30, 4096, 4000, 500, 0, &err);   // distinct examples, from one seeded stream
 */
#ifndef SEQLAB_ASSOC_RECALL_H
#define SEQLAB_ASSOC_RECALL_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

typedef struct {
    int32_t *tokens; /* owned (n, len) */
    size_t n, len;   /* len = S + 3 */
} ArSet;

/* The train set, then the test set, from one stream of data seed `seed`;
 * each set holds n distinct sequences (a draw equal to an earlier one of the
 * same set is drawn again), in a shuffled order. V in [4, 65536], S even >= 2. */
int ar_generate(ArSet *train, ArSet *test, size_t V, size_t S, size_t n_train, size_t n_test, uint64_t seed,
                Error *err);
void ar_free(ArSet *s);
/* The vocabulary's symbols in id order ('.', "0", "1", "10", ..., '=>'): V strings in one owned array. */
char **ar_symbols(size_t V, Error *err);

#endif
