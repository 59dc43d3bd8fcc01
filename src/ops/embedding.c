/* embedding.c — token embedding lookup and position tables. */
#include <math.h>
#include <string.h>

#include "ops.h"

void embedding_forward(float *out, const int32_t *ids, const float *table, size_t N, size_t C) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++) memcpy(out + n * C, table + (size_t)ids[n] * C, C * sizeof *out);
}

/* Rows with the same id must add up; threads own disjoint column blocks so
 * the sum order is the row order whatever the thread count. */
void embedding_backward(float *dtable, const float *dout, const int32_t *ids, size_t N, size_t C, size_t V) {
    (void)V;
#pragma omp parallel for schedule(static)
    for (size_t c0 = 0; c0 < C; c0 += 16) {
        size_t c1 = c0 + 16 < C ? c0 + 16 : C;
        for (size_t n = 0; n < N; n++) {
            float *row = dtable + (size_t)ids[n] * C;
            for (size_t c = c0; c < c1; c++) row[c] += dout[n * C + c];
        }
    }
}

void positions_add(float *out, const float *pos, size_t B, size_t T, size_t C) {
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++)
            for (size_t c = 0; c < C; c++) out[(b * T + t) * C + c] += pos[t * C + c];
}

void positions_backward(float *dpos, const float *dout, size_t B, size_t T, size_t C) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++)
            for (size_t c = 0; c < C; c++) dpos[t * C + c] += dout[(b * T + t) * C + c];
}

void sinusoidal_fill(float *table, size_t T, size_t C) {
    size_t half = C / 2;
    for (size_t t = 0; t < T; t++) {
        for (size_t j = 0; j < half; j++) {
            double f = pow(10000.0, -2.0 * (double)j / (double)C);
            table[t * C + j] = (float)sin((double)t * f);
            table[t * C + half + j] = (float)cos((double)t * f);
        }
        if (C % 2) table[t * C + C - 1] = 0.0f; /* odd width: last channel unused */
    }
}
