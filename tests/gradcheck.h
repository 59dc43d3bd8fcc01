/* gradcheck.h — finite-difference gradient checks.
 *
 * The loss L(theta) = sum_i r_i y_i(theta) is accumulated in double around the
 * fp32 kernels. Each checked element is moved by +-h and the central
 * difference (L+ - L-)/2h is compared with the analytic gradient. The
 * tolerance follows from the step: the O(h^2) truncation error is covered by
 * a relative term, the fp32 rounding of the loss (about eps32 * sum|r_i y_i|
 * per evaluation, divided by h) by an absolute term.
 */
#ifndef SEQLAB_GRADCHECK_H
#define SEQLAB_GRADCHECK_H

#include <stddef.h>

/* Evaluates the loss at the current values; *abs_sum receives sum |r_i y_i|. */
typedef double (*LossFn)(void *ctx, double *abs_sum);

typedef struct {
    double max_abs, max_rel;
    size_t checked, failed, first_bad;
} GradReport;

/* Checks analytic[i] against finite differences of loss wrt x[i] for up to
 * max_checks elements spread over [0, n). Returns 0 when all pass; prints the
 * worst errors and the first mismatch otherwise. */
int gradcheck(const char *label, float *x, const float *analytic, size_t n, LossFn loss, void *ctx, float h,
              size_t max_checks, GradReport *report);

/* sum_i r_i y_i in double, and sum |r_i y_i|. */
double weighted_sum(const float *y, const float *r, size_t n, double *abs_sum);

#endif
