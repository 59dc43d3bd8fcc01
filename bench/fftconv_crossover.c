/* fftconv_crossover.c — where Hyena's long convolution should switch from
 * the direct O(T^2) sum to FFTW (FFTCONV_DIRECT_MAX in src/ops/ops.h): times
 * forward + backward of both paths for B x T x C = 16 x T x 128 (the
 * benchmark model's width at a short length), median of 9 runs each.
 *   make bench/fftconv_crossover && bench/fftconv_crossover */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops/ops.h"

static double median(double *x, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && x[j - 1] > x[j]; j--) {
            double t = x[j];
            x[j] = x[j - 1];
            x[j - 1] = t;
        }
    return x[n / 2];
}

/* Seconds of one forward and backward with the direct sum up to direct_max. */
static double time_path(size_t B, size_t T, size_t C, size_t direct_max) {
    fftconv_set_direct_max(direct_max);
    const size_t n = B * T * C;
    float *v = malloc(n * sizeof *v), *y = malloc(n * sizeof *y), *dv = malloc(n * sizeof *dv);
    float *h = malloc(T * C * sizeof *h), *dh = calloc(T * C, sizeof *dh), *bias = malloc(C * sizeof *bias);
    float *spectra = aligned_alloc(64, (fftconv_spectra_floats(T, C) + 16) * sizeof(float));
    float *scratch = malloc((fftconv_scratch(T, C) + 16) * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = (float)(i % 7) - 3.0f;
    for (size_t i = 0; i < T * C; i++) h[i] = 1.0f / (float)(1 + i % 5);
    for (size_t c = 0; c < C; c++) bias[c] = 0.5f;
    double runs[9];
    for (int r = 0; r < 10; r++) {
        const double t0 = omp_get_wtime();
        fftconv_filter(spectra, h, T, C);
        fftconv_forward(y, v, h, spectra, bias, B, T, C, scratch);
        fftconv_backward(dv, dh, NULL, y, v, h, spectra, bias, B, T, C, scratch);
        if (r) runs[r - 1] = omp_get_wtime() - t0; /* the first run plans */
    }
    free(v), free(y), free(dv), free(h), free(dh), free(bias), free(spectra), free(scratch);
    return median(runs, 9);
}

int main(void) {
    static const size_t lengths[] = {8, 16, 32, 48, 64, 72, 80, 88, 96, 128, 192, 256, 512};
    const size_t B = 16, C = 128;
    printf("T\tdirect ms\tFFT ms\tdirect / FFT\n");
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        const size_t T = lengths[i];
        const double direct = time_path(B, T, C, (size_t)-1), fft = time_path(B, T, C, 0);
        printf("%zu\t%.3f\t%.3f\t%.2f\n", T, 1e3 * direct, 1e3 * fft, direct / fft);
    }
    return 0;
}
