/* linear.c — fully connected layer through BLAS, PyTorch weight layout (out, in). */
#include "../core/gemm.h"
#include "ops.h"

void linear_forward(float *y, const float *x, const float *w, const float *b, size_t N, size_t in, size_t out) {
    if (b) {
        /* start from the bias, let sgemm add x W^T on top (beta = 1) */
#pragma omp parallel for schedule(static)
        for (size_t n = 0; n < N; n++)
            for (size_t o = 0; o < out; o++) y[n * out + o] = b[o];
    }
    gemm(false, true, N, out, in, 1.0f, x, in, w, in, b ? 1.0f : 0.0f, y, out);
}

/* Rows are cut into a fixed number of blocks (not one per thread), each
 * summed in double, and the blocks added in order: the same bits on any
 * number of threads, and every thread busy however few columns there are. */
enum { SUM_BLOCKS = 32, SUM_TILE = 64 };

void column_sums(float *acc, const float *a, const float *b, size_t N, size_t C) {
    for (size_t c0 = 0; c0 < C; c0 += SUM_TILE) {
        const size_t c1 = c0 + SUM_TILE < C ? c0 + SUM_TILE : C;
        double part[SUM_BLOCKS][SUM_TILE];
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < SUM_BLOCKS; r++) {
            double *p = part[r];
            for (size_t c = c0; c < c1; c++) p[c - c0] = 0.0;
            for (size_t n = N * r / SUM_BLOCKS; n < N * (r + 1) / SUM_BLOCKS; n++) {
                const float *ar = a + n * C, *br = b ? b + n * C : NULL;
#pragma omp simd
                for (size_t c = c0; c < c1; c++) p[c - c0] += br ? (double)ar[c] * br[c] : (double)ar[c];
            }
        }
        for (size_t c = c0; c < c1; c++) {
            double sum = 0.0;
            for (size_t r = 0; r < SUM_BLOCKS; r++) sum += part[r][c - c0];
            acc[c] += (float)sum;
        }
    }
}

void linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, size_t N,
                     size_t in, size_t out, bool accumulate_dx) {
    if (dx) gemm(false, false, N, in, out, 1.0f, dy, out, w, in, accumulate_dx ? 1.0f : 0.0f, dx, in);
    gemm(true, false, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (db) column_sums(db, dy, NULL, N, out);
}
