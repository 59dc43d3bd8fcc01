/* adaptive_input.c — see adaptive_input.h. A cluster's tokens are gathered,
 * projected with one sgemm and scattered back. */
#include "adaptive_input.h"

#include <string.h>

#include "../core/gemm.h"
#include "../nn/module.h"

void adaptive_input_configure(AdaptiveInput *a, const Head *h) {
    memset(a, 0, sizeof *a);
    a->C = h->C;
    a->n_clusters = h->n_clusters;
    memcpy(a->cutoff, h->cutoff, sizeof a->cutoff);
    memcpy(a->dim, h->dim, sizeof a->dim);
}

static size_t rows_of(const AdaptiveInput *a, size_t i) { return a->cutoff[i + 1] - a->cutoff[i]; }

void adaptive_input_params(AdaptiveInput *a, ParamSet *ps) {
    for (size_t i = 0; i <= a->n_clusters; i++) {
        params_prefix(ps, "embed.%zu.", i);
        params_add(ps, "weight", &a->w[i], &a->dw[i], GROUP_EMBEDDING, 2, rows_of(a, i), a->dim[i]);
        params_add(ps, "proj", &a->proj[i], &a->dproj[i], GROUP_LINEAR, 2, a->C, a->dim[i]);
    }
    params_prefix(ps, "%s", "");
}

void adaptive_input_init(AdaptiveInput *a, float std, uint64_t seed, int layer) {
    for (size_t i = 0; i <= a->n_clusters; i++) {
        init_normal(a->w[i], rows_of(a, i) * a->dim[i], std, seed, layer, 20 + (int)i);
        init_normal(a->proj[i], a->C * a->dim[i], std, seed, layer, 40 + (int)i);
    }
}

void adaptive_input_tie(AdaptiveInput *a, Head *h, bool tie_weight) {
    for (size_t i = 0; i <= a->n_clusters; i++) {
        if (tie_weight) h->tw[i] = a->w[i], h->dtw[i] = a->dw[i];
        if (i > 0) h->proj[i] = a->proj[i], h->dproj[i] = a->dproj[i];
    }
}

void adaptive_input_layout(AdaptiveInput *a, size_t N, Arena *arena) {
    a->rows = arena_take(arena, N * a->C);
    a->out = arena_take(arena, N * a->C);
    a->index = (int32_t *)arena_take(arena, N);
}

/* The positions of ids (N) in cluster i, into a->index; their count. */
static size_t gather_cluster(AdaptiveInput *a, size_t i, const int32_t *ids, size_t N) {
    size_t n = 0;
    for (size_t r = 0; r < N; r++)
        if ((size_t)ids[r] >= a->cutoff[i] && (size_t)ids[r] < a->cutoff[i + 1]) a->index[n++] = (int32_t)r;
    return n;
}

/* a->rows (n, d_i) = the table rows of the gathered tokens. */
static void gather_rows(AdaptiveInput *a, size_t i, const int32_t *ids, size_t n) {
    const size_t d = a->dim[i];
    for (size_t k = 0; k < n; k++)
        memcpy(a->rows + k * d, a->w[i] + (size_t)(ids[a->index[k]] - (int32_t)a->cutoff[i]) * d, d * sizeof(float));
}

void adaptive_input_forward(AdaptiveInput *a, float *x, const int32_t *ids, size_t N) {
    const size_t C = a->C;
    for (size_t i = 0; i <= a->n_clusters; i++) {
        const size_t n = gather_cluster(a, i, ids, N), d = a->dim[i];
        if (!n) continue;
        gather_rows(a, i, ids, n);
        gemm(false, true, n, C, d, 1.0f, a->rows, d, a->proj[i], d, 0.0f, a->out, C); /* E P^T */
        for (size_t k = 0; k < n; k++) memcpy(x + (size_t)a->index[k] * C, a->out + k * C, C * sizeof(float));
    }
}

void adaptive_input_backward(AdaptiveInput *a, const float *dx, const int32_t *ids, size_t N) {
    const size_t C = a->C;
    for (size_t i = 0; i <= a->n_clusters; i++) {
        const size_t n = gather_cluster(a, i, ids, N), d = a->dim[i];
        if (!n) continue;
        gather_rows(a, i, ids, n);
        for (size_t k = 0; k < n; k++) memcpy(a->out + k * C, dx + (size_t)a->index[k] * C, C * sizeof(float));
        gemm(true, false, C, d, n, 1.0f, a->out, C, a->rows, d, 1.0f, a->dproj[i], d); /* dP += dX^T E */
        gemm(false, false, n, d, C, 1.0f, a->out, C, a->proj[i], d, 0.0f, a->rows, d); /* dE = dX P */
        for (size_t k = 0; k < n; k++) { /* in row order: repeated tokens add up deterministically */
            float *row = a->dw[i] + (size_t)(ids[a->index[k]] - (int32_t)a->cutoff[i]) * d;
            for (size_t c = 0; c < d; c++) row[c] += a->rows[k * d + c];
        }
    }
}

void adaptive_input_row(const AdaptiveInput *a, int32_t id, float *x) {
    size_t i = 0;
    while (i < a->n_clusters && (size_t)id >= a->cutoff[i + 1]) i++;
    const size_t d = a->dim[i];
    const float *e = a->w[i] + (size_t)(id - (int32_t)a->cutoff[i]) * d;
    for (size_t c = 0; c < a->C; c++) {
        float acc = 0.0f;
        for (size_t j = 0; j < d; j++) acc += a->proj[i][c * d + j] * e[j];
        x[c] = acc;
    }
}
