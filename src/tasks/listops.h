/* listops.h — the Long Range Arena's ListOps generator (spec
 * tasks-synthetic-lra.md §c.1, the LRA's lra_benchmarks/data/listops.py),
 * seeded, so seqlab makes the data set itself.
 *
 * A tree: below max_depth a node is an operator with probability 0.25 (else
 * a digit 0-9; at max_depth always a digit), an operator has 2..max_args
 * children and one of [MIN [MAX [MED [SM; its value is the min, max, the
 * truncated median (the mean of the two middle values for an even count,
 * truncated) or the sum mod 10 of its children's. A tree is kept when its
 * length (digits, operators and one ']' per operator) is strictly between
 * min_length and max_length, and when it is not a duplicate of one kept
 * before; the first n_train go to train, the next n_valid to valid, the rest
 * to test. The files are the release's: basic_{train,val,test}.tsv with the
 * header "Source\tTarget" and each tree written as nested pairs,
 * "( ( ( ( [MAX 4 ) 3 ) 9 ) ] )", then a tab and the label.
 *
 *     ListopsSpec s = listops_defaults();           // 96,000 / 2,000 / 2,000
 *     listops_write(&s, "data/listops", &err);
 */
#ifndef SEQLAB_LISTOPS_H
#define SEQLAB_LISTOPS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/rng.h"

typedef struct {
    int max_depth, max_args;
    size_t min_length, max_length; /* exclusive bounds on the token count */
    size_t n_train, n_valid, n_test;
    uint64_t seed;
} ListopsSpec;

ListopsSpec listops_defaults(void);

/* Draws trees from r until one's length is inside the bounds: its text in the
 * release's form into `text` (NUL-terminated, cap bytes: LISTOPS_TEXT_CAP
 * holds any accepted tree), its token count and its value. Duplicates are the
 * writer's business. */
enum { LISTOPS_OPS = 4 };
size_t listops_text_cap(const ListopsSpec *s);
void listops_next(const ListopsSpec *s, Rng *r, char *text, size_t *length, int *label);
/* Writes basic_train.tsv, basic_val.tsv, basic_test.tsv into dir (made if
 * missing): distinct trees in the order drawn. */
int listops_write(const ListopsSpec *s, const char *dir, Error *err);

#endif
