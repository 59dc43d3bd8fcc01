/* tolerance.h — how far apart two float32 computations of the same values
 * may be, derived from float32 rounding instead of picked by hand.
 *
 * Equivalence tests (chunked vs whole, step vs forward, recompute vs keep,
 * micro-batches vs the whole batch, one thread vs two, float32 vs a double
 * reference) compare computations that differ only in the order of their
 * additions: another GEMM kernel or blocking (BLAS libraries choose them per
 * machine and per shape), another chunk boundary, another thread split.
 *
 * A sum of k float32 terms is within k u sum|terms| of its exact value,
 * u = 2^-24 the unit roundoff (Higham, Accuracy and Stability of Numerical
 * Algorithms, 2nd ed., §3.1 and §4.2: gamma_k = k u / (1 - k u)). A value
 * reached through a chain of such sums (a projection of C terms, a softmax
 * over T keys, a product over T values, ...) accumulates the bound of each
 * link, so `terms` is the total length of the sums along the longest chain
 * that leads to the compared values. The tests pass as `scale` the largest
 * magnitude among the compared values: for this suite's zero-mean random
 * data sum|terms| exceeds |sum| by about sqrt(k), while the worst case k u
 * overstates random rounding errors by the same sqrt(k), so the two
 * approximations cancel to leading order. Two float32 computations differ
 * by at most twice one's error; a float32 result against an exact (double)
 * reference by once.
 *
 * A real error (a wrong mask, a missed term, a misplaced chunk boundary)
 * changes values by O(scale), far above these bounds, so the tests still
 * fail on it. */
#ifndef SEQLAB_TOLERANCE_H
#define SEQLAB_TOLERANCE_H

#include <math.h>
#include <stddef.h>

#define FLOAT32_UNIT_ROUNDOFF 0x1p-24

/* Largest |a - b| allowed between two float32 computations of values of
 * magnitude up to `scale`, each through sums of `terms` terms in all. */
static inline double rounding_tolerance(double terms, double scale) {
    return 2.0 * terms * FLOAT32_UNIT_ROUNDOFF * scale;
}

/* The same against an exact (double precision) reference. */
static inline double rounding_tolerance_exact(double terms, double scale) {
    return terms * FLOAT32_UNIT_ROUNDOFF * scale;
}

/* The chain of a whole language model (src/model): per sublayer its norm and
 * input product (C each), its other product (C, or F for the feed-forward)
 * and the mixing's sums over up to T positions (normaliser and values); then
 * the head's product (C) and its log-sum-exp over V classes. */
static inline double model_rounding_terms(size_t sublayers, size_t C, size_t F, size_t T, size_t V) {
    return (double)sublayers * (3.0 * (double)C + (double)F + 2.0 * (double)T) + (double)C + (double)V;
}

/* Largest |x[i]| of n floats, the usual `scale`. */
static inline double max_abs(const float *x, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

/* Largest |a[i] - b[i]| of n floats. */
static inline double max_diff(const float *a, const float *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - (double)b[i]));
    return worst;
}

#endif
