/* gradcheck.c — see gradcheck.h. */
#include "gradcheck.h"

#include <float.h>
#include <math.h>
#include <stdio.h>

double weighted_sum(const float *y, const float *r, size_t n, double *abs_sum) {
    double s = 0.0, a = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += (double)y[i] * r[i];
        a += fabs((double)y[i] * r[i]);
    }
    if (abs_sum) *abs_sum = a;
    return s;
}

int gradcheck(const char *label, float *x, const float *analytic, size_t n, LossFn loss, void *ctx, float h,
              size_t max_checks, GradReport *report) {
    GradReport r = {0};
    size_t stride = n > max_checks ? n / max_checks : 1;
    for (size_t i = (n > max_checks ? stride / 2 : 0); i < n; i += stride) {
        float saved = x[i];
        double abs_plus, abs_minus;
        x[i] = saved + h;
        double plus = loss(ctx, &abs_plus);
        x[i] = saved - h;
        double minus = loss(ctx, &abs_minus);
        x[i] = saved;
        double numeric = (plus - minus) / (2.0 * (double)h);
        double err = fabs(numeric - analytic[i]);
        double scale = fmax(fabs(numeric), fabs(analytic[i]));
        double rounding = 4.0 * FLT_EPSILON * (abs_plus + abs_minus) / (2.0 * (double)h);
        double tol = 1e-2 * scale + rounding + 1e-6;
        r.checked++;
        if (err > r.max_abs) r.max_abs = err;
        if (scale > 0 && err / scale > r.max_rel) r.max_rel = err / scale;
        if (err > tol) {
            if (!r.failed) r.first_bad = i;
            r.failed++;
            if (r.failed <= 3)
                printf("    %s[%zu]: analytic %.6g, numeric %.6g, |diff| %.3g > tol %.3g\n", label, i,
                       (double)analytic[i], numeric, err, tol);
        }
    }
    if (report) *report = r;
    if (r.failed)
        printf("    %s: %zu of %zu elements off (max abs %.3g, max rel %.3g, first at %zu)\n", label, r.failed,
               r.checked, r.max_abs, r.max_rel, r.first_bad);
    return r.failed ? -1 : 0;
}
