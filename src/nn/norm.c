/* norm.c — see norm.h; the kernels are in src/ops (layernorm.c, norm.c). */
#include "norm.h"

#include <string.h>

#include "../ops/ops.h"
#include "module.h"

int norm_parse(const char *name, NormKind *out) {
    static const char *const names[] = {"layernorm", "rmsnorm", "scalenorm", "batchnorm", "none"};
    for (int k = 0; k < 5; k++)
        if (!strcmp(name, names[k])) return *out = (NormKind)k, 0;
    return -1;
}

void norm_params(Norm *n, ParamSet *ps, const char *name) {
    char full[96];
    const size_t C = n->C;
    n->w = n->dw = n->b = n->db = n->running_mean = n->running_var = NULL;
    if (n->kind == NORM_NONE) return;
    snprintf(full, sizeof full, "%s.weight", name);
    params_add(ps, full, &n->w, &n->dw, GROUP_NORM, 1, n->kind == NORM_SCALE ? (size_t)1 : C);
    if (n->kind == NORM_LAYER || n->kind == NORM_BATCH) {
        snprintf(full, sizeof full, "%s.bias", name);
        params_add(ps, full, &n->b, &n->db, GROUP_NORM, 1, C);
    }
    if (n->kind == NORM_BATCH) {
        snprintf(full, sizeof full, "%s.running_mean", name);
        params_add_buffer(ps, full, &n->running_mean, 1, C);
        snprintf(full, sizeof full, "%s.running_var", name);
        params_add_buffer(ps, full, &n->running_var, 1, C);
    }
}

void norm_init(Norm *n, float w_std, uint64_t seed, uint64_t scope, int index) {
    if (n->kind == NORM_NONE) return;
    const size_t nw = n->kind == NORM_SCALE ? 1 : n->C;
    init_normal(n->w, nw, w_std, seed, scope, index);
    for (size_t c = 0; c < nw; c++) n->w[c] += 1.0f;
    if (n->b) memset(n->b, 0, n->C * sizeof(float));
    if (n->running_mean) memset(n->running_mean, 0, n->C * sizeof(float));
    for (size_t c = 0; n->running_var && c < n->C; c++) n->running_var[c] = 1.0f;
}

size_t norm_stats_floats(const Norm *n, size_t N) {
    switch (n->kind) {
    case NORM_LAYER: return 2 * N; /* mean, rstd per row */
    case NORM_RMS:
    case NORM_SCALE: return N;     /* rstd per row */
    case NORM_BATCH: return 2 * n->C;
    case NORM_NONE: return 0;
    }
    return 0;
}

void norm_forward(const Norm *n, float *y, float *stats, const float *x, size_t N, bool training) {
    const size_t C = n->C;
    switch (n->kind) {
    case NORM_LAYER: layernorm_forward(y, stats, stats + N, x, n->w, n->b, N, C); break;
    case NORM_RMS: rmsnorm_forward(y, stats, x, n->w, N, C); break;
    case NORM_SCALE: scalenorm_forward(y, stats, x, n->w, N, C); break;
    case NORM_BATCH:
        batchnorm_forward(y, stats, stats + C, x, n->w, n->b, n->running_mean, n->running_var, training, N, C);
        break;
    case NORM_NONE: memcpy(y, x, N * C * sizeof(float)); break;
    }
}

void norm_apply(const Norm *n, float *y, const float *stats, const float *x, size_t N) {
    const size_t C = n->C;
    switch (n->kind) {
    case NORM_LAYER: layernorm_apply(y, stats, stats + N, x, n->w, n->b, N, C); break;
    case NORM_RMS:
    case NORM_SCALE:
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < N; r++)
            for (size_t c = 0; c < C; c++) y[r * C + c] = x[r * C + c] * stats[r] * n->w[n->kind == NORM_SCALE ? 0 : c];
        break;
    case NORM_BATCH:
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < N; r++)
            for (size_t c = 0; c < C; c++)
                y[r * C + c] = (x[r * C + c] - stats[c]) * stats[C + c] * n->w[c] + n->b[c];
        break;
    case NORM_NONE: memcpy(y, x, N * C * sizeof(float)); break;
    }
}

void norm_backward(const Norm *n, float *dx, const float *dy, const float *x, const float *stats, size_t N,
                   bool training, bool accumulate_dx) {
    const size_t C = n->C;
    switch (n->kind) {
    case NORM_LAYER: layernorm_backward(dx, n->dw, n->db, dy, x, stats, stats + N, n->w, N, C, accumulate_dx); break;
    case NORM_RMS: rmsnorm_backward(dx, n->dw, dy, x, stats, n->w, N, C, accumulate_dx); break;
    case NORM_SCALE: scalenorm_backward(dx, n->dw, dy, x, stats, n->w, N, C, accumulate_dx); break;
    case NORM_BATCH:
        batchnorm_backward(dx, n->dw, n->db, dy, x, stats, stats + C, n->w, training, N, C, accumulate_dx);
        break;
    case NORM_NONE:
        for (size_t i = 0; i < N * C; i++) dx[i] = accumulate_dx ? dx[i] + dy[i] : dy[i];
        break;
    }
}
