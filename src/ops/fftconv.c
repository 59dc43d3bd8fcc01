/* fftconv.c — causal convolution of every channel with its own filter as
 * long as the sequence, Hyena's long convolution (spec ssm-hyena.md §2.5):
 *   y[t][c] = sum_{s<=t} h[s][c] v[t-s][c] + bias[c] v[t][c].
 *
 * Long sequences go through FFTW (single precision, real-to-complex): both
 * signals zero-padded to a length n >= 2T - 1 with only factors 2, 3, 5, 7
 * (fast for FFTW, and no wrap-around reaches the first T outputs), one
 * in-place r2c and c2r plan per n, made once and reused; plans use
 * FFTW_ESTIMATE, whose choice of algorithm is fixed, so a run repeats
 * bit for bit (FFTW_MEASURE times candidates and may pick another one next
 * time). Short sequences use the O(T^2) sum, which is faster below the
 * crossover bench/fftconv_crossover.c measured (FFTCONV_DIRECT_MAX).
 *
 * Channels are handled in tiles of TILE: a tile's columns are gathered from
 * the (B, T, C) rows into padded buffers, transformed, multiplied by the
 * filter spectra, transformed back and scattered. Backward (§2.5):
 *   dv = corr(dy, h) + bias dy,  dh = sum over the batch of corr(dy, v),
 * the second accumulated in the frequency domain per tile over the batch in
 * order, so threads own tiles and the sums do not depend on their number. */
#include <fftw3.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

enum { TILE = 8, MAX_PLANS = 32 };

typedef struct {
    size_t n;
    fftwf_plan r2c, c2r; /* in place, n reals <-> n/2 + 1 complex */
} Plans;

static Plans plans[MAX_PLANS];
static int n_plans;
static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;

static bool smooth(size_t n) {
    static const size_t primes[] = {2, 3, 5, 7};
    for (int i = 0; i < 4; i++)
        while (n % primes[i] == 0) n /= primes[i];
    return n == 1;
}

static size_t direct_max = FFTCONV_DIRECT_MAX;

void fftconv_set_direct_max(size_t T) { direct_max = T; }

size_t fftconv_length(size_t T) {
    if (T <= direct_max) return 0;
    size_t n = 2 * T - 1;
    while (n % 2 || !smooth(n)) n++;
    return n;
}

/* Floats of one padded signal or spectrum (n/2 + 1 complex values), a
 * multiple of 16 so every buffer of a tile keeps the 64-byte alignment the
 * plans were made with (FFTW's new-array execute requires it). */
static size_t padded(size_t n) { return (n + 2 + 15) / 16 * 16; }

size_t fftconv_spectra_floats(size_t T, size_t C) {
    const size_t n = fftconv_length(T);
    return n ? C * padded(n) : 0;
}

/* Per thread, three tiles of padded buffers (backward: dy, v, the dh
 * accumulator), 64-byte aligned as the plans' arrays were. The transforms
 * run on at most as many threads as the last sizing counted, so a thread
 * count raised after planning cannot run past the scratch. */
static int sized_threads = 1;

size_t fftconv_scratch(size_t T, size_t C) {
    (void)C;
    const size_t n = fftconv_length(T);
    sized_threads = omp_get_max_threads();
    return n ? (size_t)sized_threads * (3 * TILE * padded(n) + 16) + 16 : 0;
}

static int fft_threads(void) { return sized_threads < omp_get_max_threads() ? sized_threads : omp_get_max_threads(); }

/* The plans for length n, made on first use (FFTW's planner is not thread-safe). */
static const Plans *plans_for(size_t n) {
    pthread_mutex_lock(&plan_lock);
    const Plans *found = NULL;
    for (int i = 0; i < n_plans && !found; i++)
        if (plans[i].n == n) found = &plans[i];
    if (!found) {
        float *buf = fftwf_malloc(padded(n) * sizeof(float));
        Plans p = {.n = n};
        if (buf) {
            p.r2c = fftwf_plan_dft_r2c_1d((int)n, buf, (fftwf_complex *)buf, FFTW_ESTIMATE);
            p.c2r = fftwf_plan_dft_c2r_1d((int)n, (fftwf_complex *)buf, buf, FFTW_ESTIMATE);
            fftwf_free(buf);
        }
        if (!p.r2c || !p.c2r || n_plans == MAX_PLANS) { /* out of memory: nothing sensible to go on with */
            fprintf(stderr, "seqlab: FFTW could not plan a transform of length %zu\n", n);
            abort();
        }
        plans[n_plans] = p;
        found = &plans[n_plans++];
    }
    pthread_mutex_unlock(&plan_lock);
    return found;
}

static float *thread_tiles(float *scratch, size_t n) {
    const uintptr_t base = ((uintptr_t)scratch + 63) & ~(uintptr_t)63;
    const size_t per_thread = 3 * TILE * padded(n) + 16;
    return (float *)base + (size_t)omp_get_thread_num() * per_thread;
}

/* Column c0 .. c0 + w of sequence x (T, C) into w zero-padded buffers of padded(n). */
static void gather(float *buf, const float *x, size_t T, size_t C, size_t c0, size_t w, size_t n) {
    for (size_t j = 0; j < w; j++) memset(buf + j * padded(n) + T, 0, (padded(n) - T) * sizeof(float));
    for (size_t t = 0; t < T; t++)
        for (size_t j = 0; j < w; j++) buf[j * padded(n) + t] = x[t * C + c0 + j];
}

/* a ⊙ b (or a ⊙ conj(b)) over n/2 + 1 complex values, into out (may be a). */
static void spectrum_product(float *out, const float *a, const float *b, size_t n, bool conjugate_b) {
    const float s = conjugate_b ? -1.0f : 1.0f;
#pragma omp simd
    for (size_t k = 0; k < n / 2 + 1; k++) {
        const float ar = a[2 * k], ai = a[2 * k + 1], br = b[2 * k], bi = s * b[2 * k + 1];
        out[2 * k] = ar * br - ai * bi;
        out[2 * k + 1] = ar * bi + ai * br;
    }
}

void fftconv_filter(float *spectra, const float *h, size_t T, size_t C) {
    const size_t n = fftconv_length(T);
    if (!n) return;
    const Plans *p = plans_for(n);
#pragma omp parallel for schedule(static)
    for (size_t c0 = 0; c0 < C; c0 += TILE) {
        const size_t w = c0 + TILE < C ? TILE : C - c0;
        float *buf = spectra + c0 * padded(n);
        gather(buf, h, T, C, c0, w, n);
        for (size_t j = 0; j < w; j++) fftwf_execute_dft_r2c(p->r2c, buf + j * padded(n), (fftwf_complex *)(buf + j * padded(n)));
    }
}

/* ---- the O(T^2) sums below the crossover ---- */

static void direct_forward(float *y, const float *v, const float *h, const float *bias, size_t B, size_t T,
                           size_t C) {
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            const float *vb = v + b * T * C;
            float *yr = y + (b * T + t) * C;
            for (size_t c = 0; c < C; c++) yr[c] = bias ? bias[c] * vb[t * C + c] : 0.0f;
            for (size_t s = 0; s <= t; s++) {
                const float *hs = h + s * C, *vr = vb + (t - s) * C;
#pragma omp simd
                for (size_t c = 0; c < C; c++) yr[c] += hs[c] * vr[c];
            }
        }
}

static void direct_backward(float *dv, float *dh, const float *dy, const float *v, const float *h,
                            const float *bias, size_t B, size_t T, size_t C) {
#pragma omp parallel for collapse(2) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            const float *dyb = dy + b * T * C;
            float *dvr = dv + (b * T + t) * C;
            for (size_t c = 0; c < C; c++) dvr[c] = bias ? bias[c] * dyb[t * C + c] : 0.0f;
            for (size_t s = 0; t + s < T; s++) {
                const float *hs = h + s * C, *gr = dyb + (t + s) * C;
#pragma omp simd
                for (size_t c = 0; c < C; c++) dvr[c] += hs[c] * gr[c];
            }
        }
#pragma omp parallel for schedule(static)
    for (size_t s = 0; s < T; s++) { /* each thread owns rows of dh */
        float *dhs = dh + s * C;
        for (size_t b = 0; b < B; b++)
            for (size_t t = 0; t + s < T; t++) {
                const float *gr = dy + (b * T + t + s) * C, *vr = v + (b * T + t) * C;
#pragma omp simd
                for (size_t c = 0; c < C; c++) dhs[c] += gr[c] * vr[c];
            }
    }
}

/* ---- through FFTW ---- */

void fftconv_forward(float *y, const float *v, const float *h, const float *spectra, const float *bias, size_t B,
                     size_t T, size_t C, float *scratch) {
    const size_t n = fftconv_length(T);
    if (!n) {
        direct_forward(y, v, h, bias, B, T, C);
        return;
    }
    const Plans *p = plans_for(n);
    const float inv_n = 1.0f / (float)n;
    const int threads = fft_threads();
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
    for (size_t b = 0; b < B; b++)
        for (size_t c0 = 0; c0 < C; c0 += TILE) {
            const size_t w = c0 + TILE < C ? TILE : C - c0;
            float *buf = thread_tiles(scratch, n);
            const float *vb = v + b * T * C;
            gather(buf, vb, T, C, c0, w, n);
            for (size_t j = 0; j < w; j++) {
                float *s = buf + j * padded(n);
                fftwf_execute_dft_r2c(p->r2c, s, (fftwf_complex *)s);
                spectrum_product(s, s, spectra + (c0 + j) * padded(n), n, false);
                fftwf_execute_dft_c2r(p->c2r, (fftwf_complex *)s, s);
            }
            for (size_t t = 0; t < T; t++) {
                float *yr = y + (b * T + t) * C + c0;
                const float *vr = vb + t * C + c0;
                for (size_t j = 0; j < w; j++) yr[j] = buf[j * padded(n) + t] * inv_n + (bias ? bias[c0 + j] * vr[j] : 0.0f);
            }
        }
}

void fftconv_backward(float *dv, float *dh, float *dbias, const float *dy, const float *v, const float *h,
                      const float *spectra, const float *bias, size_t B, size_t T, size_t C, float *scratch) {
    if (dbias) column_sums(dbias, v, dy, B * T, C);
    const size_t n = fftconv_length(T);
    if (!n) {
        direct_backward(dv, dh, dy, v, h, bias, B, T, C);
        return;
    }
    const Plans *p = plans_for(n);
    const float inv_n = 1.0f / (float)n;
    const size_t tile = TILE * padded(n);
    const int threads = fft_threads();
#pragma omp parallel for schedule(static) num_threads(threads)
    for (size_t c0 = 0; c0 < C; c0 += TILE) {
        const size_t w = c0 + TILE < C ? TILE : C - c0;
        float *g = thread_tiles(scratch, n), *vs = g + tile, *acc = vs + tile;
        memset(acc, 0, tile * sizeof(float));
        for (size_t b = 0; b < B; b++) {
            gather(g, dy + b * T * C, T, C, c0, w, n);
            gather(vs, v + b * T * C, T, C, c0, w, n);
            for (size_t j = 0; j < w; j++) {
                float *gj = g + j * padded(n), *vj = vs + j * padded(n);
                fftwf_execute_dft_r2c(p->r2c, gj, (fftwf_complex *)gj);
                fftwf_execute_dft_r2c(p->r2c, vj, (fftwf_complex *)vj);
                float *aj = acc + j * padded(n);
                for (size_t k = 0; k < n / 2 + 1; k++) { /* acc += G conj(V) */
                    aj[2 * k] += gj[2 * k] * vj[2 * k] + gj[2 * k + 1] * vj[2 * k + 1];
                    aj[2 * k + 1] += gj[2 * k + 1] * vj[2 * k] - gj[2 * k] * vj[2 * k + 1];
                }
                spectrum_product(gj, gj, spectra + (c0 + j) * padded(n), n, true); /* G conj(H) */
                fftwf_execute_dft_c2r(p->c2r, (fftwf_complex *)gj, gj);
            }
            for (size_t t = 0; t < T; t++) {
                float *dvr = dv + (b * T + t) * C + c0;
                const float *gr = dy + (b * T + t) * C + c0;
                for (size_t j = 0; j < w; j++)
                    dvr[j] = g[j * padded(n) + t] * inv_n + (bias ? bias[c0 + j] * gr[j] : 0.0f);
            }
        }
        for (size_t j = 0; j < w; j++) {
            float *aj = acc + j * padded(n);
            fftwf_execute_dft_c2r(p->c2r, (fftwf_complex *)aj, aj);
            for (size_t t = 0; t < T; t++) dh[t * C + c0 + j] += aj[t] * inv_n;
        }
    }
}
