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

/* db (out) += sum over rows of dy; threads split the columns so no two write
 * the same element and the row order of the sum is fixed. */
static void bias_backward(float *db, const float *dy, size_t N, size_t out) {
#pragma omp parallel for schedule(static)
    for (size_t o0 = 0; o0 < out; o0 += 64) {
        size_t o1 = o0 + 64 < out ? o0 + 64 : out;
        float acc[64] = {0};
        for (size_t n = 0; n < N; n++)
            for (size_t o = o0; o < o1; o++) acc[o - o0] += dy[n * out + o];
        for (size_t o = o0; o < o1; o++) db[o] += acc[o - o0];
    }
}

void linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, size_t N,
                     size_t in, size_t out, bool accumulate_dx) {
    if (dx) gemm(false, false, N, in, out, 1.0f, dy, out, w, in, accumulate_dx ? 1.0f : 0.0f, dx, in);
    gemm(true, false, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (db) bias_backward(db, dy, N, out);
}
