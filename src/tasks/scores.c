/* scores.c — the evaluation metrics of labelled tasks; see task.h.
 * Matthews correlation in its multiclass form (Gorodkin 2004), which is the
 * binary phi coefficient for K = 2: sklearn's matthews_corrcoef. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "task.h"

void scores_classes(const int32_t *pred, const int32_t *label, size_t n, size_t K, double *accuracy, double *f1,
                    double *mcc) {
    double *t = calloc(K, sizeof *t), *p = calloc(K, sizeof *p); /* true and predicted counts per class */
    double correct = 0, tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; t && p && i < n; i++) {
        correct += pred[i] == label[i];
        t[label[i]]++;
        p[pred[i]]++;
        tp += pred[i] == 1 && label[i] == 1;
        fp += pred[i] == 1 && label[i] != 1;
        fn += pred[i] != 1 && label[i] == 1;
    }
    *accuracy = n ? correct / (double)n : 0.0;
    *f1 = tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : 0.0;
    double tk = 0, tt = 0, pp = 0;
    for (size_t k = 0; t && p && k < K; k++) {
        tk += t[k] * p[k];
        tt += t[k] * t[k];
        pp += p[k] * p[k];
    }
    const double s = (double)n, denom = sqrt(s * s - pp) * sqrt(s * s - tt);
    *mcc = denom > 0 ? (correct * s - tk) / denom : 0.0;
    free(t);
    free(p);
}

static double pearson_of(const double *x, const double *y, size_t n) {
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= (double)n;
    my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0.0;
}

static const double *rank_keys;
static int by_key(const void *a, const void *b) {
    double x = rank_keys[*(const size_t *)a], y = rank_keys[*(const size_t *)b];
    return x < y ? -1 : x > y;
}

/* rank[i]: the rank of v[i] from 1, ties sharing their average rank. */
static void ranks(const double *v, size_t n, double *rank, size_t *order) {
    for (size_t i = 0; i < n; i++) order[i] = i;
    rank_keys = v;
    qsort(order, n, sizeof *order, by_key);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[order[j + 1]] == v[order[i]]) j++;
        for (size_t k = i; k <= j; k++) rank[order[k]] = 0.5 * (double)(i + j) + 1.0;
        i = j + 1;
    }
}

void scores_correlation(const float *x, const float *y, size_t n, double *pearson, double *spearman) {
    double *buf = malloc(4 * n * sizeof *buf);
    size_t *order = malloc(n * sizeof *order);
    *pearson = *spearman = 0.0;
    if (buf && order && n > 1) {
        double *dx = buf, *dy = buf + n, *rx = buf + 2 * n, *ry = buf + 3 * n;
        for (size_t i = 0; i < n; i++) dx[i] = x[i], dy[i] = y[i];
        *pearson = pearson_of(dx, dy, n);
        ranks(dx, n, rx, order);
        ranks(dy, n, ry, order);
        *spearman = pearson_of(rx, ry, n);
    }
    free(buf);
    free(order);
}
